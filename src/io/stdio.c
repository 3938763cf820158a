/*
 * stdio.c -- stdin, stdout and stderr as streams.
 *
 * Each standard stream is one static struct, set up on its first use (a
 * once-flag: the first caller fstats the descriptor and picks a mode, a
 * caller that races it waits the few microseconds that takes) and kept for
 * the runtime's life. Nothing is allocated; shutdown closes the private
 * descriptors. The modes:
 *
 *   POLL      a pipe, FIFO or terminal. Setting O_NONBLOCK on descriptor 0
 *             itself would change the open file description the shell (and
 *             every other program sharing the pipe or terminal) uses, so
 *             mote opens a private description of the same object:
 *             open("/proc/self/fd/N", O_RDONLY or O_WRONLY | O_NONBLOCK |
 *             O_NOCTTY | O_CLOEXEC). Its O_NONBLOCK is its own. A read or
 *             write that says EAGAIN waits through the poller
 *             (mote_fd_wait), so the process holds no thread while stdin is
 *             empty or a stdout pipe is full. The private descriptor stays
 *             open until the program exits (it holds one more reference on
 *             the pipe: closing descriptor 1 alone does not end a reader's
 *             input while mote has used stdout). It is closed when the
 *             runtime shuts down (mote__stdio_shutdown).
 *   SOCKET    a socket, which /proc cannot reopen (ENXIO): recv/send with
 *             MSG_DONTWAIT on the descriptor itself, which makes just that
 *             call non-blocking; EAGAIN waits through the poller as above.
 *   BLOCKING  a regular file or block device (not pollable), or anything
 *             whose reopen failed (no /proc, a FIFO without a reader): plain
 *             read/write on the original descriptor inside a blocking
 *             section.
 *
 * A descriptor that turns out not to be pollable (/dev/null reopened) or a
 * caller with no runtime running waits with poll(2) in a blocking section
 * instead. Wrong-way calls (writing stdin, reading stdout) return -EBADF.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/internal.h"

enum { MODE_POLL = 1, MODE_SOCKET, MODE_BLOCKING };
enum { INIT_NONE, INIT_BUSY, INIT_DONE };

typedef struct stdio_stream {
    int std_fd; /* 0, 1 or 2 */
    bool out;   /* written, not read */
    _Atomic int init;
    int mode;
    int fd; /* the descriptor the mode uses */
} stdio_stream;

static stdio_stream stdio_streams[3] = {
    {.std_fd = 0, .out = false},
    {.std_fd = 1, .out = true},
    {.std_fd = 2, .out = true},
};

/* Pick a mode for s. 0, or -errno (the descriptor is not open): then the
 * next call tries again. */
static int stdio_setup(stdio_stream *s) {
    struct stat st;
    int r;
    mote_blocking_begin();
    r = fstat(s->std_fd, &st) == 0 ? 0 : mote__errno();
    mote_blocking_end();
    if (r < 0)
        return r;
    s->fd = s->std_fd;
    s->mode = MODE_BLOCKING;
    if (S_ISSOCK(st.st_mode)) {
        s->mode = MODE_SOCKET;
    } else if (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode)) {
        char path[32];
        snprintf(path, sizeof path, "/proc/self/fd/%d", s->std_fd);
        int flags = (s->out ? O_WRONLY : O_RDONLY) | O_NONBLOCK | O_NOCTTY | O_CLOEXEC;
        int fd;
        mote_blocking_begin();
        do
            fd = open(path, flags);
        while (fd < 0 && mote__errno() == -EINTR);
        mote_blocking_end();
        if (fd >= 0) {
            s->fd = fd;
            s->mode = MODE_POLL;
        }
    }
    return 0;
}

/* The stream, set up; or -errno. A caller that finds another one setting
 * it up spins a little, then lets others run (the one setting up may need
 * a worker again to leave its blocking section). */
static int stdio_get(stdio_stream *s) {
    for (unsigned spins = 0;; spins++) {
        int st = atomic_load_explicit(&s->init, memory_order_acquire);
        if (st == INIT_DONE)
            return 0;
        if (st == INIT_BUSY) {
            if (spins < 100)
                mote__cpu_relax();
            else if (mote_self())
                mote_yield();
            else
                sched_yield();
            continue;
        }
        if (!atomic_compare_exchange_weak(&s->init, &st, INIT_BUSY))
            continue;
        int r = stdio_setup(s);
        atomic_store_explicit(&s->init, r == 0 ? INIT_DONE : INIT_NONE, memory_order_release);
        return r;
    }
}

/* After EAGAIN: wait for ev on s's descriptor until deadline (< 0: none).
 * 0 to retry, or -errno. */
static int stdio_wait(stdio_stream *s, int ev, int64_t deadline) {
    int64_t left = -1;
    if (deadline >= 0 && (left = deadline - mote__now()) <= 0)
        return -ETIMEDOUT;
    int r = mote_fd_wait(s->fd, ev, left);
    if (r != -EPERM && r != -ESHUTDOWN)
        return r < 0 ? r : 0;
    /* Not pollable through the poller, or no runtime: plain poll(2). */
    struct pollfd p = {.fd = s->fd, .events = ev == MOTE_READABLE ? POLLIN : POLLOUT};
    int ms = left < 0 ? -1 : (int)((left + 999999) / 1000000);
    mote_blocking_begin();
    r = poll(&p, 1, ms);
    if (r < 0)
        r = mote__errno();
    mote_blocking_end();
    if (r == 0)
        return -ETIMEDOUT;
    return r < 0 && r != -EINTR ? r : 0;
}

/* One read or write in s's mode: >= 0, or -errno (-EAGAIN included). */
static ssize_t stdio_once(stdio_stream *s, void *buf, size_t len) {
    ssize_t n;
    bool blocking = s->mode == MODE_BLOCKING;
    if (blocking)
        mote_blocking_begin();
    if (s->mode == MODE_SOCKET)
        n = s->out ? send(s->fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL) : recv(s->fd, buf, len, MSG_DONTWAIT);
    else
        n = s->out ? write(s->fd, buf, len) : read(s->fd, buf, len);
    if (n < 0)
        n = mote__errno();
    if (blocking)
        mote_blocking_end();
    return n;
}

static int64_t stdio_io(stdio_stream *s, void *buf, size_t len, int64_t timeout) {
    if (!buf && len)
        return -EINVAL;
    int r = stdio_get(s);
    if (r < 0)
        return r;
    if (len > (size_t)SSIZE_MAX)
        len = (size_t)SSIZE_MAX;
    int64_t deadline = mote__deadline(timeout);
    for (;;) {
        ssize_t n = stdio_once(s, buf, len);
        if (n == 0 && s->out && len > 0)
            return -EIO; /* a stream write makes progress or fails */
        if (n >= 0)
            return n;
        if (n == -EINTR)
            continue;
        if (n != -EAGAIN && n != -EWOULDBLOCK)
            return n;
        if ((r = stdio_wait(s, s->out ? MOTE_WRITABLE : MOTE_READABLE, deadline)) < 0)
            return r;
    }
}

static int64_t stdio_read(void *obj, void *buf, size_t len, int64_t timeout) {
    return stdio_io(obj, buf, len, timeout);
}

static int64_t stdio_write(void *obj, const void *buf, size_t len, int64_t timeout) {
    return stdio_io(obj, (void *)(uintptr_t)buf, len, timeout); /* never written to */
}

static int64_t stdio_no_read(void *obj, void *buf, size_t len, int64_t timeout) {
    (void)obj, (void)buf, (void)len, (void)timeout;
    return -EBADF;
}

static int64_t stdio_no_write(void *obj, const void *buf, size_t len, int64_t timeout) {
    (void)obj, (void)buf, (void)len, (void)timeout;
    return -EBADF;
}

static const mote_stream_vt stdin_vt = {stdio_read, stdio_no_write};
static const mote_stream_vt stdout_vt = {stdio_no_read, stdio_write};

mote_stream mote_stdin(void) {
    mote_stream s = {&stdin_vt, &stdio_streams[0]};
    return s;
}

mote_stream mote_stdout(void) {
    mote_stream s = {&stdout_vt, &stdio_streams[1]};
    return s;
}

mote_stream mote_stderr(void) {
    mote_stream s = {&stdout_vt, &stdio_streams[2]};
    return s;
}

/* Close the private descriptors, so nothing mote opened outlives the
 * runtime (the next runtime sets the streams up again). */
void mote__stdio_shutdown(void) {
    for (int i = 0; i < 3; i++) {
        stdio_stream *s = &stdio_streams[i];
        if (atomic_load(&s->init) == INIT_DONE && s->fd != s->std_fd)
            close(s->fd);
        atomic_store(&s->init, INIT_NONE);
    }
}
