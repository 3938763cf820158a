/* Bad arguments: every public call returns an error for the NULL pointers,
 * NULL handles, bad flags and sizes its header comment rules out, and
 * never crashes. Also the edge values of mote_strerror, mote_sleep and
 * mote_addr_parse. */
#include "helpers.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/un.h>

/* ---- Errors -------------------------------------------------------------- */

Test(args, strerror_takes_any_int) {
    const int codes[] = {INT_MIN, INT_MIN + 1, -100000, -EINVAL, -1, 0, 1, INT_MAX};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        cr_assert(mote_strerror(codes[i]) != NULL);
    cr_assert_str_eq(mote_strerror(INT_MIN), "unknown error");
    cr_assert_str_eq(mote_strerror(-EINVAL), strerror(EINVAL));
}

/* ---- Runtime ------------------------------------------------------------- */

static int main_zero(void *arg) {
    (void)arg;
    return 0;
}

Test(args, run_rejects_bad_config) {
    cr_assert_eq(mote_run(NULL, NULL, NULL), -EINVAL);
    mote_config c = {.threads = 100000};
    cr_assert_eq(mote_run(&c, main_zero, NULL), -EINVAL);
    c = (mote_config){.stack_size = SIZE_MAX};
    cr_assert_eq(mote_run(&c, main_zero, NULL), -EINVAL);
    c = (mote_config){.backup_threads = UINT_MAX};
    cr_assert_eq(mote_run(&c, main_zero, NULL), -EINVAL);
    c = (mote_config){.blocking_threshold = -1};
    cr_assert_eq(mote_run(&c, main_zero, NULL), -EINVAL);
    c = (mote_config){.netpoll_threads = 65};
    cr_assert_eq(mote_run(&c, main_zero, NULL), -EINVAL);
    cr_assert_eq(mote_threads(), 0);
}

/* ---- Outside any runtime -------------------------------------------------- */

static void fn_nop(void *arg) { (void)arg; }

static void active_nop(void *state, mote_socket *s, const void *data, int64_t n) {
    (void)state;
    (void)s;
    (void)data;
    (void)n;
}

static mote_result h_nop(void *state, void *arg) {
    (void)state;
    (void)arg;
    return mote_ok_i(0);
}

Test(args, calls_without_runtime) {
    mote_proc *p = (mote_proc *)1;
    cr_assert_eq(mote_spawn(&p, NULL, 0, NULL), -ESHUTDOWN);
    cr_assert(p == NULL);
    cr_assert_eq(mote_spawn_fn(NULL, fn_nop, NULL, 0), -ESHUTDOWN);
    mote_future *f = (mote_future *)1;
    cr_assert_eq(mote_timer(&f, 0), -ESHUTDOWN);
    cr_assert(f == NULL);
    mote_msg *m = (mote_msg *)1;
    cr_assert_eq(mote_receive(&m, 0), -EPERM);
    cr_assert_eq(mote_on_panic(NULL, NULL), -EPERM);
    cr_assert(mote_self() == NULL);
    cr_assert(mote_self_state() == NULL);
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    cr_assert_eq(mote_fd_wait(sv[0], MOTE_WRITABLE, 0), -ESHUTDOWN);
    cr_assert_eq(mote_fd_wait(sv[0], MOTE_READABLE, MOTE_MSEC(1)), -ESHUTDOWN);
    cr_assert_eq(mote_fd_close(sv[0]), 0);
    cr_assert_eq(mote_fd_close(sv[1]), 0);
    mote_yield(); /* no-op outside a process */
    mote_blocking_begin();
    mote_blocking_end();
}

/* ---- Processes and messages ---------------------------------------------- */

static int main_proc_args(void *arg) {
    (void)arg;
    mote_proc *p = (mote_proc *)1;
    T_CHECK_EQ(mote_spawn(NULL, NULL, 0, NULL), -EINVAL);
    T_CHECK_EQ(mote_spawn(&p, NULL, SIZE_MAX, NULL), -EINVAL);
    T_CHECK(p == NULL);
    T_CHECK_EQ(mote_spawn_fn(&p, NULL, NULL, 0), -EINVAL);
    T_CHECK(p == NULL);
    T_CHECK_EQ(mote_spawn_fn(&p, fn_nop, NULL, 8), -EINVAL);
    T_CHECK_EQ(mote_spawn_fn(&p, fn_nop, "x", SIZE_MAX), -EINVAL);
    T_CHECK(mote_proc_ref(NULL) == NULL);
    mote_proc_release(NULL);
    T_CHECK_EQ(mote_proc_id(NULL), 0);

    mote_proc *q = t_spawn_counter(0);
    int64_t one = 1;
    mote_future *f = (mote_future *)1;
    mote_result res;
    T_CHECK_EQ(mote_cast(NULL, h_nop, NULL, 0), -EINVAL);
    T_CHECK_EQ(mote_cast(q, NULL, NULL, 0), -EINVAL);
    T_CHECK_EQ(mote_cast(q, h_nop, NULL, 8), -EINVAL);
    T_CHECK_EQ(mote_cast(q, h_nop, &one, SIZE_MAX), -EINVAL);
    T_CHECK_EQ(mote_async(q, h_nop, NULL, 0, NULL), -EINVAL);
    T_CHECK_EQ(mote_async(NULL, h_nop, NULL, 0, &f), -EINVAL);
    T_CHECK(f == NULL);
    T_CHECK_EQ(mote_async(q, NULL, NULL, 0, &f), -EINVAL);
    T_CHECK_EQ(mote_async(q, h_nop, NULL, 8, &f), -EINVAL);
    T_CHECK_EQ(mote_call(NULL, h_nop, NULL, 0, &res), -EINVAL);
    T_CHECK_EQ(mote_call(q, NULL, NULL, 0, &res), -EINVAL);
    T_CHECK_EQ(mote_call(q, h_nop, NULL, 8, &res), -EINVAL);
    T_CHECK_EQ(mote_call(mote_self(), h_nop, NULL, 0, &res), -EDEADLK);
    T_CHECK_EQ(mote_call(q, h_nop, NULL, 0, NULL), 0); /* out may be NULL */
    T_CHECK_EQ(mote_send(NULL, &one, sizeof one), -EINVAL);
    T_CHECK_EQ(mote_send(q, NULL, 8), -EINVAL);
    T_CHECK_EQ(mote_send(q, &one, SIZE_MAX), -EINVAL);
    mote_proc_release(q);

    T_CHECK_EQ(mote_receive(NULL, 0), -EINVAL);
    T_CHECK(mote_msg_data(NULL) == NULL);
    T_CHECK_EQ(mote_msg_size(NULL), 0);
    mote_msg_free(NULL);
    return 0;
}

Test(args, processes_and_messages) { T_RUN_OK(NULL, main_proc_args, NULL); }

/* ---- Futures and timers --------------------------------------------------- */

static int main_future_args(void *arg) {
    (void)arg;
    mote_result res;
    T_CHECK_EQ(mote_await(NULL, &res), -EINVAL);
    T_CHECK_EQ(mote_await_for(NULL, 0, &res), -EINVAL);
    T_CHECK(!mote_future_ready(NULL));
    mote_future_drop(NULL);
    T_CHECK_EQ(mote_timer(NULL, 0), -EINVAL);

    mote_future *t = NULL, *ready[1];
    T_CHECK_EQ(mote_timer(&t, MOTE_SEC(100)), 0);
    mote_future *futs[2] = {t, NULL};
    size_t n = 1, zero = 0, two = 2;
    T_CHECK_EQ(mote_poll(NULL, &n, ready, 1, 0), -EINVAL);
    T_CHECK_EQ(mote_poll(futs, NULL, ready, 1, 0), -EINVAL);
    T_CHECK_EQ(mote_poll(futs, &n, NULL, 1, 0), -EINVAL);
    T_CHECK_EQ(mote_poll(futs, &zero, ready, 1, 0), -EINVAL);
    T_CHECK_EQ(mote_poll(futs, &n, ready, 0, 0), -EINVAL);
    T_CHECK_EQ(mote_poll(futs, &two, ready, 1, 0), -EINVAL); /* a NULL future */
    T_CHECK_EQ(mote_poll(futs, &n, ready, 1, 0), -ETIMEDOUT);
    T_CHECK_EQ(n, 1);
    mote_future_drop(t);
    return 0;
}

Test(args, futures_and_timers) { T_RUN_OK(NULL, main_future_args, NULL); }

/* mote_sleep(MOTE_FOREVER) sleeps until the runtime ends, not at once. */
static atomic_int sleep_state; /* 1 asleep, 2 woke up */

static void fn_sleep_forever(void *arg) {
    (void)arg;
    atomic_store(&sleep_state, 1);
    mote_sleep(MOTE_FOREVER);
    atomic_store(&sleep_state, 2);
}

static int main_sleep_forever_then_end(void *arg) {
    (void)arg;
    atomic_store(&sleep_state, 0);
    T_CHECK_EQ(mote_spawn_fn(NULL, fn_sleep_forever, NULL, 0), 0);
    t_wait_at_least(&sleep_state, 1);
    mote_sleep(MOTE_MSEC(50));
    T_CHECK_EQ(atomic_load(&sleep_state), 1); /* still asleep */
    return 0; /* shutdown ends the sleeper without running the rest of it */
}

Test(args, sleep_forever_does_not_return) {
    T_RUN_OK(NULL, main_sleep_forever_then_end, NULL);
    cr_assert_eq(atomic_load(&sleep_state), 1);
}

static int main_sleep_forever(void *arg) {
    main_sleep_forever_then_end(arg);
    mote_sleep(-12345); /* any negative value: the main process never returns */
    return 0;
}

/* The main process sleeping forever: the program has to be killed. */
static void child_main_sleeps_forever(void *arg) {
    (void)arg;
    alarm(2); /* replaces t_child_run's hang guard */
    signal(SIGALRM, SIG_DFL);
    mote_run(NULL, main_sleep_forever, NULL);
    printf("returned\n");
}

Test(args, sleep_forever_in_main_process) {
    t_child c;
    t_child_run(&c, child_main_sleeps_forever, NULL);
    cr_assert(WIFSIGNALED(c.status) && WTERMSIG(c.status) == SIGALRM, "status %#x, out '%s'", c.status,
              c.out);
    t_child_free(&c);
}

/* ---- Descriptors ---------------------------------------------------------- */

static int main_fd_args(void *arg) {
    (void)arg;
    int sv[2];
    T_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    T_CHECK_EQ(mote_fd_wait(-1, MOTE_READABLE, 0), -EBADF);
    T_CHECK_EQ(mote_fd_wait(INT_MAX, MOTE_READABLE, 0), -EBADF);
    T_CHECK_EQ(mote_fd_wait(sv[0], 0, 0), -EINVAL);
    T_CHECK_EQ(mote_fd_wait(sv[0], 4, 0), -EINVAL);
    T_CHECK_EQ(mote_fd_wait(sv[0], -1, 0), -EINVAL);
    T_CHECK_EQ(mote_fd_close(-1), -EBADF);
    T_CHECK_EQ(mote_fd_close(sv[0]), 0);
    T_CHECK_EQ(mote_fd_close(sv[1]), 0);
    T_CHECK_EQ(mote_fd_wait(sv[0], MOTE_READABLE, 0), -EBADF); /* closed */
    return 0;
}

Test(args, descriptors) { T_RUN_OK(NULL, main_fd_args, NULL); }

/* ---- Addresses ------------------------------------------------------------- */

Test(args, addr_parse_port_rules) {
    mote_addr a;
    const char *bad[] = {"1.2.3.4:+80", "1.2.3.4: 80", "1.2.3.4:80 ", "1.2.3.4:-0", "1.2.3.4:-1",
                         "1.2.3.4:",    "1.2.3.4:65536", "1.2.3.4:99999999999999999999",
                         "1.2.3.4:0x50", "1.2.3.4:8a", ":0080", "[::1]:+1", "[::1]: 1", "[::1]:",
                         "[::1]80", "1.2.3.4", "", "unix:", "[::1", "1.2.3.4:80:80"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(mote_addr_parse(&a, bad[i]), -EINVAL, "'%s' accepted", bad[i]);
    const char *good[] = {"1.2.3.4:0080", "1.2.3.4:0", "1.2.3.4:65535", "1.2.3.4:000000000000080",
                          "[::1]:080"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        cr_assert_eq(mote_addr_parse(&a, good[i]), 0, "'%s' refused", good[i]);
    cr_assert_eq(mote_addr_parse(&a, "1.2.3.4:0080"), 0);
    char buf[64];
    cr_assert_eq(mote_addr_format(&a, buf, sizeof buf), 0);
    cr_assert_str_eq(buf, "1.2.3.4:80");
    cr_assert_eq(mote_addr_parse(NULL, "1.2.3.4:1"), -EINVAL);
    cr_assert_eq(mote_addr_parse(&a, NULL), -EINVAL);
}

Test(args, addr_format_checks_len) {
    mote_addr a;
    char buf[256];
    cr_assert_eq(mote_addr_parse(&a, "1.2.3.4:80"), 0);
    cr_assert_eq(mote_addr_format(NULL, buf, sizeof buf), -EINVAL);
    cr_assert_eq(mote_addr_format(&a, NULL, sizeof buf), -EINVAL);
    cr_assert_eq(mote_addr_format(&a, buf, 0), -EINVAL);
    cr_assert_eq(mote_addr_format(&a, buf, 4), -ENOSPC);
    a.len = 4; /* shorter than a sockaddr_in */
    cr_assert_eq(mote_addr_format(&a, buf, sizeof buf), -EINVAL);
    a.len = UINT32_MAX;
    cr_assert_eq(mote_addr_format(&a, buf, sizeof buf), -EINVAL);
    /* A Unix path filling sun_path without a terminator, and a len past
     * the storage: neither reads beyond it. */
    memset(&a, 'x', sizeof a);
    struct sockaddr_un *un = (struct sockaddr_un *)a.storage;
    un->sun_family = AF_UNIX;
    a.len = sizeof *un;
    cr_assert_eq(mote_addr_format(&a, buf, sizeof buf), 0);
    cr_assert_eq(strlen(buf), 5 + sizeof un->sun_path);
    a.len = sizeof a.storage + 1;
    cr_assert_eq(mote_addr_format(&a, buf, sizeof buf), -EINVAL);
    a.len = 0;
    cr_assert_eq(mote_addr_format(&a, buf, sizeof buf), -EINVAL);
}

/* ---- Sockets ---------------------------------------------------------------- */

static int main_socket_args(void *arg) {
    (void)arg;
    mote_socket *s = (mote_socket *)1, *c = NULL;
    mote_addr a;
    char buf[8];
    T_CHECK_EQ(mote_socket_open(NULL, AF_INET, SOCK_STREAM, 0), -EINVAL);
    T_CHECK(mote_socket_open(&s, 12345, SOCK_STREAM, 0) < 0);
    T_CHECK(s == NULL);
    T_CHECK_EQ(mote_socket_adopt(NULL, 0), -EINVAL);
    T_CHECK_EQ(mote_socket_adopt(&s, -1), -EINVAL);
    T_CHECK_EQ(mote_socket_adopt(&s, 1000000), -EBADF);
    /* A regular file is not a socket. */
    char path[] = "/tmp/mote-args-XXXXXX";
    int fd = mkstemp(path);
    T_CHECK(fd >= 0);
    unlink(path);
    T_CHECK_EQ(mote_socket_adopt(&s, fd), -ENOTSOCK);
    T_CHECK(s == NULL);
    int pfd[2];
    T_CHECK_EQ(pipe(pfd), 0);
    T_CHECK_EQ(mote_socket_adopt(&s, pfd[0]), -ENOTSOCK);
    close(pfd[0]);
    close(pfd[1]);
    close(fd); /* still ours after a failed adopt */

    /* NULL handles. */
    T_CHECK_EQ(mote_socket_fd(NULL), -EINVAL);
    T_CHECK_EQ(mote_socket_bind(NULL, &a), -EINVAL);
    T_CHECK_EQ(mote_socket_listen(NULL, 1), -EINVAL);
    T_CHECK_EQ(mote_socket_accept(NULL, &c, NULL, 0), -EINVAL);
    T_CHECK_EQ(mote_socket_connect(NULL, &a, 0), -EINVAL);
    T_CHECK_EQ(mote_socket_read(NULL, buf, 1, 0), -EINVAL);
    T_CHECK_EQ(mote_socket_write(NULL, buf, 1, 0), -EINVAL);
    T_CHECK_EQ(mote_socket_read_exact(NULL, buf, 1, 0), -EINVAL);
    T_CHECK_EQ(mote_socket_write_all(NULL, buf, 1, 0), -EINVAL);
    T_CHECK_EQ(mote_socket_send_to(NULL, buf, 1, NULL, 0), -EINVAL);
    T_CHECK_EQ(mote_socket_recv_from(NULL, buf, 1, NULL, 0), -EINVAL);
    T_CHECK_EQ(mote_socket_shutdown(NULL, SHUT_RDWR), -EINVAL);
    T_CHECK_EQ(mote_socket_local_addr(NULL, &a), -EINVAL);
    T_CHECK_EQ(mote_socket_peer_addr(NULL, &a), -EINVAL);
    T_CHECK_EQ(mote_socket_set_option(NULL, SOL_SOCKET, SO_REUSEADDR, 1), -EINVAL);
    T_CHECK_EQ(mote_socket_close(NULL), -EINVAL);
    T_CHECK_EQ(mote_socket_activate(NULL, mote_self(), active_nop), -EINVAL);
    T_CHECK(mote_socket_stream(NULL).vt == NULL);

    /* NULL out pointers and bad values on a real socket. */
    T_CHECK_EQ(mote_tcp_listen(NULL, "127.0.0.1:0", 0, false), -EINVAL);
    T_CHECK_EQ(mote_tcp_listen(&s, NULL, 0, false), -EINVAL);
    T_CHECK_EQ(mote_tcp_listen(&s, "127.0.0.1:0", -1, false), -EINVAL);
    T_CHECK(s == NULL);
    T_CHECK_EQ(mote_unix_listen(&s, "/tmp/mote-args-never", -5), -EINVAL);
    T_CHECK_EQ(mote_tcp_listen(&s, "127.0.0.1:0", 0, false), 0);
    T_CHECK_EQ(mote_socket_listen(s, -1), -EINVAL);
    T_CHECK_EQ(mote_socket_listen(s, INT_MIN), -EINVAL);
    T_CHECK_EQ(mote_socket_accept(s, NULL, NULL, 0), -EINVAL);
    T_CHECK_EQ(mote_socket_bind(s, NULL), -EINVAL);
    T_CHECK_EQ(mote_socket_connect(s, NULL, 0), -EINVAL);
    T_CHECK_EQ(mote_socket_local_addr(s, NULL), -EINVAL);
    T_CHECK_EQ(mote_socket_peer_addr(s, NULL), -EINVAL);
    T_CHECK_EQ(mote_socket_read(s, NULL, 1, 0), -EINVAL);
    T_CHECK_EQ(mote_socket_write(s, NULL, 1, 0), -EINVAL);
    T_CHECK_EQ(mote_socket_read_exact(s, NULL, 1, 0), -EINVAL);
    T_CHECK_EQ(mote_socket_write_all(s, NULL, 1, 0), -EINVAL);
    T_CHECK_EQ(mote_socket_send_to(s, NULL, 1, NULL, 0), -EINVAL);
    T_CHECK_EQ(mote_socket_recv_from(s, NULL, 1, NULL, 0), -EINVAL);
    T_CHECK_EQ(mote_socket_activate(s, NULL, active_nop), -EINVAL);
    T_CHECK_EQ(mote_socket_activate(s, mote_self(), NULL), -EINVAL);
    T_CHECK_EQ(mote_socket_shutdown(s, 12345), -EINVAL);
    /* Addresses whose len does not fit. */
    T_CHECK_EQ(mote_socket_local_addr(s, &a), 0);
    mote_addr bad = a;
    bad.len = 3;
    T_CHECK_EQ(mote_socket_connect(s, &bad, 0), -EINVAL);
    T_CHECK_EQ(mote_socket_send_to(s, "x", 1, &bad, 0), -EINVAL);
    bad.len = UINT32_MAX;
    T_CHECK_EQ(mote_socket_bind(s, &bad), -EINVAL);
    T_CHECK_EQ(mote_socket_close(s), 0);

    T_CHECK_EQ(mote_tcp_connect(NULL, "127.0.0.1:1", 0), -EINVAL);
    T_CHECK_EQ(mote_tcp_connect(&c, NULL, 0), -EINVAL);
    T_CHECK_EQ(mote_tcp_connect(&c, "no-port", 0), -EINVAL);
    T_CHECK_EQ(mote_udp_bind(NULL, "127.0.0.1:0"), -EINVAL);
    T_CHECK_EQ(mote_udp_bind(&c, NULL), -EINVAL);
    T_CHECK_EQ(mote_udp_bind(&c, "unix:/tmp/x"), -EINVAL);
    T_CHECK_EQ(mote_unix_listen(NULL, "/tmp/x", 0), -EINVAL);
    T_CHECK_EQ(mote_unix_listen(&c, NULL, 0), -EINVAL);
    T_CHECK_EQ(mote_unix_listen(&c, "", 0), -EINVAL);
    char longpath[300];
    memset(longpath, 'p', sizeof longpath - 1);
    longpath[sizeof longpath - 1] = '\0';
    T_CHECK_EQ(mote_unix_listen(&c, longpath, 0), -EINVAL);
    T_CHECK_EQ(mote_unix_connect(NULL, "/tmp/x", 0), -EINVAL);
    T_CHECK_EQ(mote_unix_connect(&c, NULL, 0), -EINVAL);
    T_CHECK_EQ(mote_unix_connect(&c, longpath, 0), -EINVAL);
    T_CHECK_EQ(mote_unix_datagram(NULL, NULL), -EINVAL);
    T_CHECK_EQ(mote_unix_datagram(&c, longpath), -EINVAL);
    T_CHECK(c == NULL);
    return 0;
}

Test(args, sockets) { T_RUN_OK(NULL, main_socket_args, NULL); }

/* ---- Streams ----------------------------------------------------------------- */

static int64_t rd_one(void *obj, void *buf, size_t len, int64_t timeout) {
    (void)obj;
    (void)len;
    (void)timeout;
    *(char *)buf = 'a';
    return 1;
}

Test(args, streams) {
    mote_stream none = {NULL, NULL};
    static const mote_stream_vt rd_only = {rd_one, NULL};
    mote_stream r = {&rd_only, NULL};
    char buf[8];
    const char *line = "x";
    cr_assert_eq(mote_stream_read(none, buf, 1, 0), -EBADF);
    cr_assert_eq(mote_stream_write(none, buf, 1, 0), -EBADF);
    cr_assert_eq(mote_stream_write(r, buf, 1, 0), -EBADF);
    cr_assert_eq(mote_stream_read(r, NULL, 1, 0), -EINVAL);
    cr_assert_eq(mote_stream_read_exact(none, buf, 1, 0), -EBADF);
    cr_assert_eq(mote_stream_read_exact(r, NULL, 1, 0), -EINVAL);
    cr_assert_eq(mote_stream_write_all(r, buf, 1, 0), -EBADF);

    mote_reader *rd = (mote_reader *)1;
    mote_writer *wr = (mote_writer *)1;
    cr_assert_eq(mote_reader_new(NULL, r, 0), -EINVAL);
    cr_assert_eq(mote_reader_new(&rd, none, 0), -EBADF);
    cr_assert(rd == NULL);
    cr_assert_eq(mote_reader_new(&rd, r, SIZE_MAX), -ENOMEM);
    cr_assert_eq(mote_writer_new(NULL, r, 0), -EINVAL);
    cr_assert_eq(mote_writer_new(&wr, r, 0), -EBADF);
    cr_assert(wr == NULL);
    mote_reader_free(NULL);
    mote_writer_free(NULL);
    cr_assert_eq(mote_reader_read(NULL, buf, 1, 0), -EINVAL);
    cr_assert_eq(mote_reader_read_until(NULL, '\n', &line, 0), -EINVAL);
    cr_assert_eq(mote_reader_read_line(NULL, &line, 0), -EINVAL);
    cr_assert_eq(mote_writer_write(NULL, buf, 1, 0), -EINVAL);
    cr_assert_eq(mote_writer_printf(NULL, 0, "%d", 1), -EINVAL);
    cr_assert_eq(mote_writer_flush(NULL, 0), -EINVAL);
    cr_assert_eq(mote_writer_buffered(NULL), 0);

    cr_assert_eq(mote_reader_new(&rd, r, 4), 0);
    cr_assert_eq(mote_reader_read(rd, NULL, 1, 0), -EINVAL);
    cr_assert_eq(mote_reader_read_until(rd, '\n', NULL, 0), -EINVAL);
    cr_assert_eq(mote_reader_read_line(rd, NULL, 0), -EINVAL);
    cr_assert_eq(mote_reader_read_until(rd, '\n', &line, 0), -ENOBUFS);
    cr_assert(line == NULL);
    mote_reader_free(rd);
}

/* ---- Files ---------------------------------------------------------------------- */

Test(args, files) {
    mote_file *f = (mote_file *)1;
    char buf[8];
    mote_file_info info;
    char **names = (char **)1;
    cr_assert_eq(mote_file_open(NULL, "/dev/null", MOTE_FILE_READ), -EINVAL);
    cr_assert_eq(mote_file_open(&f, NULL, MOTE_FILE_READ), -EINVAL);
    cr_assert(f == NULL);
    cr_assert_eq(mote_file_open(&f, "/dev/null", 0), -EINVAL);
    cr_assert_eq(mote_file_open(&f, "/dev/null", 64), -EINVAL);
    cr_assert_eq(mote_file_open(&f, "/dev/null", -1), -EINVAL);
    cr_assert_eq(mote_file_open(&f, "/dev/null", MOTE_FILE_CREATE), -EINVAL);
    cr_assert_eq(mote_file_open(&f, "/dev/null", MOTE_FILE_READ | MOTE_FILE_TRUNCATE), -EINVAL);
    cr_assert_eq(mote_file_close(NULL), -EINVAL);
    cr_assert_eq(mote_file_fd(NULL), -EINVAL);
    cr_assert_eq(mote_file_read(NULL, buf, 1), -EINVAL);
    cr_assert_eq(mote_file_write(NULL, buf, 1), -EINVAL);
    cr_assert_eq(mote_file_write_all(NULL, buf, 1), -EINVAL);
    cr_assert_eq(mote_file_pread(NULL, buf, 1, 0), -EINVAL);
    cr_assert_eq(mote_file_pwrite(NULL, buf, 1, 0), -EINVAL);
    cr_assert_eq(mote_file_seek(NULL, 0, SEEK_SET), -EINVAL);
    cr_assert_eq(mote_file_size(NULL), -EINVAL);
    cr_assert_eq(mote_file_truncate(NULL, 0), -EINVAL);
    cr_assert_eq(mote_file_sync(NULL), -EINVAL);
    cr_assert_eq(mote_file_info_of(NULL, &info), -EINVAL);
    cr_assert_eq(mote_stream_read(mote_file_stream(NULL), buf, 1, 0), -EINVAL);

    cr_assert_eq(mote_file_open(&f, "/dev/null", MOTE_FILE_READ | MOTE_FILE_WRITE), 0);
    cr_assert_eq(mote_file_read(f, NULL, 1), -EINVAL);
    cr_assert_eq(mote_file_write(f, NULL, 1), -EINVAL);
    cr_assert_eq(mote_file_write_all(f, NULL, 1), -EINVAL);
    cr_assert_eq(mote_file_pread(f, NULL, 1, 0), -EINVAL);
    cr_assert_eq(mote_file_pread(f, buf, 1, UINT64_MAX), -EINVAL);
    cr_assert_eq(mote_file_pwrite(f, buf, 1, (uint64_t)INT64_MAX + 1), -EINVAL);
    cr_assert_eq(mote_file_seek(f, 0, 99), -EINVAL);
    cr_assert_eq(mote_file_truncate(f, UINT64_MAX), -EINVAL);
    cr_assert_eq(mote_file_info_of(f, NULL), -EINVAL);
    cr_assert_eq(mote_file_close(f), 0);

    cr_assert_eq(mote_fs_info(NULL, &info), -EINVAL);
    cr_assert_eq(mote_fs_info("/", NULL), -EINVAL);
    cr_assert_eq(mote_fs_remove(NULL), -EINVAL);
    cr_assert_eq(mote_fs_rename(NULL, "/tmp/x"), -EINVAL);
    cr_assert_eq(mote_fs_rename("/tmp/x", NULL), -EINVAL);
    cr_assert_eq(mote_fs_mkdir(NULL, true), -EINVAL);
    cr_assert_eq(mote_fs_list(NULL, &names), -EINVAL);
    cr_assert_eq(mote_fs_list("/", NULL), -EINVAL);
    mote_fs_list_free(NULL);
    cr_assert_eq(mote_fs_copy(NULL, "/tmp/x"), -EINVAL);
    cr_assert_eq(mote_fs_copy("/tmp/x", NULL), -EINVAL);
}
