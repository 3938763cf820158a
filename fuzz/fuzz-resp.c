/*
 * fuzz-resp.c -- libFuzzer target for examples/common/resp.c.
 *
 * Input: two bytes that choose how the rest is cut into pieces (a seed and
 * the largest piece), then a client's byte stream. It is parsed once whole
 * and once as a server would see it, arriving in those pieces into a
 * buffer that keeps the unparsed tail. The checks: both runs give the
 * same commands, byte for byte, and stop with the same error; every
 * argument lies inside the input; a command re-encoded with
 * resp_put_bulk parses back to itself; resp_to_int accepts exactly the
 * canonical decimal form.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resp.h"

enum { ARGS_MAX = 4096 }; /* more is refused, as a server would */

/* The commands seen, flattened: per command its argc, then each argument
 * as length + bytes; an error ends it with a marker and the reason. */
typedef struct trace {
    resp_buf b;
} trace;

static void note(trace *t, const void *p, size_t n) {
    if (resp_put_raw(&t->b, p, n) < 0)
        abort();
}

static void check_int(const resp_arg *a) {
    int64_t v;
    if (resp_to_int(a->p, a->len, &v) == 0) {
        char text[32];
        int n = snprintf(text, sizeof text, "%" PRId64, v);
        if ((size_t)n != a->len || memcmp(text, a->p, a->len) != 0)
            abort(); /* accepted a non-canonical number */
    }
}

/* Re-encode argv as a RESP array and parse it back. */
static void round_trip(const resp_arg *argv, size_t argc) {
    resp_buf b = {0};
    if (resp_put_array(&b, argc) < 0)
        abort();
    for (size_t i = 0; i < argc; i++)
        if (resp_put_bulk(&b, argv[i].p, argv[i].len) < 0)
            abort();
    resp_arg *back = malloc((argc + 1) * sizeof *back);
    size_t n;
    const char *err = NULL;
    if (!back || resp_parse(b.p, b.len, back, argc + 1, &n, &err) != (int64_t)b.len || n != argc)
        abort();
    for (size_t i = 0; i < argc; i++)
        if (back[i].len != argv[i].len || memcmp(back[i].p, argv[i].p, argv[i].len) != 0)
            abort();
    free(back);
    free(b.p);
}

/* Parse the commands at the start of buf; returns the bytes used, or
 * SIZE_MAX after an error (noted in t). */
static size_t parse_all(const char *buf, size_t len, trace *t, bool check) {
    static resp_arg argv[ARGS_MAX];
    size_t pos = 0;
    for (;;) {
        size_t argc;
        const char *err = NULL;
        int64_t r = resp_parse(buf + pos, len - pos, argv, ARGS_MAX, &argc, &err);
        if (r == RESP_INCOMPLETE)
            return pos;
        if (r < 0) {
            if (r == RESP_TOO_MANY && argc <= ARGS_MAX)
                abort(); /* it had room */
            note(t, "!", 1);
            if (r == RESP_ERROR)
                note(t, err, strlen(err));
            return SIZE_MAX;
        }
        if ((size_t)r > len - pos)
            abort();
        note(t, &argc, sizeof argc);
        for (size_t i = 0; i < argc; i++) {
            if (argv[i].p < buf + pos || argv[i].p + argv[i].len > buf + pos + (size_t)r)
                abort();
            note(t, &argv[i].len, sizeof argv[i].len);
            note(t, argv[i].p, argv[i].len);
            if (check)
                check_int(&argv[i]);
        }
        if (check)
            round_trip(argv, argc);
        pos += (size_t)r;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2)
        return 0;
    uint32_t seed = data[0];
    size_t max = (size_t)data[1] + 1;
    const char *in = (const char *)data + 2;
    size_t n = size - 2;
    trace whole = {{0}}, cut = {{0}};
    size_t used = parse_all(in, n, &whole, true);
    if (used != SIZE_MAX)
        note(&whole, "~", 1);

    /* Pieces into a buffer holding the unparsed tail, as a connection does. */
    char *buf = malloc(n + 1);
    size_t have = 0, off = 0;
    bool failed = false;
    while (off < n && !failed) {
        seed = seed * 1103515245u + 12345u;
        size_t piece = 1 + (seed >> 16) % max;
        if (piece > n - off)
            piece = n - off;
        memcpy(buf + have, in + off, piece);
        have += piece;
        off += piece;
        size_t u = parse_all(buf, have, &cut, false);
        if (u == SIZE_MAX) {
            failed = true;
        } else {
            memmove(buf, buf + u, have - u);
            have -= u;
        }
    }
    if (!failed)
        note(&cut, "~", 1);
    if (whole.b.len != cut.b.len || memcmp(whole.b.p, cut.b.p, whole.b.len) != 0)
        abort();
    free(buf);
    free(whole.b.p);
    free(cut.b.p);
    return 0;
}
