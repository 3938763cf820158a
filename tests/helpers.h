/*
 * helpers.h -- shared helpers for mote's Criterion tests.
 *
 * Criterion's cr_assert aborts a test with longjmp, which must not happen
 * on a process stack or a worker thread. So code running inside mote
 * (processes, handlers, foreign threads) reports with T_CHECK / T_CHECK_EQ,
 * which only record the failure; the test body asserts that nothing was
 * recorded once mote_run has returned (t_run / T_RUN_OK do that).
 */
#ifndef MOTE_TEST_HELPERS_H
#define MOTE_TEST_HELPERS_H

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <signal.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <mote.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define T_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define T_ASAN 1
#endif
#endif
#ifdef T_ASAN
#include <sanitizer/lsan_interface.h>
#endif

/* ThreadSanitizer runs a signal handler at once only on a thread that sent
 * the signal to itself or sits in an intercepted blocking call; elsewhere
 * it defers the handler until that thread next enters the sanitizer's
 * runtime, which a mote thread asleep in a raw futex call (a parked
 * worker, the main thread waiting for its process) may not do for long.
 * Tests that signal a process whose handlers are mote's wake it up. */
#if defined(__SANITIZE_THREAD__)
#define T_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define T_TSAN 1
#endif
#endif

/* Sizes of the heavier tests: sanitizer builds are 5-15x slower. */
#ifdef MOTE_SANITIZER_BUILD
#define T_SCALE(plain, sanitized) (sanitized)
#else
#define T_SCALE(plain, sanitized) (plain)
#endif

/* A bound on waits that should end quickly: it only turns a hang into a
 * failure, it is not a timing assertion. */
#define T_PATIENCE MOTE_SEC(30)

/* Seconds before a test (or a child it forks) that still runs is killed by
 * SIGALRM: a hang becomes a crash report instead of eating CI's time
 * (Criterion's own --timeout does not reliably end a worker whose threads
 * are stuck). */
#define T_HANG_GUARD T_SCALE(60, 100)

/* ---- Failure log, usable from any thread and any stack ------------------- */

static pthread_mutex_t t_fail_lock __attribute__((unused)) = PTHREAD_MUTEX_INITIALIZER;
static atomic_int t_fail_count __attribute__((unused));
static char t_fail_text[4096] __attribute__((unused));

MOTE_PRINTF(3, 4)
static inline void t_fail(const char *file, int line, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&t_fail_lock);
    if (atomic_fetch_add(&t_fail_count, 1) < 10) {
        size_t len = strlen(t_fail_text);
        snprintf(t_fail_text + len, sizeof t_fail_text - len, "%s:%d: %s\n", file, line, msg);
    }
    pthread_mutex_unlock(&t_fail_lock);
}

#define T_CHECK(cond)                                                                              \
    do {                                                                                           \
        if (!(cond))                                                                               \
            t_fail(__FILE__, __LINE__, "check failed: %s", #cond);                                \
    } while (0)

#define T_CHECK_EQ(a, b)                                                                           \
    do {                                                                                           \
        long long t_a_ = (long long)(a), t_b_ = (long long)(b);                                    \
        if (t_a_ != t_b_)                                                                          \
            t_fail(__FILE__, __LINE__, "%s == %s failed: %lld != %lld", #a, #b, t_a_, t_b_);      \
    } while (0)

/* Asserts (in the test body) that no T_CHECK failed, and under ASan that
 * nothing allocated is unreachable. */
static inline void t_assert_clean(void) {
    int n = atomic_load(&t_fail_count);
    cr_assert(n == 0, "%d check(s) failed inside mote:\n%s", n, t_fail_text);
#ifdef T_ASAN
    cr_assert(__lsan_do_recoverable_leak_check() == 0, "leaks after mote_run (see stderr)");
#endif
}

/* mote_run, then assert that every check made inside it passed. */
static inline int t_run(const mote_config *cfg, mote_main_fn fn, void *arg) {
    alarm(T_HANG_GUARD);
    int rc = mote_run(cfg, fn, arg);
    t_assert_clean();
    return rc;
}

#define T_RUN_OK(cfg, fn, arg)                                                                     \
    do {                                                                                           \
        int t_rc_ = t_run((cfg), (fn), (arg));                                                     \
        cr_assert_eq(t_rc_, 0, "mote_run returned %d (%s)", t_rc_, mote_strerror(t_rc_));         \
    } while (0)

/* ---- Waiting on flags set by other threads --------------------------------- */

/* A gate a handler waits behind until the test opens it. */
typedef struct t_gate {
    atomic_int open;
} t_gate;

static inline void t_gate_open(t_gate *g) { atomic_store(&g->open, 1); }

/* Wait (suspending only the caller) until *v >= want; false after
 * T_PATIENCE, recorded as a failure. */
static inline bool t_wait_at_least(atomic_int *v, int want) {
    int64_t deadline = mote_now() + T_PATIENCE;
    while (atomic_load(v) < want) {
        if (mote_now() > deadline) {
            t_fail(__FILE__, __LINE__, "waited too long: %d < %d", atomic_load(v), want);
            return false;
        }
        mote_sleep(MOTE_USEC(100));
    }
    return true;
}

static inline void t_gate_wait(t_gate *g) { t_wait_at_least(&g->open, 1); }

/* ---- Common message handlers ---------------------------------------------- */

/* arg: int64_t; returns it. */
static inline mote_result t_h_echo(void *state, void *arg) {
    (void)state;
    int64_t v;
    memcpy(&v, arg, sizeof v);
    return mote_ok_i(v);
}

/* state: int64_t counter; adds the int64_t arg and returns the new value. */
static inline mote_result t_h_add(void *state, void *arg) {
    int64_t *n = state, d;
    memcpy(&d, arg, sizeof d);
    *n += d;
    return mote_ok_i(*n);
}

/* state: int64_t; returns it. */
static inline mote_result t_h_get(void *state, void *arg) {
    (void)arg;
    return mote_ok_i(*(int64_t *)state);
}

/* arg: t_gated; waits for the gate, then returns value. */
typedef struct t_gated {
    t_gate *gate;
    int64_t value;
} t_gated;

static inline mote_result t_h_gated(void *state, void *arg) {
    (void)state;
    t_gated *g = arg;
    t_gate_wait(g->gate);
    return mote_ok_i(g->value);
}

/* Send fn(arg) a gated message returning value and return the future. */
static inline mote_future *t_async_gated(mote_proc *p, t_gate *gate, int64_t value) {
    t_gated g = {gate, value};
    mote_future *f = NULL;
    T_CHECK_EQ(mote_async(p, t_h_gated, &g, sizeof g, &f), 0);
    return f;
}

static inline mote_future *t_async_echo(mote_proc *p, int64_t value) {
    mote_future *f = NULL;
    T_CHECK_EQ(mote_async(p, t_h_echo, &value, sizeof value, &f), 0);
    return f;
}

/* Await f, check it succeeded with value want. */
static inline void t_await_value(mote_future *f, int64_t want) {
    mote_result r = mote_error(-1);
    T_CHECK_EQ(mote_await(f, &r), 0);
    T_CHECK_EQ(r.err, 0);
    T_CHECK_EQ(r.i, want);
}

/* Poll the n futures in futs until every one is ready, awaiting each as it
 * comes; returns how many were drained and adds their values to *sum. */
static inline int t_poll_drain(mote_future **futs, size_t n, int64_t *sum) {
    mote_future *ready[64];
    int drained = 0;
    while (n > 0) {
        int got = mote_poll(futs, &n, ready, sizeof ready / sizeof ready[0], T_PATIENCE);
        T_CHECK(got > 0);
        if (got <= 0)
            break;
        for (int i = 0; i < got; i++) {
            mote_result r = mote_error(-1);
            T_CHECK_EQ(mote_await(ready[i], &r), 0);
            T_CHECK_EQ(r.err, 0);
            *sum += r.i;
            drained++;
        }
    }
    return drained;
}

static inline mote_proc *t_spawn_counter(int64_t start) {
    mote_proc *p = NULL;
    T_CHECK_EQ(mote_spawn(&p, &start, sizeof start, NULL), 0);
    return p;
}

/* ---- int64 data messages ---------------------------------------------------- */

static inline void t_send_i64(mote_proc *p, int64_t v) { T_CHECK_EQ(mote_send(p, &v, sizeof v), 0); }

/* Receive an int64 data message (INT64_MIN on failure, recorded). */
static inline int64_t t_recv_i64(void) {
    mote_msg *m = NULL;
    int rc = mote_receive(&m, T_PATIENCE);
    T_CHECK_EQ(rc, 0);
    if (rc != 0)
        return INT64_MIN;
    int64_t v = INT64_MIN;
    T_CHECK_EQ(mote_msg_size(m), sizeof v);
    if (mote_msg_size(m) == sizeof v)
        memcpy(&v, mote_msg_data(m), sizeof v);
    mote_msg_free(m);
    return v;
}

/* ---- Foreign threads ---------------------------------------------------------- */

static inline pthread_t t_thread(void *(*fn)(void *), void *arg) {
    pthread_t t;
    int rc = pthread_create(&t, NULL, fn, arg);
    if (rc != 0) {
        t_fail(__FILE__, __LINE__, "pthread_create: %s", strerror(rc));
        abort();
    }
    return t;
}

/* Join t, waiting at most T_PATIENCE; false (recorded) if it is stuck. */
static inline bool t_join(pthread_t t) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += T_PATIENCE / MOTE_SEC(1);
    int rc = pthread_timedjoin_np(t, NULL, &ts);
    if (rc != 0)
        t_fail(__FILE__, __LINE__, "thread did not finish: %s", strerror(rc));
    return rc == 0;
}

/* ---- Running something in a child process, capturing its output ------------- */

/* Leak checking is off in children that exit on purpose (panics, aborts):
 * whatever their processes held is reachable only from discarded stacks. */
static volatile int t_no_leak_check;
int __lsan_is_turned_off(void);
int __lsan_is_turned_off(void) { return t_no_leak_check; }

typedef struct t_child {
    int status; /* as from waitpid */
    char *out;  /* captured stdout, NUL-terminated */
    char *err;  /* captured stderr, NUL-terminated */
} t_child;

static inline char *t_slurp(FILE *f) {
    fflush(f);
    long len = ftell(f);
    char *buf = calloc(1, (size_t)(len > 0 ? len : 0) + 1);
    cr_assert(buf != NULL);
    rewind(f);
    if (len > 0 && fread(buf, 1, (size_t)len, f) != (size_t)len)
        cr_assert_fail("short read of captured output");
    fclose(f);
    return buf;
}

/* ---- Servers from examples/, run as child processes ---------------------- */

typedef struct t_server {
    pid_t pid;
    int out;        /* its stdout */
    int err;        /* its stderr, a temp file */
    char errpath[64];
    char addr[128]; /* from its "listening on ADDR" line */
} t_server;

/* A plain blocking TCP client socket to "a.b.c.d:port", or -1. No
 * assertions: client threads call it. */
static inline int t_dial(const char *addr) {
    char host[64];
    int port = 0;
    if (sscanf(addr, "%63[^:]:%d", host, &port) != 2)
        return -1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, host, &a.sin_addr);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0)
        return fd;
    if (fd >= 0)
        close(fd);
    return -1;
}

/* Write (out) or read exactly len bytes with blocking calls. */
static inline bool t_xfer(int fd, char *buf, size_t len, bool out) {
    size_t done = 0;
    while (done < len) {
        ssize_t n = out ? write(fd, buf + done, len - done) : read(fd, buf + done, len - done);
        if (n <= 0)
            return false;
        done += (size_t)n;
    }
    return true;
}

/* Start MOTE_BUILD_DIR/examples/<name> args... (args NULL-terminated) and
 * wait for its first line. */
static inline void t_server_startv(t_server *s, const char *name, char *const *args) {
    char exe[512];
    snprintf(exe, sizeof exe, "%s/examples/%s", MOTE_BUILD_DIR, name);
    int pfd[2];
    cr_assert_eq(pipe(pfd), 0);
    snprintf(s->errpath, sizeof s->errpath, "/tmp/mote-server-XXXXXX");
    s->err = mkstemp(s->errpath);
    cr_assert(s->err >= 0);
    s->pid = fork();
    if (s->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* a test that fails half-way leaves no server behind */
        dup2(pfd[1], 1);
        dup2(s->err, 2);
        char *argv[16] = {(char *)name};
        for (int i = 0; args[i] && i < 14; i++)
            argv[i + 1] = args[i];
        execv(exe, argv);
        _exit(127);
    }
    close(pfd[1]);
    s->out = pfd[0];
    char line[256] = {0};
    ssize_t n = read(s->out, line, sizeof line - 1);
    cr_assert(n > 0 && sscanf(line, "listening on %127s", s->addr) == 1, "%s did not start: '%s'", name, line);
}

static inline void t_server_start(t_server *s, const char *name, const char *arg) {
    char *args[] = {(char *)arg, NULL};
    t_server_startv(s, name, args);
}

/* Wake a server at addr ("unix:PATH" or "HOST:PORT"): a connection, and
 * for an IP address an empty datagram too (for a UDP server). */
static inline void t_knock(const char *addr) {
    mote_addr a;
    if (mote_addr_parse(&a, addr) != 0)
        return;
    const struct sockaddr *sa = (const struct sockaddr *)a.storage;
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd >= 0) {
        (void)!connect(fd, sa, a.len);
        close(fd);
    }
    if (sa->sa_family != AF_UNIX && (fd = socket(sa->sa_family, SOCK_DGRAM | SOCK_CLOEXEC, 0)) >= 0) {
        (void)!sendto(fd, "", 0, 0, sa, a.len);
        close(fd);
    }
}

/* Stop it with SIGTERM (the examples then stop gracefully); its stderr
 * must hold no sanitizer report. */
static inline void t_server_stop(t_server *s) {
    kill(s->pid, SIGTERM);
    int st;
#ifdef T_TSAN
    while (waitpid(s->pid, &st, WNOHANG) != s->pid) { /* see T_TSAN */
        t_knock(s->addr);
        usleep(100 * 1000);
    }
#else
    waitpid(s->pid, &st, 0);
#endif
    close(s->out);
    FILE *f = fdopen(s->err, "r"); /* its offset is at the end of what the server wrote */
    fseek(f, 0, SEEK_END);
    char *text = t_slurp(f); /* closes f */
    unlink(s->errpath);
    cr_assert(!strstr(text, "Sanitizer"), "server reported:\n%s", text);
    free(text);
}

/* Fork; the child runs fn(arg) with stdout and stderr captured, then exits 0
 * if fn returns. The parent waits and fills *c. */
static inline void t_child_run(t_child *c, void (*fn)(void *), void *arg) {
    FILE *out = tmpfile(), *err = tmpfile();
    cr_assert(out != NULL && err != NULL);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    cr_assert(pid >= 0, "fork failed");
    if (pid == 0) {
        alarm(T_HANG_GUARD); /* kept across exec */
        t_no_leak_check = 1;
        dup2(fileno(out), 1);
        dup2(fileno(err), 2);
        fn(arg);
        fflush(NULL);
        _exit(0);
    }
    int status = 0;
    cr_assert(waitpid(pid, &status, 0) == pid);
    c->status = status;
    fseek(out, 0, SEEK_END);
    fseek(err, 0, SEEK_END);
    c->out = t_slurp(out);
    c->err = t_slurp(err);
}

static inline void t_child_free(t_child *c) {
    free(c->out);
    free(c->err);
}

static inline void t_exec(void *argv) {
    char **av = argv;
    execv(av[0], av);
    fprintf(stderr, "execv %s: %s\n", av[0], strerror(errno));
    _exit(127);
}

/* For t_child_run: mote_run(cfg, main, arg) in the child, which prints
 * "mote_run: <rc>" and exits 0 if it returned 0, else 3. */
typedef struct t_run_spec {
    const mote_config *cfg;
    mote_main_fn main;
    void *arg;
} t_run_spec;

static inline void t_child_mote(void *spec) {
    const t_run_spec *s = spec;
    int rc = mote_run(s->cfg, s->main, s->arg);
    printf("mote_run: %d\n", rc);
    exit(rc == 0 ? 0 : 3);
}

/* Run the program argv[0] with stdout and stderr captured. */
static inline void t_child_exec(t_child *c, char **argv) { t_child_run(c, t_exec, argv); }

/* True if text holds the number n, not glued to other digits. */
static inline bool t_has_number(const char *text, uint64_t n) {
    char num[32];
    snprintf(num, sizeof num, "%llu", (unsigned long long)n);
    size_t len = strlen(num);
    for (const char *p = strstr(text, num); p; p = strstr(p + 1, num)) {
        bool before = p > text && isdigit((unsigned char)p[-1]);
        bool after = isdigit((unsigned char)p[len]);
        if (!before && !after)
            return true;
    }
    return false;
}

#define T_ASSERT_EXITED(c, code)                                                                   \
    cr_assert(WIFEXITED((c)->status) && WEXITSTATUS((c)->status) == (code),                       \
              "expected exit status %d, got status 0x%x\nstdout:\n%s\nstderr:\n%s", (code),        \
              (c)->status, (c)->out, (c)->err)

#define T_ASSERT_SIGNALED(c, sig)                                                                  \
    cr_assert(WIFSIGNALED((c)->status) && WTERMSIG((c)->status) == (sig),                          \
              "expected death by signal %d, got status 0x%x\nstdout:\n%s\nstderr:\n%s", (sig),     \
              (c)->status, (c)->out, (c)->err)

/* ---- Many echo clients against an example server ------------------------- */

typedef struct t_echo_job {
    const char *addr;
    uintptr_t id;
    int rounds;
    size_t max;
} t_echo_job;

/* One client: rounds exchanges of 1..max bytes, each checked byte for
 * byte. NULL, or what went wrong. */
static inline void *t_echo_client(void *arg) {
    t_echo_job *j = arg;
    int fd = t_dial(j->addr);
    if (fd < 0)
        return (void *)"connect";
    char *out = malloc(j->max), *in = malloc(j->max);
    const char *err = out && in ? NULL : "out of memory";
    for (int r = 0; r < j->rounds && !err; r++) {
        size_t len = 1 + (j->id * 131 + (size_t)r * 4099) % j->max;
        for (size_t i = 0; i < len; i++)
            out[i] = (char)(j->id ^ (size_t)r ^ i);
        if (!t_xfer(fd, out, len, true) || !t_xfer(fd, in, len, false))
            err = "short transfer";
        else if (memcmp(in, out, len) != 0)
            err = "differs";
    }
    free(out);
    free(in);
    close(fd);
    return (void *)err;
}

/* Start examples/<example>, run n such clients at once, stop it, and fail
 * the test if any client saw a difference. */
static inline void t_echo_many_clients(const char *example, int n, int rounds, size_t max) {
    t_server srv;
    t_server_start(&srv, example, "127.0.0.1:0");
    t_echo_job *jobs = calloc((size_t)n, sizeof *jobs);
    pthread_t *th = calloc((size_t)n, sizeof *th);
    cr_assert(jobs && th);
    for (int i = 0; i < n; i++) {
        jobs[i] = (t_echo_job){srv.addr, (uintptr_t)i, rounds, max};
        th[i] = t_thread(t_echo_client, &jobs[i]);
    }
    const char *err = NULL;
    for (int i = 0; i < n; i++) {
        void *r = NULL;
        pthread_join(th[i], &r);
        if (r && !err)
            err = r;
    }
    t_server_stop(&srv);
    free(jobs);
    free(th);
    cr_assert(err == NULL, "%s client: %s", example, err ? err : "");
}

/* Open descriptors of this program (from /proc/self/fd). */
static inline int t_count_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n - 1; /* the directory's own */
}

#define T_ASSERT_CONTAINS(text, needle)                                                            \
    cr_assert(strstr((text), (needle)) != NULL, "expected to find \"%s\" in:\n%s", (needle), (text))

/* ---- A small deterministic random source (Marsaglia's xorshift32) ------- */

/* The next number of the sequence in *state (which must not start at 0). */
static inline uint32_t t_rand(uint32_t *state) {
    uint32_t x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *state = x;
}

#endif /* MOTE_TEST_HELPERS_H */
