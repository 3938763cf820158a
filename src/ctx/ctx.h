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
 * Stacks are mmap'd with a PROT_NONE guard page below them. The stack header
 * (struct mote__stack) lives at the top of the mapping, so a stack costs one
 * mmap and two VMAs (guard + stack) and no malloc. Stacks are cached per
 * worker and globally and reused, so the number of mappings follows the
 * number of processes suspended at once, not the number spawned.
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

typedef struct mote__stack {
    mote__ctx ctx;
    const mote__wait_note *wait; /* while a task is suspended on this stack */
    struct mote__stack *next; /* free-list link */
    void *map;                /* mmap base (the guard page) */
    size_t map_size;
    unsigned vg_id; /* valgrind stack id */
    bool dirty;     /* must be reset with mote__ctx_make before use */
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

/* Stacks mapped now (metrics). */
uint64_t mote__stacks_mapped(void);

/* Stacks. size is the usable size (a multiple of the page size). */
mote__stack *mote__stack_new(size_t size);
void mote__stack_free(mote__stack *s);
/* Given a faulting address, true if it lies in s's guard page. */
bool mote__stack_guard_hit(const mote__stack *s, const void *addr);
/* Release the stack's pages to the kernel (keeps the mapping). */
void mote__stack_trim(mote__stack *s);

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
