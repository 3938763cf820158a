/*
 * stack.c -- stacks for tasks and worker loops: a cache per worker and a
 * shared one, the signal stacks of runtime threads, and the report of a
 * stack overflow.
 *
 * A worker keeps up to LOCAL_STACK_CACHE free stacks (the fast paths,
 * stack_get and stack_put, are inline in internal.h); beyond that they go
 * to a shared cache of GLOBAL_STACK_CACHE, with their pages returned to
 * the kernel, or are unmapped. The cache exists to save mappings
 * (vm.max_map_count), not memory. The main thread's stack is never
 * cached: the main task gets one of its own, thread-sized.
 *
 * A stack overflow hits the guard page below the stack; the SIGSEGV
 * handler, on the thread's signal stack, reports the task (the describe
 * hook) and aborts. A fault that is not ours goes to the previous handler.
 */
#include "sched/internal.h"
#include "debug/symbol.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define GLOBAL_STACK_CACHE 1024u
#define MAIN_STACK_MIN (8u << 20) /* the main task's stack: at least a thread's */
#define ALTSTACK_SIZE (64 * 1024)

mote__stack *mote__stack_get_slow(worker *w) {
    if (w->is_main) /* the main process gets a thread-sized stack of its own */
        return mote__stack_new(S.cfg.stack_size > MAIN_STACK_MIN ? S.cfg.stack_size : MAIN_STACK_MIN);
    pthread_mutex_lock(&S.stacks.lock);
    mote__stack *s = S.stacks.list;
    MOTE_ASSERT_MSG(!s == !S.stacks.n, "the shared cache's count matches its list");
    if (s) {
        S.stacks.list = s->next;
        S.stacks.n--;
    }
    pthread_mutex_unlock(&S.stacks.lock);
    if (s)
        return s;
    return mote__stack_new(S.cfg.stack_size);
}

void mote__stack_put_slow(worker *w, mote__stack *s) {
    if (w->is_main) {
        mote__stack_free(s);
        return;
    }
    /* Pages of a stack in the shared cache go back to the kernel. Its
     * suspended loop (if any) goes with them, so it is reset before reuse. */
    s->dirty = true;
    mote__stack_trim(s);
    pthread_mutex_lock(&S.stacks.lock);
    if (S.stacks.n < GLOBAL_STACK_CACHE) {
        s->next = S.stacks.list;
        S.stacks.list = s;
        S.stacks.n++;
        s = NULL;
    }
    pthread_mutex_unlock(&S.stacks.lock);
    mote__stack_free(s);
}

void mote__stack_list_free(mote__stack *s) {
    while (s) {
        mote__stack *next = s->next;
        mote__stack_free(s);
        s = next;
    }
}

/* ---- Signal stacks and stack overflow ---- */

void mote__altstack_setup(void **slot) {
    void *a = mmap(NULL, ALTSTACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    *slot = a == MAP_FAILED ? NULL : a;
    if (!*slot)
        return;
    stack_t ss = {.ss_sp = a, .ss_size = ALTSTACK_SIZE, .ss_flags = 0};
    sigaltstack(&ss, NULL);
}

void mote__altstack_teardown(void **slot) {
    if (!*slot)
        return;
    stack_t ss = {.ss_flags = SS_DISABLE};
    sigaltstack(&ss, NULL);
    munmap(*slot, ALTSTACK_SIZE);
    *slot = NULL;
}

static void fault_handler(int sig, siginfo_t *si, void *uc) {
    worker *w = mote__tls_worker;
    mote__task *t = w ? w->current : NULL;
    if (t && t->stack && mote__stack_guard_hit(t->stack, si->si_addr)) {
        char buf[256];
        S.hooks.describe(t, buf, sizeof buf);
        mote__write_stderr(buf);
        mote__fault_backtrace(uc, (uintptr_t)t->stack->ctx.lo,
                              (uintptr_t)t->stack->ctx.lo + t->stack->ctx.size);
        abort();
    }
    /* Not ours: restore the previous disposition and let the fault recur. */
    sigaction(sig, sig == SIGSEGV ? &S.saved.segv : &S.saved.bus, NULL);
}

void mote__fault_handler_install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = fault_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &S.saved.segv);
    sigaction(SIGBUS, &sa, &S.saved.bus);
}

void mote__fault_handler_restore(void) {
    sigaction(SIGSEGV, &S.saved.segv, NULL);
    sigaction(SIGBUS, &S.saved.bus, NULL);
}
