/*
 * task.c -- running tasks: the worker loop, switching, parking, waking,
 * yielding, and the main task on the main thread.
 *
 * A worker's scheduling loop runs on a lent stack, not on the thread's own.
 * A task without a stack runs its turn right there, as a function call: no
 * switch at all. Only waiting costs switches:
 *
 *   park/yield   the task keeps the stack it runs on (with the loop's frames
 *                under its own) and switches to another loop stack from the
 *                worker's cache, which carries on scheduling;
 *   resume       a loop that picks a suspended task switches to its stack
 *                and waits in the cache until a loop is needed again;
 *   turn over    when the resumed task's turn ends, it returns into the loop
 *                frames under it, and that loop carries on (as the loop of
 *                whichever worker it is on now).
 *
 * So no frames are ever abandoned (but by a panic), which sanitizers' shadow
 * stacks rely on. What must happen only after leaving a stack (parking the
 * task that ran on it, caching the loop stack) is left in w->pend_* and done
 * by post_switch() on the other side.
 *
 * Invariants: a task's state word changes as sched.h and docs/design.md
 * describe; a task becomes PARKED only after its worker left its stack, and
 * only PARKED tasks are queued by wakers. After any switch, the code reads
 * its worker again (cur_worker()): it may resume on another thread.
 */
#include "sched/internal.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>

#define CALL_BUDGET 1024 /* sends in one turn before the sender yields */
#define RUNNEXT_STREAK_MAX 64u /* turns a pair may bounce on runnext */

static void enqueue_on(worker *w, mote__task *t, bool next);
static void enqueue(mote__task *t, bool next);

/* The worker left t's stack after a park: RUNNING -> PARKED, unless a wake
 * came first (NOTIFIED): then it runs again. */
static void finish_park(worker *w, mote__task *t) {
    MOTE_ASSERT_MSG(w->current != t, "a task parks only once its worker left its stack");
    uint64_t old = atomic_load(&t->state);
    for (;;) {
        MOTE_ASSERT_MSG(MOTE__ST(old) == MOTE__RUNNING, "only a running task parks");
        if (old & MOTE__NOTIFIED) { /* woken before it was even parked */
            atomic_store(&t->state, mote__task_word(old, MOTE__QUEUED));
            ctr_add(w, MOTE__CTR_WAKEUPS, 1);
            enqueue_on(w, t, true);
            return;
        }
        if (atomic_compare_exchange_weak(&t->state, &old, mote__task_word(old, MOTE__PARKED)))
            return;
    }
}

/* QUEUED -> RUNNING by the worker that took it. */
static void set_running(mote__task *t) {
    uint64_t st = atomic_load_explicit(&t->state, memory_order_relaxed);
    MOTE_ASSERT_MSG(MOTE__ST(st) == MOTE__QUEUED, "a task runs only once taken from a queue");
    atomic_store_explicit(&t->state, mote__task_word(st, MOTE__RUNNING), memory_order_release);
}

/* RUNNING -> QUEUED by the task's own worker (no waker acts on QUEUED). */
static void mark_queued(mote__task *t, memory_order mo) {
    uint64_t s = atomic_load_explicit(&t->state, memory_order_relaxed);
    MOTE_ASSERT(MOTE__ST(s) == MOTE__RUNNING);
    atomic_store_explicit(&t->state, mote__task_word(s, MOTE__QUEUED), mo);
}

static void requeue(mote__task *t) {
    mark_queued(t, memory_order_release);
    enqueue(t, false);
}

/* A yielder goes to the tail of its worker's queue. It is not new work, so
 * the wake check is opportunistic: missing an idle worker only means the
 * yielder stays here. */
static void requeue_yielder(worker *w, mote__task *t) {
    if (MOTE_UNLIKELY(atomic_load_explicit(&S.stopping, memory_order_relaxed)))
        return;
    mark_queued(t, memory_order_relaxed); /* published by the release push */
    runq_push_mo(w, t, memory_order_release);
    if (atomic_load_explicit(&S.idle.nidle, memory_order_relaxed) &&
        !atomic_load_explicit(&S.idle.nspinning, memory_order_relaxed))
        wakep();
}

/* Finish what the context we came from could not do while on its stack. */
static void post_switch(worker *w) {
    mote__task *t = w->pend_task;
    if (t) {
        w->pend_task = NULL;
        switch (w->pend_reason) {
        case MOTE__SW_PARK:
            finish_park(w, t);
            break;
        case MOTE__SW_YIELD:
            requeue_yielder(w, t);
            break;
        case MOTE__SW_DONE: /* abandoned by a panic */
            stack_put(w, t->stack);
            t->stack = NULL;
            S.hooks.settle(t);
            break;
        }
    }
    if (w->pend_stack) {
        stack_put(w, w->pend_stack);
        w->pend_stack = NULL;
    }
}

static void worker_loop(void *arg);

/* The next task for w's loop, or NULL when the runtime stops or a spare
 * worker retires. Local work first (inlined into the loop); without any,
 * idle.c steals, polls or parks w. */
static mote__task *find_work(worker *w) {
    for (;;) {
        if (atomic_load_explicit(&S.stopping, memory_order_relaxed))
            return NULL;
        mote__task *t = w->handoff;
        if (t) {
            w->handoff = NULL;
            return t;
        }
        if (MOTE_UNLIKELY(w->spare) && mote__spare_retire(w))
            return NULL;
        if ((t = take_fair(w)))
            goto found;
        /* runnext first, unless a pair has been bouncing on it too long. */
        if (w->streak < RUNNEXT_STREAK_MAX || atomic_load(&w->head) == atomic_load(&w->tail)) {
            t = take_runnext(w);
            if (t) {
                w->streak++;
                goto found;
            }
        }
        w->streak = 0;
        if ((t = runq_pop(w)) || (t = global_get(w, RUNQ_SIZE / 2)))
            goto found;
        if ((t = mote__find_elsewhere(w)))
            return t;
        continue;
    found:
        stop_spinning(w);
        return t;
    }
}

/* A stack with a loop ready to run: a cached one (suspended in its loop, or
 * reset), or a new one; NULL if none can be had. */
mote__stack *mote__loop_stack(worker *w) {
    mote__stack *s = stack_get(w);
    if (s && s->dirty)
        mote__ctx_make(s, worker_loop, s);
    return s;
}

static void worker_loop(void *arg) {
    mote__stack *s = arg; /* the stack this loop runs on */
    mote__ctx_entered();
    post_switch(cur_worker());
    for (;;) {
        worker *w = cur_worker(); /* never cached across a turn or a switch */
        mote__task *t = find_work(w);
        if (!t) { /* stopping or retiring: back to the thread's own stack */
            s->dirty = true; /* this loop is over: the stack is reset before reuse */
            w->exit_stack = s;
            mote__ctx_switch(&s->ctx, &w->ctx);
            abort(); /* unreachable: the thread's stack never switches back */
        }
        MOTE_ASSERT_MSG(!w->current, "a worker runs one task at a time");
        set_running(t);
        mon_mark(w, MON_RUN);
        ctr_add(w, MOTE__CTR_TURNS, 1);
        warn_turn_start(w);
        w->current = t;
        trace_turn_start(w);
        /* No trace event here: a turn starts at the thread's previous
         * event (see debug/trace.h), and the loop has just made one. */
        if (t->stack) { /* suspended: resume it, and wait in the cache */
            w->pend_stack = s;
            mote__ctx_switch(&s->ctx, &t->stack->ctx);
            post_switch(cur_worker());
            continue;
        }
        t->stack = s;
        w->calls = 0;
        unsigned ran = S.hooks.entry(t);
        stack_check(t);
        w = cur_worker();
        if (MOTE__TRACE_ON())
            trace_stop(w, t, MOTE__TR_END_DONE);
        ctr_add(w, MOTE__CTR_MSGS_RUN, ran);
        w->current = NULL;
        t->stack = NULL;
        S.hooks.settle(t);
    }
}

static void enqueue(mote__task *t, bool next) {
    enqueue_on(cur_worker(), t, next);
}

/* Queue t from the thread whose worker is w (NULL: not a worker). */
static void enqueue_on(worker *w, mote__task *t, bool next) {
    MOTE_ASSERT_MSG(MOTE__ST(atomic_load_explicit(&t->state, memory_order_relaxed)) == MOTE__QUEUED,
                    "only a QUEUED task goes into a queue");
    if (MOTE_UNLIKELY(atomic_load_explicit(&S.stopping, memory_order_relaxed)))
        return; /* shutting down: nothing runs any more */
    if (MOTE_UNLIKELY(t->flags & MOTE__TASK_MAIN)) {
        atomic_store(&S.main_slot, t);
        mote__wake_worker(S.main);
        return;
    }
    if (w) {
        /* The main thread runs only the main task: what it makes runnable
         * goes to its queue, for the workers to steal. */
        if (next && !w->is_main) {
            t = atomic_exchange(&w->runnext, t);
            if (!t)
                return;
        }
        runq_push(w, t);
    } else {
        mote__global_push(&t, 1);
    }
    wakep();
}

/* ---- The task API ---- */

mote__task *mote__task_current(void) {
    worker *w = cur_worker();
    return w ? w->current : NULL;
}

bool mote__on_runtime_thread(void) {
    return cur_worker() != NULL;
}

bool mote__task_schedule(mote__task *t) {
    uint64_t s = atomic_load(&t->state);
    for (;;) {
        if (MOTE__ST(s) != MOTE__IDLE)
            return false;
        if (atomic_compare_exchange_weak(&t->state, &s, mote__task_word(s, MOTE__QUEUED)))
            break;
    }
    if (MOTE__TRACE_ON())
        trace_wake(cur_worker(), MOTE__TR_SCHED, t);
    enqueue(t, true);
    return true;
}

void mote__task_requeue(mote__task *t) {
    requeue(t);
}

void mote__task_settle_idle(mote__task *t) {
    uint64_t s = atomic_load(&t->state);
    MOTE_ASSERT(MOTE__ST(s) == MOTE__RUNNING);
    atomic_store(&t->state, mote__task_word(s, MOTE__IDLE));
}

uint64_t mote__park_prepare(void) {
    mote__task *t = mote__task_current();
    MOTE_ASSERT_MSG(t != NULL, "only a task parks");
    uint64_t old = atomic_load(&t->state), neu;
    MOTE_ASSERT(MOTE__ST(old) == MOTE__RUNNING);
    do {
        neu = MOTE__TASK_WORD(MOTE__SEQ(old) + 1, MOTE__RUNNING);
    } while (!atomic_compare_exchange_weak(&t->state, &old, neu));
    return MOTE__SEQ(neu);
}

/* Leave the current task's stack for a loop stack; back when the task
 * resumes. -ENOMEM (and no switch) if no loop stack can be had. */
static int switch_out(int reason) {
    worker *w = cur_worker();
    mote__task *t = w->current;
    MOTE_ASSERT(t && t->stack);
    stack_check(t);
    mote__stack *l = NULL; /* the main task goes back to the thread's stack */
    if (MOTE_LIKELY(!w->is_main) && MOTE_UNLIKELY(!(l = mote__loop_stack(w))))
        return -ENOMEM;
    if (reason == MOTE__SW_PARK)
        ctr_add(w, MOTE__CTR_PARKS, 1);
    if (MOTE__TRACE_ON())
        trace_stop(w, t,
                   reason != MOTE__SW_PARK ? MOTE__TR_END_YIELD
                                           : MOTE__TR_END_PARK | (t->stack->wait ? t->stack->wait->kind : 0) << 8);
    if (MOTE_UNLIKELY(mote__warn_ns) && !w->is_main) {
        int64_t ns = mote__now() - w->turn_start;
        if (ns >= mote__warn_ns) /* reported here, on t's stack: the backtrace shows where */
            S.hooks.warn(t, ns, reason == MOTE__SW_PARK ? MOTE__WARN_SUSPEND : MOTE__WARN_YIELD);
    }
    if (MOTE_UNLIKELY(w->is_main)) {
        w->reason = reason;
        mote__ctx_switch(&t->stack->ctx, &w->ctx);
        return 0;
    }
    w->pend_task = t;
    w->pend_reason = reason;
    w->current = NULL;
    mote__ctx_switch(&t->stack->ctx, &l->ctx);
    /* Resumed, maybe on another OS thread: nothing cached above is valid.
     * The loop that resumed us left its stack to post_switch, so this
     * worker's cache holds one for our next park (mote__park_reserve). */
    post_switch(cur_worker());
    return 0;
}

int mote__park(void) {
    return switch_out(MOTE__SW_PARK);
}

int mote__park_reserve(void) {
    worker *w = cur_worker();
    if (!w || w->is_main || w->stacks)
        return 0;
    mote__stack *s = mote__stack_get_slow(w);
    if (!s)
        return -ENOMEM;
    stack_put(w, s);
    return 0;
}

bool mote__task_wake(mote__task *t, uint64_t seq) {
    uint64_t old = atomic_load(&t->state);
    for (;;) {
        if (MOTE__SEQ(old) != seq)
            return false;
        switch (MOTE__ST(old)) {
        case MOTE__PARKED:
            if (atomic_compare_exchange_weak(&t->state, &old, mote__task_word(old, MOTE__QUEUED))) {
                MOTE_ASSERT_MSG(t->stack, "a parked task keeps its stack");
                worker *w = cur_worker(); /* the waker's, if any */
                if (w)
                    ctr_add(w, MOTE__CTR_WAKEUPS, 1);
                else
                    mote__count(MOTE__CTR_WAKEUPS, 1);
                if (MOTE__TRACE_ON())
                    trace_wake(w, MOTE__TR_WAKE, t);
                enqueue_on(w, t, true);
                return true;
            }
            break;
        case MOTE__RUNNING:
            if (old & MOTE__NOTIFIED)
                return false;
            if (atomic_compare_exchange_weak(&t->state, &old, old | MOTE__NOTIFIED)) {
                TRACE_TASK(MOTE__TR_WAKE, t, trace_current(cur_worker()));
                return true; /* counted by finish_park, on the task's worker */
            }
            break;
        default:
            return false;
        }
    }
}

void mote__sched_tick(void) {
    worker *w = cur_worker();
    if (!w) {
        mote__count(MOTE__CTR_MSGS_SENT, 1);
        return;
    }
    ctr_add(w, MOTE__CTR_MSGS_SENT, 1);
    if (!w->current)
        return;
    stack_check(w->current);
    if (!w->is_main && ++w->calls >= CALL_BUDGET) {
        w->calls = 0;
        mote__yield();
    }
}

/* Something else runnable on this worker, without stealing or parking. */
static mote__task *take_local(worker *w) {
    mote__task *t;
    if ((t = take_fair(w)) || (t = take_runnext(w)) || (t = runq_pop(w)))
        return t;
    return global_get(w, RUNQ_SIZE / 2);
}

void mote__yield(void) {
    worker *w = cur_worker();
    mote__task *t = w ? w->current : NULL;
    if (!t) {
        sched_yield();
        return;
    }
    stack_check(t);
    if (w->is_main) {
        (void)switch_out(MOTE__SW_YIELD); /* the main task: cannot fail */
        return;
    }
    if (MOTE_UNLIKELY(atomic_load_explicit(&S.stopping, memory_order_relaxed))) {
        (void)switch_out(MOTE__SW_YIELD); /* let the loop see it and stop */
        return;
    }
    /* A yield needs a loop stack, or the task it resumes may: without
     * one at hand, carry on (a yield is only a hint). */
    if (MOTE_UNLIKELY(!w->stacks) && mote__park_reserve() < 0)
        return;
    mote__task *n = take_local(w);
    if (!n)
        return; /* nobody else here wants this worker: carry on */
    if (!n->stack) { /* it needs a loop to run on */
        w->handoff = n;
        (void)switch_out(MOTE__SW_YIELD); /* cannot fail: a stack is cached */
        return;
    }
    /* Straight to the next suspended task: one switch instead of two. */
    if (MOTE__TRACE_ON())
        trace_stop(w, t, MOTE__TR_END_YIELD);
    if (MOTE_UNLIKELY(mote__warn_ns)) {
        int64_t ns = mote__now() - w->turn_start;
        if (ns >= mote__warn_ns)
            S.hooks.warn(t, ns, MOTE__WARN_YIELD);
    }
    set_running(n);
    mon_mark(w, MON_RUN);
    ctr_add(w, MOTE__CTR_TURNS, 1);
    warn_turn_start(w);
    w->current = n;
    trace_turn_start(w);
    TRACE_W(w, MOTE__TR_RUN, n, 0);
    w->pend_task = t;
    w->pend_reason = MOTE__SW_YIELD;
    mote__ctx_switch(&t->stack->ctx, &n->stack->ctx);
    post_switch(cur_worker());
}

void mote__task_abandon(void) {
    worker *w = cur_worker();
    mote__task *t = w->current;
    t->stack->dirty = true;
    if (MOTE__TRACE_ON())
        trace_stop(w, t, MOTE__TR_END_ABANDON);
    if (w->is_main) { /* not reached: a panicking main process exits */
        w->reason = MOTE__SW_DONE;
        mote__ctx_switch_final(&t->stack->ctx, &w->ctx);
    }
    mote__stack *l = mote__loop_stack(w);
    if (!l) { /* the worker cannot carry on without a stack; nothing to fall back on */
        mote__write_stderr("mote: no stack left for a worker to carry on after a panic; aborting\n");
        abort();
    }
    w->pend_task = t;
    w->pend_reason = MOTE__SW_DONE;
    w->current = NULL;
    mote__ctx_switch_final(&t->stack->ctx, &l->ctx);
}

void mote__task_discard_stack(mote__task *t) {
    if (t->stack && !(t->flags & MOTE__TASK_MAIN)) /* the main one is the scheduler's */
        mote__stack_release(t->stack);
    t->stack = NULL;
}

/* ---- The main task, on the main thread ---- */

static void main_task_entry(void *arg) {
    mote__ctx_entered();
    S.hooks.entry(arg); /* the main function's message ends the program */
    abort(); /* unreachable: it leaves with mote__sched_main_exit */
}

/* The main thread runs only the main task, from its own stack. */
static void run_main_task(worker *w, mote__task *t) {
    uint64_t st = atomic_load_explicit(&t->state, memory_order_relaxed);
    MOTE_ASSERT(MOTE__ST(st) == MOTE__QUEUED && (t->flags & MOTE__TASK_MAIN));
    atomic_store(&t->state, mote__task_word(st, MOTE__RUNNING));
    if (!t->stack) { /* made at start: its own mapping, thread-sized */
        t->stack = S.stacks.main;
        mote__ctx_make(t->stack, main_task_entry, t);
    }
    w->current = t;
    trace_turn_start(w);
    ctr_add(w, MOTE__CTR_TURNS, 1);
    MOTE_TRACE(MOTE__TR_BUSY, 0, 0); /* the main thread waited for it */
    TRACE_W(w, MOTE__TR_RUN, t, 0);
    mote__ctx_switch(&w->ctx, &t->stack->ctx);
    w->current = NULL;
    if (w->reason == MOTE__SW_PARK)
        finish_park(w, t);
    else if (w->reason == MOTE__SW_YIELD)
        requeue(t);
}

void mote__sched_run_main(mote__task *m) {
    worker *w = S.main;
    m->flags |= MOTE__TASK_MAIN;
    atomic_store(&m->state, MOTE__QUEUED);
    atomic_store(&S.main_slot, m);
    while (!atomic_load(&S.main_exit)) {
        atomic_store(&w->sleep, 1);
        MOTE_STORE_LOAD_FENCE();
        mote__task *t = atomic_exchange(&S.main_slot, NULL);
        if (!t) {
            mote__spin_while(&w->sleep, 1, MOTE_SPIN_NS);
            while (atomic_load(&w->sleep) == 1 && !atomic_load(&S.main_slot))
                mote__futex_wait(&w->sleep, 1, -1);
            continue;
        }
        atomic_store(&w->sleep, 0);
        run_main_task(w, t);
    }
}

void mote__sched_main_exit(void) {
    worker *w = cur_worker();
    atomic_store(&S.main_exit, true);
    if (MOTE__TRACE_ON())
        trace_stop(w, w->current, MOTE__TR_END_DONE);
    w->reason = 0; /* run_main_task does nothing more with the main task */
    mote__ctx_switch_final(&w->current->stack->ctx, &w->ctx);
}
