/*
 * test-signal.c -- signals as messages and waits: raise, kill and
 * pthread_kill to a worker, a signal sent to every thread of the program
 * (workers, poller, timer, monitor, backup, main), SIGTERM that does not
 * kill while watched and kills again once unwatched, several watchers,
 * bursts, timeouts, argument errors, and shutdown putting everything back.
 */
#include <dirent.h>
#include <fcntl.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>

#include "helpers.h"

/* Under ThreadSanitizer (T_TSAN, helpers.h) the signals go to the sending
 * thread itself, whose handler TSan runs at once. */

/* Receive the next message: it must be a signal message; its number. */
static int recv_signal(int64_t timeout) {
    mote_msg *m = NULL;
    int r = mote_receive(&m, timeout);
    if (r < 0)
        return r;
    int signo = -1;
    T_CHECK_EQ(mote_msg_kind(m), MOTE_MSG_SIGNAL);
    T_CHECK_EQ(mote_msg_size(m), sizeof(mote_signal_msg));
    if (mote_msg_kind(m) == MOTE_MSG_SIGNAL && mote_msg_size(m) == sizeof(mote_signal_msg))
        signo = ((const mote_signal_msg *)mote_msg_data(m))->signo;
    mote_msg_free(m);
    return signo;
}

static bool is_default(int signo) {
    struct sigaction sa;
    sigaction(signo, NULL, &sa);
    return sa.sa_handler == SIG_DFL;
}

/* ---- raise, kill, a data message beside them -------------------------------- */

static int raise_main(void *arg) {
    (void)arg;
    mote_proc *self = mote_self();
    T_CHECK_EQ(mote_signal_watch(self, SIGUSR1), 0);
    T_CHECK_EQ(mote_signal_watch(self, SIGUSR2), 0);
    int v = 7;
    T_CHECK_EQ(mote_send(self, &v, sizeof v), 0);
    T_CHECK_EQ(raise(SIGUSR1), 0);
    T_CHECK_EQ(kill(getpid(), SIGUSR2), 0);
    mote_msg *m = NULL;
    T_CHECK_EQ(mote_receive(&m, T_PATIENCE), 0);
    T_CHECK_EQ(mote_msg_kind(m), MOTE_MSG_DATA);
    mote_msg_free(m);
    int got[2] = {recv_signal(T_PATIENCE), recv_signal(T_PATIENCE)};
    T_CHECK((got[0] == SIGUSR1 && got[1] == SIGUSR2) || (got[0] == SIGUSR2 && got[1] == SIGUSR1));
    T_CHECK_EQ(mote_signal_unwatch(self, SIGUSR1), 0);
    T_CHECK_EQ(mote_signal_unwatch(self, SIGUSR2), 0);
    T_CHECK(is_default(SIGUSR1) && is_default(SIGUSR2));
    T_CHECK_EQ(mote_msg_kind(NULL), -EINVAL);
    return 0;
}

Test(signal, raise_and_kill_reach_the_watcher) {
    T_RUN_OK(NULL, raise_main, NULL);
}

/* ---- pthread_kill to the worker a process runs on ----------------------------- */

typedef struct kill_job {
    pthread_t main_thread;
    atomic_int done;
} kill_job;

static void kill_worker(void *arg) {
    kill_job *j = *(kill_job **)arg;
    mote_proc *self = mote_self();
    T_CHECK_EQ(mote_signal_watch(self, SIGUSR1), 0);
    pthread_t me = pthread_self(); /* read and used with no suspension between */
    T_CHECK(!pthread_equal(me, j->main_thread));
    T_CHECK_EQ(pthread_kill(me, SIGUSR1), 0);
    T_CHECK_EQ(recv_signal(T_PATIENCE), SIGUSR1);
    T_CHECK_EQ(mote_signal_unwatch(self, SIGUSR1), 0);
    atomic_store(&j->done, 1);
}

static int pthread_kill_main(void *arg) {
    kill_job *j = arg;
    T_CHECK_EQ(mote_spawn_fn(NULL, kill_worker, &j, sizeof j), 0);
    t_wait_at_least(&j->done, 1);
    return 0;
}

Test(signal, pthread_kill_to_a_worker) {
    kill_job j = {.main_thread = pthread_self()};
    T_RUN_OK(NULL, pthread_kill_main, &j);
}

/* ---- every thread of the program ---------------------------------------------- */

/* True if the status file of thread tid says SIGUSR1 is blocked. */
static bool blocks_usr1(const char *tid) {
    char path[300], line[256];
    snprintf(path, sizeof path, "/proc/self/task/%s/status", tid);
    FILE *f = fopen(path, "r");
    bool blocked = false;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "SigBlk:", 7) == 0)
            blocked = (strtoull(line + 7, NULL, 16) >> (SIGUSR1 - 1)) & 1;
    if (f)
        fclose(f);
    return blocked;
}

static void thread_name(const char *tid, char *name, size_t len) {
    char path[300];
    snprintf(path, sizeof path, "/proc/self/task/%s/comm", tid);
    FILE *f = fopen(path, "r");
    name[0] = '\0';
    if (f && fgets(name, (int)len, f))
        name[strcspn(name, "\n")] = '\0';
    if (f)
        fclose(f);
}

static void block_a_while(void *arg) {
    (void)arg;
    mote_blocking_begin();
    usleep(50 * 1000); /* long enough for the monitor to start a backup thread */
    mote_blocking_end();
}

static int every_thread_main(void *arg) {
    (void)arg;
    mote_proc *self = mote_self();
    T_CHECK_EQ(mote_signal_watch(self, SIGUSR1), 0);
    mote_sleep(MOTE_MSEC(2)); /* the timer thread */
    for (int i = 0; i < 4; i++)
        T_CHECK_EQ(mote_spawn_fn(NULL, block_a_while, NULL, 0), 0);
    mote_sleep(MOTE_MSEC(20));
    /* Send SIGUSR1 to each thread that has it unblocked; every mote thread
     * must be one of them. */
    int sent = 0;
    bool seen_worker = false, seen_poller = false, seen_timer = false, seen_monitor = false;
    DIR *d = opendir("/proc/self/task");
    T_CHECK(d != NULL);
    for (struct dirent *e; d && (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        char name[32];
        thread_name(e->d_name, name, sizeof name);
        bool mote_thread = strncmp(name, "mote-", 5) == 0;
        seen_worker |= !strncmp(name, "mote-worker", 11); /* "mote-worker-N" */
        seen_poller |= !strcmp(name, "mote-poller");
        seen_timer |= !strcmp(name, "mote-timer");
        seen_monitor |= !strcmp(name, "mote-monitor");
        if (blocks_usr1(e->d_name)) {
            if (mote_thread)
                t_fail(__FILE__, __LINE__, "%s (%s) blocks SIGUSR1", name, e->d_name);
            continue;
        }
        if (syscall(SYS_tgkill, getpid(), atoi(e->d_name), SIGUSR1) == 0)
            sent++;
    }
    if (d)
        closedir(d);
    T_CHECK(seen_worker && seen_poller && seen_timer && seen_monitor);
    for (int i = 0; i < sent; i++)
        T_CHECK_EQ(recv_signal(T_PATIENCE), SIGUSR1);
    T_CHECK_EQ(recv_signal(MOTE_MSEC(50)), -ETIMEDOUT); /* exactly one each */
    T_CHECK(sent >= 5);
    /* The runtime still works after its threads were interrupted. */
    T_CHECK_EQ(mote_sleep(MOTE_MSEC(1)), 0);
    T_CHECK_EQ(mote_signal_unwatch(self, SIGUSR1), 0);
    return 0;
}

Test(signal, every_thread_delivers) {
#ifdef T_TSAN
    cr_skip_test("ThreadSanitizer defers handlers on sleeping threads (T_TSAN in helpers.h)");
#endif
    mote_config cfg = {.threads = 2};
    T_RUN_OK(&cfg, every_thread_main, NULL);
}

/* ---- SIGTERM: caught while watched, default again after ---------------------------- */

static int sigterm_main(void *arg) {
    (void)arg;
    mote_proc *self = mote_self();
    T_CHECK(is_default(SIGTERM));
    T_CHECK_EQ(mote_signal_watch(self, SIGTERM), 0);
    T_CHECK(!is_default(SIGTERM));
    for (int i = 0; i < 3; i++) {
        T_CHECK_EQ(kill(getpid(), SIGTERM), 0);
        T_CHECK_EQ(recv_signal(T_PATIENCE), SIGTERM);
    }
    T_CHECK_EQ(mote_signal_unwatch(self, SIGTERM), 0);
    T_CHECK(is_default(SIGTERM));
    /* A forked copy of us dies of SIGTERM again. */
    pid_t pid = fork();
    if (pid == 0) {
        raise(SIGTERM);
        _exit(0);
    }
    int st = 0;
    T_CHECK_EQ(waitpid(pid, &st, 0), pid);
    T_CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);
    return 0;
}

Test(signal, sigterm_watched_does_not_kill_then_default_is_back) {
    T_RUN_OK(NULL, sigterm_main, NULL);
}

/* A handler the program had before: put back by the last unwatch. */
static atomic_int own_handler_ran;
static void own_handler(int signo) {
    (void)signo;
    atomic_fetch_add(&own_handler_ran, 1);
}

static int previous_main(void *arg) {
    (void)arg;
    mote_proc *self = mote_self();
    T_CHECK_EQ(mote_signal_watch(self, SIGHUP), 0);
    T_CHECK_EQ(raise(SIGHUP), 0);
    T_CHECK_EQ(recv_signal(T_PATIENCE), SIGHUP);
    T_CHECK_EQ(atomic_load(&own_handler_ran), 0);
    T_CHECK_EQ(mote_signal_unwatch(self, SIGHUP), 0);
    T_CHECK_EQ(raise(SIGHUP), 0);
    T_CHECK_EQ(atomic_load(&own_handler_ran), 1);
    return 0;
}

Test(signal, previous_handler_restored) {
    struct sigaction sa = {0};
    sa.sa_handler = own_handler;
    sigemptyset(&sa.sa_mask);
    cr_assert_eq(sigaction(SIGHUP, &sa, NULL), 0);
    T_RUN_OK(NULL, previous_main, NULL);
    struct sigaction now;
    sigaction(SIGHUP, NULL, &now);
    cr_assert(now.sa_handler == own_handler);
}

/* ---- several watchers of one signal --------------------------------------------- */

enum { WATCHERS = 8 };

typedef struct multi {
    atomic_int ready, got;
    t_gate stop;
} multi;

static void watcher(void *arg) {
    multi *m = *(multi **)arg;
    mote_proc *self = mote_self();
    T_CHECK_EQ(mote_signal_watch(self, SIGUSR2), 0);
    T_CHECK_EQ(mote_signal_watch(self, SIGUSR2), -EEXIST);
    atomic_fetch_add(&m->ready, 1);
    for (int i = 0; i < 2; i++)
        if (recv_signal(T_PATIENCE) == SIGUSR2)
            atomic_fetch_add(&m->got, 1);
    T_CHECK_EQ(mote_signal_unwatch(self, SIGUSR2), 0);
    T_CHECK_EQ(mote_signal_unwatch(self, SIGUSR2), -ENOENT);
}

static int multi_main(void *arg) {
    multi *m = arg;
    for (int i = 0; i < WATCHERS; i++)
        T_CHECK_EQ(mote_spawn_fn(NULL, watcher, &m, sizeof m), 0);
    t_wait_at_least(&m->ready, WATCHERS);
    T_CHECK_EQ(raise(SIGUSR2), 0);
    t_wait_at_least(&m->got, WATCHERS);
    T_CHECK_EQ(kill(getpid(), SIGUSR2), 0);
    t_wait_at_least(&m->got, 2 * WATCHERS);
    /* Unwatched by all: back to the default (checked once they are done). */
    int64_t deadline = mote_now() + T_PATIENCE;
    while (!is_default(SIGUSR2) && mote_now() < deadline)
        mote_sleep(MOTE_MSEC(1));
    T_CHECK(is_default(SIGUSR2));
    return 0;
}

Test(signal, several_watchers_each_get_it) {
    multi m = {0};
    T_RUN_OK(NULL, multi_main, &m);
    cr_assert_eq(atomic_load(&m.got), 2 * WATCHERS);
}

/* ---- bursts ------------------------------------------------------------------------ */

static int burst_sigs[] = {SIGHUP, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGTERM, SIGCHLD, SIGWINCH, SIGURG, 0};
enum { NBURST = sizeof burst_sigs / sizeof burst_sigs[0], ROUNDS = 50 };

static void *kill_burst(void *arg) {
    (void)arg;
    for (int i = 0; i < NBURST; i++) {
#ifdef T_TSAN
        raise(burst_sigs[i]); /* see T_TSAN */
#else
        kill(getpid(), burst_sigs[i]);
#endif
    }
    return NULL;
}

static int burst_main(void *arg) {
    (void)arg;
    mote_proc *self = mote_self();
    burst_sigs[NBURST - 1] = SIGRTMIN + 2; /* a real-time one too (not a constant) */
    for (int i = 0; i < NBURST; i++)
        T_CHECK_EQ(mote_signal_watch(self, burst_sigs[i]), 0);
    /* Distinct signals from a foreign thread, back to back: the kernel
     * keeps one of each pending, so every one arrives. */
    for (int r = 0; r < ROUNDS; r++) {
        pthread_t t = t_thread(kill_burst, NULL);
        int seen[65] = {0};
        for (int i = 0; i < NBURST; i++) {
            int s = recv_signal(T_PATIENCE);
            if (s > 0 && s < 65)
                seen[s]++;
        }
        for (int i = 0; i < NBURST; i++)
            T_CHECK_EQ(seen[burst_sigs[i]], 1);
        t_join(t);
    }
    /* The same signal many times, each handled before raise returns:
     * every one is counted, however the dispatcher's wake-ups fall. */
    enum { SAME = 1000 };
    for (int i = 0; i < SAME; i++)
        raise(SIGUSR1);
    int n = 0;
    while (recv_signal(n < SAME ? T_PATIENCE : MOTE_MSEC(50)) == SIGUSR1)
        n++;
    T_CHECK_EQ(n, SAME);
    for (int i = 0; i < NBURST; i++)
        T_CHECK_EQ(mote_signal_unwatch(self, burst_sigs[i]), 0);
    return 0;
}

Test(signal, bursts_lose_nothing) {
    T_RUN_OK(NULL, burst_main, NULL);
}

/* ---- mote_signal_wait ------------------------------------------------------------- */

static void *foreign_waiter(void *arg) {
    (void)arg;
    static const int sigs[] = {SIGUSR1, SIGWINCH};
    return (void *)(intptr_t)mote_signal_wait(sigs, 2, T_PATIENCE);
}

static int wait_main(void *arg) {
    (void)arg;
    const int usr2 = SIGUSR2, bad[] = {SIGUSR1, SIGKILL};
    T_CHECK_EQ(mote_signal_wait(&usr2, 1, MOTE_MSEC(5)), -ETIMEDOUT);
    T_CHECK_EQ(mote_signal_wait(&usr2, 1, 0), -ETIMEDOUT);
    T_CHECK(is_default(SIGUSR2));
    T_CHECK_EQ(mote_signal_wait(NULL, 1, 0), -EINVAL);
    T_CHECK_EQ(mote_signal_wait(&usr2, 0, 0), -EINVAL);
    T_CHECK_EQ(mote_signal_wait(bad, 2, 0), -EINVAL);
    const int invalid[] = {0, 65, -1, SIGSTOP, SIGSEGV, SIGBUS, SIGFPE, SIGILL};
    for (size_t i = 0; i < sizeof invalid / sizeof *invalid; i++) {
        T_CHECK_EQ(mote_signal_watch(mote_self(), invalid[i]), -EINVAL);
        T_CHECK_EQ(mote_signal_unwatch(mote_self(), invalid[i]), -EINVAL);
    }
    T_CHECK_EQ(mote_signal_watch(NULL, SIGUSR1), -EINVAL);
    /* A foreign thread waits; a watcher of the same signal gets it too. */
    T_CHECK_EQ(mote_signal_watch(mote_self(), SIGWINCH), 0);
    pthread_t t = t_thread(foreign_waiter, NULL);
    int64_t deadline = mote_now() + T_PATIENCE;
    int got = 0;
    void *res = NULL;
    /* Until the thread is registered, our own arrivals are all we see. */
    while (mote_now() < deadline) {
        raise(SIGWINCH);
        T_CHECK_EQ(recv_signal(T_PATIENCE), SIGWINCH);
        got++;
        if (pthread_tryjoin_np(t, &res) == 0)
            break;
        mote_sleep(MOTE_MSEC(1));
    }
    T_CHECK(got >= 1);
    T_CHECK_EQ((intptr_t)res, SIGWINCH);
    T_CHECK_EQ(mote_signal_unwatch(mote_self(), SIGWINCH), 0);
    T_CHECK(is_default(SIGWINCH));
    return 0;
}

Test(signal, wait_and_errors) {
    const int usr1 = SIGUSR1;
    cr_assert_eq(mote_signal_wait(&usr1, 1, 0), -ESHUTDOWN);
    cr_assert_eq(mote_signal_watch((mote_proc *)&usr1, SIGUSR1), -ESHUTDOWN);
    T_RUN_OK(NULL, wait_main, NULL);
}

/* A process waits; another sends it the signal. */
static void sender(void *arg) {
    (void)arg;
    mote_sleep(MOTE_MSEC(5));
    kill(getpid(), SIGINT);
}

static int wait_process_main(void *arg) {
    (void)arg;
    const int sigs[] = {SIGTERM, SIGINT};
    /* The sender may fire before we wait: then SIGINT would kill us, so
     * keep it caught by a watch while the race is open. */
    T_CHECK_EQ(mote_signal_watch(mote_self(), SIGINT), 0);
    T_CHECK_EQ(mote_spawn_fn(NULL, sender, NULL, 0), 0);
    int r = mote_signal_wait(sigs, 2, MOTE_MSEC(500));
    T_CHECK(r == SIGINT || r == -ETIMEDOUT);
    T_CHECK_EQ(recv_signal(T_PATIENCE), SIGINT);
    T_CHECK_EQ(mote_signal_unwatch(mote_self(), SIGINT), 0);
    T_CHECK(is_default(SIGINT) && is_default(SIGTERM));
    return 0;
}

Test(signal, wait_in_a_process) {
    T_RUN_OK(NULL, wait_process_main, NULL);
}

/* ---- shutdown --------------------------------------------------------------------------- */

static atomic_int foreign_started;

static void *foreign_stuck(void *arg) {
    (void)arg;
    const int s = SIGUSR2;
    atomic_store(&foreign_started, 1);
    return (void *)(intptr_t)mote_signal_wait(&s, 1, MOTE_FOREVER);
}

static int shutdown_main(void *arg) {
    pthread_t *t = arg;
    T_CHECK_EQ(mote_signal_watch(mote_self(), SIGUSR1), 0);
    T_CHECK_EQ(mote_signal_watch(mote_self(), SIGTERM), 0);
    raise(SIGUSR1);
    T_CHECK_EQ(recv_signal(T_PATIENCE), SIGUSR1);
    *t = t_thread(foreign_stuck, NULL);
    t_wait_at_least(&foreign_started, 1);
    /* Until the thread waits, the signal has the default (ignore-free) disposition. */
    int64_t deadline = mote_now() + T_PATIENCE;
    while (is_default(SIGUSR2) && mote_now() < deadline)
        mote_sleep(MOTE_MSEC(1));
    return 0; /* watches and a foreign waiter left behind */
}

Test(signal, shutdown_restores_and_frees) {
    int fds = t_count_fds();
    pthread_t t;
    T_RUN_OK(NULL, shutdown_main, &t);
    void *res = NULL;
    cr_assert_eq(pthread_join(t, &res), 0);
    cr_assert_eq((intptr_t)res, -ECANCELED);
    cr_assert(is_default(SIGUSR1) && is_default(SIGTERM) && is_default(SIGUSR2));
    cr_assert_eq(t_count_fds(), fds, "a descriptor outlived the runtime");
    /* A second runtime catches signals again. */
    T_RUN_OK(NULL, raise_main, NULL);
    cr_assert_eq(t_count_fds(), fds);
}

/* ---- signalfd needs the signal blocked in every thread: before mote_run ------------ */

static int signalfd_main(void *arg) {
    int sfd = *(int *)arg;
    kill(getpid(), SIGUSR1);
    T_CHECK_EQ(mote_fd_wait(sfd, MOTE_READABLE, T_PATIENCE), MOTE_READABLE);
    struct signalfd_siginfo si;
    T_CHECK_EQ(read(sfd, &si, sizeof si), (ssize_t)sizeof si);
    T_CHECK_EQ(si.ssi_signo, SIGUSR1);
    return 0;
}

Test(signal, signalfd_with_the_mask_set_before_mote_run) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    cr_assert_eq(pthread_sigmask(SIG_BLOCK, &set, NULL), 0);
    int sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    cr_assert(sfd >= 0);
    T_RUN_OK(NULL, signalfd_main, &sfd);
    close(sfd);
}
