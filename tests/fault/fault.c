/*
 * fault.c -- fault injection by link-time wrapping (-Wl,--wrap=SYMBOL): the
 * calls that the program and libmote.a make to the allocators, mmap and the
 * socket I/O calls go through the __wrap_ functions below, which pass them
 * on (__real_) except the one chosen to fail. libc's own internal calls are
 * not touched, and the library's code paths are unchanged. Works under
 * ASan (its allocator sits behind __real_malloc), so leaks are caught.
 *
 * Environment:
 *   FAULT_ALLOC=N   the N-th allocation call (malloc, calloc, realloc,
 *                   aligned_alloc, posix_memalign, mmap), counted from 1
 *                   over all threads, fails with ENOMEM
 *   FAULT_IO=N      the N-th read/write/recv/send/recvfrom/sendto on a
 *                   socket fails: reads with ECONNRESET, writes with EPIPE
 *   FAULT_COUNT=F   at exit, write "alloc=A io=I failed=K" to file F (the
 *                   counting mode that sizes a sweep)
 * Threads interleave, so the N-th call is not always the same call: a sweep
 * over every N covers every allocation site that a run reaches.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
void *__real_aligned_alloc(size_t a, size_t n);
int __real_posix_memalign(void **p, size_t a, size_t n);
void *__real_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
ssize_t __real_read(int fd, void *buf, size_t n);
ssize_t __real_write(int fd, const void *buf, size_t n);
ssize_t __real_recv(int fd, void *buf, size_t n, int flags);
ssize_t __real_send(int fd, const void *buf, size_t n, int flags);
ssize_t __real_recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *a, socklen_t *al);
ssize_t __real_sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *a, socklen_t al);

static atomic_long n_alloc, n_io, n_failed;
static long fail_alloc = -1, fail_io = -1; /* read once, before threads start */
static const char *count_file;

__attribute__((constructor)) static void fault_init(void) {
    const char *e;
    if ((e = getenv("FAULT_ALLOC")))
        fail_alloc = atol(e);
    if ((e = getenv("FAULT_IO")))
        fail_io = atol(e);
    count_file = getenv("FAULT_COUNT");
}

__attribute__((destructor)) static void fault_report(void) {
    if (!count_file)
        return;
    FILE *f = fopen(count_file, "w");
    if (f) {
        fprintf(f, "alloc=%ld io=%ld failed=%ld\n", atomic_load(&n_alloc), atomic_load(&n_io),
                atomic_load(&n_failed));
        fclose(f);
    }
}

/* True if this allocation call is the one to fail. */
static int alloc_fails(void) {
    if (atomic_fetch_add(&n_alloc, 1) + 1 != fail_alloc)
        return 0;
    atomic_fetch_add(&n_failed, 1);
    return 1;
}

static int is_socket(int fd) {
    struct stat st;
    return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

/* True if this socket I/O call is the one to fail. */
static int io_fails(int fd) {
    if ((fail_io < 0 && !count_file) || !is_socket(fd))
        return 0;
    if (atomic_fetch_add(&n_io, 1) + 1 != fail_io)
        return 0;
    atomic_fetch_add(&n_failed, 1);
    return 1;
}

void *__wrap_malloc(size_t n);
void *__wrap_malloc(size_t n) {
    if (alloc_fails()) {
        errno = ENOMEM;
        return NULL;
    }
    return __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t m);
void *__wrap_calloc(size_t n, size_t m) {
    if (alloc_fails()) {
        errno = ENOMEM;
        return NULL;
    }
    return __real_calloc(n, m);
}

void *__wrap_realloc(void *p, size_t n);
void *__wrap_realloc(void *p, size_t n) {
    if (alloc_fails()) {
        errno = ENOMEM;
        return NULL;
    }
    return __real_realloc(p, n);
}

void *__wrap_aligned_alloc(size_t a, size_t n);
void *__wrap_aligned_alloc(size_t a, size_t n) {
    if (alloc_fails()) {
        errno = ENOMEM;
        return NULL;
    }
    return __real_aligned_alloc(a, n);
}

int __wrap_posix_memalign(void **p, size_t a, size_t n);
int __wrap_posix_memalign(void **p, size_t a, size_t n) {
    if (alloc_fails())
        return ENOMEM;
    return __real_posix_memalign(p, a, n);
}

void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
    if (alloc_fails()) {
        errno = ENOMEM;
        return MAP_FAILED;
    }
    return __real_mmap(addr, len, prot, flags, fd, off);
}

#define FAIL_IO(fd, err)                                                                           \
    do {                                                                                           \
        if (io_fails(fd)) {                                                                        \
            errno = (err);                                                                         \
            return -1;                                                                             \
        }                                                                                          \
    } while (0)

ssize_t __wrap_read(int fd, void *buf, size_t n);
ssize_t __wrap_read(int fd, void *buf, size_t n) {
    FAIL_IO(fd, ECONNRESET);
    return __real_read(fd, buf, n);
}

ssize_t __wrap_write(int fd, const void *buf, size_t n);
ssize_t __wrap_write(int fd, const void *buf, size_t n) {
    FAIL_IO(fd, EPIPE);
    return __real_write(fd, buf, n);
}

ssize_t __wrap_recv(int fd, void *buf, size_t n, int flags);
ssize_t __wrap_recv(int fd, void *buf, size_t n, int flags) {
    FAIL_IO(fd, ECONNRESET);
    return __real_recv(fd, buf, n, flags);
}

ssize_t __wrap_send(int fd, const void *buf, size_t n, int flags);
ssize_t __wrap_send(int fd, const void *buf, size_t n, int flags) {
    FAIL_IO(fd, EPIPE);
    return __real_send(fd, buf, n, flags);
}

ssize_t __wrap_recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *a, socklen_t *al);
ssize_t __wrap_recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *a, socklen_t *al) {
    FAIL_IO(fd, ECONNRESET);
    return __real_recvfrom(fd, buf, n, flags, a, al);
}

ssize_t __wrap_sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *a, socklen_t al);
ssize_t __wrap_sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *a, socklen_t al) {
    FAIL_IO(fd, EPIPE);
    return __real_sendto(fd, buf, n, flags, a, al);
}
