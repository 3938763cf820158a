/* Stopping: mote_stop tells main first, gives the others a grace period,
 * then cancels what is left; when main returns, processes still waiting
 * are cancelled and unwind through their own code instead of being dropped
 * with their stacks, so everything they hold is released (ASan's leak
 * check after every run, and valgrind on a child running the same binary). */
#include "helpers.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/mman.h>

/* ---- mote_stop --------------------------------------------------------------- */

static void *thread_stop(void *arg) {
    struct timespec ts = {0, 5 * 1000 * 1000};
    nanosleep(&ts, NULL);
    T_CHECK_EQ(mote_stop(*(int *)arg), 0);
    T_CHECK_EQ(mote_stop(99), 0); /* idempotent: the first status stays */
    return NULL;
}

static int main_told_first(void *arg) {
    pthread_t t = t_thread(thread_stop, arg);
    mote_msg *m = NULL;
    T_CHECK_EQ(mote_receive(&m, MOTE_FOREVER), -ECANCELED); /* main is told */
    T_CHECK(mote_cancelled());
    T_CHECK_EQ(mote_sleep(1), -ECANCELED);
    t_join(t);
    return 5; /* mote_stop's status wins */
}

Test(stop, from_a_foreign_thread_tells_main) {
    int status = 42;
    cr_assert_eq(t_run(NULL, main_told_first, &status), 42);
    cr_assert_eq(mote_stop(1), -ESHUTDOWN); /* no runtime */
}

static int main_stop_self(void *arg) {
    (void)arg;
    T_CHECK_EQ(mote_stop(7), 0);
    T_CHECK_EQ(mote_sleep(MOTE_SEC(3600)), -ECANCELED);
    return 0;
}

Test(stop, from_main_itself) { cr_assert_eq(t_run(NULL, main_stop_self, NULL), 7); }

/* Main returning first decides; a later mote_stop (from a process that
 * unwinds) changes nothing. */
static void fn_late_stop(void *arg) {
    (void)arg;
    T_CHECK_EQ(mote_sleep(MOTE_SEC(3600)), -ECANCELED);
    T_CHECK_EQ(mote_stop(9), 0);
}

static int main_returns_first(void *arg) {
    (void)arg;
    T_CHECK_EQ(mote_spawn_fn(NULL, fn_late_stop, NULL, 0), 0);
    mote_sleep(MOTE_MSEC(1));
    return 3;
}

Test(stop, main_returning_first_decides) { cr_assert_eq(t_run(NULL, main_returns_first, NULL), 3); }

/* ---- The grace period ------------------------------------------------------- */

static atomic_int finished, cancelled_late;

/* Works 20 x 1 ms, long after main has returned: the grace lets it. */
static void fn_finisher(void *arg) {
    (void)arg;
    for (int i = 0; i < 20; i++)
        if (mote_sleep(MOTE_MSEC(1)) < 0)
            return;
    atomic_store(&finished, 1);
}

/* Never finishes: cancelled when the grace is over. */
static void fn_never(void *arg) {
    (void)arg;
    if (mote_sleep(MOTE_SEC(3600)) == -ECANCELED)
        atomic_store(&cancelled_late, 1);
}

typedef struct grace_arg {
    bool never;
    int status;
} grace_arg;

static int main_grace(void *arg) {
    grace_arg *g = arg;
    T_CHECK_EQ(mote_spawn_fn(NULL, fn_finisher, NULL, 0), 0);
    if (g->never)
        T_CHECK_EQ(mote_spawn_fn(NULL, fn_never, NULL, 0), 0);
    /* Idle state processes with handles kept do not hold the grace up. */
    for (int i = 0; i < 10; i++)
        (void)t_spawn_counter(i);
    T_CHECK_EQ(mote_stop(g->status), 0);
    return 0; /* at once: the others are not cancelled yet */
}

Test(stop, grace_lets_work_finish) {
    atomic_store(&finished, 0);
    /* A grace far beyond the hang guard: if it did not end early once
     * everything is idle or ended, the test would be killed. */
    mote_config cfg = {.stop_grace = MOTE_SEC(600)};
    grace_arg g = {false, 11};
    cr_assert_eq(t_run(&cfg, main_grace, &g), 11);
    cr_assert_eq(atomic_load(&finished), 1);
}

Test(stop, then_the_rest_are_cancelled) {
    atomic_store(&finished, 0);
    atomic_store(&cancelled_late, 0);
    mote_config cfg = {.stop_grace = MOTE_MSEC(200)};
    grace_arg g = {true, 12};
    cr_assert_eq(t_run(&cfg, main_grace, &g), 12);
    cr_assert_eq(atomic_load(&cancelled_late), 1);
}

/* A process that ignores its cancel is abandoned after the grace: mote_run
 * still returns. */
static void fn_ignore(void *arg) {
    (void)arg;
    for (;;)
        mote_sleep(MOTE_SEC(1)); /* -ECANCELED, again and again */
}

static int main_ignorer(void *arg) {
    (void)arg;
    T_CHECK_EQ(mote_spawn_fn(NULL, fn_ignore, NULL, 0), 0);
    mote_sleep(MOTE_MSEC(1));
    return 0;
}

Test(stop, an_ignorer_is_abandoned) {
    mote_config cfg = {.stop_grace = MOTE_MSEC(100)};
    T_RUN_OK(&cfg, main_ignorer, NULL);
}

/* ---- Main closes a listener and leaves -------------------------------------- */

#include <dirent.h>

/* True once fd is registered with an epoll instance of this program (the
 * poller, or libkqueue's under MOTE_POLLER=kqueue): mote registers a
 * descriptor at its first wait, so a process waiting in accept on it has
 * entered the call. */
static bool fd_polled(int fd) {
    DIR *d = opendir("/proc/self/fd");
    bool found = false;
    struct dirent *e;
    while (d && !found && (e = readdir(d))) {
        char path[300], link[64] = "";
        snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
        ssize_t n = readlink(path, link, sizeof link - 1);
        if (n <= 0 || strncmp(link, "anon_inode:[eventpoll]", (size_t)n) != 0)
            continue;
        snprintf(path, sizeof path, "/proc/self/fdinfo/%s", e->d_name);
        FILE *f = fopen(path, "r");
        char line[256];
        while (f && !found && fgets(line, sizeof line, f)) {
            int tfd;
            found = sscanf(line, "tfd: %d", &tfd) == 1 && tfd == fd;
        }
        if (f)
            fclose(f);
    }
    if (d)
        closedir(d);
    return found;
}

/* True once process id is suspended, by the line a dump gives it
 * ("process N: suspended ..." or "process N (name): suspended ..."). With
 * MOTE_POLLER=uring an accept is a completion, whose descriptor no epoll
 * set ever holds; a process that only accepts is suspended inside it. */
static bool proc_suspended(uint64_t id) {
    int fd = memfd_create("dump", MFD_CLOEXEC);
    bool found = false;
    if (fd >= 0 && mote_dump(fd) == 0 && lseek(fd, 0, SEEK_SET) == 0) {
        FILE *f = fdopen(fd, "r");
        char line[512], head[64], named[64];
        snprintf(head, sizeof head, "process %llu:", (unsigned long long)id);
        snprintf(named, sizeof named, "process %llu (", (unsigned long long)id);
        while (f && !found && fgets(line, sizeof line, f))
            found = (strncmp(line, head, strlen(head)) == 0 || strncmp(line, named, strlen(named)) == 0) &&
                    strstr(line, ": suspended");
        if (f)
            fclose(f); /* and fd */
        else
            close(fd);
    } else if (fd >= 0) {
        close(fd);
    }
    return found;
}

static void fn_accept(void *arg) {
    mote_socket *l = *(mote_socket **)arg;
    mote_socket *c = NULL;
    if (mote_socket_accept(l, &c, NULL, MOTE_FOREVER) == 0)
        mote_socket_close(c);
}

static int main_close_and_leave(void *arg) {
    (void)arg;
    mote_socket *l = NULL;
    T_CHECK_EQ(mote_tcp_listen(&l, "127.0.0.1:0", 4, false), 0);
    mote_proc *p = NULL;
    T_CHECK_EQ(mote_spawn_fn(&p, fn_accept, &l, sizeof l), 0);
    uint64_t id = mote_proc_id(p);
    mote_proc_release(p);
    /* The handle may not be used after close returns: close only once the
     * process is inside accept (then it holds the socket until it leaves). */
    int64_t deadline = mote_now() + T_PATIENCE;
    bool inside = false;
    while (!(inside = fd_polled(mote_socket_fd(l)) || proc_suspended(id)) && mote_now() < deadline)
        mote_sleep(MOTE_USEC(50));
    T_CHECK(inside);
    T_CHECK_EQ(mote_socket_close(l), 0);
    return 0; /* at once: the process may not even have seen the close */
}

Test(stop, accept_then_close_and_return) {
    for (int round = 0; round < T_SCALE(60, 30); round++) {
        mote_config cfg = {.threads = (unsigned)round % 2 + 1};
        T_RUN_OK(&cfg, main_close_and_leave, &round); /* leak-checked under ASan */
    }
}

/* ---- Every kind of wait, holding memory, at shutdown ------------------------- */

enum {
    K_RECEIVE, K_AWAIT, K_CALL, K_SLEEP, K_POLL, K_FD, K_SOCK_READ, K_ACCEPT, K_STREAM, K_TIMER,
    KINDS
};

typedef struct waits {
    mote_proc *blocker;      /* calls to it never return */
    mote_socket *listener;   /* nobody connects */
    mote_socket *conn[2][2]; /* two pairs whose peers never write: read, stream */
    int efd;                 /* never signalled */
    atomic_int started, done;
    int total;
} waits;

static waits W;

/* The blocker's handler: answers only when shutdown cancels it, and then
 * with -ECANCELED (so a waiter may see its own cancel or that answer). */
static mote_result h_block(void *state, void *arg) {
    (void)state;
    (void)arg;
    return mote_error(mote_sleep(MOTE_SEC(3600)));
}

static mote_future *async_block(void) {
    mote_future *f = NULL;
    T_CHECK_EQ(mote_async(W.blocker, h_block, NULL, 0, &f), 0);
    return f;
}

typedef struct wait_arg {
    int kind;
} wait_arg;

/* The descriptors go when the last waiter has unwound (before, a waiter
 * would see -EBADF instead of its cancel). */
static void close_all(void) {
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++)
            mote_socket_close(W.conn[i][j]);
    mote_socket_close(W.listener);
    close(W.efd);
}

/* Each holds heap memory across its wait and frees it when the wait
 * returns: a leak means the process was dropped instead of unwound. */
static void fn_wait(void *arg) {
    int kind = ((wait_arg *)arg)->kind;
    char *held = malloc(100 + (size_t)kind);
    snprintf(held, 100, "kind %d", kind); /* used: the allocation stays */
    atomic_fetch_add(&W.started, 1);
    int64_t rc = 0;
    mote_result r = mote_ok_i(0);
    mote_future *f = NULL;
    switch (kind) {
    case K_RECEIVE: {
        mote_msg *m = NULL;
        rc = mote_receive(&m, MOTE_FOREVER);
        break;
    }
    case K_AWAIT:
        rc = mote_await(async_block(), &r);
        break;
    case K_CALL:
        rc = mote_call(W.blocker, h_block, NULL, 0, &r);
        break;
    case K_SLEEP:
        rc = mote_sleep(MOTE_SEC(3600));
        break;
    case K_POLL: {
        mote_future *futs[2] = {async_block(), NULL}, *ready[2] = {NULL, NULL};
        T_CHECK_EQ(mote_timer(&futs[1], MOTE_SEC(3600)), 0);
        size_t n = 2;
        rc = mote_poll(futs, &n, ready, 2, MOTE_FOREVER);
        if (rc == 1) /* the blocker's answer came first: take it */
            rc = mote_await(ready[0], &r);
        for (size_t i = 0; i < n; i++)
            mote_future_drop(futs[i]);
        break;
    }
    case K_FD:
        rc = mote_fd_wait(W.efd, MOTE_READABLE, MOTE_FOREVER);
        break;
    case K_SOCK_READ: {
        char buf[8];
        rc = mote_socket_read(W.conn[0][1], buf, sizeof buf, MOTE_FOREVER);
        break;
    }
    case K_ACCEPT: {
        mote_socket *c = NULL;
        rc = mote_socket_accept(W.listener, &c, NULL, MOTE_FOREVER);
        break;
    }
    case K_STREAM: {
        mote_reader *rd = NULL;
        T_CHECK_EQ(mote_reader_new(&rd, mote_socket_stream(W.conn[1][1]), 0), 0);
        const char *line;
        rc = mote_reader_read_line(rd, &line, MOTE_FOREVER);
        mote_reader_free(rd);
        break;
    }
    case K_TIMER:
        T_CHECK_EQ(mote_timer(&f, MOTE_SEC(3600)), 0);
        rc = mote_await(f, &r);
        break;
    }
    /* Its own cancel, or (from the blocker) an answer that says so. */
    T_CHECK(rc == -ECANCELED || (rc == 0 && r.err == -ECANCELED));
    T_CHECK(held[0] == 'k');
    free(held);
    if (atomic_fetch_add(&W.done, 1) + 1 == W.total) /* the last one out */
        close_all();
}



static int main_every_wait(void *arg) {
    int each = *(int *)arg;
    memset(&W, 0, sizeof W);
    W.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    T_CHECK_EQ(mote_tcp_listen(&W.listener, "127.0.0.1:0", 64, false), 0);
    for (int i = 0; i < 2; i++)
        t_connect_pair(W.listener, &W.conn[i][0], &W.conn[i][1]);
    W.blocker = t_spawn_counter(0);
    W.total = each * (KINDS - 4) + 4;
    for (int i = 0; i < each; i++)
        for (int k = 0; k < KINDS; k++) {
            if ((k == K_FD || k == K_SOCK_READ || k == K_ACCEPT || k == K_STREAM) && i)
                continue; /* one waiter per direction on a descriptor */
            wait_arg a = {k};
            T_CHECK_EQ(mote_spawn_fn(NULL, fn_wait, &a, sizeof a), 0);
        }
    t_wait_at_least(&W.started, W.total); /* then every fn runs to its end */
    mote_sleep(MOTE_MSEC(5)); /* most of them suspended by now */
    return 0; /* the blocker's handle is held to the end */
}

Test(stop, every_kind_of_wait_unwinds) {
    int each = T_SCALE(10, 3);
    for (int round = 0; round < 3; round++) {
        mote_config cfg = {.threads = (unsigned)round + 1};
        T_RUN_OK(&cfg, main_every_wait, &each); /* leak-checked under ASan */
    }
}

/* The same scenario under valgrind: the test binary re-runs itself with
 * MOTE_TEST_CHILD set, and this constructor runs the scenario instead of
 * the tests (valgrind cannot run a sanitizer build). */
#ifndef MOTE_SANITIZER_BUILD
__attribute__((constructor)) static void child_scenario(void) {
    const char *what = getenv("MOTE_TEST_CHILD");
    if (!what || strcmp(what, "every_wait") != 0)
        return;
    int each = 2;
    int rc = mote_run(NULL, main_every_wait, &each);
    if (atomic_load(&t_fail_count))
        fputs(t_fail_text, stderr);
    exit(rc == 0 && atomic_load(&t_fail_count) == 0 ? 0 : 3);
}

Test(stop, every_kind_of_wait_under_valgrind) {
    if (access("/usr/bin/valgrind", X_OK) != 0)
        cr_skip_test("valgrind is not installed");
#ifdef __clang__
    cr_skip_test("valgrind 3.19 cannot read clang's DWARF 5 (the gcc build runs this)");
#endif
    char self[512];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    cr_assert(n > 0);
    self[n] = '\0';
    setenv("MOTE_TEST_CHILD", "every_wait", 1);
    /* valgrind does not model io_uring (the kernel fills the shared rings
     * behind its back; under valgrind 3.19 the child hung until ctest's
     * timeout): under MOTE_POLLER=uring the child polls with epoll. */
    const char *poller = getenv("MOTE_POLLER");
    bool uring = poller && strcmp(poller, "uring") == 0;
    if (uring)
        setenv("MOTE_POLLER", "epoll", 1);
    char *argv[] = {"/usr/bin/valgrind", "-q", "--leak-check=full", "--show-leak-kinds=all",
                    "--errors-for-leak-kinds=all", "--error-exitcode=9", self, NULL};
    t_child c;
    t_child_exec(&c, argv);
    unsetenv("MOTE_TEST_CHILD");
    if (uring)
        setenv("MOTE_POLLER", "uring", 1);
    T_ASSERT_EXITED(&c, 0);
    t_child_free(&c);
}
#endif
