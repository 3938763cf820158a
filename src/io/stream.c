/*
 * stream.c -- the stream interface (a vtable and an object, passed by
 * value), its socket implementation, whole-buffer helpers, and the
 * buffered reader and writer built on any stream.
 *
 * Deadlines: every call that may call the stream more than once computes
 * one deadline up front and passes each operation the time that is left
 * (0 once it has passed: the operation then does not wait, so data that is
 * already there is still taken, and a wait turns into -ETIMEDOUT).
 *
 * Reader: one buffer of cap bytes holding the bytes [start, end). Bytes are
 * appended at end; when end reaches cap and start > 0, the unread bytes are
 * moved to the front. read_until remembers how far it has scanned, so each
 * byte is looked at once per call however it arrives.
 *
 * Writer: one buffer of cap bytes; [start, end) are waiting. A flush writes
 * from start and advances it, so a partial write moves nothing; only when
 * a flush fails are the unwritten bytes moved to the front, kept for the
 * next flush.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/internal.h"

#define STREAM_DEFAULT_CAP 8192

/* ---- Deadlines ---- */

static int64_t deadline_of(int64_t timeout) {
    if (timeout < 0)
        return -1;
    int64_t now = mote__now();
    return timeout > INT64_MAX - now ? -1 : now + timeout;
}

/* Time left until deadline for the next operation: -1 forever, else >= 0. */
static int64_t time_left(int64_t deadline) {
    if (deadline < 0)
        return -1;
    int64_t left = deadline - mote__now();
    return left > 0 ? left : 0;
}

/* ---- The interface ---- */

int64_t mote_stream_read(mote_stream s, void *buf, size_t len, int64_t timeout) {
    if (!s.vt || !s.vt->read)
        return -EBADF;
    if (!buf && len)
        return -EINVAL;
    if (len == 0)
        return 0;
    int c = mote__cancel_check(); /* every stream, a user's type too */
    if (c < 0)
        return c;
    if (len > INT64_MAX)
        len = INT64_MAX;
    int64_t r = s.vt->read(s.obj, buf, len, timeout);
    return r > (int64_t)len ? -EIO : r; /* a broken implementation */
}

int64_t mote_stream_write(mote_stream s, const void *buf, size_t len, int64_t timeout) {
    if (!s.vt || !s.vt->write)
        return -EBADF;
    if (!buf && len)
        return -EINVAL;
    if (len == 0)
        return 0;
    int c = mote__cancel_check();
    if (c < 0)
        return c;
    if (len > INT64_MAX)
        len = INT64_MAX;
    int64_t r = s.vt->write(s.obj, buf, len, timeout);
    /* 0 bytes for a non-empty write breaks the contract (>= 1 or -errno)
     * and would make every write-all loop spin. */
    return r == 0 || r > (int64_t)len ? -EIO : r;
}

/* Move exactly len bytes in one direction before deadline. */
static int xfer_all(mote_stream s, char *buf, size_t len, int64_t deadline, bool out) {
    size_t done = 0;
    while (done < len) {
        int64_t r = out ? mote_stream_write(s, buf + done, len - done, time_left(deadline))
                        : mote_stream_read(s, buf + done, len - done, time_left(deadline));
        if (r <= 0)
            return r < 0 ? (int)r : -ENODATA; /* writes never return 0 here */
        done += (size_t)r;
    }
    return 0;
}

int mote_stream_read_exact(mote_stream s, void *buf, size_t len, int64_t timeout) {
    if (!s.vt || !s.vt->read)
        return -EBADF;
    if (!buf && len)
        return -EINVAL;
    return xfer_all(s, buf, len, deadline_of(timeout), false);
}

int mote_stream_write_all(mote_stream s, const void *buf, size_t len, int64_t timeout) {
    if (!s.vt || !s.vt->write)
        return -EBADF;
    if (!buf && len)
        return -EINVAL;
    return xfer_all(s, (char *)(uintptr_t)buf, len, deadline_of(timeout), true); /* never written to */
}

/* ---- Sockets ---- */

static int64_t socket_stream_read(void *obj, void *buf, size_t len, int64_t timeout) {
    return mote_socket_read(obj, buf, len, timeout);
}

static int64_t socket_stream_write(void *obj, const void *buf, size_t len, int64_t timeout) {
    return mote_socket_write(obj, buf, len, timeout);
}

static const mote_stream_vt socket_stream_vt = {socket_stream_read, socket_stream_write};

mote_stream mote_socket_stream(mote_socket *s) {
    mote_stream st = {NULL, NULL};
    if (s) {
        st.vt = &socket_stream_vt;
        st.obj = s;
    }
    return st;
}

/* ---- Buffers shared by the reader and the writer ---- */

typedef struct sbuf {
    mote_stream s;
    size_t cap;
    size_t start, end; /* the reader's unread or the writer's waiting bytes */
    char *buf;         /* cap + 1 bytes behind the struct: the writer's last
                          one is room for vsnprintf's terminator */
} sbuf;

struct mote_reader {
    sbuf b;
};

struct mote_writer {
    sbuf b;
};

/* A buffer for a stream that has the operation it needs (has_op), in one
 * allocation: sz bytes of the reader or writer, then cap + 1. */
static int sbuf_new(sbuf **out, size_t sz, mote_stream s, size_t cap, bool has_op) {
    *out = NULL;
    if (!has_op)
        return -EBADF;
    if (cap == 0)
        cap = STREAM_DEFAULT_CAP;
    if (cap >= (size_t)INT_MAX) /* counts are int64_t and printf's are int */
        return -ENOMEM;
    sbuf *b = malloc(sz + cap + 1);
    if (!b)
        return -ENOMEM;
    b->s = s;
    b->cap = cap;
    b->start = b->end = 0;
    b->buf = (char *)b + sz;
    *out = b;
    return 0;
}

/* ---- Buffered reader ---- */

int mote_reader_new(mote_reader **out, mote_stream s, size_t cap) {
    sbuf *b = NULL;
    int r = out ? sbuf_new(&b, sizeof **out, s, cap, s.vt && s.vt->read) : -EINVAL;
    if (out)
        *out = b ? mote__container_of(b, mote_reader, b) : NULL;
    return r;
}

void mote_reader_free(mote_reader *r) {
    free(r);
}

/* Take n buffered bytes; an emptied buffer starts again at offset 0. */
static void reader_consume(sbuf *r, size_t n) {
    r->start += n;
    if (r->start == r->end)
        r->start = r->end = 0;
}

int64_t mote_reader_read(mote_reader *rd, void *buf, size_t len, int64_t timeout) {
    if (!rd || (!buf && len))
        return -EINVAL;
    sbuf *r = &rd->b;
    if (len == 0)
        return 0;
    int c = mote__cancel_check(); /* buffered bytes too: see mote.h */
    if (c < 0)
        return c;
    if (r->start == r->end) {
        /* Nothing buffered: a big read goes straight to the caller. */
        if (len >= r->cap)
            return mote_stream_read(r->s, buf, len, timeout);
        int64_t n = mote_stream_read(r->s, r->buf, r->cap, timeout);
        if (n <= 0)
            return n;
        r->start = 0;
        r->end = (size_t)n;
    }
    size_t n = r->end - r->start;
    if (n > len)
        n = len;
    memcpy(buf, r->buf + r->start, n);
    reader_consume(r, n);
    return (int64_t)n;
}

int64_t mote_reader_read_until(mote_reader *rd, int delim, const char **out, int64_t timeout) {
    if (!rd || !out)
        return -EINVAL;
    sbuf *r = &rd->b;
    *out = NULL;
    int c = mote__cancel_check();
    if (c < 0)
        return c;
    int64_t deadline = deadline_of(timeout);
    size_t scanned = 0; /* bytes after start known to hold no delimiter */
    for (;;) {
        size_t avail = r->end - r->start;
        const char *p = memchr(r->buf + r->start + scanned, (unsigned char)delim, avail - scanned);
        if (p) {
            size_t n = (size_t)(p - (r->buf + r->start)) + 1;
            *out = r->buf + r->start;
            reader_consume(r, n); /* the bytes stay in place until the next call */
            return (int64_t)n;
        }
        scanned = avail;
        if (avail == r->cap)
            return -ENOBUFS;
        if (r->end == r->cap) { /* no room behind: move the unread bytes to the front */
            memmove(r->buf, r->buf + r->start, avail);
            r->start = 0;
            r->end = avail;
        }
        int64_t n = mote_stream_read(r->s, r->buf + r->end, r->cap - r->end, time_left(deadline));
        if (n < 0)
            return n; /* what was read stays buffered */
        if (n == 0) { /* end of stream: the last piece as it is, then 0 */
            if (avail == 0)
                return 0;
            *out = r->buf + r->start;
            reader_consume(r, avail);
            return (int64_t)avail;
        }
        r->end += (size_t)n;
    }
}

int64_t mote_reader_read_line(mote_reader *r, const char **out, int64_t timeout) {
    int64_t n = mote_reader_read_until(r, '\n', out, timeout);
    if (n == 0)
        return -ENODATA;
    if (n < 0)
        return n;
    /* The line's bytes are consumed, so the reader may write behind them:
     * over the "\n" or "\r\n", or, for a last line without one, into the
     * byte past the data (the buffer has cap + 1 bytes for that). */
    char *line = (char *)*out;
    if (line[n - 1] == '\n') {
        n--;
        if (n > 0 && line[n - 1] == '\r')
            n--;
    }
    line[n] = '\0';
    return n;
}

/* ---- Buffered writer ---- */

int mote_writer_new(mote_writer **out, mote_stream s, size_t cap) {
    sbuf *b = NULL;
    int r = out ? sbuf_new(&b, sizeof **out, s, cap, s.vt && s.vt->write) : -EINVAL;
    if (out)
        *out = b ? mote__container_of(b, mote_writer, b) : NULL;
    return r;
}

void mote_writer_free(mote_writer *w) {
    free(w);
}

size_t mote_writer_buffered(const mote_writer *w) {
    return w ? w->b.end - w->b.start : 0;
}

/* Write out the buffer before deadline. On error the unwritten bytes are
 * moved to the front and kept. */
static int writer_flush_until(sbuf *w, int64_t deadline) {
    while (w->start < w->end) {
        int64_t n = mote_stream_write(w->s, w->buf + w->start, w->end - w->start, time_left(deadline));
        if (n < 0) {
            memmove(w->buf, w->buf + w->start, w->end - w->start);
            w->end -= w->start;
            w->start = 0;
            return (int)n;
        }
        w->start += (size_t)n;
    }
    w->start = w->end = 0;
    return 0;
}

int mote_writer_flush(mote_writer *w, int64_t timeout) {
    if (!w)
        return -EINVAL;
    int c = mote__cancel_check();
    if (c < 0)
        return c;
    return writer_flush_until(&w->b, deadline_of(timeout));
}

/* Buffer or write len bytes, under one deadline: see mote.h. */
static int writer_put(sbuf *w, const char *buf, size_t len, int64_t deadline) {
    if (len <= w->cap - w->end) {
        memcpy(w->buf + w->end, buf, len);
        w->end += len;
        return 0;
    }
    int r = writer_flush_until(w, deadline);
    if (r < 0)
        return r; /* nothing of buf taken */
    if (len >= w->cap) /* straight through */
        return xfer_all(w->s, (char *)(uintptr_t)buf, len, deadline, true);
    memcpy(w->buf, buf, len);
    w->end = len;
    return 0;
}

int mote_writer_write(mote_writer *w, const void *buf, size_t len, int64_t timeout) {
    if (!w || (!buf && len))
        return -EINVAL;
    if (len == 0)
        return 0;
    int c = mote__cancel_check();
    if (c < 0)
        return c;
    return writer_put(&w->b, buf, len, deadline_of(timeout));
}

int mote_writer_printf(mote_writer *wr, int64_t timeout, const char *fmt, ...) {
    if (!wr || !fmt)
        return -EINVAL;
    int c = mote__cancel_check();
    if (c < 0)
        return c;
    sbuf *w = &wr->b;
    int64_t deadline = deadline_of(timeout);
    /* The buffer has one byte beyond cap, so free + 1 bytes of room. */
    size_t room = w->cap - w->end + 1;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(w->buf + w->end, room, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -EINVAL; /* an encoding error */
    if ((size_t)n < room) {
        w->end += (size_t)n;
        return n;
    }
    if ((size_t)n <= w->cap) {
        /* It fits once the buffer is written out: format again there. */
        int r = writer_flush_until(w, deadline);
        if (r < 0)
            return r;
        va_start(ap, fmt);
        vsnprintf(w->buf, w->cap + 1, fmt, ap);
        va_end(ap);
        w->end = (size_t)n;
        return n;
    }
    char *tmp = malloc((size_t)n + 1);
    if (!tmp)
        return -ENOMEM;
    va_start(ap, fmt);
    vsnprintf(tmp, (size_t)n + 1, fmt, ap);
    va_end(ap);
    int r = writer_put(w, tmp, (size_t)n, deadline);
    free(tmp);
    return r < 0 ? r : n;
}
