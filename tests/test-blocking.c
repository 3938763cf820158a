/*
 * test-blocking.c -- blocking sections, backup threads, long-running
 * processes: a worker stuck in a blocking call or a long computation must not
 * stop its neighbours, the stuck process carries on afterwards with its state
 * intact, and the backup pool stays bounded.
 */
#include <dirent.h>
#include <time.h>

#include "helpers.h"

static void sleep_ns(int64_t ns) {
    struct timespec ts = {ns / 1000000000, ns % 1000000000};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* Backup threads of this program right now (mote names them). */
static int backup_count(void) {
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[300], name[32] = "";
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (f) {
            if (fgets(name, sizeof name, f) && strncmp(name, "mote-backup", 11) == 0)
                n++;
            fclose(f);
        }
    }
    closedir(d);
    return n;
}

/* ---- Every worker blocked: others still make progress ------------------------- */

typedef struct blk_shared {
    atomic_int in_section; /* blockers inside their section right now */
    atomic_int done;       /* blockers finished */
    atomic_int progress;   /* round trips completed while all were blocked */
    int blockers;
} blk_shared;

static void fn_blocker(void *arg) {
    blk_shared *sh = *(blk_shared **)arg;
    for (int i = 0; i < 4; i++) {
        mote_blocking_begin();
        atomic_fetch_add(&sh->in_section, 1);
        sleep_ns(MOTE_MSEC(50));
        atomic_fetch_sub(&sh->in_section, 1);
        mote_blocking_end();
        mote_yield();
    }
    atomic_fetch_add(&sh->done, 1);
}

static int main_all_blocked(void *arg) {
    (void)arg;
    blk_shared sh = {.blockers = (int)mote_threads()};
    blk_shared *p = &sh;
    for (int i = 0; i < sh.blockers; i++)
        T_CHECK_EQ(mote_spawn_fn(NULL, fn_blocker, &p, sizeof p), 0);
    mote_proc *echo = t_spawn_counter(0);
    int64_t i = 0;
    while (atomic_load(&sh.done) < sh.blockers) {
        bool all = atomic_load(&sh.in_section) == sh.blockers;
        mote_result r;
        T_CHECK_EQ(mote_call(echo, t_h_echo, &i, sizeof i, &r), 0);
        T_CHECK_EQ(r.i, i);
        i++;
        if (all && atomic_load(&sh.in_section) == sh.blockers)
            atomic_fetch_add(&sh.progress, 1);
    }
    mote_proc_release(echo);
    T_CHECK(atomic_load(&sh.progress) > 0);
    return 0;
}

Test(blocking, other_processes_run_while_every_worker_blocks) {
    mote_config cfg = {.threads = 2};
    T_RUN_OK(&cfg, main_all_blocked, NULL);
}

/* The same with processes talking to each other (not to main): the pair
 * must run on backup threads while both workers are stuck. */
typedef struct pair_arg {
    blk_shared *sh;
    mote_proc *peer;
} pair_arg;

static void fn_pinger(void *arg) {
    pair_arg *a = arg;
    blk_shared *sh = a->sh;
    for (int64_t i = 0; atomic_load(&sh->done) < sh->blockers; i++) {
        bool all = atomic_load(&sh->in_section) == sh->blockers;
        mote_result r;
        T_CHECK_EQ(mote_call(a->peer, t_h_echo, &i, sizeof i, &r), 0);
        T_CHECK_EQ(r.i, i);
        if (all && atomic_load(&sh->in_section) == sh->blockers)
            atomic_fetch_add(&sh->progress, 1);
    }
    mote_proc_release(a->peer);
    atomic_fetch_add(&sh->done, 1000);
}

static int main_pair_while_blocked(void *arg) {
    (void)arg;
    blk_shared sh = {.blockers = (int)mote_threads()};
    blk_shared *p = &sh;
    for (int i = 0; i < sh.blockers; i++)
        T_CHECK_EQ(mote_spawn_fn(NULL, fn_blocker, &p, sizeof p), 0);
    pair_arg a = {&sh, t_spawn_counter(0)};
    T_CHECK_EQ(mote_spawn_fn(NULL, fn_pinger, &a, sizeof a), 0);
    atomic_int *done = &sh.done;
    t_wait_at_least(done, 1000 + sh.blockers);
    T_CHECK(atomic_load(&sh.progress) > 0);
    return 0;
}

Test(blocking, processes_talk_to_each_other_while_every_worker_blocks) {
    mote_config cfg = {.threads = 2};
    T_RUN_OK(&cfg, main_pair_while_blocked, NULL);
}

/* ---- After a long section the process carries on, state intact ---------------- */

typedef struct carry_state {
    int64_t before, after;
    char pattern[256];
} carry_state;

static mote_result h_long_section(void *state, void *arg) {
    (void)arg;
    carry_state *st = state;
    char local[256];
    for (int i = 0; i < 256; i++)
        local[i] = (char)(i * 7);
    st->before = 41;
    mote_blocking_begin();
    sleep_ns(MOTE_MSEC(20)); /* far beyond the threshold: a spare took over */
    mote_blocking_end();
    mote_sleep(MOTE_MSEC(1)); /* suspends: may resume on another thread */
    for (int i = 0; i < 256; i++)
        T_CHECK_EQ(local[i], (char)(i * 7));
    for (int i = 0; i < 256; i++)
        T_CHECK_EQ(st->pattern[i], (char)i);
    st->after = st->before + 1;
    return mote_ok_i(st->after);
}

static int main_carry_on(void *arg) {
    (void)arg;
    carry_state init = {0};
    for (int i = 0; i < 256; i++)
        init.pattern[i] = (char)i;
    enum { K = 8 };
    mote_proc *ps[K];
    mote_future *fs[K];
    for (int i = 0; i < K; i++) {
        T_CHECK_EQ(mote_spawn(&ps[i], &init, sizeof init, NULL), 0);
        T_CHECK_EQ(mote_async(ps[i], h_long_section, NULL, 0, &fs[i]), 0);
    }
    for (int i = 0; i < K; i++) {
        t_await_value(fs[i], 42);
        mote_proc_release(ps[i]);
    }
    return 0;
}

Test(blocking, process_carries_on_after_a_long_section) {
    mote_config cfg = {.threads = 2};
    T_RUN_OK(&cfg, main_carry_on, NULL);
}

/* ---- A spinning process does not starve a timer -------------------------------- */

typedef struct spin_shared {
    atomic_int spinning; /* spinners still spinning */
    atomic_int ticks_while_spinning;
    atomic_int started;
} spin_shared;

static void fn_spinner(void *arg) {
    spin_shared *sh = *(spin_shared **)arg;
    atomic_fetch_add(&sh->started, 1);
    int64_t end = mote_now() + MOTE_MSEC(T_SCALE(400, 800));
    while (mote_now() < end) /* no call into the scheduler */
        ;
    atomic_fetch_sub(&sh->spinning, 1);
}

static int main_spin_vs_timer(void *arg) {
    (void)arg;
    int k = 2 * (int)mote_threads();
    spin_shared sh = {.spinning = k};
    spin_shared *p = &sh;
    for (int i = 0; i < k; i++)
        T_CHECK_EQ(mote_spawn_fn(NULL, fn_spinner, &p, sizeof p), 0);
    /* More spinners than workers all running at once: only possible when
     * backup threads took over the workers' other processes. */
    t_wait_at_least(&sh.started, k);
    int ticks = 0;
    while (atomic_load(&sh.spinning) == k && ticks < 5) {
        mote_sleep(MOTE_MSEC(1));
        if (atomic_load(&sh.spinning) == k)
            ticks++;
    }
    T_CHECK(ticks >= 5); /* the sleeper ticked while every spinner ran */
    while (atomic_load(&sh.spinning) > 0)
        mote_sleep(MOTE_MSEC(5));
    return 0;
}

/* main is pinned to the main thread; run the ticker as a process instead. */
static void fn_ticker(void *arg) {
    atomic_int *result = *(atomic_int **)arg;
    atomic_store(result, main_spin_vs_timer(NULL) == 0 ? 1 : 2);
}

static int main_spin_proc(void *arg) {
    (void)arg;
    atomic_int result = 0;
    atomic_int *p = &result;
    T_CHECK_EQ(mote_spawn_fn(NULL, fn_ticker, &p, sizeof p), 0);
    t_wait_at_least(&result, 1);
    T_CHECK_EQ(atomic_load(&result), 1);
    return 0;
}

Test(blocking, spinning_processes_do_not_starve_a_timer) {
    mote_config cfg = {.threads = 2};
    T_RUN_OK(&cfg, main_spin_proc, NULL);
}

/* ---- A storm of blocking calls: the backup pool stays bounded ------------------ */

typedef struct storm {
    atomic_int done;
    atomic_int max_threads;
    atomic_bool stop;
} storm;

static mote_result h_block_once(void *state, void *arg) {
    (void)state;
    storm *st = *(storm **)arg;
    mote_blocking_begin();
    sleep_ns(MOTE_USEC(300));
    mote_blocking_end();
    atomic_fetch_add(&st->done, 1);
    return mote_ok_i(0);
}

static void *sampler(void *arg) {
    storm *st = arg;
    while (!atomic_load(&st->stop)) {
        int n = backup_count();
        int m = atomic_load(&st->max_threads);
        while (n > m && !atomic_compare_exchange_weak(&st->max_threads, &m, n))
            ;
        sleep_ns(MOTE_USEC(500));
    }
    return NULL;
}

enum { STORM_BACKUPS = 3 };

static int main_storm(void *arg) {
    (void)arg;
    int calls = T_SCALE(10000, 2000);
    storm st = {0};
    storm *p = &st;
    pthread_t t = t_thread(sampler, &st);
    mote_proc *ps[64];
    for (int i = 0; i < 64; i++)
        ps[i] = t_spawn_counter(0);
    for (int i = 0; i < calls; i++)
        T_CHECK_EQ(mote_cast(ps[i % 64], h_block_once, &p, sizeof p), 0);
    t_wait_at_least(&st.done, calls);
    atomic_store(&st.stop, true);
    pthread_join(t, NULL);
    for (int i = 0; i < 64; i++)
        mote_proc_release(ps[i]);
    T_CHECK(atomic_load(&st.max_threads) <= STORM_BACKUPS);
    T_CHECK(atomic_load(&st.max_threads) > 0); /* backups did run */
    return 0;
}

Test(blocking, backup_pool_is_bounded_under_a_storm) {
    mote_config cfg = {.threads = 2, .backup_threads = STORM_BACKUPS};
    T_RUN_OK(&cfg, main_storm, NULL);
}

/* ---- Edges -------------------------------------------------------------------- */

static int main_edges(void *arg) {
    (void)arg;
    /* In the main process (pinned to its thread): harmless. */
    mote_blocking_begin();
    mote_blocking_end();
    return 0;
}

Test(blocking, sections_outside_processes_do_nothing) {
    mote_blocking_begin(); /* no runtime at all */
    mote_blocking_end();
    T_RUN_OK(NULL, main_edges, NULL);
}

static int main_nothing(void *arg) {
    (void)arg;
    return 0;
}

Test(blocking, bad_config_is_refused) {
    mote_config cfg = {.blocking_threshold = -5};
    cr_assert_eq(mote_run(&cfg, main_nothing, NULL), -EINVAL);
    mote_config cfg2 = {.backup_threads = 100000};
    cr_assert_eq(mote_run(&cfg2, main_nothing, NULL), -EINVAL);
    mote_config cfg3 = {.backup_threads = 1, .blocking_threshold = MOTE_USEC(50)};
    cr_assert_eq(mote_run(&cfg3, main_nothing, NULL), 0);
}
