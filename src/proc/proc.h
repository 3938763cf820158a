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

typedef struct mote__msg {
    struct mote__msg *next;
    mote_msg_fn fn;   /* NULL: data message (mote_send) */
    mote_future *fut; /* result goes here; NULL for casts */
    uint32_t size;
    _Alignas(16) unsigned char data[];
} mote__msg;

/* Process flags. */
#define MOTE__P_PANICKED 1u /* ended by a panic: messages are cancelled */
#define MOTE__P_DTOR_DONE 2u

/* What few processes need, allocated on first use (proc_ext in proc.c):
 * kept out of the header, which must stay within its slab class. */
typedef struct mote__proc_ext {
    mote_panic_fn panic_fn;
    void *panic_ctx;
    mote__deadline deadline; /* timed sleeps (future.h) */
} mote__proc_ext;

struct mote_proc {
    mote__task task; /* first: a task pointer is a process pointer */
    _Atomic(mote__msg *) inbox;
    mote__msg *fifo;
    _Atomic uint32_t refs;
    _Atomic uint32_t flags;
    _Atomic uint64_t recv_seq; /* park seq while waiting in mote_receive, else 0 */
    mote_dtor_fn dtor;
    uint64_t id;
    mote__msg *cur; /* message being run */
    mote__proc_ext *ext;
    struct mote_proc *reg_prev, *reg_next;
    _Alignas(16) unsigned char state[];
};

/* proc.c */
mote_proc *mote__proc_self(void);
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
void mote__msg_run(mote_proc *p, mote__msg *m);

#endif
