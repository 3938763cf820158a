/*
 * test-fd.c -- mote_fd_wait / mote_fd_close: any descriptor made awaitable.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "helpers.h"

typedef struct pipe_arg {
    int rfd;
    mote_proc *report;
} pipe_arg;

static void fn_reader(void *arg) {
    pipe_arg *a = arg;
    char buf[16];
    int64_t got = -1;
    int r = mote_fd_wait(a->rfd, MOTE_READABLE, T_PATIENCE);
    if (r == MOTE_READABLE && read(a->rfd, buf, sizeof buf) == 3)
        got = buf[0];
    else
        got = r;
    t_send_i64(a->report, got);
    mote_proc_release(a->report);
}

static int make_pipe(int fds[2]) {
    return pipe2(fds, O_NONBLOCK | O_CLOEXEC);
}

/* A process waits for a pipe; another writes later; the reader wakes. */
static int main_pipe_wakes_reader(void *arg) {
    (void)arg;
    int fds[2];
    T_CHECK_EQ(make_pipe(fds), 0);
    pipe_arg a = {fds[0], mote_proc_ref(mote_self())};
    T_CHECK_EQ(mote_spawn_fn(NULL, fn_reader, &a, sizeof a), 0);
    mote_sleep(MOTE_MSEC(5)); /* most likely waiting by now; either order must work */
    T_CHECK_EQ(write(fds[1], "xyz", 3), 3);
    T_CHECK_EQ(t_recv_i64(), 'x');
    T_CHECK_EQ(mote_fd_close(fds[0]), 0);
    T_CHECK_EQ(mote_fd_close(fds[1]), 0);
    return 0;
}

Test(fd, pipe_wakes_a_waiting_reader) {
    T_RUN_OK(NULL, main_pipe_wakes_reader, NULL);
}

/* Readiness that arrives while nobody waits is not lost: the descriptor is
 * registered (edge-triggered) by a wait that times out, the edge comes and
 * goes with no waiter, and the next wait must still see it. Without the
 * sticky READY slot that wait would sleep its full 2 s and time out. */
static int main_ready_before_wait(void *arg) {
    (void)arg;
    int fds[2];
    T_CHECK_EQ(make_pipe(fds), 0);
    T_CHECK_EQ(mote_fd_wait(fds[1], MOTE_WRITABLE, 0), MOTE_WRITABLE);
    T_CHECK_EQ(mote_fd_wait(fds[0], MOTE_READABLE, MOTE_MSEC(1)), -ETIMEDOUT);
    T_CHECK_EQ(write(fds[1], "abc", 3), 3);
    mote_sleep(MOTE_MSEC(20)); /* the poller sees the edge with nobody waiting */
    T_CHECK_EQ(mote_fd_wait(fds[0], MOTE_READABLE, MOTE_SEC(2)), MOTE_READABLE);
    mote_fd_close(fds[0]);
    mote_fd_close(fds[1]);
    return 0;
}

Test(fd, readiness_before_the_wait_is_kept) {
    T_RUN_OK(NULL, main_ready_before_wait, NULL);
}

/* A deadline expires with -ETIMEDOUT and leaves the descriptor usable. */
static int main_timeout(void *arg) {
    (void)arg;
    int fds[2];
    T_CHECK_EQ(make_pipe(fds), 0);
    int64_t t0 = mote_now();
    T_CHECK_EQ(mote_fd_wait(fds[0], MOTE_READABLE, MOTE_MSEC(10)), -ETIMEDOUT);
    T_CHECK(mote_now() - t0 >= MOTE_MSEC(10));
    T_CHECK_EQ(mote_fd_wait(fds[0], MOTE_READABLE, 0), -ETIMEDOUT);
    T_CHECK_EQ(write(fds[1], "x", 1), 1);
    T_CHECK_EQ(mote_fd_wait(fds[0], MOTE_READABLE, MOTE_SEC(5)), MOTE_READABLE);
    mote_fd_close(fds[0]);
    mote_fd_close(fds[1]);
    return 0;
}

Test(fd, timeout_then_still_usable) {
    T_RUN_OK(NULL, main_timeout, NULL);
}

/* Closing a descriptor under a waiter wakes it with -EBADF. */
static int main_close_under_waiter(void *arg) {
    (void)arg;
    int fds[2];
    T_CHECK_EQ(make_pipe(fds), 0);
    pipe_arg a = {fds[0], mote_proc_ref(mote_self())};
    T_CHECK_EQ(mote_spawn_fn(NULL, fn_reader, &a, sizeof a), 0);
    mote_sleep(MOTE_MSEC(50)); /* waiting by now, even on a loaded machine */
    T_CHECK_EQ(mote_fd_close(fds[0]), 0);
    int64_t r = t_recv_i64();
    T_CHECK_EQ(r, -EBADF);
    T_CHECK_EQ(mote_fd_close(fds[1]), 0);
    return 0;
}

Test(fd, close_wakes_waiter_with_ebadf) {
    T_RUN_OK(NULL, main_close_under_waiter, NULL);
}

/* A foreign thread waits on an eventfd that a process signals. */
typedef struct efd_arg {
    int efd;
    int result;
} efd_arg;

static void *thread_wait_efd(void *arg) {
    efd_arg *a = arg;
    a->result = mote_fd_wait(a->efd, MOTE_READABLE, T_PATIENCE);
    return NULL;
}

static mote_result h_signal(void *state, void *arg) {
    (void)state;
    uint64_t one = 1;
    int fd = *(int *)arg;
    return mote_ok_i(write(fd, &one, sizeof one));
}

static int main_foreign_eventfd(void *arg) {
    (void)arg;
    efd_arg a = {eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC), 0};
    T_CHECK(a.efd >= 0);
    pthread_t th = t_thread(thread_wait_efd, &a);
    mote_sleep(MOTE_MSEC(5));
    mote_proc *p = t_spawn_counter(0);
    mote_result r;
    T_CHECK_EQ(mote_call(p, h_signal, &a.efd, sizeof a.efd, &r), 0);
    T_CHECK_EQ(r.i, 8);
    T_CHECK(t_join(th));
    T_CHECK_EQ(a.result, MOTE_READABLE);
    mote_proc_release(p);
    mote_fd_close(a.efd);
    return 0;
}

Test(fd, foreign_thread_waits_on_eventfd) {
    T_RUN_OK(NULL, main_foreign_eventfd, NULL);
}

/* Many processes each wait on their own pipe; all are woken exactly. */
enum { MANY = 64 };

static int main_many(void *arg) {
    (void)arg;
    int fds[MANY][2];
    for (int i = 0; i < MANY; i++) {
        T_CHECK_EQ(make_pipe(fds[i]), 0);
        pipe_arg a = {fds[i][0], mote_proc_ref(mote_self())};
        T_CHECK_EQ(mote_spawn_fn(NULL, fn_reader, &a, sizeof a), 0);
    }
    for (int i = 0; i < MANY; i++)
        T_CHECK_EQ(write(fds[i][1], "q!!", 3), 3);
    int64_t sum = 0;
    for (int i = 0; i < MANY; i++)
        sum += t_recv_i64();
    T_CHECK_EQ(sum, (int64_t)'q' * MANY);
    for (int i = 0; i < MANY; i++) {
        mote_fd_close(fds[i][0]);
        mote_fd_close(fds[i][1]);
    }
    return 0;
}

Test(fd, many_waiters_each_woken) {
    T_RUN_OK(NULL, main_many, NULL);
}

/* Errors: bad descriptors, bad events, regular files, outside a runtime. */
static int main_errors(void *arg) {
    (void)arg;
    T_CHECK_EQ(mote_fd_wait(-1, MOTE_READABLE, 0), -EBADF);
    T_CHECK_EQ(mote_fd_wait(1000000000, MOTE_READABLE, 0), -EBADF);
    int fds[2];
    T_CHECK_EQ(make_pipe(fds), 0);
    T_CHECK_EQ(mote_fd_wait(fds[0], 0, 0), -EINVAL);
    T_CHECK_EQ(mote_fd_wait(fds[0], 8, 0), -EINVAL);
    mote_fd_close(fds[0]);
    mote_fd_close(fds[1]);
    T_CHECK_EQ(mote_fd_wait(fds[0], MOTE_READABLE, 0), -EBADF); /* closed */
    char path[] = "/tmp/mote-fd-XXXXXX";
    int f = mkstemp(path);
    T_CHECK(f >= 0);
    unlink(path);
    T_CHECK_EQ(mote_fd_wait(f, MOTE_READABLE, 0), -EPERM);
    close(f);
    T_CHECK_EQ(mote_fd_close(-5), -EBADF);
    return 0;
}

Test(fd, errors) {
    T_RUN_OK(NULL, main_errors, NULL);
    cr_assert_eq(mote_fd_wait(0, MOTE_READABLE, 0), -ESHUTDOWN);
}

/* One waiter per direction: a second reader gets -EBUSY at once instead of
 * spinning on its worker; the first is unaffected. */
static void fn_patient_reader(void *arg) {
    pipe_arg *a = arg;
    int r;
    while ((r = mote_fd_wait(a->rfd, MOTE_READABLE, T_PATIENCE)) == -EBUSY)
        mote_sleep(MOTE_MSEC(1)); /* main's probe was in first: try again */
    char buf[16];
    t_send_i64(a->report, r == MOTE_READABLE && read(a->rfd, buf, sizeof buf) == 3 ? buf[0] : r);
    mote_proc_release(a->report);
}

static int main_second_waiter(void *arg) {
    (void)arg;
    int fds[2];
    T_CHECK_EQ(make_pipe(fds), 0);
    pipe_arg a = {fds[0], mote_proc_ref(mote_self())};
    T_CHECK_EQ(mote_spawn_fn(NULL, fn_patient_reader, &a, sizeof a), 0);
    int r = -1;
    for (int i = 0; i < 1000; i++) { /* until the reader is in its wait */
        mote_sleep(MOTE_MSEC(1));
        if ((r = mote_fd_wait(fds[0], MOTE_READABLE, MOTE_MSEC(1))) == -EBUSY)
            break;
    }
    T_CHECK_EQ(r, -EBUSY);
    T_CHECK_EQ(write(fds[1], "xyz", 3), 3);
    T_CHECK_EQ(t_recv_i64(), 'x');
    mote_fd_close(fds[0]);
    mote_fd_close(fds[1]);
    return 0;
}

Test(fd, a_second_waiter_in_one_direction_is_refused) {
    T_RUN_OK(NULL, main_second_waiter, NULL);
}

/* Readiness is seen while every worker stays busy and never parks (so no
 * worker polls): a poller thread takes over. Two busy processes per worker
 * yield to each other in a loop: each worker stays in its turn-to-turn fast
 * path, and its turns keep changing, so the monitor sees no long turn and
 * starts no spare worker (which would poll). */
typedef struct busy_arg {
    atomic_int *stop, *running;
} busy_arg;

static void fn_busy(void *arg) {
    busy_arg *a = arg;
    atomic_fetch_add(a->running, 1);
    int64_t end = mote_now() + T_PATIENCE;
    while (!atomic_load(a->stop) && mote_now() < end)
        mote_yield();
    atomic_fetch_sub(a->running, 1);
}

static int main_busy_workers(void *arg) {
    (void)arg;
    atomic_int stop = 0, running = 0;
    busy_arg b = {&stop, &running};
    int k = 2 * (int)mote_threads();
    for (int i = 0; i < k; i++)
        T_CHECK_EQ(mote_spawn_fn(NULL, fn_busy, &b, sizeof b), 0);
    t_wait_at_least(&running, k);
    int fds[2];
    T_CHECK_EQ(make_pipe(fds), 0);
    pipe_arg a = {fds[0], mote_proc_ref(mote_self())};
    T_CHECK_EQ(mote_spawn_fn(NULL, fn_reader, &a, sizeof a), 0);
    mote_sleep(MOTE_MSEC(5));
    T_CHECK_EQ(write(fds[1], "xyz", 3), 3);
    T_CHECK_EQ(t_recv_i64(), 'x');
    T_CHECK_EQ(atomic_load(&running), k); /* they were busy all along */
    atomic_store(&stop, 1);
    while (atomic_load(&running) > 0)
        mote_sleep(MOTE_MSEC(1));
    mote_fd_close(fds[0]);
    mote_fd_close(fds[1]);
    return 0;
}

Test(fd, readiness_is_seen_while_every_worker_is_busy) {
    mote_config one = {.threads = 1}, two = {.threads = 2};
    T_RUN_OK(&one, main_busy_workers, NULL);
    T_RUN_OK(&two, main_busy_workers, NULL);
}

/* Several poller threads: the same waits work (they share one epoll set). */
Test(fd, several_poller_threads) {
    mote_config cfg = {.threads = 2, .netpoll_threads = 3};
    T_RUN_OK(&cfg, main_busy_workers, NULL);
    T_RUN_OK(&cfg, main_pipe_wakes_reader, NULL);
    mote_config bad = {.netpoll_threads = 65};
    cr_assert_eq(mote_run(&bad, main_busy_workers, NULL), -EINVAL);
}

/* A descriptor closed with plain close() and its number reused: the new
 * description is polled (the kernel dropped the old registration). */
static int main_reused_number(void *arg) {
    (void)arg;
    int a[2], b[2];
    T_CHECK_EQ(make_pipe(a), 0);
    T_CHECK_EQ(mote_fd_wait(a[0], MOTE_READABLE, MOTE_MSEC(1)), -ETIMEDOUT); /* registered */
    close(a[0]); /* behind mote's back */
    close(a[1]);
    T_CHECK_EQ(make_pipe(b), 0);
    T_CHECK_EQ(b[0], a[0]); /* the lowest free numbers come back */
    pipe_arg p = {b[0], mote_proc_ref(mote_self())};
    T_CHECK_EQ(mote_spawn_fn(NULL, fn_reader, &p, sizeof p), 0);
    mote_sleep(MOTE_MSEC(5));
    T_CHECK_EQ(write(b[1], "xyz", 3), 3);
    T_CHECK_EQ(t_recv_i64(), 'x');
    mote_fd_close(b[0]);
    mote_fd_close(b[1]);
    return 0;
}

Test(fd, a_reused_descriptor_number_is_polled_again) {
    T_RUN_OK(NULL, main_reused_number, NULL);
}

/* A timerfd is awaitable like any descriptor: the wait ends when it fires. */
static int main_timerfd(void *arg) {
    (void)arg;
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    T_CHECK(tfd >= 0);
    /* Unarmed, it never fires: no race with how long the first wait (which
     * opens the poller) takes on a loaded machine. */
    T_CHECK_EQ(mote_fd_wait(tfd, MOTE_READABLE, MOTE_MSEC(1)), -ETIMEDOUT);
    struct itimerspec its = {.it_value = {0, 20 * 1000 * 1000}}; /* 20 ms */
    T_CHECK_EQ(timerfd_settime(tfd, 0, &its, NULL), 0);
    T_CHECK_EQ(mote_fd_wait(tfd, MOTE_READABLE, T_PATIENCE), MOTE_READABLE);
    uint64_t expirations = 0;
    T_CHECK_EQ(read(tfd, &expirations, sizeof expirations), (ssize_t)sizeof expirations);
    T_CHECK_EQ(expirations, 1);
    T_CHECK_EQ(mote_fd_close(tfd), 0);
    return 0;
}

Test(fd, timerfd_wakes_its_waiter) {
    T_RUN_OK(NULL, main_timerfd, NULL);
}
