/*
 * message.c -- messages and mailboxes: making, queueing and running
 * messages; cast, async, call and send; Erlang-style receive. The mailbox
 * invariants (FIFO per sender, the inbox word, the scheduled reference a
 * sender takes) are in proc.h.
 */
#include "proc/proc.h"
#include "base/alloc.h"

#include <errno.h>
#include <string.h>

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

/* Cancel the messages p is running (innermost first: a call run inside
 * mote_receive nests in the receiving message) and every queued one. */
void mote__msgs_cancel_all(mote_proc *p) {
    mote__msg *m = p->cur;
    p->cur = NULL;
    while (m) {
        mote__msg *outer = m->next;
        mote__msg_cancel(m);
        m = outer;
    }
    while ((m = mote__mbox_pop(p)))
        mote__msg_cancel(m);
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

void mote__proc_send(mote_proc *p, mote__msg *m) {
    mote__proc_post(p, m);
    mote__sched_tick();
}

static int check_send(mote_proc *p, const void *arg, size_t size) {
    if (!p || (size && !arg) || size > MOTE__MAX_ARG)
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
    mote__proc_send(p, m);
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
    mote__proc_send(p, m);
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
    mote__proc_send(p, m);
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
    mote__proc_send(p, m);
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
    mote__proc_send(p, m);
    return 0;
}

int mote_send(mote_proc *p, const void *data, size_t size) {
    return mote__send_kind(p, MOTE_MSG_DATA, data, size);
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
    int64_t deadline = mote__deadline(timeout);
    int r = -ETIMEDOUT;
    for (;;) {
        mote__msg *m = mote__mbox_pop(p);
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
