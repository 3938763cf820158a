/*
 * idle_rss: resident memory per idle process. Spawns 1M processes with 8
 * bytes of state and no messages, keeps their handles, and compares the
 * RSS before and after (the handle array is allocated and touched before
 * the first measurement).
 */
#include "bench.h"

enum { N = 1000000 };

static int idle_main(void *arg) {
    (void)arg;
    mote_proc **procs = calloc(N, sizeof *procs);
    if (!procs)
        return 1;
    memset(procs, 0xff, N * sizeof *procs); /* fault the pages in now */
    int64_t before = bench_rss_bytes();
    int64_t spawned = 0;
    for (int64_t i = 0; i < N; i++) {
        bench_ok(mote_spawn(&procs[i], &i, sizeof i, NULL), "mote_spawn");
        spawned += procs[i] != NULL;
    }
    int64_t after = bench_rss_bytes();
    bool ok = bench_check("idle_rss_procs", spawned, N);
    for (int i = 0; i < N; i++)
        mote_proc_release(procs[i]);
    free(procs);
    if (!ok)
        return 1;
    bench_result("idle_rss", "B/proc", (double)(after - before) / N);
    return 0;
}

int main(void) { return bench_run(NULL, idle_main); }
