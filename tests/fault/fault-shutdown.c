/* Shutdown under faults: main returns while processes sleep forever, wait
 * in receive, hold queued and running messages, wait on a socket and on
 * futures, and timers are pending. Everything must be freed (the ASan
 * build checks) and pending futures of foreign waiters resolve. */
#include "common.h"

#include <sys/socket.h>
#include <unistd.h>

static atomic_int started;

static void sleeper(void *arg) {
    (void)arg;
    atomic_fetch_add(&started, 1);
    mote_sleep(MOTE_FOREVER);
}

static void receiver(void *arg) {
    (void)arg;
    atomic_fetch_add(&started, 1);
    mote_msg *m;
    if (mote_receive(&m, MOTE_FOREVER) == 0)
        mote_msg_free(m);
}

/* A process whose state owns a socket (its destructor closes it, as a
 * process that can be shut down must), suspended reading it. */
static void close_sock(void *state) {
    mote_socket_close(*(mote_socket **)state);
}

static mote_result h_read(void *state, void *arg) {
    (void)arg;
    char c;
    atomic_fetch_add(&started, 1);
    mote_socket_read(*(mote_socket **)state, &c, 1, MOTE_FOREVER); /* no data comes */
    return mote_ok_i(0);
}

static mote_result h_block(void *state, void *arg) {
    (void)state;
    (void)arg;
    mote_sleep(MOTE_FOREVER);
    return mote_ok_i(0);
}

static int main_fn(void *arg) {
    (void)arg;
    int want = 0;
    for (int i = 0; i < 3; i++)
        want += f_err("mote_spawn_fn", mote_spawn_fn(NULL, sleeper, NULL, 0)) == 0;
    mote_proc *r = NULL;
    if (f_err("mote_spawn_fn", mote_spawn_fn(&r, receiver, NULL, 0)) == 0)
        want++;
    int sv[2];
    mote_socket *a = NULL, *b = NULL;
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0) {
        if (f_err("mote_socket_adopt", mote_socket_adopt(&a, sv[0])) < 0)
            close(sv[0]);
        if (f_err("mote_socket_adopt", mote_socket_adopt(&b, sv[1])) < 0)
            close(sv[1]);
        mote_proc *owner = NULL;
        if (a && f_err("mote_spawn", mote_spawn(&owner, &a, sizeof a, close_sock)) < 0)
            mote_socket_close(a);
        if (owner && f_err("mote_cast", mote_cast(owner, h_read, NULL, 0)) == 0)
            want++;
        mote_proc_release(owner);
    }
    /* A process running a message that never ends, with more queued, and
     * futures nobody awaits. */
    mote_proc *p = NULL;
    mote_future *f1 = NULL, *f2 = NULL, *t = NULL;
    if (f_err("mote_spawn", mote_spawn(&p, NULL, 16, NULL)) == 0) {
        f_err("mote_async", mote_async(p, h_block, NULL, 0, &f1));
        f_err("mote_async", mote_async(p, h_block, NULL, 0, &f2));
        mote_proc_release(p);
    }
    f_err("mote_timer", mote_timer(&t, MOTE_SEC(100)));
    F_CHECK(f_wait_for(&started, want), "%d of %d processes started", atomic_load(&started), want);
    mote_proc_release(r);
    (void)f1;
    (void)f2;
    (void)t;
    if (b)
        mote_socket_close(b);
    return 0;
}

int main(void) {
    return f_run("fault-shutdown", main_fn);
}
