/*
 * test-http.c -- examples/http_hello driven over loopback by real sockets
 * (and curl), every response compared byte for byte: keep-alive,
 * pipelining, bodies (Content-Length and chunked), HTTP/1.0, HEAD, and the
 * error paths (400, 413, 414, 431), each of which must answer and then
 * close. Built only when libhttp-parser-dev is there (tests/CMakeLists.txt).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "helpers.h"

#define HELLO "Content-Type: text/plain\r\nContent-Length: 13\r\n"
#define OK "HTTP/1.1 200 OK\r\n" HELLO "\r\nHello, World!"
#define OK_CLOSE "HTTP/1.1 200 OK\r\n" HELLO "Connection: close\r\n\r\nHello, World!"
#define OK_KEEP10 "HTTP/1.1 200 OK\r\n" HELLO "Connection: keep-alive\r\n\r\nHello, World!"
#define OK_HEAD "HTTP/1.1 200 OK\r\n" HELLO "\r\n"
#define ERROR(code_reason, len, body)                                                              \
    "HTTP/1.1 " code_reason "\r\nContent-Type: text/plain\r\nContent-Length: " len                \
    "\r\nConnection: close\r\n\r\n" body
#define BAD_REQUEST ERROR("400 Bad Request", "12", "Bad Request\n")
#define TOO_LARGE ERROR("413 Payload Too Large", "18", "Payload Too Large\n")
#define URI_TOO_LONG ERROR("414 URI Too Long", "13", "URI Too Long\n")
#define HEAD_TOO_LARGE ERROR("431 Request Header Fields Too Large", "32", "Request Header Fields Too Large\n")

static t_server srv;

static void start(void) { t_server_start(&srv, "http_hello", "127.0.0.1:0"); }
static void stop(void) { t_server_stop(&srv); }

/* A connection whose reads give up after 10 s: a server that keeps a
 * connection open that it should close fails the test instead of hanging. */
static int dial(void) {
    int fd = t_dial(srv.addr);
    cr_assert(fd >= 0, "connect %s", srv.addr);
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static void send_all(int fd, const char *data, size_t len) {
    cr_assert(t_xfer(fd, (char *)data, len, true), "short write");
}

/* Read until the server closes (true) or the read times out (false);
 * the bytes read are in *out (NUL-terminated, caller frees). */
static bool read_to_close(int fd, char **out, size_t *len) {
    size_t cap = 1 << 16, have = 0;
    char *buf = malloc(cap + 1);
    cr_assert(buf);
    bool closed = false;
    for (;;) {
        if (have == cap)
            cr_assert((buf = realloc(buf, (cap *= 2) + 1)) != NULL);
        ssize_t n = read(fd, buf + have, cap - have);
        if (n <= 0) {
            closed = n == 0 || errno == ECONNRESET;
            break;
        }
        have += (size_t)n;
    }
    buf[have] = '\0';
    *out = buf;
    *len = have;
    return closed;
}

/* Send req on a new connection; the server must answer exactly `want` and
 * then close the connection. */
static void expect_and_close(const char *req, size_t req_len, const char *want) {
    int fd = dial();
    send_all(fd, req, req_len);
    char *got;
    size_t len;
    bool closed = read_to_close(fd, &got, &len);
    close(fd);
    cr_assert_str_eq(got, want);
    cr_assert(closed, "the server kept the connection open");
    free(got);
}

#define EXPECT_AND_CLOSE(req, want) expect_and_close((req), sizeof(req) - 1, (want))

/* Read exactly strlen(want) bytes and compare. */
static void expect_exactly(int fd, const char *want) {
    size_t len = strlen(want);
    char *got = calloc(1, len + 1);
    cr_assert(got);
    cr_assert(t_xfer(fd, got, len, false), "short read; got '%s'", got);
    cr_assert_str_eq(got, want);
    free(got);
}

/* Each test gets its own server (no TestSuite .init/.fini: the TSan
 * build's Criterion shim has none). */
#define HTTP_TEST(name)                                                                              \
    static void name##_body(void);                                                                 \
    Test(http, name) {                                                                            \
        start();                                                                                   \
        name##_body();                                                                             \
        stop();                                                                                    \
    }                                                                                              \
    static void name##_body(void)


HTTP_TEST(pipelined_keepalive_and_close) {
    /* Three requests in one write (a Content-Length body in the middle);
     * the last asks to close. */
    EXPECT_AND_CLOSE("GET / HTTP/1.1\r\nHost: x\r\n\r\n"
                     "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
                     "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                     OK OK OK_CLOSE);
}

HTTP_TEST(keepalive_across_writes) {
    int fd = dial();
    for (int i = 0; i < 3; i++) {
        send_all(fd, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27);
        expect_exactly(fd, OK);
    }
    close(fd);
}

HTTP_TEST(garbage_gets_400_and_close) {
    EXPECT_AND_CLOSE("garbage\r\n\r\n", BAD_REQUEST);
}

HTTP_TEST(negative_content_length_gets_400) {
    EXPECT_AND_CLOSE("POST / HTTP/1.1\r\nContent-Length: -5\r\n\r\n", BAD_REQUEST);
}

/* Both framings at once is how requests are smuggled: refused. */
HTTP_TEST(chunked_with_content_length_gets_400) {
    EXPECT_AND_CLOSE("POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                     BAD_REQUEST);
}

HTTP_TEST(requests_before_a_bad_one_are_answered) {
    EXPECT_AND_CLOSE("GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\nBLAH\r\n\r\nGET / HTTP/1.1\r\n\r\n",
                     OK OK BAD_REQUEST);
}

/* The chunked body is consumed, not parsed as further requests: one answer
 * for the POST, one for the GET behind it. */
HTTP_TEST(chunked_post_answered_once) {
    EXPECT_AND_CLOSE("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "5\r\nhello\r\n3;ext=1\r\nabc\r\n0\r\nTrailer: t\r\n\r\n"
                     "GET / HTTP/1.1\r\nConnection: close\r\n\r\n",
                     OK OK_CLOSE);
}

HTTP_TEST(http10_closes_after_response) {
    EXPECT_AND_CLOSE("GET / HTTP/1.0\r\n\r\n", OK_CLOSE);
}

HTTP_TEST(http10_keepalive_stays_open) {
    int fd = dial();
    for (int i = 0; i < 2; i++) {
        send_all(fd, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 42);
        expect_exactly(fd, OK_KEEP10);
    }
    close(fd);
}

HTTP_TEST(head_has_no_body) {
    EXPECT_AND_CLOSE("HEAD / HTTP/1.1\r\n\r\nHEAD / HTTP/1.1\r\nConnection: close\r\n\r\n",
                     OK_HEAD "HTTP/1.1 200 OK\r\n" HELLO "Connection: close\r\n\r\n");
}

/* A body over the limit (64 KiB) is refused as soon as its length is
 * known; the client, still sending, gets the status before the close. */
HTTP_TEST(big_body_gets_413) {
    size_t body = 100 * 1000;
    char *req = malloc(body + 128);
    cr_assert(req);
    int n = sprintf(req, "POST / HTTP/1.1\r\nContent-Length: %zu\r\n\r\n", body);
    memset(req + n, 'b', body);
    expect_and_close(req, (size_t)n + body, TOO_LARGE);
    free(req);
}

HTTP_TEST(big_chunked_body_gets_413) {
    char chunk[8200];
    int n = sprintf(chunk, "%x\r\n", 8192);
    memset(chunk + n, 'c', 8192);
    memcpy(chunk + n + 8192, "\r\n", 2);
    size_t chunk_len = (size_t)n + 8194, len = 0;
    char *req = malloc(64 + 16 * chunk_len);
    cr_assert(req);
    len += (size_t)sprintf(req, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 16; i++, len += chunk_len) /* 128 KiB */
        memcpy(req + len, chunk, chunk_len);
    expect_and_close(req, len, TOO_LARGE);
    free(req);
}

HTTP_TEST(big_header_gets_431) {
    size_t big = 70 * 1000;
    char *req = malloc(big + 64);
    cr_assert(req);
    int n = sprintf(req, "GET / HTTP/1.1\r\nX-Big: ");
    memset(req + n, 'h', big);
    memcpy(req + n + big, "\r\n\r\n", 4);
    expect_and_close(req, (size_t)n + big + 4, HEAD_TOO_LARGE);
    free(req);
}

HTTP_TEST(many_headers_get_431) {
    char *req = malloc(64 + 2000 * 20);
    cr_assert(req);
    size_t len = (size_t)sprintf(req, "GET / HTTP/1.1\r\n");
    for (int i = 0; i < 2000; i++)
        len += (size_t)sprintf(req + len, "X-H%05d: vvvvvvv\r\n", i);
    len += (size_t)sprintf(req + len, "\r\n");
    expect_and_close(req, len, HEAD_TOO_LARGE);
    free(req);
}

HTTP_TEST(long_url_gets_414) {
    char req[4096];
    int n = sprintf(req, "GET /");
    memset(req + n, 'u', 3000);
    n += 3000;
    n += sprintf(req + n, " HTTP/1.1\r\n\r\n");
    expect_and_close(req, (size_t)n, URI_TOO_LONG);
}

/* More responses than the server buffers between two writes: every
 * request still gets its answer, in order. */
HTTP_TEST(long_pipeline) {
    enum { N = 2000 };
    static const char get[] = "GET / HTTP/1.1\r\n\r\n", last[] = "GET / HTTP/1.1\r\nConnection: close\r\n\r\n";
    char *req = malloc(N * sizeof get + sizeof last), *want = malloc(N * sizeof OK + sizeof OK_CLOSE);
    cr_assert(req && want);
    size_t rl = 0, wl = 0;
    for (int i = 0; i < N; i++) {
        memcpy(req + rl, get, sizeof get - 1), rl += sizeof get - 1;
        memcpy(want + wl, OK, sizeof OK - 1), wl += sizeof OK - 1;
    }
    memcpy(req + rl, last, sizeof last - 1), rl += sizeof last - 1;
    memcpy(want + wl, OK_CLOSE, sizeof OK_CLOSE), wl += sizeof OK_CLOSE - 1;
    expect_and_close(req, rl, want);
    free(req);
    free(want);
}

/* A request arriving one byte per write parses the same. */
HTTP_TEST(byte_at_a_time) {
    static const char req[] = "POST /x?y=1 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                              "2\r\nab\r\n0\r\n\r\nGET / HTTP/1.1\r\nConnection: close\r\n\r\n";
    int fd = dial();
    for (size_t i = 0; i < sizeof req - 1; i++) {
        send_all(fd, req + i, 1);
        usleep(200);
    }
    char *got;
    size_t len;
    bool closed = read_to_close(fd, &got, &len);
    close(fd);
    cr_assert_str_eq(got, OK OK_CLOSE);
    cr_assert(closed);
    free(got);
}

/* curl: two requests over one kept-alive connection. */
HTTP_TEST(curl_keepalive) {
    char cmd[512], buf[256];
    snprintf(cmd, sizeof cmd, "curl -s -w '|%%{num_connects}' http://%s/a http://%s/b", srv.addr, srv.addr);
    FILE *p = popen(cmd, "r");
    cr_assert(p != NULL);
    size_t have = fread(buf, 1, sizeof buf - 1, p);
    buf[have] = '\0';
    cr_assert_eq(pclose(p), 0, "curl failed: %s", buf);
    cr_assert_str_eq(buf, "Hello, World!|1Hello, World!|0");
}

/* "Expect: 100-continue": the client waits for the interim response before
 * sending the body; a body that would be refused gets the refusal instead,
 * and an HTTP/1.0 client never gets a 1xx. */
HTTP_TEST(expect_continue) {
    int fd = dial();
    const char head[] = "POST / HTTP/1.1\r\nContent-Length: 5\r\nEXPECT: 100-Continue\r\n\r\n";
    send_all(fd, head, sizeof head - 1);
    expect_exactly(fd, "HTTP/1.1 100 Continue\r\n\r\n");
    send_all(fd, "hello", 5);
    expect_exactly(fd, OK);
    close(fd);
    EXPECT_AND_CLOSE("POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 100000\r\n\r\n", TOO_LARGE);
    EXPECT_AND_CLOSE("POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi", OK_CLOSE);
    EXPECT_AND_CLOSE("GET / HTTP/1.1\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n", OK_CLOSE);
}
