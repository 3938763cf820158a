/* panic.c -- panics and panic handlers. A panic normally ends the whole
 * program with a backtrace; a process that registered a handler ends
 * alone: the handler reports it, pending calls resolve with -ECANCELED,
 * and the rest of the program carries on. */
#include <errno.h>
#include <mote.h>
#include <stdio.h>
#include <string.h>

typedef struct divider {
    mote_proc *parent; /* a reference, released by the destructor */
    long dividend;
} divider;

/* Runs in the panicking process: tell the parent, then return. */
static void on_panic(const char *msg, void *ctx) {
    mote_proc *parent = ctx;
    mote_send(parent, msg, strlen(msg) + 1);
}

static mote_result setup(void *state, void *arg) {
    (void)arg;
    divider *d = state;
    return mote_error(mote_on_panic(on_panic, d->parent));
}

static mote_result divide(void *state, void *arg) {
    divider *d = state;
    long by = *(const long *)arg;
    if (by == 0)
        mote_panic("division of %ld by zero", d->dividend); /* a bug: never returns */
    return mote_ok_i(d->dividend / by);
}

static void divider_gone(void *state) {
    mote_proc_release(((divider *)state)->parent);
}

static int app(void *arg) {
    (void)arg;
    mote_proc *d;
    divider init = {mote_proc_ref(mote_self()), 84};
    if (mote_spawn(&d, &init, sizeof init, divider_gone) < 0) {
        mote_proc_release(init.parent);
        return 1;
    }
    mote_result r;
    mote_call(d, setup, NULL, 0, &r); /* the handler is the process's own */

    long two = 2, zero = 0;
    mote_call(d, divide, &two, sizeof two, &r);
    printf("84 / 2 = %ld\n", (long)r.i);

    mote_call(d, divide, &zero, sizeof zero, &r);
    printf("84 / 0: %s\n", mote_strerror(r.err)); /* -ECANCELED */

    mote_msg *m;
    if (mote_receive(&m, MOTE_SEC(5)) == 0) {
        printf("the handler said: %s\n", (const char *)mote_msg_data(m));
        mote_msg_free(m);
    }
    mote_call(d, divide, &two, sizeof two, &r); /* the process has ended */
    printf("a later call: %s\n", mote_strerror(r.err));
    mote_proc_release(d);
    return 0;
}

int main(void) {
    return mote_run(NULL, app, NULL) == 0 ? 0 : 1;
}
