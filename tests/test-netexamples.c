/*
 * test-netexamples.c -- examples/echo, unix_echo and udp_echo driven by
 * real clients: concurrent byte-exact echo (C clients, socat) and datagrams
 * of every size. http_hello has its own file, test-http.c.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "helpers.h"

Test(netexamples, echo_many_clients) {
    t_echo_many_clients("echo", 32, T_SCALE(100, 20), 4096);
}

/* ---- unix_echo: concurrent socat clients, byte-exact ---------------------- */

/* A file of len pseudo-random bytes from seed. */
static void write_random(const char *path, size_t len, uint32_t seed) {
    FILE *f = fopen(path, "wb");
    cr_assert(f != NULL, "%s", path);
    for (size_t i = 0; i < len; i++) {
        seed = seed * 1103515245u + 12345u;
        fputc((int)(seed >> 16) & 0xff, f);
    }
    fclose(f);
}

static bool same_file(const char *a, const char *b) {
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    bool same = fa && fb;
    while (same) {
        int ca = fgetc(fa), cb = fgetc(fb);
        same = ca == cb;
        if (ca == EOF)
            break;
    }
    if (fa)
        fclose(fa);
    if (fb)
        fclose(fb);
    return same;
}

/* Start unix_echo on path ("@name": abstract) and run 8 socat clients at
 * once through socat_addr (a socat address naming the same socket), each
 * sending a different file and getting it back whole. */
static void unix_echo_with_socat(const char *path, const char *socat_prefix) {
    t_server srv;
    t_server_start(&srv, "unix_echo", path);
    char want[128];
    snprintf(want, sizeof want, "unix:%s", path);
    cr_assert_str_eq(srv.addr, want);
    enum { N = 8 };
    char dir[] = "/tmp/mote-uecho-XXXXXX";
    cr_assert(mkdtemp(dir) != NULL);
    char cmd[4096] = "", in[N][96], out[N][96];
    size_t used = 0;
    for (int i = 0; i < N; i++) {
        snprintf(in[i], sizeof in[i], "%s/in%d", dir, i);
        snprintf(out[i], sizeof out[i], "%s/out%d", dir, i);
        write_random(in[i], 1 + (size_t)i * 40000 + (size_t)i * i * 777, 0x5eedu + (uint32_t)i);
        used += (size_t)snprintf(cmd + used, sizeof cmd - used, "socat -t 10 - %s%s < %s > %s & ", socat_prefix,
                                 path + (path[0] == '@'), in[i], out[i]);
    }
    snprintf(cmd + used, sizeof cmd - used, "wait");
    int st = system(cmd);
    bool ok = true;
    for (int i = 0; i < N; i++) {
        ok = ok && same_file(in[i], out[i]);
        unlink(in[i]);
        unlink(out[i]);
    }
    rmdir(dir);
    t_server_stop(&srv);
    if (path[0] != '@')
        unlink(path);
    cr_assert_eq(st, 0, "socat failed: %d", st);
    cr_assert(ok, "an echoed file differs");
}

Test(netexamples, unix_echo_socat_path) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/mote-uecho-%d.sock", (int)getpid());
    unlink(path);
    unix_echo_with_socat(path, "UNIX-CONNECT:");
}

Test(netexamples, unix_echo_socat_abstract) {
    char path[64];
    snprintf(path, sizeof path, "@mote-uecho-%d", (int)getpid());
    unix_echo_with_socat(path, "ABSTRACT-CONNECT:");
}

/* ---- udp_echo: datagrams of every size come back whole ------------------ */

/* A connected UDP client: it only hears the server's own address. */
static void udp_echo_check(const char *listen_at) {
    t_server srv;
    t_server_start(&srv, "udp_echo", listen_at);
    mote_addr a;
    cr_assert_eq(mote_addr_parse(&a, srv.addr), 0, "%s", srv.addr);
    const struct sockaddr *sa = (const struct sockaddr *)a.storage;
    int fd = socket(sa->sa_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    cr_assert(fd >= 0);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    cr_assert_eq(connect(fd, sa, a.len), 0);
    static char out[60000], in[65536];
    const size_t sizes[] = {0, 1, 2, 100, 1472, 8192, 30000, sizeof out};
    uint32_t seed = 12345;
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        for (int round = 0; round < 3; round++) {
            size_t n = sizes[k];
            for (size_t i = 0; i < n; i++) {
                seed = seed * 1103515245u + 12345u;
                out[i] = (char)(seed >> 16);
            }
            cr_assert_eq(send(fd, out, n, 0), (ssize_t)n);
            ssize_t got = recv(fd, in, sizeof in, 0);
            cr_assert_eq(got, (ssize_t)n, "size %zu: got %zd (%s)", n, got, got < 0 ? strerror(errno) : "");
            cr_assert(memcmp(in, out, n) == 0, "size %zu differs", n);
        }
    }
    close(fd);
    /* socat as a client too. */
    char cmd[256], buf[64] = {0};
    snprintf(cmd, sizeof cmd, "printf 'hello mote' | socat -t 1 - UDP:%s", srv.addr);
    FILE *p = popen(cmd, "r");
    cr_assert(p != NULL);
    size_t have = fread(buf, 1, sizeof buf - 1, p);
    int st = pclose(p);
    t_server_stop(&srv);
    cr_assert_eq(st, 0);
    cr_assert_eq(have, 10);
    cr_assert_str_eq(buf, "hello mote");
}

Test(netexamples, udp_echo_ipv4) { udp_echo_check("127.0.0.1:0"); }

Test(netexamples, udp_echo_ipv6) {
    int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in6 lo = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    bool v6 = fd >= 0 && bind(fd, (struct sockaddr *)&lo, sizeof lo) == 0;
    if (fd >= 0)
        close(fd);
    if (!v6) {
        cr_skip_test("no IPv6 loopback here");
        return;
    }
    udp_echo_check("[::1]:0");
}
