/*
 * graceful.h -- a graceful stop for the example servers, on mote's signal
 * API: on SIGINT or SIGTERM the server stops accepting, lets the open
 * connections finish for up to 5 s (a second signal cuts that short),
 * then shuts down the ones left (their handlers see end of stream and
 * close as usual), removes its Unix socket file and exits 0.
 *
 * One server per program: the state is a static struct. A stopper process
 * receives the signals as messages (mote_signal_watch, registered before
 * the server prints "listening on", so a signal right after that line is
 * already caught). The server's own loop is the only one to touch its
 * listening socket (closing it from another process could free the handle
 * between two of the loop's calls), so the stopper wakes the loop up by
 * knocking: it connects to the listening address (a datagram for UDP),
 * again every 100 ms until the loop has seen graceful_stopping().
 *
 * Open connections are tracked by descriptor so they can be shut down at
 * the end of the grace period. A handler must close its connection with
 * graceful_conn_close (or _fd), which removes it from the list under the
 * same lock the shutdown takes: the shutdown never touches a connection
 * that is closed or being closed.
 */
#ifndef MOTE_EXAMPLES_GRACEFUL_H
#define MOTE_EXAMPLES_GRACEFUL_H

#include <errno.h>
#include <mote.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "serve.h"

#define GRACE_PERIOD MOTE_SEC(5)

static struct graceful {
    const char *name;
    mote_proc *stopper;
    mote_addr knock_at; /* the listening address */
    int type;           /* SOCK_STREAM or SOCK_DGRAM */
    atomic_int signals; /* SIGINT / SIGTERM received so far */
    atomic_bool ended;  /* the server's loop has stopped */
    pthread_mutex_t lock; /* fds; held only for moments, never across a wait */
    int *fds;           /* open connections */
    size_t nfds, cap;
} G = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* Wake the server's loop: connect to it (or send it an empty datagram).
 * A plain non-blocking socket, never waited on: the knock starts the
 * connection and is done, so the stopper never sits suspended in it with
 * a socket allocated when the runtime shuts down. */
static inline void graceful_knock(void) {
    const struct sockaddr *sa = (const struct sockaddr *)G.knock_at.storage;
    int fd = socket(sa->sa_family, G.type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    if (G.type == SOCK_DGRAM)
        (void)!sendto(fd, "", 0, MSG_NOSIGNAL, sa, G.knock_at.len);
    else
        (void)!connect(fd, sa, G.knock_at.len);
    close(fd);
}

static inline void graceful_stopper(void *arg) {
    (void)arg;
    for (;;) {
        mote_msg *m;
        bool knocking = atomic_load(&G.signals) > 0 && !atomic_load(&G.ended);
        if (mote_receive(&m, knocking ? MOTE_MSEC(100) : MOTE_FOREVER) < 0) {
            if (knocking)
                graceful_knock();
            continue;
        }
        int signo = 0;
        if (mote_msg_kind(m) == MOTE_MSG_SIGNAL)
            signo = ((const mote_signal_msg *)mote_msg_data(m))->signo;
        mote_msg_free(m);
        if (signo && atomic_fetch_add(&G.signals, 1) == 0) {
            fprintf(stderr, "%s: %s: stopping\n", G.name, signo == SIGINT ? "SIGINT" : "SIGTERM");
            graceful_knock();
        }
    }
}

/* From now on SIGINT and SIGTERM stop the server listening on fd (a
 * socket of the given type): its loop must check graceful_stopping()
 * after every accept or receive. 0, or a negative errno. */
static inline int graceful_start(const char *name, int fd, int type) {
    G.name = name;
    G.type = type;
    socklen_t len = sizeof G.knock_at.storage;
    if (getsockname(fd, (struct sockaddr *)G.knock_at.storage, &len) != 0)
        return mote_errno();
    G.knock_at.len = len;
    int r = mote_spawn_fn(&G.stopper, graceful_stopper, NULL, 0);
    if (r == 0 && (r = mote_signal_watch(G.stopper, SIGINT)) == 0)
        r = mote_signal_watch(G.stopper, SIGTERM);
    return r;
}

static inline bool graceful_stopping(void) {
    return atomic_load(&G.signals) > 0;
}

/* Track a new connection's descriptor. 0 or -ENOMEM. */
static inline int graceful_conn_open(int fd) {
    pthread_mutex_lock(&G.lock);
    int r = 0;
    if (G.nfds == G.cap) {
        size_t cap = G.cap ? 2 * G.cap : 64;
        int *grown = realloc(G.fds, cap * sizeof *grown);
        if (grown) {
            G.fds = grown;
            G.cap = cap;
        }
    }
    if (G.nfds < G.cap)
        G.fds[G.nfds++] = fd;
    else
        r = -ENOMEM;
    pthread_mutex_unlock(&G.lock);
    return r;
}

/* Forget fd and close it with close_fn(obj), under the lock. */
static inline void graceful_forget(int fd, void (*close_fn)(void *), void *obj) {
    pthread_mutex_lock(&G.lock);
    for (size_t i = 0; i < G.nfds; i++)
        if (G.fds[i] == fd) {
            G.fds[i] = G.fds[--G.nfds];
            break;
        }
    close_fn(obj);
    pthread_mutex_unlock(&G.lock);
}

static inline void graceful_close_socket(void *s) {
    mote_socket_close(s);
}

static inline void graceful_close_fd(void *fdp) {
    mote_fd_close(*(int *)fdp);
}

/* End a tracked connection: a mote_socket, or a plain descriptor. */
static inline void graceful_conn_close(mote_socket *s) {
    graceful_forget(mote_socket_fd(s), graceful_close_socket, s);
}

static inline void graceful_conn_close_fd(int fd) {
    graceful_forget(fd, graceful_close_fd, &fd);
}

static inline size_t graceful_open_conns(void) {
    pthread_mutex_lock(&G.lock);
    size_t n = G.nfds;
    pthread_mutex_unlock(&G.lock);
    return n;
}

/* Wait until no connection is open, the deadline passes or (if
 * stop_on_signal) a second signal comes. */
static inline void graceful_drain(int64_t deadline, bool stop_on_signal) {
    while (graceful_open_conns() > 0 && mote_now() < deadline &&
           !(stop_on_signal && atomic_load(&G.signals) > 1))
        mote_sleep(MOTE_MSEC(10));
}

/*
 * After the server's loop ended: remove unix_path (NULL or "@name":
 * nothing to remove), wait for the open connections (up to 5 s, or until
 * a second signal), shut down the ones left and wait for their handlers
 * to close them, stop catching the signals. Returns 0, the exit status.
 */
static inline int graceful_finish(const char *unix_path) {
    atomic_store(&G.ended, true);
    if (unix_path && unix_path[0] != '@')
        unlink(unix_path);
    graceful_drain(mote_now() + GRACE_PERIOD, true);
    pthread_mutex_lock(&G.lock);
    if (G.nfds)
        fprintf(stderr, "%s: closing %zu connection(s) still open\n", G.name, G.nfds);
    for (size_t i = 0; i < G.nfds; i++)
        shutdown(G.fds[i], SHUT_RDWR); /* their readers see end of stream */
    pthread_mutex_unlock(&G.lock);
    graceful_drain(mote_now() + GRACE_PERIOD, false);
    mote_signal_unwatch(G.stopper, SIGINT);
    mote_signal_unwatch(G.stopper, SIGTERM);
    mote_proc_release(G.stopper);
    free(G.fds);
    G.fds = NULL;
    G.nfds = G.cap = 0;
    return 0;
}

/* ---- Servers on a mote_socket listener ---------------------------------- */

/*
 * Print "listening on ADDR" and run handler(&socket) in a new process per
 * connection until SIGINT or SIGTERM, then finish gracefully (see
 * graceful_finish; unix_path is the socket file to remove). The handler
 * ends its connection with graceful_conn_close. Returns the exit status.
 */
static inline int graceful_serve(const char *name, mote_socket *l, mote_proc_fn handler, const char *unix_path) {
    int r = graceful_start(name, mote_socket_fd(l), SOCK_STREAM);
    if (r < 0) {
        fprintf(stderr, "%s: signals: %s\n", name, mote_strerror(r));
        return 1;
    }
    print_listening(l);
    for (;;) {
        mote_socket *c;
        r = mote_socket_accept(l, &c, NULL, MOTE_FOREVER);
        if (graceful_stopping()) {
            if (r == 0)
                mote_socket_close(c); /* the stopper's knock, or a late client */
            mote_socket_close(l);
            return graceful_finish(unix_path);
        }
        if (r == 0) {
            if (graceful_conn_open(mote_socket_fd(c)) < 0)
                mote_socket_close(c);
            else if (mote_spawn_fn(NULL, handler, &c, sizeof c) < 0)
                graceful_conn_close(c);
        } else if (r == -EMFILE || r == -ENFILE) {
            mote_sleep(MOTE_MSEC(10));
        } else if (r != -ECONNABORTED) {
            fprintf(stderr, "%s: accept: %s\n", name, mote_strerror(r));
            return 1;
        }
    }
}

/* serve.h's echo_connection, ending with graceful_conn_close. */
static inline void graceful_echo_connection(void *arg) {
    mote_socket *c = *(mote_socket **)arg;
    echo_until_end(c);
    graceful_conn_close(c);
}

#endif
