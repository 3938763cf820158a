/*
 * monitor.c -- monitors and links: being told when another process ends.
 *
 * A record (mote__mon) says "watcher W wants to know when target T ends".
 * It sits on up to two lock-free lists, each in a process's extension
 * block:
 *
 *   T->mon_in    records watching T. T's end swaps the list for CLOSED
 *                and fires each record; a record pushed onto a CLOSED
 *                list is fired by its pusher, with T's exit (the pusher
 *                holds a handle to T, so T and its exit text are there).
 *   W->mon_out   records W watches through (message monitors and links).
 *                W's end swaps it for CLOSED and turns each record OFF,
 *                so nothing is delivered to W once it has gone.
 *
 * A record's state decides, once, what happens to it: ARMED -> FIRING ->
 * FIRED (its target ended) or ARMED -> OFF (demonitor, unlink, or its
 * watcher ended). A record holds no reference to either process, so a
 * monitor never keeps anything alive:
 *
 *   - the target is reached only by those who hold a handle to it
 *     (monitor, link) or by the target itself (its end);
 *   - the watcher is reached only between ARMED -> FIRING and FIRED, and
 *     the watcher's end, turning its records OFF, waits for a FIRING one
 *     to become FIRED. The firer takes a reference to the watcher only if
 *     it still has one (mote__proc_ref_live), stores FIRED, and only then
 *     drops it (that drop may end the watcher, whose end must not wait for
 *     this record).
 *
 * Lists are Treiber stacks that are only ever pushed onto, taken whole, or
 * closed, so there is no ABA. Records turned OFF stay on the other list
 * until it is pruned (taken whole, filtered, pushed back: by the target's
 * monitors on mon_in, by the watcher on mon_out, every time the pushes
 * since the last prune outnumber what it kept) or closed. A record is
 * freed when every list holding it let go (refs). A link is two records
 * in one allocation (A watches B, B watches A) sharing one count.
 */
#include "proc/proc.h"
#include "base/alloc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum { MON_ARMED, MON_FIRING, MON_FIRED, MON_OFF };
enum { K_MSG, K_FUT, K_LINK };

#define LIST_CLOSED ((mote__mon *)1)
#define PRUNE_MIN 16u

struct mote__mon {
    mote__mon *next_in, *next_out;
    mote__mon *base; /* the allocation: itself, or a link's first half */
    _Atomic uint32_t state;
    _Atomic uint32_t refs; /* in base: one per list holding either half */
    uint32_t kind;
    uint64_t ref;       /* K_MSG: the reference the watcher was given */
    uint64_t target_id; /* K_LINK: for unlink */
    mote_proc *watcher; /* K_MSG, K_LINK: no reference (see above) */
    mote_future *fut;   /* K_FUT */
    mote__mon *peer;    /* K_LINK: the other direction */
};

/* The data of an exit notice (a mote__msg of kind MOTE_MSG_EXIT). */
typedef struct exit_body {
    uint64_t proc_id, ref;
    int32_t reason;
    bool link;
    char text[];
} exit_body;

typedef struct exit_info {
    unsigned reason;
    uint64_t id;
    const char *text;
} exit_info;

static void exit_of(mote_proc *p, exit_info *x) {
    x->reason = MOTE__P_REASON(atomic_load(&p->flags));
    x->id = p->id;
    x->text = mote__exit_text(p);
}

const char *mote__exit_text(mote_proc *p) {
    uint32_t f = atomic_load(&p->flags);
    mote__proc_ext *e;
    switch (MOTE__P_REASON(f)) {
    case MOTE_EXIT_NORMAL:
        return "normal";
    case MOTE_EXIT_PANIC:
        e = mote__proc_ext_of(p);
        return e && e->exit_text ? e->exit_text : "panic";
    case MOTE_EXIT_CANCELLED:
        switch (MOTE__P_WHY(f)) {
        case MOTE__CANCEL_DEADLINE:
            return "deadline passed";
        case MOTE__CANCEL_LINK:
            return "linked process ended";
        default:
            return "cancelled";
        }
    default:
        return "runtime shutdown";
    }
}

/* ---- Notices ---- */

static mote__msg *exit_msg(const exit_info *x, uint64_t ref, bool link, bool heap) {
    size_t tl = strlen(x->text) + 1, size = sizeof(exit_body) + tl;
    mote__msg *m = heap ? malloc(sizeof(mote__msg) + size) : mote__msg_new(NULL, NULL, size);
    if (!m)
        return NULL;
    m->next = NULL;
    m->fn = NULL;
    m->fut = NULL;
    m->size = (uint32_t)size;
    m->kind = MOTE_MSG_EXIT | (heap ? MOTE__MSG_HEAP : 0);
    exit_body *b = (exit_body *)(void *)m->data;
    b->proc_id = x->id;
    b->ref = ref;
    b->reason = (int32_t)x->reason;
    b->link = link;
    memcpy(b->text, x->text, tl);
    return m;
}

void mote__mon_free_exit_msg(mote__msg *m) {
    if (m->kind & MOTE__MSG_HEAP)
        free(m);
    else
        mote__msg_free(m);
}

bool mote_msg_exit(const mote_msg *m, mote_exit *out) {
    const mote__msg *mm = (const mote__msg *)(const void *)m;
    if (!mm || !mote__msg_is_exit(mm))
        return false;
    if (out) {
        const exit_body *b = (const exit_body *)(const void *)mm->data;
        out->reason = b->reason;
        out->link = b->link;
        out->proc_id = b->proc_id;
        out->ref = b->ref;
        out->text = b->text;
    }
    return true;
}

/* ---- Records and lists ---- */

/* Records come from the slabs (one per monitor, made and freed often). A
 * link's two records are one allocation. */
static mote__mon *mon_alloc(size_t n) {
    mote__mon *r = mote__alloc(n * sizeof *r);
    if (r)
        memset(r, 0, n * sizeof *r);
    return r;
}

static void mon_free(mote__mon *b) {
    mote__free(b, (b->kind == K_LINK ? 2 : 1) * sizeof *b);
}

static mote__mon *mon_new(uint32_t kind, uint32_t refs) {
    mote__mon *r = mon_alloc(1);
    if (!r)
        return NULL;
    r->base = r;
    r->kind = kind;
    atomic_init(&r->refs, refs);
    return r;
}

static void mon_unref(mote__mon *r) {
    mote__mon *b = r->base;
    if (atomic_fetch_sub(&b->refs, 1) == 1)
        mon_free(b);
}

static mote__mon **next_of(mote__mon *r, bool in) {
    return in ? &r->next_in : &r->next_out;
}

/* Push the chain first..last; false if the list is closed (the chain is
 * still the caller's). */
static bool list_push(_Atomic(mote__mon *) *list, mote__mon *first, mote__mon *last, bool in) {
    mote__mon *h = atomic_load(list);
    do {
        if (h == LIST_CLOSED)
            return false;
        *next_of(last, in) = h;
    } while (!atomic_compare_exchange_weak(list, &h, first));
    return true;
}

/* The whole list (NULL if empty), or LIST_CLOSED. */
static mote__mon *list_take(_Atomic(mote__mon *) *list) {
    mote__mon *h = atomic_load(list);
    while (h && h != LIST_CLOSED && !atomic_compare_exchange_weak(list, &h, NULL))
        ;
    return h;
}

/* ARMED -> OFF, or wait until a firing record is FIRED: after this no
 * firer touches its watcher. */
static void mon_off(mote__mon *r) {
    uint32_t s = MON_ARMED;
    if (atomic_compare_exchange_strong(&r->state, &s, MON_OFF))
        return;
    while (atomic_load(&r->state) == MON_FIRING)
        mote__cpu_relax();
}

/* The watcher of a message monitor or a link learns of the end. Between
 * FIRING and FIRED nothing here may wait for anything. */
static void deliver(mote__mon *r, const exit_info *x) {
    mote_proc *w = r->watcher;
    bool live = !mote__proc_reaping() && mote__proc_ref_live(w);
    if (live) {
        bool link = r->kind == K_LINK, trap = atomic_load(&w->flags) & MOTE__P_TRAP;
        if (link && x->reason != MOTE_EXIT_NORMAL && !trap) {
            mote__proc_cancel(w, MOTE__CANCEL_LINK);
        } else if (!link || trap) {
            mote__msg *m = exit_msg(x, r->ref, link, false);
            if (m) /* out of memory: the notice is lost (nothing better to do here) */
                mote__proc_post(w, m);
        }
    }
    atomic_store(&r->state, MON_FIRED);
    if (live)
        mote_proc_release(w);
}

static void mon_fire(mote__mon *r, const exit_info *x) {
    uint32_t s = MON_ARMED;
    if (!atomic_compare_exchange_strong(&r->state, &s, MON_FIRING))
        return; /* turned OFF */
    if (r->kind != K_FUT) {
        deliver(r, x);
        return;
    }
    mote__msg *m = exit_msg(x, 0, false, r->fut->foreign);
    if (!mote__future_complete(r->fut, m ? mote_ok_p(m) : mote_error(-ENOMEM)) && m)
        mote__mon_free_exit_msg(m); /* the future had been dropped */
    atomic_store(&r->state, MON_FIRED);
}

/* Fire a chain (linked through next_in) with target's exit and drop it. */
static void fire_chain(mote__mon *r, const exit_info *x) {
    while (r) {
        mote__mon *next = r->next_in;
        mon_fire(r, x);
        mon_unref(r);
        r = next;
    }
}

/* Nothing more will come of r on this list. */
static bool spent(mote__mon *r, bool in) {
    uint32_t s = atomic_load(&r->state);
    if (in && s == MON_ARMED && r->kind == K_FUT && atomic_load(&r->fut->w) == MOTE__FW_DROPPED) {
        /* The consumer dropped the future: completing it frees it. */
        if (atomic_compare_exchange_strong(&r->state, &s, MON_OFF))
            mote__future_complete(r->fut, mote_error(-ECANCELED));
        return true;
    }
    return s == MON_OFF || (!in && s == MON_FIRED);
}

/*
 * Drop the spent records of a list when the pushes since the last prune
 * outnumber what the last prune kept (so pruning costs O(1) per push).
 * target is the list's process; it may end while we hold the records (only
 * for mon_in: mon_out is pruned by its owner), and then we fire them.
 */
static void prune(mote_proc *target, mote__proc_ext *e, bool in) {
    _Atomic uint32_t *pushes = in ? &e->in_pushes : &e->out_pushes;
    _Atomic uint32_t *kept = in ? &e->in_kept : &e->out_kept;
    uint32_t n = atomic_fetch_add_explicit(pushes, 1, memory_order_relaxed) + 1;
    uint32_t k = atomic_load_explicit(kept, memory_order_relaxed);
    if (n < PRUNE_MIN || n <= k)
        return;
    atomic_store_explicit(pushes, 0, memory_order_relaxed);
    _Atomic(mote__mon *) *list = in ? &e->mon_in : &e->mon_out;
    mote__mon *r = list_take(list), *keep = NULL, *last = NULL;
    if (r == LIST_CLOSED)
        return;
    uint32_t count = 0;
    while (r) {
        mote__mon *next = *next_of(r, in);
        if (spent(r, in)) {
            mon_unref(r);
        } else {
            *next_of(r, in) = keep;
            if (!keep)
                last = r;
            keep = r;
            count++;
        }
        r = next;
    }
    atomic_store_explicit(kept, count, memory_order_relaxed);
    if (keep && !list_push(list, keep, last, in)) {
        exit_info x;
        exit_of(target, &x);
        fire_chain(keep, &x);
    }
}

/* Put r on target's watchers, or fire it now if target has ended. The
 * caller holds a handle to target. */
static int watch(mote_proc *target, mote__mon *r) {
    bool closed;
    mote__proc_ext *e = mote__proc_ext_get(target, &closed);
    if (!e && !closed)
        return -ENOMEM;
    if (e) {
        prune(target, e, true);
        if (list_push(&e->mon_in, r, r, true))
            return 0;
    }
    exit_info x;
    exit_of(target, &x);
    r->next_in = NULL;
    fire_chain(r, &x);
    return 0;
}

/* Push r onto the caller's own mon_out (open while it runs). */
static void watch_out(mote_proc *self, mote__proc_ext *me, mote__mon *r) {
    prune(self, me, false);
    list_push(&me->mon_out, r, r, false);
}

void mote__mon_end(mote_proc *p, mote__proc_ext *e, unsigned reason) {
    exit_info x = {reason, p->id, mote__exit_text(p)};
    mote__mon *r = atomic_exchange(&e->mon_in, LIST_CLOSED);
    if (r != LIST_CLOSED)
        fire_chain(r, &x);
    r = atomic_exchange(&e->mon_out, LIST_CLOSED);
    while (r && r != LIST_CLOSED) {
        mote__mon *next = r->next_out;
        mon_off(r);
        mon_unref(r);
        r = next;
    }
}

/* ---- Monitors ---- */

/* The calling process and its block; -EPERM outside a process or once it
 * has ended (a mote_spawn_fn process serving calls after its fn), -EINVAL
 * if other (the process to watch, if any) is the caller. */
static int self_ext(const mote_proc *other, mote_proc **self, mote__proc_ext **e) {
    *self = mote__proc_self();
    if (!*self)
        return -EPERM;
    if (other == *self)
        return -EINVAL;
    bool closed;
    *e = mote__proc_ext_get(*self, &closed);
    return *e ? 0 : closed ? -EPERM : -ENOMEM;
}

int mote_monitor(mote_proc *target, uint64_t *ref) {
    if (ref)
        *ref = 0;
    if (!target || !ref)
        return -EINVAL;
    mote_proc *self;
    mote__proc_ext *me;
    int r = self_ext(target, &self, &me);
    if (r < 0)
        return r;
    mote__mon *m = mon_new(K_MSG, 2);
    if (!m)
        return -ENOMEM;
    m->watcher = self;
    m->ref = ++me->next_ref;
    m->target_id = target->id;
    watch_out(self, me, m);
    if ((r = watch(target, m)) < 0) {
        mon_off(m);
        mon_unref(m); /* the reference mon_in would have held */
        return r;
    }
    *ref = m->ref;
    return 0;
}

int mote_monitor_future(mote_proc *target, mote_future **out) {
    if (out)
        *out = NULL;
    if (!target || !out)
        return -EINVAL;
    if (!mote__sched_running())
        return -ESHUTDOWN;
    mote__mon *m = mon_new(K_FUT, 1);
    mote_future *f = m ? mote__future_new(MOTE__FUT_EXIT) : NULL;
    if (!f) {
        if (m)
            mon_free(m);
        return -ENOMEM;
    }
    m->fut = f;
    m->target_id = target->id;
    int r = watch(target, m);
    if (r < 0) {
        mon_free(m);
        mote__future_release(f);
        return r;
    }
    *out = f;
    return 0;
}

static bool is_notice(const mote__msg *m, const void *ctx) {
    return mote__msg_is_exit(m) && !((const exit_body *)(const void *)m->data)->link &&
           ((const exit_body *)(const void *)m->data)->ref == *(const uint64_t *)ctx;
}

int mote_demonitor(uint64_t ref) {
    mote_proc *self;
    mote__proc_ext *me;
    int r = self_ext(NULL, &self, &me);
    if (r < 0 || ref == 0)
        return r < 0 ? r : -ENOENT;
    /* Only this process prunes or closes its mon_out: walking it is safe
     * while others push onto its head. */
    for (mote__mon *m = atomic_load(&me->mon_out); m && m != LIST_CLOSED; m = m->next_out) {
        if (m->kind != K_MSG || m->ref != ref)
            continue;
        uint32_t s = MON_ARMED;
        if (atomic_compare_exchange_strong(&m->state, &s, MON_OFF))
            return 0; /* never fired: no notice exists */
        mon_off(m);   /* a notice is in the mailbox now, unless received */
        break;
    }
    mote__msg *n = mote__mbox_take(self, is_notice, &ref);
    if (!n)
        return -ENOENT;
    mote__mon_free_exit_msg(n);
    return 0;
}

/* ---- Links ---- */

static mote__mon *find_link(mote__proc_ext *me, uint64_t target_id) {
    for (mote__mon *m = atomic_load(&me->mon_out); m && m != LIST_CLOSED; m = m->next_out)
        if (m->kind == K_LINK && m->target_id == target_id && atomic_load(&m->state) == MON_ARMED)
            return m;
    return NULL;
}

int mote_link(mote_proc *p) {
    if (!p)
        return -EINVAL;
    mote_proc *self;
    mote__proc_ext *me;
    int r = self_ext(p, &self, &me);
    if (r < 0)
        return r;
    if (find_link(me, p->id))
        return 0;
    mote__mon *h = mon_alloc(2);
    if (!h)
        return -ENOMEM;
    mote__mon *mine = &h[0], *theirs = &h[1]; /* self watches p; p watches self */
    for (int i = 0; i < 2; i++) {
        h[i].base = h;
        h[i].kind = K_LINK;
        h[i].peer = &h[1 - i];
    }
    atomic_init(&h->refs, 4);
    mine->watcher = self;
    mine->target_id = p->id;
    theirs->watcher = p;
    theirs->target_id = self->id;
    watch_out(self, me, mine);
    prune(self, me, true);
    list_push(&me->mon_in, theirs, theirs, true); /* open: self runs */
    bool closed;
    mote__proc_ext *pe = mote__proc_ext_get(p, &closed);
    if (!pe && !closed) {
        mon_off(mine);
        mon_off(theirs);
        mon_unref(h);
        mon_unref(h);
        return -ENOMEM;
    }
    /* p may end at any point from here: its end turns `theirs` OFF if it
     * got onto p's mon_out, and fires `mine` if it got onto p's mon_in;
     * whatever did not get on, we do the same for. */
    if (!pe || !list_push(&pe->mon_out, theirs, theirs, false)) {
        mon_off(theirs);
        mon_unref(theirs);
    }
    return watch(p, mine);
}

int mote_unlink(mote_proc *p) {
    if (!p)
        return -EINVAL;
    mote_proc *self;
    mote__proc_ext *me;
    int r = self_ext(p, &self, &me);
    if (r < 0)
        return r;
    mote__mon *m = find_link(me, p->id);
    if (m) {
        mon_off(m);
        mon_off(m->peer);
    }
    return 0;
}

int mote_trap_exits(bool on) {
    mote_proc *self = mote__proc_self();
    if (!self)
        return -EPERM;
    if (on)
        atomic_fetch_or(&self->flags, MOTE__P_TRAP);
    else
        atomic_fetch_and(&self->flags, ~MOTE__P_TRAP);
    return 0;
}
