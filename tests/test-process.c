/* Processes: spawning with copied state, private state, destructors, identity. */
#include "helpers.h"

typedef struct point {
    int64_t x, y;
    char name[40];
} point;

static mote_result h_read_point(void *state, void *arg) {
    point *out = *(point **)arg;
    memcpy(out, state, sizeof *out);
    return mote_ok_i(0);
}

static mote_result h_move_point(void *state, void *arg) {
    point *p = state;
    int64_t d;
    memcpy(&d, arg, sizeof d);
    p->x += d;
    p->y -= d;
    return mote_ok_i(p->x);
}

static int main_copied_state(void *arg) {
    (void)arg;
    point init = {3, 4, "origin"};
    mote_proc *p = NULL;
    T_CHECK_EQ(mote_spawn(&p, &init, sizeof init, NULL), 0);
    T_CHECK(p != NULL);
    /* The process holds a copy: changing ours afterwards changes nothing. */
    init.x = 100;
    strcpy(init.name, "changed");

    point seen;
    point *where = &seen;
    mote_result r;
    T_CHECK_EQ(mote_call(p, h_read_point, &where, sizeof where, &r), 0);
    T_CHECK_EQ(seen.x, 3);
    T_CHECK_EQ(seen.y, 4);
    T_CHECK(strcmp(seen.name, "origin") == 0);

    int64_t d = 10;
    T_CHECK_EQ(mote_call(p, h_move_point, &d, sizeof d, &r), 0);
    T_CHECK_EQ(r.i, 13);
    T_CHECK_EQ(mote_call(p, h_read_point, &where, sizeof where, &r), 0);
    T_CHECK_EQ(seen.x, 13);
    T_CHECK_EQ(seen.y, -6);
    mote_proc_release(p);
    return 0;
}

Test(process, spawn_copies_state) { T_RUN_OK(NULL, main_copied_state, NULL); }

static int main_zero_state(void *arg) {
    (void)arg;
    mote_proc *p = NULL;
    T_CHECK_EQ(mote_spawn(&p, NULL, sizeof(point), NULL), 0);
    point seen;
    memset(&seen, 0xAB, sizeof seen);
    point *where = &seen;
    T_CHECK_EQ(mote_call(p, h_read_point, &where, sizeof where, NULL), 0);
    point zero;
    memset(&zero, 0, sizeof zero);
    T_CHECK(memcmp(&seen, &zero, sizeof zero) == 0);
    mote_proc_release(p);
    return 0;
}

Test(process, null_state_is_zero_filled) { T_RUN_OK(NULL, main_zero_state, NULL); }

/* Many processes spawned from one state value each own a private copy. */
static int main_private_state(void *arg) {
    (void)arg;
    enum { N = 50 };
    mote_proc *ps[N];
    for (int i = 0; i < N; i++)
        ps[i] = t_spawn_counter(0);
    /* Process i gets i+1 increments of i. */
    for (int i = 0; i < N; i++)
        for (int k = 0; k <= i; k++) {
            int64_t d = i;
            T_CHECK_EQ(mote_cast(ps[i], t_h_add, &d, sizeof d), 0);
        }
    for (int i = 0; i < N; i++) {
        mote_result r;
        T_CHECK_EQ(mote_call(ps[i], t_h_get, NULL, 0, &r), 0);
        T_CHECK_EQ(r.i, (int64_t)i * (i + 1));
        mote_proc_release(ps[i]);
    }
    return 0;
}

Test(process, state_is_private_per_process) { T_RUN_OK(NULL, main_private_state, NULL); }

/* ---- Destructors -------------------------------------------------------------- */

static atomic_int dtor_runs;
static atomic_llong dtor_last_value;

static void count_dtor(void *state) {
    atomic_store(&dtor_last_value, *(int64_t *)state);
    atomic_fetch_add(&dtor_runs, 1);
}

enum { CASTS = 1000 };

static int main_dtor_after_drain(void *arg) {
    (void)arg;
    int64_t zero = 0;
    mote_proc *p = NULL;
    T_CHECK_EQ(mote_spawn(&p, &zero, sizeof zero, count_dtor), 0);
    mote_proc *extra = mote_proc_ref(p);
    T_CHECK(extra == p);
    for (int i = 0; i < CASTS; i++) {
        int64_t one = 1;
        T_CHECK_EQ(mote_cast(p, t_h_add, &one, sizeof one), 0);
    }
    mote_result r;
    T_CHECK_EQ(mote_call(p, t_h_get, NULL, 0, &r), 0);
    T_CHECK_EQ(r.i, CASTS);
    /* Still referenced twice: no destructor yet. */
    mote_proc_release(extra);
    mote_sleep(MOTE_MSEC(2));
    T_CHECK_EQ(atomic_load(&dtor_runs), 0);
    T_CHECK_EQ(mote_call(p, t_h_get, NULL, 0, &r), 0);

    /* Queue more work, then drop the last handle at once: the queued
     * messages still run before the destructor. */
    for (int i = 0; i < CASTS; i++) {
        int64_t one = 1;
        T_CHECK_EQ(mote_cast(p, t_h_add, &one, sizeof one), 0);
    }
    mote_proc_release(p);
    t_wait_at_least(&dtor_runs, 1);
    T_CHECK_EQ(atomic_load(&dtor_last_value), 2 * CASTS);
    mote_sleep(MOTE_MSEC(2));
    T_CHECK_EQ(atomic_load(&dtor_runs), 1);
    return 0;
}

Test(process, dtor_runs_once_after_last_release_and_drain) {
    T_RUN_OK(NULL, main_dtor_after_drain, NULL);
    cr_assert_eq(atomic_load(&dtor_runs), 1, "destructor ran %d times", atomic_load(&dtor_runs));
}

/* A process still referenced when main returns is destroyed by shutdown. */
static int main_dtor_at_shutdown(void *arg) {
    mote_proc **keep = arg;
    int64_t v = 7;
    T_CHECK_EQ(mote_spawn(keep, &v, sizeof v, count_dtor), 0);
    int64_t one = 1;
    T_CHECK_EQ(mote_call(*keep, t_h_add, &one, sizeof one, NULL), 0);
    return 0; /* *keep is never released */
}

Test(process, dtor_runs_once_at_shutdown) {
    mote_proc *keep = NULL;
    T_RUN_OK(NULL, main_dtor_at_shutdown, &keep);
    cr_assert_eq(atomic_load(&dtor_runs), 1);
    cr_assert_eq(atomic_load(&dtor_last_value), 8);
}

/* Destructors of many processes, some released early, some at shutdown. */
static int main_many_dtors(void *arg) {
    int n = *(int *)arg;
    for (int i = 0; i < n; i++) {
        int64_t v = i;
        mote_proc *p = NULL;
        T_CHECK_EQ(mote_spawn(&p, &v, sizeof v, count_dtor), 0);
        if (i % 2 == 0) {
            int64_t one = 1;
            T_CHECK_EQ(mote_cast(p, t_h_add, &one, sizeof one), 0);
            mote_proc_release(p);
        } /* odd ones leak to shutdown */
    }
    t_wait_at_least(&dtor_runs, n / 2);
    return 0;
}

Test(process, every_dtor_runs_exactly_once) {
    int n = 1000;
    T_RUN_OK(NULL, main_many_dtors, &n);
    cr_assert_eq(atomic_load(&dtor_runs), n);
}

/* ---- Identity ------------------------------------------------------------------ */

typedef struct ident {
    uint64_t id;
    void *state_seen;
    void *self_state;
    uint64_t self_id;
} ident;

static mote_result h_identity(void *state, void *arg) {
    ident *out = *(ident **)arg;
    mote_proc *me = mote_self();
    out->state_seen = state;
    out->self_state = mote_self_state();
    out->self_id = me ? mote_proc_id(me) : 0;
    return mote_ok_i(0);
}

static int main_identity(void *arg) {
    (void)arg;
    /* The main process is a process too. */
    mote_proc *main_self = mote_self();
    T_CHECK(main_self != NULL);
    uint64_t main_id = main_self ? mote_proc_id(main_self) : 0;

    enum { N = 20 };
    mote_proc *ps[N];
    uint64_t ids[N];
    for (int i = 0; i < N; i++) {
        int64_t v = i;
        T_CHECK_EQ(mote_spawn(&ps[i], &v, sizeof v, NULL), 0);
        ids[i] = mote_proc_id(ps[i]);
        T_CHECK(ids[i] != main_id);
        for (int j = 0; j < i; j++)
            T_CHECK(ids[i] != ids[j]);
    }
    for (int i = 0; i < N; i++) {
        ident seen = {0};
        ident *where = &seen;
        T_CHECK_EQ(mote_call(ps[i], h_identity, &where, sizeof where, NULL), 0);
        T_CHECK_EQ(seen.self_id, ids[i]);
        T_CHECK(seen.state_seen != NULL);
        T_CHECK(seen.self_state == seen.state_seen);
        mote_result r;
        T_CHECK_EQ(mote_call(ps[i], t_h_get, NULL, 0, &r), 0);
        T_CHECK_EQ(r.i, i);
    }
    /* Ids are never reused, even after processes are freed. */
    for (int i = 0; i < N; i++)
        mote_proc_release(ps[i]);
    for (int i = 0; i < N; i++) {
        mote_proc *p = NULL;
        T_CHECK_EQ(mote_spawn(&p, NULL, 8, NULL), 0);
        uint64_t id = mote_proc_id(p);
        T_CHECK(id != main_id);
        for (int j = 0; j < N; j++)
            T_CHECK(id != ids[j]);
        mote_proc_release(p);
    }
    return 0;
}

Test(process, self_state_and_ids) { T_RUN_OK(NULL, main_identity, NULL); }

/* mote_self / mote_self_state from a foreign thread are NULL. */
static void *foreign_identity(void *arg) {
    (void)arg;
    T_CHECK(mote_self() == NULL);
    T_CHECK(mote_self_state() == NULL);
    return NULL;
}

static int main_foreign_identity(void *arg) {
    (void)arg;
    t_join(t_thread(foreign_identity, NULL));
    return 0;
}

Test(process, self_is_null_on_foreign_thread) {
    T_RUN_OK(NULL, main_foreign_identity, NULL);
    cr_assert(mote_self() == NULL);
    cr_assert(mote_self_state() == NULL);
}

/* ---- Spawning from a foreign thread ------------------------------------------- */

typedef struct foreign_spawn {
    mote_proc *proc;
    int rc;
} foreign_spawn;

static void *foreign_spawner(void *arg) {
    foreign_spawn *fs = arg;
    int64_t v = 40;
    fs->rc = mote_spawn(&fs->proc, &v, sizeof v, count_dtor);
    if (fs->rc == 0) {
        int64_t two = 2;
        mote_result r;
        T_CHECK_EQ(mote_call(fs->proc, t_h_add, &two, sizeof two, &r), 0);
        T_CHECK_EQ(r.i, 42);
    }
    return NULL;
}

static int main_foreign_spawn(void *arg) {
    (void)arg;
    foreign_spawn fs = {NULL, 1};
    t_join(t_thread(foreign_spawner, &fs));
    T_CHECK_EQ(fs.rc, 0);
    if (fs.rc == 0) {
        /* The handle works in any thread, including this process. */
        mote_result r;
        T_CHECK_EQ(mote_call(fs.proc, t_h_get, NULL, 0, &r), 0);
        T_CHECK_EQ(r.i, 42);
        mote_proc_release(fs.proc);
        t_wait_at_least(&dtor_runs, 1);
    }
    return 0;
}

Test(process, spawn_from_foreign_thread_while_running) {
    T_RUN_OK(NULL, main_foreign_spawn, NULL);
    cr_assert_eq(atomic_load(&dtor_runs), 1);
}

static void noop_fn(void *arg) { (void)arg; }

static void *foreign_spawn_no_runtime(void *arg) {
    foreign_spawn *fs = arg;
    fs->rc = mote_spawn(&fs->proc, NULL, 8, NULL);
    return NULL;
}

Test(process, spawn_without_runtime_is_eshutdown) {
    mote_proc *p = NULL;
    cr_assert_eq(mote_spawn(&p, NULL, 8, NULL), -ESHUTDOWN);
    cr_assert_eq(mote_spawn_fn(&p, noop_fn, NULL, 0), -ESHUTDOWN);
    foreign_spawn fs = {NULL, 1};
    t_join(t_thread(foreign_spawn_no_runtime, &fs));
    cr_assert_eq(fs.rc, -ESHUTDOWN);
    /* ... also after a runtime has come and gone. */
    T_RUN_OK(NULL, main_zero_state, NULL);
    cr_assert_eq(mote_spawn(&p, NULL, 8, NULL), -ESHUTDOWN);
}

/* Spawning from inside a handler: a tree of processes. */
static mote_result h_tree(void *state, void *arg) {
    (void)state;
    int64_t depth;
    memcpy(&depth, arg, sizeof depth);
    if (depth == 0)
        return mote_ok_i(1);
    mote_proc *kids[2];
    mote_future *fs[2];
    int64_t sub = depth - 1;
    for (int i = 0; i < 2; i++) {
        T_CHECK_EQ(mote_spawn(&kids[i], NULL, 8, NULL), 0);
        T_CHECK_EQ(mote_async(kids[i], h_tree, &sub, sizeof sub, &fs[i]), 0);
    }
    int64_t total = 1;
    for (int i = 0; i < 2; i++) {
        mote_result r;
        T_CHECK_EQ(mote_await(fs[i], &r), 0);
        total += r.i;
        mote_proc_release(kids[i]);
    }
    return mote_ok_i(total);
}

static int main_tree(void *arg) {
    (void)arg;
    mote_proc *root = NULL;
    T_CHECK_EQ(mote_spawn(&root, NULL, 8, NULL), 0);
    int64_t depth = 9;
    mote_result r;
    T_CHECK_EQ(mote_call(root, h_tree, &depth, sizeof depth, &r), 0);
    T_CHECK_EQ(r.i, (1 << 10) - 1);
    mote_proc_release(root);
    return 0;
}

Test(process, spawn_tree_from_handlers) { T_RUN_OK(NULL, main_tree, NULL); }
