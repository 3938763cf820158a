/*
 * base.h -- the bottom layer: compiler helpers, clock, futex, errno access.
 * Includes nothing of mote's own but the public header.
 *
 * errno and thread-locals: a process can resume on another OS thread after
 * any call that may suspend, and compilers cache the address returned by
 * __errno_location (declared const) across calls. So errno is read only
 * through mote__errno(), which is not inlined, right after the failing
 * syscall and never across a possible switch.
 */
#ifndef MOTE_BASE_H
#define MOTE_BASE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include "mote.h"

#define MOTE_LIKELY(x) __builtin_expect(!!(x), 1)
#define MOTE_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define MOTE_NOINLINE __attribute__((noinline))
#define MOTE_ALWAYS_INLINE inline __attribute__((always_inline))
#define MOTE_HIDDEN __attribute__((visibility("hidden")))
#define MOTE_CACHELINE 64
#define mote__container_of(ptr, type, member) \
    ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* Sanitizer builds (set by CMake, also detected from the compiler). */
#if defined(__SANITIZE_ADDRESS__)
#define MOTE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MOTE_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define MOTE_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MOTE_TSAN 1
#endif
#endif

/*
 * MOTE_ASSERT(cond): an invariant of mote itself -- a state transition that
 * must never happen, a count that must never drop below zero. (A caller's
 * mistake gets an error code instead.) Debug builds (MOTE_DEBUG=1: the
 * CMake option MOTE_DEBUG) check it, and a broken one is fatal, like Go's
 * throw: file:line, the condition, what runs on the thread, a backtrace,
 * abort(). Other builds compile it to nothing: cond is never evaluated (so
 * it must have no side effects), but it still has to compile.
 * MOTE_ASSERT_MSG adds a fixed text saying what went wrong.
 */
#ifndef MOTE_DEBUG
#define MOTE_DEBUG 0
#endif
#if MOTE_DEBUG
#define MOTE_ASSERT_MSG(cond, msg) \
    ((void)(MOTE_LIKELY(cond) || (mote__assert_fail(__FILE__, __LINE__, #cond, msg), 0)))
#else
#define MOTE_ASSERT_MSG(cond, msg) ((void)sizeof(!(cond)))
#endif
#define MOTE_ASSERT(cond) MOTE_ASSERT_MSG(cond, NULL)
_Noreturn void mote__assert_fail(const char *file, int line, const char *cond, const char *msg);
/* Set by the runtime: writes what runs on the calling thread (for a failed
 * assertion's report) into buf. */
extern void (*mote__assert_where)(char *buf, size_t len);

/* Observers (dumps) read plain fields that their owner thread writes,
 * knowing a value may be stale: ThreadSanitizer is told to ignore those
 * reads, between MOTE_RACY_BEGIN() and MOTE_RACY_END(). */
#if defined(MOTE_TSAN)
void AnnotateIgnoreReadsBegin(const char *file, int line);
void AnnotateIgnoreReadsEnd(const char *file, int line);
#define MOTE_RACY_BEGIN() AnnotateIgnoreReadsBegin(__FILE__, __LINE__)
#define MOTE_RACY_END() AnnotateIgnoreReadsEnd(__FILE__, __LINE__)
#else
#define MOTE_RACY_BEGIN() ((void)0)
#define MOTE_RACY_END() ((void)0)
#endif

/* -errno of the last failed libc call on this OS thread. Never inlined. */
int mote__errno(void);

/* Monotonic nanoseconds. */
int64_t mote__now(void);
/* The deadline of a wait of timeout ns from now: -1 (none) for a negative
 * timeout, which means forever. */
static inline int64_t mote__deadline(int64_t timeout) {
    return timeout < 0 ? -1 : mote__now() + timeout;
}
/* Milliseconds on the coarse monotonic clock (cheaper to read; it ticks
 * every 1-4 ms), truncated to 32 bits: differences are right for 49 days. */
uint32_t mote__coarse_ms(void);

/* Futex on a 32-bit word (process-private). timeout_ns < 0 waits forever.
 * Returns 0 when woken or the value differed, -ETIMEDOUT, or -EINTR. */
int mote__futex_wait(_Atomic uint32_t *addr, uint32_t expect, int64_t timeout_ns);
void mote__futex_wake(_Atomic uint32_t *addr, int n);

/*
 * Store-then-load of two different locations (Dekker) is what every wake-up
 * handshake here relies on: "publish that I wait, then look for the event"
 * against "publish the event, then look for a waiter". C11 seq_cst stores
 * and loads already order that, and so does real ARMv8 (STLR then LDAR).
 * qemu-user on an x86 host does not: it turns STLR;LDAR into a plain store
 * and load, which x86 may reorder, and wake-ups get lost. On AArch64 an
 * explicit full fence at these points keeps mote correct there too (and
 * costs one DMB on a path that is about to sleep or wake anyway).
 */
#if defined(__aarch64__)
#define MOTE_STORE_LOAD_FENCE() atomic_thread_fence(memory_order_seq_cst)
#else
#define MOTE_STORE_LOAD_FENCE() ((void)0)
#endif

/* CPU pause hint for spin loops. */
static inline void mote__cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Spin up to ns nanoseconds while *addr == val. Returns true if it changed.
 * Used before a futex sleep: on a VM, waking a sleeping thread costs tens
 * of microseconds, a short spin catches most quick hand-offs. */
bool mote__spin_while(_Atomic uint32_t *addr, uint32_t val, int64_t ns);
#define MOTE_SPIN_NS 50000

/* A lock for critical sections of a few instructions (registry links,
 * free lists): spinning beats a futex sleep there, and it yields the CPU
 * now and then in case the holder was preempted. */
typedef struct mote__spinlock {
    _Atomic int v;
} mote__spinlock;
#define MOTE_SPINLOCK_INIT {0}
void mote__spin_lock_slow(mote__spinlock *l);
static inline void mote__spin_lock(mote__spinlock *l) {
    if (MOTE_LIKELY(!atomic_exchange_explicit(&l->v, 1, memory_order_acquire)))
        return;
    mote__spin_lock_slow(l);
}
static inline void mote__spin_unlock(mote__spinlock *l) {
    atomic_store_explicit(&l->v, 0, memory_order_release);
}

/* Write a whole string to stderr with write(2): usable in signal handlers. */
void mote__write_stderr(const char *s);

/* Integer parsing of environment variables: returns def when unset/bad. */
size_t mote__env_size(const char *name, size_t def);

#endif
