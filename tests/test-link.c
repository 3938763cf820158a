/* Links: an abnormal end takes the linked process with it (cancelled,
 * "linked process ended") unless it traps exits, which turns the end into
 * a notice; a normal end is a notice for trappers and nothing otherwise. */
#include "helpers.h"

static void on_panic(const char *msg, void *ctx) {
    (void)msg;
    (void)ctx;
}

/* A process told what to do by data messages: 'p' panic, 'r' return,
 * anything else is ignored; -ECANCELED ends it. */
static void fn_puppet(void *arg) {
    (void)arg;
    mote_on_panic(on_panic, NULL);
    mote_msg *m = NULL;
    while (mote_receive(&m, MOTE_FOREVER) == 0) {
        char c = mote_msg_size(m) ? *(const char *)mote_msg_data(m) : 0;
        mote_msg_free(m);
        if (c == 'p')
            mote_panic("puppet told to panic");
        if (c == 'r')
            return;
    }
}

static mote_proc *puppet(void) {
    mote_proc *p = NULL;
    T_CHECK_EQ(mote_spawn_fn(&p, fn_puppet, NULL, 0), 0);
    return p;
}

static void tell(mote_proc *p, char c) { T_CHECK_EQ(mote_send(p, &c, 1), 0); }

/* The end of p as seen by a monitor (p is released). */
static int end_of(mote_proc *p, char *text, size_t cap) {
    mote_future *f = NULL;
    T_CHECK_EQ(mote_monitor_future(p, &f), 0);
    mote_proc_release(p);
    mote_result r = mote_error(-1);
    T_CHECK_EQ(mote_await_for(f, T_PATIENCE, &r), 0);
    mote_exit x = {.reason = -1};
    T_CHECK(r.err == 0 && mote_msg_exit(r.p, &x));
    if (text)
        snprintf(text, cap, "%s", x.text ? x.text : "");
    if (r.err == 0)
        mote_msg_free(r.p);
    return x.reason;
}

/* A: links to B (given), optionally traps, reports the link notices it
 * gets (reason*16 + 1, or 0 for anything else) to main until cancelled. */
typedef struct linker {
    mote_proc *peer, *report;
    bool trap, twice;
} linker;

static void fn_linker(void *arg) {
    linker *a = arg;
    if (a->trap)
        T_CHECK_EQ(mote_trap_exits(true), 0);
    T_CHECK_EQ(mote_link(a->peer), 0);
    if (a->twice)
        T_CHECK_EQ(mote_link(a->peer), 0);
    t_send_i64(a->report, -1); /* linked */
    mote_msg *m = NULL;
    int rc;
    while ((rc = mote_receive(&m, MOTE_FOREVER)) == 0) {
        mote_exit x;
        bool notice = mote_msg_exit(m, &x);
        T_CHECK(!notice || (x.link && x.ref == 0 && x.proc_id == mote_proc_id(a->peer)));
        t_send_i64(a->report, notice ? x.reason * 16 + 1 : 0);
        mote_msg_free(m);
    }
    T_CHECK_EQ(rc, -ECANCELED);
    mote_proc_release(a->peer);
    mote_proc_release(a->report);
}

static mote_proc *spawn_linker(mote_proc *peer, bool trap, bool twice) {
    linker a = {mote_proc_ref(peer), mote_proc_ref(mote_self()), trap, twice};
    mote_proc *p = NULL;
    T_CHECK_EQ(mote_spawn_fn(&p, fn_linker, &a, sizeof a), 0);
    T_CHECK_EQ(t_recv_i64(), -1);
    return p;
}

/* ---- Who gets what ---------------------------------------------------------- */

static int main_abnormal_takes_the_other(void *arg) {
    (void)arg;
    char text[64];
    mote_proc *b = puppet(), *a = spawn_linker(b, false, false);
    tell(b, 'p');
    T_CHECK_EQ(end_of(a, text, sizeof text), MOTE_EXIT_CANCELLED);
    T_CHECK(strcmp(text, "linked process ended") == 0);
    T_CHECK_EQ(end_of(b, NULL, 0), MOTE_EXIT_PANIC);

    /* Cancelled counts as abnormal too. */
    b = puppet();
    a = spawn_linker(b, false, false);
    T_CHECK_EQ(mote_cancel(b), 0);
    T_CHECK_EQ(end_of(a, NULL, 0), MOTE_EXIT_CANCELLED);
    T_CHECK_EQ(end_of(b, NULL, 0), MOTE_EXIT_CANCELLED);

    /* Both ways: the linker's own end takes the peer. */
    b = puppet();
    a = spawn_linker(b, false, false);
    T_CHECK_EQ(mote_cancel(a), 0);
    T_CHECK_EQ(end_of(b, text, sizeof text), MOTE_EXIT_CANCELLED);
    T_CHECK(strcmp(text, "linked process ended") == 0);
    T_CHECK_EQ(end_of(a, NULL, 0), MOTE_EXIT_CANCELLED);
    return 0;
}

Test(link, abnormal_end_takes_the_other) { T_RUN_OK(NULL, main_abnormal_takes_the_other, NULL); }

static int main_normal_leaves_it(void *arg) {
    (void)arg;
    mote_proc *b = puppet(), *a = spawn_linker(b, false, false);
    tell(b, 'r');
    T_CHECK_EQ(end_of(mote_proc_ref(b), NULL, 0), MOTE_EXIT_NORMAL);
    /* A is untouched: still receiving (it reports non-notices as 0). */
    tell(a, 'x');
    T_CHECK_EQ(t_recv_i64(), 0);
    mote_proc_release(b);
    T_CHECK_EQ(mote_cancel(a), 0);
    T_CHECK_EQ(end_of(a, NULL, 0), MOTE_EXIT_CANCELLED);
    return 0;
}

Test(link, normal_end_leaves_the_other) { T_RUN_OK(NULL, main_normal_leaves_it, NULL); }

static int main_trapping(void *arg) {
    (void)arg;
    char text[64];
    /* Abnormal: a notice, and A carries on. */
    mote_proc *b = puppet(), *a = spawn_linker(b, true, false);
    tell(b, 'p');
    T_CHECK_EQ(t_recv_i64(), MOTE_EXIT_PANIC * 16 + 1);
    T_CHECK_EQ(end_of(b, text, sizeof text), MOTE_EXIT_PANIC);
    T_CHECK(strcmp(text, "puppet told to panic") == 0);
    tell(a, 'x');
    T_CHECK_EQ(t_recv_i64(), 0);
    T_CHECK_EQ(mote_cancel(a), 0);
    T_CHECK_EQ(end_of(a, NULL, 0), MOTE_EXIT_CANCELLED);

    /* Normal: a notice too; linking twice is one link (one notice). */
    b = puppet();
    a = spawn_linker(b, true, true);
    tell(b, 'r');
    T_CHECK_EQ(t_recv_i64(), MOTE_EXIT_NORMAL * 16 + 1);
    tell(a, 'x');
    T_CHECK_EQ(t_recv_i64(), 0); /* and no second notice came before it */
    T_CHECK_EQ(mote_cancel(a), 0);
    T_CHECK_EQ(end_of(a, NULL, 0), MOTE_EXIT_CANCELLED);
    mote_proc_release(b);
    return 0;
}

Test(link, trapping_turns_ends_into_notices) { T_RUN_OK(NULL, main_trapping, NULL); }

/* ---- Chains, unlink, already ended ---------------------------------------- */

typedef struct chain_arg {
    mote_proc *next, *report;
} chain_arg;

static void fn_chain(void *arg) {
    chain_arg *c = arg;
    if (c->next)
        T_CHECK_EQ(mote_link(c->next), 0);
    t_send_i64(c->report, 1);
    mote_proc_release(c->next);
    mote_proc_release(c->report);
    T_CHECK_EQ(mote_sleep(MOTE_SEC(3600)), -ECANCELED);
}

static int main_chain(void *arg) {
    (void)arg;
    enum { N = 20 };
    mote_proc *p[N];
    for (int i = 0; i < N; i++) {
        chain_arg c = {i ? mote_proc_ref(p[i - 1]) : NULL, mote_proc_ref(mote_self())};
        T_CHECK_EQ(mote_spawn_fn(&p[i], fn_chain, &c, sizeof c), 0);
        T_CHECK_EQ(t_recv_i64(), 1);
    }
    T_CHECK_EQ(mote_cancel(p[N / 2]), 0); /* spreads both ways along the chain */
    for (int i = 0; i < N; i++)
        T_CHECK_EQ(end_of(p[i], NULL, 0), MOTE_EXIT_CANCELLED);
    return 0;
}

Test(link, a_chain_goes_down_together) { T_RUN_OK(NULL, main_chain, NULL); }

static void fn_unlinker(void *arg) {
    linker *a = arg;
    T_CHECK_EQ(mote_link(a->peer), 0);
    T_CHECK_EQ(mote_unlink(a->peer), 0);
    T_CHECK_EQ(mote_unlink(a->peer), 0); /* not linked: no error */
    t_send_i64(a->report, 1);
    mote_msg *m = NULL;
    T_CHECK_EQ(mote_receive(&m, T_PATIENCE), 0); /* sent once the peer panicked */
    mote_msg_free(m);
    t_send_i64(a->report, 2);
    mote_proc_release(a->peer);
    mote_proc_release(a->report);
}

static int main_unlink(void *arg) {
    (void)arg;
    mote_proc *b = puppet(), *a = NULL;
    linker l = {mote_proc_ref(b), mote_proc_ref(mote_self()), false, false};
    T_CHECK_EQ(mote_spawn_fn(&a, fn_unlinker, &l, sizeof l), 0);
    T_CHECK_EQ(t_recv_i64(), 1);
    tell(b, 'p');
    T_CHECK_EQ(end_of(b, NULL, 0), MOTE_EXIT_PANIC);
    tell(a, 'x');
    T_CHECK_EQ(t_recv_i64(), 2);
    T_CHECK_EQ(end_of(a, NULL, 0), MOTE_EXIT_NORMAL);
    return 0;
}

Test(link, unlink) { T_RUN_OK(NULL, main_unlink, NULL); }

static int main_already_ended(void *arg) {
    (void)arg;
    /* Abnormally ended: linking to it cancels the linker at once. */
    mote_proc *b = puppet();
    tell(b, 'p');
    T_CHECK_EQ(end_of(mote_proc_ref(b), NULL, 0), MOTE_EXIT_PANIC);
    linker l = {mote_proc_ref(b), mote_proc_ref(mote_self()), false, false};
    mote_proc *a = NULL;
    T_CHECK_EQ(mote_spawn_fn(&a, fn_linker, &l, sizeof l), 0);
    T_CHECK_EQ(t_recv_i64(), -1);
    T_CHECK_EQ(end_of(a, NULL, 0), MOTE_EXIT_CANCELLED);
    /* A trapper gets the notice at once instead. */
    a = spawn_linker(b, true, false);
    T_CHECK_EQ(t_recv_i64(), MOTE_EXIT_PANIC * 16 + 1);
    T_CHECK_EQ(mote_cancel(a), 0);
    T_CHECK_EQ(end_of(a, NULL, 0), MOTE_EXIT_CANCELLED);
    mote_proc_release(b);
    return 0;
}

Test(link, to_an_ended_process) { T_RUN_OK(NULL, main_already_ended, NULL); }

/* ---- State processes, and pairs ending together --------------------------- */

static atomic_int dtor_runs;

static void count_dtor(void *state) {
    (void)state;
    atomic_fetch_add(&dtor_runs, 1);
}

static mote_result h_link(void *state, void *arg) {
    (void)state;
    return mote_error(mote_link(*(mote_proc **)arg));
}

static int main_state_pair(void *arg) {
    (void)arg;
    mote_proc *a = NULL, *b = NULL;
    T_CHECK_EQ(mote_spawn(&a, NULL, 8, count_dtor), 0);
    T_CHECK_EQ(mote_spawn(&b, NULL, 8, count_dtor), 0);
    mote_result r;
    T_CHECK_EQ(mote_call(a, h_link, &b, sizeof b, &r), 0);
    T_CHECK_EQ(r.err, 0);
    /* Keep a's handle until it ended: dropping the last one would end it
     * normally before b's end reaches it (links keep nothing alive). */
    mote_proc *keep = mote_proc_ref(a);
    T_CHECK_EQ(mote_cancel(b), 0);
    T_CHECK_EQ(end_of(a, NULL, 0), MOTE_EXIT_CANCELLED); /* idle, yet taken along */
    mote_proc_release(keep);
    T_CHECK_EQ(end_of(b, NULL, 0), MOTE_EXIT_CANCELLED);
    T_CHECK_EQ(atomic_load(&dtor_runs), 2);
    return 0;
}

Test(link, state_processes) {
    atomic_store(&dtor_runs, 0);
    T_RUN_OK(NULL, main_state_pair, NULL);
    cr_assert_eq(atomic_load(&dtor_runs), 2);
}

/* Linked pairs cancelled from both sides at once: no deadlock, both end. */
static int main_pairs(void *arg) {
    (void)arg;
    enum { PAIRS = 100 };
    mote_proc *a[PAIRS], *b[PAIRS];
    for (int i = 0; i < PAIRS; i++) {
        b[i] = puppet();
        chain_arg c = {mote_proc_ref(b[i]), mote_proc_ref(mote_self())};
        T_CHECK_EQ(mote_spawn_fn(&a[i], fn_chain, &c, sizeof c), 0);
    }
    for (int i = 0; i < PAIRS; i++)
        T_CHECK_EQ(t_recv_i64(), 1);
    for (int i = 0; i < PAIRS; i++) {
        T_CHECK_EQ(mote_cancel(a[i]), 0);
        T_CHECK_EQ(mote_cancel(b[i]), 0);
    }
    for (int i = 0; i < PAIRS; i++) {
        T_CHECK_EQ(end_of(a[i], NULL, 0), MOTE_EXIT_CANCELLED);
        T_CHECK_EQ(end_of(b[i], NULL, 0), MOTE_EXIT_CANCELLED);
    }
    return 0;
}

Test(link, pairs_ending_together) {
    for (int round = 0; round < T_SCALE(5, 2); round++) {
        mote_config cfg = {.threads = (unsigned)round % 3 + 1};
        T_RUN_OK(&cfg, main_pairs, NULL);
    }
}

/* ---- Errors ------------------------------------------------------------------ */

static int main_errors(void *arg) {
    (void)arg;
    T_CHECK_EQ(mote_link(NULL), -EINVAL);
    T_CHECK_EQ(mote_link(mote_self()), -EINVAL);
    T_CHECK_EQ(mote_unlink(NULL), -EINVAL);
    T_CHECK_EQ(mote_trap_exits(false), 0);
    return 0;
}

Test(link, errors) {
    T_RUN_OK(NULL, main_errors, NULL);
    cr_assert_eq(mote_link((mote_proc *)8), -EPERM);
    cr_assert_eq(mote_unlink((mote_proc *)8), -EPERM);
    cr_assert_eq(mote_trap_exits(true), -EPERM);
}
