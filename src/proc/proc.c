/*
 * proc.c -- processes: spawn, lifetime, mailboxes, running messages, sends,
 * calls, Erlang-style receive, panics, a process's end, shutdown reaping.
 * The invariants (mailbox order, the scheduled reference, who frees a
 * process) are in proc.h; the end in docs/design.md ("Ending").
 */
#include "proc/proc.h"
#include "base/alloc.h"
#include "debug/symbol.h"
#include "debug/trace.h"

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
    _Atomic uint64_t first_id; /* the main process's: ids count the spawns of a run */
    _Atomic bool closed;   /* shutting down: spawning is refused */
    _Atomic bool reaping;  /* every thread stopped: processes are being freed */
    mote__spinlock main_lock;
    mote_proc *main;       /* the main process, while it exists */
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

static void preg_remove(mote_proc *p);

static void proc_free(mote_proc *p) {
    mote__proc_ext *e = mote__proc_ext_of(p);
    if (e) {
        if (e->sleep.task) /* final: a fire under way finishes first */
            mote__timer_cancel(&e->sleep.timer);
        free(e->exit_text);
        mote__free(e, sizeof *e);
    }
    mote__free(p, sizeof(mote_proc) + p->task.aux);
    mote__task_room_drop(); /* taken in proc_new */
}

/* A new process with one reference and a copy of the size bytes at state
 * (zeroes if NULL), in the registry; or NULL: out of memory (*err
 * -ENOMEM) or shutting down (-ESHUTDOWN). It is complete before it is in
 * the registry, where the shutdown sweep may cancel it at once; the flag
 * is read after the insertion, under the shard lock, so the sweep (which
 * sets it, then walks every shard) either sees the process or the spawn
 * is refused. */
static mote_proc *proc_alloc(size_t size, const void *state, mote_dtor_fn dtor, uint32_t flags,
                             int *err) {
    *err = -ENOMEM;
    mote_proc *p = mote__alloc(sizeof(mote_proc) + size);
    if (!p)
        return NULL;
    if (mote__task_room_take() < 0) { /* no room to queue it: -ENOMEM */
        mote__free(p, sizeof(mote_proc) + size);
        return NULL;
    }
    memset(p, 0, sizeof *p);
    if (size) {
        if (state)
            memcpy(p->state, state, size);
        else
            memset(p->state, 0, size);
    }
    p->dtor = dtor;
    atomic_init(&p->refs, 1);
    atomic_init(&p->flags, flags);
    p->task.aux = (uint32_t)size;
    p->born_ms = mote__coarse_ms();
    p->id = atomic_fetch_add_explicit(&P.next_id, 1, memory_order_relaxed);
    MOTE_TRACE(MOTE__TR_SPAWN, (uintptr_t)&p->task, p->id);
    unsigned s = (unsigned)(p->id % PREG_SHARDS);
    mote__spin_lock(&P.reg[s].lock);
    p->reg_next = P.reg[s].head;
    if (p->reg_next)
        p->reg_next->reg_prev = p;
    P.reg[s].head = p;
    bool closed = atomic_load(&P.closed);
    mote__spin_unlock(&P.reg[s].lock);
    if (closed) {
        preg_remove(p);
        proc_free(p);
        *err = -ESHUTDOWN;
        return NULL;
    }
    return p;
}

void mote__proc_close_spawning(bool closed) {
    atomic_store(&P.closed, closed);
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

static void cancel_running(mote_proc *p);

void mote__proc_end(mote_proc *p, unsigned reason, bool dead) {
    if (dead)
        atomic_fetch_or(&p->flags, MOTE__P_DEAD);
    uint32_t f = atomic_load(&p->flags);
    do {
        if (f & MOTE__P_ENDED) { /* a mote_spawn_fn process whose fn returned */
            if (dead) {
                cancel_running(p);
                cancel_mailbox(p);
            }
            return;
        }
    } while (!atomic_compare_exchange_weak(&p->flags, &f,
                                           f | MOTE__P_ENDED | (reason << MOTE__P_REASON_SHIFT)));
    /* Resources first (a watcher may restart something that needs them),
     * then the notices, and only then the replies: a caller told
     * -ECANCELED that asks a supervisor for the process again finds the
     * notice ahead of its call in the supervisor's mailbox. */
    run_dtor(p);
    uintptr_t ew = atomic_fetch_or(&p->ext, MOTE__EXT_CLOSED);
    mote__proc_ext *e = (mote__proc_ext *)(ew & ~MOTE__EXT_CLOSED);
    if (e) {
        mote__mon_end(p, e, reason);
        mote__proc_deadline_end(e);
    }
    if (dead) {
        cancel_running(p);
        cancel_mailbox(p);
    }
}

/* Free a process nobody can reach any more: its normal end. With no
 * reference left nobody can monitor it any more, and whoever did is on its
 * block: without one there is nobody to tell (the common case, cheap). */
static void proc_destroy(mote_proc *p) {
    MOTE_ASSERT(atomic_load(&p->refs) == 0);
    MOTE_ASSERT_MSG(MOTE__ST(atomic_load(&p->task.state)) == MOTE__IDLE,
                    "the last reference went while the process was scheduled");
    mote__count(MOTE__CTR_FINISHED, 1);
    if (atomic_load_explicit(&p->ext, memory_order_relaxed))
        mote__proc_end(p, MOTE_EXIT_NORMAL, false);
    else
        run_dtor(p);
    cancel_mailbox(p);
    preg_remove(p);
    proc_free(p);
}

/* Blocks come from the slabs: every monitored process gets one. */
static mote__proc_ext *ext_new(mote_proc *p) {
    mote__proc_ext *e = mote__alloc(sizeof *e);
    if (e) {
        memset(e, 0, sizeof *e);
        e->proc = p;
    }
    return e;
}

mote__proc_ext *mote__proc_ext_get(mote_proc *p, bool *closed) {
    *closed = false;
    uintptr_t w = atomic_load(&p->ext);
    mote__proc_ext *fresh = NULL;
    for (;;) {
        if (w & MOTE__EXT_CLOSED) {
            *closed = true;
            mote__free(fresh, sizeof *fresh);
            return NULL;
        }
        if (w) {
            mote__free(fresh, sizeof *fresh);
            return (mote__proc_ext *)w;
        }
        if (!fresh && !(fresh = ext_new(p)))
            return NULL;
        if (atomic_compare_exchange_weak(&p->ext, &w, (uintptr_t)fresh))
            return fresh;
    }
}

/*
 * p's block even once p has ended (names, a panic handler): made if need
 * be, keeping the closed bit, so whatever needs the end reported
 * (monitors, deadlines: mote__proc_ext_get) still sees an ended process.
 * NULL only if memory ran out.
 */
static mote__proc_ext *ext_any(mote_proc *p) {
    uintptr_t w = atomic_load(&p->ext);
    mote__proc_ext *fresh = NULL;
    for (;;) {
        mote__proc_ext *e = (mote__proc_ext *)(w & ~MOTE__EXT_CLOSED);
        if (e) {
            mote__free(fresh, sizeof *fresh);
            return e;
        }
        if (!fresh && !(fresh = ext_new(p)))
            return NULL;
        if (atomic_compare_exchange_weak(&p->ext, &w, (uintptr_t)fresh | (w & MOTE__EXT_CLOSED)))
            return fresh;
    }
}

/* Only the process itself sleeps on its deadline, so it sets it up
 * without a race; a dtor's sleep after the end still gets one (ext_any). */
mote__wake_timer *mote__task_wake_timer(mote__task *t) {
    mote_proc *p = (mote_proc *)t; /* a task is a process's first member */
    mote__proc_ext *e = ext_any(p);
    if (!e)
        return NULL;
    if (!e->sleep.task)
        mote__wake_timer_init(&e->sleep, t);
    return &e->sleep;
}

bool mote__proc_ref_live(mote_proc *p) {
    uint32_t r = atomic_load(&p->refs);
    do
        if (r == 0)
            return false;
    while (!atomic_compare_exchange_weak(&p->refs, &r, r + 1));
    return true;
}

/* ---- Messages ---- */

/* A reply message: the argument bytes, then (16-aligned) its future. */
static size_t msg_bytes(uint32_t kind, size_t size) {
    if (kind & MOTE__MSG_REPLY)
        return sizeof(mote__msg) + ((size + 15) & ~(size_t)15) + sizeof(mote_future);
    return sizeof(mote__msg) + size;
}

static void msg_free(mote__msg *m) {
    if (m)
        mote__free(m, msg_bytes(m->kind, m->size));
}

void mote__msg_free(mote__msg *m) {
    msg_free(m);
}

static mote__msg *msg_alloc(mote_msg_fn fn, const void *arg, size_t size, uint32_t kind) {
    MOTE_ASSERT(size <= UINT32_MAX);
    mote__msg *m = mote__alloc(msg_bytes(kind, size));
    if (!m)
        return NULL;
    m->next = NULL;
    m->fn = fn;
    m->fut = NULL;
    m->size = (uint32_t)size;
    m->kind = kind;
    if (size && arg)
        memcpy(m->data, arg, size);
    return m;
}

static mote__msg *msg_new(mote_msg_fn fn, const void *arg, size_t size) {
    return msg_alloc(fn, arg, size, 0);
}

mote__msg *mote__msg_new(mote_msg_fn fn, const void *arg, size_t size) {
    return msg_new(fn, arg, size);
}

/* Hand r to m's future, then free m unless it is a reply message (its
 * future decides: the caller frees it after reading, or the future frees
 * it when the caller has gone). */
static void msg_finish(mote__msg *m, mote_result r) {
    bool reply = m->kind & MOTE__MSG_REPLY; /* m may be gone once completed */
    if (m->fut)
        mote__future_complete(m->fut, r);
    if (!reply)
        msg_free(m);
}

void mote__msg_cancel(mote__msg *m) {
    if (mote__msg_is_exit(m))
        mote__mon_free_exit_msg(m);
    else
        msg_finish(m, mote_error(-ECANCELED));
}

/* Inlined where messages are run (a turn pops many). */
static inline mote__msg *mbox_pop(mote_proc *p) {
    mote__msg *m = p->fifo;
    uint32_t n = atomic_load_explicit(&p->fifo_len, memory_order_relaxed);
    if (!m) {
        m = MOTE__MBOX_MSG(atomic_exchange(&p->inbox, 0));
        if (!m)
            return NULL;
        /* The inbox is newest-first: reverse it into send order. */
        mote__msg *rev = NULL;
        for (n = 0; m; n++) {
            mote__msg *next = m->next;
            m->next = rev;
            rev = m;
            m = next;
        }
        m = rev;
    }
    p->fifo = m->next;
    atomic_store_explicit(&p->fifo_len, n - 1, memory_order_relaxed);
    return m;
}

mote__msg *mote__mbox_pop(mote_proc *p) {
    return mbox_pop(p);
}

bool mote__mbox_nonempty(mote_proc *p) {
    return p->fifo || atomic_load(&p->inbox);
}

uint32_t mote__mbox_length(mote_proc *p) {
    uint32_t in = MOTE__MBOX_COUNT(atomic_load_explicit(&p->inbox, memory_order_relaxed));
    return in + atomic_load_explicit(&p->fifo_len, memory_order_relaxed);
}

mote__msg *mote__mbox_take(mote_proc *p, bool (*match)(const mote__msg *m, const void *ctx),
                           const void *ctx) {
    /* Move the inbox behind the FIFO (everything in the FIFO is older), so
     * the whole mailbox is in order in one private list; fifo_len counts
     * what moved (the inbox word's count saturates, the walk does not). */
    mote__msg *in = MOTE__MBOX_MSG(atomic_exchange(&p->inbox, 0)), *rev = NULL;
    uint32_t n = atomic_load_explicit(&p->fifo_len, memory_order_relaxed);
    for (; in; n++) {
        mote__msg *next = in->next;
        in->next = rev;
        rev = in;
        in = next;
    }
    mote__msg **pp = &p->fifo;
    while (*pp)
        pp = &(*pp)->next;
    *pp = rev;
    mote__msg *m = NULL;
    for (pp = &p->fifo; *pp; pp = &(*pp)->next)
        if (match(*pp, ctx)) {
            m = *pp;
            *pp = m->next;
            m->next = NULL;
            n--;
            break;
        }
    atomic_store_explicit(&p->fifo_len, n, memory_order_relaxed);
    return m;
}

void mote__msg_run(mote_proc *p, mote__msg *m) {
    MOTE_ASSERT_MSG(p == mote__proc_self(), "a process runs its own messages");
    if (atomic_load_explicit(&p->flags, memory_order_relaxed) & MOTE__P_DEAD) {
        mote__msg_cancel(m);
        return;
    }
    if (!m->fn) { /* a data message or notice nobody receives any more */
        mote__msg_cancel(m);
        return;
    }
    m->next = p->cur;
    p->cur = m;
    mote_result r = m->fn(p->state, m->data);
    p->cur = m->next;
    msg_finish(m, r);
}

/* Make sure an IDLE process with mail gets to run (see proc.h: the
 * scheduled reference is taken before the CAS). */
static void proc_kick(mote_proc *p) {
    if (MOTE__ST(atomic_load(&p->task.state)) != MOTE__IDLE)
        return;
    uint32_t held = atomic_fetch_add(&p->refs, 1);
    MOTE_ASSERT_MSG(held > 0, "a sender holds a reference");
    if (!mote__task_schedule(&p->task))
        atomic_fetch_sub(&p->refs, 1);
}

void mote__proc_kick(mote_proc *p) {
    proc_kick(p);
}

/* A message to a dead process (panicked or cancelled) is cancelled at once
 * (its future resolves with -ECANCELED); one that races with the end is
 * queued, and the process cancels it in its next turn. */
void mote__proc_post(mote_proc *p, mote__msg *m) {
    if (MOTE_UNLIKELY(atomic_load_explicit(&p->flags, memory_order_relaxed) & MOTE__P_DEAD)) {
        mote__msg_cancel(m);
        return;
    }
    /* The push also counts the message (MOTE__MBOX_*). */
    uintptr_t head = atomic_load_explicit(&p->inbox, memory_order_relaxed), neu;
    do {
        m->next = MOTE__MBOX_MSG(head);
        uint32_t n = MOTE__MBOX_COUNT(head);
        neu = (uintptr_t)m | (uintptr_t)(n + (n < 0xffff)) << MOTE__MBOX_SHIFT;
    } while (!atomic_compare_exchange_weak(&p->inbox, &head, neu));
    MOTE_STORE_LOAD_FENCE();
    uint64_t rs = atomic_load(&p->recv_seq);
    if (rs)
        mote__task_wake(&p->task, rs);
    proc_kick(p);
}

static void proc_send(mote_proc *p, mote__msg *m) {
    mote__proc_post(p, m);
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

/* A foreign thread's call: its future on its stack, which lives until the
 * reply (it cannot be cancelled, and shutdown cancels the message). */
static int call_foreign(mote_proc *p, mote_msg_fn fn, const void *arg, size_t size, mote_result *out) {
    mote__msg *m = msg_new(fn, arg, size);
    if (!m)
        return -ENOMEM;
    mote_future f;
    mote__future_init_stack(&f);
    m->fut = &f;
    proc_send(p, m);
    mote__future_wait_for(&f, MOTE_FOREVER, MOTE__WAIT_CALL, p->id);
    if (out)
        *out = f.res;
    return 0;
}

/*
 * A process's call may end early (cancelled), so the reply must not go to
 * its stack: the future lives in the message, which caller and callee
 * share (MOTE__MSG_REPLY). The callee completes the future and leaves the
 * message; the caller reads the reply and frees it, or, cancelled, drops
 * the future, and the callee frees the message when it completes it.
 */
int mote_call(mote_proc *p, mote_msg_fn fn, const void *arg, size_t size, mote_result *out) {
    int r = check_send(p, arg, size);
    if (r < 0 || !fn)
        return r < 0 ? r : -EINVAL;
    mote_proc *self = mote__proc_self();
    if (p == self)
        return -EDEADLK;
    if (!self)
        return call_foreign(p, fn, arg, size, out);
    if (MOTE_UNLIKELY(mote__cancel_pending(self)))
        return mote__cancel_check();
    mote__msg *m = msg_alloc(fn, arg, size, MOTE__MSG_REPLY);
    if (!m)
        return -ENOMEM;
    mote_future *f = (mote_future *)(void *)(m->data + ((size + 15) & ~(size_t)15));
    mote__future_init_stack(f);
    f->kind = MOTE__FUT_MSG;
    f->owner = m;
    m->fut = f;
    self->call = m;
    proc_send(p, m);
    r = mote__future_wait_for(f, MOTE_FOREVER, MOTE__WAIT_CALL, p->id);
    self->call = NULL;
    if (r < 0) {
        mote__future_release(f);
        return r;
    }
    if (out)
        *out = f->res;
    msg_free(m);
    return 0;
}

int mote__send_kind(mote_proc *p, uint32_t kind, const void *data, size_t size) {
    int r = check_send(p, data, size);
    if (r < 0)
        return r;
    mote__msg *m = msg_new(NULL, data, size);
    if (!m)
        return -ENOMEM;
    m->kind = kind;
    proc_send(p, m);
    return 0;
}

int mote_send(mote_proc *p, const void *data, size_t size) {
    return mote__send_kind(p, MOTE_MSG_DATA, data, size);
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
    int err;
    mote_proc *p = proc_alloc(size, state, dtor, 0, &err);
    if (!p)
        return err;
    *out = p;
    return 0;
}

typedef struct {
    mote_proc_fn fn;
    size_t size;
    _Alignas(16) unsigned char arg[];
} spawn_fn_args;

/* fn returning is the process's end for its monitors and links (unless
 * it was cancelled: then its turn ends it as cancelled). It still runs
 * calls sent to it until its last handle goes. */
static mote_result spawn_fn_start(void *state, void *arg) {
    (void)state;
    spawn_fn_args *a = arg;
    atomic_fetch_and(&mote__proc_self()->flags, ~MOTE__P_START);
    a->fn(a->size ? a->arg : NULL);
    mote_proc *self = mote__proc_self();
    if (!mote__cancel_pending(self))
        mote__proc_end(self, MOTE_EXIT_NORMAL, false);
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
    int err;
    /* One reference: the caller's handle (released below if unwanted);
     * sending adds the scheduled reference that keeps the process alive
     * while fn runs. */
    mote_proc *p = proc_alloc(0, NULL, NULL, MOTE__P_START, &err);
    if (!p) {
        msg_free(m);
        return err;
    }
    proc_send(p, m);
    if (out)
        *out = p;
    else
        mote_proc_release(p);
    return 0;
}

mote_proc *mote_proc_ref(mote_proc *p) {
    if (p) {
        uint32_t held = atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
        MOTE_ASSERT_MSG(held > 0, "a new reference comes from a live one");
    }
    return p;
}

void mote_proc_release(mote_proc *p) {
    if (!p)
        return;
    uint32_t held = atomic_fetch_sub(&p->refs, 1);
    MOTE_ASSERT_MSG(held > 0, "released more often than referenced");
    if (held == 1)
        proc_destroy(p);
}

uint64_t mote_proc_id(const mote_proc *p) {
    return p ? p->id : 0;
}

/* ---- Names ---- */

/* Names are written and read under the registry lock of the process's
 * shard, so a reader (a dump, another process) never sees half a name. */
static mote__spinlock *name_lock(const mote_proc *p) {
    return &P.reg[p->id % PREG_SHARDS].lock;
}

/* Any time, as mote.h promises: also once p has ended (a mote_spawn_fn
 * process whose fn returned still serves calls and shows in dumps), so
 * the block is made even then (ext_any); only memory can fail it. */
int mote_proc_set_name(mote_proc *p, const char *name) {
    if (!p)
        return -EINVAL;
    size_t len = name ? strlen(name) : 0;
    mote__proc_ext *e = len ? ext_any(p) : mote__proc_ext_of(p);
    if (!e)
        return len ? -ENOMEM : 0;
    if (len > MOTE_NAME_MAX - 1) { /* cut, but not inside a UTF-8 character */
        len = MOTE_NAME_MAX - 1;
        while (len && ((unsigned char)name[len] & 0xC0) == 0x80)
            len--;
    }
    mote__spin_lock(name_lock(p));
    if (len)
        memcpy(e->name, name, len);
    e->name[len] = '\0';
    mote__spin_unlock(name_lock(p));
    if (atomic_load_explicit(&mote__tracing, memory_order_relaxed)) {
        char copy[MOTE_NAME_MAX];
        snprintf(copy, sizeof copy, "%.*s", (int)len, name ? name : "");
        mote__trace_name(p->id, copy);
    }
    return 0;
}

void mote__proc_name(const mote_proc *p, char *buf, size_t len) {
    if (!len)
        return;
    buf[0] = '\0';
    mote__proc_ext *e = mote__proc_ext_of((mote_proc *)p);
    if (!e)
        return;
    mote__spin_lock(name_lock(p));
    snprintf(buf, len, "%s", e->name);
    mote__spin_unlock(name_lock(p));
}

int mote_proc_name(const mote_proc *p, char *buf, size_t len) {
    if (!p || !buf || !len)
        return -EINVAL;
    mote__proc_name(p, buf, len);
    return (int)strlen(buf);
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
    MOTE_ASSERT_MSG(atomic_load(&p->recv_seq) == 0, "a receive waits only in its own turn");
    if (MOTE_UNLIKELY(mote__cancel_pending(p)))
        return mote__cancel_check();
    mote__waiter w;
    mote__waiter_init(&w);
    mote__waiter_note(&w, MOTE__WAIT_RECEIVE, 0, 0);
    int64_t deadline = timeout < 0 ? -1 : mote__now() + timeout;
    int r = -ETIMEDOUT;
    for (;;) {
        mote__msg *m = mbox_pop(p);
        if (m) {
            mote__count(MOTE__CTR_MSGS_RUN, 1);
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
        if (w.err) { /* no stack to wait on */
            r = w.err;
            break;
        }
        if (!mote__waiter_arm(&w)) {
            r = -ECANCELED;
            break;
        }
        atomic_store(&p->recv_seq, atomic_load(&w.seq));
        MOTE_STORE_LOAD_FENCE();
        if (!mote__mbox_nonempty(p) && !atomic_load(&w.timed_out))
            mote__waiter_sleep(&w, deadline);
        atomic_store(&p->recv_seq, 0);
    }
    return r;
}

/* An exit notice has no data of its own: mote_msg_exit reads it. */
const void *mote_msg_data(const mote_msg *m) {
    const mote__msg *mm = (const mote__msg *)(const void *)m;
    return mm && !mote__msg_is_exit(mm) ? mm->data : NULL;
}

size_t mote_msg_size(const mote_msg *m) {
    const mote__msg *mm = (const mote__msg *)(const void *)m;
    return mm && !mote__msg_is_exit(mm) ? mm->size : 0;
}

int mote_msg_kind(const mote_msg *m) {
    return m ? (int)MOTE__MSG_KIND(((const mote__msg *)(const void *)m)->kind) : -EINVAL;
}

void mote_msg_free(mote_msg *m) {
    mote__msg *mm = (mote__msg *)(void *)m;
    if (mm && mote__msg_is_exit(mm))
        mote__mon_free_exit_msg(mm);
    else
        msg_free(mm); /* a received message is data: no future */
}

/* ---- Scheduler hooks ---- */

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
    unsigned budget = P.budget;
    mote__msg *m;
    while (budget && (m = mbox_pop(p))) {
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
    return P.budget - budget;
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
    mote_proc *self = mote__proc_self();
    mote__proc_end(self, mote__cancel_pending(self) ? MOTE_EXIT_SHUTDOWN : MOTE_EXIT_NORMAL, false);
    mote__sched_main_exit();
}

int mote__proc_spawn_main(mote_proc **out, int (*fn)(void *), void *arg, int *result) {
    main_args a = {fn, arg, result};
    mote__msg *m = msg_new(main_start, &a, sizeof a);
    int err = -ENOMEM;
    mote_proc *p = m ? proc_alloc(0, NULL, NULL, 0, &err) : NULL; /* its reference: the scheduled one */
    if (!p) {
        msg_free(m);
        return err;
    }
    atomic_store_explicit(&P.first_id, p->id, memory_order_relaxed);
    atomic_store(&p->inbox, (uintptr_t)m | (uintptr_t)1 << MOTE__MBOX_SHIFT);
    mote__spin_lock(&P.main_lock);
    P.main = p;
    mote__spin_unlock(&P.main_lock);
    *out = p;
    return 0;
}

/* mote_stop may come from any thread at any time: the main process is
 * reached under a lock that shutdown takes before freeing it. */
int mote__proc_cancel_main(void) {
    mote__spin_lock(&P.main_lock);
    mote_proc *m = P.main;
    if (m)
        mote__proc_cancel(m, MOTE__CANCEL_SHUTDOWN);
    mote__spin_unlock(&P.main_lock);
    return m ? 0 : -ESHUTDOWN;
}

/* ---- Panics ---- */

int mote_on_panic(mote_panic_fn fn, void *ctx) {
    mote_proc *p = mote__proc_self();
    if (!p)
        return -EPERM;
    /* Also once ended (a mote_spawn_fn process whose fn returned still
     * serves calls). */
    mote__proc_ext *e = ext_any(p);
    if (!e)
        return -ENOMEM;
    e->panic_fn = fn;
    e->panic_ctx = ctx;
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

/* ---- Snapshots for dumps and counts ---- */

uint64_t mote__procs_spawned(void) {
    return atomic_load_explicit(&P.next_id, memory_order_relaxed) - atomic_load_explicit(&P.first_id, memory_order_relaxed);
}

int64_t mote__proc_snapshot(mote__proc_view **out, bool refs) {
    size_t n = 0, cap = 256;
    mote__proc_view *v = malloc(cap * sizeof *v);
    if (!v)
        return -ENOMEM;
    uint32_t now_ms = mote__coarse_ms();
    for (int i = 0; i < PREG_SHARDS; i++) {
        mote__spin_lock(&P.reg[i].lock);
        for (mote_proc *p = P.reg[i].head; p; p = p->reg_next) {
            if (n == cap) {
                mote__proc_view *bigger = realloc(v, 2 * cap * sizeof *v);
                if (!bigger) {
                    mote__spin_unlock(&P.reg[i].lock);
                    *out = v;
                    return (int64_t)n; /* what fitted */
                }
                v = bigger;
                cap *= 2;
            }
            mote__proc_view *x = &v[n++];
            x->task = &p->task;
            x->id = p->id;
            x->state = atomic_load(&p->task.state);
            x->mbox = mote__mbox_length(p);
            x->age_ms = now_ms - p->born_ms;
            mote__proc_ext *e = mote__proc_ext_of(p);
            snprintf(x->name, sizeof x->name, "%s", e ? e->name : "");
            /* A reference keeps a suspended process (and its place here)
             * while the caller reads its stack; one whose count is already
             * zero is being freed and is not revived. */
            x->ref = NULL;
            uint32_t r = atomic_load(&p->refs);
            bool want = refs && MOTE__ST(x->state) == MOTE__PARKED;
            while (want && r && !atomic_compare_exchange_weak(&p->refs, &r, r + 1))
                ;
            if (want && r)
                x->ref = p;
        }
        mote__spin_unlock(&P.reg[i].lock);
    }
    *out = v;
    return (int64_t)n;
}

/* ---- Shutdown ---- */

bool mote__proc_reaping(void) {
    return atomic_load_explicit(&P.reaping, memory_order_relaxed);
}

/* The next live process from p on (p included) in a shard, with a
 * reference; the shard lock is held. */
static mote_proc *next_live(mote_proc *p) {
    while (p && !mote__proc_ref_live(p))
        p = p->reg_next;
    return p;
}

void mote__proc_each(void (*fn)(mote_proc *p, void *ctx), void *ctx) {
    for (int i = 0; i < PREG_SHARDS; i++) {
        mote__spin_lock(&P.reg[i].lock);
        mote_proc *p = next_live(P.reg[i].head);
        mote__spin_unlock(&P.reg[i].lock);
        while (p) {
            fn(p, ctx);
            /* p is still linked: it is referenced. */
            mote__spin_lock(&P.reg[i].lock);
            mote_proc *n = next_live(p->reg_next);
            mote__spin_unlock(&P.reg[i].lock);
            mote_proc_release(p); /* may free p: the lock is not held */
            p = n;
        }
    }
}

bool mote__proc_all(bool (*pred)(mote_proc *p)) {
    for (int i = 0; i < PREG_SHARDS; i++) {
        mote__spin_lock(&P.reg[i].lock);
        mote_proc *p = P.reg[i].head;
        while (p && ((p->task.flags & MOTE__TASK_MAIN) || pred(p)))
            p = p->reg_next;
        mote__spin_unlock(&P.reg[i].lock);
        if (p)
            return false;
    }
    return true;
}

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

/* A process that ignored its cancel (or never ran since): its monitors
 * learn of the shutdown (futures only: no process runs any more). */
static void reap_end(mote_proc *p) {
    mote__proc_end(p, MOTE_EXIT_SHUTDOWN, true);
}

static void reap_free(mote_proc *p) {
    mote__task_discard_stack(&p->task);
    if (p->call) /* suspended in mote_call: the reply was cancelled above */
        msg_free(p->call);
    run_dtor(p);
    proc_free(p);
}

void mote__proc_reap_all(void) {
    mote__spin_lock(&P.main_lock);
    P.main = NULL;
    mote__spin_unlock(&P.main_lock);
    atomic_store(&P.reaping, true);
    /* First resolve every pending future (their waiters may live on the
     * stacks of suspended processes), then end what has not ended, then
     * free stacks and processes. */
    reap_each(reap_messages);
    reap_each(reap_end);
    reap_each(reap_free);
    for (int i = 0; i < PREG_SHARDS; i++)
        P.reg[i].head = NULL;
    atomic_store(&P.reaping, false);
    atomic_store(&P.closed, false);
}
