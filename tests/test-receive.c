/* Erlang style: mote_spawn_fn, mote_send / mote_receive, timeouts, reply-to. */
#include "helpers.h"

typedef struct spawn_arg {
    mote_proc *parent;
    int64_t a, b;
    char text[32];
} spawn_arg;

static void fn_report_arg(void *arg) {
    spawn_arg *s = arg;
    T_CHECK(mote_self() != NULL);
    T_CHECK(mote_self() != s->parent);
    t_send_i64(s->parent, s->a + s->b);
    t_send_i64(s->parent, strcmp(s->text, "copied") == 0);
    mote_proc_release(s->parent);
}

static int main_spawn_fn(void *arg) {
    (void)arg;
    spawn_arg s = {mote_proc_ref(mote_self()), 40, 2, "copied"};
    mote_proc *p = NULL;
    T_CHECK_EQ(mote_spawn_fn(&p, fn_report_arg, &s, sizeof s), 0);
    T_CHECK(p != NULL);
    /* The child has its own copy. */
    s.a = 1000;
    strcpy(s.text, "changed");
    T_CHECK_EQ(t_recv_i64(), 42);
    T_CHECK_EQ(t_recv_i64(), 1);
    mote_proc_release(p);

    /* out == NULL: the handle is dropped at once, but fn still runs. */
    for (int i = 0; i < 10; i++) {
        spawn_arg s2 = {mote_proc_ref(mote_self()), i, i, "copied"};
        T_CHECK_EQ(mote_spawn_fn(NULL, fn_report_arg, &s2, sizeof s2), 0);
    }
    int64_t sum = 0;
    for (int i = 0; i < 20; i++)
        sum += t_recv_i64();
    T_CHECK_EQ(sum, 90 + 10);
    return 0;
}

Test(receive, spawn_fn_copies_arg) { T_RUN_OK(NULL, main_spawn_fn, NULL); }

static atomic_int null_arg_seen;

static void fn_check_null(void *arg) {
    atomic_store(&null_arg_seen, arg == NULL ? 1 : 2);
}

static int main_spawn_fn_args(void *arg) {
    (void)arg;
    mote_proc *p = NULL;
    T_CHECK_EQ(mote_spawn_fn(&p, NULL, NULL, 0), -EINVAL);
    T_CHECK_EQ(mote_spawn_fn(NULL, fn_check_null, NULL, 0), 0);
    t_wait_at_least(&null_arg_seen, 1);
    T_CHECK_EQ(atomic_load(&null_arg_seen), 1);
    return 0;
}

Test(receive, spawn_fn_arguments) { T_RUN_OK(NULL, main_spawn_fn_args, NULL); }

/* ---- send / receive ---------------------------------------------------------------- */

static int main_send_receive(void *arg) {
    (void)arg;
    mote_proc *me = mote_self();
    /* To oneself: copies, in order, sizes kept. */
    char small[] = "hello";
    T_CHECK_EQ(mote_send(me, small, sizeof small), 0);
    small[0] = 'J';
    size_t big_size = 100000;
    unsigned char *big = malloc(big_size);
    for (size_t i = 0; i < big_size; i++)
        big[i] = (unsigned char)(i * 7);
    T_CHECK_EQ(mote_send(me, big, big_size), 0);
    memset(big, 0, big_size);
    int64_t v = 3;
    T_CHECK_EQ(mote_send(me, &v, sizeof v), 0);

    mote_msg *m = NULL;
    T_CHECK_EQ(mote_receive(&m, 0), 0);
    if (m) {
        T_CHECK_EQ(mote_msg_size(m), 6);
        T_CHECK(strcmp(mote_msg_data(m), "hello") == 0);
        mote_msg_free(m);
    }
    m = NULL;
    T_CHECK_EQ(mote_receive(&m, MOTE_FOREVER), 0);
    if (m) {
        T_CHECK_EQ(mote_msg_size(m), big_size);
        const unsigned char *d = mote_msg_data(m);
        size_t bad = 0;
        for (size_t i = 0; i < big_size; i++)
            bad += d[i] != (unsigned char)(i * 7);
        T_CHECK_EQ(bad, 0);
        mote_msg_free(m);
    }
    T_CHECK_EQ(t_recv_i64(), 3);
    free(big);
    return 0;
}

Test(receive, send_copies_data_in_order) { T_RUN_OK(NULL, main_send_receive, NULL); }

static int main_receive_timeout(void *arg) {
    (void)arg;
    mote_msg *m = NULL;
    T_CHECK_EQ(mote_receive(&m, 0), -ETIMEDOUT);
    int64_t t0 = mote_now();
    T_CHECK_EQ(mote_receive(&m, MOTE_MSEC(20)), -ETIMEDOUT);
    T_CHECK(mote_now() - t0 >= MOTE_MSEC(20));
    /* A message that arrives later is still received. */
    t_send_i64(mote_self(), 9);
    T_CHECK_EQ(t_recv_i64(), 9);
    T_CHECK_EQ(mote_receive(&m, MOTE_MSEC(1)), -ETIMEDOUT);
    T_CHECK_EQ(mote_receive(NULL, 0), -EINVAL);
    return 0;
}

Test(receive, receive_times_out) { T_RUN_OK(NULL, main_receive_timeout, NULL); }

/* A message sent while the receiver waits with a timeout wakes it. */
static void fn_delayed_sender(void *arg) {
    mote_proc *to = *(mote_proc **)arg;
    mote_sleep(MOTE_MSEC(5));
    t_send_i64(to, 17);
    mote_proc_release(to);
}

static int main_receive_wakes(void *arg) {
    (void)arg;
    mote_proc *me = mote_proc_ref(mote_self());
    T_CHECK_EQ(mote_spawn_fn(NULL, fn_delayed_sender, &me, sizeof me), 0);
    mote_msg *m = NULL;
    T_CHECK_EQ(mote_receive(&m, T_PATIENCE), 0);
    if (m) {
        int64_t v = 0;
        memcpy(&v, mote_msg_data(m), sizeof v);
        T_CHECK_EQ(v, 17);
        mote_msg_free(m);
    }
    return 0;
}

Test(receive, receive_with_timeout_wakes_on_message) { T_RUN_OK(NULL, main_receive_wakes, NULL); }

static void *foreign_receive(void *arg) {
    (void)arg;
    mote_msg *m = NULL;
    T_CHECK_EQ(mote_receive(&m, 0), -EPERM);
    T_CHECK_EQ(mote_receive(&m, MOTE_MSEC(1)), -EPERM);
    return NULL;
}

static int main_foreign_receive(void *arg) {
    (void)arg;
    t_join(t_thread(foreign_receive, NULL));
    return 0;
}

Test(receive, receive_outside_a_process_is_eperm) {
    mote_msg *m = NULL;
    cr_assert_eq(mote_receive(&m, 0), -EPERM);
    T_RUN_OK(NULL, main_foreign_receive, NULL);
    cr_assert_eq(mote_receive(&m, 0), -EPERM);
}

/* ---- Ping / pong with a reply-to handle --------------------------------------------- */

typedef struct ping {
    mote_proc *reply_to; /* a reference, owned by the receiver */
    int64_t n;
} ping;

static void fn_pong(void *arg) {
    (void)arg;
    for (;;) {
        mote_msg *m = NULL;
        int rc = mote_receive(&m, MOTE_FOREVER);
        T_CHECK_EQ(rc, 0);
        if (rc != 0)
            return;
        ping p;
        T_CHECK_EQ(mote_msg_size(m), sizeof p);
        memcpy(&p, mote_msg_data(m), sizeof p);
        mote_msg_free(m);
        if (p.n < 0) {
            t_send_i64(p.reply_to, -1);
            mote_proc_release(p.reply_to);
            return;
        }
        t_send_i64(p.reply_to, p.n + 1);
        mote_proc_release(p.reply_to);
    }
}

static int main_pingpong(void *arg) {
    (void)arg;
    mote_proc *pong = NULL;
    T_CHECK_EQ(mote_spawn_fn(&pong, fn_pong, NULL, 0), 0);
    int rounds = T_SCALE(10000, 1000);
    for (int i = 0; i < rounds; i++) {
        ping p = {mote_proc_ref(mote_self()), i * 2};
        T_CHECK_EQ(mote_send(pong, &p, sizeof p), 0);
        int64_t got = t_recv_i64();
        if (got != i * 2 + 1) {
            T_CHECK_EQ(got, i * 2 + 1);
            break;
        }
    }
    ping stop = {mote_proc_ref(mote_self()), -1};
    T_CHECK_EQ(mote_send(pong, &stop, sizeof stop), 0);
    T_CHECK_EQ(t_recv_i64(), -1);
    mote_proc_release(pong);
    return 0;
}

Test(receive, ping_pong_with_reply_to) { T_RUN_OK(NULL, main_pingpong, NULL); }

/* The seed's shape: the child first receives its parent, then replies. */
static void fn_seed_child(void *arg) {
    (void)arg;
    mote_msg *m = NULL;
    T_CHECK_EQ(mote_receive(&m, MOTE_FOREVER), 0);
    if (!m)
        return;
    mote_proc *reply_to = NULL;
    memcpy(&reply_to, mote_msg_data(m), sizeof reply_to);
    mote_msg_free(m);
    T_CHECK_EQ(mote_send(reply_to, "pong", 5), 0);
    mote_proc_release(reply_to);
}

static int main_seed_pingpong(void *arg) {
    (void)arg;
    mote_proc *child = NULL;
    T_CHECK_EQ(mote_spawn_fn(&child, fn_seed_child, NULL, 0), 0);
    mote_proc *me = mote_proc_ref(mote_self());
    T_CHECK_EQ(mote_send(child, &me, sizeof me), 0);
    mote_msg *m = NULL;
    T_CHECK_EQ(mote_receive(&m, T_PATIENCE), 0);
    if (m) {
        T_CHECK_EQ(mote_msg_size(m), 5);
        T_CHECK(strcmp(mote_msg_data(m), "pong") == 0);
        mote_msg_free(m);
    }
    mote_proc_release(child);
    return 0;
}

Test(receive, seed_child_receives_parent_then_replies) { T_RUN_OK(NULL, main_seed_pingpong, NULL); }

/* ---- Call messages met by receive ------------------------------------------------------ */

static atomic_int log_len;
static int64_t log_buf[64];

static void log_add(int64_t v) {
    int i = atomic_fetch_add(&log_len, 1);
    if (i < 64)
        log_buf[i] = v;
}

static mote_result h_log(void *state, void *arg) {
    (void)state;
    int64_t v;
    memcpy(&v, arg, sizeof v);
    log_add(v);
    return mote_ok_i(v * 10);
}

static void fn_logger(void *arg) {
    mote_proc *parent = *(mote_proc **)arg;
    for (int i = 0; i < 4; i++)
        log_add(1000 + t_recv_i64());
    t_send_i64(parent, 0);
    mote_proc_release(parent);
}

static int main_calls_in_receive(void *arg) {
    (void)arg;
    mote_proc *me = mote_proc_ref(mote_self());
    mote_proc *p = NULL;
    T_CHECK_EQ(mote_spawn_fn(&p, fn_logger, &me, sizeof me), 0);
    int64_t v;
    v = 1;
    T_CHECK_EQ(mote_cast(p, h_log, &v, sizeof v), 0);
    t_send_i64(p, 10);
    v = 2;
    T_CHECK_EQ(mote_cast(p, h_log, &v, sizeof v), 0);
    mote_future *f = NULL;
    v = 3;
    T_CHECK_EQ(mote_async(p, h_log, &v, sizeof v, &f), 0);
    t_send_i64(p, 20);
    t_send_i64(p, 30);
    t_await_value(f, 30);
    /* A synchronous call is served while the process waits in receive. */
    mote_result r;
    v = 4;
    T_CHECK_EQ(mote_call(p, h_log, &v, sizeof v, &r), 0);
    T_CHECK_EQ(r.i, 40);
    t_send_i64(p, 40);
    T_CHECK_EQ(t_recv_i64(), 0);

    static const int64_t want[] = {1, 1010, 2, 3, 1020, 1030, 4, 1040};
    T_CHECK_EQ(atomic_load(&log_len), 8);
    for (int i = 0; i < 8; i++)
        T_CHECK_EQ(log_buf[i], want[i]);

    /* After fn returned, the process still serves calls while a handle is held. */
    v = 5;
    T_CHECK_EQ(mote_call(p, h_log, &v, sizeof v, &r), 0);
    T_CHECK_EQ(r.i, 50);
    T_CHECK_EQ(atomic_load(&log_len), 9);
    mote_proc_release(p);
    return 0;
}

Test(receive, call_messages_met_by_receive_run_in_order) { T_RUN_OK(NULL, main_calls_in_receive, NULL); }

/* Data messages from several senders: each sender's arrive in order. */
typedef struct seq_sender {
    mote_proc *to;
    int64_t id, n;
} seq_sender;

static void fn_seq_sender(void *arg) {
    seq_sender *s = arg;
    for (int64_t i = 0; i < s->n; i++)
        t_send_i64(s->to, s->id * 1000000 + i);
    mote_proc_release(s->to);
}

static void *thread_seq_sender(void *arg) {
    fn_seq_sender(arg);
    return NULL;
}

static int main_receive_order(void *arg) {
    (void)arg;
    enum { S = 4 };
    int64_t n = T_SCALE(5000, 1000);
    seq_sender ss[S];
    pthread_t th[2];
    for (int s = 0; s < S; s++) {
        ss[s] = (seq_sender){mote_proc_ref(mote_self()), s, n};
        if (s < 2)
            T_CHECK_EQ(mote_spawn_fn(NULL, fn_seq_sender, &ss[s], sizeof ss[s]), 0);
        else
            th[s - 2] = t_thread(thread_seq_sender, &ss[s]);
    }
    int64_t next[S] = {0};
    for (int64_t i = 0; i < S * n; i++) {
        int64_t v = t_recv_i64();
        int64_t s = v / 1000000, k = v % 1000000;
        T_CHECK(s >= 0 && s < S);
        if (s < 0 || s >= S)
            break;
        if (k != next[s]) {
            T_CHECK_EQ(k, next[s]);
            break;
        }
        next[s]++;
    }
    for (int s = 0; s < S; s++)
        T_CHECK_EQ(next[s], n);
    mote_msg *m = NULL;
    T_CHECK_EQ(mote_receive(&m, MOTE_MSEC(1)), -ETIMEDOUT);
    t_join(th[0]);
    t_join(th[1]);
    return 0;
}

Test(receive, data_messages_fifo_per_sender) { T_RUN_OK(NULL, main_receive_order, NULL); }
