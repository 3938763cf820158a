/*
 * proc.h -- processes, messages and futures (layer above sched/ and timer/).
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

#include "sched/sched.h"
#include "timer/timer.h"

_Static_assert(sizeof(uintptr_t) == 8, "the mailbox word (MOTE__MBOX_*) needs 64-bit pointers");

typedef struct mote__msg {
    struct mote__msg *next;
    mote_msg_fn fn;   /* NULL: data message (mote_send) */
    mote_future *fut; /* result goes here; NULL for casts */
    uint32_t size;
    uint32_t kind;
    _Alignas(16) unsigned char data[];
} mote__msg;

/* Process flags. */
#define MOTE__P_PANICKED 1u /* ended by a panic: messages are cancelled */
#define MOTE__P_DTOR_DONE 2u

/* What few processes need, allocated on first use (mote__proc_ext) and
 * freed with the process. */
typedef struct mote__proc_ext {
    mote_panic_fn panic_fn; /* the process's own */
    void *panic_ctx;
    char name[MOTE_NAME_MAX]; /* written and read under the registry lock */
} mote__proc_ext;

/* The inbox word: the newest message's address in the low 48 bits (user
 * space addresses fit on x86-64 and AArch64), and above them how many
 * messages the list holds (saturating at 0xffff). The CAS that pushes a
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
    mote__msg *cur; /* message being run */
    mote__proc_ext *_Atomic ext; /* set once, by whoever needs it first */
    struct mote_proc *reg_prev, *reg_next;
    /* For dumps, in what was padding (the header stays 112 bytes). */
    _Atomic uint32_t fifo_len; /* messages in fifo: written by the owner */
    uint32_t born_ms;          /* mote__coarse_ms() at spawn */
    _Alignas(16) unsigned char state[];
};

/* What a suspended process waits for (mote__wait_note.kind; see ctx.h),
 * for dumps and debuggers. arg and obj by kind:
 *   RECEIVE  -                 -
 *   AWAIT    -                 the future's address
 *   CALL     -                 the callee's process id
 *   POLL     number of futures -
 *   SLEEP    -                 -
 *   FD       the descriptor    MOTE_READABLE | MOTE_WRITABLE
 *   RESOLVE  -                 -  (a host name lookup)
 *   OTHER    -                 -  (a wait that did not say)          */
enum mote__wait_kind {
    MOTE__WAIT_NONE = 0,
    MOTE__WAIT_RECEIVE,
    MOTE__WAIT_AWAIT,
    MOTE__WAIT_CALL,
    MOTE__WAIT_POLL,
    MOTE__WAIT_SLEEP,
    MOTE__WAIT_FD,
    MOTE__WAIT_RESOLVE,
    MOTE__WAIT_OTHER,
};

/* A waiter: what a waiting process or foreign thread registers with the
 * sources that may wake it (futures, timers). Lives on the waiter's stack
 * for the duration of one wait; every source is unregistered (and any
 * in-flight wake finished) before the wait returns. */
typedef struct mote__waiter {
    mote__task *task;        /* NULL for a foreign thread */
    _Atomic uint64_t seq;    /* park seq of the current wait */
    _Atomic uint32_t futex;  /* foreign thread: 1 once woken */
    _Atomic uint32_t events; /* futures that completed while registered */
    _Atomic bool timed_out;
    bool timer_armed;
    mote__timer timer;
    mote__wait_note note; /* copied onto the stack when the task parks */
} mote__waiter;

/* Future: `w` is the whole protocol:
 *   NULL      pending, nobody waiting
 *   waiter*   pending, a waiter registered (only during a wait)
 *   BUSY      the producer is storing the result and waking the waiter
 *   DONE      result ready
 *   DROPPED   consumer gone: the producer frees the future */
#define MOTE__FW_BUSY ((void *)1)
#define MOTE__FW_DONE ((void *)2)
#define MOTE__FW_DROPPED ((void *)3)

enum { MOTE__FUT_STACK = 0, MOTE__FUT_HEAP = 1, MOTE__FUT_TIMER = 2 };

struct mote_future {
    _Atomic(void *) w;
    mote_result res;
    uint16_t kind;
    bool foreign; /* made by a foreign thread: it owns it, even past shutdown */
    struct mote_future *reg_prev, *reg_next; /* heap futures: registry */
    mote__timer timer;                       /* MOTE__FUT_TIMER */
};

/* proc.c */
mote_proc *mote__proc_self(void);
/* p's ext, allocated if it has none (NULL: out of memory). Any thread. */
mote__proc_ext *mote__proc_ext_get(mote_proc *p);
/* Copy p's name into buf (""  if none): for reports. */
void mote__proc_name(const mote_proc *p, char *buf, size_t len);
void mote__proc_reap_all(void);
int mote__proc_spawn_main(mote_proc **out, int (*fn)(void *), void *arg, int *result);
extern const mote__sched_hooks mote__proc_hooks;
void mote__proc_set_budget(unsigned budget);
void mote__msg_cancel(mote__msg *m);
mote__msg *mote__mbox_pop(mote_proc *p);
bool mote__mbox_nonempty(mote_proc *p);
/* Messages waiting in p's mailbox: exact when p is not running (a racy
 * snapshot, for dumps). */
uint32_t mote__mbox_length(mote_proc *p);
void mote__msg_run(mote_proc *p, mote__msg *m);

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
 * copies that shard's views. */
int64_t mote__proc_snapshot(mote__proc_view **out);

/* future.c */
void mote__future_complete(mote_future *f, mote_result r);
void mote__future_init_stack(mote_future *f);
mote_future *mote__future_new(uint32_t kind);
int mote__future_wait(mote_future *f, int64_t timeout);
/* The same, saying what for (MOTE__WAIT_CALL and the callee's id). */
int mote__future_wait_for(mote_future *f, int64_t timeout, uint32_t kind, uint64_t obj);
void mote__futures_reap_all(void);

/* waiter helpers (future.c) */
void mote__waiter_init(mote__waiter *w);
/* Say what w waits for (after mote__waiter_init; see MOTE__WAIT_*). */
static inline void mote__waiter_note(mote__waiter *w, uint32_t kind, int32_t arg, uint64_t obj) {
    w->note.kind = kind;
    w->note.arg = arg;
    w->note.obj = obj;
}
/* Arm for the next wait: returns false if the caller must not sleep. */
void mote__waiter_arm(mote__waiter *w);
/* Sleep until woken or the deadline (absolute; < 0 forever) passes. */
void mote__waiter_sleep(mote__waiter *w, int64_t deadline);
void mote__waiter_wake(mote__waiter *w);
/* Wait for an event, the timeout (ns; < 0 forever; 0 not at all). */
void mote__waiter_wait(mote__waiter *w, int64_t timeout);
void mote__waiter_done(mote__waiter *w);

#endif
