/*
 * metrics.c -- mote_metrics_get and its Prometheus text: the counters of
 * every layer (sched/observe.c sums the workers', timer/ and ctx/ keep
 * theirs), gathered into one struct. A top-layer tool.
 */
#include "proc/proc.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void gather(mote_metrics *m, const mote__sched_counts *c) {
    const uint64_t *n = c->n;
    m->procs_spawned = mote__procs_spawned();
    m->procs_finished = n[MOTE__CTR_FINISHED];
    m->procs_live = m->procs_spawned >= m->procs_finished ? m->procs_spawned - m->procs_finished : 0;
    m->msgs_sent = n[MOTE__CTR_MSGS_SENT];
    m->msgs_run = n[MOTE__CTR_MSGS_RUN];
    m->turns = n[MOTE__CTR_TURNS];
    m->parks = n[MOTE__CTR_PARKS];
    m->wakeups = n[MOTE__CTR_WAKEUPS];
    m->steals = n[MOTE__CTR_STEALS];
    m->worker_sleeps = n[MOTE__CTR_SLEEPS];
    m->busy_ns = c->busy_ns;
    m->workers = c->workers;
    m->poll_waits = n[MOTE__CTR_POLL_WAITS];
    m->poll_events = n[MOTE__CTR_POLL_EVENTS];
    m->blocking_sections = n[MOTE__CTR_SECTIONS];
    m->handoffs = n[MOTE__CTR_HANDOFFS];
    m->backup_threads = c->backup_threads;
    m->backup_workers_active = c->spares_active;
    mote__timer_counts(&m->timers_armed, &m->timers_fired);
    m->stacks_mapped = mote__stacks_mapped();
    m->stacks_cached = c->stacks_cached;
}

int mote_metrics_get(mote_metrics *out) {
    if (!out || out->size < 2 * sizeof(uint32_t))
        return -EINVAL;
    mote__sched_counts c;
    if (!mote__sched_counts_get(&c))
        return -ESHUTDOWN;
    mote_metrics m;
    memset(&m, 0, sizeof m);
    gather(&m, &c);
    size_t size = out->size < sizeof m ? out->size : sizeof m;
    m.size = out->size;
    m.version = MOTE_METRICS_VERSION;
    memcpy(out, &m, size);
    return 0;
}

int mote_metrics_workers(uint64_t *busy_ns, size_t n) {
    if (!busy_ns && n)
        return -EINVAL;
    unsigned total = mote__sched_busy(busy_ns, n > UINT32_MAX ? UINT32_MAX : (unsigned)n);
    return total ? (int)total : -ESHUTDOWN;
}

/* ---- Prometheus text ---- */

enum { GAUGE, COUNTER, SECONDS }; /* SECONDS: a counter kept in ns */

static const struct {
    const char *name;
    int type;
    size_t off;
    const char *help;
} METRICS[] = {
#define F(field) offsetof(mote_metrics, field)
    {"mote_processes", GAUGE, F(procs_live), "Processes alive."},
    {"mote_processes_spawned_total", COUNTER, F(procs_spawned), "Processes spawned."},
    {"mote_processes_finished_total", COUNTER, F(procs_finished), "Processes freed."},
    {"mote_messages_sent_total", COUNTER, F(msgs_sent), "Messages sent."},
    {"mote_messages_run_total", COUNTER, F(msgs_run), "Messages run or received."},
    {"mote_turns_total", COUNTER, F(turns), "Turns: a process started or resumed on a worker."},
    {"mote_parks_total", COUNTER, F(parks), "Processes suspended."},
    {"mote_wakeups_total", COUNTER, F(wakeups), "Suspended processes made runnable."},
    {"mote_steals_total", COUNTER, F(steals), "Times a worker took work from another."},
    {"mote_worker_sleeps_total", COUNTER, F(worker_sleeps), "Times a worker went idle."},
    {"mote_busy_seconds_total", SECONDS, F(busy_ns), "Time workers were not idle, summed over workers."},
    {"mote_workers", GAUGE, F(workers), "Worker threads."},
    {"mote_poll_waits_total", COUNTER, F(poll_waits), "Waits in the poller that could block."},
    {"mote_poll_events_total", COUNTER, F(poll_events), "Readiness events from the poller."},
    {"mote_blocking_sections_total", COUNTER, F(blocking_sections), "Blocking sections."},
    {"mote_handoffs_total", COUNTER, F(handoffs), "Backup workers started for stalled workers."},
    {"mote_backup_threads", GAUGE, F(backup_threads), "Backup threads started."},
    {"mote_backup_workers_active", GAUGE, F(backup_workers_active), "Backup workers running now."},
    {"mote_timers_armed_total", COUNTER, F(timers_armed), "Timers armed."},
    {"mote_timers_fired_total", COUNTER, F(timers_fired), "Timers fired."},
    {"mote_stacks_mapped", GAUGE, F(stacks_mapped), "Process stacks mapped."},
    {"mote_stacks_cached", GAUGE, F(stacks_cached), "Process stacks mapped and free."},
#undef F
};

/* snprintf into buf, counting what would have been written. */
typedef struct text {
    char *buf;
    size_t len, n;
} text;

MOTE_PRINTF(2, 3) static void put(text *t, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    size_t room = t->n < t->len ? t->len - t->n : 0;
    int k = vsnprintf(room ? t->buf + t->n : NULL, room, fmt, ap);
    va_end(ap);
    if (k > 0)
        t->n += (size_t)k;
}

static void head(text *t, const char *name, const char *type, const char *help) {
    put(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

int64_t mote_metrics_prometheus(char *buf, size_t len) {
    if (!buf && len)
        return -EINVAL;
    mote_metrics m = {.size = sizeof m};
    int r = mote_metrics_get(&m);
    if (r < 0)
        return r;
    size_t cap = m.workers + 1;
    uint64_t *busy = malloc(cap * sizeof *busy);
    if (!busy)
        return -ENOMEM;
    int nb = mote_metrics_workers(busy, cap);
    text t = {buf, len, 0};
    if (len)
        buf[0] = '\0';
    for (size_t i = 0; i < sizeof METRICS / sizeof *METRICS; i++) {
        uint64_t v;
        memcpy(&v, (const char *)&m + METRICS[i].off, sizeof v);
        head(&t, METRICS[i].name, METRICS[i].type == GAUGE ? "gauge" : "counter", METRICS[i].help);
        if (METRICS[i].type == SECONDS)
            put(&t, "%s %.9f\n", METRICS[i].name, (double)v / 1e9);
        else
            put(&t, "%s %llu\n", METRICS[i].name, (unsigned long long)v);
    }
    if (nb > 0) {
        head(&t, "mote_worker_busy_seconds_total", "counter",
             "Time each worker was not idle (\"backup\": all backup workers).");
        for (int i = 0; i < nb && i < (int)cap; i++) {
            if (i + 1 == nb)
                put(&t, "mote_worker_busy_seconds_total{worker=\"backup\"} %.9f\n", (double)busy[i] / 1e9);
            else
                put(&t, "mote_worker_busy_seconds_total{worker=\"%d\"} %.9f\n", i, (double)busy[i] / 1e9);
        }
    }
    free(busy);
    return (int64_t)t.n;
}
