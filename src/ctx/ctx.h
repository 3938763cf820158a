/*
 * ctx.h -- execution contexts and stacks (layer above base/).
 *
 * A context is a saved stack pointer: mote__ctx_swap() pushes the
 * callee-saved registers and the floating-point control words on the current
 * stack, saves the stack pointer, and pops the same from the target stack.
 * Nothing else is saved: a switch is a function call as far as the compiler
 * knows, so caller-saved registers are already dead.
 *
 * Every switch goes through mote__ctx_switch(), which tells AddressSanitizer,
 * ThreadSanitizer and valgrind that the stack changes; without that they
 * report nonsense.
 *
 * A stack is a slot of stack_size bytes whose header (struct mote__stack)
 * sits at the top, so a stack costs no malloc. Two kinds:
 *
 *   guarded  a mapping of its own with a PROT_NONE guard page below the
 *            slot: two VMAs; an overflow faults at once;
 *   arena    a slot carved from an arena, one mapping of many slots with a
 *            single guard page below the lowest. An overflow runs into the
 *            slot below, whose header ends with a canary: the scheduler
 *            checks it at every switch away from the task (and an overflow
 *            that runs on down faults on the arena's guard page).
 *
 * vm.max_map_count (65530 by default) bounds the VMAs of a process, so
 * guarded stacks are rationed (sched/stack.c) and arenas take the rest.
 */
#ifndef MOTE_CTX_H
#define MOTE_CTX_H

#include "base/base.h"

#ifdef MOTE_USE_UCONTEXT
#include <ucontext.h>
#endif

typedef struct mote__ctx {
#ifdef MOTE_USE_UCONTEXT
    ucontext_t uc;
#else
    void *sp; /* saved stack pointer while not running */
#endif
#if defined(MOTE_ASAN)
    void *fake_stack;
#endif
#if defined(MOTE_TSAN)
    void *fiber;
#endif
    const void *lo; /* lowest usable address of this context's stack */
    size_t size;    /* usable bytes */
} mote__ctx;

/*
 * What a task suspended on a stack waits for: a note on that same stack
 * (in its waiter), which the stack header points to while the task is
 * parked (NULL: nothing said). Read racily by observers (mote_dump, the
 * gdb commands). kind, arg and obj mean what the writer's layer says
 * (proc/future.h: MOTE__WAIT_*).
 */
typedef struct mote__wait_note {
    uint32_t kind;
    int32_t arg;
    uint64_t obj;
    int64_t until; /* deadline (mote__now), -1 none */
} mote__wait_note;

#define MOTE__CANARY_WORDS 8
#define MOTE__CANARY 0x6d6f7465cafe5a5aull /* "mote" + a pattern */

typedef struct mote__stack {
    mote__ctx ctx;
    const mote__wait_note *wait; /* while a task is suspended on this stack */
    struct mote__stack *next, *prev; /* free lists */
    void *map;      /* the guard page an overflow runs into: this mapping's
                     * own, or the arena's (below its lowest slot) */
    size_t map_size; /* the mapping's size; 0 for an arena slot */
    /* The canary an overflow of this stack hits first (the header of the
     * arena slot below), or NULL: a guarded stack, or an arena's lowest
     * slot (right above the guard page). */
    _Atomic uint64_t *below;
    unsigned vg_id; /* valgrind stack id */
    bool dirty;     /* must be reset with mote__ctx_make before use */
    /* Last, so it ends the slot: the words an overflow of the slot above
     * writes first. MOTE__CANARY while the slot is carved, 0 once its
     * pages went back to the kernel. Atomic: the slot above reads it from
     * any worker while this one is carved again. */
    _Alignas(64) _Atomic uint64_t canary[MOTE__CANARY_WORDS];
} mote__stack;

/*
 * The registers an unwinder needs to walk a suspended context's stack:
 * its pc, sp, frame pointer and the other callee-saved registers, as
 * mote__ctx_swap left them. Debug tools only (dumps, reports).
 */
typedef struct mote__regs {
    uintptr_t pc, sp, fp;
#if defined(__x86_64__)
    uintptr_t rbx, r12, r13, r14, r15;
#elif defined(__aarch64__)
    uintptr_t x19_28[10];
#endif
} mote__regs;

/* Bytes mote__ctx_swap keeps at a suspended context's saved sp. */
#define MOTE__CTX_FRAME_SIZE 176

/* Read the registers of a context suspended with saved stack pointer sp;
 * frame holds a copy of the MOTE__CTX_FRAME_SIZE bytes at sp. False if
 * this build cannot (ucontext). */
bool mote__ctx_saved_regs(const void *frame, uintptr_t sp, mote__regs *out);

typedef void (*mote__entry_fn)(void *arg);

/* Prepare stack s so that switching to it calls fn(arg) on it. fn must
 * never return: it ends by switching away for good (mote__ctx_switch_final). */
void mote__ctx_make(mote__stack *s, mote__entry_fn fn, void *arg);

/* Initialise ctx as the context of the calling thread's native stack. */
void mote__ctx_init_thread(mote__ctx *ctx);
void mote__ctx_destroy_thread(mote__ctx *ctx);

/* Save the current context into from and resume to. */
void mote__ctx_switch(mote__ctx *from, mote__ctx *to);
/* Leave the current stack for good (it will be reset with mote__ctx_make
 * or freed): like mote__ctx_switch, but nothing will resume `from`. */
_Noreturn void mote__ctx_switch_final(mote__ctx *from, mote__ctx *to);
/* Must be the first call of every entry function given to mote__ctx_make. */
void mote__ctx_entered(void);

/* Stacks that exist now: guarded ones mapped and arena slots carved
 * (metrics). */
uint64_t mote__stacks_mapped(void);

/* A guarded stack: a mapping of size bytes (page multiple) plus the guard
 * page, two VMAs. NULL if mmap fails. */
mote__stack *mote__stack_new(size_t size);
/* Map an arena of n slots of slot bytes (page multiple) above one guard
 * page: two VMAs. Returns the lowest slot's address, NULL if mmap fails;
 * *guard receives the guard page (the arena's mapping starts there). */
void *mote__arena_map(size_t slot, size_t n, void **guard);
/* Unmap an arena: guard and n slots, as mote__arena_map returned them. */
void mote__arena_unmap(void *guard, size_t slot, size_t n);
/* Make the arena slot at base (slot bytes) a stack: write its header and
 * canary. lowest: the slot sits right above the arena's guard page. */
mote__stack *mote__stack_carve(void *base, size_t slot, void *guard, bool lowest);
/* A stack's slot: the lowest address of an arena slot or of a guarded
 * stack's usable area. */
void *mote__stack_base(const mote__stack *s);
/* Forget s: sanitizer and valgrind bookkeeping, then munmap a guarded
 * stack. An arena slot's memory stays mapped (its arena's). */
void mote__stack_free(mote__stack *s);
/* Given a faulting address, true if it lies in s's guard page. */
bool mote__stack_guard_hit(const mote__stack *s, const void *addr);
/* False if the canary below s was overwritten: s overflowed. Each of its
 * words reads MOTE__CANARY (the slot below is carved) or 0 (its pages
 * went back to the kernel, or it is not carved yet); while it is being
 * carved, from another worker, both at once. */
static inline bool mote__stack_canary_ok(const mote__stack *s) {
    const _Atomic uint64_t *c = s->below;
    if (!c)
        return true;
    bool ok = true;
    for (int i = 0; i < MOTE__CANARY_WORDS; i++) {
        uint64_t v = atomic_load_explicit(&c[i], memory_order_relaxed);
        ok &= v == 0 || v == MOTE__CANARY;
    }
    return ok;
}

size_t mote__page_size(void);

#ifndef MOTE_USE_UCONTEXT
/* In switch_<arch>.S, for ctx.c alone: save the callee-saved registers and
 * control words on this stack, store the stack pointer in *save_sp, and
 * resume the context saved at new_sp. A fresh stack's frame returns into
 * the trampoline, which calls the entry function with its argument. */
void mote__ctx_swap(void **save_sp, void *new_sp);
void mote__ctx_trampoline(void);
#endif

#endif
