/*
 * stack.c -- stacks for tasks and worker loops: where they come from, where
 * they wait between uses, who gives their memory back; the signal stacks
 * of runtime threads and the report of a stack overflow.
 *
 * Two kinds (ctx.h): guarded stacks, a mapping each (two VMAs; an overflow
 * faults at once), and arena stacks, slots of one large mapping (two VMAs
 * per arena; an overflow is caught by the canary below the slot, checked at
 * every switch away from the task, or by the arena's guard page). A
 * process may hold vm.max_map_count VMAs (65530 by default), so both are
 * rationed by two settings resolved at start (runtime.c):
 *   cfg.stack_maps    VMAs mote may map for stacks (max_map_count / 2)
 *   cfg.stack_guards  guarded stacks at most (max_map_count / 8)
 *
 * Where a free stack waits, nearest first:
 *   a worker's cache  up to LOCAL_STACK_CACHE, owner only, no lock
 *                     (stack_get and stack_put, inline in internal.h);
 *   the pool          two lists under S.stacks.lock, most recently freed
 *                     first: guarded stacks (handed out first), then arena
 *                     stacks;
 *   cold slots        arena slots whose pages went back to the kernel:
 *                     carved again (header and canary rewritten) on use;
 *   the newest arena  slots never carved yet; a new arena when it runs out
 *                     (ARENA_MIN_SLOTS, doubling up to ARENA_MAX_SLOTS).
 * A worker moves REFILL_BATCH stacks at a time between cache and pool.
 *
 * Nothing on the path of a runnable task or a due timer makes a system
 * call for a stack, but for mapping a new arena (once per thousands of
 * stacks): putting a stack back is a push, taking one a pop or a carve
 * (a header written: one page fault). The slow work is left to idle
 * workers, in batches of CHORE_BATCH between two looks for work
 * (mote__stack_chores):
 *   trimming  at each TRIM_PERIOD, the stacks that sat in the pool for the
 *             whole period (beyond POOL_KEEP of each kind) give their
 *             memory back: guarded ones are unmapped (their VMAs with
 *             them), arena slots madvise'd (adjacent ones in one call) and
 *             made cold;
 *   guarding  while the budget allows and no arena stack waits in the
 *             pool, idle workers make guarded stacks until GUARD_RESERVE
 *             wait there. The pool hands out guarded stacks first and
 *             trims unused arena stacks, so a program that suspends fewer
 *             processes at once than the budget ends up on guarded stacks
 *             only.
 * Arenas stay mapped until the runtime stops (mote__sched_free_stacks).
 *
 * An overflow into a guard page faults: the SIGSEGV handler, on the
 * thread's signal stack, reports the task (the describe hook) and aborts.
 * A fault that is not ours goes to the previous handler. An overflow into
 * the slot below is reported at the next switch (stack_check).
 */
#include "sched/internal.h"
#include "debug/symbol.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define REFILL_BATCH (LOCAL_STACK_CACHE / 2)
#define POOL_KEEP 64u      /* free stacks of each kind never trimmed */
#define GUARD_RESERVE 16u  /* guarded stacks kept ready while the budget allows */
#define CHORE_BATCH 8u     /* stacks one idle chore trims or makes */
#define TRIM_PERIOD MOTE_MSEC(100)
#define ARENA_MIN_SLOTS 64u
#define ARENA_MAX_SLOTS 4096u
#define ARENA_MAX_BYTES ((size_t)1 << 30)
#define MAPS_PER_MAPPING 2u /* a guarded stack or an arena: its guard page splits it */
#define MAIN_STACK_MIN (8u << 20) /* the main task's stack: at least a thread's */
#define ALTSTACK_SIZE (64 * 1024)

#define ST S.stacks

/* An arena, for unmapping it at the end. */
typedef struct stack_arena {
    struct stack_arena *next;
    void *guard;
    size_t n;
} stack_arena;

/* A slot to carve: its address and its arena's guard page. */
typedef struct cold_slot {
    void *base, *guard;
} cold_slot;

/* ---- Lists ---- */

static void list_push(stack_list *l, mote__stack *s) {
    s->prev = NULL;
    s->next = l->head;
    if (l->head)
        l->head->prev = s;
    else
        l->tail = s;
    l->head = s;
    l->n++;
}

static void list_unlink(stack_list *l, mote__stack *s) {
    if (s->prev)
        s->prev->next = s->next;
    else
        l->head = s->next;
    if (s->next)
        s->next->prev = s->prev;
    else
        l->tail = s->prev;
    if (--l->n < l->low)
        l->low = l->n;
}

static mote__stack *list_pop(stack_list *l) {
    mote__stack *s = l->head;
    if (s)
        list_unlink(l, s);
    return s;
}

static mote__stack *list_pop_oldest(stack_list *l) {
    mote__stack *s = l->tail;
    if (s)
        list_unlink(l, s);
    return s;
}

static void pool_put(mote__stack *s) {
    list_push(s->map_size ? &ST.guarded : &ST.warm, s);
}

/* ---- Budget and chores (under the lock) ---- */

static bool maps_allow(unsigned n) {
    return ST.maps + n * MAPS_PER_MAPPING <= S.cfg.stack_maps;
}

/* Idle workers make guarded stacks only while no arena stack waits in the
 * pool: those are used first, and only once they went cold is it time to
 * replace them (making a stack maps twice, which stalls the other workers'
 * page faults on the mapping lock). */
static bool guards_wanted(void) {
    return !ST.guard_failed && ST.guarded.n + ST.making < GUARD_RESERVE && ST.warm.n == 0 &&
           ST.nguarded < S.cfg.stack_guards && maps_allow(1);
}

/* Tell idle workers when there is stack work: now (stacks left to trim,
 * guarded stacks to make), at the end of the trim period (the pool holds
 * more than it keeps), or never. */
static void chores_update(void) {
    int64_t due = INT64_MAX;
    if (ST.trim_g || ST.trim_w || guards_wanted())
        due = 0;
    else if (ST.guarded.n > POOL_KEEP || ST.warm.n > POOL_KEEP)
        due = ST.trim_at;
    atomic_store_explicit(&ST.chores_due, due, memory_order_relaxed);
}

/* ---- Carving ---- */

static bool arena_new(void) {
    size_t slot = S.cfg.stack_size;
    size_t n = ST.arena_slots;
    if (n * slot > ARENA_MAX_BYTES)
        n = ARENA_MAX_BYTES / slot ? ARENA_MAX_BYTES / slot : 1;
    if (!maps_allow(1))
        return false;
    stack_arena *a = malloc(sizeof *a);
    void *guard = NULL;
    char *base = a ? mote__arena_map(slot, n, &guard) : NULL;
    if (!base) {
        free(a);
        return false;
    }
    a->guard = guard;
    a->n = n;
    a->next = ST.arenas;
    ST.arenas = a;
    ST.maps += MAPS_PER_MAPPING;
    ST.carve = base;
    ST.carve_end = base + n * slot;
    ST.carve_guard = guard;
    if (ST.arena_slots < ARENA_MAX_SLOTS)
        ST.arena_slots *= 2;
    return true;
}

/* A slot to carve: a cold one, else the newest arena's next, else one of a
 * new arena. False if no arena can be mapped. */
static bool slot_take(cold_slot *out) {
    if (ST.ncold) {
        *out = ((cold_slot *)ST.cold)[--ST.ncold];
        return true;
    }
    if (ST.carve == ST.carve_end && !arena_new())
        return false;
    out->base = ST.carve;
    out->guard = ST.carve_guard;
    ST.carve += S.cfg.stack_size;
    return true;
}

static mote__stack *carve(const cold_slot *c) {
    bool lowest = (char *)c->base == (char *)c->guard + mote__page_size();
    return mote__stack_carve(c->base, S.cfg.stack_size, c->guard, lowest);
}

/* ---- Getting and putting ---- */

/* w's cache is empty: take up to REFILL_BATCH stacks from the pool (and
 * carve what it lacks, outside the lock: the header writes fault pages
 * in). Returns one, caches the rest; NULL if none can be had. */
mote__stack *mote__stack_get_slow(worker *w) {
    mote__stack *got[REFILL_BATCH];
    cold_slot slots[REFILL_BATCH];
    unsigned n = 0, nslots = 0;
    pthread_mutex_lock(&ST.lock);
    while (n + nslots < REFILL_BATCH) {
        mote__stack *s = list_pop(&ST.guarded);
        if (!s)
            s = list_pop(&ST.warm);
        if (s)
            got[n++] = s;
        else if (slot_take(&slots[nslots]))
            nslots++;
        else
            break;
    }
    chores_update();
    pthread_mutex_unlock(&ST.lock);
    for (unsigned i = 0; i < nslots; i++)
        got[n++] = carve(&slots[i]);
    if (!n)
        return NULL;
    for (unsigned i = 1; i < n; i++) {
        got[i]->next = w->stacks;
        w->stacks = got[i];
        w->nstacks++;
    }
    return got[0];
}

/* w's cache is full: its older half goes to the pool. */
void mote__stack_spill(worker *w) {
    mote__stack *keep = w->stacks;
    for (unsigned i = 1; i < LOCAL_STACK_CACHE - REFILL_BATCH; i++)
        keep = keep->next;
    mote__stack *s = keep->next;
    keep->next = NULL;
    w->nstacks = LOCAL_STACK_CACHE - REFILL_BATCH;
    pthread_mutex_lock(&ST.lock);
    while (s) {
        mote__stack *next = s->next;
        pool_put(s);
        s = next;
    }
    chores_update();
    pthread_mutex_unlock(&ST.lock);
}

void mote__stack_release(mote__stack *s) {
    if (!s)
        return;
    pthread_mutex_lock(&ST.lock);
    pool_put(s);
    chores_update();
    pthread_mutex_unlock(&ST.lock);
}

/* ---- Idle chores ---- */

static int cmp_slot(const void *a, const void *b) {
    const char *x = ((const cold_slot *)a)->base, *y = ((const cold_slot *)b)->base;
    return (x > y) - (x < y);
}

/* Give n arena slots' pages back: adjacent slots in one madvise. */
static void slots_drop(cold_slot *c, unsigned n) {
    size_t slot = S.cfg.stack_size;
    qsort(c, n, sizeof *c, cmp_slot);
    for (unsigned i = 0; i < n;) {
        unsigned j = i + 1;
        while (j < n && (char *)c[j].base == (char *)c[j - 1].base + slot)
            j++;
        madvise(c[i].base, slot * (j - i), MADV_DONTNEED);
        i = j;
    }
}

/* Room for n more cold slots, besides those other chores are trimming
 * (under the lock). */
static bool cold_room(size_t n) {
    size_t need = ST.ncold + ST.cold_pending + n;
    if (need <= ST.cold_cap)
        return true;
    size_t cap = ST.cold_cap ? ST.cold_cap * 2 : 256;
    while (cap < need)
        cap *= 2;
    void *c = realloc(ST.cold, cap * sizeof(cold_slot));
    if (!c)
        return false;
    ST.cold = c;
    ST.cold_cap = cap;
    return true;
}

/* Under the lock: a new trim period if the last one is over. What stayed
 * in a list for all of it (its low-water mark), beyond POOL_KEEP, is
 * trimmed in this one. */
static void trim_period(int64_t now) {
    if (now < ST.trim_at)
        return;
    ST.trim_g = ST.guarded.low > POOL_KEEP ? ST.guarded.low - POOL_KEEP : 0;
    ST.trim_w = ST.warm.low > POOL_KEEP ? ST.warm.low - POOL_KEEP : 0;
    ST.guarded.low = ST.guarded.n;
    ST.warm.low = ST.warm.n;
    ST.trim_at = now + TRIM_PERIOD;
}

/* Take up to max of l's oldest stacks still to trim (*left) into out. */
static unsigned trim_take(stack_list *l, unsigned *left, mote__stack **out, unsigned max) {
    unsigned n = 0;
    while (n < max && *left && l->n > POOL_KEEP) {
        out[n++] = list_pop_oldest(l);
        (*left)--;
    }
    if (l->n <= POOL_KEEP)
        *left = 0;
    return n;
}

/* One batch of stack work for an idle worker. True if it did any (the
 * worker then looks for work again before the next batch). */
bool mote__stack_chores(worker *w) {
    (void)w;
    mote__stack *guarded[CHORE_BATCH], *arena[CHORE_BATCH];
    cold_slot slots[CHORE_BATCH];
    pthread_mutex_lock(&ST.lock);
    trim_period(mote__now());
    unsigned ng = trim_take(&ST.guarded, &ST.trim_g, guarded, CHORE_BATCH);
    unsigned na = 0;
    if (cold_room(CHORE_BATCH))
        na = trim_take(&ST.warm, &ST.trim_w, arena, CHORE_BATCH);
    else
        ST.trim_w = 0; /* no memory to note cold slots in: keep them warm */
    ST.cold_pending += na;
    ST.nguarded -= ng;
    ST.maps -= ng * MAPS_PER_MAPPING;
    unsigned make = 0;
    while (make < CHORE_BATCH && guards_wanted()) {
        ST.making++; /* their budget is taken now, and given back on failure */
        ST.nguarded++;
        ST.maps += MAPS_PER_MAPPING;
        make++;
    }
    chores_update();
    pthread_mutex_unlock(&ST.lock);

    for (unsigned i = 0; i < ng; i++)
        mote__stack_free(guarded[i]);
    for (unsigned i = 0; i < na; i++) {
        slots[i] = (cold_slot){mote__stack_base(arena[i]), arena[i]->map};
        mote__stack_free(arena[i]); /* bookkeeping only: the arena keeps the slot */
    }
    slots_drop(slots, na);
    mote__stack *made[CHORE_BATCH];
    unsigned nm = 0;
    for (unsigned i = 0; i < make; i++)
        if ((made[nm] = mote__stack_new(S.cfg.stack_size)))
            nm++;

    pthread_mutex_lock(&ST.lock);
    if (na)
        memcpy((cold_slot *)ST.cold + ST.ncold, slots, na * sizeof *slots);
    ST.ncold += na;
    ST.cold_pending -= na;
    for (unsigned i = 0; i < nm; i++)
        list_push(&ST.guarded, made[i]);
    ST.making -= make;
    ST.nguarded -= make - nm;
    ST.maps -= (make - nm) * MAPS_PER_MAPPING;
    if (nm < make) /* mmap failed: no more guarded stacks in this run */
        ST.guard_failed = true;
    chores_update();
    pthread_mutex_unlock(&ST.lock);
    return ng || na || make;
}

/* ---- Start and stop ---- */

/* Before the worker threads start: the main task's stack, some guarded
 * stacks in the pool, and a first loop stack in every worker's cache. */
int mote__stacks_start(void) {
    memset(&ST.guarded, 0, sizeof ST.guarded);
    memset(&ST.warm, 0, sizeof ST.warm);
    ST.cold = NULL;
    ST.ncold = ST.cold_cap = 0;
    ST.carve = ST.carve_end = NULL;
    ST.arena_slots = ARENA_MIN_SLOTS;
    ST.arenas = NULL;
    ST.maps = ST.nguarded = 0;
    ST.trim_at = 0;
    ST.trim_g = ST.trim_w = 0;
    ST.making = 0;
    ST.cold_pending = 0;
    ST.guard_failed = false;
    size_t main_size = S.cfg.stack_size > MAIN_STACK_MIN ? S.cfg.stack_size : MAIN_STACK_MIN;
    ST.main = mote__stack_new(main_size);
    if (!ST.main)
        return -ENOMEM;
    ST.maps += MAPS_PER_MAPPING;
    while (guards_wanted()) { /* not on any path yet: make them now */
        mote__stack *s = mote__stack_new(S.cfg.stack_size);
        if (!s)
            break;
        ST.nguarded++;
        ST.maps += MAPS_PER_MAPPING;
        list_push(&ST.guarded, s);
    }
    for (unsigned i = 0; i < S.cfg.threads; i++) {
        mote__stack *s = stack_get(&S.w[i]);
        if (!s)
            return -ENOMEM;
        stack_put(&S.w[i], s);
    }
    chores_update();
    return 0;
}

/* A stopped worker's stacks go to the pool (freed with it). */
void mote__stacks_return(worker *w) {
    while (w->stacks) {
        mote__stack *s = w->stacks;
        w->stacks = s->next;
        mote__stack_release(s);
    }
    w->nstacks = 0;
    mote__stack_release(w->exit_stack);
    w->exit_stack = NULL;
}

/* Every stack is back in the pool (mote__task_discard_stack did it for
 * those of tasks that never finished): free them, then the arenas. */
void mote__sched_free_stacks(void) {
    pthread_mutex_lock(&ST.lock);
    mote__stack *s;
    while ((s = list_pop(&ST.guarded)) || (s = list_pop(&ST.warm)))
        mote__stack_free(s);
    mote__stack_free(ST.main);
    ST.main = NULL;
    while (ST.arenas) {
        stack_arena *a = ST.arenas;
        ST.arenas = a->next;
        mote__arena_unmap(a->guard, S.cfg.stack_size, a->n);
        free(a);
    }
    free(ST.cold);
    ST.cold = NULL;
    ST.ncold = ST.cold_cap = 0;
    ST.carve = ST.carve_end = NULL;
    ST.maps = ST.nguarded = 0;
    atomic_store(&ST.chores_due, INT64_MAX);
    pthread_mutex_unlock(&ST.lock);
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

/* Async-signal-safe: the fault handler calls it. */
static void overflow_report(mote__task *t) {
    char buf[256];
    S.hooks.describe(t, buf, sizeof buf);
    mote__write_stderr(buf);
}

/* A canary was hit: the report, without a backtrace (the frames below the
 * stack may be what the overflow damaged). */
_Noreturn void mote__stack_overflow(mote__task *t) {
    overflow_report(t);
    abort();
}

static void fault_handler(int sig, siginfo_t *si, void *uc) {
    worker *w = mote__tls_worker;
    mote__task *t = w ? w->current : NULL;
    mote__stack *s = t ? t->stack : NULL;
    if (s && mote__stack_guard_hit(s, si->si_addr)) {
        overflow_report(t);
        /* An arena stack's frames ran down over the slots below it, to the
         * arena's guard page: they are all the overflow's. */
        uintptr_t lo = s->map_size ? (uintptr_t)s->ctx.lo : (uintptr_t)s->map + mote__page_size();
        mote__fault_backtrace(uc, lo, (uintptr_t)s->ctx.lo + s->ctx.size);
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
