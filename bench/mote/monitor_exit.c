/*
 * monitor_exit: the cost of a monitor and its exit notice. Main starts
 * processes in batches of 1000 (mote_spawn_fn of a function that returns
 * at once), monitors each, drops its handle, and receives the 1000 exit
 * notices; 1M processes in all. monitor_base is the same without monitors
 * (each process sends main one message as its last act), so the
 * difference is what a monitor adds.
 */
#include "bench.h"

enum { N = 1000000, BATCH = 1000 };

static void fn_nothing(void *arg) { (void)arg; }

static void fn_reply(void *arg) {
    int64_t one = 1;
    bench_ok(mote_send(*(mote_proc **)arg, &one, sizeof one), "mote_send");
}

static int64_t run(bool monitored) {
    mote_proc *self = mote_self();
    int64_t ended = 0;
    for (int b = 0; b < N / BATCH; b++) {
        for (int i = 0; i < BATCH; i++) {
            mote_proc *p;
            if (monitored) {
                uint64_t ref;
                bench_ok(mote_spawn_fn(&p, fn_nothing, NULL, 0), "mote_spawn_fn");
                bench_ok(mote_monitor(p, &ref), "mote_monitor");
                mote_proc_release(p);
            } else {
                bench_ok(mote_spawn_fn(NULL, fn_reply, &self, sizeof self), "mote_spawn_fn");
            }
        }
        for (int i = 0; i < BATCH; i++) {
            mote_msg *m;
            bench_ok(mote_receive(&m, MOTE_FOREVER), "mote_receive");
            mote_exit x;
            ended += monitored ? mote_msg_exit(m, &x) && x.reason == MOTE_EXIT_NORMAL : 1;
            mote_msg_free(m);
        }
    }
    return ended;
}

static int monitor_main(void *arg) {
    (void)arg;
    run(true); /* warm-up: stacks, slabs */
    int64_t t0 = mote_now();
    int64_t ended = run(true);
    double monitored = (double)(mote_now() - t0) / N;
    t0 = mote_now();
    int64_t replied = run(false);
    double base = (double)(mote_now() - t0) / N;
    if (!bench_check("monitor_exits", ended, N) || !bench_check("monitor_base_replies", replied, N))
        return 1;
    bench_result("monitor_exit", "ns/proc", monitored);
    bench_result("monitor_base", "ns/proc", base);
    return 0;
}

int main(void) { return bench_run(NULL, monitor_main); }
