/*
 * epoll_http.c -- the plain-C baseline for examples/http_hello.c: one
 * thread, one epoll set, non-blocking sockets. Keep-alive and pipelining:
 * every complete request in the buffer is answered, in one write, with the
 * same bytes http_hello sends; a "Connection: close" request ends the
 * connection once answered. Request bodies (Content-Length) are skipped.
 *
 * Built twice. net_epoll_http finds requests with memmem("\r\n\r\n") and a
 * hand header scan: the fastest a loop can be. net_epoll_http_hp (with
 * NET_HTTP_PARSER) parses with examples/common/http.c, the very parser glue
 * http_hello uses (Debian's http-parser, same callbacks, keep-alive by
 * http_should_keep_alive, chunked bodies too), so that mote's server and
 * this loop differ only in the network path.
 *
 *   net_epoll_http HOST:PORT
 */
#ifdef NET_HTTP_PARSER
#include "net.h"
#include "http.h"

static void hello(void *ctx, http_conn *h, const http_request *r) {
    (void)ctx;
    (void)r;
    http_conn_respond(h, 200, "text/plain", "Hello, World!", 13);
}

/* net_drive calls this with c->out empty; http_conn_feed stops when its
 * out[] (the size of c->out) is nearly full, and net_drive calls again
 * once c->out is written. */
static void handle(net_conn *c) {
    http_conn *h = c->data;
    if (!h) {
        h = c->data = malloc(sizeof *h);
        if (!h) {
            c->close_after = true;
            return;
        }
        http_conn_init(h, hello, NULL);
    }
    size_t used = http_conn_feed(h, c->in, c->in_len);
    memcpy(c->out, h->out, h->out_len);
    c->out_len = h->out_len;
    h->out_len = 0;
    c->close_after = h->closing;
    memmove(c->in, c->in + used, c->in_len - used);
    c->in_len -= used;
}
#else
#include "http_handle.h" /* memmem and a header scan, shared with uring_http.c */
#endif

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s HOST:PORT\n", argv[0]);
        return 2;
    }
    net_serve(argv[1], handle);
}
