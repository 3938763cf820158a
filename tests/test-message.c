/* Messages: FIFO per mailbox, argument copies, no lost or duplicated message. */
#include "helpers.h"

/* ---- Per-sender order bookkeeping, shared by the tests below ---------------- */

enum { MAX_SENDERS = 8 };

typedef struct seq_state {
    uint32_t next[MAX_SENDERS]; /* next seq expected from each sender */
    uint32_t count;
    uint32_t errors;
} seq_state;

typedef struct seq_msg {
    uint32_t sender, seq;
} seq_msg;

static mote_result h_record(void *state, void *arg) {
    seq_state *s = state;
    seq_msg m;
    memcpy(&m, arg, sizeof m);
    if (m.sender >= MAX_SENDERS || m.seq != s->next[m.sender])
        s->errors++;
    else
        s->next[m.sender] = m.seq + 1;
    s->count++;
    return mote_ok_i(0);
}

/* arg: int64_t number of senders; checks each sent `per` = state count. */
typedef struct verify_arg {
    uint32_t senders, per_sender;
} verify_arg;

static mote_result h_verify(void *state, void *arg) {
    seq_state *s = state;
    verify_arg v;
    memcpy(&v, arg, sizeof v);
    T_CHECK_EQ(s->errors, 0);
    T_CHECK_EQ(s->count, v.senders * v.per_sender);
    for (uint32_t i = 0; i < v.senders; i++)
        T_CHECK_EQ(s->next[i], v.per_sender);
    return mote_ok_i(s->count);
}

static mote_proc *spawn_seq(void) {
    mote_proc *p = NULL;
    T_CHECK_EQ(mote_spawn(&p, NULL, sizeof(seq_state), NULL), 0);
    return p;
}

/* Verify every receiver got exactly per_sender messages from each sender, in
 * order; returns the total. */
static int64_t verify_all(mote_proc **recv, int n, uint32_t senders, uint32_t per_sender) {
    int64_t total = 0;
    verify_arg v = {senders, per_sender};
    for (int i = 0; i < n; i++) {
        mote_result r = mote_error(-1);
        T_CHECK_EQ(mote_call(recv[i], h_verify, &v, sizeof v, &r), 0);
        T_CHECK_EQ(r.err, 0);
        total += r.i;
    }
    return total;
}

/* ---- FIFO ---------------------------------------------------------------------- */

static int main_fifo(void *arg) {
    (void)arg;
    mote_proc *p = spawn_seq();
    uint32_t n = T_SCALE(20000, 5000);
    for (uint32_t i = 0; i < n; i++) {
        seq_msg m = {0, i};
        T_CHECK_EQ(mote_cast(p, h_record, &m, sizeof m), 0);
    }
    T_CHECK_EQ(verify_all(&p, 1, 1, n), n);
    mote_proc_release(p);
    return 0;
}

Test(message, fifo_single_sender) { T_RUN_OK(NULL, main_fifo, NULL); }

/* Casts, asyncs and calls share one mailbox order. */
static int main_fifo_mixed(void *arg) {
    (void)arg;
    mote_proc *p = spawn_seq();
    enum { N = 3000 };
    mote_future *fs[N];
    size_t nf = 0;
    for (uint32_t i = 0; i < N; i++) {
        seq_msg m = {0, i};
        switch (i % 3) {
        case 0: T_CHECK_EQ(mote_cast(p, h_record, &m, sizeof m), 0); break;
        case 1: T_CHECK_EQ(mote_async(p, h_record, &m, sizeof m, &fs[nf++]), 0); break;
        default: T_CHECK_EQ(mote_call(p, h_record, &m, sizeof m, NULL), 0); break;
        }
    }
    for (size_t i = 0; i < nf; i++)
        t_await_value(fs[i], 0);
    T_CHECK_EQ(verify_all(&p, 1, 1, N), N);
    mote_proc_release(p);
    return 0;
}

Test(message, fifo_across_cast_async_call) { T_RUN_OK(NULL, main_fifo_mixed, NULL); }

/* ---- Arguments ------------------------------------------------------------------- */

typedef struct blob_check {
    size_t size;
    int misaligned, corrupt;
} blob_check;

static unsigned char pattern(size_t i, size_t size) { return (unsigned char)(i * 31 + size); }

static mote_result h_check_blob(void *state, void *arg) {
    blob_check *c = state;
    if ((uintptr_t)arg % 16 != 0)
        c->misaligned++;
    const unsigned char *b = arg;
    for (size_t i = 0; i < c->size; i++)
        if (b[i] != pattern(i, c->size)) {
            c->corrupt++;
            break;
        }
    return mote_ok_i((int64_t)c->size);
}

static mote_result h_get_blob_check(void *state, void *arg) {
    blob_check *out = *(blob_check **)arg;
    *out = *(blob_check *)state;
    return mote_ok_i(0);
}

static int main_args(void *arg) {
    (void)arg;
    static const size_t sizes[] = {1, 3, 8, 15, 16, 17, 100, 255, 4096, 65536, 1 << 20};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t size = sizes[k];
        blob_check init = {size, 0, 0};
        mote_proc *p = NULL;
        T_CHECK_EQ(mote_spawn(&p, &init, sizeof init, NULL), 0);
        unsigned char *buf = malloc(size + 1);
        T_CHECK(buf != NULL);
        /* Unaligned source; overwritten right after sending. */
        for (size_t i = 0; i < size; i++)
            buf[i + 1] = pattern(i, size);
        mote_future *f = NULL;
        T_CHECK_EQ(mote_cast(p, h_check_blob, buf + 1, size), 0);
        T_CHECK_EQ(mote_async(p, h_check_blob, buf + 1, size, &f), 0);
        memset(buf, 0, size + 1);
        free(buf);
        t_await_value(f, (int64_t)size);
        blob_check seen = {0};
        blob_check *where = &seen;
        T_CHECK_EQ(mote_call(p, h_get_blob_check, &where, sizeof where, NULL), 0);
        T_CHECK_EQ(seen.misaligned, 0);
        T_CHECK_EQ(seen.corrupt, 0);
        mote_proc_release(p);
    }
    return 0;
}

Test(message, arguments_are_copied_and_aligned) { T_RUN_OK(NULL, main_args, NULL); }

/* Pointers in arguments and results pass ownership. */
static mote_result h_take_string(void *state, void *arg) {
    (void)state;
    char *s = *(char **)arg;
    size_t len = strlen(s);
    char *up = malloc(len + 1);
    for (size_t i = 0; i <= len; i++)
        up[i] = (s[i] >= 'a' && s[i] <= 'z') ? (char)(s[i] - 32) : s[i];
    free(s);
    return mote_ok_p(up);
}

static int main_ownership(void *arg) {
    (void)arg;
    mote_proc *p = NULL;
    T_CHECK_EQ(mote_spawn(&p, NULL, 8, NULL), 0);
    for (int i = 0; i < 100; i++) {
        char *s = strdup("hello mote");
        mote_result r = mote_error(-1);
        T_CHECK_EQ(mote_call(p, h_take_string, &s, sizeof s, &r), 0);
        T_CHECK_EQ(r.err, 0);
        T_CHECK(r.p != NULL && strcmp(r.p, "HELLO MOTE") == 0);
        free(r.p);
    }
    mote_proc_release(p);
    return 0;
}

Test(message, pointers_pass_ownership) { T_RUN_OK(NULL, main_ownership, NULL); }

/* ---- Bad arguments ------------------------------------------------------------------ */

static int main_bad_args(void *arg) {
    (void)arg;
    mote_proc *p = t_spawn_counter(0);
    int64_t v = 1;
    mote_future *f = NULL;
    mote_result r;
    T_CHECK_EQ(mote_cast(NULL, t_h_add, &v, sizeof v), -EINVAL);
    T_CHECK_EQ(mote_cast(p, NULL, &v, sizeof v), -EINVAL);
    T_CHECK_EQ(mote_async(NULL, t_h_add, &v, sizeof v, &f), -EINVAL);
    T_CHECK_EQ(mote_async(p, NULL, &v, sizeof v, &f), -EINVAL);
    T_CHECK_EQ(mote_async(p, t_h_add, &v, sizeof v, NULL), -EINVAL);
    T_CHECK_EQ(mote_call(NULL, t_h_add, &v, sizeof v, &r), -EINVAL);
    T_CHECK_EQ(mote_call(p, NULL, &v, sizeof v, &r), -EINVAL);
    T_CHECK_EQ(mote_send(NULL, &v, sizeof v), -EINVAL);
    /* None of the failed sends reached the process. */
    T_CHECK_EQ(mote_call(p, t_h_get, NULL, 0, &r), 0);
    T_CHECK_EQ(r.i, 0);
    mote_proc_release(p);
    return 0;
}

Test(message, bad_arguments_are_einval) { T_RUN_OK(NULL, main_bad_args, NULL); }

/* ---- One million messages, several senders, a thousand receivers ------------------ */

enum {
    RECEIVERS = 1000,
    PROC_SENDERS = 4,
    THREAD_SENDERS = 4,
    SENDERS = PROC_SENDERS + THREAD_SENDERS,
    /* 8 senders x 1000 receivers x 125 = 1,000,000 messages. */
    PER_PAIR = T_SCALE(125, 12),
};

static mote_proc *receivers[RECEIVERS];

typedef struct sender_arg {
    uint32_t id;
    mote_proc *report_to; /* a reference owned by the sender */
} sender_arg;

static void send_all(const sender_arg *a) {
    for (uint32_t k = 0; k < PER_PAIR; k++) {
        for (int r = 0; r < RECEIVERS; r++) {
            seq_msg m = {a->id, k};
            int rc = mote_cast(receivers[r], h_record, &m, sizeof m);
            if (rc != 0)
                T_CHECK_EQ(rc, 0);
        }
        if (mote_self() != NULL)
            mote_yield();
    }
    t_send_i64(a->report_to, a->id);
    mote_proc_release(a->report_to);
}

static void proc_sender(void *arg) { send_all(arg); }

static void *thread_sender(void *arg) {
    T_CHECK(mote_self() == NULL);
    send_all(arg);
    return NULL;
}

static int main_million(void *arg) {
    (void)arg;
    for (int r = 0; r < RECEIVERS; r++)
        receivers[r] = spawn_seq();
    pthread_t threads[THREAD_SENDERS];
    sender_arg args[SENDERS];
    for (uint32_t s = 0; s < SENDERS; s++) {
        args[s].id = s;
        args[s].report_to = mote_proc_ref(mote_self());
        if (s < PROC_SENDERS)
            T_CHECK_EQ(mote_spawn_fn(NULL, proc_sender, &args[s], sizeof args[s]), 0);
        else
            threads[s - PROC_SENDERS] = t_thread(thread_sender, &args[s]);
    }
    /* Each sender reports once, after its last cast. */
    int seen[SENDERS] = {0};
    for (int s = 0; s < SENDERS; s++) {
        int64_t id = t_recv_i64();
        T_CHECK(id >= 0 && id < SENDERS);
        if (id >= 0 && id < SENDERS)
            seen[id]++;
    }
    for (int s = 0; s < SENDERS; s++)
        T_CHECK_EQ(seen[s], 1);
    for (int t = 0; t < THREAD_SENDERS; t++)
        t_join(threads[t]);
    int64_t total = verify_all(receivers, RECEIVERS, SENDERS, PER_PAIR);
    T_CHECK_EQ(total, (int64_t)SENDERS * RECEIVERS * PER_PAIR);
    for (int r = 0; r < RECEIVERS; r++)
        mote_proc_release(receivers[r]);
    return 0;
}

Test(message, million_messages_none_lost_or_duplicated) {
    mote_config cfg = {.threads = 2};
    T_RUN_OK(&cfg, main_million, NULL);
}

/* Casts from several foreign threads to one process, before any of them is
 * joined: the process sees every message once, each sender's in order. */
typedef struct burst_arg {
    mote_proc *p;
    uint32_t id, n;
} burst_arg;

static void *thread_burst(void *arg) {
    burst_arg *b = arg;
    for (uint32_t i = 0; i < b->n; i++) {
        seq_msg m = {b->id, i};
        T_CHECK_EQ(mote_cast(b->p, h_record, &m, sizeof m), 0);
    }
    return NULL;
}

static int main_foreign_burst(void *arg) {
    (void)arg;
    mote_proc *p = spawn_seq();
    uint32_t n = T_SCALE(20000, 3000);
    burst_arg args[MAX_SENDERS];
    pthread_t th[MAX_SENDERS];
    for (uint32_t i = 0; i < MAX_SENDERS; i++) {
        args[i] = (burst_arg){p, i, n};
        th[i] = t_thread(thread_burst, &args[i]);
    }
    for (int i = 0; i < MAX_SENDERS; i++)
        t_join(th[i]);
    T_CHECK_EQ(verify_all(&p, 1, MAX_SENDERS, n), (int64_t)MAX_SENDERS * n);
    mote_proc_release(p);
    return 0;
}

Test(message, foreign_threads_cast_concurrently) { T_RUN_OK(NULL, main_foreign_burst, NULL); }
