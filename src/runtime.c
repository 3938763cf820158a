/*
 * runtime.c -- mote_run: configuration, start-up and shutdown. The top
 * layer: it wires the scheduler to the process layer and owns the order in
 * which subsystems start and stop.
 *
 * The configuration is resolved here, once and completely (the caller's
 * mote_config, else the environment variable, else the default; then the
 * bounds): the layers below receive only final values.
 */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "base/alloc.h"
#include "io/internal.h"
#include "poll/poller.h"

#define MAX_THREADS 1024
#define DEFAULT_STACK_SIZE (256 * 1024)
#define MIN_STACK_SIZE (16 * 1024) /* smaller requests are raised to it */
#define MAX_STACK_SIZE ((size_t)1 << 30) /* 1 GiB per process stack is surely a mistake */
#define DEFAULT_MSG_BUDGET 64
#define BACKUP_THREADS_PER_THREAD 4 /* the default: 4 x threads */
#define MAX_BACKUP_THREADS 4096
#define DEFAULT_BLOCKING_THRESHOLD MOTE_USEC(100)
#define MIN_BLOCKING_THRESHOLD MOTE_USEC(1)
#define MAX_BLOCKING_THRESHOLD MOTE_SEC(10)
#define DEFAULT_NETPOLL_THREADS 1
#define MAX_WARN_BLOCKING_MS 3600000 /* an hour: more is surely a mistake */
#define DEFAULT_MAX_MAP_COUNT 65530 /* Linux's, when /proc cannot tell */
#define STACK_MAPS_SHARE 2          /* stacks may map max_map_count / 2 VMAs */
#define STACK_GUARDS_SHARE 8        /* guarded stacks: max_map_count / 8 (2 VMAs each) */
#define DEFAULT_STOP_GRACE MOTE_SEC(5)

/* Every setting of a runtime, final. */
typedef struct rt_config {
    mote__sched_config sched; /* threads, stack_size, backup_threads, blocking_threshold */
    unsigned msg_budget;
    unsigned netpoll_threads;
    int64_t stop_grace;
} rt_config;

void mote__dump_start(void); /* debug/dump.c */
void mote__trace_start_env(void); /* debug/trace.c */
void mote__trace_shutdown(void);
void mote__dump_stop(void);
void mote__symbols_release(void); /* debug/symbol.c */

static _Atomic bool rt_busy;

/* Who decided the stop, in the low byte: nobody yet, mote_stop (its
 * status in the upper bits, set by the same CAS), or main returning. */
enum { STOP_NONE, STOP_ASKED, STOP_MAIN };
static _Atomic uint64_t rt_stop;

int mote_stop(int status) {
    if (!mote__sched_running())
        return -ESHUTDOWN;
    uint64_t none = STOP_NONE, asked = (uint64_t)(uint32_t)status << 8 | STOP_ASKED;
    if (atomic_compare_exchange_strong(&rt_stop, &none, asked))
        mote__proc_cancel_main(); /* main is told first */
    return 0;
}

/* CPUs in the affinity mask (or online), at least 1. */
static unsigned default_threads(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0)
            return (unsigned)n;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

/* vm.max_map_count: the VMAs a process may have. */
static size_t max_map_count(void) {
    size_t n = 0;
    FILE *f = fopen("/proc/sys/vm/max_map_count", "re");
    if (f) {
        unsigned long v;
        if (fscanf(f, "%lu", &v) == 1)
            n = v;
        fclose(f);
    }
    return n ? n : DEFAULT_MAX_MAP_COUNT;
}

/* A setting: the caller's value, else the environment's, else def. */
static size_t setting(size_t given, const char *env, size_t def) {
    return given ? given : mote__env_size(env, def);
}

/* Fill out from c (the caller's config, zeroes meaning "not set"). Returns
 * 0, or -EINVAL if a value is out of bounds. */
static int config_resolve(const mote_config *c, rt_config *out) {
    mote__sched_config *s = &out->sched;
    s->threads = (unsigned)setting(c->threads, "MOTE_THREADS", 0);
    if (!s->threads)
        s->threads = default_threads();
    if (s->threads > MAX_THREADS)
        return -EINVAL;

    size_t stack = setting(c->stack_size, "MOTE_STACK_SIZE", DEFAULT_STACK_SIZE);
    if (stack > MAX_STACK_SIZE)
        return -EINVAL;
    if (stack < MIN_STACK_SIZE)
        stack = MIN_STACK_SIZE;
    size_t page = mote__page_size();
    s->stack_size = (stack + page - 1) & ~(page - 1);

    /* Stack mappings (sched/stack.c): internal knobs, for tests and for
     * a program that maps a lot itself. */
    size_t maps = max_map_count();
    s->stack_maps = (unsigned)mote__env_size("MOTE_STACK_MAPS", maps / STACK_MAPS_SHARE);
    s->stack_guards = (unsigned)mote__env_size("MOTE_STACK_GUARDS", maps / STACK_GUARDS_SHARE);

    size_t backups = setting(c->backup_threads, "MOTE_BACKUP_THREADS",
                             BACKUP_THREADS_PER_THREAD * (size_t)s->threads);
    if (backups > MAX_BACKUP_THREADS)
        return -EINVAL;
    s->backup_threads = (unsigned)backups;

    if (c->blocking_threshold < 0)
        return -EINVAL;
    s->blocking_threshold = (int64_t)setting((size_t)c->blocking_threshold, "MOTE_BLOCKING_THRESHOLD",
                                             (size_t)DEFAULT_BLOCKING_THRESHOLD);
    if (s->blocking_threshold < MIN_BLOCKING_THRESHOLD || s->blocking_threshold > MAX_BLOCKING_THRESHOLD)
        return -EINVAL;

    /* MOTE_WARN_BLOCKING=ms: report sections and turns that long (debug). */
    size_t warn_ms = mote__env_size("MOTE_WARN_BLOCKING", 0);
    if (warn_ms > (size_t)MAX_WARN_BLOCKING_MS)
        return -EINVAL;
    s->warn_blocking = MOTE_MSEC((int64_t)warn_ms);

    out->msg_budget = (unsigned)setting(c->msg_budget, "MOTE_MSG_BUDGET", DEFAULT_MSG_BUDGET);
    if (!out->msg_budget)
        out->msg_budget = DEFAULT_MSG_BUDGET;

    out->netpoll_threads = (unsigned)setting(c->netpoll_threads, "MOTE_NETPOLL_THREADS",
                                             DEFAULT_NETPOLL_THREADS);
    if (out->netpoll_threads > MOTE__NETPOLL_THREADS_MAX)
        return -EINVAL;
    if (!out->netpoll_threads)
        out->netpoll_threads = DEFAULT_NETPOLL_THREADS;

    if (c->stop_grace < 0)
        return -EINVAL;
    out->stop_grace = (int64_t)setting((size_t)c->stop_grace, "MOTE_STOP_GRACE", (size_t)DEFAULT_STOP_GRACE);

    /* MOTE_POLLER: a backend that is not built fails here, not at the
     * first descriptor wait. */
    if (!mote__poller_choose())
        return -EINVAL;
    return 0;
}

/* For a failed assertion (MOTE_ASSERT): what runs on this thread. */
static void describe_thread(char *buf, size_t len) {
    mote_proc *p = mote__proc_self();
    if (p)
        snprintf(buf, len, "  in process %llu\n", (unsigned long long)p->id);
    else
        snprintf(buf, len, "  outside any process (%s)\n",
                 mote__on_runtime_thread() ? "a worker between processes" : "not a worker thread");
}

int mote_run(const mote_config *cfg, mote_main_fn main, void *arg) {
    if (!main)
        return -EINVAL;
    mote_config c = {0};
    if (cfg)
        c = *cfg;
    bool expect = false;
    if (!atomic_compare_exchange_strong(&rt_busy, &expect, true))
        return -EBUSY;

    /* A write to a closed socket or pipe must return EPIPE, not kill us. */
    signal(SIGPIPE, SIG_IGN);
    mote__assert_where = describe_thread;

    rt_config rc;
    int r = config_resolve(&c, &rc);
    if (r < 0)
        goto out;
    mote__proc_set_budget(rc.msg_budget);
    mote__netpoll_configure(rc.netpoll_threads);
    atomic_store(&rt_stop, STOP_NONE);
    r = mote__timer_start();
    if (r < 0)
        goto out;
    r = mote__sched_start(&rc.sched, &mote__proc_hooks);
    if (r < 0) {
        mote__timer_stop();
        goto out;
    }
    mote__dump_start();
    mote__trace_start_env();
    int result = 0;
    mote_proc *mp;
    r = mote__proc_spawn_main(&mp, main, arg, &result);
    if (r == 0) {
        mote__sched_run_main(&mp->task);
        uint64_t stop = STOP_NONE;
        bool asked = !atomic_compare_exchange_strong(&rt_stop, &stop, STOP_MAIN);
        r = asked ? (int)(uint32_t)(stop >> 8) : result;
        /* Processes end through their own code while everything runs. */
        mote__proc_shutdown(asked, rc.stop_grace);
    }
    /* Order matters: timers stop firing first (a fire queues a task, and
     * the scheduler frees its queues); then the workers stop (a running
     * process may still arm a timer: it never fires); then the timer
     * thread; only then are processes, stacks and futures freed. */
    mote__dump_stop(); /* first: a dump reads the workers and processes */
    mote__timer_halt();
    mote__sched_stop();
    mote__stdio_shutdown();
    mote__netpoll_stop();
    mote__signal_shutdown(); /* before the processes are freed: waits live on their stacks */
    mote__child_shutdown();
    mote__timer_stop();
    mote__trace_shutdown(); /* every thread that traces has stopped */
    mote__proc_reap_all();
    mote__sched_free_stacks();
    mote__futures_reap_all();
    mote__alloc_release_all();
    mote__symbols_release();
out:
    atomic_store(&rt_busy, false);
    return r;
}

unsigned mote_threads(void) {
    return mote__sched_threads();
}
