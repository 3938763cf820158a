/*
 * mote.h -- lightweight processes and asynchronous I/O for C.
 *
 * This header is the whole public API. Every handle is opaque. Every call
 * that can fail returns 0 (or a non-negative count) on success and a negative
 * errno value on failure, libuv style; mote_strerror() turns one into text.
 *
 * Processes are green threads scheduled M:N over a pool of OS threads. Code in
 * a process reads like blocking code: a call that has to wait (mote_call,
 * mote_await, mote_receive, mote_sleep, ...) suspends only the calling process,
 * never its OS thread.
 *
 * Because a process may resume on another OS thread after any call that can
 * suspend, never keep errno, a thread-local's address or a thread id across
 * such a call. The runtime itself never reports errors through errno.
 *
 * Times are nanoseconds in an int64_t. A timeout < 0 (MOTE_FOREVER) waits
 * forever; a timeout of 0 does not wait at all.
 *
 * Language: the header needs C11 (or later) or C++11 (or later); the
 * library itself is built as C17.
 */
#ifndef MOTE_H
#define MOTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MOTE_VERSION_MAJOR 0
#define MOTE_VERSION_MINOR 1
#define MOTE_VERSION_PATCH 0

#if defined(__GNUC__)
#define MOTE_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define MOTE_API __attribute__((visibility("default")))
#else
#define MOTE_PRINTF(f, a)
#define MOTE_API
#endif

/* C11 and C++11 spell alignment and "does not return" differently (GNU
 * compilers take the attribute anywhere, where [[noreturn]] must lead). */
#ifdef __cplusplus
#define MOTE_ALIGNAS(n) alignas(n)
#else
#define MOTE_ALIGNAS(n) _Alignas(n)
#endif
#if defined(__GNUC__)
#define MOTE_NORETURN __attribute__((noreturn))
#elif defined(__cplusplus)
#define MOTE_NORETURN [[noreturn]]
#else
#define MOTE_NORETURN _Noreturn
#endif

/* ---- Time --------------------------------------------------------------- */

#define MOTE_NSEC(n) ((int64_t)(n))
#define MOTE_USEC(n) ((int64_t)(n) * 1000)
#define MOTE_MSEC(n) ((int64_t)(n) * 1000000)
#define MOTE_SEC(n) ((int64_t)(n) * 1000000000)
#define MOTE_FOREVER ((int64_t)-1)

/* Monotonic clock in nanoseconds. */
MOTE_API int64_t mote_now(void);

/* ---- Errors ------------------------------------------------------------- */

/* -errno of the calling OS thread, read through a call the compiler cannot
 * inline: in a process, use this (right after the failing call) instead of
 * errno, whose address compilers cache across calls that may move the
 * process to another thread. */
MOTE_API int mote_errno(void);

/*
 * Text for an error returned by any mote call: a negative errno value or
 * one of mote's own codes below. Never NULL. Where mote gives an errno
 * value a meaning of its own, the text says that meaning: -ETIMEDOUT reads
 * "timed out" (a mailbox, future or sleep deadline as much as a socket),
 * -ESHUTDOWN "the mote runtime is not running", -ECANCELED "cancelled",
 * -EDEADLK "a process would wait for itself (deadlock)".
 */
MOTE_API const char *mote_strerror(int err);

/* mote's own error codes, below every errno value (libuv keeps its
 * resolver codes apart the same way). Returned by mote_tcp_connect for a
 * host name:
 *   MOTE_EAI_NONAME  no such host (or it has no address of a usable kind)
 *   MOTE_EAI_AGAIN   temporary failure of the resolver; trying later may work
 *   MOTE_EAI_FAIL    any other failure of the resolver */
#define MOTE_EAI_NONAME (-3001)
#define MOTE_EAI_AGAIN (-3002)
#define MOTE_EAI_FAIL (-3003)

/* ---- Runtime ------------------------------------------------------------ */

/*
 * Configuration. A zero field means "use the environment variable, else the
 * default":
 *   threads      MOTE_THREADS     worker threads; default: CPUs in the
 *                                 process's affinity mask
 *   stack_size   MOTE_STACK_SIZE  bytes per process stack (rounded up to
 *                                 pages, minimum 16 KiB); default 256 KiB
 *   msg_budget   MOTE_MSG_BUDGET  messages a process runs before it must
 *                                 let others run; default 64
 *   backup_threads  MOTE_BACKUP_THREADS  extra OS threads that may run
 *                                 processes while workers are stuck in
 *                                 blocking sections or long computations
 *                                 (see "Blocking work"); default 4 x threads
 *   blocking_threshold  MOTE_BLOCKING_THRESHOLD  nanoseconds a blocking
 *                                 section may run before its worker's other
 *                                 processes move on; default 100 us
 *   netpoll_threads  MOTE_NETPOLL_THREADS  network poller threads (1..64);
 *                                 default 1. They wait in the poller only
 *                                 while no worker does: the last idle
 *                                 worker sleeps in the poller itself.
 *   stop_grace   MOTE_STOP_GRACE  nanoseconds processes get to end by
 *                                 themselves after mote_stop, and again
 *                                 to unwind once cancelled at shutdown
 *                                 (see mote_stop); default 5 s
 * A value set in the struct wins over the environment.
 *
 * The poller backend is the environment's choice only, MOTE_POLLER:
 *   epoll   the default on Linux: sockets read and write when ready, files
 *           use blocking sections
 *   uring   io_uring (Linux 5.19+, a build with liburing): sockets' accept,
 *           read and write and files' read and write are io_uring
 *           completions, submitted in batches, one per scheduler round;
 *           where the kernel refuses io_uring, epoll, silently
 *   kqueue  the default elsewhere
 * A name not built in makes mote_run return -EINVAL.
 */
typedef struct mote_config {
    unsigned threads;
    size_t stack_size;
    unsigned msg_budget;
    unsigned backup_threads;
    int64_t blocking_threshold;
    unsigned netpoll_threads;
    int64_t stop_grace;
} mote_config;

typedef int (*mote_main_fn)(void *arg);

/*
 * Start the runtime, run main(arg) as the main process on the calling
 * (main) thread, and shut down when it returns, even if other processes are
 * still running or hold messages: every remaining process is cancelled
 * (reason MOTE_EXIT_SHUTDOWN: its waits return -ECANCELED, so it unwinds
 * through its own code and releases what it holds; see "Cancellation"),
 * then every thread is joined, the state destructor of every process has
 * run, and everything the runtime allocated is freed. Messages still
 * queued are cancelled without running. A process still running
 * stop_grace after its cancel (it ignores -ECANCELED) is abandoned: its
 * stack is discarded like a panicking process's, and whatever its frames
 * owned leaks; one that never calls into mote at all keeps its worker
 * thread, and mote_run does not return.
 *
 * Returns main's return value (or mote_stop's status, if mote_stop came
 * first), or a negative errno if the runtime could not start (-EINVAL for
 * a bad config, -EBUSY if a runtime is already running, -ENOMEM, -EAGAIN
 * for thread creation). Only one runtime runs at a time; mote_run may be
 * called again after it returns. cfg may be NULL.
 *
 * Out of memory, calls that allocate return -ENOMEM, and calls that would
 * suspend a process return -ENOMEM instead (see "Waiting without memory").
 * The runtime aborts only where nobody could be told: when a process that
 * panicked with a handler leaves its worker no stack to carry on with, it
 * prints "mote: no stack left ..." to stderr and calls abort().
 */
MOTE_API int mote_run(const mote_config *cfg, mote_main_fn main, void *arg);

/*
 * Ask the running runtime to stop, from any process or thread (a signal
 * handling thread, say); mote_run then returns status. Idempotent: only
 * the first call (or main returning first) decides the status. The order:
 *
 *   1. The main process is cancelled (reason MOTE_EXIT_SHUTDOWN): its waits
 *      return -ECANCELED, so it returns. It may first tell other processes
 *      to finish (casts and sends do not wait).
 *   2. Once main has returned, the other processes get stop_grace (default
 *      5 s) to end by themselves; the grace ends early when every one has
 *      ended or is idle (runs no message and waits for nothing).
 *   3. Every process left is cancelled and unwinds (as when main returns
 *      without mote_stop, which skips steps 1 and 2); after a further
 *      stop_grace, those still running are abandoned (see mote_run).
 *
 * Returns 0, or -ESHUTDOWN if no runtime is running.
 */
MOTE_API int mote_stop(int status);

/* Number of worker threads of the running runtime, 0 if none runs. */
MOTE_API unsigned mote_threads(void);

/* ---- Processes ---------------------------------------------------------- */

typedef struct mote_proc mote_proc;     /* counted handle to a process */
typedef struct mote_future mote_future; /* result of an asynchronous call */
typedef struct mote_msg mote_msg;       /* a received data message */

/*
 * A result: a 64-bit value beside an error code (0 or negative errno), as
 * a Result[T, E] holds one or the other. A pointer in a result passes
 * ownership to whoever takes the result.
 */
typedef struct mote_result {
    union {
        int64_t i;
        uint64_t u;
        double f;
        void *p;
    };
    int err;
} mote_result;

static inline mote_result mote_ok_i(int64_t v) {
    mote_result r;
    r.i = v;
    r.err = 0;
    return r;
}
static inline mote_result mote_ok_p(void *v) {
    mote_result r;
    r.p = v;
    r.err = 0;
    return r;
}
static inline mote_result mote_error(int err) {
    mote_result r;
    r.u = 0;
    r.err = err;
    return r;
}

/*
 * A message handler: runs inside the receiving process with exclusive access
 * to its state (a process never runs two messages at once, so the state
 * needs no lock). arg points to the runtime's copy of the argument bytes,
 * 16-byte aligned and valid until the handler returns; pointers inside the
 * arguments pass ownership of what they point to. The returned result goes
 * to the caller's future (and is dropped for mote_cast).
 */
typedef mote_result (*mote_msg_fn)(void *state, void *arg);

/* Destructor for a process's state: runs exactly once, when the process
 * ends (last handle dropped and mailbox drained, a cancel, a panic with a
 * handler, or runtime shutdown). */
typedef void (*mote_dtor_fn)(void *state);

/*
 * Spawn a process whose private state is a copy of the size bytes at state
 * (zero-filled if state is NULL). Never blocks; the process costs no stack
 * until it first runs a message. *out receives one reference.
 * Errors: -EINVAL, -ENOMEM, -ESHUTDOWN (no runtime running).
 */
MOTE_API int mote_spawn(mote_proc **out, const void *state, size_t size, mote_dtor_fn dtor);

/*
 * Erlang-style: spawn a process that runs fn(arg), where arg points to a copy
 * of the size bytes at arg (NULL if size is 0). The process holds a stack
 * while fn runs. fn returning ends the process for its monitors and links
 * (reason MOTE_EXIT_NORMAL); it still runs call messages sent to it
 * afterwards, until its last handle is dropped. out may be NULL to drop
 * the handle at once (the process still runs to the end of fn).
 */
typedef void (*mote_proc_fn)(void *arg);
MOTE_API int mote_spawn_fn(mote_proc **out, mote_proc_fn fn, const void *arg, size_t size);

/* Take another reference to p; returns p. */
MOTE_API mote_proc *mote_proc_ref(mote_proc *p);

/* Drop a reference. When the last one goes, the process runs its remaining
 * messages and is then freed; its destructor runs exactly once. NULL is a
 * no-op. */
MOTE_API void mote_proc_release(mote_proc *p);

/* A unique, never reused id for p (for logs). */
MOTE_API uint64_t mote_proc_id(const mote_proc *p);

/*
 * A name for p, shown wherever p is (panics, mote_dump, traces, warnings,
 * the gdb commands). The bytes are copied, cut to MOTE_NAME_MAX - 1 (not
 * inside a UTF-8 character); NULL or "" removes the name. Any thread, any
 * time. Returns 0, -EINVAL (p NULL) or -ENOMEM.
 */
#define MOTE_NAME_MAX 32
MOTE_API int mote_proc_set_name(mote_proc *p, const char *name);

/* Copy p's name into buf (NUL-terminated, cut to len - 1 bytes). Returns
 * the length copied (0: no name) or -EINVAL. */
MOTE_API int mote_proc_name(const mote_proc *p, char *buf, size_t len);

/* The calling process, borrowed (take mote_proc_ref to keep it), or NULL
 * when called outside any process (a foreign thread). */
MOTE_API mote_proc *mote_self(void);

/* The calling process's state (as passed to its message handlers); NULL
 * outside a process. */
MOTE_API void *mote_self_state(void);

/* Let other processes run; the caller is requeued behind them. */
MOTE_API void mote_yield(void);

/* ---- Messages (asynchronous calls) -------------------------------------- */

/*
 * All of these may be called from any thread: from a process, or from a
 * thread mote did not create (a foreign thread). None of them blocks the
 * sender. Messages to one process run in the order they were sent (FIFO per
 * sender; a total order per mailbox). Argument bytes are copied.
 * Fairness: a process that sends more than 1024 messages in one turn yields
 * (lets others run) inside the send, so treat every send as a call after
 * which the process may be on another OS thread.
 */

/* Send fn(state, arg) to p and forget the result. */
MOTE_API int mote_cast(mote_proc *p, mote_msg_fn fn, const void *arg, size_t size);

/* Send fn(state, arg) to p and return a future for its result. */
MOTE_API int mote_async(mote_proc *p, mote_msg_fn fn, const void *arg, size_t size, mote_future **out);

/*
 * Send fn(state, arg) to p and wait for its result. Suspends only the
 * calling process (a foreign thread blocks). Returns 0 with the result in
 * *out (out may be NULL), -EDEADLK if p is the caller itself, or
 * -ECANCELED if the caller was cancelled (the message may still run; its
 * result is dropped). If p ends before running the message (a panic, a
 * cancel, or p had ended already), mote_call returns 0 with out->err ==
 * -ECANCELED.
 */
MOTE_API int mote_call(mote_proc *p, mote_msg_fn fn, const void *arg, size_t size, mote_result *out);

/*
 * If the receiver ends (panics, is cancelled) or the runtime shuts down
 * before a message runs, its future resolves with err == -ECANCELED; so
 * does every message sent to a process that has been cancelled or has
 * panicked (at once: a cast is dropped).
 *
 * Waiting without memory: a process that waits holds a stack, and the
 * worker it leaves needs another to carry on. When none can be had (memory
 * or the process's mappings are used up: see vm.max_map_count in the
 * README), every call that would suspend the process returns -ENOMEM
 * instead of waiting: mote_await, mote_await_for and mote_poll (the
 * futures stay valid, as on -ETIMEDOUT), mote_call (before it sends
 * anything), mote_receive, mote_sleep, mote_fd_wait and the socket calls.
 * Spawning and sending return -ENOMEM when memory runs out. Nothing aborts.
 */

/* Wait for f and take its result; f is consumed. Returns 0 and the result in
 * *out (out may be NULL); -EBUSY (f not consumed) if another process or
 * thread awaits f, or a wait set holds it; or -ECANCELED if the caller was
 * cancelled (f is then consumed too: dropped as by mote_future_drop). */
MOTE_API int mote_await(mote_future *f, mote_result *out);

/*
 * Like mote_await, but gives up after timeout nanoseconds with -ETIMEDOUT.
 * On timeout f is NOT consumed: it stays valid and may be awaited or polled
 * again, or dropped with mote_future_drop (a result that arrives after the
 * drop is discarded; a pointer in it is not freed by the runtime).
 * -ECANCELED as for mote_await.
 */
MOTE_API int mote_await_for(mote_future *f, int64_t timeout, mote_result *out);

/*
 * Wait until one or more of the n futures in futs are ready. The ready ones
 * are moved to ready[] (at most cap of them), removed from futs (the
 * remaining ones keep their relative order) and *n is updated. Returns the
 * number moved (> 0), -ETIMEDOUT, -EINVAL (n == 0, cap == 0, NULL), or
 * -EBUSY (a future is awaited elsewhere or held by a wait set), or
 * -ECANCELED if the caller was cancelled (futs is left as it was).
 * Ready futures are still futures: take their results with mote_await,
 * which then does not wait. A waiting poller is woken once per future that
 * becomes ready, never to rescan.
 */
MOTE_API int mote_poll(mote_future **futs, size_t *n, mote_future **ready, size_t cap, int64_t timeout);

/* True once f has a result (never waits). */
MOTE_API bool mote_future_ready(const mote_future *f);

/* Drop a future without waiting for it. NULL is a no-op. */
MOTE_API void mote_future_drop(mote_future *f);

/* ---- Erlang-style data messages ----------------------------------------- */

/* Send a copy of the size bytes at data to p's mailbox, for mote_receive. */
MOTE_API int mote_send(mote_proc *p, const void *data, size_t size);

/*
 * Take the next message from the calling process's mailbox, waiting up to
 * timeout. Call messages (mote_cast/async/call) met on the way are run in
 * order first, in this process. Returns 0 and a message in *out, which the
 * caller frees with mote_msg_free; -ETIMEDOUT; -EPERM outside a process;
 * -ECANCELED if the caller was cancelled. A message may be an exit notice
 * from a monitor or link: mote_msg_exit tells (its data is NULL, size 0).
 */
MOTE_API int mote_receive(mote_msg **out, int64_t timeout);
MOTE_API const void *mote_msg_data(const mote_msg *m);
MOTE_API size_t mote_msg_size(const mote_msg *m);
MOTE_API void mote_msg_free(mote_msg *m);

/* What sent m: MOTE_MSG_DATA (mote_send), MOTE_MSG_SIGNAL (a signal
 * watch: the data is a mote_signal_msg, see "Signals") or MOTE_MSG_EXIT (a
 * monitor or a link: read it with mote_msg_exit; its data is NULL and its
 * size 0). -EINVAL for NULL. */
#define MOTE_MSG_DATA 0
#define MOTE_MSG_SIGNAL 1
#define MOTE_MSG_EXIT 2
MOTE_API int mote_msg_kind(const mote_msg *m);

/* ---- Timers ------------------------------------------------------------- */

/* Suspend the calling process for ns nanoseconds (a foreign thread sleeps).
 * ns == 0 only yields; ns < 0 (MOTE_FOREVER) sleeps until the process is
 * cancelled (shutdown cancels every process; a foreign thread never
 * returns). Returns 0, -ECANCELED if the caller was cancelled, or -ENOMEM
 * at once if no stack can be had for the wait (see "Waiting without
 * memory" above). */
MOTE_API int mote_sleep(int64_t ns);

/* A future that resolves with value 0 after ns nanoseconds: await it, or
 * poll it together with results. */
MOTE_API int mote_timer(mote_future **out, int64_t ns);

/*
 * Re-arm a timer future made by mote_timer to resolve ns nanoseconds from
 * now, earlier or later than before (a deadline pushed back on every
 * request: moving it later costs a few stores, no lock). Returns 0;
 * -EALREADY if it already fired (its result is ready: await it, and make
 * a new timer); -EINVAL if f is NULL or not a timer; -ESHUTDOWN; -ENOMEM.
 */
MOTE_API int mote_timer_reset(mote_future *f, int64_t ns);

/* ---- Descriptors -------------------------------------------------------- */

#define MOTE_READABLE 1
#define MOTE_WRITABLE 2

/*
 * Wait until fd is readable and/or writable (events: MOTE_READABLE,
 * MOTE_WRITABLE or both), suspending only the calling process (a foreign
 * thread blocks), for pipes, sockets, eventfd, timerfd, signalfd, terminals.
 * The descriptor should be non-blocking: readiness is edge-triggered, so
 * after a successful wait read or write until EAGAIN before waiting again.
 * Returns the ready events (> 0), -ETIMEDOUT, -EBADF (bad fd, or closed with
 * mote_fd_close while waiting), -EPERM (a regular file: it cannot be polled),
 * -EBUSY (another process already waits on fd in that direction: one waiter
 * per direction), -EINVAL (events empty or with other bits), -ESHUTDOWN (no
 * runtime running), -ECANCELED (the caller was cancelled).
 */
MOTE_API int mote_fd_wait(int fd, int events, int64_t timeout);

/* Close fd, waking every process waiting on it (they get -EBADF). Use this,
 * not close(), for descriptors that were waited on (a plain close() under a
 * waiter leaves it waiting until its timeout; a later mote_fd_wait on a
 * reused number still works). A wait that starts while the close is under
 * way may miss it and wait until its timeout, as with any use of a
 * descriptor another thread is closing; sockets (mote_socket_close) see
 * such a close. */
MOTE_API int mote_fd_close(int fd);

/* ---- Wait sets ----------------------------------------------------------- */

/*
 * One wait over any mix of futures, descriptors, the caller's mailbox and
 * timers (Go's select, libdill's choose), in O(ready): a set is persistent,
 * each source registers once, and a source that becomes ready puts itself
 * on the set's ready list, waking the waiter once per transition, never to
 * rescan. A wait over n sources costs what is ready, not n (mote_poll
 * costs O(n) per call).
 *
 * A set belongs to the process (or foreign thread) that made it: only that
 * one adds, removes, waits and frees (others get -EPERM). Each source has
 * a tag chosen by the caller, unique in the set; a wait reports sources by
 * tag. What each kind of source means:
 *
 *   future   ready once it has a result. Reported once, then it leaves
 *            the set: take the result with mote_await (which does not
 *            wait then). Until it is reported or removed the set holds it:
 *            mote_await, mote_await_for and mote_poll on it return -EBUSY,
 *            mote_future_ready says false, and mote_future_drop hands it
 *            to the set, which drops it (without reporting it) at its next
 *            wait, remove or free. Removing it gives it back as it is.
 *   fd       readable and/or writable, edge-triggered as with
 *            mote_fd_wait: reported when readiness arrives, and again only
 *            after new readiness, so read or write until EAGAIN (with a
 *            zero timeout on a socket) after each report. A descriptor
 *            that is ready when added is reported by the next wait. It
 *            stays in the set. While it is in the set, mote_fd_wait (and a
 *            socket call that would wait) in that direction returns
 *            -EBUSY: one waiter per direction (with MOTE_POLLER=uring a
 *            socket read or write with a timeout is an operation of its
 *            own instead, see Sockets). Closed with mote_fd_close
 *            or mote_socket_close while in the set: reported with events
 *            -EBADF, and it leaves the set. Readiness not yet reported when
 *            it is removed is kept for the next mote_fd_wait.
 *   mailbox  the calling process's mailbox holds a message (level: every
 *            wait reports it while it does). Take messages with
 *            mote_receive(&m, 0), which runs call messages first (and may
 *            then find no data message: -ETIMEDOUT). One per set.
 *   timer    ns nanoseconds after it was added. Reported once, then it
 *            leaves the set.
 */
typedef struct mote_waitset mote_waitset;

#define MOTE_WS_FUTURE 1
#define MOTE_WS_FD 2
#define MOTE_WS_MAILBOX 3
#define MOTE_WS_TIMER 4

typedef struct mote_waitset_event {
    uint64_t tag; /* the source's tag */
    int kind;     /* MOTE_WS_FUTURE, _FD, _MAILBOX or _TIMER */
    int events;   /* MOTE_WS_FD: MOTE_READABLE and/or MOTE_WRITABLE, or -EBADF
                   * (closed; it left the set); the others: MOTE_READABLE */
} mote_waitset_event;

/* A new, empty set owned by the caller. -EINVAL (out NULL), -ENOMEM,
 * -ESHUTDOWN (no runtime running). */
MOTE_API int mote_waitset_new(mote_waitset **out);
/*
 * Add a source with its tag. Every add returns 0; -EINVAL (NULL ws or f,
 * bad events); -EPERM (not the set's owner); -EEXIST (the tag is in the
 * set); -ENOMEM. And:
 *   add_future   -EBUSY (awaited by someone, or in a set), -EINVAL
 *                (dropped)
 *   add_fd       events MOTE_READABLE and/or MOTE_WRITABLE; -EBADF (not a
 *                descriptor mote can poll), -EPERM (a regular file),
 *                -EBUSY (a process waits on it in that direction, another
 *                set has it, or it is an active socket), -ESHUTDOWN
 *   add_mailbox  the caller's own mailbox; -EPERM from a foreign thread,
 *                -EEXIST if the set has it already
 *   add_timer    ns < 0 counts as 0
 */
MOTE_API int mote_waitset_add_future(mote_waitset *ws, mote_future *f, uint64_t tag);
MOTE_API int mote_waitset_add_fd(mote_waitset *ws, int fd, int events, uint64_t tag);
MOTE_API int mote_waitset_add_mailbox(mote_waitset *ws, uint64_t tag);
MOTE_API int mote_waitset_add_timer(mote_waitset *ws, int64_t ns, uint64_t tag);
/* Take the source with tag out of the set (a timer is cancelled, a future
 * is handed back). 0, -ENOENT (no such tag), -EINVAL, -EPERM. */
MOTE_API int mote_waitset_remove(mote_waitset *ws, uint64_t tag);
/*
 * Wait until at least one source is ready, or timeout; write up to cap
 * events to out (the others stay ready for the next wait). Suspends only
 * the calling process (a foreign thread blocks). Returns the number of
 * events (> 0), -ETIMEDOUT, -EINVAL (NULL ws or out, cap 0), -EPERM (not
 * the owner), -ECANCELED (the caller was cancelled: at once, ready sources
 * or not) or -ENOMEM (it could not wait). An empty set just waits out the
 * timeout.
 */
MOTE_API int mote_waitset_wait(mote_waitset *ws, mote_waitset_event *out, size_t cap, int64_t timeout);
/* Remove every source (futures are handed back; fds keep readiness not
 * yet reported) and free the set. NULL is a no-op. Free a set before the
 * runtime shuts down. */
MOTE_API void mote_waitset_free(mote_waitset *ws);

/* ---- Sockets ------------------------------------------------------------ */

/*
 * A socket is a non-blocking, close-on-exec descriptor whose operations
 * suspend only the calling process. Every call that can wait takes a
 * timeout; expiry returns -ETIMEDOUT and leaves the socket usable. Errors
 * from the peer come back as negative errno (-ECONNRESET, -EPIPE, ...);
 * SIGPIPE never fires. Several processes may use one socket at once (one
 * reading, one writing; a second process that would wait in the same
 * direction gets -EBUSY); mote_socket_close wakes any process waiting on it
 * with -EBADF, and the handle must not be used after close returns. Every
 * call that can wait (read, write, accept, connect, send, receive, and
 * their exact/all forms) returns -ECANCELED once the caller is cancelled,
 * without doing its work; close, shutdown and the address calls still work.
 * With MOTE_POLLER=uring, accept, read and write (with a timeout other
 * than 0) are io_uring operations: a timeout or a close cancels the
 * operation in the kernel before the call returns, so nothing is written
 * into the buffer afterwards (what the operation read or accepted before
 * the cancel is returned, not lost), and processes waiting in the same
 * direction each have an operation of their own instead of -EBUSY.
 */
typedef struct mote_socket mote_socket;

/* A socket address (IPv4, IPv6, Unix path or abstract): storage holds a
 * struct sockaddr_* of len bytes. */
typedef struct mote_addr {
    uint32_t len;
    MOTE_ALIGNAS(8) unsigned char storage[128];
} mote_addr;

/* Parse "1.2.3.4:80", "[::1]:80", "unix:/path" or "unix:@abstract". The
 * port is decimal digits only (leading zeros allowed), 0..65535: no sign,
 * no space, not empty. -EINVAL for anything else. */
MOTE_API int mote_addr_parse(mote_addr *out, const char *text);
/* Format an address the way mote_addr_parse reads it. -EINVAL for a len
 * that does not fit its family or storage, -ENOSPC if buf is too small. */
MOTE_API int mote_addr_format(const mote_addr *a, char *buf, size_t len);

/* The low-level socket: any domain, type and protocol. */
MOTE_API int mote_socket_open(mote_socket **out, int domain, int type, int protocol);
/* Adopt an existing socket descriptor (made non-blocking and
 * close-on-exec); -ENOTSOCK if fd is not a socket. On failure fd stays
 * the caller's. */
MOTE_API int mote_socket_adopt(mote_socket **out, int fd);
MOTE_API int mote_socket_fd(const mote_socket *s);
/* Addresses passed in (bind, connect, send_to) must have a len that fits
 * their family and storage (-EINVAL). */
MOTE_API int mote_socket_bind(mote_socket *s, const mote_addr *a);
/* backlog >= 0 (-EINVAL for a negative one). */
MOTE_API int mote_socket_listen(mote_socket *s, int backlog);
MOTE_API int mote_socket_accept(mote_socket *s, mote_socket **out, mote_addr *peer, int64_t timeout);
MOTE_API int mote_socket_connect(mote_socket *s, const mote_addr *a, int64_t timeout);
/* Bytes read (0 at end of stream) or -errno. */
MOTE_API int64_t mote_socket_read(mote_socket *s, void *buf, size_t len, int64_t timeout);
/* Bytes written (at least 1) or -errno. */
MOTE_API int64_t mote_socket_write(mote_socket *s, const void *buf, size_t len, int64_t timeout);
/* Exactly len bytes, or -errno (-ENODATA if the stream ends first). The
 * timeout covers the whole call. */
MOTE_API int mote_socket_read_exact(mote_socket *s, void *buf, size_t len, int64_t timeout);
MOTE_API int mote_socket_write_all(mote_socket *s, const void *buf, size_t len, int64_t timeout);
/* Datagrams. */
MOTE_API int64_t mote_socket_send_to(mote_socket *s, const void *buf, size_t len, const mote_addr *to,
                                     int64_t timeout);
MOTE_API int64_t mote_socket_recv_from(mote_socket *s, void *buf, size_t len, mote_addr *from,
                                       int64_t timeout);
/* how: SHUT_RD, SHUT_WR or SHUT_RDWR from <sys/socket.h>. */
MOTE_API int mote_socket_shutdown(mote_socket *s, int how);
MOTE_API int mote_socket_local_addr(const mote_socket *s, mote_addr *out);
MOTE_API int mote_socket_peer_addr(const mote_socket *s, mote_addr *out);
MOTE_API int mote_socket_set_option(mote_socket *s, int level, int name, int value);
MOTE_API int mote_socket_close(mote_socket *s);

/* TCP conveniences. Listening sockets get SO_REUSEADDR (and SO_REUSEPORT
 * when reuse_port is true, so several servers can share a port); connected
 * ones, and every TCP connection mote_socket_accept takes, get TCP_NODELAY. mote_tcp_connect also takes "host:port": the name
 * is resolved (getaddrinfo) on a helper thread, so no worker blocks, and
 * each address is tried in turn; the timeout covers the whole call.
 * Resolver failures: MOTE_EAI_NONAME (no such host), MOTE_EAI_AGAIN,
 * MOTE_EAI_FAIL. A backlog of 0 means 1024; a negative one is -EINVAL (also
 * for mote_unix_listen). */
MOTE_API int mote_tcp_listen(mote_socket **out, const char *addr, int backlog, bool reuse_port);
MOTE_API int mote_tcp_connect(mote_socket **out, const char *addr, int64_t timeout);

/* Convenience constructors for the other socket types (numeric addresses as
 * mote_addr_parse reads them; Unix paths without the "unix:" prefix, a
 * leading '@' for the abstract namespace):
 *   mote_udp_bind       a UDP socket bound to addr ("0.0.0.0:0" for any)
 *   mote_unix_listen    a listening Unix stream socket (an existing socket
 *                       file at path is NOT removed: -EADDRINUSE)
 *   mote_unix_connect   a connected Unix stream socket
 *   mote_unix_datagram  a Unix datagram socket, bound to path unless NULL */
MOTE_API int mote_udp_bind(mote_socket **out, const char *addr);
MOTE_API int mote_unix_listen(mote_socket **out, const char *path, int backlog);
MOTE_API int mote_unix_connect(mote_socket **out, const char *path, int64_t timeout);
MOTE_API int mote_unix_datagram(mote_socket **out, const char *path);

/*
 * Active sockets (Erlang's active mode): hand a connected stream socket to
 * process p, and arriving data is delivered to p as calls of
 * fn(state, s, data, n) in arrival order: n > 0 bytes at data (valid during
 * the call), then exactly one final call with n == 0 (end of stream) or
 * n < 0 (an error such as -ECONNRESET). A process waiting this way holds no
 * stack, only its state. The socket is read in p's own turn, so a slow p
 * applies back-pressure through the kernel's buffers instead of piling
 * data up. p holds the socket; the final call is the place to close it.
 * The handler may write to s (mote_socket_write). Returns -EINVAL if s is
 * already active or not a stream socket.
 */
typedef void (*mote_active_fn)(void *state, mote_socket *s, const void *data, int64_t n);
MOTE_API int mote_socket_activate(mote_socket *s, mote_proc *p, mote_active_fn fn);

/* ---- Streams ------------------------------------------------------------ */

/*
 * One reader/writer interface for sockets, files, stdio and user types: a
 * stream is a pair (vtable, object) passed by value. read returns bytes
 * read (0 at end of stream) or -errno; write returns bytes written (>= 1)
 * or -errno. An operation that is not supported returns -EBADF (a file
 * opened write-only refuses reads). Timeouts apply where the object can
 * wait (sockets, pipes); files ignore them. A user type fills in the
 * vtable (an operation it lacks may be NULL); its operations are only
 * called with len > 0 and a valid buf. Once the calling process is
 * cancelled, every stream, reader and writer call below that moves data
 * returns -ECANCELED without calling the stream.
 */
typedef struct mote_stream_vt {
    int64_t (*read)(void *obj, void *buf, size_t len, int64_t timeout);
    int64_t (*write)(void *obj, const void *buf, size_t len, int64_t timeout);
} mote_stream_vt;

typedef struct mote_stream {
    const mote_stream_vt *vt;
    void *obj;
} mote_stream;

/* A stream over mote_socket_read / mote_socket_write. It does not own s.
 * A NULL s gives a stream whose vt is NULL. */
MOTE_API mote_stream mote_socket_stream(mote_socket *s);
/*
 * Call the stream's operation. -EBADF if s.vt is NULL or lacks it, -EINVAL
 * for a NULL buf with len > 0; len 0 returns 0 without calling it. An
 * operation that breaks the contract (more than len bytes, or a write of
 * 0 bytes) is reported as -EIO.
 */
MOTE_API int64_t mote_stream_read(mote_stream s, void *buf, size_t len, int64_t timeout);
MOTE_API int64_t mote_stream_write(mote_stream s, const void *buf, size_t len, int64_t timeout);
/* Exactly len bytes or -errno (-ENODATA if the stream ends first). The
 * timeout covers the whole call. After an error, part of the bytes may
 * have been moved. */
MOTE_API int mote_stream_read_exact(mote_stream s, void *buf, size_t len, int64_t timeout);
MOTE_API int mote_stream_write_all(mote_stream s, const void *buf, size_t len, int64_t timeout);

/*
 * Buffered reader. cap is the buffer size (0: 8 KiB) and so the longest
 * line mote_reader_read_until can return. It does not own the stream.
 * -EBADF if the stream has no read operation. A reader (like a writer) is
 * for one process at a time. Every call's timeout covers the whole call;
 * on an error (-ETIMEDOUT included) the bytes read so far stay buffered,
 * so a later call carries on where this one stopped.
 */
typedef struct mote_reader mote_reader;
MOTE_API int mote_reader_new(mote_reader **out, mote_stream s, size_t cap);
MOTE_API void mote_reader_free(mote_reader *r);
/* Up to len bytes: buffered ones if there are any (without calling the
 * stream), else one stream read; a len of at least cap with nothing
 * buffered reads straight into buf. 0 at end of stream. */
MOTE_API int64_t mote_reader_read(mote_reader *r, void *buf, size_t len, int64_t timeout);
/*
 * Read up to and including the byte delim (converted to unsigned char, as
 * memchr does). *out points at the bytes inside the reader's buffer, valid
 * until the next call on r (NULL when nothing is returned). Returns the
 * length (delimiter included), 0 at end of stream, -ENOBUFS if no
 * delimiter comes within cap bytes (the bytes stay buffered: read them with
 * mote_reader_read), or -errno. A last piece without delimiter before the
 * end of the stream is returned as it is.
 */
MOTE_API int64_t mote_reader_read_until(mote_reader *r, int delim, const char **out, int64_t timeout);
/* A line: like mote_reader_read_until(r, '\n', ...), but the returned
 * length leaves out the "\n" or "\r\n" (an empty line returns 0; a last
 * line without "\n" keeps a trailing "\r"), the line is NUL-terminated
 * (*out is a C string of the returned length, so sscanf and strcmp are
 * safe on it; a NUL byte inside the line ends the string early: use the
 * length for binary data), and the end of the stream returns -ENODATA.
 * mote_reader_read_until does NOT terminate what it returns. */
MOTE_API int64_t mote_reader_read_line(mote_reader *r, const char **out, int64_t timeout);

/*
 * Buffered writer. cap 0: 8 KiB. -EBADF if the stream has no write
 * operation. A write that fits behind the buffered bytes is only copied;
 * one that does not fit first writes the buffer out; one of at least cap
 * bytes then goes straight through, without copying. The timeout covers
 * the whole call.
 *
 * Errors: when writing the buffer out fails, the bytes not written stay
 * buffered (mote_writer_buffered counts them; the next flush tries them
 * again) and nothing of the new data is taken. When a write going straight
 * through fails, part of it may have been written, as with
 * mote_stream_write_all. mote_writer_free does NOT flush: call
 * mote_writer_flush first.
 */
typedef struct mote_writer mote_writer;
MOTE_API int mote_writer_new(mote_writer **out, mote_stream s, size_t cap);
MOTE_API void mote_writer_free(mote_writer *w);
MOTE_API int mote_writer_write(mote_writer *w, const void *buf, size_t len, int64_t timeout);
/* Format into the buffer (through a temporary heap buffer only if the text
 * is larger than cap). Returns the bytes formatted, -ENOMEM, -EINVAL (NULL
 * fmt, an encoding error) or a write error as above. */
MOTE_API int mote_writer_printf(mote_writer *w, int64_t timeout, const char *fmt, ...) MOTE_PRINTF(3, 4);
MOTE_API int mote_writer_flush(mote_writer *w, int64_t timeout);
/* Bytes waiting in the buffer. */
MOTE_API size_t mote_writer_buffered(const mote_writer *w);

/* ---- Blocking work -------------------------------------------------------- */

/*
 * Wrap a call that blocks its OS thread (a regular file, a foreign library,
 * a long computation you know about) in a blocking section:
 *
 *     mote_blocking_begin();
 *     n = read(fd, buf, len);
 *     mote_blocking_end();
 *
 * A section costs two stores when the call returns quickly. A monitor
 * thread notices a section that has run longer than blocking_threshold
 * (default 100 us) and lets a backup thread run that worker's other
 * processes; when the call returns, the extra thread retires, so the number
 * of threads running processes goes back to `threads`. The backup threads
 * are bounded (backup_threads), so a storm of blocking calls cannot exhaust
 * threads: beyond the bound, processes wait for a thread to come free.
 *
 * The monitor also notices a process that has computed for more than 10 ms
 * without calling into mote and does the same for its worker, so a
 * CPU-bound loop does not starve its neighbours (C code cannot be preempted
 * safely; the kernel time-slices the extra thread against the busy one).
 *
 * Inside a section do not call anything that suspends (mote_call,
 * mote_sleep, socket calls, ...). Outside a process (a foreign thread) the
 * calls do nothing. Sections do not nest.
 */
MOTE_API void mote_blocking_begin(void);
MOTE_API void mote_blocking_end(void);

/* ---- Files ---------------------------------------------------------------- */

/* Open flags (combine): */
#define MOTE_FILE_READ 1      /* open for reading */
#define MOTE_FILE_WRITE 2     /* open for writing */
#define MOTE_FILE_APPEND 4    /* every write goes to the end (implies WRITE) */
#define MOTE_FILE_CREATE 8    /* create if missing (mode 0666 & ~umask) */
#define MOTE_FILE_TRUNCATE 16 /* truncate to 0 bytes on open */
#define MOTE_FILE_EXCL 32     /* with CREATE: fail with -EEXIST if it exists */

typedef struct mote_file mote_file;

typedef struct mote_file_info {
    uint64_t size;
    uint32_t mode;   /* st_mode: type and permission bits */
    bool is_dir, is_file, is_symlink;
    int64_t mtime;   /* nanoseconds since the epoch */
} mote_file_info;

/*
 * Files run every call in a blocking section (regular files cannot be
 * polled); with MOTE_POLLER=uring, reads and writes are io_uring
 * completions instead: the process parks until its data is there, and its
 * worker runs the others. Every descriptor is close-on-exec. Errors are
 * negative errno: -ENOENT, -EISDIR, -EBADF (reading a write-only file), ...
 * These calls do not wait in mote's sense, so a cancelled process may
 * still use them (a file's stream refuses, as every stream does).
 */
MOTE_API int mote_file_open(mote_file **out, const char *path, int flags);
MOTE_API int mote_file_close(mote_file *f);
/* The descriptor. A file opened for reading only keeps its offset in mote
 * (reads are preads): this call moves the descriptor's offset there, and
 * from then on the descriptor's offset is the file's. */
MOTE_API int mote_file_fd(const mote_file *f);
MOTE_API int64_t mote_file_read(mote_file *f, void *buf, size_t len);
MOTE_API int64_t mote_file_write(mote_file *f, const void *buf, size_t len);
/* Whole buffer, or -errno. */
MOTE_API int mote_file_write_all(mote_file *f, const void *buf, size_t len);
/* Positioned I/O: does not move the file offset. */
MOTE_API int64_t mote_file_pread(mote_file *f, void *buf, size_t len, uint64_t off);
MOTE_API int64_t mote_file_pwrite(mote_file *f, const void *buf, size_t len, uint64_t off);
/* whence: SEEK_SET, SEEK_CUR, SEEK_END. Returns the new offset. */
MOTE_API int64_t mote_file_seek(mote_file *f, int64_t off, int whence);
MOTE_API int64_t mote_file_size(mote_file *f);
MOTE_API int mote_file_truncate(mote_file *f, uint64_t size);
MOTE_API int mote_file_sync(mote_file *f);
MOTE_API int mote_file_info_of(mote_file *f, mote_file_info *out);
MOTE_API mote_stream mote_file_stream(mote_file *f);

/* Paths. */
MOTE_API int mote_fs_info(const char *path, mote_file_info *out); /* follows symlinks */
MOTE_API int mote_fs_remove(const char *path);                    /* file or empty dir */
MOTE_API int mote_fs_rename(const char *from, const char *to);
/* Create a directory (mode 0777 & ~umask); with parents, missing parents
 * too and an existing directory is not an error. */
MOTE_API int mote_fs_mkdir(const char *path, bool parents);
/* The names in a directory (without "." and ".."), sorted, as a
 * NULL-terminated array freed with mote_fs_list_free. Returns the count. */
MOTE_API int mote_fs_list(const char *path, char ***out);
MOTE_API void mote_fs_list_free(char **names);
/* Copy a regular file's contents and permission bits; to is replaced.
 * Returns the bytes copied (>= 0) or -errno. */
MOTE_API int64_t mote_fs_copy(const char *from, const char *to);

/* ---- Standard streams ----------------------------------------------------- */

/*
 * stdin, stdout and stderr as streams. A pipe, socket or terminal is waited
 * on through the poller, so a process reading stdin or writing to a full
 * pipe holds no thread (mote uses a private non-blocking open file
 * description where it can, so the shell's terminal mode is untouched);
 * a regular file falls back to blocking sections. Not buffered: wrap them
 * in a mote_reader / mote_writer. stdio's FILE buffers are not involved:
 * fflush(stdout) before mixing the two.
 */
MOTE_API mote_stream mote_stdin(void);
MOTE_API mote_stream mote_stdout(void);
MOTE_API mote_stream mote_stderr(void);

/* ---- Signals -------------------------------------------------------------- */

/*
 * Signals as messages (mote_signal_watch) or as a wait (mote_signal_wait),
 * from any process or foreign thread. While a signal has a watcher or a
 * waiter, mote catches it with a handler (SA_RESTART) that only counts the
 * arrival and writes to a close-on-exec eventfd; a dispatcher process,
 * woken through the poller, hands each arrival on. So it works whichever
 * thread the kernel delivers the signal to: a worker, backup, poller,
 * timer or monitor thread, the main thread or a foreign thread. When the
 * last watcher and waiter of a signal go, the disposition it had before is
 * restored: with nobody watching, SIGINT and SIGTERM kill as usual. Runtime
 * shutdown restores every disposition mote changed, closes the eventfd and
 * drops the watches.
 *
 * Arrivals are counted, so none is lost between two wake-ups of the
 * dispatcher. The kernel, though, keeps at most one pending instance of a
 * standard signal: the same signal sent again before any thread has run
 * the handler for the first is merged with it (n kill()s in a quick burst
 * may arrive as fewer; a raise() or a signal to a thread that has it
 * unblocked is handled before the call returns). Real-time signals are
 * queued by the kernel.
 *
 * Signal masks. mote blocks no signal in any thread: each of its threads
 * inherits the mask of the thread that created it, so all of them have
 * the mask of the thread that called mote_run. The program must not:
 *   - block a watched signal in every thread (blocking it before mote_run
 *     does that): then no handler runs and the signal stays pending;
 *   - install its own handler for a watched signal (sigaction, signal):
 *     that replaces mote's, and the last unwatch puts back the disposition
 *     found at the first watch;
 *   - rely on which thread runs the handler.
 *
 * signalfd(2) instead: a signalfd only sees a signal that is blocked in
 * EVERY thread; otherwise the kernel delivers it to a thread that has it
 * unblocked, with its normal action. Blocking SIGTERM inside mote_run (in
 * the main process) blocks it on the main thread only: the workers still
 * have it unblocked and SIGTERM still kills the program. Block it before
 * mote_run, so every mote thread inherits the mask, or use mote_signal_*.
 *
 * Child processes (mote_child_spawn) start with an empty signal mask and
 * default dispositions for the signals mote catches (as after any exec)
 * and for SIGPIPE, which mote_run ignores.
 */

/* The data of a MOTE_MSG_SIGNAL message (mote_msg_kind). */
typedef struct mote_signal_msg {
    int signo;
} mote_signal_msg;

/*
 * Deliver every arrival of signo to p as a message of kind MOTE_MSG_SIGNAL
 * holding a mote_signal_msg, read with mote_receive (tell it from data
 * messages with mote_msg_kind). Every watcher and waiter of a signal gets
 * every arrival. The watch holds a reference to p until
 * mote_signal_unwatch or runtime shutdown.
 * Errors: -EINVAL (p NULL; signo not in 1..64, or one mote does not catch:
 * SIGKILL, SIGSTOP, and the synchronous faults SIGSEGV, SIGBUS, SIGILL,
 * SIGFPE, SIGTRAP, SIGSYS; the C library's reserved real-time signals),
 * -EEXIST (p already watches signo), -ENOMEM, -EMFILE / -ENFILE (no
 * descriptor for the eventfd), -ESHUTDOWN (no runtime running).
 */
MOTE_API int mote_signal_watch(mote_proc *p, int signo);

/* Stop watching. An arrival handed on just before may still reach p after
 * this returns. Errors: -EINVAL (as above), -ENOENT (p does not watch
 * signo). */
MOTE_API int mote_signal_unwatch(mote_proc *p, int signo);

/*
 * Wait until one of the n signals at signos arrives and return its number
 * (> 0). Only arrivals after the call started count; arrivals while
 * nobody waits or watches take the signal's previous disposition (which
 * may be the default: death). Suspends only the calling process (a
 * foreign thread blocks). Errors: -EINVAL (signos NULL, n 0 or > 64, a
 * signal as in mote_signal_watch), -ETIMEDOUT, -ECANCELED (the runtime
 * shut down while a foreign thread waited), -ENOMEM, -EMFILE, -ENFILE,
 * -ESHUTDOWN.
 */
MOTE_API int mote_signal_wait(const int *signos, size_t n, int64_t timeout);

/* ---- Child processes ----------------------------------------------------- */

/*
 * Run programs (Go's os/exec). mote_child_spawn starts argv[0] (searched in
 * the program's PATH when it holds no '/'; a relative path is taken in the
 * child's cwd)
 * with posix_spawn, inside a blocking section. The child gets:
 *   - envp, or the program's environment when envp is NULL;
 *   - cwd, or the program's working directory when cwd is NULL;
 *   - for each of stdin, stdout, stderr (stdio[0..2]): MOTE_CHILD_INHERIT
 *     (the program's own), MOTE_CHILD_NULL (/dev/null) or MOTE_CHILD_PIPE
 *     (a pipe whose other end the parent reads or writes through
 *     mote_child_stdin/stdout/stderr, waiting through the poller);
 *   - no other descriptor: everything from 3 up is closed in the child,
 *     close-on-exec or not;
 *   - an empty signal mask, SIGPIPE at its default action (mote_run
 *     ignores it in the parent) and every signal mote catches at its
 *     default (as after any exec); signals ignored by the program stay
 *     ignored.
 * Exit is noticed through a pidfd (no SIGCHLD handler is installed) and
 * the child is reaped with waitid(P_PIDFD). The program must not reap
 * mote's children itself (waitpid(-1, ...), SIGCHLD set to SIG_IGN or
 * SA_NOCLDWAIT): their status would be lost (mote_child_wait then fails
 * with -ECHILD).
 *
 * Several processes may wait for one child: the first waits through the
 * poller, the others look again every few milliseconds (up to 20 ms).
 *
 * When the runtime shuts down, children that have exited are reaped;
 * children still running are left running (not killed, as in Go), with
 * their pipes closed, so a child reading stdin sees its end. Nobody reaps
 * them after that unless the program calls waitpid(pid) itself. Kill
 * (mote_child_kill) and wait for the ones that must not outlive the
 * runtime.
 */
typedef struct mote_child mote_child;

#define MOTE_CHILD_INHERIT 0
#define MOTE_CHILD_NULL 1
#define MOTE_CHILD_PIPE 2

typedef struct mote_child_opts {
    const char *const *argv; /* program and arguments, NULL-terminated */
    const char *const *envp; /* "NAME=value" strings, NULL-terminated; NULL: inherit */
    const char *cwd;         /* NULL: inherit */
    int stdio[3];            /* MOTE_CHILD_INHERIT (0), MOTE_CHILD_NULL, MOTE_CHILD_PIPE */
} mote_child_opts;

typedef struct mote_child_status {
    int exit_code; /* 0..255 if it exited, else -1 */
    int signal;    /* the signal that killed it, else 0 */
} mote_child_status;

/*
 * Start a child. Errors: -EINVAL (NULL or empty argv, a bad stdio mode),
 * -ENOENT (no such program, or no such cwd), -EACCES, -ENOEXEC, -E2BIG,
 * -ENOMEM, -EAGAIN (process limit), -EMFILE / -ENFILE (no descriptor for a
 * pipe or the pidfd), -ESHUTDOWN (no runtime running); any other exec
 * error of the program as its negative errno.
 */
MOTE_API int mote_child_spawn(mote_child **out, const mote_child_opts *o);

/* The child's process id (> 0), -EINVAL for NULL. */
MOTE_API int mote_child_pid(const mote_child *c);

/* The parent's end of a MOTE_CHILD_PIPE stream: write stdin, read stdout
 * and stderr. Borrowed from c: valid until mote_child_close_stdin (for
 * stdin) or mote_child_free. A stream that is not a pipe has a NULL vt
 * (its calls return -EBADF). Read stdout and stderr and write stdin from
 * different processes when the child may fill one pipe while you wait on
 * another. */
MOTE_API mote_stream mote_child_stdin(mote_child *c);
MOTE_API mote_stream mote_child_stdout(mote_child *c);
MOTE_API mote_stream mote_child_stderr(mote_child *c);

/* Close the child's stdin pipe (it reads end of file). A process still
 * waiting to write it gets -EBADF. -EBADF if stdin is not a pipe or is
 * closed already; -EINVAL for NULL. */
MOTE_API int mote_child_close_stdin(mote_child *c);

/*
 * Wait until the child exits (it is then reaped) and fill *st (st may be
 * NULL). Once reaped, every later call returns the same status at once.
 * Suspends only the calling process (a foreign thread blocks). Errors:
 * -EINVAL, -ETIMEDOUT (the child keeps running), -ECHILD (the program
 * reaped it behind mote's back).
 */
MOTE_API int mote_child_wait(mote_child *c, int64_t timeout, mote_child_status *st);

/*
 * The same as a future, which resolves with err 0 and i = the exit code
 * (>= 0), or minus the signal that killed the child (< 0); or err < 0 as
 * mote_child_wait's (-ECANCELED if the runtime shuts down first). After
 * it resolves, mote_child_wait returns the full status at once. c may be
 * freed before it resolves. Errors: -EINVAL, -ENOMEM, -ESHUTDOWN.
 */
MOTE_API int mote_child_wait_async(mote_child *c, mote_future **out);

/* Send signo (0 only checks that it runs) to the child, through its pidfd
 * (never to a reused pid). Errors: -EINVAL, -ESRCH (already reaped), or
 * the kernel's (-EPERM). */
MOTE_API int mote_child_kill(mote_child *c, int signo);

/* Close the pipes and free c. A child not yet reaped keeps running and is
 * reaped in the background when it exits. NULL is a no-op. */
MOTE_API void mote_child_free(mote_child *c);

/* ---- Panics ------------------------------------------------------------- */

/*
 * Panic: print the process, the message being run and a backtrace to
 * stderr, and exit the program with status 101. If the process registered a
 * panic handler, the handler runs instead (in the panicking process) and
 * then only that process ends: its stack is discarded (C has no unwinding:
 * whatever its frames owned leaks), its pending messages resolve with
 * -ECANCELED and its state destructor runs. Outside a process, always exits.
 */
MOTE_API MOTE_NORETURN void mote_panic(const char *fmt, ...) MOTE_PRINTF(1, 2);

/* The handler gets the panic message and ctx. */
typedef void (*mote_panic_fn)(const char *msg, void *ctx);

/* Register (or with fn NULL, remove) the calling process's panic handler.
 * -EPERM outside a process. */
MOTE_API int mote_on_panic(mote_panic_fn fn, void *ctx);

/* ---- Seeing inside a running program --------------------------------------- */

/*
 * Besides the calls below (dumps, metrics, traces), the environment turns
 * on: MOTE_DUMP_SIGNAL (a dump on a signal), MOTE_TRACE=path (a trace of
 * the whole run), and MOTE_WARN_BLOCKING=ms: a blocking section or a turn
 * (a process holding its worker without suspending) longer than that is
 * reported on stderr when it ends, once per process, with the process's
 * id and name, how long, and where (a backtrace, or the message handler).
 * Panics and stack overflows print symbolised backtraces (function and,
 * when mote was built with libdw, file:line). For gdb, see
 * tools/mote-gdb.py (mote procs, mote bt).
 */

/*
 * Write a dump of the running program to fd: every worker (idle, running
 * which process and for how long, in a blocking section) and every
 * process: id, name, state (idle; runnable; running on which worker;
 * suspended in what: receive, await of which future, a call to which
 * process, an fd wait on which fd and direction, a sleep, with the time
 * left), mailbox length and age, and for a suspended process a symbolised
 * backtrace of where it waits (function, file:line with libdw).
 *
 * Nothing is stopped: processes keep running while the dump reads racy
 * snapshots; a process that resumes while its stack is read is shown
 * without a backtrace. A running process's stack is not read. From a
 * process, the call runs as a blocking section. Returns 0, -EBADF,
 * -ENOMEM, -ESHUTDOWN.
 */
MOTE_API int mote_dump(int fd);

/*
 * Print a dump to stderr whenever signal sig arrives (Go prints one on
 * SIGQUIT; here the program then carries on). sig 0 turns it off; the
 * signal's previous disposition comes back then and at shutdown. The
 * handler only wakes a thread of the runtime, which prints. Also set by
 * the environment: MOTE_DUMP_SIGNAL=1 (or QUIT) for SIGQUIT, USR1, USR2
 * or a number. Returns 0, -EINVAL (a signal that cannot be used: KILL,
 * STOP, SEGV, BUS, FPE, ILL, PIPE), -ESHUTDOWN.
 */
MOTE_API int mote_dump_on_signal(int sig);

/*
 * Counters of the running runtime, cheap enough to be always on: each
 * worker counts on a cache line of its own without locked instructions,
 * and a read sums them (so a read costs a pass over the workers). Counts
 * start at zero with each mote_run. Fields marked "now" are gauges; the
 * others only grow.
 *
 * ABI: set size to sizeof(mote_metrics) before the call. The library
 * fills at most size bytes (a program built against an older header gets
 * the fields it knows) and sets version; fields a newer header adds stay
 * as the caller left them (zero them first).
 */
#define MOTE_METRICS_VERSION 1
typedef struct mote_metrics {
    uint32_t size;    /* in: sizeof(mote_metrics) */
    uint32_t version; /* out: the library's MOTE_METRICS_VERSION */
    /* processes and messages */
    uint64_t procs_live; /* now */
    uint64_t procs_spawned;
    uint64_t procs_finished;
    uint64_t msgs_sent;
    uint64_t msgs_run; /* run, or taken by mote_receive */
    /* scheduling */
    uint64_t turns;         /* a process started or resumed on a worker */
    uint64_t parks;         /* a process suspended */
    uint64_t wakeups;       /* a suspended process made runnable */
    uint64_t steals;        /* a worker took work from another */
    uint64_t worker_sleeps; /* a worker went idle */
    uint64_t busy_ns;       /* time workers were not idle, all summed */
    uint64_t workers;       /* now */
    /* the poller */
    uint64_t poll_waits;  /* waits that could block */
    uint64_t poll_events; /* readiness events */
    /* blocking work */
    uint64_t blocking_sections;
    uint64_t handoffs;              /* backup workers started for stalled workers */
    uint64_t backup_threads;        /* now: started (they stay, pooled) */
    uint64_t backup_workers_active; /* now */
    /* timers and stacks */
    uint64_t timers_armed;
    uint64_t timers_fired;
    uint64_t stacks_mapped; /* now */
    uint64_t stacks_cached; /* now: mapped and free */
} mote_metrics;

/* Fill *out (see above). Returns 0, -EINVAL (out NULL, or out->size < 8),
 * -ESHUTDOWN. Any thread. */
MOTE_API int mote_metrics_get(mote_metrics *out);

/* Busy nanoseconds of each worker (threads of them), then one entry for
 * all backup workers together, into busy_ns[0..n). Returns how many
 * entries there are (threads + 1), or -EINVAL, -ESHUTDOWN. */
MOTE_API int mote_metrics_workers(uint64_t *busy_ns, size_t n);

/*
 * The counters in the Prometheus text format (version 0.0.4): a HELP and
 * a TYPE line per metric, names starting with "mote_", counters ending in
 * "_total", busy time in seconds per worker. Written to buf as snprintf
 * does: at most len bytes with a NUL; returns the length of the whole
 * text (without the NUL), so a result >= len means it was cut (buf NULL
 * with len 0 asks for the length). -EINVAL, -ESHUTDOWN.
 * examples/metrics_http.c serves it at /metrics.
 */
MOTE_API int64_t mote_metrics_prometheus(char *buf, size_t len);

/*
 * Trace the scheduler into a file that the Perfetto UI (ui.perfetto.dev)
 * or chrome://tracing opens (Chrome's trace event JSON): one track per
 * thread; a slice per turn of a process, named after it, saying how the
 * turn ended (done, yielded, suspended in receive, ...); slices for
 * blocking sections, waits in the poller and idle workers; spawns,
 * steals and hand-offs to backup workers as instant events; and an arrow
 * from every wake-up (or message to an idle process) to the turn it
 * caused. Also started by the environment: MOTE_TRACE=path.
 *
 * Each thread keeps the last MOTE_TRACE_EVENTS events (default 262144) in
 * a ring of its own; the file is written at mote_trace_stop, or when the
 * runtime shuts down. Off, a trace point costs one load and one branch.
 *
 * mote_trace_start: 0, -EINVAL (path NULL or ""), -EBUSY (a trace runs),
 * -ESHUTDOWN, or the error opening path. mote_trace_stop: 0, -EINVAL (no
 * trace runs), -EIO (writing failed).
 */
MOTE_API int mote_trace_start(const char *path);
MOTE_API int mote_trace_stop(void);

/* ---- Cancellation ----------------------------------------------------------- */

/*
 * Cancel process p (any thread holding a handle; idempotent; the first
 * cancel decides the reason). From then on every call p makes that can
 * wait returns -ECANCELED at once, without waiting and without doing its
 * work, and so does the one it is in now: mote_await(_for), mote_call,
 * mote_receive, mote_sleep, mote_poll, mote_fd_wait, and every socket,
 * stream, reader and writer call that moves data. A blocking section in
 * progress is not interrupted: the process sees -ECANCELED at its next
 * wait. Calls that never wait (mote_cast, mote_send, mote_async,
 * mote_spawn, closes, releases, mote_file_*) still work, so the process
 * can let go of what it holds.
 *
 * Write handlers so that they return on -ECANCELED. When the message being
 * run returns, p ends: its end is reported to its monitors and links
 * (reason MOTE_EXIT_CANCELLED), its state destructor runs (exactly once),
 * and its queued messages are dropped: their futures resolve with
 * -ECANCELED, casts and data messages are freed. Messages sent to it later
 * are cancelled at once. An idle process (no message) ends at once, even
 * if handles to it remain. A mote_spawn_fn process cancelled before its
 * fn started still runs fn (its waits refuse at once), so fn can release
 * what its argument owns. A handler that ignores -ECANCELED and never
 * returns keeps p from ending (see mote_run on shutdown).
 *
 * Returns 0, -EINVAL (NULL), -ESHUTDOWN (no runtime).
 */
MOTE_API int mote_cancel(mote_proc *p);

/*
 * Cancel p once ns nanoseconds have passed (ns <= 0: now). A later call
 * replaces the deadline unless it has passed. The armed deadline holds a
 * reference to p until p ends, so p lives at least that long (its last
 * handle going does not end it before the deadline). Returns 0, -EINVAL,
 * -ESHUTDOWN, -ENOMEM. A process that has ended is left alone (0).
 */
MOTE_API int mote_cancel_after(mote_proc *p, int64_t ns);

/* True once the calling process has been cancelled (false outside a
 * process): for long computations that make no waiting call. */
MOTE_API bool mote_cancelled(void);

/* ---- Monitors and links ------------------------------------------------------ */

/*
 * A process ends when its state process's last handle goes (mote_spawn;
 * an idle process with live handles has NOT ended), when its fn returns
 * (mote_spawn_fn), when it is cancelled, when it panics with a handler,
 * or at runtime shutdown. Reasons:
 */
#define MOTE_EXIT_NORMAL 0    /* its destructor ran / its fn returned */
#define MOTE_EXIT_PANIC 1     /* mote_panic (text: the panic message), or
                               * a supervisor that gave up */
#define MOTE_EXIT_CANCELLED 2 /* mote_cancel ("cancelled"), a deadline
                               * ("deadline passed"), a link ("linked
                               * process ended") */
#define MOTE_EXIT_SHUTDOWN 3  /* the runtime stopped ("runtime shutdown") */

/* An exit notice, as read by mote_msg_exit. */
typedef struct mote_exit {
    int reason;       /* MOTE_EXIT_* */
    bool link;        /* from a link (the receiver traps exits), not a monitor */
    uint64_t proc_id; /* mote_proc_id of the process that ended */
    uint64_t ref;     /* the monitor's reference (0 for a link) */
    const char *text; /* the reason in words (a panic: its message); valid
                       * until the message is freed */
} mote_exit;

/*
 * If m is an exit notice (mote_msg_kind(m) == MOTE_MSG_EXIT), fill *out
 * (out may be NULL) and return true; false for any other message. Free
 * the notice with mote_msg_free.
 */
MOTE_API bool mote_msg_exit(const mote_msg *m, mote_exit *out);

/*
 * Monitor target: when it ends, an exit notice carrying *ref arrives in the
 * caller's mailbox (for mote_receive). If target has already ended, the
 * notice is sent at once: there is no window in which an end is missed. A
 * monitor keeps nothing alive: neither target (drop your handle, and a
 * state process with no other handle ends normally, which the monitor
 * reports) nor the caller. Monitoring a process twice gives two monitors.
 * Returns 0, -EINVAL (NULL, or target is the caller), -EPERM (not in a
 * process, or the caller has ended), -ENOMEM.
 */
MOTE_API int mote_monitor(mote_proc *target, uint64_t *ref);

/*
 * Remove the caller's monitor ref: afterwards no notice for it is in the
 * mailbox or will arrive (one already delivered but not yet received is
 * taken out). Returns 0; -ENOENT if there is no such monitor, it was
 * already removed, or its notice was already received; -EPERM outside a
 * process.
 */
MOTE_API int mote_demonitor(uint64_t ref);

/*
 * Monitor target from any thread (or a process that wants a future): *out
 * resolves when target ends (at once if it has), with err == 0 and p a
 * mote_msg * exit notice (read it with mote_msg_exit, free it with
 * mote_msg_free), or err == -ENOMEM. To stop monitoring, drop the future;
 * dropping a resolved one frees its notice. Returns 0, -EINVAL, -ENOMEM,
 * -ESHUTDOWN.
 */
MOTE_API int mote_monitor_future(mote_proc *target, mote_future **out);

/*
 * Link the caller and p, both ways (Erlang's links). When either ends, the
 * other is told:
 *
 *      A ---- link ---- B         B ends with reason R:
 *
 *      R abnormal (PANIC, CANCELLED, SHUTDOWN)
 *        A traps exits?  no  -> A is cancelled ("linked process ended"),
 *                               and in turn ends its own links that way
 *                        yes -> A gets an exit notice (link == true)
 *      R normal (NORMAL)
 *        A traps exits?  no  -> nothing
 *                        yes -> A gets an exit notice (link == true)
 *
 * Linking to a process that has already ended acts at once, as above.
 * Linking twice is one link. Returns 0, -EINVAL (NULL, or p is the
 * caller), -EPERM (not in a process, or the caller has ended), -ENOMEM.
 */
MOTE_API int mote_link(mote_proc *p);

/* Remove the link between the caller and p (none: no error). A notice
 * already delivered stays; a cancel already made stays. Returns 0,
 * -EINVAL, -EPERM. */
MOTE_API int mote_unlink(mote_proc *p);

/* Whether the calling process traps exits (see mote_link). Off by
 * default. Returns 0, or -EPERM outside a process. */
MOTE_API int mote_trap_exits(bool on);

/* ---- Supervisors -------------------------------------------------------------- */

/*
 * A supervisor is a process that starts children and restarts a child that
 * ends abnormally (panic, cancel), Erlang style:
 *
 *   MOTE_SUP_ONE_FOR_ONE  only the child that ended is restarted
 *   MOTE_SUP_ALL_FOR_ONE  the other children are cancelled (and waited
 *                         for), then all are started again in order
 *
 * A child that ends normally is not restarted (mote_sup_child then says
 * -ESRCH). Restart intensity: more than max_restarts restarts within
 * period nanoseconds (defaults for 0: 3 in 5 s), and the supervisor gives
 * up: it ends with reason MOTE_EXIT_PANIC (text "supervisor gave up: ..."),
 * which reaches its monitors and links. Whenever the supervisor ends (it
 * gives up, or mote_cancel stops it), its children are cancelled: it is
 * linked to each and traps exits, so a child ending is a notice to it,
 * and its end is a linked end to them.
 *
 * start(&child, arg) runs in the supervisor process; it spawns the child
 * and hands over one reference to it (0), or returns a negative errno (a
 * restart whose start fails counts as another restart). A panic without a
 * handler ends the whole program, supervised or not: a child that may
 * panic registers one (mote_on_panic; a handler that does nothing will
 * do) before it can panic, e.g. first thing in its fn, or in the first
 * message its start function sends it.
 */
#define MOTE_SUP_ONE_FOR_ONE 0
#define MOTE_SUP_ALL_FOR_ONE 1

typedef int (*mote_child_start_fn)(mote_proc **out, void *arg);

typedef struct mote_child_spec {
    mote_child_start_fn start;
    void *arg;
} mote_child_spec;

typedef struct mote_sup_spec {
    int strategy;                    /* MOTE_SUP_* */
    unsigned max_restarts;           /* 0: 3 */
    int64_t period;                  /* nanoseconds; 0: 5 s */
    const mote_child_spec *children; /* copied */
    size_t n;
} mote_sup_spec;

/*
 * Start a supervisor and its children, in order; returns once they have
 * started. *out gets a handle to the supervisor. Returns 0, -EINVAL (a bad
 * spec), -ENOMEM, -ESHUTDOWN, -ECANCELED (the caller was cancelled), or the
 * error of the first start function that failed (the children started
 * before it are cancelled). Stop a supervisor with mote_cancel.
 */
MOTE_API int mote_sup_start(mote_proc **out, const mote_sup_spec *spec);

/*
 * A new reference to child i as it runs now (release it when done). A
 * caller whose message to the child is cancelled (the child ended) and
 * who asks again gets the restarted child. Returns 0, -EINVAL (NULL, i out
 * of range), -ESRCH (child i ended normally: it is not restarted),
 * -ECANCELED (the supervisor has ended, or the caller was cancelled).
 */
MOTE_API int mote_sup_child(mote_proc *sup, size_t i, mote_proc **out);

#ifdef __cplusplus
}
#endif
#endif /* MOTE_H */
