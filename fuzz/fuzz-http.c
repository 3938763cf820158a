/*
 * fuzz-http.c -- libFuzzer target for examples/common/http.c.
 *
 * Input: two bytes that choose how the rest is cut into pieces (a seed and
 * the largest piece), then the request stream. The stream is fed once
 * whole and once in those pieces, writing out[] whenever the connection
 * stops to let it; the checks: the two runs answer with the same bytes
 * (framing must not depend on how TCP cut the stream), every response is
 * a well-formed status line, out[] never overflows, and feeding never
 * stalls (returns 0 without a reason).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

static void hello(void *ctx, http_conn *c, const http_request *r) {
    (void)ctx;
    if (r->url_len > HTTP_URL_MAX || r->url[r->url_len] != '\0')
        abort();
    /* Echo the URL back: responses then differ per request, so a lost or
     * repeated request shows in the comparison. */
    size_t n = r->url_len < 256 ? r->url_len : 256;
    http_conn_respond(c, 200, "text/plain", r->url, n);
}

typedef struct sink {
    char *p;
    size_t len, cap;
} sink;

static void take(sink *s, http_conn *c) {
    if (c->out_len == 0)
        return;
    if (c->out_len > HTTP_OUT_CAP || memcmp(c->out, "HTTP/1.1 ", 9) != 0)
        abort();
    if (s->len + c->out_len > s->cap) {
        s->cap = (s->len + c->out_len) * 2;
        if (!(s->p = realloc(s->p, s->cap)))
            abort();
    }
    memcpy(s->p + s->len, c->out, c->out_len);
    s->len += c->out_len;
    c->out_len = 0;
}

/* Feed data in pieces of 1..max bytes (max 0: all at once). */
static void run(const uint8_t *data, size_t size, uint32_t seed, size_t max, sink *out) {
    http_conn *c = malloc(sizeof *c);
    if (!c)
        abort();
    http_conn_init(c, hello, NULL);
    size_t off = 0;
    while (off < size && !c->closing) {
        seed = seed * 1103515245u + 12345u;
        size_t piece = max ? 1 + (seed >> 16) % max : size - off;
        if (piece > size - off)
            piece = size - off;
        for (size_t done = 0; done < piece && !c->closing;) {
            size_t n = http_conn_feed(c, (const char *)data + off + done, piece - done);
            if (n == 0 && !c->closing && c->out_len == 0)
                abort(); /* stalled: the caller would loop forever */
            done += n;
            take(out, c);
        }
        off += piece;
    }
    free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2)
        return 0;
    uint32_t seed = data[0];
    size_t max = (size_t)data[1] + 1;
    sink whole = {0}, cut = {0};
    run(data + 2, size - 2, seed, 0, &whole);
    run(data + 2, size - 2, seed, max, &cut);
    if (whole.len != cut.len || (whole.len && memcmp(whole.p, cut.p, whole.len) != 0))
        abort();
    free(whole.p);
    free(cut.p);
    return 0;
}
