/*
 * test-socket.c -- mote_socket: TCP over IPv4 and IPv6, Unix stream (path
 * and abstract), UDP, timeouts, refused connects, resets, half-close, close
 * under a waiter, no SIGPIPE, addresses.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "helpers.h"

enum { BIG = 256 * 1024 };

typedef struct srv_arg {
    mote_socket *listener;
    mote_proc *report;
    int mode; /* 0 echo, 1 reset at once, 2 reply after half-close */
} srv_arg;

static void fn_server(void *arg) {
    srv_arg *a = arg;
    mote_socket *c = NULL;
    mote_addr peer;
    int r = mote_socket_accept(a->listener, &c, &peer, T_PATIENCE);
    T_CHECK_EQ(r, 0);
    if (r == 0 && a->mode == 0) {
        char buf[8192];
        int64_t n;
        while ((n = mote_socket_read(c, buf, sizeof buf, T_PATIENCE)) > 0)
            T_CHECK_EQ(mote_socket_write_all(c, buf, (size_t)n, T_PATIENCE), 0);
    } else if (r == 0 && a->mode == 1) {
        struct linger l = {1, 0}; /* close with RST */
        setsockopt(mote_socket_fd(c), SOL_SOCKET, SO_LINGER, &l, sizeof l);
    } else if (r == 0 && a->mode == 2) {
        char buf[16];
        T_CHECK_EQ(mote_socket_read_exact(c, buf, 5, T_PATIENCE), 0);
        T_CHECK_EQ(mote_socket_read(c, buf, sizeof buf, T_PATIENCE), 0); /* peer shut its side */
        T_CHECK_EQ(mote_socket_write_all(c, "reply", 5, T_PATIENCE), 0);
    }
    if (c)
        mote_socket_close(c);
    t_send_i64(a->report, 1);
    mote_proc_release(a->report);
}

static const char *local_of(mote_socket *s, char *buf, size_t len) {
    mote_addr a;
    T_CHECK_EQ(mote_socket_local_addr(s, &a), 0);
    T_CHECK_EQ(mote_addr_format(&a, buf, len), 0);
    return buf;
}

/* Echo BIG bytes through a server process and check them byte for byte. */
static void echo_roundtrip(const char *listen_at) {
    mote_socket *l = NULL;
    int r = mote_tcp_listen(&l, listen_at, 16, false);
    if (r == -EAFNOSUPPORT || r == -EADDRNOTAVAIL) {
        fprintf(stderr, "%s unavailable here: %s\n", listen_at, mote_strerror(r));
        return;
    }
    T_CHECK_EQ(r, 0);
    if (r)
        return;
    char where[128];
    local_of(l, where, sizeof where);
    srv_arg a = {l, mote_proc_ref(mote_self()), 0};
    T_CHECK_EQ(mote_spawn_fn(NULL, fn_server, &a, sizeof a), 0);
    mote_socket *c = NULL;
    T_CHECK_EQ(mote_tcp_connect(&c, where, T_PATIENCE), 0);
    static char out[BIG], in[BIG];
    for (size_t i = 0; i < BIG; i++)
        out[i] = (char)(i * 31 + 7);
    /* Chunk by chunk: writing everything before reading would deadlock
     * against an echo server once both socket buffers are full. */
    for (size_t off = 0; off < BIG; off += 16384) {
        T_CHECK_EQ(mote_socket_write_all(c, out + off, 16384, T_PATIENCE), 0);
        T_CHECK_EQ(mote_socket_read_exact(c, in + off, 16384, T_PATIENCE), 0);
    }
    T_CHECK(memcmp(in, out, BIG) == 0);
    mote_addr peer;
    char pbuf[128];
    T_CHECK_EQ(mote_socket_peer_addr(c, &peer), 0);
    T_CHECK_EQ(mote_addr_format(&peer, pbuf, sizeof pbuf), 0);
    T_CHECK(strcmp(pbuf, where) == 0);
    mote_socket_close(c);
    T_CHECK_EQ(t_recv_i64(), 1);
    mote_socket_close(l);
}

static int main_echo_v4(void *arg) {
    (void)arg;
    echo_roundtrip("127.0.0.1:0");
    return 0;
}
Test(socket, tcp_ipv4_echo_byte_exact) { T_RUN_OK(NULL, main_echo_v4, NULL); }

static int main_echo_v6(void *arg) {
    (void)arg;
    echo_roundtrip("[::1]:0");
    return 0;
}
Test(socket, tcp_ipv6_echo_byte_exact) { T_RUN_OK(NULL, main_echo_v6, NULL); }

static int main_echo_unix(void *arg) {
    (void)arg;
    char path[64];
    snprintf(path, sizeof path, "unix:/tmp/mote-sock-%d", (int)getpid());
    unlink(path + 5);
    echo_roundtrip(path);
    unlink(path + 5);
    snprintf(path, sizeof path, "unix:@mote-sock-%d", (int)getpid());
    echo_roundtrip(path);
    return 0;
}
Test(socket, unix_stream_path_and_abstract) { T_RUN_OK(NULL, main_echo_unix, NULL); }

/* A port with nobody listening refuses. */
static int main_refused(void *arg) {
    (void)arg;
    mote_socket *l = NULL;
    T_CHECK_EQ(mote_tcp_listen(&l, "127.0.0.1:0", 1, false), 0);
    char where[64];
    local_of(l, where, sizeof where);
    mote_socket_close(l); /* now nothing listens there */
    mote_socket *c = NULL;
    T_CHECK_EQ(mote_tcp_connect(&c, where, T_PATIENCE), -ECONNREFUSED);
    T_CHECK(c == NULL);
    return 0;
}
Test(socket, connect_refused) { T_RUN_OK(NULL, main_refused, NULL); }

/* Reads time out and leave the socket usable; a reset is an error; writes
 * to a closed peer are -EPIPE (or -ECONNRESET), not SIGPIPE. */
static int main_timeout_reset(void *arg) {
    (void)arg;
    mote_socket *l = NULL;
    T_CHECK_EQ(mote_tcp_listen(&l, "127.0.0.1:0", 4, false), 0);
    char where[64];
    local_of(l, where, sizeof where);
    srv_arg a = {l, mote_proc_ref(mote_self()), 1};
    mote_socket *c = NULL;
    T_CHECK_EQ(mote_tcp_connect(&c, where, T_PATIENCE), 0);
    char buf[16];
    T_CHECK_EQ(mote_socket_read(c, buf, sizeof buf, MOTE_MSEC(20)), -ETIMEDOUT);
    T_CHECK_EQ(mote_spawn_fn(NULL, fn_server, &a, sizeof a), 0); /* accepts, then resets */
    T_CHECK_EQ(t_recv_i64(), 1);
    int64_t r = mote_socket_read(c, buf, sizeof buf, T_PATIENCE);
    T_CHECK_EQ(r, -ECONNRESET);
    int64_t w = 0;
    for (int i = 0; i < 100 && w >= 0; i++)
        w = mote_socket_write(c, "x", 1, T_PATIENCE);
    T_CHECK(w == -EPIPE || w == -ECONNRESET);
    mote_socket_close(c);
    mote_socket_close(l);
    return 0;
}
Test(socket, read_timeout_reset_and_no_sigpipe) { T_RUN_OK(NULL, main_timeout_reset, NULL); }

/* Half-close: the client shuts its writing side and still reads the reply. */
static int main_half_close(void *arg) {
    (void)arg;
    mote_socket *l = NULL;
    T_CHECK_EQ(mote_tcp_listen(&l, "127.0.0.1:0", 4, false), 0);
    char where[64];
    local_of(l, where, sizeof where);
    srv_arg a = {l, mote_proc_ref(mote_self()), 2};
    T_CHECK_EQ(mote_spawn_fn(NULL, fn_server, &a, sizeof a), 0);
    mote_socket *c = NULL;
    T_CHECK_EQ(mote_tcp_connect(&c, where, T_PATIENCE), 0);
    T_CHECK_EQ(mote_socket_write_all(c, "hello", 5, T_PATIENCE), 0);
    T_CHECK_EQ(mote_socket_shutdown(c, SHUT_WR), 0);
    char buf[8] = {0};
    T_CHECK_EQ(mote_socket_read_exact(c, buf, 5, T_PATIENCE), 0);
    T_CHECK(memcmp(buf, "reply", 5) == 0);
    T_CHECK_EQ(mote_socket_read_exact(c, buf, 1, T_PATIENCE), -ENODATA);
    T_CHECK_EQ(t_recv_i64(), 1);
    mote_socket_close(c);
    mote_socket_close(l);
    return 0;
}
Test(socket, half_close) { T_RUN_OK(NULL, main_half_close, NULL); }

/* Closing a socket while another process waits in accept wakes it. */
static void fn_acceptor(void *arg) {
    srv_arg *a = arg;
    mote_socket *c = NULL;
    /* Announce, then go straight into accept (no suspension in between):
     * the socket must not be closed before this process is inside a call,
     * since a handle is invalid once mote_socket_close returns. */
    t_send_i64(a->report, 0);
    int r = mote_socket_accept(a->listener, &c, NULL, T_PATIENCE);
    t_send_i64(a->report, r);
    mote_proc_release(a->report);
}

static int main_close_under_waiter(void *arg) {
    (void)arg;
    mote_socket *l = NULL;
    T_CHECK_EQ(mote_tcp_listen(&l, "127.0.0.1:0", 4, false), 0);
    srv_arg a = {l, mote_proc_ref(mote_self()), 0};
    T_CHECK_EQ(mote_spawn_fn(NULL, fn_acceptor, &a, sizeof a), 0);
    T_CHECK_EQ(t_recv_i64(), 0);
    mote_sleep(MOTE_MSEC(50)); /* inside accept by now, even on a loaded machine */
    T_CHECK_EQ(mote_socket_close(l), 0);
    T_CHECK_EQ(t_recv_i64(), -EBADF);
    return 0;
}
Test(socket, close_wakes_a_waiting_accept) { T_RUN_OK(NULL, main_close_under_waiter, NULL); }

/* UDP: send_to / recv_from with a timeout. */
static int main_udp(void *arg) {
    (void)arg;
    mote_addr any;
    T_CHECK_EQ(mote_addr_parse(&any, "127.0.0.1:0"), 0);
    mote_socket *u1 = NULL, *u2 = NULL;
    T_CHECK_EQ(mote_socket_open(&u1, AF_INET, SOCK_DGRAM, 0), 0);
    T_CHECK_EQ(mote_socket_open(&u2, AF_INET, SOCK_DGRAM, 0), 0);
    T_CHECK_EQ(mote_socket_bind(u1, &any), 0);
    T_CHECK_EQ(mote_socket_bind(u2, &any), 0);
    mote_addr a1, a2, from;
    T_CHECK_EQ(mote_socket_local_addr(u1, &a1), 0);
    T_CHECK_EQ(mote_socket_local_addr(u2, &a2), 0);
    char buf[32];
    T_CHECK_EQ(mote_socket_recv_from(u1, buf, sizeof buf, &from, MOTE_MSEC(10)), -ETIMEDOUT);
    T_CHECK_EQ(mote_socket_send_to(u2, "datagram", 8, &a1, T_PATIENCE), 8);
    T_CHECK_EQ(mote_socket_recv_from(u1, buf, sizeof buf, &from, T_PATIENCE), 8);
    T_CHECK(memcmp(buf, "datagram", 8) == 0);
    T_CHECK(from.len == a2.len && memcmp(from.storage, a2.storage, a2.len) == 0);
    mote_socket_close(u1);
    mote_socket_close(u2);
    return 0;
}
Test(socket, udp_send_to_recv_from) { T_RUN_OK(NULL, main_udp, NULL); }

Test(socket, addresses_parse_and_format) {
    const char *good[] = {"127.0.0.1:80", "[::1]:8080", "0.0.0.0:0", "unix:/tmp/x.sock", "unix:@abstract"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        mote_addr a;
        char buf[128];
        cr_assert_eq(mote_addr_parse(&a, good[i]), 0, "%s", good[i]);
        cr_assert_eq(mote_addr_format(&a, buf, sizeof buf), 0);
        cr_assert_str_eq(buf, good[i]);
    }
    const char *bad[] = {"", "127.0.0.1", "127.0.0.1:", "1.2.3.4:70000", "[::1:80", "[::1]80", "unix:", "300.1.1.1:1"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        mote_addr a;
        cr_assert_eq(mote_addr_parse(&a, bad[i]), -EINVAL, "%s", bad[i]);
    }
    cr_assert_eq(mote_addr_parse(NULL, "1.2.3.4:5"), -EINVAL);
    cr_assert_eq(mote_socket_close(NULL), -EINVAL);
    cr_assert_eq(mote_socket_read(NULL, NULL, 0, 0), -EINVAL);
}

/* Host names resolve on a helper thread: "localhost:PORT" connects. */
static int main_localhost(void *arg) {
    (void)arg;
    mote_socket *l = NULL;
    T_CHECK_EQ(mote_tcp_listen(&l, "127.0.0.1:0", 4, false), 0);
    mote_addr a;
    T_CHECK_EQ(mote_socket_local_addr(l, &a), 0);
    char where[64];
    snprintf(where, sizeof where, "localhost:%u", (unsigned)ntohs(((struct sockaddr_in *)a.storage)->sin_port));
    srv_arg sa = {l, mote_proc_ref(mote_self()), 0};
    T_CHECK_EQ(mote_spawn_fn(NULL, fn_server, &sa, sizeof sa), 0);
    mote_socket *c = NULL;
    T_CHECK_EQ(mote_tcp_connect(&c, where, T_PATIENCE), 0);
    char buf[4] = {0};
    T_CHECK_EQ(mote_socket_write_all(c, "ping", 4, T_PATIENCE), 0);
    T_CHECK_EQ(mote_socket_read_exact(c, buf, 4, T_PATIENCE), 0);
    T_CHECK(memcmp(buf, "ping", 4) == 0);
    mote_socket_close(c);
    T_CHECK_EQ(t_recv_i64(), 1);
    mote_socket_close(l);
    T_CHECK_EQ(mote_tcp_connect(&c, "localhost:notaport", T_PATIENCE) < 0, 1);
    T_CHECK(c == NULL);
    return 0;
}
Test(socket, connect_by_host_name) { T_RUN_OK(NULL, main_localhost, NULL); }
