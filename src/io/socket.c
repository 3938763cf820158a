/*
 * socket.c -- sockets whose calls suspend only the calling process, built
 * on mote_fd_wait: one generic socket (any domain and type). The TCP, UDP
 * and Unix conveniences are in dial.c, addresses in addr.c, host names in
 * resolve.c.
 *
 * Close under a waiter: mote_socket_close marks the socket closed and wakes
 * every waiter (they return -EBADF), but the descriptor itself is closed
 * only when the last call in flight has returned (`refs`), so its number
 * can never be reused under a call that still holds it.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/internal.h"

struct mote_socket {
    int fd;
    bool is_socket;
    bool is_stream;  /* SOCK_STREAM: every arriving byte makes a new edge */
    bool rd_drained; /* reader only: the last read was short */
    uint8_t rd_data; /* reader only: one-shot io_uring reads that brought data, up to 2 */
    _Atomic(mote__urecv *) ur; /* its multishot receive, once it has one (uring.c) */
    _Atomic bool closed;
    _Atomic uint32_t refs; /* the handle, plus one per call in flight */
};

/* ---- Lifetime ---- */

static int sock_new(mote_socket **out, int fd) {
    mote_socket *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    int type;
    socklen_t tl = sizeof type;
    s->fd = fd;
    s->is_socket = getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) == 0;
    s->is_stream = s->is_socket && type == SOCK_STREAM;
    atomic_init(&s->refs, 1);
    *out = s;
    return 0;
}

static void sock_unref(mote_socket *s) {
    uint32_t held = atomic_fetch_sub(&s->refs, 1);
    MOTE_ASSERT_MSG(held > 0, "a socket released more often than referenced");
    if (held == 1) {
        mote__fd_abort(s->fd);
        mote__uring_recv_release(atomic_load(&s->ur));
        close(s->fd);
        free(s);
    }
}

/* Start a call: a reference keeps the descriptor open until it returns. */
static int sock_enter(mote_socket *s) {
    if (!s)
        return -EINVAL;
    if (atomic_load(&s->closed))
        return -EBADF;
    uint32_t held = atomic_fetch_add(&s->refs, 1);
    MOTE_ASSERT_MSG(held > 0, "a call enters a socket its caller holds");
    return 0;
}

int mote_socket_open(mote_socket **out, int domain, int type, int protocol) {
    if (!out)
        return -EINVAL;
    *out = NULL;
    int fd = socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
    if (fd < 0)
        return mote__errno();
    int r = sock_new(out, fd);
    if (r < 0)
        close(fd);
    return r;
}

int mote_socket_adopt(mote_socket **out, int fd) {
    if (!out || fd < 0)
        return -EINVAL;
    *out = NULL;
    struct stat st;
    if (fstat(fd, &st) != 0)
        return mote__errno();
    if (!S_ISSOCK(st.st_mode))
        return -ENOTSOCK; /* a regular file cannot even be waited on */
    return mote__socket_wrap(out, fd);
}

int mote__socket_wrap(mote_socket **out, int fd) {
    *out = NULL;
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
        return mote__errno();
    return sock_new(out, fd);
}

bool mote__socket_multishot(const mote_socket *s) {
    return atomic_load(&((mote_socket *)s)->ur) != NULL;
}

int mote_socket_fd(const mote_socket *s) {
    return s ? s->fd : -EINVAL;
}

/* The active mode lets go of s; at shutdown its process never will. */
static void sock_drop(void *obj, bool shutdown) {
    mote_socket *s = obj;
    if (shutdown && !atomic_exchange(&s->closed, true))
        sock_unref(s); /* the handle the process owned */
    sock_unref(s);
}

int mote_socket_activate(mote_socket *s, mote_proc *p, mote_active_fn fn) {
    if (!p || !fn)
        return -EINVAL;
    int r = sock_enter(s); /* this reference is the active mode's */
    if (r < 0)
        return r;
    if (s->is_socket && !s->is_stream)
        r = -EINVAL;
    else if (atomic_load(&s->ur))
        r = -EBUSY; /* its multishot receive may hold data the active mode would skip */
    if (r == 0)
        r = mote__fd_activate(s->fd, p, fn, s, sock_drop);
    if (r < 0)
        sock_unref(s);
    return r;
}

/* Runtime shutdown: close and free s whatever calls it counts in flight
 * (their processes are gone with the runtime). */
void mote__socket_discard(mote_socket *s) {
    mote__uring_recv_release(atomic_load(&s->ur));
    close(s->fd);
    free(s);
}

int mote_socket_close(mote_socket *s) {
    if (!s)
        return -EINVAL;
    if (atomic_exchange(&s->closed, true))
        return -EBADF;
    mote__fd_abort(s->fd); /* waiters return -EBADF */
    /* And so do io_uring operations, which only run inside calls, each
     * holding a reference. With none but the handle's, no operation is in
     * flight, and a call that still enters sees `closed` once its
     * operation is queued (uring.c): no cancel (by descriptor, it walks
     * the ring's tables) is needed. */
    if (atomic_load(&s->refs) > 1)
        mote__uring_abort_fd(s->fd);
    /* A state destructor closing its socket at shutdown: a call in flight
     * belonged to a process whose stack is gone and will never drop its
     * reference, so the handle's is the last one. */
    if (mote__proc_reaping())
        atomic_store(&s->refs, 1);
    sock_unref(s);
    return 0;
}

/* ---- Waiting ---- */

/* After EAGAIN: wait for ev until the deadline. 0 to retry, or -errno. */
static int sock_wait(mote_socket *s, int ev, int64_t deadline) {
    if (deadline >= 0 && deadline <= mote__now())
        return -ETIMEDOUT;
    int r = mote__fd_wait_until(s->fd, ev, deadline, &s->closed);
    if (atomic_load(&s->closed))
        return -EBADF;
    return r < 0 ? r : 0;
}

/* A read or a write as an io_uring completion (uring.c), where the
 * runtime's poller is io_uring: its result, or -ENOTSUP when the call
 * takes the readiness path here (no io_uring; a zero timeout, which only
 * tries, unless a multishot receive's queue comes first; a pipe or terminal, which IORING_OP_RECV and _SEND refuse with
 * ENOTSOCK; a kernel that answered EAGAIN instead of waiting). */
static int64_t sock_uring(mote_socket *s, void *buf, size_t len, int64_t timeout, int64_t dl, bool out) {
    int64_t r;
    if (!s->is_socket)
        return -ENOTSUP;
    /* A stream whose third read comes is most likely a keep-alive
     * connection: its reads go through one multishot receive from then on
     * (a connection per request, read once and then to its end, keeps
     * one-shot reads: there the multishot's setup and cancel cost more
     * than they save, bench/RESULTS.md). Once it has one, every read
     * does, zero timeouts included, so that no byte overtakes the queue. */
    if (!out && s->is_stream && (s->rd_data >= 2 || atomic_load_explicit(&s->ur, memory_order_relaxed)))
        r = mote__uring_recv_ms(&s->ur, s->fd, buf, len, timeout == 0 ? MOTE__FD_NOW : dl, &s->closed);
    else if (timeout == 0)
        return -ENOTSUP;
    else if (out)
        r = mote__uring_send(s->fd, buf, len, dl, &s->closed);
    else if ((r = mote__uring_recv(s->fd, buf, len, dl, &s->closed)) > 0 && s->rd_data < 2)
        s->rd_data++;
    return r == -EAGAIN ? -ENOTSUP : r;
}

/* Run op until it does not say EAGAIN. op returns >= 0 or -errno. A
 * cancelled caller does no I/O at all (a loop on a socket that always has
 * data would otherwise never see its cancel). */
#define SOCK_IO(s, ev, deadline, call)                                                             \
    do {                                                                                           \
        if ((r = mote__cancel_check()) < 0)                                                        \
            break;                                                                                 \
        for (;;) {                                                                                 \
            if (atomic_load(&(s)->closed)) {                                                       \
                r = -EBADF;                                                                        \
                break;                                                                             \
            }                                                                                      \
            r = (call);                                                                            \
            if (r >= 0)                                                                            \
                break;                                                                             \
            r = mote__errno();                                                                     \
            if (r == -EINTR)                                                                       \
                continue;                                                                          \
            if (r != -EAGAIN && r != -EWOULDBLOCK)                                                 \
                break;                                                                             \
            if ((r = sock_wait((s), (ev), (deadline))) < 0)                                        \
                break;                                                                             \
        }                                                                                          \
    } while (0)

int64_t mote_socket_read(mote_socket *s, void *buf, size_t len, int64_t timeout) {
    if (!buf && len) /* checked before sock_enter takes a reference */
        return -EINVAL;
    int64_t r = sock_enter(s);
    if (r < 0)
        return r;
    int64_t dl = mote__deadline_lax(timeout);
    if ((r = sock_uring(s, buf, len, timeout, dl, false)) != -ENOTSUP) {
        sock_unref(s);
        return r;
    }
    /* After a short read the receive queue was empty, and every byte that
     * arrives since raises a new edge (kept as READY if nobody waits): so
     * wait first instead of paying for a read that says EAGAIN (tokio does
     * the same). Not when the read side is closed: an end of stream or an
     * error that arrived with the data raises no further edge. A zero
     * timeout always tries the read. (TCP urgent data also ends a read
     * early; like tokio, mote then waits for the next edge.) */
    if (s->rd_drained && timeout != 0 && !mote__fd_read_closed(s->fd)) {
        s->rd_drained = false;
        if ((r = sock_wait(s, MOTE_READABLE, dl)) < 0) {
            s->rd_drained = r == -ETIMEDOUT;
            sock_unref(s);
            return r;
        }
    }
    SOCK_IO(s, MOTE_READABLE, dl, read(s->fd, buf, len));
    s->rd_drained = s->is_stream && r > 0 && (size_t)r < len;
    sock_unref(s);
    return r;
}

static ssize_t do_write(mote_socket *s, const void *buf, size_t len) {
    /* MSG_NOSIGNAL: a closed peer is -EPIPE, never SIGPIPE. */
    return s->is_socket ? send(s->fd, buf, len, MSG_NOSIGNAL) : write(s->fd, buf, len);
}

int64_t mote_socket_write(mote_socket *s, const void *buf, size_t len, int64_t timeout) {
    if (!buf && len) /* checked before sock_enter takes a reference */
        return -EINVAL;
    int64_t r = sock_enter(s);
    if (r < 0)
        return r;
    int64_t dl = mote__deadline_lax(timeout);
    if ((r = sock_uring(s, (void *)(uintptr_t)buf, len, timeout, dl, true)) == -ENOTSUP)
        SOCK_IO(s, MOTE_WRITABLE, dl, do_write(s, buf, len));
    sock_unref(s);
    return r;
}

/* Move exactly len bytes in one direction, under one deadline. */
static int xfer_all(mote_socket *s, char *buf, size_t len, int64_t timeout, bool out) {
    if (!buf && len) /* checked before sock_enter takes a reference */
        return -EINVAL;
    int64_t r = sock_enter(s);
    if (r < 0)
        return (int)r;
    int64_t dl = mote__deadline_lax(timeout);
    size_t done = 0;
    while (done < len) {
        if ((r = sock_uring(s, buf + done, len - done, timeout, dl, out)) != -ENOTSUP)
            ; /* done as a completion */
        else if (out)
            SOCK_IO(s, MOTE_WRITABLE, dl, do_write(s, buf + done, len - done));
        else
            SOCK_IO(s, MOTE_READABLE, dl, read(s->fd, buf + done, len - done));
        if (r <= 0) {
            r = r == 0 && !out ? -ENODATA : r; /* a 0-byte write just retries */
            if (r < 0)
                break;
            continue;
        }
        done += (size_t)r;
    }
    sock_unref(s);
    return done == len ? 0 : (int)r;
}

int mote_socket_read_exact(mote_socket *s, void *buf, size_t len, int64_t timeout) {
    return xfer_all(s, buf, len, timeout, false);
}

int mote_socket_write_all(mote_socket *s, const void *buf, size_t len, int64_t timeout) {
    return xfer_all(s, (char *)(uintptr_t)buf, len, timeout, true); /* never written to */
}

int64_t mote_socket_send_to(mote_socket *s, const void *buf, size_t len, const mote_addr *to,
                            int64_t timeout) {
    if (to && !mote__addr_len_ok(to))
        return -EINVAL;
    if (!buf && len) /* checked before sock_enter takes a reference */
        return -EINVAL;
    int64_t r = sock_enter(s);
    if (r < 0)
        return r;
    int64_t dl = mote__deadline(timeout);
    SOCK_IO(s, MOTE_WRITABLE, dl,
            sendto(s->fd, buf, len, MSG_NOSIGNAL, to ? (const struct sockaddr *)to->storage : NULL,
                   to ? to->len : 0));
    sock_unref(s);
    return r;
}

int64_t mote_socket_recv_from(mote_socket *s, void *buf, size_t len, mote_addr *from, int64_t timeout) {
    if (!buf && len) /* checked before sock_enter takes a reference */
        return -EINVAL;
    int64_t r = sock_enter(s);
    if (r < 0)
        return r;
    int64_t dl = mote__deadline(timeout);
    struct sockaddr_storage ss;
    socklen_t sl = 0; /* a stream's data comes with no address */
    if (!atomic_load(&s->ur) || (r = sock_uring(s, buf, len, timeout, dl, false)) == -ENOTSUP)
        SOCK_IO(s, MOTE_READABLE, dl, (sl = sizeof ss, recvfrom(s->fd, buf, len, 0, (struct sockaddr *)&ss, &sl)));
    if (r >= 0 && from) {
        memset(from, 0, sizeof *from);
        memcpy(from->storage, &ss, sl);
        from->len = sl;
    }
    sock_unref(s);
    return r;
}

/* ---- Connections ---- */

int mote_socket_bind(mote_socket *s, const mote_addr *a) {
    if (!s || !a || !mote__addr_len_ok(a))
        return -EINVAL;
    return bind(s->fd, (const struct sockaddr *)a->storage, a->len) == 0 ? 0 : mote__errno();
}

int mote_socket_listen(mote_socket *s, int backlog) {
    if (!s || backlog < 0) /* listen(2) would take a negative one as 0 */
        return -EINVAL;
    return listen(s->fd, backlog) == 0 ? 0 : mote__errno();
}

int mote_socket_accept(mote_socket *s, mote_socket **out, mote_addr *peer, int64_t timeout) {
    if (!out)
        return -EINVAL;
    *out = NULL;
    int64_t r = sock_enter(s);
    if (r < 0)
        return (int)r;
    int64_t dl = mote__deadline(timeout);
    struct sockaddr_storage ss;
    ss.ss_family = AF_UNSPEC;
    socklen_t sl = sizeof ss;
    r = timeout != 0 ? mote__uring_accept(s->fd, &ss, &sl, dl, &s->closed) : -ENOTSUP;
    if (r == -ENOTSUP || r == -EAGAIN)
        SOCK_IO(s, MOTE_READABLE, dl,
                (sl = sizeof ss, accept4(s->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC)));
    if (r >= 0) {
        int fd = (int)r;
        r = sock_new(out, fd);
        if (r < 0) {
            close(fd);
        } else if (ss.ss_family == AF_INET || ss.ss_family == AF_INET6) {
            /* As connected ones (dial.c) and as Go does: small writes go
             * out at once instead of waiting for the peer's delayed ACK.
             * Not TCP (SCTP): the option is refused, which is harmless. */
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        }
        if (r >= 0 && peer) {
            memset(peer, 0, sizeof *peer);
            memcpy(peer->storage, &ss, sl);
            peer->len = sl;
        }
    }
    sock_unref(s);
    return (int)r;
}

int mote_socket_connect(mote_socket *s, const mote_addr *a, int64_t timeout) {
    if (!a || !mote__addr_len_ok(a))
        return -EINVAL;
    int64_t r = sock_enter(s);
    if (r < 0)
        return (int)r;
    if ((r = mote__cancel_check()) < 0) {
        sock_unref(s);
        return (int)r;
    }
    if (connect(s->fd, (const struct sockaddr *)a->storage, a->len) == 0) {
        sock_unref(s);
        return 0;
    }
    r = mote__errno();
    int64_t dl = mote__deadline(timeout), pause = MOTE_MSEC(1);
    while (r == -EAGAIN) {
        /* A Unix listener whose backlog is full: nothing is in progress
         * (the socket even polls writable), and no event says when there
         * is room, so try again after a growing pause until the deadline.
         * A close during the pause is seen when it ends (<= 50 ms). */
        int64_t left = dl < 0 ? pause : dl - mote__now();
        if (left <= 0) {
            r = -ETIMEDOUT;
            break;
        }
        if ((r = mote_sleep(left < pause ? left : pause)) < 0)
            break; /* cancelled */
        pause = pause * 2 < MOTE_MSEC(50) ? pause * 2 : MOTE_MSEC(50);
        if (atomic_load(&s->closed))
            r = -EBADF;
        else
            r = connect(s->fd, (const struct sockaddr *)a->storage, a->len) == 0 ? 0 : mote__errno();
    }
    if (r == -EINPROGRESS) {
        /* Wait for the handshake, then ask the socket how it went. */
        r = sock_wait(s, MOTE_WRITABLE, dl);
        if (r == 0) {
            int err = 0;
            socklen_t el = sizeof err;
            if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0)
                r = mote__errno();
            else
                r = -err;
        }
    }
    sock_unref(s);
    return (int)r;
}

int mote_socket_shutdown(mote_socket *s, int how) {
    if (!s)
        return -EINVAL;
    return shutdown(s->fd, how) == 0 ? 0 : mote__errno();
}

static int get_name(const mote_socket *s, mote_addr *out, bool peer) {
    if (!s || !out)
        return -EINVAL;
    memset(out, 0, sizeof *out);
    socklen_t sl = sizeof out->storage;
    int r = peer ? getpeername(s->fd, (struct sockaddr *)out->storage, &sl)
                 : getsockname(s->fd, (struct sockaddr *)out->storage, &sl);
    if (r != 0)
        return mote__errno();
    out->len = sl;
    return 0;
}

int mote_socket_local_addr(const mote_socket *s, mote_addr *out) {
    return get_name(s, out, false);
}

int mote_socket_peer_addr(const mote_socket *s, mote_addr *out) {
    return get_name(s, out, true);
}

int mote_socket_set_option(mote_socket *s, int level, int name, int value) {
    if (!s)
        return -EINVAL;
    return setsockopt(s->fd, level, name, &value, sizeof value) == 0 ? 0 : mote__errno();
}
