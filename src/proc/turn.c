/*
 * turn.c -- a process as the scheduler runs it: the hooks that run a turn
 * of messages and settle the process after it (proc.h: the scheduled
 * reference), the end of a cancelled process between messages, panics,
 * MOTE_WARN_BLOCKING reports and the stack-overflow text.
 */
#include "proc/proc.h"
#include "debug/symbol.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Messages per turn: set by the runtime before the scheduler starts. */
static unsigned budget_per_turn;

void mote__proc_set_budget(unsigned budget) {
    budget_per_turn = budget;
}

static void warn_message(mote_proc *p, mote_msg_fn fn);

/* Cancelled, and not yet dead: its turn must end it. Not the main
 * process: a cancel (mote_stop) only makes its waits fail; it ends when
 * main returns. Not before a mote_spawn_fn process's fn has run. */
static bool end_due(mote_proc *p) {
    return (atomic_load(&p->flags) & (MOTE__P_CANCEL | MOTE__P_DEAD | MOTE__P_START)) ==
               MOTE__P_CANCEL &&
           !(p->task.flags & MOTE__TASK_MAIN);
}

/* A cancel takes effect between messages, never inside one: the handler
 * saw -ECANCELED from its waits and returned. */
static void end_cancelled(mote_proc *p) {
    unsigned why = MOTE__P_WHY(atomic_load(&p->flags));
    mote__proc_end(p,
                   why == MOTE__CANCEL_SHUTDOWN ? MOTE_EXIT_SHUTDOWN
                   : why == MOTE__CANCEL_FAIL   ? MOTE_EXIT_PANIC
                                                : MOTE_EXIT_CANCELLED,
                   true);
}

/* Before each message (a cancelled process runs no more of them; the
 * one popped is then cancelled by mote__msg_run), and at the end of the
 * turn (a cancel that came while the process was idle, or during its last
 * message). Returns how many messages it ran (for the counters). */
static unsigned proc_entry(mote__task *t) {
    mote_proc *p = (mote_proc *)t;
    MOTE_ASSERT_MSG(!p->cur, "a turn starts with no message in flight");
    unsigned budget = budget_per_turn;
    mote__msg *m;
    while (budget && (m = mote__mbox_pop(p))) {
        if (MOTE_UNLIKELY(atomic_load_explicit(&p->flags, memory_order_relaxed) & MOTE__P_CANCEL) &&
            end_due(p))
            end_cancelled(p);
        mote_msg_fn fn = m->fn; /* m is freed by the run */
        mote__msg_run(p, m);
        budget--;
        if (MOTE_UNLIKELY(mote__warn_ns))
            warn_message(p, fn);
    }
    if (MOTE_UNLIKELY(atomic_load_explicit(&p->flags, memory_order_relaxed) & MOTE__P_CANCEL) &&
        end_due(p))
        end_cancelled(p);
    return budget_per_turn - budget;
}

static void proc_settle(mote__task *t) {
    mote_proc *p = (mote_proc *)t;
    MOTE_ASSERT_MSG(!p->cur, "a turn ends with no message in flight");
    if (mote__mbox_nonempty(p)) { /* budget used up: to the back of the queue */
        mote__task_requeue(t);
        return;
    }
    mote__task_settle_idle(t);
    MOTE_STORE_LOAD_FENCE();
    /* Re-check after publishing IDLE: a sender or a canceller may have seen
     * us RUNNING (a cancel that came since the end of the turn is found
     * here too, and the next turn ends the process). Only the inbox: fifo
     * was empty, and once IDLE the process may already run elsewhere, so
     * its private fields are not ours to read. */
    if ((atomic_load(&p->inbox) || ((atomic_load(&p->flags) & MOTE__P_CANCEL) && end_due(p))) &&
        mote__task_schedule(t))
        return; /* keeps the scheduled reference */
    uint32_t held = atomic_fetch_sub(&p->refs, 1);
    MOTE_ASSERT_MSG(held > 0, "the scheduled reference is held until here");
    if (held == 1)
        mote__proc_destroy(p);
}

static char *fmt_u64(char *dst, uint64_t v) {
    char tmp[24];
    int n = 0;
    do
        tmp[n++] = (char)('0' + v % 10);
    while ((v /= 10));
    while (n)
        *dst++ = tmp[--n];
    return dst;
}

static char *fmt_str(char *dst, const char *s) {
    while (*s)
        *dst++ = *s++;
    return dst;
}

/* ---- MOTE_WARN_BLOCKING ---- */

typedef struct warn_report {
    mote_proc *p;
    int64_t ns;
    int kind;
    mote_msg_fn fn;
    void *pcs[48];
    int n;
} warn_report;

static void warn_print(void *arg) {
    warn_report *r = arg;
    mote__out o;
    mote__out_init(&o, 2);
    char name[MOTE_NAME_MAX], fn[512] = "";
    mote__proc_name(r->p, name, sizeof name);
    mote__out_printf(&o, "mote: process %llu%s%s%s ", (unsigned long long)r->p->id, *name ? " (" : "", name,
                     *name ? ")" : "");
    double ms = (double)r->ns / 1e6, limit = (double)mote__warn_ns / 1e6;
    switch (r->kind) {
    case MOTE__WARN_SECTION:
        mote__out_printf(&o, "spent %.1f ms in a blocking section (MOTE_WARN_BLOCKING=%.0f); it ended here:\n", ms,
                         limit);
        break;
    case MOTE__WARN_MESSAGE:
        mote__symbol_name((const void *)r->fn, fn, sizeof fn);
        mote__out_printf(&o, "ran %.1f ms in one turn (MOTE_WARN_BLOCKING=%.0f), up to the end of message %s\n", ms,
                         limit, fn);
        break;
    default:
        mote__out_printf(&o, "ran %.1f ms in one turn (MOTE_WARN_BLOCKING=%.0f), until it %s here:\n", ms, limit,
                         r->kind == MOTE__WARN_SUSPEND ? "suspended" : "yielded");
    }
    if (r->n) {
        /* A suspension's stack starts in mote's own machinery: from the
         * call into mote's API on. A section's starts in the caller. */
        int first = r->kind == MOTE__WARN_SECTION ? 0 : mote__frames_first_public(r->pcs, r->n);
        mote__frames_print(&o, "  ", r->pcs + first, r->n - first, false);
    }
    mote__out_flush(&o);
}

/* Report once per process: the first report wins. Not inlined, and
 * called not as a tail call: the backtrace leaves out exactly its own
 * frame and its caller's. */
static MOTE_NOINLINE void warn_report_once(mote_proc *p, int64_t ns, int kind, mote_msg_fn fn, bool backtrace) {
    if (atomic_fetch_or(&p->flags, MOTE__P_WARNED) & MOTE__P_WARNED)
        return;
    warn_report r = {p, ns, kind, fn, {0}, 0};
    if (backtrace) /* this stack, from the caller of the hook (proc_warn) on */
        r.n = mote__backtrace_here(r.pcs, 48, 2);
    /* Symbolising needs more stack than a process may have left. */
    mote__run_on_thread(warn_print, &r);
}

static MOTE_NOINLINE void warn_message(mote_proc *p, mote_msg_fn fn) {
    int64_t ns = mote__turn_elapsed();
    if (ns >= mote__warn_ns && fn)
        warn_report_once(p, ns, MOTE__WARN_MESSAGE, fn, false);
}

static MOTE_NOINLINE void proc_warn(mote__task *t, int64_t ns, int kind) {
    warn_report_once((mote_proc *)t, ns, kind, NULL, true);
    __asm__ __volatile__("" ::: "memory"); /* keeps this frame (no tail call) */
}

/* Async-signal-safe (called from the SIGSEGV handler). */
static void proc_describe(mote__task *t, char *buf, size_t len) {
    (void)len; /* the text below is bounded well under 256 bytes */
    mote_proc *p = (mote_proc *)t;
    char *d = fmt_str(buf, "mote: process ");
    d = fmt_u64(d, p->id);
    /* The name without its lock (this thread may hold it): at worst a
     * name being changed shows mixed up. */
    mote__proc_ext *e = mote__proc_ext_of(p);
    if (e && e->name[0]) {
        d = fmt_str(d, " (");
        for (size_t i = 0; i < MOTE_NAME_MAX - 1 && e->name[i]; i++)
            *d++ = e->name[i];
        d = fmt_str(d, ")");
    }
    d = fmt_str(d, " overflowed its stack (");
    d = fmt_u64(d, t->stack ? t->stack->ctx.size : 0);
    d = fmt_str(d, " bytes; set MOTE_STACK_SIZE for more); aborting\n");
    *d = '\0';
}

const mote__sched_hooks mote__proc_hooks = {
    .warn = proc_warn,
    .entry = proc_entry,
    .settle = proc_settle,
    .describe = proc_describe,
};

/* ---- Panics ---- */

int mote_on_panic(mote_panic_fn fn, void *ctx) {
    mote_proc *p = mote__proc_self();
    if (!p)
        return -EPERM;
    /* Also once ended (a mote_spawn_fn process whose fn returned still
     * serves calls). */
    mote__proc_ext *e = mote__proc_ext_any(p);
    if (!e)
        return -ENOMEM;
    e->panic_fn = fn;
    e->panic_ctx = ctx;
    return 0;
}

typedef struct panic_report {
    mote_proc *p;
    const char *msg;
    void *pcs[64];
    int n;
} panic_report;

static void panic_print(void *arg) {
    panic_report *r = arg;
    static mote__out o; /* not on a stack that may be small */
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&lock); /* one report at a time; never unlocked: we exit */
    mote__out_init(&o, 2);
    if (r->p) {
        char name[MOTE_NAME_MAX];
        mote__proc_name(r->p, name, sizeof name);
        mote__out_printf(&o, "mote: process %llu%s%s%s panicked: %s\n", (unsigned long long)r->p->id,
                         *name ? " (" : "", name, *name ? ")" : "", r->msg);
        if (r->p->cur) {
            char fn[512];
            mote__symbol_name((const void *)r->p->cur->fn, fn, sizeof fn);
            mote__out_printf(&o, "  while running message %s\n", fn);
        }
    } else {
        mote__out_printf(&o, "mote: panic outside any process: %s\n", r->msg);
    }
    mote__out_printf(&o, "backtrace (innermost call first):\n");
    mote__frames_print(&o, "  ", r->pcs, r->n, false);
    mote__out_flush(&o);
}

void mote_panic(const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt ? fmt : "(null)", ap);
    va_end(ap);
    mote_proc *p = mote__proc_self();
    mote__proc_ext *e = p ? mote__proc_ext_of(p) : NULL;
    if (e && e->panic_fn) {
        e->panic_fn(msg, e->panic_ctx);
        if (p->task.flags & MOTE__TASK_MAIN) {
            fflush(stdout);
            _exit(101); /* the main process ending ends the program */
        }
        /* Only this process ends; its monitors get the message. */
        if (!e->exit_text)
            e->exit_text = strdup(msg);
        mote__proc_end(p, MOTE_EXIT_PANIC, true);
        mote__task_abandon();
    }
    panic_report r = {p, msg, {0}, 0};
    r.n = mote__backtrace_here(r.pcs, 64, 0);
    fflush(stdout);
    /* Symbolising needs more stack than a small process stack may have
     * left: print from a thread of its own. */
    mote__run_on_thread(panic_print, &r);
    _exit(101);
}
