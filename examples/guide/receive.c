/* receive.c -- Erlang style: a process that runs a function and waits for
 * data messages in a receive loop, answering each through a reply-to
 * handle carried in the message. */
#include <errno.h>
#include <mote.h>
#include <stdio.h>

typedef struct request {
    mote_proc *reply_to; /* a reference: whoever receives it releases it */
    int n;               /* < 0: stop */
} request;

static void doubler(void *arg) {
    (void)arg;
    for (;;) {
        mote_msg *m;
        if (mote_receive(&m, MOTE_SEC(10)) < 0)
            return; /* nobody asked for 10 s */
        request req = *(const request *)mote_msg_data(m);
        mote_msg_free(m);
        if (req.n >= 0) {
            int answer = 2 * req.n;
            mote_send(req.reply_to, &answer, sizeof answer);
        }
        mote_proc_release(req.reply_to);
        if (req.n < 0)
            return;
    }
}

static int app(void *arg) {
    (void)arg;
    mote_proc *d;
    if (mote_spawn_fn(&d, doubler, NULL, 0) < 0)
        return 1;
    for (int n = 1; n <= 3; n++) {
        request req = {mote_proc_ref(mote_self()), n};
        mote_send(d, &req, sizeof req);
        mote_msg *m;
        if (mote_receive(&m, MOTE_SEC(10)) < 0)
            return 1;
        printf("%d doubled is %d\n", n, *(const int *)mote_msg_data(m));
        mote_msg_free(m);
    }
    mote_msg *m;
    if (mote_receive(&m, MOTE_MSEC(10)) == -ETIMEDOUT)
        printf("no more messages\n");
    request stop = {mote_proc_ref(mote_self()), -1};
    mote_send(d, &stop, sizeof stop);
    mote_proc_release(d);
    return 0;
}

int main(void) {
    return mote_run(NULL, app, NULL) == 0 ? 0 : 1;
}
