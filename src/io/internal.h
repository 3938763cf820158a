/*
 * io/internal.h -- what the files of io/ share, and what the runtime calls
 * in them. Nothing here is public; every cross-file name of io/ is declared
 * here once, so a prototype cannot drift from its definition.
 *
 *   netpoll.c  poll descriptors (one per descriptor number), the poller
 *              backend's glue: registration, dispatching events, the
 *              scheduler's netpoll operations and the poller threads
 *   fd.c       mote_fd_wait and closing: waiting on a poll descriptor
 *   active.c   active descriptors: readiness sent to a process as a call
 *   waitset.c  wait sets: one wait over futures, descriptors, the mailbox
 *              and timers, their sources hooked into the slots
 *   socket.c, dial.c, resolve.c, stream.c, file.c, stdio.c: the I/O types on top
 */
#ifndef MOTE_IO_INTERNAL_H
#define MOTE_IO_INTERNAL_H

#include "proc/proc.h"

/* Descriptor numbers a poll descriptor can exist for: a two-level table
 * of DIR_SIZE chunks of DIR_SIZE entries. */
#define MOTE__PD_DIR_BITS 10
#define MOTE__PD_DIR_SIZE (1u << MOTE__PD_DIR_BITS)
#define MOTE__PD_MAX_FD (MOTE__PD_DIR_SIZE * MOTE__PD_DIR_SIZE)

/* Poller threads at most (MOTE_NETPOLL_THREADS). */
#define MOTE__NETPOLL_THREADS_MAX 64

/*
 * A poll descriptor: registered once with the backend, edge-triggered, for
 * both directions. Each direction has a single-waiter slot
 * (proc/future.h), after Go's pollDesc:
 *
 *   0        nothing known
 *   READY    readiness arrived with nobody waiting: the next wait consumes it
 *   waiter*  a process or foreign thread waits
 *   BUSY     the poller (or a close) is waking that waiter
 *
 * Readiness that arrives between a failed read() and the wait is kept by
 * READY, so it is never lost; a waiter leaving spins past BUSY, so no wake
 * ever touches a waiter that has returned. Closing bumps `gen` and wakes
 * the waiters, which then return -EBADF.
 */
#define MOTE__PD_READY ((uintptr_t)2)

/* Active mode (active.c): at most one call in flight. */
enum { MOTE__A_OFF = 0, MOTE__A_IDLE, MOTE__A_PENDING };

typedef struct mote__pdesc {
    mote__slot slot[2]; /* read, write */
    _Atomic uint32_t gen;
    mote__spinlock lock; /* registration */
    _Atomic bool registered; /* read outside the lock on the fast path */
    /* Released before the descriptor goes to the backend, acquired by
     * dispatch: the event's pointer travels through the kernel, which the
     * thread sanitizer cannot see as synchronisation. */
    _Atomic uint32_t published;
    _Atomic bool rd_closed; /* an event said the read side is closed */
    /* Active mode (see active.c). */
    _Atomic uint32_t astate;
    bool adone;       /* owner process only: the final call was made */
    uint32_t agen;    /* gen at activation: a close changes gen */
    int afd;
    mote_proc *aproc; /* a reference, held while astate != A_OFF */
    mote_active_fn afn;
    void *aobj;       /* passed to afn (the mote_socket) */
    /* Drops the reference aobj holds for us; at shutdown also closes it. */
    void (*adrop)(void *aobj, bool shutdown);
} mote__pdesc;

/* Take READY if it is there. */
static inline bool mote__pd_consume(mote__pdesc *pd, int d) {
    uintptr_t exp = MOTE__PD_READY;
    return atomic_compare_exchange_strong(&pd->slot[d], &exp, 0);
}

/* ---- netpoll.c ---- */

/* The runtime, before the first descriptor is polled: how many poller
 * threads to start (1..MOTE__NETPOLL_THREADS_MAX). */
void mote__netpoll_configure(unsigned threads);
/* At shutdown, after the workers stopped: join the poller threads, close
 * the descriptors still active, free every poll descriptor. */
void mote__netpoll_stop(void);
/* fd's poll descriptor, or NULL (create: allocate it if missing). */
mote__pdesc *mote__pd_get(int fd, bool create);
/* fd's poll descriptor, registered, starting the poller if need be.
 * Returns 0 or -errno (-EPERM: a regular file, -ESHUTDOWN). */
int mote__pd_prepare(int fd, mote__pdesc **out);
/* If pd is registered, register fd again: a plain close() may have let
 * the number be reused by a new description that the backend never saw.
 * A new registration forgets the old description's readiness. */
void mote__pd_refresh(mote__pdesc *pd, int fd);
/* Forget pd's registration with the backend (the descriptor is closing). */
void mote__pd_unregister(mote__pdesc *pd, int fd);
/* Readiness (or a close) for direction d: hand it to the waiter, or keep
 * it as READY for the next one (if keep). */
void mote__pd_signal(mote__pdesc *pd, int d, bool keep);
/* The runtime's poller if it is open, else (with start) open it now;
 * NULL if it is not open (and cannot be, or start is false). */
struct mote__poller *mote__netpoll_poller(bool start);
/* The backend MOTE_POLLER chose when the runtime started (the poller
 * opens on first use). */
const struct mote__poller_ops *mote__netpoll_chosen(void);
/* The name of the runtime's poller backend ("epoll", "uring", ...; after
 * a fallback, the one actually used), or NULL; for tests. */
const char *mote__netpoll_backend(void);
/* Poll without waiting and wake the ready descriptors' waiters (io/uring.c:
 * a process looks for its own completion before it parks). */
int mote__netpoll_poll_now(void);

/* ---- fd.c ---- */

/* As mote_fd_wait, until an absolute deadline (mote__now() time; < 0
 * forever; MOTE__FD_NOW: ask once, without waiting); also returns -EBADF if
 * *cancelled is (or becomes) set. */
#define MOTE__FD_NOW 0 /* a deadline long past */
int mote__fd_wait_until(int fd, int events, int64_t deadline, _Atomic bool *cancelled);
/* Ask fd itself (poll(2), no wait) which of events it is ready for: the
 * mask, -ETIMEDOUT if none, or -errno. */
int mote__fd_poll_now(int fd, int events);
/* True once an event said fd's read side is closed (EOF or an error is
 * waiting to be read): no further readiness edge will come for it. */
bool mote__fd_read_closed(int fd);
/* Wake every waiter on fd with -EBADF and forget its registration,
 * without closing it. */
void mote__fd_abort(int fd);

/* ---- active.c ---- */

/* Make fd active: read readiness sends p calls that hand the data to fn.
 * obj is passed to fn; drop(obj, shutdown) lets go of it at the end. */
int mote__fd_activate(int fd, mote_proc *p, mote_active_fn fn, void *obj,
                      void (*drop)(void *obj, bool shutdown));
/* Read readiness (or a close) on an active descriptor: send its process a
 * call unless one is in flight. */
void mote__active_notify(mote__pdesc *pd);
/* Shutdown: the process of an active descriptor is gone; let go of it. */
void mote__active_abandon(mote__pdesc *pd);

/* ---- uring.c ---- */

/*
 * Reads, writes and accepts as io_uring completions, where the runtime's
 * poller is the uring backend and the caller is a process (elsewhere every
 * call returns -ENOTSUP and the caller takes its readiness or blocking
 * path). A call returns only after the kernel's final completion of its
 * operation: a timeout, a close or a cancellation cancels the operation
 * and then waits for that completion, so the kernel never writes into a
 * buffer (or a stack) after the call returned.
 *
 * Socket calls wait until deadline (absolute, < 0: none) and return
 * -ETIMEDOUT after it, -EBADF once *closed is set (mote__uring_abort_fd
 * then wakes them); data that arrived before the cancel is returned.
 */
int64_t mote__uring_recv(int fd, void *buf, size_t len, int64_t deadline, _Atomic bool *closed);
/* The same through a multishot receive into provided buffers, made for the
 * socket on first use in *ms (NULL until then): one receive stays armed
 * across reads, what it brings queues in *ms, and a read copies from the
 * queue (uring.c). For keep-alive connections: the caller picks them.
 * mote__uring_recv_release(*ms) when the socket is freed. */
typedef struct mote__urecv mote__urecv;
int64_t mote__uring_recv_ms(_Atomic(mote__urecv *) *ms, int fd, void *buf, size_t len, int64_t deadline,
                            _Atomic bool *closed);
void mote__uring_recv_release(mote__urecv *u);
/* For tests: multishot receives that ended for want of buffers so far;
 * whether s reads through a multishot receive (socket.c). */
uint64_t mote__uring_nobufs_ends(void);
bool mote__socket_multishot(const mote_socket *s);
int64_t mote__uring_send(int fd, const void *buf, size_t len, int64_t deadline, _Atomic bool *closed);
/* accept4(fd, addr, addrlen, SOCK_NONBLOCK | SOCK_CLOEXEC) as a completion. */
int64_t mote__uring_accept(int fd, void *addr, uint32_t *addrlen, int64_t deadline, _Atomic bool *closed);
/* What a file's reads last found in the page cache, from off == from up
 * to to (uring.c): a hint, never the truth. Readers update it without a
 * lock; a stale or torn hint only sends a read the slower way, or lets a
 * read that was thought cached wait for the disk in a blocking section. */
typedef struct mote__file_hint {
    _Atomic int64_t from, to;
    _Atomic bool cached;
} mote__file_hint;
/* Whether [off, off + len) lies in a window that the hint found cached:
 * the caller's pread will not wait for the disk (most likely). */
static inline bool mote__file_hint_hit(mote__file_hint *h, int64_t off, size_t len) {
    int64_t from = atomic_load_explicit(&h->from, memory_order_relaxed);
    int64_t to = atomic_load_explicit(&h->to, memory_order_relaxed);
    return off >= from && off <= to && len <= (uint64_t)(to - off) &&
           atomic_load_explicit(&h->cached, memory_order_relaxed);
}
/* A file's read or write (off < 0: at the file position), without a
 * blocking section: the process parks until the completion. A read at an
 * offset with a hint also returns -ENOTSUP where the page cache holds its
 * data (uring.c): the caller's pread in a blocking section is cheaper. */
int64_t mote__uring_file_io(int fd, void *buf, size_t len, int64_t off, bool write, mote__file_hint *hint);
/* Closing fd under its callers: cancel their operations (they return
 * -EBADF once they see their closed flag). No-op without io_uring. */
void mote__uring_abort_fd(int fd);
/* Operations started and completed through io_uring so far, in this
 * process (tests). */
void mote__uring_counts(uint64_t *started, uint64_t *completed);
/* uring.c, for uring_recv.c (io_uring builds): the ring to run operations
 * on from here (NULL: not a process, or the poller is not io_uring), and
 * the operations started and completed, which mote__uring_counts reports. */
struct mote__poller *mote__uring_here(void);
extern _Atomic uint64_t mote__uring_started, mote__uring_completed;

/* ---- signal.c, child.c: called by mote_run after the workers and the
 * poller stop, before processes are freed ---- */

void mote__signal_shutdown(void);
void mote__child_shutdown(void);
/* Close and free a socket at shutdown, whatever calls were in flight (they
 * belonged to processes that are gone). */
void mote__socket_discard(mote_socket *s);
/* A mote_socket over any pollable stream descriptor (child.c's pipe ends:
 * mote_socket_adopt refuses what is not a socket). */
int mote__socket_wrap(mote_socket **out, int fd);

/* ---- addr.c ---- */

/* a->len is one mote could have filled in for its family (within storage,
 * at least the family's fixed part): checked before the kernel reads it. */
bool mote__addr_len_ok(const mote_addr *a);

/* ---- resolve.c ---- */

/* Resolve host:port (port numeric) into up to max addresses. Returns how
 * many (> 0) or an error: MOTE_EAI_* for resolver failures, -ETIMEDOUT. */
int mote__resolve(const char *host, const char *port, mote_addr *out, int max, int64_t timeout);

/* ---- stdio.c ---- */

/* Runtime shutdown: close the private descriptors of the standard streams. */
void mote__stdio_shutdown(void);

#endif
