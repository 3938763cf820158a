/*
 * trace_cost: what tracing costs the round trip (roundtrip.c's two
 * processes), measured in one process: phases of PHASE_CALLS calls with
 * tracing off and on in turn (mote_trace_start/mote_trace_stop, the file
 * going to BENCH_TRACE_FILE, default /dev/null), so that both sides share
 * the binary, the heap and the machine's mood. Each phase's CPU time per
 * call counts (a thread waiting for a CPU adds wall time, not CPU time);
 * the fastest phase of each side is the least disturbed one, and their
 * ratio is the cost. The first two phases warm up and are not counted.
 * Run with MOTE_THREADS=1 (bench/overhead.sh does): one worker makes the
 * CPU time the calls' own.
 */
#include "bench.h"

enum { PHASE_CALLS = 50000, PHASES = 42 };

typedef struct client {
    mote_proc *server;
} client;

static mote_result on_request(void *state, void *arg) {
    (void)state;
    return mote_ok_i(*(const int64_t *)arg + 1);
}

static mote_result on_run(void *state, void *arg) {
    const client *c = state;
    int64_t n = *(const int64_t *)arg, total = 0;
    for (int64_t i = 0; i < n; i++) {
        mote_result r;
        bench_ok(mote_call(c->server, on_request, &i, sizeof i, &r), "mote_call");
        total += r.i;
    }
    return mote_ok_i(total);
}

static int trace_cost_main(void *arg) {
    (void)arg;
    const char *path = getenv("BENCH_TRACE_FILE");
    if (!path || !*path)
        path = "/dev/null";
    mote_proc *srv, *cli;
    bench_ok(mote_spawn(&srv, NULL, 0, NULL), "mote_spawn");
    client c = {srv};
    bench_ok(mote_spawn(&cli, &c, sizeof c, NULL), "mote_spawn");
    double best[2] = {1e18, 1e18};
    for (int ph = 0; ph < PHASES; ph++) {
        bool traced = ph % 2;
        if (traced)
            bench_ok(mote_trace_start(path), "mote_trace_start");
        int64_t n = PHASE_CALLS, cpu0 = bench_cpu_ns();
        mote_future *f;
        mote_result total;
        bench_ok(mote_async(cli, on_run, &n, sizeof n, &f), "mote_async");
        bench_ok(mote_await(f, &total), "mote_await");
        double cpu = (double)(bench_cpu_ns() - cpu0) / PHASE_CALLS;
        if (traced)
            bench_ok(mote_trace_stop(), "mote_trace_stop");
        if (total.err || total.i != (int64_t)PHASE_CALLS * (PHASE_CALLS + 1) / 2)
            return bench_check("trace_cost_total", total.err ? total.err : total.i,
                               (int64_t)PHASE_CALLS * (PHASE_CALLS + 1) / 2) ? 0 : 1;
        if (ph >= 2 && cpu < best[traced])
            best[traced] = cpu;
    }
    mote_proc_release(cli);
    mote_proc_release(srv);
    bench_result("trace_off_cpu", "ns/call", best[0]);
    bench_result("trace_on_cpu", "ns/call", best[1]);
    printf("RESULT trace_cost x %.3f\n", best[1] / best[0]);
    return 0;
}

int main(void) {
    return mote_run(NULL, trace_cost_main, NULL);
}
