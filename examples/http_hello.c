/*
 * http_hello.c -- answers every complete HTTP/1.1 request with a fixed
 * plaintext body, on keep-alive connections, pipelined requests included.
 * One process per connection.
 *
 *   http_hello [addr]   default 127.0.0.1:8080; prints "listening on ADDR"
 *
 * Every read waits at most 60 s (HTTP_HELLO_DEADLINE=off: forever, to
 * measure what the deadline costs).
 *
 * Requests are read until the blank line that ends their headers; bodies
 * (Content-Length) are skipped. "Connection: close" ends the connection.
 */
#define _GNU_SOURCE /* memmem */
#include <errno.h>
#include <mote.h>
#include "common/serve.h"
#include <stdbool.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char RESPONSE[] = "HTTP/1.1 200 OK\r\n"
                               "Content-Type: text/plain\r\n"
                               "Content-Length: 13\r\n"
                               "\r\n"
                               "Hello, World!";

/* Value of a header in [head, end), or -1. */
static long header_num(const char *head, const char *end, const char *name) {
    size_t nl = strlen(name);
    for (const char *p = head; p < end; p++) {
        if ((p == head || p[-1] == '\n') && (size_t)(end - p) > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':')
            return strtol(p + nl + 1, NULL, 10);
    }
    return -1;
}

static bool wants_close(const char *head, const char *end) {
    for (const char *p = head; p + 17 < end; p++)
        if ((p == head || p[-1] == '\n') && strncasecmp(p, "connection: close", 17) == 0)
            return true;
    return false;
}

static int64_t read_timeout = MOTE_SEC(60);

static void connection(void *arg) {
    mote_socket *c = *(mote_socket **)arg;
    char buf[65536], out[sizeof RESPONSE * 64];
    size_t have = 0;
    bool done = false;
    while (!done) {
        int64_t n = mote_socket_read(c, buf + have, sizeof buf - have, read_timeout);
        if (n <= 0)
            break;
        have += (size_t)n;
        /* Answer every complete request in the buffer, in one write. */
        size_t used = 0, outlen = 0;
        for (;;) {
            char *start = buf + used, *end = memmem(start, have - used, "\r\n\r\n", 4);
            if (!end)
                break;
            end += 4;
            long body = header_num(start, end, "content-length");
            if (body > 0 && (size_t)(buf + have - end) < (size_t)body)
                break; /* body still on its way */
            bool close_after = wants_close(start, end);
            used = (size_t)(end - buf) + (size_t)(body > 0 ? body : 0);
            memcpy(out + outlen, RESPONSE, sizeof RESPONSE - 1);
            outlen += sizeof RESPONSE - 1;
            if (close_after || outlen + sizeof RESPONSE > sizeof out) {
                done = close_after;
                break;
            }
        }
        if (outlen && mote_socket_write_all(c, out, outlen, MOTE_SEC(30)) < 0)
            break;
        memmove(buf, buf + used, have - used);
        have -= used;
        if (have == sizeof buf)
            break; /* a request larger than we accept */
    }
    mote_socket_close(c);
}

static int serve(void *arg) {
    return serve_forever("http_hello", arg, 4096, connection);
}

int main(int argc, char **argv) {
    const char *dl = getenv("HTTP_HELLO_DEADLINE");
    if (dl && strcmp(dl, "off") == 0)
        read_timeout = MOTE_FOREVER;
    return mote_run(NULL, serve, argc > 1 ? argv[1] : "127.0.0.1:8080");
}
