/*
 * test-socket.c -- mote_socket: TCP over IPv4 and IPv6, Unix stream (path
 * and abstract), UDP, timeouts, refused connects, resets, half-close, close
 * under a waiter, no SIGPIPE, addresses.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
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
    if (r == 0 && ((const struct sockaddr *)(const void *)peer.storage)->sa_family != AF_UNIX) {
        int nodelay = 0; /* accepted TCP connections, like connected ones */
        socklen_t len = sizeof nodelay;
        T_CHECK_EQ(getsockopt(mote_socket_fd(c), IPPROTO_TCP, TCP_NODELAY, &nodelay, &len), 0);
        T_CHECK(nodelay);
    }
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

/* ---- Conveniences, timeouts, concurrency ---------------------------------- */

/* Echo one connection until its end, then close it. arg: mote_socket *. */
static void fn_echo_conn(void *arg) {
    mote_socket *c = *(mote_socket **)arg;
    char buf[8192];
    int64_t n;
    while ((n = mote_socket_read(c, buf, sizeof buf, T_PATIENCE)) > 0)
        if (mote_socket_write_all(c, buf, (size_t)n, T_PATIENCE) < 0)
            break;
    /* The end of the stream, or main returned first: shutdown cancels. */
    T_CHECK(n == 0 || n == -ECANCELED);
    mote_socket_close(c);
}

static void close_all(mote_socket **s, int n) {
    for (int i = 0; i < n; i++)
        if (s[i])
            mote_socket_close(s[i]);
}

/* A loopback listener *l, a client *c connected to it and the server end
 * *srv; false (recorded) if any of them failed. */
static bool tcp_pair(mote_socket **l, mote_socket **c, mote_socket **srv) {
    *l = *c = *srv = NULL;
    T_CHECK_EQ(mote_tcp_listen(l, "127.0.0.1:0", 4, false), 0);
    if (!*l)
        return false;
    char where[64];
    local_of(*l, where, sizeof where);
    T_CHECK_EQ(mote_tcp_connect(c, where, T_PATIENCE), 0);
    T_CHECK_EQ(mote_socket_accept(*l, srv, NULL, T_PATIENCE), 0);
    return *c && *srv;
}

/* Every socket mote makes is non-blocking and close-on-exec. */
static void check_fd_flags(const mote_socket *s) {
    int fd = mote_socket_fd(s);
    T_CHECK(fd >= 0);
    T_CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    T_CHECK(fcntl(fd, F_GETFL) & O_NONBLOCK);
}

/* Accept `count` connections on listener, a process each. */
typedef struct accept_arg {
    mote_socket *listener;
    int count;
} accept_arg;

static void fn_accept_n(void *arg) {
    accept_arg *a = arg;
    for (int i = 0; i < a->count; i++) {
        mote_socket *c = NULL;
        int r = mote_socket_accept(a->listener, &c, NULL, T_PATIENCE);
        T_CHECK_EQ(r, 0);
        if (r < 0)
            break;
        T_CHECK_EQ(mote_spawn_fn(NULL, fn_echo_conn, &c, sizeof c), 0);
    }
}

static void spawn_acceptor(mote_socket *l, int count) {
    accept_arg a = {l, count};
    T_CHECK_EQ(mote_spawn_fn(NULL, fn_accept_n, &a, sizeof a), 0);
}

/* SO_REUSEPORT: two listeners share a port and the kernel spreads the
 * connections over both; without the option a third bind is refused. */
typedef struct rp_arg {
    mote_socket *listener;
    atomic_int *total;
    int want;
    mote_proc *report;
} rp_arg;

static void fn_rp_acceptor(void *arg) {
    rp_arg *a = arg;
    int64_t mine = 0, give_up = mote_now() + T_PATIENCE;
    /* Short accepts, so both stop on their own once every connection is
     * in: the listeners are closed only after both have returned. */
    while (atomic_load(a->total) < a->want && mote_now() < give_up) {
        mote_socket *c = NULL;
        int r = mote_socket_accept(a->listener, &c, NULL, MOTE_MSEC(20));
        if (r == 0) {
            mine++;
            atomic_fetch_add(a->total, 1);
            mote_socket_close(c);
        } else if (r != -ETIMEDOUT) {
            T_CHECK_EQ(r, 0);
            break;
        }
    }
    t_send_i64(a->report, mine);
    mote_proc_release(a->report);
}

static int main_reuse_port(void *arg) {
    (void)arg;
    enum { CONNS = 64 };
    mote_socket *l1 = NULL, *l2 = NULL, *l3 = NULL, *c[CONNS] = {0};
    T_CHECK_EQ(mote_tcp_listen(&l1, "127.0.0.1:0", 128, true), 0);
    if (!l1)
        return 0;
    char where[64];
    local_of(l1, where, sizeof where);
    T_CHECK_EQ(mote_tcp_listen(&l2, where, 128, true), 0);
    T_CHECK_EQ(mote_tcp_listen(&l3, where, 128, false), -EADDRINUSE);
    T_CHECK(l3 == NULL);
    if (!l2)
        return 0;
    atomic_int total = 0;
    rp_arg a1 = {l1, &total, CONNS, mote_proc_ref(mote_self())};
    rp_arg a2 = {l2, &total, CONNS, mote_proc_ref(mote_self())};
    T_CHECK_EQ(mote_spawn_fn(NULL, fn_rp_acceptor, &a1, sizeof a1), 0);
    T_CHECK_EQ(mote_spawn_fn(NULL, fn_rp_acceptor, &a2, sizeof a2), 0);
    /* The kernel picks a listener by a hash of the 4-tuple: with 64
     * source ports, one side getting nothing has odds of 2^-63. */
    for (int i = 0; i < CONNS; i++)
        T_CHECK_EQ(mote_tcp_connect(&c[i], where, T_PATIENCE), 0);
    int64_t n1 = t_recv_i64(), n2 = t_recv_i64();
    T_CHECK_EQ(n1 + n2, CONNS);
    T_CHECK(n1 > 0 && n2 > 0);
    close_all(c, CONNS);
    mote_socket_close(l1);
    mote_socket_close(l2);
    return 0;
}
Test(socket, reuse_port_listeners_share_a_port) { T_RUN_OK(NULL, main_reuse_port, NULL); }

/*
 * Connect timeout, loopback only. A listener with backlog 1 that never
 * accepts holds two finished connections in its accept queue; once that
 * is full Linux drops further SYNs (tcp_conn_request: "listen overflow"),
 * so the next connect stays in SYN_SENT until the client retransmits
 * after a second: a 200 ms timeout must end it with -ETIMEDOUT, in about
 * 200 ms. The loop fills the queue whatever its exact depth.
 */
/* A 200 ms timeout ended the call started at t0: not early, not hanging. */
static void check_took_200ms(int64_t t0) {
    int64_t took = mote_now() - t0;
    T_CHECK(took >= MOTE_MSEC(190));
    T_CHECK(took < MOTE_SEC(5));
}

/* Connect with 200 ms timeouts until one fails: it must time out. */
static void fill_until_timeout(mote_socket **held, int max, const char *where, bool unix_path) {
    int r = 0, i;
    int64_t t0 = 0;
    for (i = 0; i < max && r == 0; i++) {
        t0 = mote_now();
        r = unix_path ? mote_unix_connect(&held[i], where, MOTE_MSEC(200))
                      : mote_tcp_connect(&held[i], where, MOTE_MSEC(200));
    }
    T_CHECK(i >= 2); /* the first connection always fits */
    T_CHECK_EQ(r, -ETIMEDOUT);
    check_took_200ms(t0);
}

static int main_connect_timeout(void *arg) {
    (void)arg;
    enum { MAX = 16 };
    mote_socket *l = NULL, *held[MAX] = {0};
    T_CHECK_EQ(mote_tcp_listen(&l, "127.0.0.1:0", 1, false), 0);
    if (!l)
        return 0;
    char where[64];
    local_of(l, where, sizeof where);
    fill_until_timeout(held, MAX, where, false);
    /* The generic call on a socket of our own, the same way. */
    mote_socket *s = NULL;
    mote_addr a;
    T_CHECK_EQ(mote_addr_parse(&a, where), 0);
    T_CHECK_EQ(mote_socket_open(&s, AF_INET, SOCK_STREAM, 0), 0);
    int64_t t0 = mote_now();
    T_CHECK_EQ(mote_socket_connect(s, &a, MOTE_MSEC(200)), -ETIMEDOUT);
    check_took_200ms(t0);
    mote_socket_close(s);
    close_all(held, MAX);
    mote_socket_close(l);
    return 0;
}
Test(socket, connect_timeout_on_a_full_backlog) { T_RUN_OK(NULL, main_connect_timeout, NULL); }

/* A Unix listener with a full backlog makes a non-blocking connect say
 * EAGAIN: the connect times out (it must not report a connection that is
 * not there), and succeeds once the listener makes room. */
static void fn_accept_later(void *arg) {
    mote_socket *l = *(mote_socket **)arg;
    mote_sleep(MOTE_MSEC(100));
    mote_socket *c = NULL;
    T_CHECK_EQ(mote_socket_accept(l, &c, NULL, T_PATIENCE), 0);
    if (c)
        mote_socket_close(c);
}

static int main_unix_connect_full(void *arg) {
    (void)arg;
    enum { MAX = 16 };
    char path[64];
    snprintf(path, sizeof path, "@mote-full-%d", (int)getpid());
    mote_socket *l = NULL, *held[MAX] = {0};
    T_CHECK_EQ(mote_unix_listen(&l, path, 1), 0);
    if (!l)
        return 0;
    fill_until_timeout(held, MAX, path, true);
    T_CHECK_EQ(mote_spawn_fn(NULL, fn_accept_later, &l, sizeof l), 0);
    mote_socket *c = NULL;
    int64_t t0 = mote_now();
    T_CHECK_EQ(mote_unix_connect(&c, path, T_PATIENCE), 0);
    T_CHECK(mote_now() - t0 >= MOTE_MSEC(50)); /* it waited for the room */
    mote_addr peer;
    T_CHECK_EQ(mote_socket_peer_addr(c, &peer), 0); /* really connected */
    close_all(&c, 1);
    close_all(held, MAX);
    mote_socket_close(l);
    return 0;
}
Test(socket, unix_connect_waits_for_a_full_backlog) { T_RUN_OK(NULL, main_unix_connect_full, NULL); }

/* Timeouts leave the socket usable: a read that timed out is followed by
 * one that gets the data; a write that timed out on a full buffer, by one
 * that goes through once the peer reads. */
static void fn_drain(void *arg) {
    srv_arg *a = arg; /* listener: the connection to drain */
    char buf[65536], last = 0;
    int64_t n, total = 0;
    while ((n = mote_socket_read(a->listener, buf, sizeof buf, T_PATIENCE)) > 0) {
        total += n;
        last = buf[n - 1];
    }
    T_CHECK_EQ(n, 0);
    T_CHECK_EQ(last, 'z');
    t_send_i64(a->report, total);
    mote_proc_release(a->report);
}

static int main_timeouts_keep_socket(void *arg) {
    (void)arg;
    mote_socket *l, *c, *srv;
    if (!tcp_pair(&l, &c, &srv))
        return 0;
    char buf[8] = {0};
    T_CHECK_EQ(mote_socket_read(c, buf, sizeof buf, MOTE_MSEC(20)), -ETIMEDOUT);
    T_CHECK_EQ(mote_socket_read_exact(c, buf, 3, MOTE_MSEC(20)), -ETIMEDOUT);
    T_CHECK_EQ(mote_socket_write_all(srv, "abc", 3, T_PATIENCE), 0);
    T_CHECK_EQ(mote_socket_read(c, buf, sizeof buf, T_PATIENCE), 3);
    T_CHECK(memcmp(buf, "abc", 3) == 0);
    /* Small buffers so that a few MiB surely fill them. */
    T_CHECK_EQ(mote_socket_set_option(c, SOL_SOCKET, SO_SNDBUF, 16384), 0);
    T_CHECK_EQ(mote_socket_set_option(srv, SOL_SOCKET, SO_RCVBUF, 16384), 0);
    enum { FILL = 8 << 20 };
    char *big = malloc(FILL);
    T_CHECK(big != NULL);
    if (!big)
        return 0;
    memset(big, 'y', FILL);
    int64_t t0 = mote_now();
    T_CHECK_EQ(mote_socket_write_all(c, big, FILL, MOTE_MSEC(100)), -ETIMEDOUT);
    T_CHECK(mote_now() - t0 < MOTE_SEC(5));
    T_CHECK_EQ(mote_socket_write(c, big, FILL, MOTE_MSEC(20)), -ETIMEDOUT);
    free(big);
    srv_arg a = {srv, mote_proc_ref(mote_self()), 0};
    T_CHECK_EQ(mote_spawn_fn(NULL, fn_drain, &a, sizeof a), 0);
    T_CHECK_EQ(mote_socket_write_all(c, "z", 1, T_PATIENCE), 0);
    T_CHECK_EQ(mote_socket_shutdown(c, SHUT_WR), 0);
    T_CHECK(t_recv_i64() > 1);
    mote_socket_close(c);
    mote_socket_close(srv);
    mote_socket_close(l);
    return 0;
}
Test(socket, timeouts_leave_the_socket_usable) { T_RUN_OK(NULL, main_timeouts_keep_socket, NULL); }

/* Unix datagrams through mote_unix_datagram: named senders can be
 * answered, boundaries are kept, an unbound sender is unnamed. */
static bool addr_eq(const mote_addr *x, const mote_addr *y) {
    return x->len == y->len && memcmp(x->storage, y->storage, x->len) == 0;
}

static void unix_dgram(const char *pa, const char *pb) {
    mote_socket *a = NULL, *b = NULL, *anon = NULL, *dup = NULL;
    T_CHECK_EQ(mote_unix_datagram(&a, pa), 0);
    T_CHECK_EQ(mote_unix_datagram(&b, pb), 0);
    T_CHECK_EQ(mote_unix_datagram(&anon, NULL), 0);
    T_CHECK_EQ(mote_unix_datagram(&dup, pa), -EADDRINUSE);
    T_CHECK(dup == NULL);
    if (!a || !b || !anon)
        return;
    check_fd_flags(a);
    check_fd_flags(anon);
    mote_addr aa, ba, from;
    char text[128], want[128];
    T_CHECK_EQ(mote_socket_local_addr(a, &aa), 0);
    T_CHECK_EQ(mote_socket_local_addr(b, &ba), 0);
    T_CHECK_EQ(mote_addr_format(&aa, text, sizeof text), 0);
    snprintf(want, sizeof want, "unix:%s", pa);
    T_CHECK(strcmp(text, want) == 0);
    char buf[64];
    T_CHECK_EQ(mote_socket_recv_from(b, buf, sizeof buf, &from, MOTE_MSEC(10)), -ETIMEDOUT);
    T_CHECK_EQ(mote_socket_send_to(a, "first", 5, &ba, T_PATIENCE), 5);
    T_CHECK_EQ(mote_socket_send_to(a, "second!", 7, &ba, T_PATIENCE), 7);
    T_CHECK_EQ(mote_socket_recv_from(b, buf, sizeof buf, &from, T_PATIENCE), 5);
    T_CHECK(memcmp(buf, "first", 5) == 0);
    T_CHECK(addr_eq(&from, &aa));
    T_CHECK_EQ(mote_socket_recv_from(b, buf, sizeof buf, &from, T_PATIENCE), 7);
    T_CHECK(memcmp(buf, "second!", 7) == 0);
    T_CHECK_EQ(mote_socket_send_to(b, "reply", 5, &from, T_PATIENCE), 5);
    T_CHECK_EQ(mote_socket_recv_from(a, buf, sizeof buf, &from, T_PATIENCE), 5);
    T_CHECK(memcmp(buf, "reply", 5) == 0);
    T_CHECK(addr_eq(&from, &ba));
    T_CHECK_EQ(mote_socket_send_to(anon, "anon", 4, &aa, T_PATIENCE), 4);
    T_CHECK_EQ(mote_socket_recv_from(a, buf, sizeof buf, &from, T_PATIENCE), 4);
    T_CHECK(memcmp(buf, "anon", 4) == 0);
    T_CHECK(from.len <= sizeof(sa_family_t)); /* unnamed */
    mote_socket_close(a);
    mote_socket_close(b);
    mote_socket_close(anon);
}

static int main_unix_dgram(void *arg) {
    (void)arg;
    char pa[64], pb[64];
    snprintf(pa, sizeof pa, "/tmp/mote-dga-%d", (int)getpid());
    snprintf(pb, sizeof pb, "/tmp/mote-dgb-%d", (int)getpid());
    unlink(pa);
    unlink(pb);
    unix_dgram(pa, pb);
    unlink(pa);
    unlink(pb);
    snprintf(pa, sizeof pa, "@mote-dga-%d", (int)getpid());
    snprintf(pb, sizeof pb, "@mote-dgb-%d", (int)getpid());
    unix_dgram(pa, pb);
    return 0;
}
Test(socket, unix_datagram_path_and_abstract) { T_RUN_OK(NULL, main_unix_dgram, NULL); }

/* UDP through mote_udp_bind, IPv4 and IPv6: sizes from 0 to 60000 bytes
 * arrive whole, from the sender's address, and can be answered. */
static void udp_over(const char *any) {
    mote_socket *u1 = NULL, *u2 = NULL, *u3 = NULL;
    int r = mote_udp_bind(&u1, any);
    if (r == -EAFNOSUPPORT || r == -EADDRNOTAVAIL) {
        fprintf(stderr, "%s unavailable here: %s\n", any, mote_strerror(r));
        return;
    }
    T_CHECK_EQ(r, 0);
    T_CHECK_EQ(mote_udp_bind(&u2, any), 0);
    if (!u1 || !u2)
        return;
    check_fd_flags(u1);
    mote_addr a1, a2, from;
    char a1text[128];
    T_CHECK_EQ(mote_socket_local_addr(u1, &a1), 0);
    T_CHECK_EQ(mote_socket_local_addr(u2, &a2), 0);
    T_CHECK_EQ(mote_addr_format(&a1, a1text, sizeof a1text), 0);
    T_CHECK_EQ(mote_udp_bind(&u3, a1text), -EADDRINUSE);
    T_CHECK(u3 == NULL);
    T_CHECK_EQ(((struct sockaddr *)a1.storage)->sa_family, any[0] == '[' ? AF_INET6 : AF_INET);
    static char out[60000], in[65536];
    for (size_t i = 0; i < sizeof out; i++)
        out[i] = (char)(i * 7 + 3);
    T_CHECK_EQ(mote_socket_recv_from(u1, in, sizeof in, &from, MOTE_MSEC(10)), -ETIMEDOUT);
    const size_t sizes[] = {0, 1, 1400, sizeof out};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        size_t n = sizes[k];
        T_CHECK_EQ(mote_socket_send_to(u2, out, n, &a1, T_PATIENCE), n);
        memset(in, 0, n + 1);
        T_CHECK_EQ(mote_socket_recv_from(u1, in, sizeof in, &from, T_PATIENCE), n);
        T_CHECK(memcmp(in, out, n) == 0);
        T_CHECK(addr_eq(&from, &a2));
        T_CHECK_EQ(mote_socket_send_to(u1, in, n, &from, T_PATIENCE), n);
        T_CHECK_EQ(mote_socket_recv_from(u2, in, sizeof in, &from, T_PATIENCE), n);
        T_CHECK(addr_eq(&from, &a1));
    }
    mote_socket_close(u1);
    mote_socket_close(u2);
}

static int main_udp_bind(void *arg) {
    (void)arg;
    udp_over("127.0.0.1:0");
    udp_over("[::1]:0");
    return 0;
}
Test(socket, udp_bind_ipv4_and_ipv6) { T_RUN_OK(NULL, main_udp_bind, NULL); }

/* Unix stream sockets through mote_unix_listen / mote_unix_connect. */
static void unix_stream(const char *path) {
    mote_socket *l = NULL, *again = NULL, *c = NULL;
    T_CHECK_EQ(mote_unix_listen(&l, path, 8), 0);
    if (!l)
        return;
    check_fd_flags(l);
    T_CHECK_EQ(mote_unix_listen(&again, path, 8), -EADDRINUSE); /* never replaced */
    T_CHECK(again == NULL);
    spawn_acceptor(l, 1);
    T_CHECK_EQ(mote_unix_connect(&c, path, T_PATIENCE), 0);
    if (c) {
        check_fd_flags(c);
        char out[20000], in[20000];
        for (size_t i = 0; i < sizeof out; i++)
            out[i] = (char)(i ^ (i >> 7));
        T_CHECK_EQ(mote_socket_write_all(c, out, sizeof out, T_PATIENCE), 0);
        T_CHECK_EQ(mote_socket_read_exact(c, in, sizeof in, T_PATIENCE), 0);
        T_CHECK(memcmp(in, out, sizeof in) == 0);
        T_CHECK_EQ(mote_socket_shutdown(c, SHUT_WR), 0);
        T_CHECK_EQ(mote_socket_read(c, in, sizeof in, T_PATIENCE), 0); /* the echo ended */
        mote_socket_close(c);
    }
    mote_socket_close(l);
    if (path[0] != '@') { /* the file outlives the listener: nobody answers */
        T_CHECK_EQ(mote_unix_connect(&c, path, T_PATIENCE), -ECONNREFUSED);
        unlink(path);
    }
    T_CHECK_EQ(mote_unix_connect(&c, path, T_PATIENCE), path[0] == '@' ? -ECONNREFUSED : -ENOENT);
    T_CHECK(c == NULL);
}

static int main_unix_stream(void *arg) {
    (void)arg;
    char path[64];
    snprintf(path, sizeof path, "/tmp/mote-us-%d", (int)getpid());
    unlink(path);
    unix_stream(path);
    snprintf(path, sizeof path, "@mote-us-%d", (int)getpid());
    unix_stream(path);
    return 0;
}
Test(socket, unix_listen_and_connect) { T_RUN_OK(NULL, main_unix_stream, NULL); }

Test(socket, conveniences_reject_bad_arguments) {
    mote_socket *s = (mote_socket *)&s;
    char huge[200];
    memset(huge, 'a', sizeof huge - 1);
    huge[sizeof huge - 1] = '\0';
    cr_assert_eq(mote_udp_bind(NULL, "127.0.0.1:0"), -EINVAL);
    cr_assert_eq(mote_udp_bind(&s, NULL), -EINVAL);
    cr_assert(s == NULL);
    cr_assert_eq(mote_udp_bind(&s, "unix:/tmp/x"), -EINVAL);
    cr_assert_eq(mote_udp_bind(&s, "localhost:5"), -EINVAL);
    cr_assert_eq(mote_udp_bind(&s, "1.2.3.4"), -EINVAL);
    const char *paths[] = {NULL, "", huge};
    for (size_t i = 0; i < 3; i++) {
        s = (mote_socket *)&s;
        cr_assert_eq(mote_unix_listen(&s, paths[i], 1), -EINVAL, "%zu", i);
        cr_assert(s == NULL);
        cr_assert_eq(mote_unix_connect(&s, paths[i], 0), -EINVAL, "%zu", i);
        if (paths[i]) /* NULL is an unbound datagram socket */
            cr_assert_eq(mote_unix_datagram(&s, paths[i]), -EINVAL, "%zu", i);
    }
    cr_assert_eq(mote_unix_listen(NULL, "/tmp/x", 1), -EINVAL);
    cr_assert_eq(mote_unix_connect(NULL, "/tmp/x", 0), -EINVAL);
    cr_assert_eq(mote_unix_datagram(NULL, NULL), -EINVAL);
}

/* Closing a socket wakes a process waiting in read or recv_from too, and
 * the descriptor really closes once that call has returned. */
static void fn_wait_in(void *arg) {
    srv_arg *a = arg; /* mode 0: read, 1: recv_from */
    char buf[16];
    mote_addr from;
    t_send_i64(a->report, 0); /* then straight into the call, as fn_acceptor */
    int64_t r = a->mode == 0 ? mote_socket_read(a->listener, buf, sizeof buf, T_PATIENCE)
                             : mote_socket_recv_from(a->listener, buf, sizeof buf, &from, T_PATIENCE);
    t_send_i64(a->report, r);
    mote_proc_release(a->report);
}

static void close_under(mote_socket *s, int mode) {
    srv_arg a = {s, mote_proc_ref(mote_self()), mode};
    T_CHECK_EQ(mote_spawn_fn(NULL, fn_wait_in, &a, sizeof a), 0);
    T_CHECK_EQ(t_recv_i64(), 0);
    mote_sleep(MOTE_MSEC(50)); /* inside the call by now */
    int64_t t0 = mote_now();
    T_CHECK_EQ(mote_socket_close(s), 0);
    T_CHECK_EQ(t_recv_i64(), -EBADF);
    T_CHECK(mote_now() - t0 < MOTE_SEC(5));
}

static int main_close_under_readers(void *arg) {
    (void)arg;
    mote_socket *l, *c, *srv, *u = NULL;
    if (tcp_pair(&l, &c, &srv)) {
        close_under(c, 0);
        char buf[4];
        T_CHECK_EQ(mote_socket_read(srv, buf, sizeof buf, T_PATIENCE), 0); /* the peer sees the end */
        mote_socket_close(srv);
    }
    T_CHECK_EQ(mote_udp_bind(&u, "127.0.0.1:0"), 0);
    if (u)
        close_under(u, 1);
    mote_socket_close(l);
    return 0;
}
Test(socket, close_wakes_waiting_read_and_recv_from) { T_RUN_OK(NULL, main_close_under_readers, NULL); }

/* Many clients at once: each sends pseudo-random data in pieces of
 * pseudo-random size through an echo server and checks every byte. */
enum { MANY_BYTES = 64 * 1024 };

typedef struct many_arg {
    const char *where;
    uint32_t seed;
    mote_proc *report;
} many_arg;

static uint32_t xorshift(uint32_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static void fn_many_client(void *arg) {
    many_arg *a = arg;
    char *out = malloc(MANY_BYTES), *in = malloc(MANY_BYTES);
    mote_socket *c = NULL;
    int ok = 0;
    uint32_t s = a->seed;
    if (out && in && mote_tcp_connect(&c, a->where, T_PATIENCE) == 0) {
        for (size_t i = 0; i < MANY_BYTES; i++)
            out[i] = (char)xorshift(&s);
        size_t off = 0;
        ok = 1;
        while (off < MANY_BYTES && ok) {
            size_t n = 1 + xorshift(&s) % 8192;
            n = n < MANY_BYTES - off ? n : MANY_BYTES - off;
            ok = mote_socket_write_all(c, out + off, n, T_PATIENCE) == 0 &&
                 mote_socket_read_exact(c, in + off, n, T_PATIENCE) == 0;
            off += n;
        }
        ok = ok && memcmp(in, out, MANY_BYTES) == 0;
        /* Wait for the server's end: its process has closed its socket
         * then, so nothing of it is left when main returns. */
        char end;
        ok = ok && mote_socket_shutdown(c, SHUT_WR) == 0 && mote_socket_read(c, &end, 1, T_PATIENCE) == 0;
        mote_socket_close(c);
    }
    free(out);
    free(in);
    t_send_i64(a->report, ok);
    mote_proc_release(a->report);
}

static int main_many_clients(void *arg) {
    (void)arg;
    const int n = T_SCALE(200, 50);
    mote_socket *l = NULL;
    T_CHECK_EQ(mote_tcp_listen(&l, "127.0.0.1:0", 512, false), 0);
    if (!l)
        return 0;
    char where[64];
    local_of(l, where, sizeof where);
    spawn_acceptor(l, n);
    for (int i = 0; i < n; i++) {
        many_arg a = {where, 0x9e3779b9u * (uint32_t)(i + 1), mote_proc_ref(mote_self())};
        T_CHECK_EQ(mote_spawn_fn(NULL, fn_many_client, &a, sizeof a), 0);
    }
    int64_t good = 0;
    for (int i = 0; i < n; i++)
        good += t_recv_i64();
    T_CHECK_EQ(good, n);
    mote_socket_close(l);
    return 0;
}
Test(socket, many_concurrent_clients_byte_exact) { T_RUN_OK(NULL, main_many_clients, NULL); }

/* Writing to a peer that is gone: -EPIPE / -ECONNRESET, and SIGPIPE is not
 * raised at all (a counting handler replaces the SIG_IGN of mote_run, so
 * this fails if a write ever goes out without MSG_NOSIGNAL). */
static atomic_int sigpipes;
static void on_sigpipe(int sig) {
    (void)sig;
    atomic_fetch_add(&sigpipes, 1);
}

static int main_no_sigpipe(void *arg) {
    (void)arg;
    struct sigaction sa = {.sa_handler = on_sigpipe}, old;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGPIPE, &sa, &old);
    /* TCP, peer resets. */
    mote_socket *l, *c, *srv;
    if (tcp_pair(&l, &c, &srv)) {
        struct linger lg = {1, 0};
        setsockopt(mote_socket_fd(srv), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        mote_socket_close(srv); /* RST */
        char buf[4];
        T_CHECK_EQ(mote_socket_read(c, buf, sizeof buf, T_PATIENCE), -ECONNRESET);
        int64_t w = 0;
        for (int i = 0; i < 100 && w >= 0; i++)
            w = mote_socket_write(c, "x", 1, T_PATIENCE);
        T_CHECK(w == -EPIPE || w == -ECONNRESET);
        T_CHECK_EQ(mote_socket_write_all(c, "xy", 2, T_PATIENCE), -EPIPE);
        mote_socket_close(c);
    }
    if (l)
        mote_socket_close(l);
    /* Unix stream, peer closes: the end of the stream, then -EPIPE. */
    int sv[2];
    T_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    mote_socket *u = NULL;
    T_CHECK_EQ(mote_socket_adopt(&u, sv[0]), 0);
    close(sv[1]);
    if (u) {
        char buf[4];
        T_CHECK_EQ(mote_socket_read(u, buf, sizeof buf, T_PATIENCE), 0);
        T_CHECK_EQ(mote_socket_write(u, "x", 1, T_PATIENCE), -EPIPE);
        mote_socket_close(u);
    }
    T_CHECK_EQ(atomic_load(&sigpipes), 0);
    sigaction(SIGPIPE, &old, NULL);
    return 0;
}
Test(socket, peer_gone_errors_without_sigpipe) { T_RUN_OK(NULL, main_no_sigpipe, NULL); }

/* TCP options: connected sockets come with no-delay; keep-alive and others
 * go through mote_socket_set_option and reach the kernel. Accepted sockets
 * are close-on-exec and non-blocking too. */
static int get_opt(const mote_socket *s, int level, int name) {
    int v = -1;
    socklen_t len = sizeof v;
    return getsockopt(mote_socket_fd(s), level, name, &v, &len) == 0 ? v : -1;
}

static int main_tcp_options(void *arg) {
    (void)arg;
    mote_socket *l, *c, *srv;
    if (!tcp_pair(&l, &c, &srv))
        return 0;
    T_CHECK(get_opt(c, IPPROTO_TCP, TCP_NODELAY) != 0);
    T_CHECK_EQ(get_opt(c, SOL_SOCKET, SO_KEEPALIVE), 0);
    T_CHECK_EQ(mote_socket_set_option(c, SOL_SOCKET, SO_KEEPALIVE, 1), 0);
    T_CHECK(get_opt(c, SOL_SOCKET, SO_KEEPALIVE) != 0);
    T_CHECK_EQ(mote_socket_set_option(srv, IPPROTO_TCP, TCP_NODELAY, 1), 0);
    T_CHECK(get_opt(srv, IPPROTO_TCP, TCP_NODELAY) != 0);
    T_CHECK_EQ(mote_socket_set_option(c, SOL_SOCKET, 12345, 1), -ENOPROTOOPT);
    check_fd_flags(srv);
    mote_socket_close(c);
    mote_socket_close(srv);
    mote_socket_close(l);
    return 0;
}
Test(socket, tcp_no_delay_and_keep_alive) { T_RUN_OK(NULL, main_tcp_options, NULL); }
