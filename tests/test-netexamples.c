/*
 * test-netexamples.c -- examples/echo and examples/http_hello driven by
 * real clients: concurrent byte-exact echo, curl with keep-alive, and
 * pipelined requests.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "helpers.h"

static const char *echo_addr;

static void *echo_client(void *arg) {
    uintptr_t id = (uintptr_t)arg;
    int fd = t_dial(echo_addr);
    if (fd < 0)
        return (void *)"connect";
    char out[4096], in[4096];
    for (int r = 0; r < T_SCALE(100, 20); r++) {
        size_t len = 1 + (id * 131 + (size_t)r * 17) % sizeof out;
        for (size_t i = 0; i < len; i++)
            out[i] = (char)(id ^ (size_t)r ^ i);
        if (!t_xfer(fd, out, len, true) || !t_xfer(fd, in, len, false))
            return (void *)"short transfer";
        if (memcmp(in, out, len) != 0)
            return (void *)"differs";
    }
    close(fd);
    return NULL;
}

Test(netexamples, echo_many_clients) {
    t_server srv;
    t_server_start(&srv, "echo", "127.0.0.1:0");
    echo_addr = srv.addr;
    enum { N = 32 };
    pthread_t th[N];
    for (uintptr_t i = 0; i < N; i++)
        th[i] = t_thread(echo_client, (void *)i);
    const char *err = NULL;
    for (int i = 0; i < N; i++) {
        void *r = NULL;
        pthread_join(th[i], &r);
        if (r && !err)
            err = r;
    }
    t_server_stop(&srv);
    cr_assert(err == NULL, "echo client: %s", err ? err : "");
}

static int count(const char *text, const char *needle) {
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

Test(netexamples, http_hello_pipelined_and_keepalive) {
    t_server srv;
    t_server_start(&srv, "http_hello", "127.0.0.1:0");
    /* Three requests in one write; the last asks to close. */
    int fd = t_dial(srv.addr);
    cr_assert(fd >= 0, "connect %s", srv.addr);
    const char req[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
                       "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
                       "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    cr_assert_eq(write(fd, req, sizeof req - 1), (ssize_t)(sizeof req - 1));
    char buf[4096];
    size_t have = 0;
    ssize_t n;
    while ((n = read(fd, buf + have, sizeof buf - 1 - have)) > 0)
        have += (size_t)n;
    buf[have] = '\0';
    close(fd);
    cr_assert_eq(count(buf, "HTTP/1.1 200 OK"), 3, "got:\n%s", buf);
    cr_assert_eq(count(buf, "Hello, World!"), 3);
    /* curl: two requests over one kept-alive connection. */
    char cmd[512];
    snprintf(cmd, sizeof cmd, "curl -s -w '|%%{num_connects}' http://%s/a http://%s/b", srv.addr, srv.addr);
    FILE *p = popen(cmd, "r");
    cr_assert(p != NULL);
    have = fread(buf, 1, sizeof buf - 1, p);
    buf[have] = '\0';
    int st = pclose(p);
    t_server_stop(&srv);
    cr_assert_eq(st, 0, "curl failed: %s", buf);
    cr_assert_str_eq(buf, "Hello, World!|1Hello, World!|0");
}
