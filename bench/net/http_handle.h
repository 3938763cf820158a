/*
 * http_handle.h -- the request handling of the plain-C HTTP peers
 * (epoll_http.c, uring_http.c): the same bytes http_hello sends, for every
 * complete request in the buffer, found with memmem and a header scan.
 * Keep-alive and pipelining; "Connection: close" ends the connection once
 * answered; request bodies (Content-Length) are skipped.
 */
#ifndef MOTE_BENCH_HTTP_HANDLE_H
#define MOTE_BENCH_HTTP_HANDLE_H

#include "net.h"
#include <strings.h>

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
