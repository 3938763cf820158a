/*
 * test-child.c -- child processes: 200 concurrent cats echoing byte-exact,
 * exit codes and signals, a child that never exits timing out and being
 * killed, env and cwd, no descriptor leaking into the child, spawn errors,
 * the child's signal state, futures, foreign threads, background reaping,
 * and shutdown with children still running.
 */
#include <dirent.h>
#include <fcntl.h>

#include "helpers.h"

/* Everything a stream gives until its end (NUL-terminated; *len bytes). */
static char *read_all(mote_stream s, size_t *len) {
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    for (int64_t r; buf;) {
        if (n == cap) {
            char *bigger = realloc(buf, 2 * cap + 1);
            if (!bigger)
                break;
            buf = bigger;
            cap *= 2;
        }
        r = mote_stream_read(s, buf + n, cap - n, T_PATIENCE);
        T_CHECK(r >= 0);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    if (buf)
        buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

/* Spawn argv with the given stdio modes; NULL (recorded) on failure. */
static mote_child *spawn(const char *const *argv, int in, int out, int err) {
    mote_child_opts o = {.argv = argv, .stdio = {in, out, err}};
    mote_child *c = NULL;
    int r = mote_child_spawn(&c, &o);
    if (r < 0)
        t_fail(__FILE__, __LINE__, "spawn %s: %s", argv[0], mote_strerror(r));
    return c;
}

/* Run argv to the end with stdout piped; its output (caller frees) and
 * status. */
static char *run_capture(const mote_child_opts *o, mote_child_status *st) {
    mote_child *c = NULL;
    int r = mote_child_spawn(&c, o);
    T_CHECK_EQ(r, 0);
    if (r < 0)
        return NULL;
    char *out = read_all(mote_child_stdout(c), NULL);
    T_CHECK_EQ(mote_child_wait(c, T_PATIENCE, st), 0);
    mote_child_free(c);
    return out;
}

/* ---- 200 cats at once, each fed and drained concurrently ---------------------- */

enum { CATS = 200 };

typedef struct cat_job {
    mote_child *c;
    size_t len;
    uint32_t seed;
    atomic_int *written;
} cat_job;

static void fill(char *buf, size_t len, uint32_t seed) {
    for (size_t i = 0; i < len; i++) {
        seed = seed * 1103515245u + 12345u;
        buf[i] = (char)(seed >> 16);
    }
}

/* Feeds the child's stdin while its owner drains stdout: with both in one
 * process, a child blocked on a full stdout pipe would never read more. */
static void cat_writer(void *arg) {
    cat_job *j = arg;
    char *data = malloc(j->len);
    fill(data, j->len, j->seed);
    T_CHECK_EQ(mote_stream_write_all(mote_child_stdin(j->c), data, j->len, T_PATIENCE), 0);
    T_CHECK_EQ(mote_child_close_stdin(j->c), 0);
    T_CHECK_EQ(mote_child_close_stdin(j->c), -EBADF);
    free(data);
    atomic_fetch_add(j->written, 1);
}

static void cat_one(void *arg) {
    cat_job j = *(cat_job *)arg;
    static const char *const argv[] = {"/bin/cat", NULL};
    j.c = spawn(argv, MOTE_CHILD_PIPE, MOTE_CHILD_PIPE, MOTE_CHILD_INHERIT);
    if (!j.c) {
        atomic_fetch_add(j.written, 1);
        return;
    }
    atomic_int written = 0;
    cat_job w = j;
    w.written = &written;
    T_CHECK_EQ(mote_spawn_fn(NULL, cat_writer, &w, sizeof w), 0);
    size_t len = 0;
    char *got = read_all(mote_child_stdout(j.c), &len);
    char *want = malloc(j.len);
    fill(want, j.len, j.seed);
    T_CHECK_EQ(len, j.len);
    T_CHECK(got && len == j.len && memcmp(got, want, len) == 0);
    t_wait_at_least(&written, 1);
    mote_child_status st = {-2, -2};
    T_CHECK_EQ(mote_child_wait(j.c, T_PATIENCE, &st), 0);
    T_CHECK_EQ(st.exit_code, 0);
    T_CHECK_EQ(st.signal, 0);
    mote_child_free(j.c);
    free(got);
    free(want);
    atomic_fetch_add(j.written, 1);
}

static int cats_main(void *arg) {
    (void)arg;
    atomic_int done = 0;
    for (int i = 0; i < CATS; i++) {
        cat_job j = {.len = (size_t)T_SCALE(70000, 20000) + (size_t)i * 997, .seed = 77u + (uint32_t)i,
                     .written = &done};
        T_CHECK_EQ(mote_spawn_fn(NULL, cat_one, &j, sizeof j), 0);
    }
    t_wait_at_least(&done, CATS);
    return 0;
}

Test(child, cats_echo_byte_exact_concurrently) {
    T_RUN_OK(NULL, cats_main, NULL);
}

/* ---- exit codes, signals, timeouts, kill ----------------------------------------- */

static void expect_status(const char *const *argv, int code, int sig) {
    mote_child *c = spawn(argv, MOTE_CHILD_NULL, MOTE_CHILD_NULL, MOTE_CHILD_INHERIT);
    if (!c)
        return;
    T_CHECK(mote_child_pid(c) > 0);
    mote_child_status st = {-2, -2};
    T_CHECK_EQ(mote_child_wait(c, T_PATIENCE, &st), 0);
    T_CHECK_EQ(st.exit_code, code);
    T_CHECK_EQ(st.signal, sig);
    mote_child_status again = {-2, -2};
    T_CHECK_EQ(mote_child_wait(c, 0, &again), 0); /* reaped: the same, at once */
    T_CHECK_EQ(again.exit_code, code);
    T_CHECK_EQ(mote_child_kill(c, SIGTERM), -ESRCH);
    mote_child_free(c);
}

static int status_main(void *arg) {
    (void)arg;
    expect_status((const char *const[]){"/bin/true", NULL}, 0, 0);
    expect_status((const char *const[]){"false", NULL}, 1, 0); /* through PATH */
    expect_status((const char *const[]){"/bin/sh", "-c", "exit 42", NULL}, 42, 0);
    expect_status((const char *const[]){"/bin/sh", "-c", "kill -TERM $$", NULL}, -1, SIGTERM);
    expect_status((const char *const[]){"/bin/sh", "-c", "kill -USR1 $$", NULL}, -1, SIGUSR1);
    /* Never exits: times out, stays, is killed. */
    mote_child *c = spawn((const char *const[]){"/bin/sleep", "1000", NULL}, MOTE_CHILD_NULL, MOTE_CHILD_NULL,
                          MOTE_CHILD_NULL);
    if (!c)
        return 0;
    T_CHECK_EQ(mote_child_wait(c, MOTE_MSEC(20), NULL), -ETIMEDOUT);
    T_CHECK_EQ(mote_child_wait(c, 0, NULL), -ETIMEDOUT);
    T_CHECK_EQ(mote_child_kill(c, 0), 0);
    T_CHECK_EQ(kill(mote_child_pid(c), 0), 0);
    T_CHECK_EQ(mote_child_kill(c, 65), -EINVAL);
    T_CHECK_EQ(mote_child_kill(c, SIGKILL), 0);
    mote_child_status st = {-2, -2};
    T_CHECK_EQ(mote_child_wait(c, T_PATIENCE, &st), 0);
    T_CHECK_EQ(st.exit_code, -1);
    T_CHECK_EQ(st.signal, SIGKILL);
    mote_child_free(c);
    return 0;
}

Test(child, exit_codes_signals_timeout_kill) {
    T_RUN_OK(NULL, status_main, NULL);
}

/* ---- environment, working directory, the standard streams ---------------------- */

static int env_cwd_main(void *arg) {
    const char *dir = arg;
    static const char *const env_argv[] = {"/usr/bin/env", NULL};
    static const char *const envp[] = {"A=1", "MOTE_CHILD=yes please", NULL};
    mote_child_status st;
    char *out = run_capture(&(mote_child_opts){.argv = env_argv, .envp = envp, .stdio = {0, MOTE_CHILD_PIPE, 0}},
                            &st);
    T_CHECK(out && strcmp(out, "A=1\nMOTE_CHILD=yes please\n") == 0);
    T_CHECK_EQ(st.exit_code, 0);
    free(out);
    static const char *const pwd_argv[] = {"/bin/pwd", NULL};
    out = run_capture(&(mote_child_opts){.argv = pwd_argv, .cwd = dir, .stdio = {0, MOTE_CHILD_PIPE, 0}}, &st);
    char want[256];
    snprintf(want, sizeof want, "%s\n", dir);
    T_CHECK(out && strcmp(out, want) == 0);
    free(out);
    /* Inherited environment: a variable set before mote_run. */
    static const char *const sh_env[] = {"/bin/sh", "-c", "printf %s \"$MOTE_TEST_INHERITED\"", NULL};
    out = run_capture(&(mote_child_opts){.argv = sh_env, .stdio = {0, MOTE_CHILD_PIPE, 0}}, &st);
    T_CHECK(out && strcmp(out, "inherited") == 0);
    free(out);
    /* stdout and stderr apart; stdin /dev/null. */
    static const char *const both[] = {"/bin/sh", "-c", "cat; echo out; echo err >&2", NULL};
    mote_child *c = spawn(both, MOTE_CHILD_NULL, MOTE_CHILD_PIPE, MOTE_CHILD_PIPE);
    if (!c)
        return 0;
    char *o = read_all(mote_child_stdout(c), NULL), *e = read_all(mote_child_stderr(c), NULL);
    T_CHECK(o && strcmp(o, "out\n") == 0);
    T_CHECK(e && strcmp(e, "err\n") == 0);
    char byte;
    T_CHECK_EQ(mote_stream_write(mote_child_stdin(c), "x", 1, 0), -EBADF); /* not a pipe */
    T_CHECK_EQ(mote_stream_read(mote_child_stdin(c), &byte, 1, 0), -EBADF);
    T_CHECK_EQ(mote_child_close_stdin(c), -EBADF);
    T_CHECK_EQ(mote_child_wait(c, T_PATIENCE, &st), 0);
    T_CHECK_EQ(st.exit_code, 0);
    mote_child_free(c);
    free(o);
    free(e);
    return 0;
}

Test(child, env_cwd_and_streams) {
    char dir[] = "/tmp/mote-child-XXXXXX";
    cr_assert(mkdtemp(dir) != NULL);
    setenv("MOTE_TEST_INHERITED", "inherited", 1);
    T_RUN_OK(NULL, env_cwd_main, dir);
    rmdir(dir);
}

/* ---- no descriptor leaks into the child ---------------------------------------------- */

static int fds_main(void *arg) {
    (void)arg;
    /* Descriptors without close-on-exec, as careless code makes them. */
    int extra[3] = {dup(0), open("/dev/null", O_RDONLY), dup(2)};
    for (int i = 0; i < 3; i++)
        T_CHECK(extra[i] >= 3);
    static const char *const argv[] = {"/bin/ls", "-l", "/proc/self/fd", NULL};
    mote_child_status st;
    char *out = run_capture(&(mote_child_opts){.argv = argv, .stdio = {MOTE_CHILD_NULL, MOTE_CHILD_PIPE,
                                                                      MOTE_CHILD_NULL}},
                            &st);
    T_CHECK_EQ(st.exit_code, 0);
    /* Lines "... N -> target": 0..2, and the directory ls itself opened. */
    int seen = 0;
    for (char *line = out ? strtok(out, "\n") : NULL; line; line = strtok(NULL, "\n")) {
        char *arrow = strstr(line, " -> ");
        if (!arrow)
            continue;
        char *num = arrow;
        while (num > line && num[-1] != ' ')
            num--;
        int fd = atoi(num);
        seen++;
        if (fd > 2 && !strstr(arrow, "/fd"))
            t_fail(__FILE__, __LINE__, "descriptor leaked into the child: %s", line);
        if (fd == 0 || fd == 2)
            T_CHECK(strstr(arrow, "/dev/null") != NULL);
        if (fd == 1)
            T_CHECK(strstr(arrow, "pipe:") != NULL);
    }
    T_CHECK(seen >= 3 && seen <= 4);
    free(out);
    for (int i = 0; i < 3; i++)
        close(extra[i]);
    return 0;
}

Test(child, no_descriptor_leaks_into_the_child) {
    T_RUN_OK(NULL, fds_main, NULL);
}

/* ---- spawn errors --------------------------------------------------------------------- */

static int errors_main(void *arg) {
    (void)arg;
    mote_child *c = (mote_child *)1;
    mote_child_opts o = {.argv = (const char *const[]){"/nonexistent/mote-prog", NULL}};
    T_CHECK_EQ(mote_child_spawn(&c, &o), -ENOENT);
    T_CHECK(c == NULL);
    o.argv = (const char *const[]){"mote-no-such-program-anywhere", NULL};
    T_CHECK_EQ(mote_child_spawn(&c, &o), -ENOENT);
    o.argv = (const char *const[]){"/etc/passwd", NULL}; /* not executable */
    T_CHECK_EQ(mote_child_spawn(&c, &o), -EACCES);
    o.argv = (const char *const[]){"/bin/true", NULL};
    o.cwd = "/nonexistent/dir";
    T_CHECK_EQ(mote_child_spawn(&c, &o), -ENOENT);
    o.cwd = NULL;
    o.stdio[1] = 7;
    T_CHECK_EQ(mote_child_spawn(&c, &o), -EINVAL);
    o.stdio[1] = 0;
    T_CHECK_EQ(mote_child_spawn(NULL, &o), -EINVAL);
    T_CHECK_EQ(mote_child_spawn(&c, NULL), -EINVAL);
    o.argv = (const char *const[]){NULL};
    T_CHECK_EQ(mote_child_spawn(&c, &o), -EINVAL);
    o.argv = (const char *const[]){"", NULL};
    T_CHECK_EQ(mote_child_spawn(&c, &o), -EINVAL);
    o.argv = NULL;
    T_CHECK_EQ(mote_child_spawn(&c, &o), -EINVAL);
    T_CHECK_EQ(mote_child_wait(NULL, 0, NULL), -EINVAL);
    T_CHECK_EQ(mote_child_kill(NULL, SIGTERM), -EINVAL);
    T_CHECK_EQ(mote_child_pid(NULL), -EINVAL);
    T_CHECK_EQ(mote_child_close_stdin(NULL), -EINVAL);
    mote_future *f = (mote_future *)1;
    T_CHECK_EQ(mote_child_wait_async(NULL, &f), -EINVAL);
    T_CHECK(f == NULL);
    T_CHECK(mote_child_stdout(NULL).vt == NULL);
    mote_child_free(NULL);
    return 0;
}

Test(child, spawn_errors) {
    mote_child *c = NULL;
    mote_child_opts o = {.argv = (const char *const[]){"/bin/true", NULL}};
    cr_assert_eq(mote_child_spawn(&c, &o), -ESHUTDOWN);
    T_RUN_OK(NULL, errors_main, NULL);
}

/* ---- the child's signal state ---------------------------------------------------------- */

static uint64_t sig_field(const char *text, const char *name) {
    const char *p = strstr(text, name);
    return p ? strtoull(p + strlen(name), NULL, 16) : UINT64_MAX;
}

static int sigstate_main(void *arg) {
    (void)arg;
    static const char *const argv[] = {"/bin/cat", "/proc/self/status", NULL};
    mote_child_status st;
    char *out = run_capture(&(mote_child_opts){.argv = argv, .stdio = {0, MOTE_CHILD_PIPE, 0}}, &st);
    T_CHECK(out != NULL);
    if (!out)
        return 0;
    T_CHECK_EQ(sig_field(out, "SigBlk:"), 0); /* although every mote thread blocks SIGUSR2 */
    T_CHECK_EQ((sig_field(out, "SigIgn:") >> (SIGPIPE - 1)) & 1, 0);
    T_CHECK_EQ((sig_field(out, "SigIgn:") >> (SIGURG - 1)) & 1, 1); /* ignored by us: stays */
    free(out);
    return 0;
}

Test(child, signal_mask_and_sigpipe_reset) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    cr_assert_eq(pthread_sigmask(SIG_BLOCK, &set, NULL), 0);
    signal(SIGURG, SIG_IGN);
    T_RUN_OK(NULL, sigstate_main, NULL);
}

/* ---- futures --------------------------------------------------------------------------- */

static int async_main(void *arg) {
    (void)arg;
    mote_child *c = spawn((const char *const[]){"/bin/sh", "-c", "exit 3", NULL}, 0, 0, 0);
    mote_future *f = NULL;
    T_CHECK_EQ(mote_child_wait_async(c, &f), 0);
    t_await_value(f, 3);
    mote_child_status st = {-2, -2};
    T_CHECK_EQ(mote_child_wait(c, 0, &st), 0);
    T_CHECK_EQ(st.exit_code, 3);
    mote_child_free(c);
    /* A sleeper, polled beside a timer, then waited for by a second
     * process too, and killed: both waiters get the status. */
    c = spawn((const char *const[]){"/bin/sleep", "1000", NULL}, MOTE_CHILD_NULL, MOTE_CHILD_NULL, MOTE_CHILD_NULL);
    T_CHECK_EQ(mote_child_wait_async(c, &f), 0);
    mote_future *t = NULL, *ready[2];
    T_CHECK_EQ(mote_timer(&t, MOTE_MSEC(10)), 0);
    mote_future *futs[2] = {f, t};
    size_t n = 2;
    T_CHECK_EQ(mote_poll(futs, &n, ready, 2, T_PATIENCE), 1);
    T_CHECK(ready[0] == t);
    T_CHECK_EQ(mote_await(t, NULL), 0);
    mote_future *f2 = NULL;
    T_CHECK_EQ(mote_child_wait_async(c, &f2), 0);
    T_CHECK_EQ(mote_child_wait(c, MOTE_MSEC(5), NULL), -ETIMEDOUT);
    T_CHECK_EQ(mote_child_kill(c, SIGKILL), 0);
    t_await_value(f, -SIGKILL);
    t_await_value(f2, -SIGKILL);
    mote_child_free(c);
    /* Freed before its future resolves: the future still does. */
    c = spawn((const char *const[]){"/bin/sh", "-c", "exit 5", NULL}, 0, 0, 0);
    T_CHECK_EQ(mote_child_wait_async(c, &f), 0);
    mote_child_free(c);
    t_await_value(f, 5);
    return 0;
}

Test(child, wait_async_futures) {
    T_RUN_OK(NULL, async_main, NULL);
}

/* ---- a foreign thread spawns and waits ----------------------------------------------- */

static void *foreign(void *arg) {
    (void)arg;
    mote_child *c = NULL;
    mote_child_opts o = {.argv = (const char *const[]){"/bin/sh", "-c", "exit 9", NULL}};
    if (mote_child_spawn(&c, &o) < 0)
        return (void *)1;
    mote_child_status st = {0, 0};
    int r = mote_child_wait(c, T_PATIENCE, &st);
    mote_child_free(c);
    return (void *)(intptr_t)(r == 0 && st.exit_code == 9 ? 0 : 2);
}

static int foreign_main(void *arg) {
    (void)arg;
    pthread_t t = t_thread(foreign, NULL);
    void *res = (void *)3;
    int64_t deadline = mote_now() + T_PATIENCE;
    while (pthread_tryjoin_np(t, &res) != 0 && mote_now() < deadline)
        mote_sleep(MOTE_MSEC(1));
    T_CHECK_EQ((intptr_t)res, 0);
    return 0;
}

Test(child, foreign_thread) {
    T_RUN_OK(NULL, foreign_main, NULL);
}

/* ---- background reaping, shutdown ---------------------------------------------------- */

static int background_main(void *arg) {
    (void)arg;
    mote_child *c = spawn((const char *const[]){"/bin/sh", "-c", "sleep 0.05", NULL}, 0, 0, 0);
    if (!c)
        return 0;
    pid_t pid = mote_child_pid(c);
    mote_child_free(c); /* still running */
    /* It exits, then is reaped by mote: a zombie still answers kill(pid, 0). */
    int64_t deadline = mote_now() + T_PATIENCE;
    while (kill(pid, 0) == 0 && mote_now() < deadline)
        mote_sleep(MOTE_MSEC(2));
    T_CHECK_EQ(kill(pid, 0), -1);
    return 0;
}

Test(child, freed_child_is_reaped_in_the_background) {
    T_RUN_OK(NULL, background_main, NULL);
}

static int shutdown_main(void *arg) {
    pid_t *pids = arg;
    /* A sleeper with all three pipes, a sleeper waited on by a future, and
     * one that has exited but was never waited for. */
    mote_child *a = spawn((const char *const[]){"/bin/sleep", "1000", NULL}, MOTE_CHILD_PIPE, MOTE_CHILD_PIPE,
                          MOTE_CHILD_PIPE);
    mote_child *b = spawn((const char *const[]){"/bin/sleep", "1000", NULL}, 0, 0, 0);
    mote_child *c = spawn((const char *const[]){"/bin/true", NULL}, 0, 0, 0);
    if (!a || !b || !c)
        return 0;
    pids[0] = mote_child_pid(a);
    pids[1] = mote_child_pid(b);
    pids[2] = mote_child_pid(c);
    mote_future *f;
    T_CHECK_EQ(mote_child_wait_async(b, &f), 0);
    /* Until /bin/true is a zombie (state Z in /proc/PID/stat). */
    char path[64], text[256];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pids[2]);
    int64_t deadline = mote_now() + T_PATIENCE;
    for (bool zombie = false; !zombie && mote_now() < deadline;) {
        FILE *fp = fopen(path, "r");
        size_t got = fp ? fread(text, 1, sizeof text - 1, fp) : 0;
        if (fp)
            fclose(fp);
        text[got] = '\0';
        char *paren = strrchr(text, ')');
        zombie = paren && paren[1] == ' ' && paren[2] == 'Z';
        if (!zombie)
            mote_sleep(MOTE_MSEC(1));
    }
    return 0; /* handles, the future and a reader-less pipe left behind */
}

Test(child, shutdown_frees_and_leaves_running_children) {
    int fds = t_count_fds();
    pid_t pids[3] = {0, 0, 0};
    T_RUN_OK(NULL, shutdown_main, pids);
    cr_assert_eq(t_count_fds(), fds, "a descriptor outlived the runtime");
    for (int i = 0; i < 2; i++) {
        cr_assert(pids[i] > 0);
        cr_assert_eq(kill(pids[i], 0), 0, "child %d was not left running", i);
        kill(pids[i], SIGKILL);
        int st;
        cr_assert_eq(waitpid(pids[i], &st, 0), pids[i]);
        cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    }
    /* The one that had exited was reaped at shutdown (or it would still be
     * ours to wait for). */
    cr_assert_eq(waitpid(pids[2], NULL, WNOHANG), -1);
    cr_assert_eq(errno, ECHILD);
}
