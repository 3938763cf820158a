/*
 * test-stdio.c -- mote_stdin / mote_stdout / mote_stderr. Each case forks a
 * child (before it starts mote) whose standard descriptors are pipes,
 * sockets or files that the test controls; the child runs mote and exits 0
 * if every check inside passed. examples/cat is run the same way.
 */
#include <fcntl.h>
#include <sys/stat.h>

#include "helpers.h"

/* ---- Children ---- */

typedef struct child {
    pid_t pid;
    int err; /* its stderr: an unlinked temporary file */
} child;

typedef struct child_spec {
    int in, out;      /* become its fds 0 and 1 (-1: inherited) */
    int close_fd[3];  /* the parent's ends, closed in the child (-1: none) */
    mote_main_fn main; /* run under mote */
    void *arg;
    unsigned threads; /* worker threads; 0: one */
    char **argv; /* or: exec this */
} child_spec;

static void child_body(const child_spec *s) {
    for (int i = 0; i < 3; i++)
        if (s->close_fd[i] >= 0)
            close(s->close_fd[i]);
    if (s->in >= 0 && dup2(s->in, 0) < 0)
        _exit(120);
    if (s->out >= 0 && dup2(s->out, 1) < 0)
        _exit(121);
    if (s->argv) {
        execv(s->argv[0], s->argv);
        _exit(127);
    }
    /* One worker by default: a stuck worker would stop everything. */
    mote_config cfg = {.threads = s->threads ? s->threads : 1};
    int rc = mote_run(&cfg, s->main, s->arg);
    int fails = atomic_load(&t_fail_count);
    if (rc != 0 || fails) {
        fprintf(stderr, "mote_run: %d, %d check(s) failed:\n%s", rc, fails, t_fail_text);
        _exit(1);
    }
#ifdef T_ASAN
    if (__lsan_do_recoverable_leak_check() != 0)
        _exit(2);
#endif
    _exit(0); /* no atexit handlers: they belong to the test runner */
}

static child child_start(const child_spec *s) {
    char path[] = "/tmp/mote-stdio-err-XXXXXX";
    child c = {.err = mkostemp(path, O_CLOEXEC)};
    cr_assert(c.err >= 0);
    unlink(path);
    fflush(NULL);
    c.pid = fork();
    cr_assert(c.pid >= 0);
    if (c.pid == 0) {
        alarm(T_HANG_GUARD);
        dup2(c.err, 2);
        child_body(s);
    }
    return c;
}

/* Wait for c; assert it exited with status want, showing its stderr. */
static void child_end_err(child *c, int want, char *text, size_t cap) {
    int status = 0;
    cr_assert_eq(waitpid(c->pid, &status, 0), c->pid);
    memset(text, 0, cap);
    ssize_t n = pread(c->err, text, cap - 1, 0);
    (void)n;
    close(c->err);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == want,
              "child: status 0x%x, expected exit %d; stderr:\n%s", status, want, text);
    /* _exit skips the sanitizers' exit status: look for their reports. */
    cr_assert(!strstr(text, "Sanitizer"), "child reported:\n%s", text);
}

static void child_end(child *c, int want) {
    char text[4096];
    child_end_err(c, want, text, sizeof text);
}

static void make_pipe(int p[2]) {
    cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
}

/* The bytes of the test data: not periodic over short spans. */
static char pattern_at(size_t i) {
    return (char)((i * 7919 + (i >> 8) * 31 + (i >> 16)) & 0xff);
}

static bool is_pattern(const char *buf, size_t len, size_t from) {
    for (size_t i = 0; i < len; i++)
        if (buf[i] != pattern_at(from + i))
            return false;
    return true;
}

static void fill(char *buf, size_t len, size_t from) {
    for (size_t i = 0; i < len; i++)
        buf[i] = pattern_at(from + i);
}

static bool nonblocking(int fd) {
    return (fcntl(fd, F_GETFL) & O_NONBLOCK) != 0;
}

/* ---- A process that keeps exchanging messages -------------------------- */

static atomic_int chat_count, chat_stop;

static void fn_chatter(void *arg) {
    mote_proc *report = *(mote_proc **)arg;
    mote_proc *counter = t_spawn_counter(0);
    int64_t one = 1;
    while (!atomic_load(&chat_stop)) {
        mote_result r;
        T_CHECK_EQ(mote_call(counter, t_h_add, &one, sizeof one, &r), 0);
        atomic_fetch_add(&chat_count, 1);
        mote_sleep(MOTE_USEC(200));
    }
    mote_proc_release(counter);
    t_send_i64(report, -1);
    mote_proc_release(report);
}

static void chatter_start(void) {
    mote_proc *me = mote_proc_ref(mote_self());
    T_CHECK_EQ(mote_spawn_fn(NULL, fn_chatter, &me, sizeof me), 0);
}

/* A case's worker process ends here: the chatter, on the same single
 * worker thread, must have run meanwhile (the parent paused ~300 ms), and
 * the shared open file description of fd must still be blocking (mote
 * used a private one). Reports n to the main process. */
static void worker_done(mote_proc *report, int chats_before, int fd, int64_t n) {
    int during = atomic_load(&chat_count) - chats_before;
    /* A blocked thread would allow none; a loaded machine (TSan, other
     * jobs) may allow only a handful in the pause, so no rate is asked. */
    if (during < 2)
        t_fail(__FILE__, __LINE__, "the other process made %d exchanges only", during);
    T_CHECK(!nonblocking(fd));
    t_send_i64(report, n);
    mote_proc_release(report);
}

/* Main of a case: run fn(&self) beside the chatter; fn reports want. */
typedef struct beside {
    mote_proc_fn fn;
    int64_t want;
} beside;

static int main_beside_chatter(void *arg) {
    beside *b = arg;
    chatter_start();
    mote_proc *me = mote_proc_ref(mote_self());
    T_CHECK_EQ(mote_spawn_fn(NULL, b->fn, &me, sizeof me), 0);
    T_CHECK_EQ(t_recv_i64(), b->want);
    atomic_store(&chat_stop, 1);
    T_CHECK_EQ(t_recv_i64(), -1);
    return 0;
}

/* ---- stdin from a pipe, while another process runs ----------------------- */

#define IN_TOTAL (300 * 1024 + 1000)

static void fn_read_stdin(void *arg) {
    mote_proc *report = *(mote_proc **)arg;
    mote_stream in = mote_stdin();
    char *buf = malloc(IN_TOTAL + 1);
    size_t have = 0;
    int before = atomic_load(&chat_count);
    for (;;) {
        int64_t n = in.vt->read(in.obj, buf + have, IN_TOTAL + 1 - have, T_PATIENCE);
        T_CHECK(n >= 0);
        if (n <= 0)
            break;
        have += (size_t)n;
    }
    T_CHECK_EQ(have, IN_TOTAL);
    T_CHECK(is_pattern(buf, have, 0));
    free(buf);
    worker_done(report, before, 0, (int64_t)have);
}

Test(stdio, stdin_pipe_waits_without_holding_the_worker) {
    alarm(T_HANG_GUARD);
    int p[2];
    make_pipe(p);
    child_spec s = {.in = p[0], .out = -1, .close_fd = {p[1], -1, -1}, .main = main_beside_chatter,
                    .arg = &(beside){fn_read_stdin, IN_TOTAL}};
    child c = child_start(&s);
    close(p[0]);
    char *data = malloc(IN_TOTAL);
    fill(data, IN_TOTAL, 0);
    /* A small piece, a big one (more than the pipe holds), the rest. */
    size_t cuts[] = {0, 1000, 1000 + 256 * 1024, IN_TOTAL};
    for (int i = 0; i < 3; i++) {
        usleep(100 * 1000);
        cr_assert(t_xfer(p[1], data + cuts[i], cuts[i + 1] - cuts[i], true));
    }
    close(p[1]);
    free(data);
    child_end(&c, 0);
}

/* ---- stdin that never comes: the timeout ---------------------------------- */

static int main_stdin_timeout(void *arg) {
    (void)arg;
    mote_stream in = mote_stdin();
    char b;
    int64_t t0 = mote_now();
    T_CHECK_EQ(in.vt->read(in.obj, &b, 1, MOTE_MSEC(30)), -ETIMEDOUT);
    T_CHECK(mote_now() - t0 >= MOTE_MSEC(25));
    T_CHECK_EQ(in.vt->read(in.obj, &b, 1, 0), -ETIMEDOUT);
    return 0;
}

Test(stdio, stdin_read_times_out) {
    alarm(T_HANG_GUARD);
    int p[2];
    make_pipe(p);
    child_spec s = {.in = p[0], .out = -1, .close_fd = {p[1], -1, -1}, .main = main_stdin_timeout};
    child c = child_start(&s);
    close(p[0]);
    child_end(&c, 0); /* the write end stays open meanwhile */
    close(p[1]);
}

/* ---- stdout to a pipe the parent reads (late) ----------------------------- */

#define OUT_TOTAL (1024 * 1024)

static void fn_write_stdout(void *arg) {
    mote_proc *report = *(mote_proc **)arg;
    mote_stream out = mote_stdout();
    char *buf = malloc(OUT_TOTAL);
    fill(buf, OUT_TOTAL, 0);
    size_t done = 0;
    int before = atomic_load(&chat_count);
    while (done < OUT_TOTAL) {
        int64_t n = out.vt->write(out.obj, buf + done, OUT_TOTAL - done, T_PATIENCE);
        T_CHECK(n >= 1);
        if (n < 1)
            break;
        done += (size_t)n;
    }
    free(buf);
    worker_done(report, before, 1, (int64_t)done);
}

Test(stdio, stdout_pipe_waits_when_full) {
    alarm(T_HANG_GUARD);
    int p[2];
    make_pipe(p);
    child_spec s = {.in = -1, .out = p[1], .close_fd = {p[0], -1, -1}, .main = main_beside_chatter,
                    .arg = &(beside){fn_write_stdout, OUT_TOTAL}};
    child c = child_start(&s);
    close(p[1]);
    usleep(300 * 1000); /* the pipe fills and the writer waits */
    char *got = malloc(OUT_TOTAL + 1);
    size_t have = 0;
    ssize_t n;
    while (have <= OUT_TOTAL && (n = read(p[0], got + have, OUT_TOTAL + 1 - have)) > 0)
        have += (size_t)n;
    close(p[0]);
    child_end(&c, 0);
    cr_assert_eq(have, OUT_TOTAL);
    cr_assert(is_pattern(got, have, 0), "stdout bytes differ");
    free(got);
}

/* ---- stdin from a regular file: blocking sections ------------------------- */

#define FILE_TOTAL (100 * 1000)

static int main_read_file_stdin(void *arg) {
    (void)arg;
    mote_stream in = mote_stdin();
    char *buf = malloc(FILE_TOTAL + 1);
    size_t have = 0;
    for (;;) {
        size_t want = FILE_TOTAL + 1 - have < 999 ? FILE_TOTAL + 1 - have : 999;
        int64_t n = in.vt->read(in.obj, buf + have, want, 0); /* no waiting needed */
        T_CHECK(n >= 0);
        if (n <= 0)
            break;
        have += (size_t)n;
    }
    T_CHECK_EQ(have, FILE_TOTAL);
    T_CHECK(is_pattern(buf, have, 0));
    free(buf);
    return 0;
}

Test(stdio, stdin_from_a_regular_file) {
    alarm(T_HANG_GUARD);
    char path[] = "/tmp/mote-stdio-in-XXXXXX";
    int fd = mkostemp(path, O_CLOEXEC);
    cr_assert(fd >= 0);
    unlink(path);
    char *data = malloc(FILE_TOTAL);
    fill(data, FILE_TOTAL, 0);
    cr_assert(t_xfer(fd, data, FILE_TOTAL, true));
    free(data);
    cr_assert_eq(lseek(fd, 0, SEEK_SET), 0);
    child_spec s = {.in = fd, .out = -1, .close_fd = {-1, -1, -1}, .main = main_read_file_stdin};
    child c = child_start(&s);
    close(fd);
    child_end(&c, 0);
}

/* ---- stdin and stdout on a socket: recv/send, MSG_DONTWAIT ---------------- */

static int main_socket_echo(void *arg) {
    (void)arg;
    mote_stream in = mote_stdin(), out = mote_stdout();
    char buf[4096];
    int64_t n;
    while ((n = in.vt->read(in.obj, buf, sizeof buf, T_PATIENCE)) > 0)
        for (int64_t done = 0; done < n;) {
            int64_t w = out.vt->write(out.obj, buf + done, (size_t)(n - done), T_PATIENCE);
            T_CHECK(w >= 1);
            if (w < 1)
                return 0;
            done += w;
        }
    T_CHECK_EQ(n, 0);
    T_CHECK(!nonblocking(0));
    return 0;
}

Test(stdio, socket_stdin_and_stdout) {
    alarm(T_HANG_GUARD);
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    child_spec s = {.in = sv[1], .out = sv[1], .close_fd = {sv[0], -1, -1}, .main = main_socket_echo};
    child c = child_start(&s);
    close(sv[1]);
    usleep(50 * 1000); /* the child waits for its first bytes */
    const size_t total = 64 * 1024;
    char *data = malloc(total), *got = malloc(total);
    fill(data, total, 5);
    size_t sent = 0, have = 0;
    /* Interleave, so neither side's buffer fills for good. */
    while (have < total) {
        if (sent < total) {
            size_t k = total - sent < 4096 ? total - sent : 4096;
            cr_assert(t_xfer(sv[0], data + sent, k, true));
            sent += k;
            if (sent == total)
                shutdown(sv[0], SHUT_WR);
        }
        ssize_t n = read(sv[0], got + have, total - have);
        cr_assert(n > 0);
        have += (size_t)n;
    }
    cr_assert(memcmp(got, data, total) == 0);
    close(sv[0]);
    free(data);
    free(got);
    child_end(&c, 0);
}

/* ---- Many processes race to the first use ------------------------------- */

#define RACERS 16

typedef struct racer {
    int id;
    mote_proc *report;
} racer;

/* Write one line to stdout and one to stderr; both streams are set up by
 * whichever racer comes first. */
static void fn_racer(void *arg) {
    racer *r = arg;
    char line[32];
    int n = snprintf(line, sizeof line, "out %02d\n", r->id); /* < PIPE_BUF: one piece */
    mote_stream out = mote_stdout(), err = mote_stderr();
    T_CHECK_EQ(out.vt->write(out.obj, line, (size_t)n, T_PATIENCE), n);
    memcpy(line, "err", 3);
    T_CHECK_EQ(err.vt->write(err.obj, line, (size_t)n, T_PATIENCE), n);
    t_send_i64(r->report, r->id);
    mote_proc_release(r->report);
}

static int main_race(void *arg) {
    (void)arg;
    for (int i = 0; i < RACERS; i++) {
        racer r = {i, mote_proc_ref(mote_self())};
        T_CHECK_EQ(mote_spawn_fn(NULL, fn_racer, &r, sizeof r), 0);
    }
    for (int i = 0; i < RACERS; i++)
        t_recv_i64();
    return 0;
}

Test(stdio, first_use_races) {
    alarm(T_HANG_GUARD);
    int p[2];
    make_pipe(p);
    child_spec s = {.in = -1, .out = p[1], .close_fd = {p[0], -1, -1}, .main = main_race, .threads = 2};
    child c = child_start(&s);
    close(p[1]);
    char out[1024] = {0}, err[4096];
    size_t have = 0;
    ssize_t n;
    while (have < sizeof out - 1 && (n = read(p[0], out + have, sizeof out - 1 - have)) > 0)
        have += (size_t)n;
    close(p[0]);
    child_end_err(&c, 0, err, sizeof err);
    cr_assert_eq(have, RACERS * 7, "stdout:\n%s", out);
    for (int i = 0; i < RACERS; i++) {
        char want[16];
        snprintf(want, sizeof want, "out %02d\n", i);
        T_ASSERT_CONTAINS(out, want);
        memcpy(want, "err", 3);
        T_ASSERT_CONTAINS(err, want);
    }
}

/* ---- Wrong directions --------------------------------------------------- */

Test(stdio, wrong_direction_is_ebadf) {
    char b = 'x';
    mote_stream in = mote_stdin(), out = mote_stdout(), err = mote_stderr();
    cr_assert(in.vt && out.vt && err.vt && in.obj != out.obj && out.obj != err.obj);
    cr_assert_eq(in.vt->write(in.obj, &b, 1, 0), -EBADF);
    cr_assert_eq(out.vt->read(out.obj, &b, 1, 0), -EBADF);
    cr_assert_eq(err.vt->read(err.obj, &b, 1, 0), -EBADF);
    cr_assert_eq(in.vt->read(in.obj, NULL, 1, 0), -EINVAL);
    cr_assert_eq(out.vt->write(out.obj, NULL, 1, 0), -EINVAL);
}

/* ---- examples/cat ------------------------------------------------------- */

typedef struct feed {
    int fd;
    const char *data;
    size_t len;
} feed;

static void *fn_feed(void *arg) {
    feed *f = arg;
    for (size_t done = 0; done < f->len;) {
        size_t k = f->len - done < 10000 ? f->len - done : 10000;
        if (!t_xfer(f->fd, (char *)(uintptr_t)(f->data + done), k, true))
            break;
        done += k;
        if (done % 50000 < 10000)
            usleep(5000);
    }
    close(f->fd);
    return NULL;
}

static void cat_path(char *buf, size_t len) {
    snprintf(buf, len, "%s/examples/cat", MOTE_BUILD_DIR);
    cr_assert(access(buf, X_OK) == 0, "example not built: %s", buf);
}

/* Pipe in, pipe out: what goes in comes out. */
Test(stdio, cat_copies_a_pipe) {
    alarm(T_HANG_GUARD);
    char exe[512];
    cat_path(exe, sizeof exe);
    char *argv[] = {exe, NULL};
    int in[2], out[2];
    make_pipe(in);
    make_pipe(out);
    child_spec s = {.in = in[0], .out = out[1], .close_fd = {in[1], out[0], -1}, .argv = argv};
    child c = child_start(&s);
    close(in[0]);
    close(out[1]);
    const size_t total = 500 * 1000;
    char *data = malloc(total), *got = malloc(total + 1);
    fill(data, total, 0);
    feed f = {in[1], data, total};
    pthread_t t = t_thread(fn_feed, &f);
    size_t have = 0;
    ssize_t n;
    while (have <= total && (n = read(out[0], got + have, total + 1 - have)) > 0)
        have += (size_t)n;
    pthread_join(t, NULL);
    close(out[0]);
    child_end(&c, 0);
    cr_assert_eq(have, total);
    cr_assert(memcmp(got, data, total) == 0, "cat changed the bytes");
    free(data);
    free(got);
}

/* Files as arguments (and stdout a regular file): concatenated; a missing
 * one is reported and the status is 1. */
Test(stdio, cat_concatenates_files) {
    char exe[512];
    cat_path(exe, sizeof exe);
    char a[] = "/tmp/mote-cat-a-XXXXXX", b[] = "/tmp/mote-cat-b-XXXXXX";
    int fa = mkstemp(a), fb = mkstemp(b);
    cr_assert(fa >= 0 && fb >= 0);
    cr_assert(t_xfer(fa, "first file\n", 11, true));
    cr_assert(t_xfer(fb, "second\n", 7, true));
    close(fa);
    close(fb);
    char *argv[] = {exe, a, "/tmp/mote-cat-no-such-file", b, NULL};
    t_child c;
    t_child_exec(&c, argv);
    unlink(a);
    unlink(b);
    T_ASSERT_EXITED(&c, 1);
    cr_assert_str_eq(c.out, "first file\nsecond\n");
    T_ASSERT_CONTAINS(c.err, "cat: /tmp/mote-cat-no-such-file: ");
    t_child_free(&c);
}
