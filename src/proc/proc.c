/*
 * proc.c -- processes: spawn, lifetime, mailboxes, running messages, sends,
 * calls, Erlang-style receive, panics, shutdown reaping. The invariants
 * (mailbox order, the scheduled reference, who frees a process) are in
 * proc.h.
 */
#include "proc/proc.h"
#include "base/alloc.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PREG_SHARDS 16
#define MAX_STATE ((size_t)1 << 30)
#define MAX_ARG ((size_t)1 << 30)

static struct {
    unsigned budget; /* messages per turn: set by the runtime before it starts */
    _Atomic uint64_t next_id;
    struct {
        mote__spinlock lock;
        mote_proc *head;
    } reg[PREG_SHARDS];
} P = {.next_id = 1};

void mote__proc_set_budget(unsigned budget) {
    P.budget = budget;
}

mote_proc *mote__proc_self(void) {
    return (mote_proc *)mote__task_current();
}

/* ---- Allocation and the registry (for shutdown) ---- */

static mote_proc *proc_alloc(size_t size) {
    mote_proc *p = mote__alloc(sizeof(mote_proc) + size);
    if (!p)
        return NULL;
    memset(p, 0, sizeof *p);
    p->task.aux = (uint32_t)size;
    p->id = atomic_fetch_add_explicit(&P.next_id, 1, memory_order_relaxed);
    unsigned s = (unsigned)(p->id % PREG_SHARDS);
    mote__spin_lock(&P.reg[s].lock);
    p->reg_next = P.reg[s].head;
    if (p->reg_next)
        p->reg_next->reg_prev = p;
    P.reg[s].head = p;
    mote__spin_unlock(&P.reg[s].lock);
    return p;
}

static void preg_remove(mote_proc *p) {
    unsigned s = (unsigned)(p->id % PREG_SHARDS);
    mote__spin_lock(&P.reg[s].lock);
    if (p->reg_prev)
        p->reg_prev->reg_next = p->reg_next;
    else
        P.reg[s].head = p->reg_next;
    if (p->reg_next)
        p->reg_next->reg_prev = p->reg_prev;
    mote__spin_unlock(&P.reg[s].lock);
}

static void run_dtor(mote_proc *p) {
    if (atomic_fetch_or(&p->flags, MOTE__P_DTOR_DONE) & MOTE__P_DTOR_DONE)
        return;
    if (p->dtor)
        p->dtor(p->state);
}

static void cancel_mailbox(mote_proc *p) {
    mote__msg *m;
    while ((m = mote__mbox_pop(p)))
        mote__msg_cancel(m);
}

/* The process's extension, made on first use by the process itself. */
static mote__proc_ext *proc_ext(mote_proc *p) {
    if (!p->ext) {
        p->ext = calloc(1, sizeof *p->ext);
        if (p->ext)
            mote__deadline_init(&p->ext->deadline, &p->task);
    }
    return p->ext;
}

mote__deadline *mote__task_deadline(mote__task *t) {
    mote__proc_ext *x = proc_ext((mote_proc *)t); /* a task is a process's first member */
    return x ? &x->deadline : NULL;
}

/* Free a process nobody can reach any more. */
static void proc_destroy(mote_proc *p) {
    cancel_mailbox(p);
    run_dtor(p);
    preg_remove(p);
    if (p->ext) /* final: a fire under way finishes first */
        mote__timer_cancel(&p->ext->deadline.timer);
    free(p->ext);
    mote__free(p, sizeof(mote_proc) + p->task.aux);
}

/* ---- Messages ---- */

static void msg_free(mote__msg *m) {
    if (m)
        mote__free(m, sizeof(mote__msg) + m->size);
}

static mote__msg *msg_new(mote_msg_fn fn, const void *arg, size_t size) {
    mote__msg *m = mote__alloc(sizeof(mote__msg) + size);
    if (!m)
        return NULL;
    m->next = NULL;
    m->fn = fn;
    m->fut = NULL;
    m->size = (uint32_t)size;
    if (size && arg)
        memcpy(m->data, arg, size);
    return m;
}

void mote__msg_cancel(mote__msg *m) {
    if (m->fut)
        mote__future_complete(m->fut, mote_error(-ECANCELED));
    msg_free(m);
}

mote__msg *mote__mbox_pop(mote_proc *p) {
    mote__msg *m = p->fifo;
    if (!m) {
        m = atomic_exchange(&p->inbox, NULL);
        if (!m)
            return NULL;
        /* The inbox is newest-first: reverse it into send order. */
        mote__msg *rev = NULL;
        while (m) {
            mote__msg *next = m->next;
            m->next = rev;
            rev = m;
            m = next;
        }
        m = rev;
    }
    p->fifo = m->next;
    return m;
}

bool mote__mbox_nonempty(mote_proc *p) {
    return p->fifo || atomic_load(&p->inbox);
}

void mote__msg_run(mote_proc *p, mote__msg *m) {
    if (atomic_load_explicit(&p->flags, memory_order_relaxed) & MOTE__P_PANICKED) {
        mote__msg_cancel(m);
        return;
    }
    if (!m->fn) { /* a data message nobody receives any more */
        msg_free(m);
        return;
    }
    m->next = p->cur;
    p->cur = m;
    mote_result r = m->fn(p->state, m->data);
    p->cur = m->next;
    if (m->fut)
        mote__future_complete(m->fut, r);
    msg_free(m);
}

/* Make sure an IDLE process with mail gets to run (see proc.h: the
 * scheduled reference is taken before the CAS). */
static void proc_kick(mote_proc *p) {
    if (MOTE__ST(atomic_load(&p->task.state)) != MOTE__IDLE)
        return;
    atomic_fetch_add(&p->refs, 1);
    if (!mote__task_schedule(&p->task))
        atomic_fetch_sub(&p->refs, 1);
}

/* A message to a panicked process is still queued: the process cancels it
 * (its future resolves with -ECANCELED), as the API promises. */
static void proc_send(mote_proc *p, mote__msg *m) {
    mote__msg *head = atomic_load_explicit(&p->inbox, memory_order_relaxed);
    do
        m->next = head;
    while (!atomic_compare_exchange_weak(&p->inbox, &head, m));
    MOTE_STORE_LOAD_FENCE();
    uint64_t rs = atomic_load(&p->recv_seq);
    if (rs)
        mote__task_wake(&p->task, rs);
    proc_kick(p);
    mote__sched_tick();
}

static int check_send(mote_proc *p, const void *arg, size_t size) {
    if (!p || (size && !arg) || size > MAX_ARG)
        return -EINVAL;
    if (!mote__sched_running())
        return -ESHUTDOWN;
    return 0;
}

int mote_cast(mote_proc *p, mote_msg_fn fn, const void *arg, size_t size) {
    int r = check_send(p, arg, size);
    if (r < 0 || !fn)
        return r < 0 ? r : -EINVAL;
    mote__msg *m = msg_new(fn, arg, size);
    if (!m)
        return -ENOMEM;
    proc_send(p, m);
    return 0;
}

int mote_async(mote_proc *p, mote_msg_fn fn, const void *arg, size_t size, mote_future **out) {
    if (!out)
        return -EINVAL;
    *out = NULL;
    int r = check_send(p, arg, size);
    if (r < 0 || !fn)
        return r < 0 ? r : -EINVAL;
    mote__msg *m = msg_new(fn, arg, size);
    mote_future *f = m ? mote__future_new(MOTE__FUT_HEAP) : NULL;
    if (!f) {
        msg_free(m);
        return -ENOMEM;
    }
    m->fut = f;
    proc_send(p, m);
    *out = f;
    return 0;
}

int mote_call(mote_proc *p, mote_msg_fn fn, const void *arg, size_t size, mote_result *out) {
    int r = check_send(p, arg, size);
    if (r < 0 || !fn)
        return r < 0 ? r : -EINVAL;
    if (p == mote__proc_self())
        return -EDEADLK;
    mote__msg *m = msg_new(fn, arg, size);
    if (!m)
        return -ENOMEM;
    mote_future f;
    mote__future_init_stack(&f);
    m->fut = &f;
    proc_send(p, m);
    mote__future_wait(&f, MOTE_FOREVER);
    if (out)
        *out = f.res;
    return 0;
}

int mote_send(mote_proc *p, const void *data, size_t size) {
    int r = check_send(p, data, size);
    if (r < 0)
        return r;
    mote__msg *m = msg_new(NULL, data, size);
    if (!m)
        return -ENOMEM;
    proc_send(p, m);
    return 0;
}

/* ---- Spawning ---- */

int mote_spawn(mote_proc **out, const void *state, size_t size, mote_dtor_fn dtor) {
    if (!out)
        return -EINVAL;
    *out = NULL;
    if (size > MAX_STATE)
        return -EINVAL;
    if (!mote__sched_running())
        return -ESHUTDOWN;
    mote_proc *p = proc_alloc(size);
    if (!p)
        return -ENOMEM;
    if (size) {
        if (state)
            memcpy(p->state, state, size);
        else
            memset(p->state, 0, size);
    }
    p->dtor = dtor;
    atomic_init(&p->refs, 1);
    *out = p;
    return 0;
}

typedef struct {
    mote_proc_fn fn;
    size_t size;
    _Alignas(16) unsigned char arg[];
} spawn_fn_args;

static mote_result spawn_fn_start(void *state, void *arg) {
    (void)state;
    spawn_fn_args *a = arg;
    a->fn(a->size ? a->arg : NULL);
    return mote_ok_i(0);
}

int mote_spawn_fn(mote_proc **out, mote_proc_fn fn, const void *arg, size_t size) {
    if (out)
        *out = NULL;
    if (!fn || (size && !arg) || size > MAX_ARG)
        return -EINVAL;
    if (!mote__sched_running())
        return -ESHUTDOWN;
    mote__msg *m = msg_new(spawn_fn_start, NULL, sizeof(spawn_fn_args) + size);
    if (!m)
        return -ENOMEM;
    spawn_fn_args *a = (spawn_fn_args *)m->data;
    a->fn = fn;
    a->size = size;
    if (size)
        memcpy(a->arg, arg, size);
    mote_proc *p = proc_alloc(0);
    if (!p) {
        msg_free(m);
        return -ENOMEM;
    }
    /* The caller's handle (released below if unwanted); sending adds the
     * scheduled reference that keeps the process alive while fn runs. */
    atomic_init(&p->refs, 1);
    proc_send(p, m);
    if (out)
        *out = p;
    else
        mote_proc_release(p);
    return 0;
}

mote_proc *mote_proc_ref(mote_proc *p) {
    if (p)
        atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
    return p;
}

void mote_proc_release(mote_proc *p) {
    if (p && atomic_fetch_sub(&p->refs, 1) == 1)
        proc_destroy(p);
}

uint64_t mote_proc_id(const mote_proc *p) {
    return p ? p->id : 0;
}

mote_proc *mote_self(void) {
    return mote__proc_self();
}

void *mote_self_state(void) {
    mote_proc *p = mote__proc_self();
    return p ? p->state : NULL;
}

void mote_yield(void) {
    mote__yield();
}

/* ---- Erlang-style receive ---- */

int mote_receive(mote_msg **out, int64_t timeout) {
    if (!out)
        return -EINVAL;
    *out = NULL;
    mote_proc *p = mote__proc_self();
    if (!p)
        return -EPERM;
    mote__waiter w;
    mote__waiter_init(&w);
    int64_t deadline = timeout < 0 ? -1 : mote__now() + timeout;
    int r = -ETIMEDOUT;
    for (;;) {
        mote__msg *m = mote__mbox_pop(p);
        if (m) {
            if (m->fn) { /* a call: run it here, in order */
                mote__msg_run(p, m);
                continue;
            }
            *out = (mote_msg *)(void *)m;
            r = 0;
            break;
        }
        if (timeout == 0 || atomic_load(&w.timed_out))
            break;
        mote__waiter_arm(&w);
        atomic_store(&p->recv_seq, atomic_load(&w.seq));
        MOTE_STORE_LOAD_FENCE();
        if (!mote__mbox_nonempty(p) && !atomic_load(&w.timed_out))
            mote__waiter_sleep(&w, deadline);
        atomic_store(&p->recv_seq, 0);
    }
    return r;
}

const void *mote_msg_data(const mote_msg *m) {
    return m ? ((const mote__msg *)(const void *)m)->data : NULL;
}

size_t mote_msg_size(const mote_msg *m) {
    return m ? ((const mote__msg *)(const void *)m)->size : 0;
}

void mote_msg_free(mote_msg *m) {
    msg_free((mote__msg *)(void *)m);
}

/* ---- Scheduler hooks ---- */

static void proc_entry(mote__task *t) {
    mote_proc *p = (mote_proc *)t;
    unsigned budget = P.budget;
    mote__msg *m;
    while (budget && (m = mote__mbox_pop(p))) {
        mote__msg_run(p, m);
        budget--;
    }
}

static void proc_settle(mote__task *t) {
    mote_proc *p = (mote_proc *)t;
    if (mote__mbox_nonempty(p)) { /* budget used up: to the back of the queue */
        mote__task_requeue(t);
        return;
    }
    mote__task_settle_idle(t);
    MOTE_STORE_LOAD_FENCE();
    /* Re-check after publishing IDLE: a sender may have seen us RUNNING.
     * Only the inbox: fifo was empty, and once IDLE the process may already
     * run elsewhere, so its private fields are not ours to read. */
    if (atomic_load(&p->inbox) && mote__task_schedule(t))
        return; /* keeps the scheduled reference */
    if (atomic_fetch_sub(&p->refs, 1) == 1)
        proc_destroy(p);
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

/* Async-signal-safe (called from the SIGSEGV handler). */
static void proc_describe(mote__task *t, char *buf, size_t len) {
    (void)len; /* the text below is bounded well under 256 bytes */
    mote_proc *p = (mote_proc *)t;
    char *d = fmt_str(buf, "mote: process ");
    d = fmt_u64(d, p->id);
    d = fmt_str(d, " overflowed its stack (");
    d = fmt_u64(d, t->stack ? t->stack->ctx.size : 0);
    d = fmt_str(d, " bytes; set MOTE_STACK_SIZE for more); aborting\n");
    *d = '\0';
}

const mote__sched_hooks mote__proc_hooks = {
    .entry = proc_entry,
    .settle = proc_settle,
    .describe = proc_describe,
};

/* ---- The main process ---- */

typedef struct {
    int (*fn)(void *);
    void *arg;
    int *result;
} main_args;

static mote_result main_start(void *state, void *arg) {
    (void)state;
    main_args *a = arg;
    *a->result = a->fn(a->arg);
    mote__sched_main_exit();
}

int mote__proc_spawn_main(mote_proc **out, int (*fn)(void *), void *arg, int *result) {
    main_args a = {fn, arg, result};
    mote__msg *m = msg_new(main_start, &a, sizeof a);
    mote_proc *p = m ? proc_alloc(0) : NULL;
    if (!p) {
        msg_free(m);
        return -ENOMEM;
    }
    atomic_init(&p->refs, 1); /* the scheduled reference */
    atomic_store(&p->inbox, m);
    *out = p;
    return 0;
}

/* ---- Panics ---- */

int mote_on_panic(mote_panic_fn fn, void *ctx) {
    mote_proc *p = mote__proc_self();
    if (!p)
        return -EPERM;
    if (!proc_ext(p))
        return -ENOMEM;
    p->ext->panic_fn = fn;
    p->ext->panic_ctx = ctx;
    return 0;
}

static void cancel_running(mote_proc *p) {
    mote__msg *m = p->cur;
    p->cur = NULL;
    while (m) {
        mote__msg *outer = m->next;
        mote__msg_cancel(m);
        m = outer;
    }
}

void mote_panic(const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt ? fmt : "(null)", ap);
    va_end(ap);
    mote_proc *p = mote__proc_self();
    if (p && p->ext && p->ext->panic_fn) {
        p->ext->panic_fn(msg, p->ext->panic_ctx);
        if (p->task.flags & MOTE__TASK_MAIN) {
            fflush(stdout);
            _exit(101); /* the main process ending ends the program */
        }
        /* Only this process ends. */
        atomic_fetch_or(&p->flags, MOTE__P_PANICKED);
        cancel_running(p);
        run_dtor(p);
        mote__task_abandon();
    }
    char head[1200];
    if (p) {
        const char *name = "?";
        Dl_info info;
        if (p->cur && dladdr((void *)p->cur->fn, &info) && info.dli_sname)
            name = info.dli_sname;
        snprintf(head, sizeof head, "mote: process %llu panicked: %s\n  while running message %s (%p)\n",
                 (unsigned long long)p->id, msg, name, p->cur ? (void *)p->cur->fn : NULL);
    } else {
        snprintf(head, sizeof head, "mote: panic outside any process: %s\n", msg);
    }
    fflush(stdout);
    mote__write_stderr(head);
    mote__backtrace();
    _exit(101);
}

/* ---- Shutdown ---- */

static void reap_each(void (*fn)(mote_proc *p)) {
    for (int i = 0; i < PREG_SHARDS; i++)
        for (mote_proc *p = P.reg[i].head, *next; p; p = next) {
            next = p->reg_next;
            fn(p);
        }
}

static void reap_messages(mote_proc *p) {
    cancel_running(p);
    cancel_mailbox(p);
}

static void reap_free(mote_proc *p) {
    mote__task_discard_stack(&p->task);
    run_dtor(p);
    free(p->ext);
    mote__free(p, sizeof(mote_proc) + p->task.aux);
}

static _Atomic bool reaping;

bool mote__proc_reaping(void) {
    return atomic_load(&reaping);
}

void mote__proc_reap_all(void) {
    /* First resolve every pending future (their waiters may live on the
     * stacks of suspended processes), then free stacks and processes. */
    atomic_store(&reaping, true);
    reap_each(reap_messages);
    reap_each(reap_free);
    for (int i = 0; i < PREG_SHARDS; i++)
        P.reg[i].head = NULL;
    atomic_store(&reaping, false);
}
