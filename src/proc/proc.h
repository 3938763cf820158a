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
    mote_msg_fn fn;   /* NULL: data message (mote_send) */
    mote_future *fut; /* result goes here; NULL for casts */
    uint32_t size;
    uint32_t kind;    /* data messages: MOTE_MSG_DATA, MOTE_MSG_SIGNAL, ... */
    _Alignas(16) unsigned char data[];
} mote__msg;

/* Process flags. */
#define MOTE__P_PANICKED 1u /* ended by a panic: messages are cancelled */
#define MOTE__P_DTOR_DONE 2u
#define MOTE__P_WARNED 4u /* MOTE_WARN_BLOCKING reported it (once) */

/* What few processes need, allocated on first use (mote__proc_ext) and
 * freed with the process: kept out of the header, which must stay within
 * its slab class. */
typedef struct mote__proc_ext {
    mote_panic_fn panic_fn; /* the process's own */
    void *panic_ctx;
    char name[MOTE_NAME_MAX]; /* written and read under the registry lock */
    mote__deadline deadline; /* timed sleeps (future.h) */
} mote__proc_ext;

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
    mote__msg *cur; /* message being run */
    mote__proc_ext *_Atomic ext; /* set once, by whoever needs it first */
    struct mote_proc *reg_prev, *reg_next;
    /* For dumps, in what was padding (the header stays 112 bytes). */
    _Atomic uint32_t fifo_len; /* messages in fifo: written by the owner */
    uint32_t born_ms;          /* mote__coarse_ms() at spawn */
    _Alignas(16) unsigned char state[];
};

/* proc.c */
mote_proc *mote__proc_self(void);
/* p's ext, allocated if it has none (NULL: out of memory). Any thread. */
mote__proc_ext *mote__proc_ext_get(mote_proc *p);
/* Copy p's name into buf (""  if none): for reports. */
void mote__proc_name(const mote_proc *p, char *buf, size_t len);
void mote__proc_reap_all(void);
/* True while shutdown frees the remaining processes: their stacks are
 * discarded, so nothing they had started (a call in flight) will finish. */
bool mote__proc_reaping(void);
int mote__proc_spawn_main(mote_proc **out, int (*fn)(void *), void *arg, int *result);
extern const mote__sched_hooks mote__proc_hooks;
void mote__proc_set_budget(unsigned budget); /* >= 1, before the scheduler starts */
void mote__msg_cancel(mote__msg *m);
mote__msg *mote__mbox_pop(mote_proc *p);
bool mote__mbox_nonempty(mote_proc *p);
/* Messages waiting in p's mailbox: exact when p is not running (a racy
 * snapshot, for dumps). */
uint32_t mote__mbox_length(mote_proc *p);
void mote__msg_run(mote_proc *p, mote__msg *m);
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
