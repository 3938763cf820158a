/*
 * pingpong.c -- Erlang-style processes from the seed:
 *
 *   let child = process.spawn {
 *     let reply_to = process.receive as Process
 *     reply_to.send('pong')
 *   }
 *   child.send(process.current)
 *   process.receive
 *
 * Here the child serves several pings, each carrying its reply-to handle.
 */
#include <errno.h>
#include <mote.h>
#include <stdio.h>
#include <string.h>

typedef struct ping {
    mote_proc *reply_to; /* a reference: the receiver releases it */
    int n;
} ping;

static void pong_process(void *arg) {
    (void)arg;
    for (;;) {
        mote_msg *m;
        if (mote_receive(&m, MOTE_FOREVER) != 0)
            return;
        ping p;
        memcpy(&p, mote_msg_data(m), sizeof p);
        mote_msg_free(m);
        if (p.n < 0) { /* stop */
            mote_proc_release(p.reply_to);
            return;
        }
        printf("pong %d\n", p.n);
        fflush(stdout);
        char reply[32];
        int len = snprintf(reply, sizeof reply, "pong %d", p.n);
        mote_send(p.reply_to, reply, (size_t)len + 1);
        mote_proc_release(p.reply_to);
    }
}

static int main_process(void *arg) {
    (void)arg;
    mote_proc *child;
    if (mote_spawn_fn(&child, pong_process, NULL, 0) != 0)
        return 1;
    for (int i = 1; i <= 3; i++) {
        printf("ping %d\n", i);
        fflush(stdout);
        ping p = {mote_proc_ref(mote_self()), i};
        mote_send(child, &p, sizeof p);

        mote_msg *m;
        if (mote_receive(&m, MOTE_SEC(10)) != 0) {
            printf("no reply\n");
            return 1;
        }
        printf("got \"%s\"\n", (const char *)mote_msg_data(m));
        fflush(stdout);
        mote_msg_free(m);
    }
    /* A receive with a timeout: nothing more is coming. */
    mote_msg *m;
    if (mote_receive(&m, MOTE_MSEC(10)) == -ETIMEDOUT)
        printf("nothing else after 10 ms\n");
    ping stop = {mote_proc_ref(mote_self()), -1};
    mote_send(child, &stop, sizeof stop);
    mote_proc_release(child);
    return 0;
}

int main(void) { return mote_run(NULL, main_process, NULL); }
