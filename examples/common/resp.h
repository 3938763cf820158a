/*
 * resp.h -- the Redis protocol (RESP2), server side, with no socket in
 * sight: parse commands out of a byte buffer, and format replies into a
 * growable one. Being pure, it is what fuzz/fuzz-resp.c drives.
 *
 * A command is either an array of bulk strings ("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"),
 * which is what clients send and which is binary-safe, or an inline line
 * of words separated by spaces ("GET k\r\n"), which is what a person types.
 */
#ifndef MOTE_EXAMPLES_RESP_H
#define MOTE_EXAMPLES_RESP_H

#include <stddef.h>
#include <stdint.h>

enum {
    RESP_MAX_BULK = 64 << 20,   /* bytes in one argument */
    RESP_MAX_INLINE = 64 << 10, /* bytes in an inline command or a length line */
    RESP_MAX_ARGS = 1 << 20,    /* arguments in one command */
};

/* Results of resp_parse besides a byte count. */
enum { RESP_INCOMPLETE = 0, RESP_ERROR = -1, RESP_TOO_MANY = -2 };

/* One argument: len bytes at p, inside the parsed buffer. */
typedef struct resp_arg {
    const char *p;
    size_t len;
} resp_arg;

/*
 * Parse the command at the start of buf[0..len). Returns:
 *   > 0             the bytes it takes; its *argc arguments are in argv
 *                   (pointing into buf). An empty inline line gives argc 0.
 *   RESP_INCOMPLETE more bytes are needed (nothing is remembered: call
 *                   again with the same start and more bytes);
 *   RESP_ERROR      the bytes are not RESP: *err is why, as Redis words it
 *                   after "ERR Protocol error: "; the stream cannot go on;
 *   RESP_TOO_MANY   the command has *argc arguments, more than cap: call
 *                   again with room for them (at most RESP_MAX_ARGS).
 */
int64_t resp_parse(const char *buf, size_t len, resp_arg *argv, size_t cap, size_t *argc, const char **err);

/* A string as a 64-bit integer, Redis's way: an optional '-', digits
 * without leading zeros, nothing else, no overflow. 0 or -1. */
int resp_to_int(const char *p, size_t len, int64_t *out);

/* ---- Replies ------------------------------------------------------------ */

/* A growable output buffer. Every resp_put_* returns 0 or -ENOMEM (then
 * the buffer is unchanged). Free p with free(). */
typedef struct resp_buf {
    char *p;
    size_t len, cap;
} resp_buf;

int resp_reserve(resp_buf *b, size_t more);
int resp_put_raw(resp_buf *b, const void *data, size_t len);
int resp_put_simple(resp_buf *b, const char *text); /* "+text\r\n" */
int resp_put_error(resp_buf *b, const char *text);  /* "-text\r\n" */
int resp_put_int(resp_buf *b, int64_t v);           /* ":v\r\n" */
int resp_put_bulk(resp_buf *b, const void *data, size_t len);
int resp_put_null(resp_buf *b);                     /* "$-1\r\n" */
int resp_put_array(resp_buf *b, size_t n);          /* "*n\r\n", then n replies */

#endif
