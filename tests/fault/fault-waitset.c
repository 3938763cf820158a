/* Wait sets under faults: futures, timers, a pipe and the mailbox in one
 * set; whatever was added is reported once (or the wait says -ENOMEM),
 * and the set frees what it holds. */
#include "common.h"

#include <fcntl.h>
#include <unistd.h>

enum { N = 16 };

static mote_result h_echo(void *state, void *arg) {
    (void)state;
    return mote_ok_i(*(int64_t *)arg);
}

static int main_fn(void *arg) {
    (void)arg;
    mote_proc *p = NULL;
    if (f_err("mote_spawn", mote_spawn(&p, NULL, 0, NULL)) < 0)
        return 0;
    mote_waitset *ws = NULL;
    if (f_err("mote_waitset_new", mote_waitset_new(&ws)) < 0) {
        mote_proc_release(p);
        return 0;
    }
    mote_future *f[N] = {0};
    bool want[N + 3] = {0}; /* tags 0..N-1 futures, N a timer, N+1 the pipe, N+2 the mailbox */
    int expected = 0;
    for (int64_t i = 0; i < N; i++) {
        if (f_err("mote_async", mote_async(p, h_echo, &i, sizeof i, &f[i])) < 0)
            continue;
        if (f_err("mote_waitset_add_future", mote_waitset_add_future(ws, f[i], (uint64_t)i)) < 0) {
            mote_future_drop(f[i]); /* not in the set: still ours */
            f[i] = NULL;
            continue;
        }
        want[i] = true;
        expected++;
    }
    if (f_err("mote_waitset_add_timer", mote_waitset_add_timer(ws, MOTE_USEC(200), N)) == 0) {
        want[N] = true;
        expected++;
    }
    int fds[2] = {-1, -1};
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) == 0 && write(fds[1], "x", 1) == 1 &&
        f_err("mote_waitset_add_fd", mote_waitset_add_fd(ws, fds[0], MOTE_READABLE, N + 1)) == 0) {
        want[N + 1] = true;
        expected++;
    }
    int64_t one = 1;
    if (f_err("mote_send", mote_send(mote_self(), &one, sizeof one)) == 0 &&
        f_err("mote_waitset_add_mailbox", mote_waitset_add_mailbox(ws, N + 2)) == 0) {
        want[N + 2] = true;
        expected++;
    }
    int got = 0, tries = 0;
    while (got < expected && tries++ < 1000) {
        mote_waitset_event e[8];
        int k = mote_waitset_wait(ws, e, 8, MOTE_SEC(20));
        if (k == -ENOMEM) { /* no stack or timer room for this wait: try again */
            f_err("mote_waitset_wait", k);
            continue;
        }
        F_CHECK(k > 0, "wait: %d", k);
        if (k <= 0)
            break;
        for (int i = 0; i < k; i++) {
            uint64_t t = e[i].tag;
            F_CHECK(t < N + 3 && want[t], "tag %llu reported twice or never added", (unsigned long long)t);
            if (t >= N + 3 || !want[t])
                continue;
            want[t] = false;
            got++;
            if (t < N) {
                mote_result r;
                if (f_err("mote_await", mote_await(f[t], &r)) == 0)
                    F_CHECK(r.err == 0 && r.i == (int64_t)t, "future %llu: %lld", (unsigned long long)t,
                            (long long)r.i);
                f[t] = NULL;
            } else if (t == N + 1) { /* a descriptor stays until removed */
                f_err("mote_waitset_remove", mote_waitset_remove(ws, t));
            } else if (t == N + 2) {
                mote_msg *m = NULL;
                F_CHECK(mote_receive(&m, 0) == 0, "the mailbox said ready");
                mote_msg_free(m);
            }
        }
    }
    F_CHECK(got == expected, "reported %d of %d", got, expected);
    mote_waitset_free(ws);
    if (fds[0] >= 0) {
        mote_fd_close(fds[0]);
        mote_fd_close(fds[1]);
    }
    mote_proc_release(p);
    return 0;
}

int main(void) {
    return f_run("fault-waitset", main_fn);
}
