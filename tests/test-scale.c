/* Scale: many processes suspended at once (far more than the mappings a
 * process may have would allow with a guarded mapping per stack), and what
 * happens when stacks or memory run out: waits and sends return -ENOMEM,
 * nothing aborts, and the runtime carries on once memory is back. */
#include "helpers.h"

#include <fcntl.h>
#include <sys/resource.h>

/* Processes suspended at once: fewer under sanitizers, and fewer still
 * under ThreadSanitizer, where every stack is a fiber and gcc's runtime
 * pays for each fiber at every synchronisation. */
#if defined(__SANITIZE_THREAD__)
#define CROWD(plain) 1000
#else
#define CROWD(plain) T_SCALE(plain, 10000)
#endif

/* ---- Many suspended processes -------------------------------------------------- */

typedef struct crowd {
    int n;
    bool sleep;              /* mote_sleep instead of mote_receive */
    mote_proc **procs;
    unsigned char *ended;    /* ended[i]: times process i ended */
    atomic_int waiting, done, nomem, bad;
    mote_proc *main;
} crowd;

typedef struct member {
    crowd *c;
    int i;
} member;

static void crowd_member(void *arg) {
    const member *a = arg;
    crowd *c = a->c;
    atomic_fetch_add(&c->waiting, 1);
    int rc;
    if (c->sleep) {
        rc = mote_sleep(MOTE_MSEC(1 + (a->i * 7919) % 30));
    } else {
        mote_msg *m = NULL;
        rc = mote_receive(&m, MOTE_FOREVER);
        int v = -1;
        if (rc == 0 && mote_msg_size(m) == sizeof v)
            memcpy(&v, mote_msg_data(m), sizeof v);
        mote_msg_free(m);
        if (rc == 0 && v != a->i)
            atomic_fetch_add(&c->bad, 1);
    }
    if (rc == -ENOMEM)
        atomic_fetch_add(&c->nomem, 1);
    else if (rc != 0)
        atomic_fetch_add(&c->bad, 1);
    c->ended[a->i]++;
    if (atomic_fetch_add(&c->done, 1) + 1 == c->n)
        t_send_i64(c->main, 1);
}

/* Spawn c->n members, wait until each is waiting (or failed to), wake the
 * receivers one message each, and wait until all ended. */
static void crowd_run(crowd *c) {
    c->main = mote_self();
    c->procs = calloc((size_t)c->n, sizeof *c->procs);
    c->ended = calloc((size_t)c->n, 1);
    T_CHECK(c->procs && c->ended);
    if (!c->procs || !c->ended)
        return;
    for (int i = 0; i < c->n; i++) {
        member a = {c, i};
        T_CHECK_EQ(mote_spawn_fn(&c->procs[i], crowd_member, &a, sizeof a), 0);
    }
    t_wait_at_least(&c->waiting, c->n);
    for (int i = 0; i < c->n; i++) {
        if (!c->sleep && c->procs[i])
            mote_send(c->procs[i], &i, sizeof i); /* to an ended one: dropped */
        mote_proc_release(c->procs[i]);
    }
    T_CHECK_EQ(t_recv_i64(), 1);
    int once = 0;
    for (int i = 0; i < c->n; i++)
        once += c->ended[i] == 1;
    T_CHECK_EQ(once, c->n);
    T_CHECK_EQ(atomic_load(&c->bad), 0);
    free(c->procs);
    free(c->ended);
}

static int main_receivers(void *arg) {
    crowd c = {.n = *(int *)arg};
    crowd_run(&c);
    T_CHECK_EQ(atomic_load(&c.nomem), 0);
    return 0;
}

/* 100,000 at once: tens of thousands more than vm.max_map_count's default
 * would allow with a guarded mapping each. */
Test(scale, hundred_thousand_receivers) {
    int n = CROWD(100000);
    T_RUN_OK(NULL, main_receivers, &n);
}

static int main_sleepers(void *arg) {
    crowd c = {.n = *(int *)arg, .sleep = true};
    crowd_run(&c);
    T_CHECK_EQ(atomic_load(&c.nomem), 0);
    return 0;
}

Test(scale, hundred_thousand_sleepers) {
    int n = CROWD(100000);
    T_RUN_OK(NULL, main_sleepers, &n);
}

/* Every stack from arenas (no guard page at all), and arenas mapped with
 * the default budget: the same crowd. */
Test(scale, arena_stacks_only) {
    setenv("MOTE_STACK_GUARDS", "0", 1);
    int n = CROWD(20000);
    T_RUN_OK(NULL, main_receivers, &n);
}

/* ---- At the mapping budget ----------------------------------------------------- */

/* MOTE_STACK_MAPS=8: the main stack (2 VMAs) and three arenas (64, 128
 * and 256 slots) and no guarded stacks. One worker, so the count of
 * stacks is what this test says. */
static void small_budget(void) {
    setenv("MOTE_STACK_GUARDS", "0", 1);
    setenv("MOTE_STACK_MAPS", "8", 1);
}
#define SLOTS (64 + 128 + 256)

static int main_exhaust(void *arg) {
    (void)arg;
    crowd c = {.n = 2 * SLOTS};
    crowd_run(&c);
    int nomem = atomic_load(&c.nomem);
    /* Each suspended receiver holds a stack, and the worker one to run on. */
    T_CHECK(nomem >= SLOTS && nomem < 2 * SLOTS);
    /* The stacks came back when the receivers ended: all fit again. */
    crowd again = {.n = SLOTS / 2};
    crowd_run(&again);
    T_CHECK_EQ(atomic_load(&again.nomem), 0);
    return 0;
}

Test(scale, stacks_run_out_with_enomem) {
    small_budget();
    mote_config cfg = {.threads = 1};
    T_RUN_OK(&cfg, main_exhaust, NULL);
}

/* What a process that has no stack to wait on gets from each kind of wait. */
typedef struct waits {
    mote_proc *main, *peer;
    int fd; /* a pipe's read end, never readable */
} waits;

static void try_waits(void *arg) {
    waits *w = arg;
    int64_t rc[6];
    rc[0] = mote_sleep(MOTE_MSEC(1));
    mote_result r;
    rc[1] = mote_call(w->peer, t_h_echo, &(int64_t){1}, sizeof(int64_t), &r);
    mote_future *f = NULL;
    T_CHECK_EQ(mote_timer(&f, MOTE_MSEC(1)), 0);
    rc[2] = mote_await_for(f, MOTE_SEC(1), NULL);
    size_t n = 1;
    mote_future *ready[1];
    rc[3] = mote_poll(&f, &n, ready, 1, MOTE_SEC(1));
    mote_future_drop(f); /* not consumed by the failed waits */
    mote_msg *m = NULL;
    rc[4] = mote_receive(&m, MOTE_SEC(1));
    rc[5] = mote_fd_wait(w->fd, MOTE_READABLE, MOTE_SEC(1));
    T_CHECK_EQ(mote_send(w->main, rc, sizeof rc), 0); /* a send never waits */
}

static int main_waits(void *arg) {
    (void)arg;
    crowd c = {.n = 2 * SLOTS};
    c.main = mote_self();
    c.procs = calloc((size_t)c.n, sizeof *c.procs);
    c.ended = calloc((size_t)c.n, 1);
    /* Fill every stack with suspended receivers (the rest fail at once). */
    for (int i = 0; i < c.n; i++) {
        member a = {&c, i};
        T_CHECK_EQ(mote_spawn_fn(&c.procs[i], crowd_member, &a, sizeof a), 0);
    }
    /* Those that found no stack end in the same turn; one worker runs the
     * next process only after them. */
    t_wait_at_least(&c.waiting, c.n);
    int fds[2];
    T_CHECK_EQ(pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
    waits w = {mote_self(), t_spawn_counter(0), fds[0]};
    T_CHECK_EQ(mote_spawn_fn(NULL, try_waits, &w, sizeof w), 0);
    int64_t rc[6];
    mote_msg *m = NULL;
    T_CHECK_EQ(mote_receive(&m, T_PATIENCE), 0);
    T_CHECK_EQ(mote_msg_size(m), sizeof rc);
    memcpy(rc, mote_msg_data(m), sizeof rc);
    mote_msg_free(m);
    for (int i = 0; i < 6; i++)
        T_CHECK_EQ(rc[i], -ENOMEM);
    /* Let the receivers go; then the same waits work. */
    for (int i = 0; i < c.n; i++) {
        mote_send(c.procs[i], &i, sizeof i);
        mote_proc_release(c.procs[i]);
    }
    T_CHECK_EQ(t_recv_i64(), 1);
    mote_result r;
    T_CHECK_EQ(mote_call(w.peer, t_h_echo, &(int64_t){5}, sizeof(int64_t), &r), 0);
    T_CHECK_EQ(r.i, 5);
    mote_proc_release(w.peer);
    close(fds[0]);
    close(fds[1]);
    free(c.procs);
    free(c.ended);
    return 0;
}

Test(scale, waits_without_a_stack_return_enomem) {
    small_budget();
    mote_config cfg = {.threads = 1};
    T_RUN_OK(&cfg, main_waits, NULL);
}

/* ---- Out of memory ----------------------------------------------------------------- */

#if !defined(MOTE_SANITIZER_BUILD)
/* The address space a process has mapped, from /proc/self/statm. */
static size_t vm_size(void) {
    long pages = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f && fscanf(f, "%ld", &pages) != 1)
        pages = 0;
    if (f)
        fclose(f);
    return (size_t)pages * (size_t)sysconf(_SC_PAGESIZE);
}

static void blocked(void *arg) {
    (void)arg;
    mote_msg *m = NULL;
    if (mote_receive(&m, MOTE_FOREVER) == 0)
        mote_msg_free(m);
}

/* Spawns, sends and waits under a low RLIMIT_AS until each says -ENOMEM,
 * then lifts the limit and checks that all works again. Prints what it saw. */
static int main_oom(void *arg) {
    (void)arg;
    struct rlimit old;
    getrlimit(RLIMIT_AS, &old);
    enum { MAX = 1 << 20 };
    mote_proc **ps = calloc(MAX, sizeof *ps);
    struct rlimit low = {vm_size() + (64u << 20), old.rlim_max};
    if (!ps || setrlimit(RLIMIT_AS, &low) != 0)
        return 2;
    int n = 0, spawn_rc = 0, send_rc = 0;
    while (n < MAX && (spawn_rc = mote_spawn(&ps[n], NULL, 1024, NULL)) == 0)
        n++;
    for (int i = 0; i < n && send_rc == 0; i++) /* messages of 1 KiB until none fits */
        for (int k = 0; k < 64 && send_rc == 0; k++)
            send_rc = mote_cast(ps[i], t_h_echo, ps, 1000);
    int fn_rc = 0, fn_n = 0;
    mote_proc *fns[64];
    while (fn_n < 64 && (fn_rc = mote_spawn_fn(&fns[fn_n], blocked, NULL, 0)) == 0)
        fn_n++;
    int sleep_rc = mote_sleep(MOTE_MSEC(1));
    setrlimit(RLIMIT_AS, &old);
    printf("spawned %d: %d, sent: %d, spawn_fn %d: %d, sleep: %d\n", n, spawn_rc, send_rc, fn_n,
           fn_rc, sleep_rc);
    for (int i = 0; i < fn_n; i++) {
        mote_send(fns[i], "", 1);
        mote_proc_release(fns[i]);
    }
    for (int i = 0; i < n; i++)
        mote_proc_release(ps[i]);
    free(ps);
    /* Memory is back: all works again. */
    mote_proc *p = t_spawn_counter(1);
    mote_result r;
    int rc = mote_call(p, t_h_add, &(int64_t){2}, sizeof(int64_t), &r);
    mote_proc_release(p);
    printf("after: %d %lld\n", rc, (long long)r.i);
    return spawn_rc == -ENOMEM && send_rc == -ENOMEM && rc == 0 && r.i == 3 ? 0 : 1;
}

static void child_oom(void *arg) {
    (void)arg;
    t_run_spec spec = {NULL, main_oom, NULL};
    t_child_mote(&spec);
}

Test(scale, out_of_memory_returns_enomem) {
    t_child c;
    t_child_run(&c, child_oom, NULL);
    T_ASSERT_EXITED(&c, 0);
    T_ASSERT_CONTAINS(c.out, "after: 0 3");
    t_child_free(&c);
}
#endif
