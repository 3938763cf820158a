/* Timers: mote_sleep, mote_timer futures, many sleepers. */
#include "helpers.h"

#include <time.h>

#include "base/base.h"

static const int64_t durations[] = {0, 1, MOTE_USEC(1), MOTE_USEC(100), MOTE_MSEC(1), MOTE_MSEC(5), MOTE_MSEC(20)};
#define N_DURATIONS (sizeof durations / sizeof durations[0])

/* Sleeps each duration; every one lasts at least what was asked. */
static void check_sleeps(void) {
    for (size_t i = 0; i < N_DURATIONS; i++) {
        int64_t t0 = mote_now();
        T_CHECK_EQ(mote_sleep(durations[i]), 0);
        int64_t took = mote_now() - t0;
        if (took < durations[i])
            t_fail(__FILE__, __LINE__, "slept %lld ns, asked %lld", (long long)took, (long long)durations[i]);
    }
}

static void fn_check_sleeps(void *arg) {
    mote_proc *report = *(mote_proc **)arg;
    check_sleeps();
    t_send_i64(report, 1);
    mote_proc_release(report);
}

static void *thread_check_sleeps(void *arg) {
    (void)arg;
    check_sleeps();
    return NULL;
}

static int main_sleep(void *arg) {
    (void)arg;
    check_sleeps(); /* the main process */
    mote_proc *me = mote_proc_ref(mote_self());
    T_CHECK_EQ(mote_spawn_fn(NULL, fn_check_sleeps, &me, sizeof me), 0);
    T_CHECK_EQ(t_recv_i64(), 1);
    t_join(t_thread(thread_check_sleeps, NULL)); /* a foreign thread */
    return 0;
}

Test(timer, sleep_lasts_at_least_the_time_asked) { T_RUN_OK(NULL, main_sleep, NULL); }

Test(timer, sleep_outside_runtime_sleeps) {
    int64_t t0 = mote_now();
    cr_assert_eq(mote_sleep(MOTE_MSEC(2)), 0);
    cr_assert_geq(mote_now() - t0, MOTE_MSEC(2));
}

Test(timer, now_is_monotonic) {
    int64_t prev = mote_now();
    for (int i = 0; i < 100000; i++) {
        int64_t t = mote_now();
        cr_assert_geq(t, prev);
        prev = t;
    }
}

/* A socket call's cheap deadline (coarse clock, base.h): never earlier
 * than the precise one, at most two coarse ticks later; none for a
 * negative timeout or one too far to add. */
Test(timer, lax_deadlines_are_never_early) {
    struct timespec res;
    cr_assert_eq(clock_getres(CLOCK_MONOTONIC_COARSE, &res), 0);
    int64_t tick = (int64_t)res.tv_sec * 1000000000 + res.tv_nsec;
    static const int64_t timeouts[] = {0, MOTE_MSEC(1), MOTE_SEC(1), MOTE_SEC(30), MOTE_SEC(86400)};
    for (int i = 0; i < 20000; i++) {
        int64_t t = timeouts[i % 5], before = mote__now();
        int64_t d = mote__deadline_lax(t), after = mote__now();
        cr_assert_geq(d, before + t, "timeout %lld: %lld before %lld", (long long)t, (long long)d,
                      (long long)(before + t));
        cr_assert(d <= after + t + 2 * tick + 1);
    }
    cr_assert_eq(mote__deadline_lax(-1), -1);
    cr_assert_eq(mote__deadline_lax(INT64_MAX), -1);
}

/* ---- mote_timer ------------------------------------------------------------------------ */

static int main_timer_await(void *arg) {
    (void)arg;
    enum { N = 10 };
    mote_future *fs[N];
    int64_t t0 = mote_now();
    for (int i = 0; i < N; i++)
        T_CHECK_EQ(mote_timer(&fs[i], MOTE_MSEC(i + 1)), 0);
    /* Await in reverse; each resolves with value 0, not before its time. */
    for (int i = N - 1; i >= 0; i--) {
        mote_result r = mote_error(-1);
        T_CHECK_EQ(mote_await(fs[i], &r), 0);
        T_CHECK_EQ(r.err, 0);
        T_CHECK_EQ(r.i, 0);
        T_CHECK(mote_now() - t0 >= MOTE_MSEC(i + 1));
    }
    /* A zero timer is ready at once. */
    mote_future *f = NULL;
    T_CHECK_EQ(mote_timer(&f, 0), 0);
    T_CHECK_EQ(mote_await_for(f, T_PATIENCE, NULL), 0);
    T_CHECK_EQ(mote_timer(NULL, MOTE_MSEC(1)), -EINVAL);
    return 0;
}

Test(timer, timer_future_resolves_after_its_time) { T_RUN_OK(NULL, main_timer_await, NULL); }

/* The seed's Timer: poll a timer together with results of calls. */
static int main_timer_poll(void *arg) {
    (void)arg;
    mote_proc *worker = t_spawn_counter(0);
    t_gate gate = {0};
    int64_t t0 = mote_now();
    mote_future *timer = NULL;
    T_CHECK_EQ(mote_timer(&timer, MOTE_MSEC(10)), 0);
    mote_future *call = t_async_gated(worker, &gate, 5);
    mote_future *futs[2] = {call, timer}, *ready[2];
    size_t n = 2;

    /* The call cannot finish: the timer comes first. */
    T_CHECK_EQ(mote_poll(futs, &n, ready, 2, T_PATIENCE), 1);
    T_CHECK(ready[0] == timer);
    T_CHECK(mote_now() - t0 >= MOTE_MSEC(10));
    T_CHECK_EQ(n, 1);
    T_CHECK(futs[0] == call);
    mote_result r = mote_error(-1);
    T_CHECK_EQ(mote_await(ready[0], &r), 0);
    T_CHECK_EQ(r.err, 0);
    T_CHECK_EQ(r.i, 0);

    /* Now the call finishes long before a 1 hour timer. */
    T_CHECK_EQ(mote_timer(&timer, MOTE_SEC(3600)), 0);
    futs[1] = timer;
    n = 2;
    t_gate_open(&gate);
    T_CHECK_EQ(mote_poll(futs, &n, ready, 2, T_PATIENCE), 1);
    T_CHECK(ready[0] == call);
    T_CHECK(futs[0] == timer);
    t_await_value(call, 5);
    /* A pending timer may simply be dropped. */
    T_CHECK(!mote_future_ready(timer));
    mote_future_drop(timer);

    /* Timer as a timeout for a call: await_for alternative via poll. */
    mote_future *t2 = NULL;
    T_CHECK_EQ(mote_timer(&t2, MOTE_MSEC(1)), 0);
    mote_future *quick = t_async_echo(worker, 6);
    mote_future *fs2[2] = {t2, quick};
    int64_t sum = 0;
    T_CHECK_EQ(t_poll_drain(fs2, 2, &sum), 2);
    T_CHECK_EQ(sum, 0 + 6); /* the timer's 0 and the call's 6 */
    mote_proc_release(worker);
    return 0;
}

Test(timer, timer_polled_with_call_futures) { T_RUN_OK(NULL, main_timer_poll, NULL); }

/* Timers pending at shutdown are freed by it. */
static int main_timers_at_shutdown(void *arg) {
    (void)arg;
    for (int i = 0; i < 100; i++) {
        mote_future *f = NULL;
        T_CHECK_EQ(mote_timer(&f, MOTE_SEC(3600) + i), 0);
        if (i % 2)
            mote_future_drop(f);
    }
    return 0;
}

Test(timer, pending_timers_freed_at_shutdown) { T_RUN_OK(NULL, main_timers_at_shutdown, NULL); }

/* ---- Many sleepers ------------------------------------------------------------------------ */

typedef struct sleeper {
    mote_proc *report;
    int64_t ns;
} sleeper;

static void fn_sleeper(void *arg) {
    sleeper *s = arg;
    int64_t t0 = mote_now();
    T_CHECK_EQ(mote_sleep(s->ns), 0);
    int64_t took = mote_now() - t0;
    if (took < s->ns)
        t_fail(__FILE__, __LINE__, "slept %lld ns, asked %lld", (long long)took, (long long)s->ns);
    t_send_i64(s->report, s->ns);
    mote_proc_release(s->report);
}

static int main_many_sleepers(void *arg) {
    (void)arg;
    int n = T_SCALE(5000, 1000);
    int64_t want = 0;
    for (int i = 0; i < n; i++) {
        sleeper s = {mote_proc_ref(mote_self()), MOTE_USEC(100) * (i % 97) + (i % 13)};
        want += s.ns;
        T_CHECK_EQ(mote_spawn_fn(NULL, fn_sleeper, &s, sizeof s), 0);
    }
    int64_t sum = 0;
    for (int i = 0; i < n; i++)
        sum += t_recv_i64();
    T_CHECK_EQ(sum, want);
    return 0;
}

Test(timer, many_concurrent_sleepers_all_wake) { T_RUN_OK(NULL, main_many_sleepers, NULL); }

/* ---- Sleep suspends only the process ------------------------------------------------------- */

static atomic_int flag;

static mote_result h_wait_flag(void *state, void *arg) {
    (void)state;
    (void)arg;
    int64_t loops = 0;
    while (!atomic_load(&flag)) {
        mote_sleep(MOTE_USEC(200));
        loops++;
    }
    return mote_ok_i(loops);
}

static mote_result h_set_flag(void *state, void *arg) {
    (void)state;
    (void)arg;
    atomic_store(&flag, 1);
    return mote_ok_i(1);
}

static int main_sleep_suspends(void *arg) {
    (void)arg;
    /* With one worker thread, the sleeper must give the thread up while it
     * sleeps, or the setter never runs. */
    mote_proc *a = t_spawn_counter(0), *b = t_spawn_counter(0);
    mote_future *fa = NULL, *fb = NULL;
    T_CHECK_EQ(mote_async(a, h_wait_flag, NULL, 0, &fa), 0);
    mote_sleep(MOTE_MSEC(1));
    T_CHECK_EQ(mote_async(b, h_set_flag, NULL, 0, &fb), 0);
    mote_result r;
    T_CHECK_EQ(mote_await_for(fb, T_PATIENCE, &r), 0);
    T_CHECK_EQ(mote_await_for(fa, T_PATIENCE, &r), 0);
    mote_proc_release(a);
    mote_proc_release(b);
    return 0;
}

Test(timer, sleep_suspends_only_the_process) {
    mote_config cfg = {.threads = 1};
    T_RUN_OK(&cfg, main_sleep_suspends, NULL);
}

/* ---- White box: the lazy heap against a reference ------------------------------------------ */

#include "timer/timer.h"

#include <sched.h>

/* A model of what the heap must do: every timer has the deadline its owner
 * last gave it (OFF when none); fire_due(now) fires exactly those whose
 * deadline passed, once each, and nothing else; next() is never later than
 * the earliest deadline. */
enum { WB_TIMERS = 64, WB_STEPS = 200000 };

static struct {
    mote__timer t[WB_TIMERS];
    int64_t want[WB_TIMERS]; /* the reference */
    int64_t now;
    int fired_bad, fired;
} wb;

static void wb_fire(mote__timer *t) {
    int i = (int)(t - wb.t);
    /* Runs under the heap's lock: only record. */
    if (wb.want[i] == MOTE__TIMER_OFF || wb.want[i] > wb.now)
        wb.fired_bad++;
    wb.want[i] = MOTE__TIMER_OFF;
    wb.fired++;
}

static uint64_t wb_rand(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* The heap's shape: keys ordered, slots and `queued` consistent. */
static void wb_check_heap(mote__timers *ts) {
    for (uint32_t i = 0; i < ts->n; i++) {
        mote__timer_entry e = ts->heap[i];
        cr_assert_eq(e.t->slot, i + 1);
        cr_assert_eq(atomic_load(&e.t->queued), e.key);
        if (i > 0)
            cr_assert(ts->heap[(i - 1) / 2].key <= e.key, "heap order broken at %u", i);
    }
    for (int i = 0; i < WB_TIMERS; i++)
        if (!wb.t[i].slot)
            cr_assert_eq(atomic_load(&wb.t[i].queued), MOTE__TIMER_OFF);
}

Test(timer, lazy_heap_matches_a_reference) {
    mote__timers ts;
    mote__timers_init(&ts);
    for (int i = 0; i < WB_TIMERS; i++) {
        mote__timer_init(&wb.t[i], wb_fire);
        wb.want[i] = MOTE__TIMER_OFF;
    }
    wb.now = 1000;
    uint64_t seed = 0x9e3779b97f4a7c15u;
    int counts[6] = {0};
    for (int step = 0; step < WB_STEPS; step++) {
        int i = (int)(wb_rand(&seed) % WB_TIMERS);
        int64_t when = wb.now + (int64_t)(wb_rand(&seed) % 2000) - 200; /* some already due */
        int op = (int)(wb_rand(&seed) % 6);
        counts[op]++;
        switch (op) {
        case 0: /* set: either direction */
        case 1:
            cr_assert_eq(mote__timers_set(&ts, &wb.t[i], when), 0);
            wb.want[i] = when;
            break;
        case 2: { /* reset: only an armed timer moves */
            int r = mote__timers_reset(&ts, &wb.t[i], when);
            cr_assert_eq(r, wb.want[i] == MOTE__TIMER_OFF ? -EALREADY : 0);
            if (r == 0)
                wb.want[i] = when;
            break;
        }
        case 3: /* lazy disarm: must never fire afterwards */
            atomic_store(&wb.t[i].when, MOTE__TIMER_OFF);
            wb.want[i] = MOTE__TIMER_OFF;
            break;
        case 4: /* final cancel: says whether it had a deadline */
            cr_assert_eq(mote__timers_cancel(&ts, &wb.t[i]), wb.want[i] != MOTE__TIMER_OFF);
            cr_assert_eq(wb.t[i].slot, 0u);
            wb.want[i] = MOTE__TIMER_OFF;
            break;
        default: { /* time passes; what is due fires, nothing else */
            wb.now += (int64_t)(wb_rand(&seed) % 300);
            int due = 0;
            for (int k = 0; k < WB_TIMERS; k++)
                due += wb.want[k] != MOTE__TIMER_OFF && wb.want[k] <= wb.now;
            int before = wb.fired;
            mote__timers_fire_due(&ts, wb.now);
            cr_assert_eq(wb.fired_bad, 0, "a timer fired early, twice or after a disarm");
            cr_assert_eq(wb.fired - before, due, "step %d: %d fired, %d due", step, wb.fired - before, due);
            int64_t earliest = MOTE__TIMER_OFF;
            for (int k = 0; k < WB_TIMERS; k++)
                if (wb.want[k] < earliest)
                    earliest = wb.want[k];
            cr_assert(mote__timers_next(&ts) <= earliest, "next() later than a deadline");
            break;
        }
        }
        /* An armed timer always has an entry no later than its deadline. */
        if (wb.want[i] != MOTE__TIMER_OFF)
            cr_assert(wb.t[i].slot && ts.heap[wb.t[i].slot - 1].key <= wb.want[i]);
        if (step % 997 == 0)
            wb_check_heap(&ts);
    }
    for (int op = 0; op < 6; op++)
        cr_assert(counts[op] > 0);
    cr_assert(wb.fired > WB_STEPS / 20, "only %d fired", wb.fired);
    /* Moving later is lazy: the entry keeps its place until it comes up. */
    mote__timer *t = &wb.t[0];
    mote__timers_cancel(&ts, t);
    cr_assert_eq(mote__timers_set(&ts, t, wb.now + 100), 0);
    uint32_t n = ts.n;
    for (int k = 1; k <= 1000; k++)
        cr_assert_eq(mote__timers_set(&ts, t, wb.now + 100 + k), 0);
    cr_assert_eq(ts.n, n);
    cr_assert_eq(ts.heap[t->slot - 1].key, wb.now + 100, "the entry moved: not lazy");
    wb.want[0] = wb.now + 1100;
    wb.now += 100; /* the entry comes up early: re-inserted, not fired */
    int before = wb.fired;
    mote__timers_fire_due(&ts, wb.now);
    cr_assert_eq(wb.fired, before);
    cr_assert_eq(ts.heap[t->slot - 1].key, wb.now + 1000);
    wb.now += 1000;
    mote__timers_fire_due(&ts, wb.now);
    cr_assert_eq(wb.fired_bad, 0);
    cr_assert(wb.want[0] == MOTE__TIMER_OFF, "the moved timer did not fire at its new time");
    mote__timers_destroy(&ts);
}

/* Owners re-arm their timers (later, earlier, disarm, cancel) on several
 * threads while one thread fires with the real clock: no deadline is lost
 * (every timer left armed fires, none before its deadline) and none fires
 * after a final cancel. The protocol's races are those of timer.h. */
enum { MT_OWNERS = 4, MT_PER_OWNER = 64, MT_ROUNDS = T_SCALE(20000, 3000) };

static struct {
    mote__timers ts;
    mote__timer t[MT_OWNERS * MT_PER_OWNER];
    _Atomic int64_t deadline[MT_OWNERS * MT_PER_OWNER]; /* the last one set, for the fire check */
    atomic_int fired[MT_OWNERS * MT_PER_OWNER];
    atomic_int early;
    atomic_bool stop;
} mt;

static void mt_fire(mote__timer *t) {
    int i = (int)(t - mt.t);
    if (mote_now() < atomic_load(&mt.deadline[i]))
        atomic_fetch_add(&mt.early, 1);
    atomic_fetch_add(&mt.fired[i], 1);
}

static void *mt_firer(void *arg) {
    (void)arg;
    while (!atomic_load(&mt.stop))
        mote__timers_fire_due(&mt.ts, mote_now());
    return NULL;
}

static void *mt_owner(void *arg) {
    int base = (int)(intptr_t)arg * MT_PER_OWNER;
    uint64_t seed = 0x1234567u + (uint64_t)base;
    for (int round = 0; round < MT_ROUNDS; round++) {
        int i = base + (int)(wb_rand(&seed) % MT_PER_OWNER);
        int64_t when = mote_now() + (int64_t)(wb_rand(&seed) % MOTE_USEC(200));
        switch (wb_rand(&seed) % 4) {
        case 0:
        case 1:
            /* The check compares with the last deadline set; after a
             * (final) cancel no fire of an older one can be under way. */
            mote__timers_cancel(&mt.ts, &mt.t[i]);
            atomic_store(&mt.deadline[i], when);
            mote__timers_set(&mt.ts, &mt.t[i], when);
            break;
        case 2: { /* later, lazily; a fire of the old deadline is impossible once it moved */
            int64_t later = atomic_load(&mt.deadline[i]) + MOTE_USEC(50);
            if (mote__timers_reset(&mt.ts, &mt.t[i], later) == 0)
                atomic_store(&mt.deadline[i], later);
            break;
        }
        default: { /* final: nothing fires after it */
            mote__timers_cancel(&mt.ts, &mt.t[i]);
            int after = atomic_load(&mt.fired[i]);
            for (int k = 0; k < 3; k++)
                sched_yield();
            T_CHECK_EQ(atomic_load(&mt.fired[i]), after);
            break;
        }
        }
    }
    /* Leave every timer armed once more: each must fire. */
    for (int i = base; i < base + MT_PER_OWNER; i++) {
        mote__timers_cancel(&mt.ts, &mt.t[i]);
        atomic_store(&mt.fired[i], 0);
        int64_t when = mote_now() + MOTE_USEC(100);
        atomic_store(&mt.deadline[i], when);
        mote__timers_set(&mt.ts, &mt.t[i], when);
        /* Lazily later, by more than the firer is likely to lag: its
         * entry comes up first and must be put back, not dropped. A reset,
         * not a set: where this thread was held up past `when` and the
         * timer fired already, a set would arm it again (a second fire,
         * as documented), a reset leaves it fired (-EALREADY). Either
         * way it fires once. */
        int r = mote__timers_reset(&mt.ts, &mt.t[i], when + MOTE_MSEC(50));
        T_CHECK(r == 0 || r == -EALREADY);
    }
    return NULL;
}

Test(timer, lazy_heap_loses_no_deadline_across_threads) {
    mote__timers_init(&mt.ts);
    for (int i = 0; i < MT_OWNERS * MT_PER_OWNER; i++)
        mote__timer_init(&mt.t[i], mt_fire);
    pthread_t firer, owners[MT_OWNERS];
    pthread_create(&firer, NULL, mt_firer, NULL);
    for (int k = 0; k < MT_OWNERS; k++)
        pthread_create(&owners[k], NULL, mt_owner, (void *)(intptr_t)k);
    for (int k = 0; k < MT_OWNERS; k++)
        pthread_join(owners[k], NULL);
    int64_t give_up = mote_now() + T_PATIENCE;
    for (int i = 0; i < MT_OWNERS * MT_PER_OWNER; i++)
        while (atomic_load(&mt.fired[i]) == 0 && mote_now() < give_up)
            sched_yield();
    atomic_store(&mt.stop, true);
    pthread_join(firer, NULL);
    for (int i = 0; i < MT_OWNERS * MT_PER_OWNER; i++)
        cr_assert_eq(atomic_load(&mt.fired[i]), 1, "timer %d fired %d times", i, atomic_load(&mt.fired[i]));
    cr_assert_eq(atomic_load(&mt.early), 0, "a timer fired before its deadline");
    t_assert_clean();
    mote__timers_destroy(&mt.ts);
}

/* ---- mote_timer_reset ------------------------------------------------------------------------ */

static int main_timer_reset(void *arg) {
    (void)arg;
    mote_future *f = NULL;
    int64_t t0 = mote_now();
    T_CHECK_EQ(mote_timer(&f, MOTE_MSEC(5)), 0);
    /* Later: it must not fire at the old time. */
    T_CHECK_EQ(mote_timer_reset(f, MOTE_MSEC(40)), 0);
    T_CHECK_EQ(mote_await(f, NULL), 0);
    T_CHECK(mote_now() - t0 >= MOTE_MSEC(40));
    /* Earlier: an hour becomes a millisecond. */
    T_CHECK_EQ(mote_timer(&f, MOTE_SEC(3600)), 0);
    T_CHECK_EQ(mote_timer_reset(f, MOTE_MSEC(1)), 0);
    T_CHECK_EQ(mote_await_for(f, T_PATIENCE, NULL), 0);
    /* Fired: a reset cannot bring it back; the result stays there. */
    T_CHECK_EQ(mote_timer(&f, 0), 0);
    while (!mote_future_ready(f))
        mote_sleep(MOTE_USEC(100));
    T_CHECK_EQ(mote_timer_reset(f, MOTE_MSEC(1)), -EALREADY);
    mote_result r = mote_error(-1);
    T_CHECK_EQ(mote_await(f, &r), 0);
    T_CHECK_EQ(r.err, 0);
    /* Not a timer. */
    mote_proc *p = t_spawn_counter(0);
    mote_future *call = t_async_echo(p, 3);
    T_CHECK_EQ(mote_timer_reset(call, MOTE_MSEC(1)), -EINVAL);
    t_await_value(call, 3);
    T_CHECK_EQ(mote_timer_reset(NULL, 1), -EINVAL);
    mote_proc_release(p);
    return 0;
}

Test(timer, reset_moves_a_pending_timer) { T_RUN_OK(NULL, main_timer_reset, NULL); }

/* 10,000 timers churned: re-armed later and earlier, a third dropped; the rest
 * all fire, none before its last deadline, while sleepers keep waking. */
enum { CHURN = T_SCALE(10000, 2000) };

static void fn_churn_sleeper(void *arg) {
    mote_proc *report = *(mote_proc **)arg;
    int late = 0;
    for (int i = 0; i < 20; i++) {
        int64_t t0 = mote_now();
        mote_sleep(MOTE_USEC(500));
        late += mote_now() - t0 < MOTE_USEC(500); /* early, never allowed */
    }
    t_send_i64(report, late);
    mote_proc_release(report);
}

static int main_churn(void *arg) {
    (void)arg;
    mote_future **fs = calloc(CHURN, sizeof *fs);
    int64_t *due = calloc(CHURN, sizeof *due);
    T_CHECK(fs && due);
    for (int k = 0; k < 4; k++) {
        mote_proc *me = mote_proc_ref(mote_self());
        T_CHECK_EQ(mote_spawn_fn(NULL, fn_churn_sleeper, &me, sizeof me), 0);
    }
    uint64_t seed = 42;
    for (int i = 0; i < CHURN; i++) {
        int64_t ns = MOTE_MSEC(1) + (int64_t)(wb_rand(&seed) % MOTE_MSEC(30));
        T_CHECK_EQ(mote_timer(&fs[i], ns), 0);
        due[i] = mote_now() + ns;
    }
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < CHURN; i++) {
            if (!fs[i])
                continue;
            if (wb_rand(&seed) % 8 == 0) {
                mote_future_drop(fs[i]); /* cancels it, or frees a fired one */
                fs[i] = NULL;
                continue;
            }
            int64_t ns = MOTE_MSEC(1) + (int64_t)(wb_rand(&seed) % MOTE_MSEC(30));
            int64_t at = mote_now() + ns;
            int r = mote_timer_reset(fs[i], ns);
            T_CHECK(r == 0 || r == -EALREADY);
            if (r == 0)
                due[i] = at;
        }
    /* Scan until every kept timer fired. A timer seen ready with the
     * clock, read after the look, still before its deadline fired early. */
    int left = 0, early = 0;
    for (int i = 0; i < CHURN; i++)
        left += fs[i] != NULL;
    T_CHECK(left > CHURN / 2);
    int64_t give_up = mote_now() + T_PATIENCE;
    while (left > 0 && mote_now() < give_up) {
        mote_sleep(MOTE_MSEC(1));
        for (int i = 0; i < CHURN; i++) {
            if (!fs[i] || !mote_future_ready(fs[i]))
                continue;
            early += mote_now() < due[i];
            T_CHECK_EQ(mote_await(fs[i], NULL), 0);
            fs[i] = NULL;
            left--;
        }
    }
    T_CHECK_EQ(left, 0);
    int sleepers_early = 0;
    for (int k = 0; k < 4; k++)
        sleepers_early += (int)t_recv_i64();
    T_CHECK_EQ(sleepers_early, 0);
    T_CHECK_EQ(early, 0);
    free(fs);
    free(due);
    return 0;
}

Test(timer, ten_thousand_churned_timers_fire_on_time) { T_RUN_OK(NULL, main_churn, NULL); }

/* ---- A process's deadline: one timer, re-armed by every timed wait ---------------------------- */

static mote_result h_sleep_ms(void *state, void *arg) {
    (void)state;
    int64_t ms;
    memcpy(&ms, arg, sizeof ms);
    mote_sleep(MOTE_MSEC(ms));
    return mote_ok_i(ms);
}

typedef struct rearm_args {
    mote_proc *report;
    int msgs;
} rearm_args;

static void fn_rearm(void *arg) {
    rearm_args *a = arg;
    /* Many timed receives that end early: each moves the deadline later. */
    for (int i = 0; i < a->msgs; i++) {
        mote_msg *m = NULL;
        T_CHECK_EQ(mote_receive(&m, MOTE_MSEC(200)), 0);
        mote_msg_free(m);
    }
    t_send_i64(a->report, 1);
    /* Then one with nothing coming: it times out, not before its time. */
    mote_msg *m = NULL;
    int64_t t0 = mote_now();
    T_CHECK_EQ(mote_receive(&m, MOTE_MSEC(20)), -ETIMEDOUT);
    T_CHECK(mote_now() - t0 >= MOTE_MSEC(20));
    /* A call run inside a receive makes a timed wait of its own (a 5 ms
     * sleep): the receive still ends at its own deadline. */
    t_send_i64(a->report, 2);
    t0 = mote_now();
    T_CHECK_EQ(mote_receive(&m, MOTE_MSEC(30)), -ETIMEDOUT);
    T_CHECK(mote_now() - t0 >= MOTE_MSEC(30));
    /* An await_for that the result beats, then one that times out. */
    mote_future *f = NULL;
    T_CHECK_EQ(mote_timer(&f, MOTE_MSEC(2)), 0);
    T_CHECK_EQ(mote_await_for(f, MOTE_SEC(10), NULL), 0);
    T_CHECK_EQ(mote_timer(&f, MOTE_SEC(10)), 0);
    t0 = mote_now();
    T_CHECK_EQ(mote_await_for(f, MOTE_MSEC(10), NULL), -ETIMEDOUT);
    T_CHECK(mote_now() - t0 >= MOTE_MSEC(10));
    mote_future_drop(f);
    t_send_i64(a->report, 3);
    mote_proc_release(a->report);
}

static int main_rearm(void *arg) {
    (void)arg;
    enum { MSGS = 300 };
    rearm_args a = {mote_proc_ref(mote_self()), MSGS};
    mote_proc *p = NULL;
    T_CHECK_EQ(mote_spawn_fn(&p, fn_rearm, &a, sizeof a), 0);
    for (int i = 0; i < MSGS; i++) {
        int64_t v = i;
        T_CHECK_EQ(mote_send(p, &v, sizeof v), 0);
        if (i % 16 == 0)
            mote_sleep(MOTE_USEC(50)); /* let it wait now and then */
    }
    T_CHECK_EQ(t_recv_i64(), 1);
    T_CHECK_EQ(t_recv_i64(), 2);
    int64_t ms = 5;
    T_CHECK_EQ(mote_cast(p, h_sleep_ms, &ms, sizeof ms), 0);
    T_CHECK_EQ(t_recv_i64(), 3);
    mote_proc_release(p);
    return 0;
}

Test(timer, process_deadline_rearmed_by_many_waits_still_times_out) {
    T_RUN_OK(NULL, main_rearm, NULL);
    mote_config one = {.threads = 1};
    T_RUN_OK(&one, main_rearm, NULL);
}
