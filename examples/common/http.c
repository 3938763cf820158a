/*
 * http.c -- see http.h. http-parser does the parsing and the framing
 * (Content-Length, chunked bodies, keep-alive rules); this file adds the
 * limits, the request/response pairing and the bounded output buffer.
 *
 * Flow control: on_message_complete pauses the parser when out[] has less
 * than HTTP_RESPONSE_MAX bytes free, or when the response ends the
 * connection, so http_parser_execute returns at the end of that request and
 * the caller can write out[] before feeding the rest. Hence, whenever a
 * response is added (a "100 Continue", then a handler's or an error),
 * out[] has room for it.
 */
#include "http.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <strings.h>

static http_conn *conn_of(http_parser *p) { return p->data; }

static int on_message_begin(http_parser *p) {
    http_conn *c = conn_of(p);
    c->head_len = c->body_len = c->url_len = 0;
    c->responded = c->in_value = c->expect_continue = false;
    c->field_len = c->value_len = 0;
    return 0;
}

/* Counts request-line and header bytes; over the limit, the parser stops
 * and the request gets 431. (http-parser's own limit, 80 KiB of anything
 * before the body, catches what these callbacks do not see.) */
static int count_head(http_conn *c, size_t len) {
    c->head_len += len;
    if (c->head_len <= HTTP_HEAD_MAX)
        return 0;
    c->fail = 431;
    return -1;
}

static int on_url(http_parser *p, const char *at, size_t len) {
    http_conn *c = conn_of(p);
    if (c->url_len + len > HTTP_URL_MAX) {
        c->fail = 414;
        return -1;
    }
    memcpy(c->url + c->url_len, at, len);
    c->url_len += len;
    return count_head(c, len);
}

/* Append a piece to a small buffer; a text longer than it gets a length
 * past cap, which matches nothing. */
static void collect(char *buf, uint8_t *len, size_t cap, const char *at, size_t n) {
    for (size_t i = 0; i < n && *len <= cap; i++, (*len)++)
        if (*len < cap)
            buf[*len] = at[i];
}

static bool same_text(const char *a, size_t alen, const char *b) {
    return alen == strlen(b) && strncasecmp(a, b, alen) == 0;
}

/* The header whose value just ended. */
static void header_done(http_conn *c) {
    if (c->in_value && c->field_is_expect && same_text(c->value, c->value_len, "100-continue"))
        c->expect_continue = true;
    c->in_value = false;
    c->field_len = c->value_len = 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len) {
    http_conn *c = conn_of(p);
    if (c->in_value)
        header_done(c);
    collect(c->field, &c->field_len, sizeof c->field, at, len);
    return count_head(c, len);
}

static int on_header_value(http_parser *p, const char *at, size_t len) {
    http_conn *c = conn_of(p);
    if (!c->in_value) {
        c->field_is_expect = same_text(c->field, c->field_len, "expect");
        c->in_value = true;
    }
    if (c->field_is_expect) /* the one value looked at */
        collect(c->value, &c->value_len, sizeof c->value, at, len);
    return count_head(c, len);
}

static const char CONTINUE[] = "HTTP/1.1 100 Continue\r\n\r\n";

/* A declared body over the limit is refused before any of it is read; an
 * accepted one that the client holds back until told is asked for. */
static int on_headers_complete(http_parser *p) {
    http_conn *c = conn_of(p);
    if (p->content_length != ULLONG_MAX && p->content_length > HTTP_BODY_MAX) {
        c->fail = 413;
        return -1;
    }
    header_done(c);
    bool body = (p->flags & F_CHUNKED) || (p->content_length != ULLONG_MAX && p->content_length > 0);
    if (c->expect_continue && body && p->http_major == 1 && p->http_minor >= 1) {
        memcpy(c->out + c->out_len, CONTINUE, sizeof CONTINUE - 1); /* room: see on_message_complete */
        c->out_len += sizeof CONTINUE - 1;
    }
    return 0;
}

/* Bodies are discarded; a chunked one is limited as it arrives. */
static int on_body(http_parser *p, const char *at, size_t len) {
    (void)at;
    http_conn *c = conn_of(p);
    c->body_len += len;
    if (c->body_len <= HTTP_BODY_MAX)
        return 0;
    c->fail = 413;
    return -1;
}

static int on_message_complete(http_parser *p) {
    http_conn *c = conn_of(p);
    c->url[c->url_len] = '\0';
    http_request r = {(enum http_method)p->method, c->url, c->url_len, p->http_major, p->http_minor};
    c->handler(c->ctx, c, &r);
    if (!c->responded)
        http_conn_respond(c, 500, "text/plain", "Internal Server Error\n", 22);
    if (c->closing || HTTP_OUT_CAP - c->out_len < HTTP_RESPONSE_MAX + sizeof CONTINUE)
        http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings SETTINGS = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

void http_conn_init(http_conn *c, http_handler handler, void *ctx) {
    memset(c, 0, offsetof(http_conn, url)); /* not the two buffers */
    c->url[0] = '\0';
    c->out_len = 0;
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    c->handler = handler;
    c->ctx = ctx;
}

static char *put(char *o, const char *s, size_t n) {
    memcpy(o, s, n);
    return o + n;
}

static char *put_str(char *o, const char *s) { return put(o, s, strlen(s)); }

static char *put_num(char *o, size_t v) {
    char digits[24];
    size_t n = 0;
    do
        digits[sizeof digits - ++n] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    return put(o, digits + sizeof digits - n, n);
}

/* A response with "Connection: close" ends the connection whatever the
 * request said; an error response (fail != 0) always does. */
static int respond(http_conn *c, int status, const char *type, const void *body, size_t len, bool close) {
    const char *reason = http_status_str((enum http_status)status);
    size_t need = 96 + strlen(reason) + (type ? strlen(type) : 0) + len;
    if (need > HTTP_RESPONSE_MAX || need > HTTP_OUT_CAP - c->out_len)
        return -ENOBUFS;
    bool keep10 = !close && c->parser.http_major == 1 && c->parser.http_minor == 0;
    char *o = c->out + c->out_len;
    o = put(o, "HTTP/1.1 ", 9);
    o = put_num(o, (size_t)status);
    *o++ = ' ';
    o = put_str(o, reason);
    o = put(o, "\r\n", 2);
    if (type) {
        o = put(o, "Content-Type: ", 14);
        o = put_str(o, type);
        o = put(o, "\r\n", 2);
    }
    o = put(o, "Content-Length: ", 16);
    o = put_num(o, len);
    o = put(o, "\r\n", 2);
    if (close)
        o = put(o, "Connection: close\r\n", 19);
    else if (keep10)
        o = put(o, "Connection: keep-alive\r\n", 24);
    o = put(o, "\r\n", 2);
    if (c->parser.method != HTTP_HEAD || c->fail)
        o = put(o, body, len);
    c->out_len = (size_t)(o - c->out);
    c->responded = true;
    c->closing |= close;
    return 0;
}

int http_conn_respond(http_conn *c, int status, const char *type, const void *body, size_t len) {
    if (c->responded)
        return -EALREADY;
    bool close = !http_should_keep_alive(&c->parser) || c->parser.upgrade;
    return respond(c, status, type, body, len, close);
}

/* The parser stopped on bad input or a limit: answer, and end. */
static void fail(http_conn *c, enum http_errno e) {
    int status = c->fail ? c->fail : e == HPE_HEADER_OVERFLOW ? 431 : 400;
    c->fail = status;
    char body[64];
    const char *reason = http_status_str((enum http_status)status);
    size_t len = strlen(reason);
    memcpy(body, reason, len);
    body[len++] = '\n';
    c->responded = false;
    respond(c, status, "text/plain", body, len, true);
    c->closing = true; /* even if there was no room: then the client gets nothing more */
}

size_t http_conn_feed(http_conn *c, const char *data, size_t n) {
    if (c->closing || n == 0) /* 0 bytes would tell http-parser the stream ended */
        return 0;
    size_t used = http_parser_execute(&c->parser, &SETTINGS, data, n);
    enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
    if (e == HPE_PAUSED)
        http_parser_pause(&c->parser, 0);
    else if (e != HPE_OK)
        fail(c, e);
    return used;
}
