/*
 * proc.c -- a process's life: spawning, references, the registry (for
 * dumps and shutdown), the extension block, names, the end (monitors,
 * destructor, cancelled messages), the main process and the shutdown
 * reaping. Messages are in message.c, a turn and panics in turn.c. The
 * invariants (the scheduled reference, who frees a process) are in proc.h;
 * the end in docs/design.md ("Ending").
 */
#include "proc/proc.h"
#include "base/alloc.h"
#include "debug/trace.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PREG_SHARDS 16
#define MAX_STATE ((size_t)1 << 30)

static struct {
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

void mote__proc_end(mote_proc *p, unsigned reason, bool dead) {
    if (dead)
        atomic_fetch_or(&p->flags, MOTE__P_DEAD);
    uint32_t f = atomic_load(&p->flags);
    do {
        if (f & MOTE__P_ENDED) { /* a mote_spawn_fn process whose fn returned */
            if (dead)
                mote__msgs_cancel_all(p);
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
    if (dead)
        mote__msgs_cancel_all(p);
}

/* Free a process nobody can reach any more: its normal end. With no
 * reference left nobody can monitor it any more, and whoever did is on its
 * block: without one there is nobody to tell (the common case, cheap). */
void mote__proc_destroy(mote_proc *p) {
    MOTE_ASSERT(atomic_load(&p->refs) == 0);
    MOTE_ASSERT_MSG(MOTE__ST(atomic_load(&p->task.state)) == MOTE__IDLE,
                    "the last reference went while the process was scheduled");
    mote__count(MOTE__CTR_FINISHED, 1);
    if (atomic_load_explicit(&p->ext, memory_order_relaxed))
        mote__proc_end(p, MOTE_EXIT_NORMAL, false);
    else
        run_dtor(p);
    mote__msgs_cancel_all(p);
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
mote__proc_ext *mote__proc_ext_any(mote_proc *p) {
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
 * without a race; a dtor's sleep after the end still gets one (mote__proc_ext_any). */
mote__wake_timer *mote__task_wake_timer(mote__task *t) {
    mote_proc *p = (mote_proc *)t; /* a task is a process's first member */
    mote__proc_ext *e = mote__proc_ext_any(p);
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
    if (!fn || (size && !arg) || size > MOTE__MAX_ARG)
        return -EINVAL;
    if (!mote__sched_running())
        return -ESHUTDOWN;
    mote__msg *m = mote__msg_new(spawn_fn_start, NULL, sizeof(spawn_fn_args) + size);
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
        mote__msg_free(m);
        return err;
    }
    mote__proc_send(p, m);
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
    /* While shutdown reaps, the reaper frees every process in its walk: a
     * destructor it runs that releases another process (a supervisor's
     * children) must not free one the walk has yet to reach. */
    if (held == 1 && !mote__proc_reaping())
        mote__proc_destroy(p);
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
 * the block is made even then (mote__proc_ext_any); only memory can fail it. */
int mote_proc_set_name(mote_proc *p, const char *name) {
    if (!p)
        return -EINVAL;
    size_t len = name ? strlen(name) : 0;
    mote__proc_ext *e = len ? mote__proc_ext_any(p) : mote__proc_ext_of(p);
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
    mote__msg *m = mote__msg_new(main_start, &a, sizeof a);
    int err = -ENOMEM;
    mote_proc *p = m ? proc_alloc(0, NULL, NULL, 0, &err) : NULL; /* its reference: the scheduled one */
    if (!p) {
        mote__msg_free(m);
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

/* A process that ignored its cancel (or never ran since): its monitors
 * learn of the shutdown (futures only: no process runs any more). */
static void reap_end(mote_proc *p) {
    mote__proc_end(p, MOTE_EXIT_SHUTDOWN, true);
}

static void reap_free(mote_proc *p) {
    mote__task_discard_stack(&p->task);
    if (p->call) /* suspended in mote_call: the reply was cancelled above */
        mote__msg_free(p->call);
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
    reap_each(mote__msgs_cancel_all);
    reap_each(reap_end);
    reap_each(reap_free);
    for (int i = 0; i < PREG_SHARDS; i++)
        P.reg[i].head = NULL;
    atomic_store(&P.reaping, false);
    atomic_store(&P.closed, false);
}
