/* supervise.c -- supervision: a service with a bug that crashes it now and
 * then keeps answering, because a supervisor restarts it and its clients
 * ask the supervisor for whichever one runs now. */
#include <errno.h>
#include <mote.h>
#include <stdio.h>

static void quietly(const char *msg, void *ctx) {
    (void)msg;
    (void)ctx;
}

static mote_result contain(void *state, void *arg) {
    (void)state;
    (void)arg;
    return mote_error(mote_on_panic(quietly, NULL)); /* a panic ends only it */
}

/* Doubles numbers, and crashes on every third job: a bug. */
static mote_result double_it(void *state, void *arg) {
    long *jobs = state;
    if (++*jobs % 3 == 0)
        mote_panic("job %ld went wrong", *jobs);
    return mote_ok_i(2 * *(const long *)arg);
}

/* The child spec's start function: runs in the supervisor. */
static int start_doubler(mote_proc **out, void *arg) {
    (void)arg;
    int r = mote_spawn(out, NULL, sizeof(long), NULL);
    if (r == 0)
        r = mote_cast(*out, contain, NULL, 0); /* its first message */
    return r;
}

/* Ask whichever doubler runs now; if it crashed on our job, ask again. */
static long ask(mote_proc *sup, long n, int *crashes) {
    for (;;) {
        mote_proc *d;
        if (mote_sup_child(sup, 0, &d) < 0)
            return -1;
        mote_result r;
        int e = mote_call(d, double_it, &n, sizeof n, &r);
        mote_proc_release(d);
        if (e == 0 && r.err == 0)
            return r.i;
        if (e < 0 || r.err != -ECANCELED)
            return -1;
        ++*crashes; /* the supervisor has restarted it by now */
    }
}

static int app(void *arg) {
    (void)arg;
    static const mote_child_spec kids[] = {{start_doubler, NULL}};
    mote_sup_spec spec = {MOTE_SUP_ONE_FOR_ONE, 10, MOTE_SEC(1), kids, 1};
    mote_proc *sup;
    if (mote_sup_start(&sup, &spec) < 0)
        return 1;
    int crashes = 0;
    long sum = 0;
    for (long i = 1; i <= 10; i++)
        sum += ask(sup, i, &crashes);
    printf("sum of doubles of 1..10: %ld, after %d crashes\n", sum, crashes);

    uint64_t ref;
    mote_monitor(sup, &ref);
    mote_cancel(sup); /* stops it, and its child with it */
    mote_msg *m;
    mote_exit x;
    if (mote_receive(&m, MOTE_SEC(5)) == 0) {
        if (mote_msg_exit(m, &x) && x.ref == ref)
            printf("the supervisor ended: %s\n", x.text);
        mote_msg_free(m);
    }
    mote_proc_release(sup);
    return 0;
}

int main(void) { return mote_run(NULL, app, NULL); }
