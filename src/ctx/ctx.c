/* ctx.c -- context creation, annotated switches, guarded stacks. */
#include "ctx/ctx.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(MOTE_ASAN)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#if defined(MOTE_TSAN)
#include <sanitizer/tsan_interface.h>
#endif
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define MOTE_HAVE_VALGRIND 1
#endif
#endif

static size_t page_size_cache;
static _Atomic uint64_t stacks_mapped; /* metrics: a syscall goes with each change */

uint64_t mote__stacks_mapped(void) {
    return atomic_load_explicit(&stacks_mapped, memory_order_relaxed);
}

size_t mote__page_size(void) {
    if (!page_size_cache)
        page_size_cache = (size_t)sysconf(_SC_PAGESIZE);
    return page_size_cache;
}

/* A reset stack starts a new TSan fiber: the old one's shadow call stack
 * still holds the frames that were abandoned by the final switch. */
static void fiber_reset(mote__stack *s) {
#if defined(MOTE_TSAN)
    if (s->ctx.fiber)
        __tsan_destroy_fiber(s->ctx.fiber);
    s->ctx.fiber = __tsan_create_fiber(0);
#endif
#if defined(MOTE_ASAN)
    /* Abandoned frames leave their redzones poisoned in ASan's shadow. */
    __asan_unpoison_memory_region(s->ctx.lo, s->ctx.size);
#endif
    (void)s;
}

#ifndef MOTE_USE_UCONTEXT
void mote__ctx_make(mote__stack *s, mote__entry_fn fn, void *arg) {
    fiber_reset(s);
    s->dirty = false;
    uintptr_t top = ((uintptr_t)s->ctx.lo + s->ctx.size) & ~(uintptr_t)15;
#if defined(__x86_64__)
    /* Frame popped by mote__ctx_swap: control words, r15, r14, r13 (arg),
     * r12 (fn), rbx, rbp, return address. After the ret, rsp = top - 16,
     * 16-byte aligned for the trampoline's call. */
    uint64_t *sp = (uint64_t *)(top - 80);
    uint32_t csr = 0x1F80;   /* MXCSR: all exceptions masked */
    uint16_t fcw = 0x037F;   /* x87: default control word */
    memcpy(&sp[0], &csr, 4);
    memcpy((char *)&sp[0] + 4, &fcw, 2);
    sp[1] = 0;               /* r15 */
    sp[2] = 0;               /* r14 */
    sp[3] = (uint64_t)arg;   /* r13 */
    sp[4] = (uint64_t)fn;    /* r12 */
    sp[5] = 0;               /* rbx */
    sp[6] = 0;               /* rbp */
    sp[7] = (uint64_t)mote__ctx_trampoline;
    s->ctx.sp = sp;
#elif defined(__aarch64__)
    uint64_t *sp = (uint64_t *)(top - 176);
    memset(sp, 0, 176);
    sp[0] = (uint64_t)fn;    /* x19 */
    sp[1] = (uint64_t)arg;   /* x20 */
    sp[11] = (uint64_t)mote__ctx_trampoline; /* x30 */
    s->ctx.sp = sp;
#else
#error "no context switch for this architecture: build with -DMOTE_UCONTEXT=ON"
#endif
}

static inline void ctx_swap(mote__ctx *from, mote__ctx *to) {
    mote__ctx_swap(&from->sp, to->sp);
}

/* The frames mote__ctx_swap pushes (see switch_*.S and mote__ctx_make). */
bool mote__ctx_saved_regs(const void *frame, uintptr_t sp, mote__regs *out) {
    uint64_t f[MOTE__CTX_FRAME_SIZE / 8];
    memcpy(f, frame, sizeof f);
    memset(out, 0, sizeof *out);
#if defined(__x86_64__)
    /* control words, r15, r14, r13, r12, rbx, rbp, return address */
    out->r15 = f[1];
    out->r14 = f[2];
    out->r13 = f[3];
    out->r12 = f[4];
    out->rbx = f[5];
    out->fp = f[6];
    out->pc = f[7];
    out->sp = sp + 64; /* after the ret */
#elif defined(__aarch64__)
    /* x19..x28, x29 (fp), x30 (lr), d8..d15, fpcr */
    for (int i = 0; i < 10; i++)
        out->x19_28[i] = f[i];
    out->fp = f[10];
    out->pc = f[11];
    out->sp = sp + 176;
#endif
    return true;
}
#else /* MOTE_USE_UCONTEXT: portable and slow (swapcontext saves the signal mask) */
static void uc_trampoline(unsigned hi_fn, unsigned lo_fn, unsigned hi_arg, unsigned lo_arg) {
    mote__entry_fn fn = (mote__entry_fn)(((uintptr_t)hi_fn << 32) | lo_fn);
    void *arg = (void *)(((uintptr_t)hi_arg << 32) | lo_arg);
    fn(arg);
    abort(); /* unreachable: an entry function never returns */
}

void mote__ctx_make(mote__stack *s, mote__entry_fn fn, void *arg) {
    fiber_reset(s);
    s->dirty = false;
    getcontext(&s->ctx.uc);
    s->ctx.uc.uc_stack.ss_sp = (void *)s->ctx.lo;
    s->ctx.uc.uc_stack.ss_size = s->ctx.size;
    s->ctx.uc.uc_link = NULL;
    uintptr_t f = (uintptr_t)fn, a = (uintptr_t)arg;
    makecontext(&s->ctx.uc, (void (*)(void))uc_trampoline, 4, (unsigned)(f >> 32), (unsigned)f,
                (unsigned)(a >> 32), (unsigned)a);
}

static inline void ctx_swap(mote__ctx *from, mote__ctx *to) {
    swapcontext(&from->uc, &to->uc);
}

bool mote__ctx_saved_regs(const void *frame, uintptr_t sp, mote__regs *out) {
    (void)frame;
    (void)sp;
    memset(out, 0, sizeof *out);
    return false;
}
#endif

void mote__ctx_init_thread(mote__ctx *ctx) {
    memset(ctx, 0, sizeof *ctx);
    pthread_attr_t attr;
    void *lo = NULL;
    size_t size = 0;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        pthread_attr_getstack(&attr, &lo, &size);
        pthread_attr_destroy(&attr);
    }
    ctx->lo = lo;
    ctx->size = size;
#if defined(MOTE_TSAN)
    ctx->fiber = __tsan_get_current_fiber();
#endif
}

void mote__ctx_destroy_thread(mote__ctx *ctx) {
    (void)ctx;
}

void mote__ctx_switch(mote__ctx *from, mote__ctx *to) {
#if defined(MOTE_ASAN)
    __sanitizer_start_switch_fiber(&from->fake_stack, to->lo, to->size);
#endif
#if defined(MOTE_TSAN)
    __tsan_switch_to_fiber(to->fiber, 0);
#endif
    ctx_swap(from, to);
#if defined(MOTE_ASAN)
    __sanitizer_finish_switch_fiber(from->fake_stack, NULL, NULL);
#endif
}

void mote__ctx_switch_final(mote__ctx *from, mote__ctx *to) {
#if defined(MOTE_ASAN)
    /* NULL: the current fiber's fake stack dies with it. */
    __sanitizer_start_switch_fiber(NULL, to->lo, to->size);
#endif
#if defined(MOTE_TSAN)
    __tsan_switch_to_fiber(to->fiber, 0);
#endif
    ctx_swap(from, to);
    abort(); /* nothing resumes a finished context */
}

void mote__ctx_entered(void) {
#if defined(MOTE_ASAN)
    __sanitizer_finish_switch_fiber(NULL, NULL, NULL);
#endif
}

_Static_assert(offsetof(mote__stack, canary) + sizeof(((mote__stack *)0)->canary) == sizeof(mote__stack),
               "the canary must end the header, and so the slot");

/* The header ends the slot: its canary is the slot's last bytes. */
static mote__stack *header_at(char *slot_end) {
    mote__stack *s = (mote__stack *)(void *)(slot_end - sizeof(mote__stack));
    memset(s, 0, offsetof(mote__stack, canary));
    s->dirty = true;
    return s;
}

static void canary_set(mote__stack *s, uint64_t v) {
    for (int i = 0; i < MOTE__CANARY_WORDS; i++)
        atomic_store_explicit(&s->canary[i], v, memory_order_relaxed);
}

static void stack_register(mote__stack *s, char *lo) {
    atomic_fetch_add_explicit(&stacks_mapped, 1, memory_order_relaxed);
    s->ctx.lo = lo;
    s->ctx.size = (size_t)((char *)s - lo);
#if defined(MOTE_HAVE_VALGRIND)
    s->vg_id = VALGRIND_STACK_REGISTER(lo, (char *)s);
#endif
}

/* len bytes of stack memory (page multiple) above a PROT_NONE guard page:
 * two VMAs. Returns the guard page (the mapping's start), NULL on failure.
 * MAP_NORESERVE: stacks cost nothing until touched, and most of each stays
 * untouched. */
static char *map_guarded(size_t len) {
    size_t page = mote__page_size();
    char *map = mmap(NULL, page + len, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (map == MAP_FAILED)
        return NULL;
    if (mprotect(map, page, PROT_NONE) != 0) {
        munmap(map, page + len);
        return NULL;
    }
    return map;
}

mote__stack *mote__stack_new(size_t size) {
    size_t page = mote__page_size();
    size = (size + page - 1) & ~(page - 1);
    char *map = map_guarded(size);
    if (!map)
        return NULL;
    mote__stack *s = header_at(map + page + size);
    s->map = map;
    s->map_size = page + size;
    canary_set(s, MOTE__CANARY); /* unused: nothing sits above a guarded stack */
    stack_register(s, map + page);
    return s;
}

void *mote__arena_map(size_t slot, size_t n, void **guard) {
    char *map = map_guarded(slot * n);
    *guard = map;
    return map ? map + mote__page_size() : NULL;
}

void mote__arena_unmap(void *guard, size_t slot, size_t n) {
    munmap(guard, mote__page_size() + slot * n);
}

mote__stack *mote__stack_carve(void *base, size_t slot, void *guard, bool lowest) {
    char *lo = base;
    mote__stack *s = header_at(lo + slot);
    s->map = guard;
    s->below = lowest ? NULL : (_Atomic uint64_t *)(void *)(lo - sizeof s->canary);
    canary_set(s, MOTE__CANARY);
    stack_register(s, lo);
    return s;
}

void *mote__stack_base(const mote__stack *s) {
    return (void *)s->ctx.lo;
}

void mote__stack_free(mote__stack *s) {
    if (!s)
        return;
#if defined(MOTE_ASAN)
    /* The next stack at this address must not inherit stale poison. */
    __asan_unpoison_memory_region(s->ctx.lo, s->ctx.size);
#endif
#if defined(MOTE_TSAN)
    if (s->ctx.fiber)
        __tsan_destroy_fiber(s->ctx.fiber);
#endif
#if defined(MOTE_HAVE_VALGRIND)
    VALGRIND_STACK_DEREGISTER(s->vg_id);
#endif
    if (s->map_size)
        munmap(s->map, s->map_size);
    atomic_fetch_sub_explicit(&stacks_mapped, 1, memory_order_relaxed);
}

bool mote__stack_guard_hit(const mote__stack *s, const void *addr) {
    const char *a = addr, *g = s->map;
    /* The guard page, and a little below it: a large frame can jump past. */
    return a >= g - 65536 && a < g + mote__page_size();
}
