/*
 * fuzz-addr.c -- mote_addr_parse and mote_addr_format.
 *
 * The input as text: whatever mote_addr_parse accepts must format, and the
 * formatted text must parse back to the same bytes (a round trip). The
 * input as a raw mote_addr (any len, any family): mote_addr_format must
 * answer without reading outside it, into buffers of every small size.
 */
#include <errno.h>
#include <mote.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void check(int cond, const char *what, const char *text) {
    if (!cond) {
        fprintf(stderr, "fuzz-addr: %s for \"%s\"\n", what, text);
        abort();
    }
}

static void round_trip(const char *text) {
    mote_addr a, b;
    if (mote_addr_parse(&a, text) != 0)
        return;
    check(a.len > 0 && a.len <= sizeof a.storage, "parsed length out of range", text);
    char buf[256];
    check(mote_addr_format(&a, buf, sizeof buf) == 0, "a parsed address does not format", text);
    check(mote_addr_parse(&b, buf) == 0, "formatted text does not parse", buf);
    check(a.len == b.len && memcmp(a.storage, b.storage, a.len) == 0, "round trip changed the address",
          text);
    /* Every shorter buffer: -ENOSPC or the same text, always terminated. */
    size_t full = strlen(buf);
    for (size_t len = 1; len <= full + 1; len++) {
        char small[256];
        memset(small, 'x', sizeof small);
        int r = mote_addr_format(&a, small, len);
        check(r == (len > full ? 0 : -ENOSPC), "wrong result for a short buffer", text);
        if (r == 0)
            check(strcmp(small, buf) == 0, "different text in a buffer that fits", text);
        check(small[len] == 'x', "wrote past the buffer", text);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* As text (a heap copy, so ASan sees any read past the terminator). */
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    round_trip(text);
    free(text);

    /* As a raw address: the first 4 bytes are len, the rest storage. */
    mote_addr *a = malloc(sizeof *a);
    if (!a)
        return 0;
    memset(a, 0, sizeof *a);
    if (size >= 4) {
        memcpy(&a->len, data, 4);
        size_t n = size - 4 < sizeof a->storage ? size - 4 : sizeof a->storage;
        memcpy(a->storage, data + 4, n);
    }
    char buf[300];
    int r = mote_addr_format(a, buf, sizeof buf);
    if (r == 0)
        (void)strlen(buf); /* terminated */
    free(a);
    return 0;
}
