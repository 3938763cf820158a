/* base.c -- clock, futex, errno access, small utilities. */
#include "base/base.h"

#include <errno.h>
#include <linux/futex.h>
#include <sched.h>
#include <execinfo.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

MOTE_NOINLINE int mote__errno(void) {
    return -errno;
}

int64_t mote__now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t mote__deadline_lax(int64_t timeout) {
    static _Atomic int64_t margin; /* two ticks of the coarse clock, once known */
    if (timeout < 1000000000)
        return mote__deadline(timeout);
    int64_t m = atomic_load_explicit(&margin, memory_order_relaxed);
    struct timespec ts;
    if (!m) {
        clock_getres(CLOCK_MONOTONIC_COARSE, &ts);
        m = 2 * ((int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec) + 1;
        atomic_store_explicit(&margin, m, memory_order_relaxed);
    }
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec + m;
    return timeout > INT64_MAX - now ? -1 : now + timeout; /* too far: forever */
}

uint32_t mote__coarse_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint32_t)((uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000);
}

int64_t mote_now(void) {
    return mote__now();
}

int mote__futex_wait(_Atomic uint32_t *addr, uint32_t expect, int64_t timeout_ns) {
    struct timespec ts, *tsp = NULL;
    if (timeout_ns >= 0) {
        ts.tv_sec = timeout_ns / 1000000000;
        ts.tv_nsec = timeout_ns % 1000000000;
        tsp = &ts;
    }
    long r = syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, expect, tsp, NULL, 0);
    if (r == 0)
        return 0;
    int e = mote__errno();
    return e == -EAGAIN ? 0 : e;
}

void mote__futex_wake(_Atomic uint32_t *addr, int n) {
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

bool mote__spin_while(_Atomic uint32_t *addr, uint32_t val, int64_t ns) {
    int64_t end = 0;
    for (unsigned i = 1;; i++) {
        if (atomic_load_explicit(addr, memory_order_acquire) != val)
            return true;
        mote__cpu_relax();
        /* Yield now and then: with more spinning threads than cores, the
         * thread about to hand us work may be the one waiting for a CPU. */
        if ((i & 15) == 0)
            sched_yield();
        if ((i & 63) == 0) {
            int64_t now = mote__now();
            if (!end)
                end = now + ns;
            else if (now >= end)
                return false;
        }
    }
}

void mote__spin_lock_slow(mote__spinlock *l) {
    for (unsigned i = 1;; i++) {
        while (atomic_load_explicit(&l->v, memory_order_relaxed)) {
            mote__cpu_relax();
            if ((i++ & 63) == 0)
                sched_yield();
        }
        if (!atomic_exchange_explicit(&l->v, 1, memory_order_acquire))
            return;
    }
}

void mote__write_stderr(const char *s) {
    size_t len = strlen(s);
    while (len > 0) {
        ssize_t w = write(2, s, len);
        if (w <= 0)
            return;
        s += w;
        len -= (size_t)w;
    }
}

size_t mote__env_size(const char *name, size_t def) {
    const char *v = getenv(name);
    if (!v || !*v)
        return def;
    char *end;
    unsigned long long x = strtoull(v, &end, 10);
    if (end == v)
        return def;
    if (*end == 'k' || *end == 'K')
        x *= 1024, end++;
    else if (*end == 'm' || *end == 'M')
        x *= 1024 * 1024, end++;
    if (*end != '\0')
        return def;
    return (size_t)x;
}

static void assert_backtrace(void) {
    void *frames[64];
    int n = backtrace(frames, 64);
    mote__write_stderr("backtrace:\n");
    backtrace_symbols_fd(frames, n, 2);
}

void (*mote__assert_where)(char *buf, size_t len);

void mote__assert_fail(const char *file, int line, const char *cond, const char *msg) {
    char buf[512];
    snprintf(buf, sizeof buf, "mote: assertion failed at %s:%d: %s%s%s\n", file, line, cond,
             msg ? "\n  " : "", msg ? msg : "");
    mote__write_stderr(buf);
    if (mote__assert_where) {
        mote__assert_where(buf, sizeof buf);
        mote__write_stderr(buf);
    }
    assert_backtrace();
    abort();
}
