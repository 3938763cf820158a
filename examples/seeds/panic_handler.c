/*
 * panic_handler.c -- the seed's way to act on a process ending:
 *
 *   let child = process.spawn {
 *     let parent = process.receive as Process
 *     process.panicking do (error) { parent.send(error) }
 *   }
 *   child.send(process.current)
 *
 * A panic normally ends the whole program (exit status 101). A process with
 * a panic handler ends alone: the handler runs, then the process is gone,
 * and everyone else carries on.
 */
#include <errno.h>
#include <mote.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void tell_parent(const char *msg, void *ctx) {
    mote_proc **parent = ctx;
    char text[128];
    int len = snprintf(text, sizeof text, "child panicked: %s", msg);
    mote_send(*parent, text, (size_t)len + 1);
    mote_proc_release(*parent);
    free(parent);
}

static mote_result divide(void *state, void *arg) {
    (void)state;
    const int *ab = arg;
    if (ab[1] == 0)
        mote_panic("division of %d by zero", ab[0]);
    return mote_ok_i(ab[0] / ab[1]);
}

static void child_process(void *arg) {
    (void)arg;
    /* let parent = process.receive as Process */
    mote_msg *m;
    if (mote_receive(&m, MOTE_FOREVER) != 0)
        return;
    mote_proc **parent = malloc(sizeof *parent); /* outlives this stack */
    memcpy(parent, mote_msg_data(m), sizeof *parent);
    mote_msg_free(m);
    mote_on_panic(tell_parent, parent);
    printf("child: handler registered\n");
    fflush(stdout);
    /* From here on the child serves divide calls. */
}

static int main_process(void *arg) {
    (void)arg;
    mote_proc *child;
    mote_spawn_fn(&child, child_process, NULL, 0);
    mote_proc *me = mote_proc_ref(mote_self());
    mote_send(child, &me, sizeof me);

    int ok[2] = {84, 2}, bad[2] = {1, 0};
    mote_result r;
    mote_call(child, divide, ok, sizeof ok, &r);
    printf("84 / 2 = %lld\n", (long long)r.i);

    mote_future *f;
    mote_async(child, divide, bad, sizeof bad, &f);
    mote_msg *m;
    mote_receive(&m, MOTE_FOREVER);
    printf("parent got: %s\n", (const char *)mote_msg_data(m));
    mote_msg_free(m);

    mote_await(f, &r);
    printf("the failed call: %s\n", r.err == -ECANCELED ? "cancelled" : "?");
    mote_call(child, divide, ok, sizeof ok, &r);
    printf("a later call: %s\n", r.err == -ECANCELED ? "cancelled" : "?");
    printf("parent still running\n");
    mote_proc_release(child);
    return 0;
}

int main(void) { return mote_run(NULL, main_process, NULL); }
