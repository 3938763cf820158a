/*
 * A program for test-gdb: two named processes suspended in known
 * functions (alpha in wait_here_a, in a receive; beta in wait_here_b, in
 * a sleep). main calls target_ready() every 20 ms from then on, where the
 * debugger stops it.
 */
#include <mote.h>
#include <stdatomic.h>
#include <stdio.h>

static atomic_int started;

/* noinline and work after the call: each keeps its own frame. */
__attribute__((noinline)) int wait_here_a(void) {
    atomic_fetch_add(&started, 1);
    mote_msg *m = NULL;
    int r = mote_receive(&m, MOTE_FOREVER);
    mote_msg_free(m);
    return r + 1;
}

__attribute__((noinline)) int wait_here_b(void) {
    atomic_fetch_add(&started, 1);
    int r = mote_sleep(MOTE_SEC(3600));
    return r + 1;
}

static void alpha(void *arg) {
    (void)arg;
    mote_proc_set_name(mote_self(), "alpha");
    printf("alpha %d\n", wait_here_a());
}

static void beta(void *arg) {
    (void)arg;
    mote_proc_set_name(mote_self(), "beta");
    printf("beta %d\n", wait_here_b());
}

__attribute__((noinline)) void target_ready(int round) {
    __asm__ __volatile__("" ::"r"(round) : "memory");
}

static int app(void *arg) {
    (void)arg;
    mote_proc *a, *b;
    mote_spawn_fn(&a, alpha, NULL, 0);
    mote_spawn_fn(&b, beta, NULL, 0);
    while (atomic_load(&started) < 2)
        mote_sleep(MOTE_MSEC(1));
    for (int round = 0; round < 3000; round++) { /* about a minute */
        target_ready(round);
        mote_sleep(MOTE_MSEC(20));
    }
    mote_proc_release(a);
    mote_proc_release(b);
    return 0;
}

int main(void) { return mote_run(NULL, app, NULL); }
