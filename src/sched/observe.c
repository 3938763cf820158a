/*
 * observe.c -- what observers read of the scheduler, without stopping
 * anything: racy views of every worker (mote_dump) and the counters
 * (mote_metrics_get), summed over the workers' own and the shared ones.
 */
#include "sched/internal.h"

#include <string.h>

int64_t mote__warn_ns;

int64_t mote__turn_elapsed(void) {
    worker *w = cur_worker();
    return mote__warn_ns && w && !w->is_main ? mote__now() - w->turn_start : 0;
}

/* Counts made outside any worker (foreign, timer, poller, monitor threads). */
static _Atomic uint64_t shared_ctr[MOTE__CTR_N];

void mote__count(unsigned c, uint64_t n) {
#ifdef MOTE_NO_HOOKS /* see debug/trace.h */
    return;
#endif
    worker *w = cur_worker();
    if (w)
        ctr_add(w, c, n);
    else
        atomic_fetch_add_explicit(&shared_ctr[c], n, memory_order_relaxed);
}

void mote__busy_mark(worker *w, bool busy) {
#ifdef MOTE_NO_HOOKS
    return;
#endif
    int64_t now = mote__now();
    uint32_t seq = atomic_load_explicit(&w->ctr.busy_seq, memory_order_relaxed);
    atomic_store_explicit(&w->ctr.busy_seq, seq + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    int64_t since = atomic_load_explicit(&w->ctr.busy_since, memory_order_relaxed);
    if (!busy && since) {
        int64_t total = atomic_load_explicit(&w->ctr.busy_ns, memory_order_relaxed);
        atomic_store_explicit(&w->ctr.busy_ns, total + (now - since), memory_order_relaxed);
    }
    atomic_store_explicit(&w->ctr.busy_since, busy ? now : 0, memory_order_relaxed);
    atomic_store_explicit(&w->ctr.busy_seq, seq + 2, memory_order_release);
}

/* w's busy time up to now: a consistent pair read under its sequence. */
static uint64_t busy_read(worker *w, int64_t now) {
    for (;;) {
        uint32_t s1 = atomic_load_explicit(&w->ctr.busy_seq, memory_order_acquire);
        int64_t total = atomic_load_explicit(&w->ctr.busy_ns, memory_order_relaxed);
        int64_t since = atomic_load_explicit(&w->ctr.busy_since, memory_order_relaxed);
        atomic_thread_fence(memory_order_acquire);
        if (s1 % 2 == 0 && atomic_load_explicit(&w->ctr.busy_seq, memory_order_relaxed) == s1)
            return (uint64_t)(total + (since && now > since ? now - since : 0));
        mote__cpu_relax();
    }
}

static unsigned all_workers(void) {
    return S.cfg.threads + 1 + S.cfg.backup_threads;
}

bool mote__sched_counts_get(mote__sched_counts *out) {
    memset(out, 0, sizeof *out);
    if (!atomic_load(&S.running))
        return false;
    int64_t now = mote__now();
    for (unsigned c = 0; c < MOTE__CTR_N; c++)
        out->n[c] = atomic_load_explicit(&shared_ctr[c], memory_order_relaxed);
    unsigned total = all_workers();
    for (unsigned i = 0; i < total; i++) {
        worker *w = &S.w[i];
        for (unsigned c = 0; c < MOTE__CTR_N; c++)
            out->n[c] += atomic_load_explicit(&w->ctr.n[c], memory_order_relaxed);
        if (!w->is_main)
            out->busy_ns += busy_read(w, now);
        MOTE_RACY_BEGIN(); /* the owner's count: at worst a moment old */
        out->stacks_cached += w->nstacks;
        MOTE_RACY_END();
    }
    out->workers = S.cfg.threads;
    pthread_mutex_lock(&S.stacks.lock);
    out->stacks_cached += S.stacks.guarded.n + S.stacks.warm.n;
    pthread_mutex_unlock(&S.stacks.lock);
    pthread_mutex_lock(&S.backups.lock);
    out->backup_threads = S.backups.count;
    pthread_mutex_unlock(&S.backups.lock);
    int active = atomic_load(&S.mon.nactive) - (int)S.cfg.threads;
    out->spares_active = active > 0 ? (uint64_t)active : 0;
    return true;
}

unsigned mote__sched_busy(uint64_t *busy_ns, unsigned max) {
    if (!atomic_load(&S.running))
        return 0;
    int64_t now = mote__now();
    unsigned n = S.cfg.threads, total = all_workers();
    uint64_t spares = 0;
    for (unsigned i = 0; i < total; i++) {
        worker *w = &S.w[i];
        if (w->is_main)
            continue;
        uint64_t b = busy_read(w, now);
        if (w->spare)
            spares += b;
        else if (i < max)
            busy_ns[i] = b;
    }
    if (n < max)
        busy_ns[n] = spares;
    return n + 1;
}

/* Shared counters start at zero with each runtime. */
void mote__counts_reset(void) {
    for (unsigned c = 0; c < MOTE__CTR_N; c++)
        atomic_store(&shared_ctr[c], 0);
}

unsigned mote__sched_workers(mote__worker_view *out, unsigned max) {
    if (!atomic_load(&S.running))
        return 0;
    unsigned total = S.cfg.threads + 1 + S.cfg.backup_threads;
    for (unsigned i = 0; i < total && i < max; i++) {
        worker *w = &S.w[i];
        mote__worker_view *v = &out[i];
        v->id = w->id;
        v->kind = w->is_main ? MOTE__WK_MAIN : w->spare ? MOTE__WK_BACKUP : MOTE__WK_WORKER;
        MOTE_RACY_BEGIN(); /* the owner's field: at worst a moment old */
        v->current = w->current;
        MOTE_RACY_END();
        uint32_t m = atomic_load_explicit(&w->mon, memory_order_relaxed), act = m & MON_ACTIVITY;
        v->activity = act == MON_BLOCK ? MOTE__ACT_BLOCK : act == MON_RUN ? MOTE__ACT_RUN : MOTE__ACT_IDLE;
        if (w->is_main) /* the main thread keeps no monitor word */
            v->activity = v->current ? MOTE__ACT_RUN : MOTE__ACT_IDLE;
        if (w->spare && !atomic_load(&w->active))
            v->activity = MOTE__ACT_OFF;
        /* The monitor's first sighting of this very turn or section, if
         * it has seen it yet (it samples every 20 us to 1 ms). */
        bool seen = atomic_load_explicit(&w->mon_seen, memory_order_acquire) == m;
        v->since = seen ? atomic_load_explicit(&w->mon_since, memory_order_relaxed) : 0;
    }
    return total;
}
