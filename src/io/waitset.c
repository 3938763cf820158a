/*
 * waitset.c -- one wait over futures, descriptors, the mailbox and timers,
 * in O(ready) (Go's select, libdill's choose, epoll's persistence).
 *
 * A set is persistent: each source registers once, as a *hook* in the
 * single-waiter slot of its origin (a future's word, a poll descriptor's
 * direction; proc/future.h), or as a timer. When the origin fires it
 * notifies the hook (through BUSY, as it would wake a waiter) and leaves it
 * in place; the notify ORs the reason into the source's `pending` bits, and
 * the source whose bits go from 0 to non-zero pushes itself onto the set's
 * inbox (a lock-free LIFO). So a wait costs what became ready, never n.
 *
 * Invariants:
 *   - pending != 0  <=>  the source is on the inbox or the owner's fifo.
 *     Notifiers set bits and push; the owner takes the bits when it
 *     reports the source, after taking it off its fifo, and, for a source
 *     that leaves the set, only after it left its origin.
 *   - Only the push that makes the inbox non-empty wakes the owner: the
 *     owner arms its waiter, then looks at the inbox (seq_cst both sides),
 *     so a later push onto an empty inbox wakes it, and an earlier one is
 *     seen; a push onto a non-empty inbox finds one that will be seen.
 *   - A source is freed only after it left its origin (unhook spins past
 *     BUSY, a timer cancel waits for a fire under way): no notifier touches
 *     it, or the set, afterwards. If it is still queued then, it is marked
 *     dead and freed when the owner takes it off the list.
 *   - The mailbox is level-triggered and needs no hook: a waiting owner
 *     publishes its park sequence in recv_seq, as mote_receive does.
 */
#include <errno.h>
#include <stdlib.h>

#include "io/internal.h"

#define HASH_MIN 16 /* buckets of a new set; doubled when count exceeds them */

typedef struct source {
    mote__hook hook; /* first: a slot holds its address */
    struct mote_waitset *ws;
    uint64_t tag;
    int kind;
    _Atomic unsigned pending; /* MOTE__HOOK_* bits not yet reported */
    struct source *next;      /* inbox or fifo */
    struct source *hnext;     /* hash chain */
    bool dead;                /* removed while queued: freed off the list */
    union {
        mote_future *f;
        struct {
            int fd, events;
            mote__pdesc *pd;
            uint32_t gen;
        } fd;
        mote__timer timer;
    } u;
} source;

struct mote_waitset {
    mote__waiter w;          /* the owner's: a push onto an empty inbox wakes it */
    _Atomic(source *) inbox; /* newest first */
    source *fifo, *fifo_tail; /* taken off the inbox, oldest first, not yet reported */
    source **buckets;
    size_t nbuckets, count;
    source *mailbox;
    mote_proc *owner; /* a reference; NULL for a foreign thread */
};

/* ---- Tags ---- */

static size_t bucket_of(const mote_waitset *ws, uint64_t tag) {
    return (size_t)((tag * 0x9e3779b97f4a7c15u) >> 32) & (ws->nbuckets - 1);
}

static source *lookup(mote_waitset *ws, uint64_t tag) {
    source *s = ws->buckets[bucket_of(ws, tag)];
    while (s && s->tag != tag)
        s = s->hnext;
    return s;
}

static int hash_grow(mote_waitset *ws) {
    size_t n = ws->nbuckets * 2;
    source **b = calloc(n, sizeof *b);
    if (!b)
        return -ENOMEM;
    source **old = ws->buckets;
    size_t oldn = ws->nbuckets;
    ws->buckets = b;
    ws->nbuckets = n;
    for (size_t i = 0; i < oldn; i++)
        for (source *s = old[i], *next; s; s = next) {
            next = s->hnext;
            size_t k = bucket_of(ws, s->tag);
            s->hnext = b[k];
            b[k] = s;
        }
    free(old);
    return 0;
}

static void hash_insert(mote_waitset *ws, source *s) {
    size_t k = bucket_of(ws, s->tag);
    s->hnext = ws->buckets[k];
    ws->buckets[k] = s;
    ws->count++;
}

static void hash_remove(mote_waitset *ws, source *s) {
    source **pp = &ws->buckets[bucket_of(ws, s->tag)];
    while (*pp != s)
        pp = &(*pp)->hnext;
    *pp = s->hnext;
    ws->count--;
}

/* ---- Notifying: any thread ---- */

static void src_notify(mote__hook *h, unsigned why) {
    source *s = (source *)h;
    if (atomic_fetch_or(&s->pending, why) != 0)
        return; /* queued already: the owner reads the bits when it reports it */
    mote_waitset *ws = s->ws;
    source *head = atomic_load_explicit(&ws->inbox, memory_order_relaxed);
    do
        s->next = head;
    while (!atomic_compare_exchange_weak(&ws->inbox, &head, s));
    if (head)
        return; /* whoever made the inbox non-empty woke the owner */
    MOTE_STORE_LOAD_FENCE(); /* pushed; now read the owner's park sequence */
    mote__waiter_wake(&ws->w);
}

/* Under the timer lock. */
static void src_timer_fire(mote__timer *t) {
    src_notify(&mote__container_of(t, source, u.timer)->hook, MOTE__HOOK_DONE);
}

/* ---- Letting go of a source (the owner) ---- */

/* Take s out of its origin: afterwards nothing notifies it. For a future,
 * the future is as if never added (and dropped now if it was dropped
 * meanwhile); returns its MOTE__HOOK_* bits. */
static unsigned src_leave(mote_waitset *ws, source *s) {
    switch (s->kind) {
    case MOTE_WS_FUTURE:
        return mote__future_unhook(s->u.f, &s->hook);
    case MOTE_WS_FD:
        for (int d = 0; d < 2; d++)
            if (s->u.fd.events & (d ? MOTE_WRITABLE : MOTE_READABLE)) {
                mote__slot_unhook(&s->u.fd.pd->slot[d], &s->hook);
                /* Readiness not yet reported stays for the next waiter
                 * (not a closed descriptor's: its number may be reused). */
                unsigned bit = d ? MOTE__HOOK_WRITE : MOTE__HOOK_READ;
                bool keep = (atomic_load(&s->pending) & bit) && atomic_load(&s->u.fd.pd->gen) == s->u.fd.gen;
                atomic_store(&s->u.fd.pd->slot[d], keep ? MOTE__PD_READY : 0);
            }
        return 0;
    case MOTE_WS_TIMER:
        mote__timer_cancel(&s->u.timer); /* final: a fire under way finishes */
        return 0;
    default: /* the mailbox */
        ws->mailbox = NULL;
        return 0;
    }
}

/* s left its origin and the hash: free it now, or once it is off the list. */
static void src_free(source *s) {
    if (atomic_load(&s->pending))
        s->dead = true;
    else
        free(s);
}

/* ---- The owner's calls ---- */

static bool is_owner(const mote_waitset *ws) {
    return ws && ws->w.task == mote__task_current();
}

int mote_waitset_new(mote_waitset **out) {
    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!mote__sched_running())
        return -ESHUTDOWN;
    mote_waitset *ws = calloc(1, sizeof *ws);
    source **b = calloc(HASH_MIN, sizeof *b);
    if (!ws || !b) {
        free(ws);
        free(b);
        return -ENOMEM;
    }
    mote__waiter_init(&ws->w);
    ws->buckets = b;
    ws->nbuckets = HASH_MIN;
    /* A reference: notifiers wake the owner's task even if the process
     * ends before it frees the set. */
    ws->owner = mote__proc_self();
    if (ws->owner)
        mote_proc_ref(ws->owner);
    *out = ws;
    return 0;
}

/* A new source of kind with tag, not yet in the hash. */
static int src_new(mote_waitset *ws, uint64_t tag, int kind, source **out) {
    if (!is_owner(ws))
        return ws ? -EPERM : -EINVAL;
    if (lookup(ws, tag))
        return -EEXIST;
    if (ws->count >= ws->nbuckets && hash_grow(ws) < 0)
        return -ENOMEM;
    source *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->hook.notify = src_notify;
    s->ws = ws;
    s->tag = tag;
    s->kind = kind;
    *out = s;
    return 0;
}

int mote_waitset_add_future(mote_waitset *ws, mote_future *f, uint64_t tag) {
    if (!f)
        return -EINVAL;
    source *s;
    int r = src_new(ws, tag, MOTE_WS_FUTURE, &s);
    if (r < 0)
        return r;
    s->u.f = f;
    r = mote__future_hook(f, &s->hook);
    if (r < 0) {
        free(s);
        return r;
    }
    hash_insert(ws, s);
    if (r == 0) /* done already: the next wait reports it */
        src_notify(&s->hook, MOTE__HOOK_DONE);
    return 0;
}

int mote_waitset_add_fd(mote_waitset *ws, int fd, int events, uint64_t tag) {
    if (!events || (events & ~(MOTE_READABLE | MOTE_WRITABLE)))
        return -EINVAL;
    if (fd < 0 || (unsigned)fd >= MOTE__PD_MAX_FD)
        return -EBADF;
    source *s;
    int r = src_new(ws, tag, MOTE_WS_FD, &s);
    if (r < 0)
        return r;
    mote__pdesc *pd;
    r = mote__pd_prepare(fd, &pd);
    if (r == 0 && atomic_load(&pd->astate) != MOTE__A_OFF)
        r = -EBUSY; /* an active socket: its readiness goes to a process as calls */
    if (r < 0) {
        free(s);
        return r;
    }
    s->u.fd.fd = fd;
    s->u.fd.pd = pd;
    s->u.fd.gen = atomic_load(&pd->gen);
    unsigned ready = 0;
    for (int d = 0; d < 2 && r == 0; d++) {
        if (!(events & (d ? MOTE_WRITABLE : MOTE_READABLE)))
            continue;
        for (;;) { /* 0 or READY (kept readiness, taken now) -> our hook */
            uintptr_t v = atomic_load(&pd->slot[d]);
            if (v == 0 || v == MOTE__PD_READY) {
                if (atomic_compare_exchange_weak(&pd->slot[d], &v, (uintptr_t)&s->hook)) {
                    ready |= v == MOTE__PD_READY ? (d ? MOTE__HOOK_WRITE : MOTE__HOOK_READ) : 0;
                    s->u.fd.events |= d ? MOTE_WRITABLE : MOTE_READABLE;
                    break;
                }
            } else if (v == MOTE__SLOT_BUSY) {
                mote__cpu_relax();
            } else {
                r = -EBUSY; /* a waiter, or another set: one per direction */
                break;
            }
        }
    }
    if (r < 0) {
        src_leave(ws, s); /* the direction hooked already, if any */
        free(s);
        return r;
    }
    hash_insert(ws, s);
    /* Readiness consumed before (by a wait that then did not read to
     * EAGAIN) raises no new edge: ask the descriptor once, now. */
    int now = mote__fd_poll_now(fd, events);
    if (now > 0)
        ready |= (now & MOTE_READABLE ? MOTE__HOOK_READ : 0) | (now & MOTE_WRITABLE ? MOTE__HOOK_WRITE : 0);
    if (ready)
        src_notify(&s->hook, ready);
    return 0;
}

int mote_waitset_add_mailbox(mote_waitset *ws, uint64_t tag) {
    source *s;
    int r = src_new(ws, tag, MOTE_WS_MAILBOX, &s);
    if (r == 0 && (!ws->owner || ws->mailbox)) {
        free(s);
        r = ws->owner ? -EEXIST : -EPERM; /* one mailbox; a foreign thread has none */
    }
    if (r < 0)
        return r;
    hash_insert(ws, s);
    ws->mailbox = s;
    return 0;
}

int mote_waitset_add_timer(mote_waitset *ws, int64_t ns, uint64_t tag) {
    source *s;
    int r = src_new(ws, tag, MOTE_WS_TIMER, &s);
    if (r < 0)
        return r;
    mote__timer_init(&s->u.timer, src_timer_fire);
    if ((r = mote__timer_set(&s->u.timer, mote__now() + (ns > 0 ? ns : 0))) < 0) {
        mote__timer_cancel(&s->u.timer);
        free(s);
        return r;
    }
    hash_insert(ws, s);
    return 0;
}

int mote_waitset_remove(mote_waitset *ws, uint64_t tag) {
    if (!is_owner(ws))
        return ws ? -EPERM : -EINVAL;
    source *s = lookup(ws, tag);
    if (!s)
        return -ENOENT;
    hash_remove(ws, s);
    src_leave(ws, s);
    src_free(s);
    return 0;
}

/* Move the inbox, oldest first, behind the fifo. */
static void take_inbox(mote_waitset *ws) {
    source *s = atomic_exchange(&ws->inbox, NULL), *rev = NULL, *last = s;
    while (s) {
        source *next = s->next;
        s->next = rev;
        rev = s;
        s = next;
    }
    if (!rev)
        return;
    if (ws->fifo_tail)
        ws->fifo_tail->next = rev;
    else
        ws->fifo = rev;
    ws->fifo_tail = last;
}

/* One source taken off the list: fill *e and return true if it is to be
 * reported. One that leaves the set leaves its origin *before* its bits are
 * taken: a notify after that could find them 0 and list it again, just
 * before it is freed. */
static bool report(mote_waitset *ws, source *s, mote_waitset_event *e) {
    if (s->dead) { /* it left its origin when removed: nothing lists it again */
        free(s);
        return false;
    }
    e->tag = s->tag;
    e->kind = s->kind;
    e->events = MOTE_READABLE;
    if (s->kind == MOTE_WS_FD && atomic_load(&s->u.fd.pd->gen) == s->u.fd.gen) {
        unsigned bits = atomic_exchange(&s->pending, 0); /* it stays: a later edge lists it again */
        e->events = ((bits & MOTE__HOOK_READ) ? MOTE_READABLE : 0) | ((bits & MOTE__HOOK_WRITE) ? MOTE_WRITABLE : 0);
        return e->events != 0;
    }
    /* A future, a timer or a closed descriptor: reported once, then gone. */
    if (s->kind == MOTE_WS_FD)
        e->events = -EBADF;
    hash_remove(ws, s);
    unsigned what = src_leave(ws, s);
    free(s);
    return !(what & MOTE__HOOK_DROPPED); /* a future dropped meanwhile: dropped now, not reported */
}

/* What is ready now, at most cap events. */
static int collect(mote_waitset *ws, mote_waitset_event *out, size_t cap) {
    size_t n = 0;
    if (ws->mailbox && mote__mbox_nonempty(ws->owner)) {
        out[n++] = (mote_waitset_event){ws->mailbox->tag, MOTE_WS_MAILBOX, MOTE_READABLE};
    }
    take_inbox(ws);
    while (n < cap && ws->fifo) {
        source *s = ws->fifo;
        ws->fifo = s->next;
        if (!ws->fifo)
            ws->fifo_tail = NULL;
        if (report(ws, s, &out[n]))
            n++;
    }
    return (int)n;
}

int mote_waitset_wait(mote_waitset *ws, mote_waitset_event *out, size_t cap, int64_t timeout) {
    if (!ws || !out || cap == 0)
        return -EINVAL;
    if (!is_owner(ws))
        return -EPERM;
    /* Like every wait, a cancelled process's returns at once, even with
     * sources ready: they stay listed for whoever looks again. */
    int n = mote__cancel_check();
    if (n < 0)
        return n;
    n = collect(ws, out, cap);
    if (n > 0)
        return n;
    if (timeout == 0)
        return -ETIMEDOUT;
    int64_t deadline = timeout < 0 ? -1 : mote__now() + timeout;
    atomic_store(&ws->w.timed_out, false);
    ws->w.err = 0;
    ws->w.cancelled = false;
    mote__waiter_note(&ws->w, MOTE__WAIT_WAITSET, ws->count > INT32_MAX ? INT32_MAX : (int32_t)ws->count, 0);
    for (;;) {
        mote_proc *p = ws->mailbox ? ws->owner : NULL;
        if (!mote__waiter_arm(&ws->w))
            return -ECANCELED; /* cancelled while it waited (or as it began) */
        if (p) {
            atomic_store(&p->recv_seq, atomic_load(&ws->w.seq));
            MOTE_STORE_LOAD_FENCE();
        }
        if (!atomic_load(&ws->inbox) && !ws->fifo && !(p && mote__mbox_nonempty(p)) &&
            !atomic_load(&ws->w.timed_out))
            mote__waiter_sleep(&ws->w, deadline);
        if (p)
            atomic_store(&p->recv_seq, 0);
        if ((n = collect(ws, out, cap)) > 0)
            return n;
        if (atomic_load(&ws->w.timed_out))
            return -ETIMEDOUT;
        if (ws->w.err) /* the wait could not start: no stack, no timer room */
            return ws->w.err;
    }
}

void mote_waitset_free(mote_waitset *ws) {
    if (!ws)
        return;
    for (size_t i = 0; i < ws->nbuckets; i++)
        for (source *s = ws->buckets[i], *next; s; s = next) {
            next = s->hnext;
            src_leave(ws, s);
            src_free(s);
        }
    /* Nothing notifies any more: what is still listed is dead. */
    take_inbox(ws);
    for (source *s = ws->fifo, *next; s; s = next) {
        next = s->next;
        free(s);
    }
    free(ws->buckets);
    mote_proc_release(ws->owner);
    free(ws);
}
