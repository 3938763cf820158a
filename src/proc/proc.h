/*
 * proc.h -- processes and messages (layer above sched/ and timer/; waiters
 * and futures are in future.h).
 *
 * A process is a task plus a mailbox, a reference count and private state
 * stored inline after the header. It holds a stack only while it runs a
 * message or is suspended inside one; between messages it is ~128 bytes.
 *
 * Mailbox: senders push onto a lock-free LIFO (`inbox`); the process takes
 * the whole list at once and reverses it into its private FIFO. Reversal
 * restores send order, so order is FIFO per sender and total per mailbox.
 *
 * Lifetime: `refs` counts handles plus one "scheduled" reference held for
 * as long as the task is not IDLE (queued, running or parked). A sender
 * that finds the process IDLE takes that reference *before* its CAS
 * IDLE->QUEUED (and gives it back if the CAS loses); the settle step gives
 * it back after moving the process to IDLE. Whoever brings refs to zero
 * frees the process: a releaser (the process was IDLE with an empty
 * mailbox: nothing remains to run) or the settle step (the last handle went
 * while it ran). Nobody can touch a process after that, because touching
 * one requires a reference.
 *
 * Messages being run are chained through `cur` (a call run inside
 * mote_receive nests in the receiving message), so a panic or shutdown can
 * cancel and free every one of them.
 */
#ifndef MOTE_PROC_H
#define MOTE_PROC_H

#include "proc/future.h"

_Static_assert(sizeof(uintptr_t) == 8, "the mailbox word (MOTE__MBOX_*) needs 64-bit pointers");

typedef struct mote__msg {
    struct mote__msg *next;
    mote_msg_fn fn;   /* NULL: data message (mote_send) or an exit notice */
    mote_future *fut; /* result goes here; NULL for casts */
    uint32_t size;
    uint32_t kind;    /* low byte: mote_msg_kind's MOTE_MSG_*; above: MOTE__MSG_* */
    _Alignas(16) unsigned char data[];
} mote__msg;

/* The kind mote_msg_kind reports (MOTE_MSG_DATA, _SIGNAL, _EXIT). */
#define MOTE__MSG_KIND(k) ((k) & 0xffu)
/* How a message is kept, above the kind: */
#define MOTE__MSG_REPLY 0x100u /* a process's mote_call: its reply future follows
                                * the argument bytes, and whoever of caller and
                                * callee finishes second frees the message */
#define MOTE__MSG_HEAP 0x200u  /* from malloc: a foreign thread's exit notice
                                * outlives the runtime */
#define MOTE__MSG_PROC_RESULT 0x400u /* a reply whose result is a process
                                      * reference (mote_sup_child): released
                                      * if the caller went without it. Set
                                      * by the handler on its own message
                                      * (p->cur), before it completes */
static inline bool mote__msg_is_exit(const mote__msg *m) {
    return MOTE__MSG_KIND(m->kind) == MOTE_MSG_EXIT;
}

/*
 * Process flags (one atomic word, so a canceller's store and a waiter's
 * load form a Dekker pair with the task state word: docs/design.md).
 */
#define MOTE__P_DEAD 1u      /* runs nothing more: messages are cancelled (panic, cancel) */
#define MOTE__P_DTOR_DONE 2u
#define MOTE__P_ENDED 4u     /* its end was reported to monitors and links */
#define MOTE__P_CANCEL 8u    /* cancel requested (MOTE__P_WHY says by whom) */
#define MOTE__P_TRAP 16u     /* traps exits: a linked end arrives as a message */
#define MOTE__P_START 32u    /* mote_spawn_fn's fn has not started: it runs even if
                              * cancelled (its waits refuse), so it can release
                              * what its argument owns */
#define MOTE__P_DAEMON 64u   /* a runtime service (the signal dispatcher): the
                              * grace after mote_stop does not wait for it */
#define MOTE__P_WARNED 128u   /* MOTE_WARN_BLOCKING reported it (once) */
#define MOTE__P_REASON_SHIFT 8  /* bits 8-9: MOTE_EXIT_* once ENDED */
#define MOTE__P_WHY_SHIFT 12    /* bits 12-14: MOTE__CANCEL_* once CANCEL */
#define MOTE__P_REASON(f) (((f) >> MOTE__P_REASON_SHIFT) & 3u)
#define MOTE__P_WHY(f) (((f) >> MOTE__P_WHY_SHIFT) & 7u)

/* Who cancelled a process: decides its exit reason and text. FAIL is a
 * process ending itself abnormally with ext->exit_text (a supervisor that
 * gave up): reason MOTE_EXIT_PANIC. */
enum {
    MOTE__CANCEL_USER,
    MOTE__CANCEL_DEADLINE,
    MOTE__CANCEL_LINK,
    MOTE__CANCEL_SHUTDOWN,
    MOTE__CANCEL_FAIL,
};

typedef struct mote__mon mote__mon;

/*
 * What only some processes need, allocated on first use (by the process
 * itself, by anyone monitoring or linking it, or by naming it). p->ext
 * holds its address with bit 0 (MOTE__EXT_CLOSED) set once the process
 * ended: a monitor that finds the bit reports at once. A block made after
 * the end (a name, a panic handler) keeps the bit, so monitors and
 * deadlines still see the end. Freed with the process.
 */
typedef struct mote__proc_ext {
    mote_panic_fn panic_fn; /* the process's own */
    void *panic_ctx;
    char name[MOTE_NAME_MAX]; /* written and read under the registry lock */
    mote_proc *proc;
    /* Monitor records (monitor.c): those watching this process (closed and
     * fired at its end) and those it watches through (closed at its end). */
    _Atomic(mote__mon *) mon_in;
    _Atomic(mote__mon *) mon_out;
    _Atomic uint32_t in_pushes, out_pushes; /* since the last prune (a hint) */
    _Atomic uint32_t in_kept, out_kept;     /* what the last prune kept */
    uint64_t next_ref;                      /* the process's monitor references */
    char *exit_text;                        /* a panic's message (owned) */
    /* mote_cancel_after (cancel.c): the timer holds a reference to proc. */
    mote__spinlock dl_lock;
    bool dl_armed, dl_closed;
    mote__timer deadline;
    /* Timed waits (future.h): set up on the process's first one, by the
     * process itself (task NULL until then); cancelled before the block
     * is freed. */
    mote__wake_timer sleep;
} mote__proc_ext;
#define MOTE__EXT_CLOSED ((uintptr_t)1)

/* The inbox word: the newest message's address in the low 48 bits, and
 * above them how many messages the list holds (saturating at 0xffff).
 * Linux gives user space addresses below 2^47 on x86-64 and 2^48 on
 * AArch64 unless a program asks mmap for more with a hint; malloc and
 * mote's slabs never do. The CAS that pushes a
 * message also counts it, so a dump can give a mailbox's length without
 * walking a list it does not own, at no cost to senders. */
#define MOTE__MBOX_SHIFT 48
#define MOTE__MBOX_MSG(w) ((mote__msg *)((w) & (((uintptr_t)1 << MOTE__MBOX_SHIFT) - 1)))
#define MOTE__MBOX_COUNT(w) ((uint32_t)((w) >> MOTE__MBOX_SHIFT))

struct mote_proc {
    mote__task task; /* first: a task pointer is a process pointer */
    _Atomic uintptr_t inbox; /* see MOTE__MBOX_* */
    mote__msg *fifo;
    _Atomic uint32_t refs;
    _Atomic uint32_t flags;
    _Atomic uint64_t recv_seq; /* park seq while waiting in mote_receive, else 0 */
    mote_dtor_fn dtor;
    uint64_t id;
    mote__msg *cur;  /* message being run */
    mote__msg *call; /* its mote_call in flight (freed at shutdown if abandoned) */
    _Atomic uintptr_t ext; /* mote__proc_ext *, | MOTE__EXT_CLOSED once ended */
    struct mote_proc *reg_prev, *reg_next;
    /* For dumps (the header is 128 bytes, state 16-aligned after it). */
    _Atomic uint32_t fifo_len; /* messages in fifo: written by the owner */
    uint32_t born_ms;          /* mote__coarse_ms() at spawn */
    _Alignas(16) unsigned char state[];
};

/* Largest argument of a message or mote_spawn_fn. */
#define MOTE__MAX_ARG ((size_t)1 << 30)

/* The next message of p's mailbox, in order (the process itself only).
 * Inline: a turn pops many. */
static inline mote__msg *mote__mbox_pop(mote_proc *p) {
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

/* proc.c: a process's life */
mote_proc *mote__proc_self(void);
/* Free p, whose last reference went (it is IDLE): its normal end. */
void mote__proc_destroy(mote_proc *p);
/* p's extension block even once p has ended (names, a panic handler);
 * NULL only if memory ran out. */
mote__proc_ext *mote__proc_ext_any(mote_proc *p);
/* Copy p's name into buf (""  if none): for reports. */
void mote__proc_name(const mote_proc *p, char *buf, size_t len);
void mote__proc_reap_all(void);
/* True while shutdown frees the remaining processes: their stacks are
 * discarded, so nothing they had started (a call in flight) will finish;
 * nothing is sent to a process any more, and no reference is dropped. */
bool mote__proc_reaping(void);
int mote__proc_spawn_main(mote_proc **out, int (*fn)(void *), void *arg, int *result);
/* A new reference to p unless its last one is already gone. */
bool mote__proc_ref_live(mote_proc *p);
/* p's extension block, made if need be; NULL if p has ended (its end was
 * reported: nothing that waits for it may use the block) or memory ran
 * out (*closed tells which). */
mote__proc_ext *mote__proc_ext_get(mote_proc *p, bool *closed);
static inline mote__proc_ext *mote__proc_ext_of(mote_proc *p) {
    return (mote__proc_ext *)(atomic_load(&p->ext) & ~MOTE__EXT_CLOSED);
}
/*
 * End p: report reason (MOTE_EXIT_*) to its monitors and links, run its
 * destructor, and, if dead, cancel its running and queued messages and
 * every later one. Once only (a later call may still make it dead). Runs in
 * p's own turn, or where its last reference went.
 */
void mote__proc_end(mote_proc *p, unsigned reason, bool dead);
/* Shutdown (stop.c): call fn on every process with a reference held. */
void mote__proc_each(void (*fn)(mote_proc *p, void *ctx), void *ctx);
/* True if pred holds for every process but main. */
bool mote__proc_all(bool (*pred)(mote_proc *p));
/* Spawning is refused (-ESHUTDOWN) once set. */
void mote__proc_close_spawning(bool closed);
/* Cancel the main process (mote_stop); -ESHUTDOWN if there is none. */
int mote__proc_cancel_main(void);
/* Mark the calling process a runtime service (MOTE__P_DAEMON). */
static inline void mote__proc_daemon(void) {
    mote_proc *p = mote__proc_self();
    if (p)
        atomic_fetch_or(&p->flags, MOTE__P_DAEMON);
}

/* turn.c: the scheduler's hooks, panics */
extern const mote__sched_hooks mote__proc_hooks;
void mote__proc_set_budget(unsigned budget); /* >= 1, before the scheduler starts */

/* message.c: messages and mailboxes */
void mote__msg_cancel(mote__msg *m);
/* Cancel the messages p is running and every queued one. */
void mote__msgs_cancel_all(mote_proc *p);
/* Queue m for p and give other processes a turn if this one's is long. */
void mote__proc_send(mote_proc *p, mote__msg *m);
void mote__msg_free(mote__msg *m);
mote__msg *mote__msg_new(mote_msg_fn fn, const void *arg, size_t size);
bool mote__mbox_nonempty(mote_proc *p);
/* Messages waiting in p's mailbox: exact when p is not running (a racy
 * snapshot, for dumps). */
uint32_t mote__mbox_length(mote_proc *p);
/* Take the first message in p's mailbox that match(m, ctx) accepts (the
 * process itself only). NULL if none. */
mote__msg *mote__mbox_take(mote_proc *p, bool (*match)(const mote__msg *m, const void *ctx),
                           const void *ctx);
void mote__msg_run(mote_proc *p, mote__msg *m);
/* Queue m for p (p must be referenced by the caller): no fairness yield,
 * so it is safe on paths that must not switch (a process's end). */
void mote__proc_post(mote_proc *p, mote__msg *m);
/* Make sure an IDLE p runs (the caller holds a reference). */
void mote__proc_kick(mote_proc *p);

/* stop.c: between main's return and the scheduler's stop (see there). */
void mote__proc_shutdown(bool graceful, int64_t grace);

/* cancel.c */
/* Cancel p (the caller holds a reference, or p is the main process). */
void mote__proc_cancel(mote_proc *p, unsigned why);
/* -ECANCELED if the calling process was cancelled, else 0. Every call
 * that can wait starts with it. */
int mote__cancel_check(void);
static inline bool mote__cancel_pending(mote_proc *p) {
    return atomic_load(&p->flags) & MOTE__P_CANCEL;
}
/* At p's end: drop the deadline timer and its reference. */
void mote__proc_deadline_end(mote__proc_ext *e);

/* monitor.c */
/* p ended: fire the records watching it, close those it watches through. */
void mote__mon_end(mote_proc *p, mote__proc_ext *e, unsigned reason);
/* The exit text of an ended process. */
const char *mote__exit_text(mote_proc *p);
void mote__mon_free_exit_msg(mote__msg *m);
/* mote_send with a kind other than MOTE_MSG_DATA (mote_msg_kind). */
int mote__send_kind(mote_proc *p, uint32_t kind, const void *data, size_t size);

/* A process as a dump sees it: a snapshot taken under the registry lock.
 * ref: the process was suspended and is referenced for the caller, who
 * looks at its stack and then releases it (mote_proc_release). */
typedef struct mote__proc_view {
    mote_proc *ref;
    mote__task *task;
    uint64_t id;
    uint64_t state; /* the task's state word */
    uint32_t mbox;  /* messages waiting */
    uint32_t age_ms;
    char name[MOTE_NAME_MAX];
} mote__proc_view;
/* Every process, in no order: a malloc'd array in *out, its length as the
 * result (or -ENOMEM). Holds each registry shard's lock only while it
 * copies that shard's views. With refs, suspended processes are
 * referenced (view.ref); without, view.ref is NULL. */
int64_t mote__proc_snapshot(mote__proc_view **out, bool refs);
/* Processes spawned by this runtime (ids are handed out in order). */
uint64_t mote__procs_spawned(void);

#endif
