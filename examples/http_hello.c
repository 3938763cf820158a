/*
 * http_hello.c -- answers every HTTP/1.x request with a fixed plaintext
 * body, on keep-alive connections, pipelined requests included. One
 * process per connection; parsing and framing are examples/common/http.c
 * (Debian's http-parser underneath).
 *
 *   http_hello [addr]   default 127.0.0.1:8080; prints "listening on ADDR"
 *
 * Every read waits at most 60 s (HTTP_HELLO_DEADLINE=off: forever, to
 * measure what the deadline costs).
 * Every response to the requests found in one read goes out in one write.
 * A malformed request gets 400, an oversized head 431, an oversized body
 * 413; those, and a request that ends the connection (HTTP/1.0 without
 * keep-alive, "Connection: close"), are answered and then the connection is
 * closed.
 */
#include <mote.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/http.h"
#include "common/serve.h"

static const char BODY[] = "Hello, World!";

static void hello(void *ctx, http_conn *c, const http_request *r) {
    (void)ctx;
    (void)r;
    http_conn_respond(c, 200, "text/plain", BODY, sizeof BODY - 1);
}

/* Close after a final response without losing it: closing a socket with
 * unread input resets the connection, and the reset can destroy the
 * response before the client reads it (a 413 sent while the body is still
 * arriving). So end our side, then read and drop what the client still
 * sends, for a bounded time and amount. */
static void lingering_close(mote_socket *c, char *buf, size_t cap) {
    mote_socket_shutdown(c, SHUT_WR);
    int64_t deadline = mote_now() + MOTE_SEC(2), left;
    size_t dropped = 0;
    while (dropped < ((size_t)1 << 20) && (left = deadline - mote_now()) > 0) {
        int64_t n = mote_socket_read(c, buf, cap, left);
        if (n <= 0)
            break;
        dropped += (size_t)n;
    }
    mote_socket_close(c);
}

static int64_t read_timeout = MOTE_SEC(60);

static void connection(void *arg) {
    mote_socket *s = *(mote_socket **)arg;
    http_conn conn;
    char buf[16384];
    http_conn_init(&conn, hello, NULL);
    for (;;) {
        int64_t n = mote_socket_read(s, buf, sizeof buf, read_timeout);
        if (n <= 0)
            break;
        /* Normally one pass: feeding stops early only when out[] is full
         * (a long pipeline) or the connection ends. */
        for (size_t off = 0; off < (size_t)n && !conn.closing;) {
            off += http_conn_feed(&conn, buf + off, (size_t)n - off);
            if (conn.out_len && mote_socket_write_all(s, conn.out, conn.out_len, MOTE_SEC(30)) < 0)
                goto out;
            conn.out_len = 0;
        }
        if (conn.closing) {
            lingering_close(s, buf, sizeof buf);
            return;
        }
    }
out:
    mote_socket_close(s);
}

static int serve(void *arg) {
    return serve_forever("http_hello", arg, 4096, connection);
}

int main(int argc, char **argv) {
    const char *dl = getenv("HTTP_HELLO_DEADLINE");
    if (dl && strcmp(dl, "off") == 0)
        read_timeout = MOTE_FOREVER;
    return mote_run(NULL, serve, argc > 1 ? argv[1] : "127.0.0.1:8080");
}
