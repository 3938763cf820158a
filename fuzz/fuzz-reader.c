/*
 * fuzz-reader.c -- the buffered reader (mote_reader_read, _read_until,
 * _read_line) over a user stream.
 *
 * Input: 4 header bytes (delimiter, capacity, a seed), then the stream's
 * bytes. The stream hands them out in pseudo-random chunk sizes and now and
 * then fails a read with -EAGAIN. A pseudo-random mix of calls drains it,
 * and each result is compared with what mote.h says it must be, computed
 * from the input directly: so the returned pieces reassemble the input
 * exactly, -ENOBUFS comes exactly when no delimiter is within cap bytes,
 * and an error loses nothing.
 *
 * No runtime is started: the reader suspends only inside the stream's
 * read, and this stream never waits, so the calls behave as in a process.
 */
#include <errno.h>
#include <mote.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct src {
    const uint8_t *data;
    size_t len, pos;
    uint32_t rnd;
    unsigned errors; /* -EAGAIN still to inject, bounded so the run ends */
} src;

static uint32_t next(uint32_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static int64_t src_read(void *obj, void *buf, size_t len, int64_t timeout) {
    (void)timeout;
    src *s = obj;
    if (len == 0)
        abort(); /* mote.h: operations are only called with len > 0 */
    if (s->errors && next(&s->rnd) % 7 == 0) {
        s->errors--;
        return -EAGAIN;
    }
    size_t n = 1 + next(&s->rnd) % 64;
    if (n > len)
        n = len;
    if (n > s->len - s->pos)
        n = s->len - s->pos;
    memcpy(buf, s->data + s->pos, n);
    s->pos += n;
    return (int64_t)n;
}

static const mote_stream_vt src_vt = {src_read, NULL};

static void fail(const char *what, size_t pos, int64_t got, int64_t want) {
    fprintf(stderr, "fuzz-reader: %s at offset %zu: got %lld, want %lld\n", what, pos, (long long)got,
            (long long)want);
    abort();
}

/* What read_until(delim) must return at offset pos of data[0..len). */
static int64_t expect_until(const uint8_t *data, size_t len, size_t pos, int delim, size_t cap) {
    size_t rest = len - pos, window = rest < cap ? rest : cap;
    const uint8_t *p = memchr(data + pos, (unsigned char)delim, window);
    if (p)
        return p - (data + pos) + 1;
    if (rest >= cap)
        return -ENOBUFS;
    return (int64_t)rest; /* the last piece, or 0 at the end */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 4)
        return 0;
    int delim = data[0];
    size_t cap = 1 + data[1] % 96; /* small, so -ENOBUFS and compaction happen */
    uint32_t rnd = ((uint32_t)data[2] << 8 | data[3]) * 2654435761u + 1;
    const uint8_t *in = data + 4;
    size_t len = size - 4;
    src s = {in, len, 0, rnd ^ 0x9e3779b9u, 16};
    mote_reader *r = NULL;
    if (mote_reader_new(&r, (mote_stream){&src_vt, &s}, cap) != 0)
        abort();
    size_t pos = 0; /* bytes the reader has returned */
    for (unsigned step = 0; step < 100000; step++) {
        const char *out = NULL;
        int64_t got, want;
        unsigned op = next(&rnd) % 3;
        if (op == 0) { /* mote_reader_read */
            char buf[256];
            size_t n = 1 + next(&rnd) % (2 * cap < sizeof buf ? 2 * cap : sizeof buf);
            got = mote_reader_read(r, buf, n, -1);
            if (got == -EAGAIN)
                continue;
            if (got < 0 || (size_t)got > n || (got == 0 && pos != len) || (got > 0 && pos == len))
                fail("read", pos, got, (int64_t)(len - pos));
            if (memcmp(buf, in + pos, (size_t)got) != 0)
                fail("read: different bytes", pos, got, got);
            pos += (size_t)got;
            if (got == 0)
                break;
            continue;
        }
        int d = op == 1 ? delim : '\n';
        got = op == 1 ? mote_reader_read_until(r, d, &out, 0) : mote_reader_read_line(r, &out, 0);
        if (got == -EAGAIN)
            continue;
        want = expect_until(in, len, pos, d, cap);
        if (op == 2 && want == 0)
            want = -ENODATA;
        if (op == 2 && want > 0) { /* a line leaves out "\n" or "\r\n" */
            size_t end = pos + (size_t)want;
            int64_t line = want;
            if (in[end - 1] == '\n') {
                line--;
                if (line > 0 && in[end - 2] == '\r')
                    line--;
            }
            if (got != line)
                fail("read_line", pos, got, line);
            if (line > 0 && memcmp(out, in + pos, (size_t)line) != 0)
                fail("read_line: different bytes", pos, got, line);
            pos = end;
            continue;
        }
        if (got != want)
            fail(op == 1 ? "read_until" : "read_line", pos, got, want);
        if (got > 0) {
            if (memcmp(out, in + pos, (size_t)got) != 0)
                fail("read_until: different bytes", pos, got, want);
            pos += (size_t)got;
        } else if (out != NULL) {
            fail("out set without a result", pos, got, want);
        }
        if (got == -ENOBUFS) { /* the bytes stay buffered: take a few with read */
            char buf[8];
            int64_t n = mote_reader_read(r, buf, sizeof buf, 0);
            if (n <= 0 || memcmp(buf, in + pos, (size_t)n) != 0)
                fail("read after -ENOBUFS", pos, n, (int64_t)sizeof buf);
            pos += (size_t)n;
        }
        if (pos == len && (got == 0 || got == -ENODATA))
            break;
    }
    if (pos != len)
        fail("input not drained", pos, (int64_t)pos, (int64_t)len);
    mote_reader_free(r);
    return 0;
}
