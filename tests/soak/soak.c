/*
 * soak.c -- a long mixed workload that checks every count and watches RSS.
 *
 * Rounds of, all at once: spawns and casts with exact counts, futures
 * (async, poll, await), receive loops, TCP echo over loopback with random
 * abrupt disconnects (every byte compared, checksums of both sides),
 * timers, blocking sections, and files (write, read back, compare). It
 * runs for SOAK_SECONDS (default 600), samples RSS (/proc/self/statm)
 * every second and prints a line every 10 s.
 *
 * Fails (exit 1) if a count or a byte is off, or if memory grows: after a
 * warm-up (the first sixth of the run, at least 10 s), the largest RSS in
 * the last third of the samples must stay within 1.1 x the largest in the
 * first third, plus 8 MiB of slack (slab and stack caches settle in steps).
 */
#include <errno.h>
#include <mote.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_SAMPLES 100000

static struct {
    int64_t end;            /* mote_now() deadline */
    atomic_int failed;
    char addr[64];          /* the echo server's */
    atomic_llong rounds, msgs, futs, recvs, conns, cuts, bytes, files, sleeps, sections;
    atomic_llong srv_done, srv_clean;        /* echo connections the server finished */
    atomic_ullong cli_sum, srv_sum;          /* checksums of clean connections */
    atomic_int echo_live, stop, acceptor_done;
    long rss[MAX_SAMPLES];                   /* KiB, one per second */
    atomic_int nrss;
} G;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "soak: %s:%d: %s: ", __FILE__, __LINE__, #cond);                      \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            atomic_store(&G.failed, 1);                                                            \
        }                                                                                          \
    } while (0)

static uint32_t rnd(uint32_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static uint64_t fnv(uint64_t h, const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

static long rss_kib(void) {
    long size = 0, res = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &res) != 2)
            res = 0;
        fclose(f);
    }
    return res * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Report to the round's process: one data message per finished job. */
static void done(mote_proc *to) {
    int one = 1;
    CHECK(mote_send(to, &one, sizeof one) == 0, "report");
}

/* ---- Messages: spawn counters, cast exact counts from several senders ---- */

static mote_result h_add(void *state, void *arg) {
    *(int64_t *)state += *(int64_t *)arg;
    return mote_ok_i(*(int64_t *)state);
}

static mote_result h_get(void *state, void *arg) {
    (void)arg;
    return mote_ok_i(*(int64_t *)state);
}

typedef struct {
    mote_proc *target, *report;
    int n;
} sender_arg;

static void sender(void *arg) {
    sender_arg *a = arg;
    int64_t one = 1;
    for (int i = 0; i < a->n; i++)
        CHECK(mote_cast(a->target, h_add, &one, sizeof one) == 0, "cast");
    mote_proc_release(a->target);
    done(a->report);
    mote_proc_release(a->report);
}

static void job_messages(mote_proc *me, uint32_t *seed) {
    enum { SENDERS = 4 };
    int n = 100 + (int)(rnd(seed) % 400);
    mote_proc *p = NULL;
    CHECK(mote_spawn(&p, NULL, sizeof(int64_t), NULL) == 0, "spawn");
    for (int i = 0; i < SENDERS; i++) {
        sender_arg a = {mote_proc_ref(p), mote_proc_ref(me), n};
        CHECK(mote_spawn_fn(NULL, sender, &a, sizeof a) == 0, "spawn_fn");
    }
    for (int i = 0; i < SENDERS; i++) {
        mote_msg *m;
        CHECK(mote_receive(&m, MOTE_SEC(60)) == 0, "sender report");
        mote_msg_free(m);
    }
    mote_result r;
    CHECK(mote_call(p, h_get, NULL, 0, &r) == 0 && r.i == (int64_t)SENDERS * n, "count %lld, want %d",
          (long long)r.i, SENDERS * n);
    mote_proc_release(p);
    atomic_fetch_add(&G.msgs, SENDERS * n);
}

/* ---- Futures: async to several processes, collected with poll and await ---- */

static void job_futures(uint32_t *seed) {
    enum { N = 64 };
    mote_proc *p[4];
    for (int i = 0; i < 4; i++)
        CHECK(mote_spawn(&p[i], NULL, sizeof(int64_t), NULL) == 0, "spawn");
    mote_future *f[N], *ready[N];
    int64_t want = 0;
    for (int i = 0; i < N; i++) {
        int64_t v = rnd(seed) % 1000;
        want += v;
        CHECK(mote_async(p[i % 4], h_add, &v, sizeof v, &f[i]) == 0, "async");
    }
    int64_t last[4] = {0};
    size_t n = N;
    int got = 0;
    while (n > 0) {
        /* poll moves ready ones out of f and keeps the order of the rest */
        int k = mote_poll(f, &n, ready, N, MOTE_SEC(60));
        CHECK(k > 0, "poll %d", k);
        if (k <= 0)
            break;
        for (int i = 0; i < k; i++) {
            mote_result r;
            CHECK(mote_await(ready[i], &r) == 0 && r.err == 0, "await");
            got++;
        }
    }
    CHECK(got == N, "%d futures of %d", got, N);
    for (int i = 0; i < 4; i++) {
        mote_result r;
        CHECK(mote_call(p[i], h_get, NULL, 0, &r) == 0, "get");
        last[i] = r.i;
        mote_proc_release(p[i]);
    }
    CHECK(last[0] + last[1] + last[2] + last[3] == want, "future sums %lld, want %lld",
          (long long)(last[0] + last[1] + last[2] + last[3]), (long long)want);
    atomic_fetch_add(&G.futs, N);
}

/* ---- Receive loops ---- */

typedef struct {
    mote_proc *report;
    int n;
} recv_arg;

static void receiver(void *arg) {
    recv_arg *a = arg;
    int64_t sum = 0;
    for (int i = 0; i < a->n; i++) {
        mote_msg *m;
        if (mote_receive(&m, MOTE_SEC(60)) != 0) {
            CHECK(0, "receive %d of %d", i, a->n);
            break;
        }
        sum += *(const int64_t *)mote_msg_data(m);
        mote_msg_free(m);
    }
    CHECK(mote_send(a->report, &sum, sizeof sum) == 0, "reply");
    mote_proc_release(a->report);
}

static void job_receive(mote_proc *me, uint32_t *seed) {
    int n = 50 + (int)(rnd(seed) % 200);
    recv_arg a = {mote_proc_ref(me), n};
    mote_proc *r = NULL;
    CHECK(mote_spawn_fn(&r, receiver, &a, sizeof a) == 0, "spawn receiver");
    int64_t want = 0;
    for (int64_t i = 0; i < n; i++) {
        want += i;
        CHECK(mote_send(r, &i, sizeof i) == 0, "send");
    }
    mote_msg *m;
    CHECK(mote_receive(&m, MOTE_SEC(60)) == 0, "receiver reply");
    CHECK(mote_msg_size(m) == sizeof(int64_t) && *(const int64_t *)mote_msg_data(m) == want, "sum");
    mote_msg_free(m);
    mote_proc_release(r);
    atomic_fetch_add(&G.recvs, n);
}

/* ---- TCP echo with abrupt disconnects ---- */

static void echo_conn(void *arg) {
    mote_socket *s = *(mote_socket **)arg;
    char buf[16384];
    uint64_t h = 1469598103934665603ull;
    int64_t n;
    while ((n = mote_socket_read(s, buf, sizeof buf, MOTE_SEC(60))) > 0) {
        h = fnv(h, (unsigned char *)buf, (size_t)n);
        if (mote_socket_write_all(s, buf, (size_t)n, MOTE_SEC(60)) != 0) {
            n = -1;
            break;
        }
    }
    if (n == 0) { /* a clean end: the client read back everything it sent */
        atomic_fetch_add(&G.srv_clean, 1);
        atomic_fetch_add(&G.srv_sum, h);
    } else {
        CHECK(n == -ECONNRESET || n == -EPIPE || n == -1, "echo read %lld", (long long)n);
    }
    mote_socket_close(s);
    atomic_fetch_add(&G.srv_done, 1);
    atomic_fetch_sub(&G.echo_live, 1);
}

/* Owns the listener and closes it once told to stop (a close from another
 * process could race with its next accept on a freed handle). */
static void acceptor(void *arg) {
    mote_socket *l = *(mote_socket **)arg, *c;
    while (!atomic_load(&G.stop)) {
        int r = mote_socket_accept(l, &c, NULL, MOTE_MSEC(50));
        if (r == -ETIMEDOUT)
            continue;
        CHECK(r == 0, "accept %d", r);
        if (r != 0)
            break;
        atomic_fetch_add(&G.echo_live, 1);
        CHECK(mote_spawn_fn(NULL, echo_conn, &c, sizeof c) == 0, "spawn echo");
    }
    mote_socket_close(l);
    atomic_store(&G.acceptor_done, 1);
}

typedef struct {
    mote_proc *report;
    uint32_t seed;
} client_arg;

static void client(void *arg) {
    client_arg *a = arg;
    uint32_t seed = a->seed;
    mote_socket *s = NULL;
    int r = mote_tcp_connect(&s, G.addr, MOTE_SEC(60));
    CHECK(r == 0, "connect %d", r);
    if (r == 0) {
        enum { CHUNK = 8192 };
        char *back = malloc(CHUNK);
        int chunks = 1 + (int)(rnd(&seed) % 16);
        int cut = rnd(&seed) % 6 == 0 ? (int)(rnd(&seed) % (unsigned)chunks) : -1;
        uint64_t h = 1469598103934665603ull;
        for (int i = 0; i < chunks; i++) {
            size_t len = 1 + rnd(&seed) % CHUNK;
            char *o = malloc(len);
            for (size_t j = 0; j < len; j++)
                o[j] = (char)rnd(&seed);
            if (i == cut) { /* write half, then reset the connection */
                mote_socket_write_all(s, o, len / 2 + 1, MOTE_SEC(60));
                struct linger lg = {1, 0};
                setsockopt(mote_socket_fd(s), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
                free(o);
                atomic_fetch_add(&G.cuts, 1);
                break;
            }
            CHECK(mote_socket_write_all(s, o, len, MOTE_SEC(60)) == 0, "write");
            CHECK(mote_socket_read_exact(s, back, len, MOTE_SEC(60)) == 0, "read back");
            CHECK(memcmp(o, back, len) == 0, "echoed bytes differ");
            h = fnv(h, (unsigned char *)o, len);
            atomic_fetch_add(&G.bytes, (long long)len);
            free(o);
        }
        if (cut < 0) {
            mote_socket_shutdown(s, SHUT_WR);
            char c;
            CHECK(mote_socket_read(s, &c, 1, MOTE_SEC(60)) == 0, "end of stream");
            atomic_fetch_add(&G.cli_sum, h);
        }
        free(back);
        mote_socket_close(s);
        atomic_fetch_add(&G.conns, 1);
    }
    done(a->report);
    mote_proc_release(a->report);
}

/* ---- Timers, blocking sections, files ---- */

static void job_timers(uint32_t *seed) {
    mote_future *t[4], *ready[4];
    for (int i = 0; i < 4; i++)
        CHECK(mote_timer(&t[i], MOTE_USEC(rnd(seed) % 2000)) == 0, "timer");
    size_t n = 4;
    while (n > 0) {
        int k = mote_poll(t, &n, ready, 4, MOTE_SEC(60));
        CHECK(k > 0, "timer poll %d", k);
        if (k <= 0)
            break;
        for (int i = 0; i < k; i++)
            CHECK(mote_await(ready[i], NULL) == 0, "timer await");
    }
    int64_t t0 = mote_now(), d = MOTE_USEC(rnd(seed) % 1000);
    mote_sleep(d);
    CHECK(mote_now() - t0 >= d, "short sleep");
    atomic_fetch_add(&G.sleeps, 5);
    mote_blocking_begin();
    usleep(rnd(seed) % 300);
    mote_blocking_end();
    atomic_fetch_add(&G.sections, 1);
}

static void job_file(uint32_t *seed) {
    char path[96];
    snprintf(path, sizeof path, "/tmp/mote-soak-%d-%u", (int)getpid(), rnd(seed));
    size_t len = 1 + rnd(seed) % 65536;
    unsigned char *a = malloc(len), *b = malloc(len);
    for (size_t i = 0; i < len; i++)
        a[i] = (unsigned char)rnd(seed);
    mote_file *f;
    CHECK(mote_file_open(&f, path, MOTE_FILE_WRITE | MOTE_FILE_CREATE | MOTE_FILE_TRUNCATE) == 0, "open");
    CHECK(mote_file_write_all(f, a, len) == 0, "file write");
    CHECK(mote_file_close(f) == 0, "close");
    CHECK(mote_file_open(&f, path, MOTE_FILE_READ) == 0, "reopen");
    CHECK(mote_stream_read_exact(mote_file_stream(f), b, len, -1) == 0, "file read");
    CHECK(memcmp(a, b, len) == 0, "file bytes differ");
    CHECK(mote_file_close(f) == 0, "close");
    CHECK(mote_fs_remove(path) == 0, "remove");
    free(a);
    free(b);
    atomic_fetch_add(&G.files, 1);
}

/* ---- A round: every job at once, from several processes ---- */

typedef struct {
    mote_proc *report;
    uint32_t seed;
    int kind;
} job_arg;

static void job(void *arg) {
    job_arg *a = arg;
    uint32_t seed = a->seed;
    mote_proc *me = mote_proc_ref(mote_self());
    switch (a->kind) {
    case 0: job_messages(me, &seed); break;
    case 1: job_futures(&seed); break;
    case 2: job_receive(me, &seed); break;
    case 3: job_timers(&seed); break;
    default: job_file(&seed); break;
    }
    mote_proc_release(me);
    done(a->report);
    mote_proc_release(a->report);
}

static void run_round(uint32_t *seed) {
    enum { JOBS = 5, CLIENTS = 6 };
    mote_proc *me = mote_self();
    for (int k = 0; k < JOBS; k++) {
        job_arg a = {mote_proc_ref(me), rnd(seed), k};
        CHECK(mote_spawn_fn(NULL, job, &a, sizeof a) == 0, "spawn job");
    }
    for (int i = 0; i < CLIENTS; i++) {
        client_arg a = {mote_proc_ref(me), rnd(seed)};
        CHECK(mote_spawn_fn(NULL, client, &a, sizeof a) == 0, "spawn client");
    }
    for (int i = 0; i < JOBS + CLIENTS; i++) {
        mote_msg *m;
        int r = mote_receive(&m, MOTE_SEC(120));
        CHECK(r == 0, "round report %d: %d", i, r);
        if (r != 0)
            break;
        mote_msg_free(m);
    }
    atomic_fetch_add(&G.rounds, 1);
}

/* ---- RSS sampling ---- */

static void sampler(void *arg) {
    (void)arg;
    int64_t start = mote_now();
    for (int i = 1; mote_now() < G.end && i < MAX_SAMPLES; i++) {
        int64_t left = start + MOTE_SEC(i) - mote_now();
        if (left > 0) /* a negative time would sleep forever */
            mote_sleep(left);
        long kib = rss_kib();
        G.rss[atomic_load(&G.nrss)] = kib;
        atomic_fetch_add(&G.nrss, 1);
        if (i % 10 == 0)
            printf("soak: t=%ds rss=%ld KiB rounds=%lld msgs=%lld futures=%lld recvs=%lld conns=%lld "
                   "cuts=%lld bytes=%lld files=%lld\n",
                   i, kib, (long long)G.rounds, (long long)G.msgs, (long long)G.futs, (long long)G.recvs,
                   (long long)G.conns, (long long)G.cuts, (long long)G.bytes, (long long)G.files);
        fflush(stdout);
    }
}

static int soak_main(void *arg) {
    (void)arg;
    mote_socket *l = NULL;
    int r = mote_tcp_listen(&l, "127.0.0.1:0", 0, false);
    CHECK(r == 0, "listen %d", r);
    if (r != 0)
        return 1;
    mote_addr a;
    mote_socket_local_addr(l, &a);
    mote_addr_format(&a, G.addr, sizeof G.addr);
    CHECK(mote_spawn_fn(NULL, acceptor, &l, sizeof l) == 0, "spawn acceptor");
    mote_proc *s = NULL;
    CHECK(mote_spawn_fn(&s, sampler, NULL, 0) == 0, "spawn sampler");
    uint32_t seed = 12345;
    while (mote_now() < G.end && !atomic_load(&G.failed)) {
        run_round(&seed);
        mote_sleep(MOTE_MSEC(5)); /* a soak, not a benchmark: leave the machine some air */
    }
    /* Let the echo processes see their clients' ends. */
    int64_t deadline = mote_now() + MOTE_SEC(60);
    while (atomic_load(&G.echo_live) > 0 && mote_now() < deadline)
        mote_sleep(MOTE_MSEC(1));
    atomic_store(&G.stop, 1);
    while (!atomic_load(&G.acceptor_done))
        mote_sleep(MOTE_MSEC(1));
    while (atomic_load(&G.nrss) == 0 && !atomic_load(&G.failed))
        mote_sleep(MOTE_MSEC(10)); /* at least one sample */
    mote_proc_release(s);
    return 0;
}

static long max_of(const long *v, int from, int to) {
    long m = 0;
    for (int i = from; i < to; i++)
        m = v[i] > m ? v[i] : m;
    return m;
}

int main(void) {
    const char *env = getenv("SOAK_SECONDS");
    long secs = env ? atol(env) : 600;
    if (secs < 3)
        secs = 3;
    G.end = mote_now() + MOTE_SEC(secs);
    printf("soak: %ld s\n", secs);
    int r = mote_run(NULL, soak_main, NULL);
    CHECK(r == 0, "mote_run %d", r);
    CHECK(atomic_load(&G.echo_live) == 0, "%d echo processes left", atomic_load(&G.echo_live));
    CHECK(G.srv_done == G.conns, "server finished %lld connections, clients made %lld", (long long)G.srv_done,
          (long long)G.conns);
    CHECK(G.srv_clean == G.conns - G.cuts, "clean ends: server %lld, clients %lld", (long long)G.srv_clean,
          (long long)(G.conns - G.cuts));
    CHECK(G.srv_sum == G.cli_sum, "checksums differ");

    /* Memory: see the head comment. */
    int n = atomic_load(&G.nrss);
    int warm = (int)(secs / 6 > 10 ? secs / 6 : 10);
    if (n - warm >= 6) {
        int third = (n - warm) / 3;
        long first = max_of(G.rss, warm, warm + third), last = max_of(G.rss, n - third, n);
        printf("soak: rss max %ld KiB in the first third after warm-up, %ld KiB in the last third\n", first,
               last);
        CHECK(last <= first + first / 10 + 8192, "RSS grew: %ld -> %ld KiB", first, last);
    } else {
        printf("soak: too short to judge RSS (%d samples, warm-up %d)\n", n, warm);
    }
    printf("soak: %s: rounds=%lld msgs=%lld futures=%lld recvs=%lld conns=%lld cuts=%lld bytes=%lld "
           "files=%lld sleeps=%lld sections=%lld\n",
           atomic_load(&G.failed) ? "FAIL" : "PASS", (long long)G.rounds, (long long)G.msgs,
           (long long)G.futs, (long long)G.recvs, (long long)G.conns, (long long)G.cuts, (long long)G.bytes,
           (long long)G.files, (long long)G.sleeps, (long long)G.sections);
    return atomic_load(&G.failed) ? 1 : 0;
}
