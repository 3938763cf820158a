/*
 * test-stream.c -- the stream interface with a user-defined in-memory type
 * (whole, 1-byte pieces, failing mid-way), mote_stream_read_exact /
 * write_all, the buffered reader (lines, custom delimiters, over-long
 * lines, straight-through reads, errors) and writer (batching, printf,
 * big writes, flush errors), and both over a real socket pair with
 * timeouts.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "helpers.h"

/* ---- An in-memory stream: a user type behind the vtable ------------------- */

enum { MEM_OUT = 1 << 16 };

typedef struct mem {
    const char *in; /* what reads return */
    size_t in_len, in_pos;
    size_t piece;      /* most bytes one read or write moves; 0: no limit */
    size_t fail_after; /* with fail_err: bytes moved before every call fails */
    int fail_err;
    char out[MEM_OUT]; /* what writes took */
    size_t out_len;
    int reads, writes;   /* calls that moved data or failed */
    size_t last_read_len; /* len asked of the last read */
    size_t max_write;     /* largest single write taken */
} mem;

static size_t mem_limit(const mem *m, size_t len, size_t moved) {
    if (m->piece && len > m->piece)
        len = m->piece;
    if (m->fail_err && len > m->fail_after - moved)
        len = m->fail_after - moved;
    return len;
}

static int64_t mem_read(void *obj, void *buf, size_t len, int64_t timeout) {
    (void)timeout;
    mem *m = obj;
    m->reads++;
    m->last_read_len = len;
    if (m->fail_err && m->in_pos >= m->fail_after)
        return m->fail_err;
    size_t n = mem_limit(m, len, m->in_pos);
    if (n > m->in_len - m->in_pos)
        n = m->in_len - m->in_pos;
    memcpy(buf, m->in + m->in_pos, n);
    m->in_pos += n;
    return (int64_t)n;
}

static int64_t mem_write(void *obj, const void *buf, size_t len, int64_t timeout) {
    (void)timeout;
    mem *m = obj;
    m->writes++;
    if (m->fail_err && m->out_len >= m->fail_after)
        return m->fail_err;
    size_t n = mem_limit(m, len, m->out_len);
    if (n > MEM_OUT - m->out_len)
        return -ENOSPC;
    memcpy(m->out + m->out_len, buf, n);
    m->out_len += n;
    if (n > m->max_write)
        m->max_write = n;
    return (int64_t)n;
}

static const mote_stream_vt mem_vt = {mem_read, mem_write};
static const mote_stream_vt read_only_vt = {mem_read, NULL};

static mem *mem_new(const char *in, size_t piece) {
    mem *m = calloc(1, sizeof *m);
    T_CHECK(m != NULL);
    m->in = in;
    m->in_len = in ? strlen(in) : 0;
    m->piece = piece;
    return m;
}

static mote_stream mem_stream(mem *m) {
    mote_stream s = {&mem_vt, m};
    return s;
}

/* The out bytes equal want. */
static void check_out(const mem *m, const char *want, size_t len) {
    T_CHECK_EQ(m->out_len, len);
    T_CHECK(m->out_len == len && memcmp(m->out, want, len) == 0);
}

static void check_text(const char *got, int64_t n, const char *want) {
    T_CHECK_EQ(n, (int64_t)strlen(want));
    T_CHECK(got != NULL && n == (int64_t)strlen(want) && memcmp(got, want, (size_t)n) == 0);
}

/* The next piece up to delim is want (with the delimiter). */
static void expect_until(mote_reader *r, int delim, const char *want) {
    const char *p = NULL;
    int64_t n = mote_reader_read_until(r, delim, &p, T_PATIENCE);
    check_text(p, n, want);
}

/* The next line is want (without its ending). */
static void expect_line(mote_reader *r, const char *want) {
    const char *p = NULL;
    int64_t n = mote_reader_read_line(r, &p, T_PATIENCE);
    check_text(p, n, want);
    /* NUL-terminated: a C string of exactly the returned length. */
    T_CHECK(p != NULL && n >= 0 && p[n] == '\0' && strcmp(p, want) == 0);
}

/* ---- The interface ------------------------------------------------------------ */

static int main_interface(void *arg) {
    (void)arg;
    mem *m = mem_new("hello world", 0);
    mote_stream s = mem_stream(m);
    char buf[32] = {0};
    T_CHECK_EQ(mote_stream_read(s, buf, 5, MOTE_FOREVER), 5);
    T_CHECK(memcmp(buf, "hello", 5) == 0);
    T_CHECK_EQ(mote_stream_write(s, "abc", 3, MOTE_FOREVER), 3);
    check_out(m, "abc", 3);
    T_CHECK_EQ(mote_stream_read(s, buf, sizeof buf, 0), 6);
    T_CHECK_EQ(mote_stream_read(s, buf, sizeof buf, 0), 0); /* end of stream */

    /* Empty transfers do not reach the object. */
    int calls = m->reads + m->writes;
    T_CHECK_EQ(mote_stream_read(s, buf, 0, 0), 0);
    T_CHECK_EQ(mote_stream_write(s, buf, 0, 0), 0);
    T_CHECK_EQ(m->reads + m->writes, calls);

    /* No vtable, or an operation missing: -EBADF; bad arguments: -EINVAL. */
    mote_stream none = {NULL, m}, ro = {&read_only_vt, m};
    T_CHECK_EQ(mote_stream_read(none, buf, 1, 0), -EBADF);
    T_CHECK_EQ(mote_stream_write(none, buf, 1, 0), -EBADF);
    T_CHECK_EQ(mote_stream_write(ro, "x", 1, 0), -EBADF);
    T_CHECK_EQ(mote_stream_write_all(ro, "x", 1, 0), -EBADF);
    T_CHECK_EQ(mote_stream_read_exact(none, buf, 1, 0), -EBADF);
    T_CHECK_EQ(mote_stream_read(s, NULL, 1, 0), -EINVAL);
    T_CHECK_EQ(mote_stream_write(s, NULL, 1, 0), -EINVAL);
    T_CHECK(mote_socket_stream(NULL).vt == NULL);
    T_CHECK_EQ(mote_stream_read(mote_socket_stream(NULL), buf, 1, 0), -EBADF);

    mote_reader *r = (mote_reader *)1;
    mote_writer *w = (mote_writer *)1;
    T_CHECK_EQ(mote_reader_new(&r, none, 0), -EBADF);
    T_CHECK(r == NULL);
    T_CHECK_EQ(mote_writer_new(&w, ro, 0), -EBADF);
    T_CHECK(w == NULL);
    T_CHECK_EQ(mote_reader_new(NULL, s, 0), -EINVAL);
    T_CHECK_EQ(mote_writer_new(NULL, s, 0), -EINVAL);
    T_CHECK_EQ(mote_reader_read(NULL, buf, 1, 0), -EINVAL);
    T_CHECK_EQ(mote_writer_write(NULL, buf, 1, 0), -EINVAL);
    T_CHECK_EQ(mote_writer_flush(NULL, 0), -EINVAL);
    free(m);
    return 0;
}
Test(stream, user_type_and_argument_errors) { T_RUN_OK(NULL, main_interface, NULL); }

/* A user stream that breaks the contract is reported, not trusted. */
static int64_t bad_read(void *obj, void *buf, size_t len, int64_t timeout) {
    (void)obj, (void)buf, (void)timeout;
    return (int64_t)len + 1;
}
static int64_t zero_write(void *obj, const void *buf, size_t len, int64_t timeout) {
    (void)obj, (void)buf, (void)len, (void)timeout;
    return 0;
}
static int main_broken(void *arg) {
    (void)arg;
    static const mote_stream_vt vt = {bad_read, zero_write};
    mote_stream s = {&vt, NULL};
    char buf[8];
    T_CHECK_EQ(mote_stream_read(s, buf, sizeof buf, 0), -EIO);
    T_CHECK_EQ(mote_stream_write(s, buf, sizeof buf, 0), -EIO);
    T_CHECK_EQ(mote_stream_write_all(s, buf, sizeof buf, 0), -EIO); /* does not spin */
    return 0;
}
Test(stream, broken_implementation_is_eio) { T_RUN_OK(NULL, main_broken, NULL); }

/* ---- read_exact / write_all ----------------------------------------------- */

static int main_exact_all(void *arg) {
    (void)arg;
    static const char text[] = "0123456789abcdefghijklmnopqrstuvwxyz";
    mem *m = mem_new(text, 1); /* every call moves one byte */
    mote_stream s = mem_stream(m);
    char buf[64] = {0};
    T_CHECK_EQ(mote_stream_read_exact(s, buf, 20, MOTE_FOREVER), 0);
    T_CHECK(memcmp(buf, text, 20) == 0);
    T_CHECK_EQ(m->reads, 20);
    T_CHECK_EQ(mote_stream_read_exact(s, buf, 20, MOTE_FOREVER), -ENODATA); /* only 16 left */
    T_CHECK_EQ(mote_stream_write_all(s, text, sizeof text - 1, MOTE_FOREVER), 0);
    check_out(m, text, sizeof text - 1);
    T_CHECK_EQ(m->writes, (int)sizeof text - 1);

    /* An error mid-way is returned as it is. */
    mem *f = mem_new(text, 3);
    f->fail_after = 7;
    f->fail_err = -ECONNRESET;
    T_CHECK_EQ(mote_stream_read_exact(mem_stream(f), buf, 10, MOTE_FOREVER), -ECONNRESET);
    T_CHECK_EQ(f->in_pos, 7);
    T_CHECK_EQ(mote_stream_write_all(mem_stream(f), text, 10, MOTE_FOREVER), -ECONNRESET);
    check_out(f, text, 7);
    free(m);
    free(f);
    return 0;
}
Test(stream, read_exact_write_all_in_pieces) { T_RUN_OK(NULL, main_exact_all, NULL); }

/* ---- Reader: lines -------------------------------------------------------------- */

static const char *const lines_text = "one\ntwo\r\n\nthree\r\n\r\na line of 16 b\r\nlast";
static const char *const lines_want[] = {"one", "two", "", "three", "", "a line of 16 b", "last"};

static void read_lines(size_t piece, size_t cap) {
    mem *m = mem_new(lines_text, piece);
    mote_reader *r = NULL;
    T_CHECK_EQ(mote_reader_new(&r, mem_stream(m), cap), 0);
    if (!r)
        return;
    for (size_t i = 0; i < sizeof lines_want / sizeof lines_want[0]; i++) {
        expect_line(r, lines_want[i]);
    }
    const char *line = "x";
    T_CHECK_EQ(mote_reader_read_line(r, &line, MOTE_FOREVER), -ENODATA);
    T_CHECK(line == NULL);
    T_CHECK_EQ(mote_reader_read_line(r, &line, MOTE_FOREVER), -ENODATA); /* stays at the end */
    mote_reader_free(r);
    free(m);
}

static int main_lines(void *arg) {
    (void)arg;
    size_t pieces[] = {1, 2, 5, 0};
    size_t caps[] = {16, 17, 64, 0}; /* 16: the longest line exactly fills it */
    for (size_t i = 0; i < sizeof pieces / sizeof pieces[0]; i++)
        for (size_t j = 0; j < sizeof caps / sizeof caps[0]; j++)
            read_lines(pieces[i], caps[j]);
    return 0;
}
Test(stream, read_line_endings_empty_and_last_line) { T_RUN_OK(NULL, main_lines, NULL); }

/* A line is a C string: sscanf stops at its end, never at the next line's
 * bytes still in the buffer (they would read as one number "12" + "34"). */
static int main_line_sscanf(void *arg) {
    (void)arg;
    mem *m = mem_new("12\n34 56\n7", 0);
    mote_reader *r = NULL;
    T_CHECK_EQ(mote_reader_new(&r, mem_stream(m), 0), 0);
    const char *line;
    int a = 0, b = 0, c = 0;
    char rest[8] = "";
    T_CHECK_EQ(mote_reader_read_line(r, &line, T_PATIENCE), 2);
    T_CHECK_EQ(sscanf(line, "%d%7s", &a, rest), 1);
    T_CHECK_EQ(a, 12);
    T_CHECK_EQ(mote_reader_read_line(r, &line, T_PATIENCE), 5);
    T_CHECK_EQ(sscanf(line, "%d %d", &b, &c), 2);
    T_CHECK(b == 34 && c == 56);
    T_CHECK_EQ(mote_reader_read_line(r, &line, T_PATIENCE), 1); /* last, no newline */
    T_CHECK_EQ(strcmp(line, "7"), 0);
    mote_reader_free(r);
    free(m);
    return 0;
}
Test(stream, read_line_is_nul_terminated) { T_RUN_OK(NULL, main_line_sscanf, NULL); }

static int main_until(void *arg) {
    (void)arg;
    size_t pieces[] = {1, 0};
    for (size_t i = 0; i < 2; i++) {
        mem *m = mem_new("a=1;bb=22;;tail\n", pieces[i]);
        mote_reader *r = NULL;
        T_CHECK_EQ(mote_reader_new(&r, mem_stream(m), 8), 0);
        expect_until(r, ';', "a=1;");
        expect_until(r, ';', "bb=22;");
        expect_until(r, ';', ";");
        expect_until(r, ';', "tail\n"); /* no ';' left */
        const char *p = "x";
        T_CHECK_EQ(mote_reader_read_until(r, ';', &p, MOTE_FOREVER), 0);
        T_CHECK(p == NULL);
        mote_reader_free(r);
        free(m);
    }
    /* A last line without "\n" keeps its "\r". */
    mem *cr = mem_new("x\r", 0);
    mote_reader *rc = NULL;
    T_CHECK_EQ(mote_reader_new(&rc, mem_stream(cr), 0), 0);
    expect_line(rc, "x\r");
    mote_reader_free(rc);
    free(cr);
    /* A delimiter above 127 (a negative char) is matched as a byte. */
    mem *m = mem_new("ab\xff" "cd", 0);
    mote_reader *r = NULL;
    T_CHECK_EQ(mote_reader_new(&r, mem_stream(m), 0), 0);
    expect_until(r, (char)'\xff', "ab\xff");
    mote_reader_free(r);
    free(m);
    return 0;
}
Test(stream, read_until_custom_delimiter) { T_RUN_OK(NULL, main_until, NULL); }

/* A line longer than the buffer: -ENOBUFS, and its bytes are still there. */
static int main_nobufs(void *arg) {
    (void)arg;
    mem *m = mem_new("abcdefghijkl\nxy\n", 3);
    mote_reader *r = NULL;
    T_CHECK_EQ(mote_reader_new(&r, mem_stream(m), 8), 0);
    const char *line = "x";
    T_CHECK_EQ(mote_reader_read_line(r, &line, MOTE_FOREVER), -ENOBUFS);
    T_CHECK(line == NULL);
    T_CHECK_EQ(mote_reader_read_until(r, '\n', &line, MOTE_FOREVER), -ENOBUFS); /* again */
    char buf[16] = {0};
    T_CHECK_EQ(mote_reader_read(r, buf, 5, MOTE_FOREVER), 5);
    T_CHECK(memcmp(buf, "abcde", 5) == 0);
    T_CHECK_EQ(mote_reader_read(r, buf, sizeof buf, MOTE_FOREVER), 3); /* the rest of the buffer */
    T_CHECK(memcmp(buf, "fgh", 3) == 0);
    expect_line(r, "ijkl");
    expect_line(r, "xy");
    T_CHECK_EQ(mote_reader_read_line(r, &line, MOTE_FOREVER), -ENODATA);
    mote_reader_free(r);
    free(m);
    return 0;
}
Test(stream, overlong_line_is_enobufs_and_stays_readable) { T_RUN_OK(NULL, main_nobufs, NULL); }

/* An error mid-way is returned; the bytes read before it stay buffered. */
static int main_read_error(void *arg) {
    (void)arg;
    mem *m = mem_new("first\nsecond half", 4);
    m->fail_after = 12; /* "first\nsecond" */
    m->fail_err = -ECONNRESET;
    mote_reader *r = NULL;
    T_CHECK_EQ(mote_reader_new(&r, mem_stream(m), 64), 0);
    const char *line = NULL;
    expect_line(r, "first");
    T_CHECK_EQ(mote_reader_read_line(r, &line, MOTE_FOREVER), -ECONNRESET);
    char buf[16] = {0};
    T_CHECK_EQ(mote_reader_read(r, buf, sizeof buf, MOTE_FOREVER), 6);
    T_CHECK(memcmp(buf, "second", 6) == 0);
    T_CHECK_EQ(mote_reader_read(r, buf, sizeof buf, MOTE_FOREVER), -ECONNRESET);
    mote_reader_free(r);
    free(m);
    return 0;
}
Test(stream, read_error_keeps_buffered_bytes) { T_RUN_OK(NULL, main_read_error, NULL); }

/* Small reads are served from the buffer; a big read with an empty buffer
 * goes straight into the caller's memory. */
static int main_reader_read(void *arg) {
    (void)arg;
    static char text[200];
    for (size_t i = 0; i < sizeof text - 1; i++)
        text[i] = (char)('a' + i % 26);
    mem *m = mem_new(text, 0);
    mote_reader *r = NULL;
    T_CHECK_EQ(mote_reader_new(&r, mem_stream(m), 16), 0);
    char buf[128] = {0};
    T_CHECK_EQ(mote_reader_read(r, buf, 4, MOTE_FOREVER), 4);
    T_CHECK_EQ(m->reads, 1);
    T_CHECK_EQ(m->last_read_len, 16); /* filled the buffer */
    T_CHECK_EQ(mote_reader_read(r, buf + 4, 100, MOTE_FOREVER), 12); /* what is buffered */
    T_CHECK_EQ(m->reads, 1);
    T_CHECK_EQ(mote_reader_read(r, buf + 16, 100, MOTE_FOREVER), 100);
    T_CHECK_EQ(m->reads, 2);
    T_CHECK_EQ(m->last_read_len, 100); /* straight through */
    T_CHECK(memcmp(buf, text, 116) == 0);
    T_CHECK_EQ(mote_reader_read(r, buf, 0, MOTE_FOREVER), 0);
    T_CHECK_EQ(m->reads, 2);
    mote_reader_free(r);
    free(m);
    return 0;
}
Test(stream, reader_read_buffers_small_and_bypasses_big) { T_RUN_OK(NULL, main_reader_read, NULL); }

/* ---- Writer ------------------------------------------------------------------- */

static int main_batching(void *arg) {
    (void)arg;
    mem *m = mem_new(NULL, 0);
    mote_writer *w = NULL;
    T_CHECK_EQ(mote_writer_new(&w, mem_stream(m), 1024), 0);
    static char want[10000];
    for (int i = 0; i < 1000; i++) {
        char rec[11];
        snprintf(rec, sizeof rec, "rec %05d\n", i);
        memcpy(want + i * 10, rec, 10);
        T_CHECK_EQ(mote_writer_write(w, rec, 10, MOTE_FOREVER), 0);
        if (i == 99) { /* 1000 bytes: all still buffered */
            T_CHECK_EQ(m->writes, 0);
            T_CHECK_EQ(mote_writer_buffered(w), 1000);
        }
    }
    T_CHECK(mote_writer_buffered(w) > 0);
    T_CHECK_EQ(mote_writer_flush(w, MOTE_FOREVER), 0);
    T_CHECK_EQ(mote_writer_buffered(w), 0);
    check_out(m, want, sizeof want);
    T_CHECK(m->writes <= 10); /* 10000 bytes through a 1 KiB buffer */
    T_CHECK_EQ(mote_writer_flush(w, MOTE_FOREVER), 0); /* nothing to do */
    T_CHECK(m->writes <= 10);
    mote_writer_free(w);
    free(m);
    return 0;
}
Test(stream, writer_batches_small_writes) { T_RUN_OK(NULL, main_batching, NULL); }

static int main_big_writes(void *arg) {
    (void)arg;
    mem *m = mem_new(NULL, 0);
    mote_writer *w = NULL;
    T_CHECK_EQ(mote_writer_new(&w, mem_stream(m), 16), 0);
    char big[100];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (char)('A' + i % 26);
    T_CHECK_EQ(mote_writer_write(w, "head:", 5, MOTE_FOREVER), 0);
    T_CHECK_EQ(mote_writer_write(w, big, sizeof big, MOTE_FOREVER), 0);
    T_CHECK_EQ(m->writes, 2); /* the buffer first, then big without copying */
    T_CHECK_EQ(m->max_write, sizeof big);
    T_CHECK_EQ(mote_writer_buffered(w), 0);
    char want[105];
    memcpy(want, "head:", 5);
    memcpy(want + 5, big, sizeof big);
    check_out(m, want, sizeof want);

    /* A write that does not fit behind what is buffered but fits the buffer
     * flushes and is then buffered. */
    T_CHECK_EQ(mote_writer_write(w, "0123456789", 10, MOTE_FOREVER), 0);
    T_CHECK_EQ(mote_writer_write(w, "abcdefghij", 10, MOTE_FOREVER), 0);
    T_CHECK_EQ(m->writes, 3);
    T_CHECK_EQ(mote_writer_buffered(w), 10);
    mote_writer_free(w);
    free(m);
    return 0;
}
Test(stream, writer_big_writes_go_through) { T_RUN_OK(NULL, main_big_writes, NULL); }

static int main_printf(void *arg) {
    (void)arg;
    mem *m = mem_new(NULL, 0);
    mote_writer *w = NULL;
    T_CHECK_EQ(mote_writer_new(&w, mem_stream(m), 32), 0);
    T_CHECK_EQ(mote_writer_printf(w, MOTE_FOREVER, "%s=%d;", "x", 42), 5);
    T_CHECK_EQ(mote_writer_buffered(w), 5);
    T_CHECK_EQ(m->writes, 0);
    /* Exactly fills the buffer (27 more bytes): still no write. */
    T_CHECK_EQ(mote_writer_printf(w, MOTE_FOREVER, "%027d", 7), 27);
    T_CHECK_EQ(mote_writer_buffered(w), 32);
    T_CHECK_EQ(m->writes, 0);
    /* Bigger than the free space, smaller than the buffer. */
    T_CHECK_EQ(mote_writer_printf(w, MOTE_FOREVER, "[%10s]", "mid"), 12);
    T_CHECK_EQ(m->writes, 1);
    T_CHECK_EQ(mote_writer_buffered(w), 12);
    /* Bigger than the buffer: formatted on the heap, written through. */
    T_CHECK_EQ(mote_writer_printf(w, MOTE_FOREVER, "<%-60s>", "wide"), 62);
    T_CHECK_EQ(mote_writer_buffered(w), 0);
    T_CHECK_EQ(mote_writer_printf(w, MOTE_FOREVER, "%s", ""), 0);
    T_CHECK_EQ(mote_writer_flush(w, MOTE_FOREVER), 0);
    char want[256];
    int n = snprintf(want, sizeof want, "x=42;%027d[%10s]<%-60s>", 7, "mid", "wide");
    check_out(m, want, (size_t)n);
    const char *volatile nofmt = NULL;
    T_CHECK_EQ(mote_writer_printf(w, 0, nofmt, 1), -EINVAL);
    T_CHECK_EQ(mote_writer_printf(NULL, 0, "%d", 1), -EINVAL);
    mote_writer_free(w);
    free(m);
    return 0;
}
Test(stream, writer_printf) { T_RUN_OK(NULL, main_printf, NULL); }

/* A failed flush keeps the unwritten bytes; once the stream recovers, a
 * flush sends them, none lost and none twice. */
static int main_flush_error(void *arg) {
    (void)arg;
    mem *m = mem_new(NULL, 3); /* partial writes of 3 bytes */
    m->fail_after = 7;
    m->fail_err = -EPIPE;
    mote_writer *w = NULL;
    T_CHECK_EQ(mote_writer_new(&w, mem_stream(m), 16), 0);
    T_CHECK_EQ(mote_writer_write(w, "abcdefghijkl", 12, MOTE_FOREVER), 0);
    T_CHECK_EQ(mote_writer_flush(w, MOTE_FOREVER), -EPIPE);
    check_out(m, "abcdefg", 7);
    T_CHECK_EQ(mote_writer_buffered(w), 5);
    /* A write that needs a flush fails too, and takes nothing. */
    T_CHECK_EQ(mote_writer_write(w, "0123456789AB", 12, MOTE_FOREVER), -EPIPE);
    T_CHECK_EQ(mote_writer_buffered(w), 5);
    T_CHECK_EQ(mote_writer_printf(w, MOTE_FOREVER, "%s", "0123456789AB"), -EPIPE);
    T_CHECK_EQ(mote_writer_buffered(w), 5);
    /* A write that fits is still buffered. */
    T_CHECK_EQ(mote_writer_write(w, "mn", 2, MOTE_FOREVER), 0);
    T_CHECK_EQ(mote_writer_buffered(w), 7);
    m->fail_err = 0; /* recovered */
    T_CHECK_EQ(mote_writer_flush(w, MOTE_FOREVER), 0);
    T_CHECK_EQ(mote_writer_buffered(w), 0);
    check_out(m, "abcdefghijklmn", 14);

    /* A write straight through that fails reports the error. */
    m->fail_after = 20;
    m->fail_err = -EIO;
    char big[32];
    memset(big, 'z', sizeof big);
    T_CHECK_EQ(mote_writer_write(w, big, sizeof big, MOTE_FOREVER), -EIO);
    T_CHECK_EQ(m->out_len, 20);
    mote_writer_free(w);
    free(m);
    return 0;
}
Test(stream, writer_flush_error_keeps_bytes) { T_RUN_OK(NULL, main_flush_error, NULL); }

/* ---- Over a real socket pair ---------------------------------------------------- */

static bool socket_pair(mote_socket **a, mote_socket **b) {
    int sv[2];
    T_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    T_CHECK_EQ(mote_socket_adopt(a, sv[0]), 0);
    T_CHECK_EQ(mote_socket_adopt(b, sv[1]), 0);
    return *a && *b;
}

typedef struct dribble {
    mote_socket *s;
    mote_proc *report;
} dribble;

/* Writes one byte every 5 ms, never a newline, until the peer goes away. */
static void fn_dribble(void *arg) {
    dribble *d = arg;
    int sent = 0;
    while (mote_socket_write(d->s, "z", 1, T_PATIENCE) == 1 && sent < 4000) {
        sent++;
        mote_sleep(MOTE_MSEC(5));
    }
    t_send_i64(d->report, sent);
    mote_proc_release(d->report);
}

static int main_socket_timeout(void *arg) {
    (void)arg;
    mote_socket *a = NULL, *b = NULL;
    if (!socket_pair(&a, &b))
        return 0;
    mote_reader *r = NULL;
    T_CHECK_EQ(mote_reader_new(&r, mote_socket_stream(b), 64), 0);
    const char *line = NULL;
    int64_t t0 = mote_now();
    T_CHECK_EQ(mote_reader_read_line(r, &line, MOTE_MSEC(30)), -ETIMEDOUT);
    T_CHECK(mote_now() - t0 >= MOTE_MSEC(25));
    char c;
    T_CHECK_EQ(mote_reader_read(r, &c, 1, 0), -ETIMEDOUT);

    /* Half a line times out; the half stays buffered for the next call. */
    T_CHECK_EQ(mote_socket_write_all(a, "abc", 3, T_PATIENCE), 0);
    T_CHECK_EQ(mote_reader_read_line(r, &line, MOTE_MSEC(20)), -ETIMEDOUT);
    T_CHECK_EQ(mote_socket_write_all(a, "def\r\n", 5, T_PATIENCE), 0);
    expect_line(r, "abcdef");

    /* The timeout covers the whole call, not each read: bytes trickling in
     * without a newline do not keep it alive. */
    dribble d = {a, mote_proc_ref(mote_self())};
    T_CHECK_EQ(mote_spawn_fn(NULL, fn_dribble, &d, sizeof d), 0);
    t0 = mote_now();
    T_CHECK_EQ(mote_reader_read_line(r, &line, MOTE_MSEC(60)), -ETIMEDOUT);
    int64_t took = mote_now() - t0;
    T_CHECK(took >= MOTE_MSEC(55));
    T_CHECK(took < MOTE_SEC(5));
    mote_socket_shutdown(b, SHUT_RDWR); /* stops the dribbler */
    T_CHECK(t_recv_i64() >= 0);
    mote_reader_free(r);
    mote_socket_close(a);
    mote_socket_close(b);
    return 0;
}
Test(stream, socket_reader_timeouts) { T_RUN_OK(NULL, main_socket_timeout, NULL); }

enum { NLINES = 5000 };

typedef struct producer {
    mote_socket *s;
} producer;

/* Writes NLINES numbered lines through a small writer, then closes. */
static void fn_producer(void *arg) {
    producer *p = arg;
    mote_writer *w = NULL;
    T_CHECK_EQ(mote_writer_new(&w, mote_socket_stream(p->s), 100), 0);
    for (int i = 0; w && i < NLINES; i++) {
        char want[64];
        int len = snprintf(want, sizeof want, i % 7 == 0 ? "line %d crlf\r\n" : "line %d\n", i);
        if (i % 7 == 0)
            T_CHECK_EQ(mote_writer_printf(w, T_PATIENCE, "line %d %s\r\n", i, "crlf"), len);
        else
            T_CHECK_EQ(mote_writer_printf(w, T_PATIENCE, "line %d\n", i), len);
    }
    T_CHECK_EQ(mote_writer_flush(w, T_PATIENCE), 0);
    mote_writer_free(w);
    mote_socket_close(p->s);
}

static int main_socket_lines(void *arg) {
    (void)arg;
    mote_socket *a = NULL, *b = NULL;
    if (!socket_pair(&a, &b))
        return 0;
    producer p = {a};
    T_CHECK_EQ(mote_spawn_fn(NULL, fn_producer, &p, sizeof p), 0);
    mote_reader *r = NULL;
    T_CHECK_EQ(mote_reader_new(&r, mote_socket_stream(b), 32), 0);
    int i = 0;
    for (;; i++) {
        const char *line = NULL;
        int64_t n = mote_reader_read_line(r, &line, T_PATIENCE);
        if (n < 0) {
            T_CHECK_EQ(n, -ENODATA);
            break;
        }
        char want[64];
        if (i % 7 == 0)
            snprintf(want, sizeof want, "line %d crlf", i);
        else
            snprintf(want, sizeof want, "line %d", i);
        check_text(line, n, want);
        if (n != (int64_t)strlen(want))
            break;
    }
    T_CHECK_EQ(i, NLINES);
    mote_reader_free(r);
    mote_socket_close(b);
    return 0;
}
Test(stream, socket_writer_to_reader_lines) { T_RUN_OK(NULL, main_socket_lines, NULL); }
