/*
 * symbol.h -- backtraces and addresses turned into names (function,
 * file:line). A tool just above ctx/ (it reads saved contexts and knows
 * nothing of tasks or processes); every report that shows code locations (panics, stack
 * overflows, dumps, warnings) prints frames through mote__frames_print.
 *
 * With libdw (elfutils, detected at build time: MOTE_HAVE_LIBDW) a frame
 * reads "func at file:line", inlined calls expanded, from the DWARF line
 * tables; without it, dladdr gives the exported symbol's name and the
 * object file, nothing more.
 */
#ifndef MOTE_DEBUG_SYMBOL_H
#define MOTE_DEBUG_SYMBOL_H

#include "ctx/ctx.h"

/* A buffered writer for reports (panics, dumps, warnings): text goes to fd
 * with write(2) when the buffer fills and at mote__out_flush, so a report
 * is written in a few large pieces and never through stdio's locks. */
typedef struct mote__out {
    int fd;
    size_t n;
    char buf[8192];
} mote__out;
void mote__out_init(mote__out *o, int fd);
void mote__out_printf(mote__out *o, const char *fmt, ...) MOTE_PRINTF(2, 3);
void mote__out_flush(mote__out *o);

/* Return addresses of the calling thread's stack, innermost first,
 * leaving out the `skip` innermost callers (0: start at our caller). */
int mote__backtrace_here(void **pcs, int max, int skip);

/*
 * Unwind a stack that is not running: r holds its registers (a suspended
 * context's, or a signal's), the stack is [lo, hi) and its bytes are at
 * `copy` (the stack itself, or a snapshot of it). Stores pcs[0] = r->pc
 * and the return address of every frame above, returns how many. Every
 * read is checked against [lo, hi), so a torn snapshot ends the walk
 * instead of faulting.
 *
 * With libdw the frames come from the DWARF call frame information, so
 * code built without frame pointers unwinds too. Without it the frame
 * pointer chain is followed: frames of code built without frame pointers
 * are skipped, or end the walk.
 */
int mote__unwind(const mote__regs *r, const void *copy, uintptr_t lo, uintptr_t hi, void **pcs, int max);

/*
 * From a signal handler's ucontext on a stack [lo, hi): the faulting pc
 * and the frames above it, printed to stderr. Capturing is signal-safe;
 * printing is not (it symbolises), so it is only for reports made right
 * before the program aborts (an alarm ends it if printing deadlocks).
 */
void mote__fault_backtrace(const void *ucontext, uintptr_t lo, uintptr_t hi);

/*
 * Print frames, one line each: "<indent>#N  0x... in func at
 * file:line". pcs are return addresses (looked up at pc - 1, inside the
 * call), except pcs[0] when first_exact (a faulting or saved pc).
 */
void mote__frames_print(mote__out *o, const char *indent, void *const *pcs, int n, bool first_exact);

/* "func at file:line" (or "func", or "0x...") for a code address such as a
 * function pointer, into buf. */
void mote__symbol_name(const void *pc, char *buf, size_t len);

/* Run fn(arg) on a short-lived thread and wait for it: symbolising needs
 * more stack than a process may have left (16 KiB stacks exist). Falls
 * back to calling fn directly if no thread can be made. */
void mote__run_on_thread(void (*fn)(void *), void *arg);

/* Drop the symbol tables (runtime shutdown); they load again on use. */
void mote__symbols_release(void);

#endif
