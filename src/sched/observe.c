/*
 * observe.c -- what observers (mote_dump) read of the scheduler: racy
 * views of every worker, taken without stopping anything.
 */
#include "sched/internal.h"

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
