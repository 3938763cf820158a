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

static int serve_forever(const char *name, const char *addr, int backlog, mote_proc_fn handler) {
    mote_socket *l;
    int r = mote_tcp_listen(&l, addr, backlog, false);
    if (r < 0) {
        fprintf(stderr, "%s: listen %s: %s\n", name, addr, mote_strerror(r));
        return 1;
    }
    mote_addr a;
    char where[128];
    mote_socket_local_addr(l, &a);
    mote_addr_format(&a, where, sizeof where);
    printf("listening on %s\n", where);
    fflush(stdout);
    for (;;) {
        mote_socket *c;
        r = mote_socket_accept(l, &c, NULL, MOTE_FOREVER);
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

#endif
