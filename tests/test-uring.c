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
