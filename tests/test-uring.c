/*
 * test-uring.c -- the io_uring backend (MOTE_POLLER=uring): it is used
 * when the kernel allows io_uring and falls back to epoll, silently, when
 * the kernel refuses it (a seccomp filter stands in for a kernel without
 * io_uring or with kernel.io_uring_disabled set); sockets work either way.
 * Tests that need io_uring itself skip where the kernel refuses it.
 */
#include "helpers.h"

#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "io/internal.h"
#include "poll/poller.h"

/* The uring backend, if this build has it. */
static const mote__poller_ops *uring_backend(void) {
    const mote__poller_ops *ops;
    for (unsigned i = 0; (ops = mote__poller_backend(i)) != NULL; i++)
        if (strcmp(ops->name, "uring") == 0)
            return ops;
    return NULL;
}

static uint64_t completed(void) {
    uint64_t s, c;
    mote__uring_counts(&s, &c);
    return c;
}

static uint64_t started(void) {
    uint64_t s, c;
    mote__uring_counts(&s, &c);
    return s;
}

/* The name of the backend that opening the uring backend gives here. */
static const char *uring_opens_as(void) {
    mote__poller *p = NULL;
    cr_assert_eq(uring_backend()->open(&p), 0);
    const char *name = mote__poller_name(p);
    mote__poller_close(p);
    return name;
}

/* Skip unless the uring backend is built and the kernel accepts it. */
static void need_uring(void) {
    if (!uring_backend())
        cr_skip_test("the uring backend is not built (no liburing)");
    if (strcmp(uring_opens_as(), "uring") != 0)
        cr_skip_test("the kernel refuses io_uring");
    setenv("MOTE_POLLER", "uring", 1);
}

/* From here on io_uring_setup fails with err, as on a kernel without
 * io_uring (ENOSYS) or with io_uring disabled (EPERM). */
static void refuse_io_uring(int err) {
#if defined(__x86_64__)
    const unsigned arch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
    const unsigned arch = AUDIT_ARCH_AARCH64;
#endif
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, arch, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (unsigned)err),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {sizeof code / sizeof code[0], code};
    cr_assert_eq(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
    cr_assert_eq(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog), 0, "seccomp: %s", strerror(errno));
    cr_assert_eq(syscall(__NR_io_uring_setup, 4, NULL), -1);
    cr_assert_eq(errno, err);
}

/* ---- Echo over a socket pair, through whichever backend runs ---- */

typedef struct echo_arg {
    mote_socket *s;
} echo_arg;

static void echo_peer(void *arg) {
    mote_socket *s = ((echo_arg *)arg)->s;
    char buf[256];
    for (;;) {
        int64_t n = mote_socket_read(s, buf, sizeof buf, T_PATIENCE);
        if (n <= 0)
            break;
        T_CHECK_EQ(mote_socket_write_all(s, buf, (size_t)n, T_PATIENCE), 0);
    }
    mote_socket_close(s);
}

/* Main: echo a few messages through a process, then report the backend. */
static int main_echo(void *arg) {
    const char **backend = arg;
    int sv[2];
    T_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    mote_socket *a, *b;
    T_CHECK_EQ(mote_socket_adopt(&a, sv[0]), 0);
    T_CHECK_EQ(mote_socket_adopt(&b, sv[1]), 0);
    echo_arg e = {b};
    T_CHECK_EQ(mote_spawn_fn(NULL, echo_peer, &e, sizeof e), 0);
    for (int i = 0; i < 100; i++) {
        char msg[32], back[32];
        int len = snprintf(msg, sizeof msg, "message %d", i);
        T_CHECK_EQ(mote_socket_write_all(a, msg, (size_t)len, T_PATIENCE), 0);
        T_CHECK_EQ(mote_socket_read_exact(a, back, (size_t)len, T_PATIENCE), 0);
        T_CHECK(memcmp(msg, back, (size_t)len) == 0);
    }
    *backend = mote__netpoll_backend();
    T_CHECK_EQ(mote_socket_close(a), 0);
    return 0;
}

Test(uring, used_when_the_kernel_allows_it) {
    need_uring();
    const char *backend = NULL;
    T_RUN_OK(NULL, main_echo, &backend);
    cr_assert_str_eq(backend, "uring");
}

/* Refused with ENOSYS (no io_uring) or EPERM (kernel.io_uring_disabled):
 * the poller is epoll's, nothing is printed, and sockets work. */
static void check_fallback(int err) {
    if (!uring_backend())
        cr_skip_test("the uring backend is not built (no liburing)");
    refuse_io_uring(err);
    cr_assert_str_eq(uring_opens_as(), "epoll");
    setenv("MOTE_POLLER", "uring", 1);
    const char *backend = NULL;
    T_RUN_OK(NULL, main_echo, &backend);
    cr_assert_str_eq(backend, "epoll");
}

Test(uring, falls_back_to_epoll_without_io_uring) {
    check_fallback(ENOSYS);
}

Test(uring, falls_back_to_epoll_when_io_uring_is_disabled) {
    check_fallback(EPERM);
}

/* ---- Completions ---- */

/* A connected Unix stream pair as two mote sockets. */
static void socket_pair(mote_socket **a, mote_socket **b) {
    int sv[2];
    T_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    T_CHECK_EQ(mote_socket_adopt(a, sv[0]), 0);
    T_CHECK_EQ(mote_socket_adopt(b, sv[1]), 0);
}

static bool all_bytes(const unsigned char *p, size_t n, unsigned char v) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != v)
            return false;
    return true;
}

typedef struct tcp_arg {
    mote_socket *listener;
    mote_proc *main;
} tcp_arg;

/* Accept one connection, echo it until its end. */
static void tcp_server(void *arg) {
    tcp_arg *a = arg;
    mote_socket *c;
    mote_addr peer;
    T_CHECK_EQ(mote_socket_accept(a->listener, &c, &peer, T_PATIENCE), 0);
    T_CHECK(peer.len > 0);
    char buf[1024];
    int64_t n;
    while ((n = mote_socket_read(c, buf, sizeof buf, T_PATIENCE)) > 0)
        T_CHECK_EQ(mote_socket_write_all(c, buf, (size_t)n, T_PATIENCE), 0);
    T_CHECK_EQ(n, 0);
    T_CHECK(mote__pd_get(mote_socket_fd(c), false) == NULL); /* never polled for readiness */
    T_CHECK_EQ(mote_socket_close(c), 0);
    t_send_i64(a->main, 1);
}

/* Accept, read and write as completions: the server's sockets never get a
 * poll descriptor, and the counter of completions moves. */
static int main_tcp(void *arg) {
    (void)arg;
    mote_socket *l, *c;
    T_CHECK_EQ(mote_tcp_listen(&l, "127.0.0.1:0", 0, false), 0);
    mote_addr a;
    char text[64];
    T_CHECK_EQ(mote_socket_local_addr(l, &a), 0);
    T_CHECK_EQ(mote_addr_format(&a, text, sizeof text), 0);
    uint64_t before = completed();
    tcp_arg ta = {l, mote_self()};
    T_CHECK_EQ(mote_spawn_fn(NULL, tcp_server, &ta, sizeof ta), 0);
    T_CHECK_EQ(mote_tcp_connect(&c, text, T_PATIENCE), 0);
    static char big[300000], back[sizeof big];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (char)(i * 7 + i / 251);
    for (int round = 0; round < 3; round++) {
        T_CHECK_EQ(mote_socket_write_all(c, big, sizeof big, T_PATIENCE), 0);
        memset(back, 0, sizeof back);
        T_CHECK_EQ(mote_socket_read_exact(c, back, sizeof back, T_PATIENCE), 0);
        T_CHECK(memcmp(big, back, sizeof big) == 0);
    }
    T_CHECK_EQ(mote_socket_shutdown(c, SHUT_WR), 0);
    T_CHECK_EQ(t_recv_i64(), 1);
    T_CHECK(completed() > before + 6);
    T_CHECK_EQ(mote_socket_close(c), 0);
    T_CHECK_EQ(mote_socket_close(l), 0);
    return 0;
}

Test(uring, accept_read_and_write_are_completions) {
    need_uring();
    T_RUN_OK(NULL, main_tcp, NULL);
}

typedef struct file_arg {
    const char *path;
    mote_proc *main;
    int index;
} file_arg;

enum { FILE_BLOCK = 8192, FILE_READERS = 32 };

/* Each reader checks its own block with pread, then with seek + read. */
static void file_reader(void *arg) {
    file_arg *a = arg;
    mote_file *f;
    T_CHECK_EQ(mote_file_open(&f, a->path, MOTE_FILE_READ), 0);
    unsigned char buf[FILE_BLOCK];
    T_CHECK_EQ(mote_file_pread(f, buf, sizeof buf, (uint64_t)a->index * FILE_BLOCK), FILE_BLOCK);
    T_CHECK(all_bytes(buf, sizeof buf, (unsigned char)a->index));
    T_CHECK_EQ(mote_file_seek(f, (int64_t)a->index * FILE_BLOCK, SEEK_SET), (int64_t)a->index * FILE_BLOCK);
    memset(buf, 0xff, sizeof buf);
    T_CHECK_EQ(mote_file_read(f, buf, sizeof buf), FILE_BLOCK);
    T_CHECK(all_bytes(buf, sizeof buf, (unsigned char)a->index));
    T_CHECK_EQ(mote_file_close(f), 0);
    t_send_i64(a->main, 1);
}

/* File writes (sequential, positioned) and many concurrent reads, all as
 * completions. */
static int main_files(void *arg) {
    const char *path = arg;
    uint64_t before = completed();
    mote_file *f;
    T_CHECK_EQ(mote_file_open(&f, path, MOTE_FILE_WRITE | MOTE_FILE_CREATE | MOTE_FILE_TRUNCATE), 0);
    unsigned char block[FILE_BLOCK];
    for (int i = 0; i < FILE_READERS; i += 2) { /* even blocks in order... */
        T_CHECK_EQ(mote_file_seek(f, (int64_t)i * FILE_BLOCK, SEEK_SET), (int64_t)i * FILE_BLOCK);
        memset(block, i, sizeof block);
        T_CHECK_EQ(mote_file_write_all(f, block, sizeof block), 0);
    }
    for (int i = 1; i < FILE_READERS; i += 2) { /* ...odd ones at their offsets */
        memset(block, i, sizeof block);
        T_CHECK_EQ(mote_file_pwrite(f, block, sizeof block, (uint64_t)i * FILE_BLOCK), FILE_BLOCK);
    }
    T_CHECK_EQ(mote_file_size(f), FILE_READERS * FILE_BLOCK);
    T_CHECK_EQ(mote_file_close(f), 0);
    for (int i = 0; i < FILE_READERS; i++) {
        file_arg a = {path, mote_self(), i};
        T_CHECK_EQ(mote_spawn_fn(NULL, file_reader, &a, sizeof a), 0);
    }
    for (int i = 0; i < FILE_READERS; i++)
        T_CHECK_EQ(t_recv_i64(), 1);
    /* The writes; the reads found their data cached (RWF_NOWAIT). */
    T_CHECK(completed() >= before + FILE_READERS);
    return 0;
}

Test(uring, file_reads_and_writes_are_completions) {
    need_uring();
    char path[] = "/tmp/mote-test-uring-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    close(fd);
    T_RUN_OK(NULL, main_files, path);
    unlink(path);
}

typedef struct fifo_arg {
    const char *path;
    mote_proc *main;
} fifo_arg;

static void fifo_reader(void *arg) {
    fifo_arg *a = arg;
    mote_file *f;
    T_CHECK_EQ(mote_file_open(&f, a->path, MOTE_FILE_READ | MOTE_FILE_WRITE), 0); /* no open wait */
    t_send_i64(a->main, 0);
    char buf[16] = {0};
    T_CHECK_EQ(mote_file_read(f, buf, sizeof buf), 5);
    T_CHECK(memcmp(buf, "hello", 5) == 0);
    T_CHECK_EQ(mote_file_close(f), 0);
    t_send_i64(a->main, 1);
}

/* A file read with nothing to read yet (a FIFO) is a completion: the
 * process parks and its only worker runs the writer meanwhile. */
static int main_fifo(void *arg) {
    fifo_arg a = {arg, mote_self()};
    uint64_t before = completed(), was = started();
    T_CHECK_EQ(mote_spawn_fn(NULL, fifo_reader, &a, sizeof a), 0);
    T_CHECK_EQ(t_recv_i64(), 0);
    for (int64_t end = mote_now() + T_PATIENCE; started() == was && mote_now() < end;)
        mote_sleep(MOTE_MSEC(1)); /* until the read is in the kernel */
    T_CHECK_EQ(completed(), before);
    mote_file *w;
    T_CHECK_EQ(mote_file_open(&w, a.path, MOTE_FILE_WRITE), 0);
    T_CHECK_EQ(mote_file_write_all(w, "hello", 5), 0);
    T_CHECK_EQ(t_recv_i64(), 1);
    T_CHECK_EQ(mote_file_close(w), 0);
    T_CHECK(completed() >= before + 2); /* the read and the write */
    return 0;
}

Test(uring, a_file_read_that_waits_parks_the_process) {
    need_uring();
    char path[] = "/tmp/mote-test-uring-fifo-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    close(fd);
    unlink(path);
    cr_assert_eq(mkfifo(path, 0600), 0);
    mote_config cfg = {.threads = 1};
    T_RUN_OK(&cfg, main_fifo, path);
    unlink(path);
}

/* A read that times out has been cancelled in the kernel before it
 * returned: data sent afterwards is not written into its buffer (which
 * may by then be anything), it waits in the socket for the next read. */
static int main_timeout_leaves_buffer(void *arg) {
    (void)arg;
    mote_socket *a, *b;
    socket_pair(&a, &b);
    unsigned char *buf = malloc(4096);
    for (int round = 0; round < 20; round++) {
        memset(buf, 0xAA, 4096);
        T_CHECK_EQ(mote_socket_read(a, buf, 4096, MOTE_MSEC(2)), -ETIMEDOUT);
        char msg[16];
        int len = snprintf(msg, sizeof msg, "round %d", round);
        T_CHECK_EQ(mote_socket_write_all(b, msg, (size_t)len, T_PATIENCE), 0);
        mote_sleep(MOTE_MSEC(2)); /* a read still armed would take it now */
        T_CHECK(all_bytes(buf, 4096, 0xAA));
        char got[16] = {0};
        T_CHECK_EQ(mote_socket_read(a, got, sizeof got, T_PATIENCE), len);
        T_CHECK(memcmp(got, msg, (size_t)len) == 0);
    }
    free(buf);
    mote_socket_close(a);
    mote_socket_close(b);
    return 0;
}

Test(uring, a_read_that_timed_out_leaves_its_buffer_alone) {
    need_uring();
    T_RUN_OK(NULL, main_timeout_leaves_buffer, NULL);
}

typedef struct race_arg {
    mote_socket *s;
    mote_proc *main;
    int64_t bytes;
} race_arg;

/* Writes numbered bytes at uneven pauses, then closes its end. */
static void race_writer(void *arg) {
    race_arg *a = arg;
    unsigned seed = 7;
    unsigned char n = 0;
    for (int64_t sent = 0; sent < a->bytes;) {
        unsigned char chunk[64];
        int len = 1 + (int)(rand_r(&seed) % sizeof chunk);
        if (len > a->bytes - sent)
            len = (int)(a->bytes - sent);
        for (int i = 0; i < len; i++)
            chunk[i] = n++;
        T_CHECK_EQ(mote_socket_write_all(a->s, chunk, (size_t)len, T_PATIENCE), 0);
        sent += len;
        if (rand_r(&seed) % 4 == 0)
            mote_sleep(MOTE_USEC(rand_r(&seed) % 300));
    }
    mote_socket_close(a->s);
    t_send_i64(a->main, 1);
}

/* Reads with timeouts so short that they race with the data: a read that
 * gives up must either return what the kernel read before the cancel or
 * leave its buffer untouched, so not a byte is lost, duplicated or
 * written behind a returned call. */
static int main_timeout_races(void *arg) {
    (void)arg;
    mote_socket *a, *b;
    socket_pair(&a, &b);
    race_arg ra = {b, mote_self(), T_SCALE(200000, 40000)};
    T_CHECK_EQ(mote_spawn_fn(NULL, race_writer, &ra, sizeof ra), 0);
    unsigned char expect = 0, buf[128];
    int64_t got = 0, timeouts = 0;
    unsigned seed = 3;
    for (;;) {
        memset(buf, 0x5A, sizeof buf);
        int64_t n = mote_socket_read(a, buf, sizeof buf, MOTE_USEC(1 + rand_r(&seed) % 200));
        if (n == -ETIMEDOUT) {
            timeouts++;
            T_CHECK(all_bytes(buf, sizeof buf, 0x5A));
            continue;
        }
        T_CHECK(n >= 0);
        if (n <= 0)
            break;
        for (int64_t i = 0; i < n; i++)
            if (buf[i] != expect++) {
                T_CHECK(!"a byte lost or out of order");
                n = -1;
                break;
            }
        if (n < 0)
            break;
        got += n;
        T_CHECK(all_bytes(buf + n, sizeof buf - (size_t)n, 0x5A));
    }
    T_CHECK_EQ(got, ra.bytes);
    T_CHECK(timeouts > 0);
    T_CHECK_EQ(t_recv_i64(), 1);
    mote_socket_close(a);
    return 0;
}

Test(uring, reads_racing_their_timeouts_lose_nothing) {
    need_uring();
    T_RUN_OK(NULL, main_timeout_races, NULL);
}

typedef struct closer_arg {
    mote_socket *s;
    mote_proc *main;
    unsigned char *buf;
} closer_arg;

static void blocked_reader(void *arg) {
    closer_arg *a = arg;
    t_send_i64(a->main, 0); /* about to read */
    t_send_i64(a->main, mote_socket_read(a->s, a->buf, 4096, T_PATIENCE));
}

static void blocked_accepter(void *arg) {
    closer_arg *a = arg;
    mote_socket *c = NULL;
    t_send_i64(a->main, 0);
    t_send_i64(a->main, mote_socket_accept(a->s, &c, NULL, T_PATIENCE));
}

/* Closing a socket under a reader (or an accepter) in the kernel cancels
 * the operation: the call returns -EBADF, and the buffer stays as it was. */
static int main_close_cancels(void *arg) {
    (void)arg;
    mote_socket *a, *b, *l;
    socket_pair(&a, &b);
    unsigned char *buf = malloc(4096);
    memset(buf, 0xAA, 4096);
    closer_arg ca = {a, mote_self(), buf};
    T_CHECK_EQ(mote_spawn_fn(NULL, blocked_reader, &ca, sizeof ca), 0);
    T_CHECK_EQ(t_recv_i64(), 0);
    mote_sleep(MOTE_MSEC(5)); /* most likely in the kernel by now; either way it ends */
    T_CHECK_EQ(mote_socket_close(a), 0);
    T_CHECK_EQ(t_recv_i64(), -EBADF);
    T_CHECK(all_bytes(buf, 4096, 0xAA));
    mote_socket_close(b);
    free(buf);

    T_CHECK_EQ(mote_tcp_listen(&l, "127.0.0.1:0", 0, false), 0);
    closer_arg la = {l, mote_self(), NULL};
    T_CHECK_EQ(mote_spawn_fn(NULL, blocked_accepter, &la, sizeof la), 0);
    T_CHECK_EQ(t_recv_i64(), 0);
    mote_sleep(MOTE_MSEC(5));
    T_CHECK_EQ(mote_socket_close(l), 0);
    T_CHECK_EQ(t_recv_i64(), -EBADF);
    return 0;
}

Test(uring, a_close_cancels_reads_and_accepts_in_flight) {
    need_uring();
    T_RUN_OK(NULL, main_close_cancels, NULL);
}

/* An accept that times out returns -ETIMEDOUT; one later still accepts. */
static int main_accept_timeout(void *arg) {
    (void)arg;
    mote_socket *l, *c, *s;
    T_CHECK_EQ(mote_tcp_listen(&l, "127.0.0.1:0", 0, false), 0);
    T_CHECK_EQ(mote_socket_accept(l, &s, NULL, MOTE_MSEC(5)), -ETIMEDOUT);
    mote_addr a;
    char text[64];
    T_CHECK_EQ(mote_socket_local_addr(l, &a), 0);
    T_CHECK_EQ(mote_addr_format(&a, text, sizeof text), 0);
    T_CHECK_EQ(mote_tcp_connect(&c, text, T_PATIENCE), 0);
    T_CHECK_EQ(mote_socket_accept(l, &s, NULL, T_PATIENCE), 0);
    T_CHECK_EQ(mote_socket_write_all(c, "hi", 2, T_PATIENCE), 0);
    char got[2];
    T_CHECK_EQ(mote_socket_read_exact(s, got, 2, T_PATIENCE), 0);
    mote_socket_close(s);
    mote_socket_close(c);
    mote_socket_close(l);
    return 0;
}

Test(uring, an_accept_times_out) {
    need_uring();
    T_RUN_OK(NULL, main_accept_timeout, NULL);
}

enum { MANY = T_SCALE(500, 100) };

typedef struct many_arg {
    mote_socket *s;
    mote_proc *main;
    int id;
} many_arg;

/* One side of a pair: sends its id 10 times, reading each echo back. */
static void many_client(void *arg) {
    many_arg *a = arg;
    for (int i = 0; i < 10; i++) {
        int32_t v = a->id * 100 + i, back = -1;
        T_CHECK_EQ(mote_socket_write_all(a->s, &v, sizeof v, T_PATIENCE), 0);
        T_CHECK_EQ(mote_socket_read_exact(a->s, &back, sizeof back, T_PATIENCE), 0);
        T_CHECK_EQ(back, v + 1);
    }
    mote_socket_close(a->s);
    t_send_i64(a->main, 1);
}

static void many_server(void *arg) {
    many_arg *a = arg;
    int32_t v;
    while (mote_socket_read_exact(a->s, &v, sizeof v, T_PATIENCE) == 0) {
        v++;
        T_CHECK_EQ(mote_socket_write_all(a->s, &v, sizeof v, T_PATIENCE), 0);
    }
    mote_socket_close(a->s);
    t_send_i64(a->main, 1);
}

/* Hundreds of processes with reads and writes in flight at once. */
static int main_many(void *arg) {
    (void)arg;
    for (int i = 0; i < MANY; i++) {
        mote_socket *a, *b;
        socket_pair(&a, &b);
        many_arg ca = {a, mote_self(), i}, sa = {b, mote_self(), i};
        T_CHECK_EQ(mote_spawn_fn(NULL, many_server, &sa, sizeof sa), 0);
        T_CHECK_EQ(mote_spawn_fn(NULL, many_client, &ca, sizeof ca), 0);
    }
    for (int i = 0; i < 2 * MANY; i++)
        T_CHECK_EQ(t_recv_i64(), 1);
    return 0;
}

Test(uring, many_operations_at_once) {
    need_uring();
    T_RUN_OK(NULL, main_many, NULL);
}

/* ---- Multishot receives ----
 * A stream socket reads through one multishot receive into provided
 * buffers from its third read on (socket.c); these tests bring a pair
 * there first, then check what reaches the reader. */

/* Two reads that bring data, then a third that arms the multishot. */
static void ms_prime(mote_socket *a, mote_socket *b) {
    for (int i = 0; i < 3; i++) {
        char c = (char)('x' + i), got = 0;
        T_CHECK_EQ(mote_socket_write_all(b, &c, 1, T_PATIENCE), 0);
        T_CHECK_EQ(mote_socket_read(a, &got, 1, T_PATIENCE), 1);
        T_CHECK_EQ(got, c);
    }
    T_CHECK(mote__socket_multishot(a));
}

static unsigned char pattern(size_t i) {
    return (unsigned char)(i * 13 + i / 509);
}

typedef struct bulk_arg {
    mote_socket *s;
    mote_proc *main;
    size_t bytes, chunk;
    bool close;
} bulk_arg;

/* Writes `bytes` of pattern() in `chunk`-byte writes (each its own
 * segment, most likely its own CQE), then maybe closes its end. */
static void bulk_writer(void *arg) {
    bulk_arg *a = arg;
    unsigned char *buf = malloc(a->chunk);
    for (size_t sent = 0; sent < a->bytes;) {
        size_t n = a->bytes - sent < a->chunk ? a->bytes - sent : a->chunk;
        for (size_t i = 0; i < n; i++)
            buf[i] = pattern(sent + i);
        T_CHECK_EQ(mote_socket_write_all(a->s, buf, n, T_PATIENCE), 0);
        sent += n;
    }
    free(buf);
    if (a->close)
        mote_socket_close(a->s);
    t_send_i64(a->main, 1);
}

/* Read until the end of the stream in reads of `cap` bytes, checking
 * every byte; returns how many came. */
static size_t read_pattern(mote_socket *s, size_t cap) {
    unsigned char *buf = malloc(cap);
    size_t got = 0;
    int64_t n;
    while ((n = mote_socket_read(s, buf, cap, T_PATIENCE)) > 0) {
        T_CHECK((size_t)n <= cap);
        for (int64_t i = 0; i < n; i++)
            if (buf[i] != pattern(got + (size_t)i)) {
                T_CHECK(!"a byte lost, duplicated or out of order");
                free(buf);
                return got;
            }
        got += (size_t)n;
    }
    T_CHECK_EQ(n, 0);
    T_CHECK_EQ(mote_socket_read(s, buf, cap, T_PATIENCE), 0); /* and it stays ended */
    free(buf);
    return got;
}

/* Data larger than a provided buffer (16 KiB), read with buffers larger and
 * smaller than one, writes of every size: all of it, in order. */
static int main_ms_large(void *arg) {
    (void)arg;
    static const size_t caps[] = {65536, 1000, 4096, 7};
    for (size_t k = 0; k < sizeof caps / sizeof caps[0]; k++) {
        mote_socket *a, *b;
        socket_pair(&a, &b);
        ms_prime(a, b);
        bulk_arg ba = {b, mote_self(), k == 3 ? 50000 : 1000000, k == 0 ? 65536 : 3000 + 777 * k, true};
        T_CHECK_EQ(mote_spawn_fn(NULL, bulk_writer, &ba, sizeof ba), 0);
        T_CHECK_EQ(read_pattern(a, caps[k]), ba.bytes);
        T_CHECK_EQ(t_recv_i64(), 1);
        mote_socket_close(a);
    }
    return 0;
}

Test(uring, multishot_carries_data_larger_than_a_buffer) {
    need_uring();
    T_RUN_OK(NULL, main_ms_large, NULL);
}

/* Many small messages queue up while nobody reads; a small buffer then
 * takes them apart, in order, and the end of the stream comes after the
 * last of them, not before. */
static int main_ms_small(void *arg) {
    (void)arg;
    mote_socket *a, *b;
    socket_pair(&a, &b);
    ms_prime(a, b);
    bulk_arg ba = {b, mote_self(), 300 * 11, 11, true};
    T_CHECK_EQ(mote_spawn_fn(NULL, bulk_writer, &ba, sizeof ba), 0);
    T_CHECK_EQ(t_recv_i64(), 1); /* all written, and the end too */
    mote_sleep(MOTE_MSEC(20));   /* queued by now, most likely */
    T_CHECK_EQ(read_pattern(a, 3), ba.bytes);
    mote_socket_close(a);
    return 0;
}

Test(uring, multishot_queues_small_messages_then_the_end) {
    need_uring();
    T_RUN_OK(NULL, main_ms_small, NULL);
}

static void ms_active_nop(void *state, mote_socket *s, const void *data, int64_t n) {
    (void)state, (void)s, (void)data, (void)n;
}

/* A read that only tries (timeout 0) takes what is queued first, and says
 * -ETIMEDOUT once nothing is left; a read that waits then gets what comes. */
static int main_ms_try(void *arg) {
    (void)arg;
    mote_socket *a, *b;
    socket_pair(&a, &b);
    ms_prime(a, b);
    T_CHECK_EQ(mote_socket_write_all(b, "hello", 5, T_PATIENCE), 0);
    mote_sleep(MOTE_MSEC(10));
    char got[16] = {0};
    T_CHECK_EQ(mote_socket_read(a, got, sizeof got, 0), 5);
    T_CHECK(memcmp(got, "hello", 5) == 0);
    T_CHECK_EQ(mote_socket_read(a, got, sizeof got, 0), -ETIMEDOUT);
    T_CHECK_EQ(mote_socket_write_all(b, "again", 5, T_PATIENCE), 0);
    T_CHECK_EQ(mote_socket_read(a, got, sizeof got, T_PATIENCE), 5);
    T_CHECK(memcmp(got, "again", 5) == 0);
    /* Its queue is the runtime's: the active mode would not see it. */
    T_CHECK_EQ(mote_socket_activate(a, mote_self(), ms_active_nop), -EBUSY);
    mote_socket_close(a);
    mote_socket_close(b);
    return 0;
}

Test(uring, multishot_zero_timeout_reads_keep_the_order) {
    need_uring();
    T_RUN_OK(NULL, main_ms_try, NULL);
}

/* A read parked on an empty queue times out, or is cancelled, and what
 * arrives after it stays for the next read; a close wakes a parked reader
 * with -EBADF; a socket closed with data queued gives its buffers back
 * (ASan and valgrind see the rest). */
static void ms_parked_reader(void *arg) {
    closer_arg *a = arg;
    t_send_i64(a->main, 0);
    t_send_i64(a->main, mote_socket_read(a->s, a->buf, 4096, T_PATIENCE));
}

static int main_ms_park(void *arg) {
    (void)arg;
    mote_socket *a, *b;
    socket_pair(&a, &b);
    ms_prime(a, b);
    unsigned char *buf = malloc(4096);
    memset(buf, 0xAA, 4096);
    T_CHECK_EQ(mote_socket_read(a, buf, 4096, MOTE_MSEC(3)), -ETIMEDOUT);
    T_CHECK(all_bytes(buf, 4096, 0xAA));
    T_CHECK_EQ(mote_socket_write_all(b, "late", 4, T_PATIENCE), 0);
    T_CHECK_EQ(mote_socket_read(a, buf, 4096, T_PATIENCE), 4);
    T_CHECK(memcmp(buf, "late", 4) == 0);

    /* Cancelled while parked. */
    memset(buf, 0xAA, 4096);
    closer_arg ca = {a, mote_self(), buf};
    mote_proc *r;
    T_CHECK_EQ(mote_spawn_fn(&r, ms_parked_reader, &ca, sizeof ca), 0);
    T_CHECK_EQ(t_recv_i64(), 0);
    mote_sleep(MOTE_MSEC(5));
    T_CHECK_EQ(mote_cancel(r), 0);
    T_CHECK_EQ(t_recv_i64(), -ECANCELED);
    T_CHECK(all_bytes(buf, 4096, 0xAA));
    T_CHECK_EQ(mote_socket_write_all(b, "after", 5, T_PATIENCE), 0);
    T_CHECK_EQ(mote_socket_read(a, buf, 4096, T_PATIENCE), 5);
    T_CHECK(memcmp(buf, "after", 5) == 0);

    /* Closed under a parked reader. */
    T_CHECK_EQ(mote_spawn_fn(NULL, ms_parked_reader, &ca, sizeof ca), 0);
    T_CHECK_EQ(t_recv_i64(), 0);
    mote_sleep(MOTE_MSEC(5));
    T_CHECK_EQ(mote_socket_close(a), 0);
    T_CHECK_EQ(t_recv_i64(), -EBADF);
    mote_socket_close(b);

    /* Closed with data queued and the receive armed. */
    socket_pair(&a, &b);
    ms_prime(a, b);
    for (int i = 0; i < 8; i++)
        T_CHECK_EQ(mote_socket_write_all(b, buf, 4096, T_PATIENCE), 0);
    mote_sleep(MOTE_MSEC(10));
    T_CHECK_EQ(mote_socket_read(a, buf, 100, T_PATIENCE), 100);
    T_CHECK_EQ(mote_socket_close(a), 0);
    mote_socket_close(b);
    free(buf);
    return 0;
}

Test(uring, multishot_timeout_cancel_and_close_while_parked) {
    need_uring();
    T_RUN_OK(NULL, main_ms_park, NULL);
}

/* More sockets hold data than there are provided buffers (512 of 16 KiB;
 * a socket holds up to 64 KiB before its receive stops, 4 buffers or
 * more): receives end with -ENOBUFS, their reads fall back to one-shot
 * receives, and every byte still comes, in order. */
enum { NOBUF_PAIRS = 200, NOBUF_BYTES = 80 * 1024 };

static int main_ms_nobufs(void *arg) {
    (void)arg;
    mote_socket *a[NOBUF_PAIRS], *b[NOBUF_PAIRS];
    uint64_t before = mote__uring_nobufs_ends();
    for (int i = 0; i < NOBUF_PAIRS; i++) {
        socket_pair(&a[i], &b[i]);
        int size = 4 * NOBUF_BYTES;
        T_CHECK_EQ(mote_socket_set_option(b[i], SOL_SOCKET, SO_SNDBUF, size), 0);
        ms_prime(a[i], b[i]);
    }
    unsigned char *chunk = malloc(4096);
    for (size_t off = 0; off < NOBUF_BYTES; off += 4096)
        for (int i = 0; i < NOBUF_PAIRS; i++) {
            for (size_t j = 0; j < 4096; j++)
                chunk[j] = pattern(off + j);
            T_CHECK_EQ(mote_socket_write_all(b[i], chunk, 4096, T_PATIENCE), 0);
        }
    free(chunk);
    mote_sleep(MOTE_MSEC(50));
    T_CHECK(mote__uring_nobufs_ends() > before);
    for (int i = 0; i < NOBUF_PAIRS; i++) {
        mote_socket_close(b[i]);
        T_CHECK_EQ(read_pattern(a[i], i % 2 ? 4096 : 10000), NOBUF_BYTES);
        mote_socket_close(a[i]);
    }
    return 0;
}

Test(uring, multishot_out_of_buffers_falls_back) {
    need_uring();
    T_RUN_OK(NULL, main_ms_nobufs, NULL);
}
