/*
 * child_true: spawn /bin/true and wait for it, 1000 times one after the
 * other in an ordinary process (child_true, us/child: the peer of Go's
 * goroutine and tokio's task), then 2000 times with 8 processes in flight
 * (child_true_par, us/child over the whole batch), then 1000 times one
 * after the other in the main process (child_true_main, reported only:
 * the main process has a thread of its own, so each exit notice takes one
 * more thread wake-up, poller to main thread). Standard streams are
 * /dev/null, as Go's exec.Command gives by default. Checks every exit
 * status.
 */
#include "bench.h"

enum { SEQ = 1000, PAR = 2000, INFLIGHT = 8 };

static const char *const true_argv[] = {"/bin/true", NULL};

/* Spawn /bin/true, wait; 1 if it exited 0. */
static int64_t run_true(void) {
    mote_child_opts o = {.argv = true_argv, .stdio = {MOTE_CHILD_NULL, MOTE_CHILD_NULL, MOTE_CHILD_NULL}};
    mote_child *c;
    bench_ok(mote_child_spawn(&c, &o), "mote_child_spawn");
    mote_child_status st;
    bench_ok(mote_child_wait(c, MOTE_FOREVER, &st), "mote_child_wait");
    mote_child_free(c);
    return st.exit_code == 0;
}

typedef struct runner {
    mote_proc *collector;
    int n;
} runner;

static void run_many(void *arg) {
    runner *r = arg;
    int64_t ok = 0;
    for (int i = 0; i < r->n; i++)
        ok += run_true();
    bench_ok(mote_send(r->collector, &ok, sizeof ok), "mote_send");
}

/* n children one after the other in the calling process: us/child. */
static double run_seq(int n, const char *check) {
    int64_t ok = 0, t0 = mote_now();
    for (int i = 0; i < n; i++)
        ok += run_true();
    double us = (double)(mote_now() - t0) / n / 1e3;
    if (!bench_check(check, ok, n))
        exit(1);
    return us;
}

static void seq_in_proc(void *arg) {
    double us = run_seq(SEQ, "child_true_ok");
    bench_ok(mote_send(*(mote_proc **)arg, &us, sizeof us), "mote_send");
}

static int child_main(void *arg) {
    (void)arg;
    mote_proc *self = mote_self();
    bench_ok(mote_spawn_fn(NULL, seq_in_proc, &self, sizeof self), "mote_spawn_fn");
    mote_msg *m;
    bench_ok(mote_receive(&m, MOTE_FOREVER), "mote_receive");
    double seq_us;
    memcpy(&seq_us, mote_msg_data(m), sizeof seq_us);
    mote_msg_free(m);
    runner r = {self, PAR / INFLIGHT};
    int64_t ok, t0 = mote_now();
    for (int i = 0; i < INFLIGHT; i++)
        bench_ok(mote_spawn_fn(NULL, run_many, &r, sizeof r), "mote_spawn_fn");
    ok = 0;
    for (int i = 0; i < INFLIGHT; i++)
        ok += bench_receive_i64();
    double par_us = (double)(mote_now() - t0) / PAR / 1e3;
    if (!bench_check("child_true_par_ok", ok, PAR))
        return 1;
    double main_us = run_seq(SEQ, "child_true_main_ok");
    bench_result("child_true", "us/child", seq_us);
    bench_result("child_true_par", "us/child", par_us);
    bench_result("child_true_main", "us/child", main_us);
    return 0;
}

int main(void) { return bench_run(NULL, child_main); }
