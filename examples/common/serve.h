/*
 * serve.h -- the accept loop the network examples share: listen on addr,
 * print "listening on ADDR", and run handler(&socket) in a new process per
 * connection (the handler closes the socket). Out of descriptors, it backs
 * off and keeps serving instead of giving up.
 */
#ifndef MOTE_EXAMPLES_SERVE_H
#define MOTE_EXAMPLES_SERVE_H

#include <errno.h>
#include <mote.h>
#include <stdio.h>

/* Print "listening on ADDR" with s's bound address (port 0 and "@" names
 * resolved), flushed at once: tests wait for this line. */
static inline void print_listening(const mote_socket *s) {
    mote_addr a;
    char where[128] = "?";
    if (mote_socket_local_addr(s, &a) == 0)
        mote_addr_format(&a, where, sizeof where);
    printf("listening on %s\n", where);
    fflush(stdout);
}

/* The accept loop on a listening socket of any family. */
static inline int serve_listener(const char *name, mote_socket *l, mote_proc_fn handler) {
    print_listening(l);
    for (;;) {
        mote_socket *c;
        int r = mote_socket_accept(l, &c, NULL, MOTE_FOREVER);
        if (r == 0) {
            if (mote_spawn_fn(NULL, handler, &c, sizeof c) < 0)
                mote_socket_close(c);
        } else if (r == -EMFILE || r == -ENFILE) {
            mote_sleep(MOTE_MSEC(10));
        } else if (r != -ECONNABORTED) {
            fprintf(stderr, "%s: accept: %s\n", name, mote_strerror(r));
            return 1;
        }
    }
}

/* Listen on the TCP address addr and serve. */
static inline int serve_forever(const char *name, const char *addr, int backlog, mote_proc_fn handler) {
    mote_socket *l;
    int r = mote_tcp_listen(&l, addr, backlog, false);
    if (r < 0) {
        fprintf(stderr, "%s: listen %s: %s\n", name, addr, mote_strerror(r));
        return 1;
    }
    return serve_listener(name, l, handler);
}

/* Echo everything back until the peer ends its side (or an error). The
 * buffer is small on purpose: a process blocked in read keeps the stack
 * pages it touched, and 2 KiB plus the runtime's frames fit in one page
 * (see bench/README.md, idle_rss). */
static inline void echo_until_end(mote_socket *c) {
    char buf[2048];
    int64_t n;
    while ((n = mote_socket_read(c, buf, sizeof buf, MOTE_FOREVER)) > 0)
        if (mote_socket_write_all(c, buf, (size_t)n, MOTE_SEC(30)) < 0)
            break;
}

/* A connection handler that echoes, then closes. */
static inline void echo_connection(void *arg) {
    mote_socket *c = *(mote_socket **)arg;
    echo_until_end(c);
    mote_socket_close(c);
}

#endif
