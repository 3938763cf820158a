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
#include "net.h"
#include <strings.h>

#ifdef NET_HTTP_PARSER
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

static const char RESPONSE[] = "HTTP/1.1 200 OK\r\n"
                               "Content-Type: text/plain\r\n"
                               "Content-Length: 13\r\n"
                               "\r\n"
                               "Hello, World!";

/* The value of header `name` in the header block [p, end), or NULL. */
static const char *header(const char *p, const char *end, const char *name) {
    size_t len = strlen(name);
    while (p && (size_t)(end - p) > len) {
        if (strncasecmp(p, name, len) == 0 && p[len] == ':')
            return p + len + 1;
        p = memchr(p, '\n', (size_t)(end - p));
        p = p ? p + 1 : NULL;
    }
    return NULL;
}

static void handle(net_conn *c) {
    const size_t resp = sizeof RESPONSE - 1;
    size_t used = 0;
    while (c->out_len + resp <= NET_BUF && !c->close_after) {
        char *start = c->in + used, *in_end = c->in + c->in_len;
        char *end = memmem(start, (size_t)(in_end - start), "\r\n\r\n", 4);
        if (!end)
            break;
        end += 4;
        const char *length = header(start, end, "content-length");
        const char *connection = header(start, end, "connection");
        long body = length ? strtol(length, NULL, 10) : 0;
        if (body < 0 || in_end - end < body)
            break; /* the body is still on its way */
        c->close_after = connection && strncasecmp(connection + strspn(connection, " \t"), "close", 5) == 0;
        used = (size_t)(end + body - c->in);
        memcpy(c->out + c->out_len, RESPONSE, resp);
        c->out_len += resp;
    }
    memmove(c->in, c->in + used, c->in_len - used);
    c->in_len -= used;
}
#endif

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s HOST:PORT\n", argv[0]);
        return 2;
    }
    net_serve(argv[1], handle);
}
