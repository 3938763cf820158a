/*
 * roundtrip: request/response between two processes. A client process runs
 * one message that makes N mote_calls to a server process (each returns its
 * argument + 1) and returns the total; main awaits that total. Wall time
 * per call, and CPU time of the process per call.
 */
#include "bench.h"

enum { N = 1000000 };

typedef struct server {
    int64_t served;
} server;

typedef struct client {
    mote_proc *server; /* borrowed: main holds it until the client is done */
} client;

static mote_result on_request(void *state, void *arg) {
    server *s = state;
    s->served++;
    return mote_ok_i(*(const int64_t *)arg + 1);
}

static mote_result on_run(void *state, void *arg) {
    const client *c = state;
    int64_t n = *(const int64_t *)arg, total = 0;
    for (int64_t i = 0; i < n; i++) {
        mote_result r;
        bench_ok(mote_call(c->server, on_request, &i, sizeof i, &r), "mote_call");
        bench_ok(r.err, "request");
        total += r.i;
    }
    return mote_ok_i(total);
}

static int roundtrip_main(void *arg) {
    (void)arg;
    mote_proc *srv, *cli;
    bench_ok(mote_spawn(&srv, NULL, sizeof(server), NULL), "mote_spawn");
    client c = {srv};
    bench_ok(mote_spawn(&cli, &c, sizeof c, NULL), "mote_spawn");
    int64_t n = N;
    int64_t t0 = mote_now(), cpu0 = bench_cpu_ns();
    mote_future *f;
    mote_result total;
    bench_ok(mote_async(cli, on_run, &n, sizeof n, &f), "mote_async");
    bench_ok(mote_await(f, &total), "mote_await");
    double ns = (double)(mote_now() - t0) / N, cpu = (double)(bench_cpu_ns() - cpu0) / N;
    mote_proc_release(cli);
    mote_proc_release(srv);
    if (!bench_check("roundtrip_total", total.err ? total.err : total.i, (int64_t)N * (N + 1) / 2))
        return 1;
    bench_result("roundtrip", "ns/call", ns);
    /* Of every thread, idle workers' spinning included: telling with
     * MOTE_THREADS=1 on a busy machine (bench/overhead.sh). */
    bench_result("roundtrip_cpu", "ns/call", cpu);
    return 0;
}

int main(void) { return bench_run(NULL, roundtrip_main); }
