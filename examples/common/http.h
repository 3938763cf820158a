/*
 * http.h -- the server side of HTTP/1.x on one connection, with no socket
 * in sight: bytes go in (http_conn_feed), complete requests go to a
 * handler, and the responses come out in one buffer the caller writes.
 * Parsing is Debian's http-parser (libhttp-parser-dev, link -lhttp_parser).
 * Being pure, it is what fuzz/fuzz-http.c drives.
 *
 * What it guarantees, whatever the bytes:
 *   - every complete request gets exactly one response, in order
 *     (keep-alive and pipelining; a chunked or Content-Length body is
 *     consumed and discarded, never taken for the next request);
 *   - a request that cannot be parsed gets 400, a head (request line and
 *     headers) over HTTP_HEAD_MAX gets 431, a URL over HTTP_URL_MAX gets
 *     414, a body over HTTP_BODY_MAX gets 413, each with
 *     "Connection: close", and nothing after it is read;
 *   - a request that ends the connection (HTTP/1.0 without keep-alive,
 *     "Connection: close", an Upgrade) is answered with
 *     "Connection: close" and ends it;
 *   - an HTTP/1.1 request with a body and "Expect: 100-continue" gets
 *     "100 Continue" as soon as its headers are accepted (a client then
 *     sends the body without waiting; a refused body gets 413 instead).
 * Memory is bounded: out[] has a fixed size, and feeding stops (returning
 * fewer bytes than given) when it has no room for another response; the
 * caller writes out[] and feeds the rest.
 */
#ifndef MOTE_EXAMPLES_HTTP_H
#define MOTE_EXAMPLES_HTTP_H

#include <http_parser.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    HTTP_HEAD_MAX = 16384,    /* request line + headers, bytes */
    HTTP_URL_MAX = 2048,      /* bytes */
    HTTP_BODY_MAX = 65536,    /* bytes, declared or chunked */
    HTTP_RESPONSE_MAX = 2048, /* the largest response a handler may give */
    HTTP_OUT_CAP = 16384,     /* responses buffered between two writes */
};

/* A complete request, as the handler sees it. url is NUL-terminated. */
typedef struct http_request {
    enum http_method method;
    const char *url;
    size_t url_len;
    unsigned short major, minor;
} http_request;

typedef struct http_conn http_conn;

/* Called once per complete request; must answer it with one
 * http_conn_respond (else the client gets 500). */
typedef void (*http_handler)(void *ctx, http_conn *c, const http_request *r);

struct http_conn {
    http_parser parser;
    http_handler handler;
    void *ctx;
    size_t head_len;  /* bytes of the current request's URL and headers */
    size_t body_len;  /* bytes of its body so far */
    int fail;         /* status to answer with when the parser stops: 413, 414, 431 */
    bool responded;   /* the handler answered the current request */
    /* "Expect: 100-continue": the header in pieces (http-parser may split
     * a name or a value across calls), matched when it is complete. */
    bool in_value, field_is_expect, expect_continue;
    uint8_t field_len, value_len;
    char field[8], value[16];
    bool closing;     /* the last response ends the connection: write out[], then close */
    size_t url_len;
    char url[HTTP_URL_MAX + 1];
    size_t out_len;   /* bytes waiting in out[] */
    char out[HTTP_OUT_CAP];
};

void http_conn_init(http_conn *c, http_handler handler, void *ctx);

/*
 * Parse up to n bytes of the request stream. Responses to the requests
 * completed so far are appended to c->out (c->out_len bytes): write them
 * and set out_len to 0. Returns the bytes consumed: fewer than n when
 * out[] is full (write it, then feed the rest) or when c->closing is set
 * (write out[], then close: the rest is not to be read).
 */
size_t http_conn_feed(http_conn *c, const char *data, size_t n);

/*
 * Answer the current request (from the handler): status line, Content-Type
 * (if type is not NULL), Content-Length, a Connection header when the
 * connection ends here or is an HTTP/1.0 keep-alive, then the body; no body
 * for a HEAD request. -ENOBUFS if it exceeds HTTP_RESPONSE_MAX, -EALREADY
 * if the request was already answered.
 */
int http_conn_respond(http_conn *c, int status, const char *type, const void *body, size_t len);

#endif
