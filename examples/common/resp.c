/*
 * resp.c -- see resp.h. The parser keeps no state between calls: a
 * command that is not complete yet is parsed again from its start when
 * more bytes come. That costs a rescan of the length lines only (a bulk's
 * bytes are skipped by its length), and leaves nothing to get out of step.
 */
#include "resp.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

int resp_to_int(const char *p, size_t len, int64_t *out) {
    bool neg = len > 0 && p[0] == '-';
    size_t i = neg;
    if (len == i || len - i > 19 || (p[i] == '0' && len - i > 1) || (neg && p[i] == '0'))
        return -1;
    uint64_t v = 0;
    for (; i < len; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(p[i] - '0'); /* 19 digits cannot wrap a uint64 */
    }
    if (v > (uint64_t)INT64_MAX + neg)
        return -1;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

/* The line at buf[pos..len) up to "\r\n": its length in *n. RESP_ERROR if
 * none comes within RESP_MAX_INLINE bytes or '\r' is not followed by '\n'. */
static int64_t line(const char *buf, size_t len, size_t pos, size_t *n, const char **err, const char *too_long) {
    size_t avail = len - pos, scan = avail < RESP_MAX_INLINE ? avail : RESP_MAX_INLINE;
    const char *cr = memchr(buf + pos, '\r', scan);
    if (!cr) {
        if (avail < RESP_MAX_INLINE)
            return RESP_INCOMPLETE;
        *err = too_long;
        return RESP_ERROR;
    }
    *n = (size_t)(cr - (buf + pos));
    if (pos + *n + 1 >= len)
        return RESP_INCOMPLETE;
    if (cr[1] != '\n') {
        *err = "expected '\\n' after '\\r'";
        return RESP_ERROR;
    }
    return 1;
}

/* "*N\r\n" then N times "$LEN\r\nBYTES\r\n". */
static int64_t parse_array(const char *buf, size_t len, resp_arg *argv, size_t cap, size_t *argc, const char **err) {
    size_t n, pos;
    int64_t count, r = line(buf, len, 1, &n, err, "too big mbulk count string");
    if (r <= 0)
        return r;
    if (resp_to_int(buf + 1, n, &count) < 0 || count > RESP_MAX_ARGS) {
        *err = "invalid multibulk length";
        return RESP_ERROR;
    }
    pos = 1 + n + 2;
    *argc = count > 0 ? (size_t)count : 0; /* Redis takes *0 and *-1 as no command */
    if (*argc > cap)
        return RESP_TOO_MANY;
    for (size_t i = 0; i < *argc; i++) {
        if (pos >= len)
            return RESP_INCOMPLETE;
        if (buf[pos] != '$') {
            *err = "expected '$'";
            return RESP_ERROR;
        }
        int64_t blen;
        r = line(buf, len, pos + 1, &n, err, "too big bulk count string");
        if (r <= 0)
            return r;
        if (resp_to_int(buf + pos + 1, n, &blen) < 0 || blen < 0 || blen > RESP_MAX_BULK) {
            *err = "invalid bulk length";
            return RESP_ERROR;
        }
        pos += 1 + n + 2;
        if (len - pos < (size_t)blen + 2)
            return RESP_INCOMPLETE;
        if (buf[pos + blen] != '\r' || buf[pos + blen + 1] != '\n') {
            *err = "expected CRLF after bulk";
            return RESP_ERROR;
        }
        argv[i] = (resp_arg){buf + pos, (size_t)blen};
        pos += (size_t)blen + 2;
    }
    return (int64_t)pos;
}

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r'; }

/* Words separated by blanks, up to '\n' (a '\r' before it is dropped). */
static int64_t parse_inline(const char *buf, size_t len, resp_arg *argv, size_t cap, size_t *argc, const char **err) {
    size_t scan = len < RESP_MAX_INLINE ? len : RESP_MAX_INLINE;
    const char *nl = memchr(buf, '\n', scan);
    if (!nl) {
        if (len < RESP_MAX_INLINE)
            return RESP_INCOMPLETE;
        *err = "too big inline request";
        return RESP_ERROR;
    }
    size_t end = (size_t)(nl - buf), n = 0;
    for (size_t i = 0; i < end;) {
        while (i < end && is_space(buf[i]))
            i++;
        if (i == end)
            break;
        size_t start = i;
        while (i < end && !is_space(buf[i]))
            i++;
        if (n < cap)
            argv[n] = (resp_arg){buf + start, i - start};
        n++;
    }
    *argc = n;
    return n > cap ? RESP_TOO_MANY : (int64_t)end + 1;
}

int64_t resp_parse(const char *buf, size_t len, resp_arg *argv, size_t cap, size_t *argc, const char **err) {
    *argc = 0;
    if (len == 0)
        return RESP_INCOMPLETE;
    return buf[0] == '*' ? parse_array(buf, len, argv, cap, argc, err) : parse_inline(buf, len, argv, cap, argc, err);
}

/* ---- Replies ------------------------------------------------------------ */

int resp_reserve(resp_buf *b, size_t more) {
    if (b->cap - b->len >= more)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < more)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p)
        return -ENOMEM;
    b->p = p;
    b->cap = cap;
    return 0;
}

int resp_put_raw(resp_buf *b, const void *data, size_t len) {
    if (resp_reserve(b, len) < 0)
        return -ENOMEM;
    if (len)
        memcpy(b->p + b->len, data, len);
    b->len += len;
    return 0;
}

/* prefix, then the text, then "\r\n". */
static int put_line(resp_buf *b, char prefix, const char *text, size_t len) {
    if (resp_reserve(b, len + 3) < 0)
        return -ENOMEM;
    b->p[b->len] = prefix;
    memcpy(b->p + b->len + 1, text, len);
    memcpy(b->p + b->len + 1 + len, "\r\n", 2);
    b->len += len + 3;
    return 0;
}

static int put_num(resp_buf *b, char prefix, int64_t v) {
    char digits[24];
    size_t n = 0;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do
        digits[sizeof digits - ++n] = (char)('0' + u % 10);
    while ((u /= 10) != 0);
    if (v < 0)
        digits[sizeof digits - ++n] = '-';
    return put_line(b, prefix, digits + sizeof digits - n, n);
}

int resp_put_simple(resp_buf *b, const char *text) { return put_line(b, '+', text, strlen(text)); }
int resp_put_error(resp_buf *b, const char *text) { return put_line(b, '-', text, strlen(text)); }
int resp_put_int(resp_buf *b, int64_t v) { return put_num(b, ':', v); }
int resp_put_null(resp_buf *b) { return resp_put_raw(b, "$-1\r\n", 5); }
int resp_put_array(resp_buf *b, size_t n) { return put_num(b, '*', (int64_t)n); }

int resp_put_bulk(resp_buf *b, const void *data, size_t len) {
    size_t mark = b->len;
    if (resp_reserve(b, len + 32) < 0 || put_num(b, '$', (int64_t)len) < 0)
        return -ENOMEM;
    if (resp_put_raw(b, data, len) < 0 || resp_put_raw(b, "\r\n", 2) < 0) {
        b->len = mark;
        return -ENOMEM;
    }
    return 0;
}
