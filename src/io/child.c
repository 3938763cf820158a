/*
 * child.c -- child processes (Go's os/exec, tokio::process).
 *
 * Spawning: posix_spawn (glibc runs it with CLONE_VFORK and reports a
 * failed exec, chdir or open as its return value, so "no such program" is
 * -ENOENT from mote_child_spawn, never a child exiting 127), inside a
 * blocking section: no page tables are copied (CLONE_VM), but the caller
 * waits until the child's exec has opened and read the program, from disk
 * if it is not cached. The file actions set up the three standard streams (inherit,
 * /dev/null, or a pipe), change directory, and close every descriptor from
 * 3 up (closefrom), so nothing leaks into the child even when another
 * thread opened one without O_CLOEXEC. The child gets an empty signal mask
 * and SIGPIPE back at its default (mote_run ignores it; exec resets only
 * caught signals).
 *
 * Waiting: a pidfd (pidfd_open right after the spawn: the child cannot be
 * reaped, hence its pid not reused, before we reap it) becomes readable when
 * the child exits; mote_fd_wait waits for that and waitid(P_PIDFD) reaps.
 * No SIGCHLD handler is taken from the program. Killing goes through the
 * pidfd too, so it can never hit a reused pid.
 *
 * The parent's pipe ends are mote_sockets over the pipe (read/write, waits
 * through the poller, a close that wakes waiters), so streams, readers and
 * writers work on them unchanged.
 *
 * Lifetime: refs counts the handle and each wait_async in flight; the last
 * one frees. mote_child_free on a child still running hands its reference
 * to a small process that waits and reaps in the background. Every child
 * is in a registry, so runtime shutdown frees what is left: it reaps the
 * children that have exited and leaves running ones running (Go's choice).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "io/internal.h"

extern char **environ;

struct mote_child {
    pid_t pid;
    int pidfd;
    _Atomic(mote_socket *) io[3]; /* our pipe ends; NULL if not a pipe, or closed */
    _Atomic uint32_t refs;        /* the handle + one per mote_child_wait_async in flight */
    _Atomic bool reaped;          /* st is valid */
    mote__spinlock reap_lock;     /* one waitid at a time */
    mote_child_status st;
    struct mote_child *prev, *next; /* registry (C.lock) */
};

static struct {
    pthread_mutex_t lock;
    mote_child *head;
} C = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void registry_add(mote_child *c) {
    pthread_mutex_lock(&C.lock);
    c->prev = NULL;
    c->next = C.head;
    if (c->next)
        c->next->prev = c;
    C.head = c;
    pthread_mutex_unlock(&C.lock);
}

static void registry_remove(mote_child *c) {
    pthread_mutex_lock(&C.lock);
    if (c->prev)
        c->prev->next = c->next;
    else
        C.head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    pthread_mutex_unlock(&C.lock);
}

static void close_pipes(mote_child *c) {
    for (int i = 0; i < 3; i++) {
        mote_socket *s = atomic_exchange(&c->io[i], NULL);
        if (s)
            mote_socket_close(s);
    }
}

static void child_unref(mote_child *c) {
    if (atomic_fetch_sub(&c->refs, 1) != 1)
        return;
    registry_remove(c);
    close_pipes(c);
    mote_fd_close(c->pidfd);
    free(c);
}

/* ---- Reaping -------------------------------------------------------------- */

/* Reap c if it has exited: 1 (reaped, now or before), 0 (still running),
 * or -errno. */
static int try_reap(mote_child *c) {
    if (atomic_load(&c->reaped))
        return 1;
    mote__spin_lock(&c->reap_lock);
    int r = 1;
    if (!atomic_load(&c->reaped)) {
        siginfo_t si;
        memset(&si, 0, sizeof si);
        do
            r = waitid(P_PIDFD, (id_t)c->pidfd, &si, WEXITED | WNOHANG) == 0 ? 0 : mote__errno();
        while (r == -EINTR);
        if (r == 0 && si.si_pid != 0) {
            bool exited = si.si_code == CLD_EXITED;
            c->st.exit_code = exited ? si.si_status : -1;
            c->st.signal = exited ? 0 : si.si_status;
            atomic_store(&c->reaped, true);
            r = 1;
        }
    }
    mote__spin_unlock(&c->reap_lock);
    return r;
}

int mote_child_wait(mote_child *c, int64_t timeout, mote_child_status *st) {
    if (!c)
        return -EINVAL;
    int64_t deadline = timeout < 0 ? -1 : mote_now() + timeout;
    int64_t pause = MOTE_MSEC(1);
    int r;
    while ((r = try_reap(c)) == 0) {
        int64_t left = -1;
        if (deadline >= 0 && (left = deadline - mote_now()) < 0)
            left = 0;
        r = mote_fd_wait(c->pidfd, MOTE_READABLE, left);
        if (r == -EBUSY) {
            /* Another process waits on the pidfd (one waiter per
             * descriptor): look again now and then instead. */
            if (left == 0)
                return -ETIMEDOUT;
            mote_sleep(left > 0 && left < pause ? left : pause);
            pause = pause * 2 > MOTE_MSEC(20) ? MOTE_MSEC(20) : pause * 2;
            continue;
        }
        if (r < 0 && (r != -ETIMEDOUT || try_reap(c) != 1))
            return r;
    }
    if (r < 0)
        return r;
    if (st)
        *st = c->st;
    return 0;
}

typedef struct wait_arg {
    mote_child *c;
} wait_arg;

/* In a process of its own: wait, give the future the status. */
static mote_result wait_msg(void *state, void *arg) {
    (void)state;
    mote_child *c = ((wait_arg *)arg)->c;
    mote_child_status st;
    int r = mote_child_wait(c, MOTE_FOREVER, &st);
    child_unref(c);
    if (r < 0)
        return mote_error(r);
    return mote_ok_i(st.signal ? -st.signal : st.exit_code);
}

int mote_child_wait_async(mote_child *c, mote_future **out) {
    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!c)
        return -EINVAL;
    mote_proc *p;
    int r = mote_spawn(&p, NULL, 0, NULL);
    if (r < 0)
        return r;
    atomic_fetch_add(&c->refs, 1);
    wait_arg a = {c};
    r = mote_async(p, wait_msg, &a, sizeof a, out);
    mote_proc_release(p); /* it lives until the message has run */
    if (r < 0)
        child_unref(c);
    return r;
}

/* A freed child still running: wait for it and reap it, then let go. */
static void reap_in_background(void *arg) {
    mote_child *c = *(mote_child **)arg;
    mote_child_wait(c, MOTE_FOREVER, NULL);
    child_unref(c);
}

void mote_child_free(mote_child *c) {
    if (!c)
        return;
    close_pipes(c);
    if (try_reap(c) != 0 || mote_spawn_fn(NULL, reap_in_background, &c, sizeof c) < 0)
        child_unref(c); /* exited (or, out of memory, left unreaped) */
}

/* ---- Spawning ------------------------------------------------------------- */

/* Set up standard stream i of the child in fa; *ours gets our pipe end. */
static int setup_stream(posix_spawn_file_actions_t *fa, int i, int mode, int *ours, int *theirs) {
    if (mode == MOTE_CHILD_INHERIT)
        return 0;
    if (mode == MOTE_CHILD_NULL)
        return -posix_spawn_file_actions_addopen(fa, i, "/dev/null", i == 0 ? O_RDONLY : O_WRONLY, 0);
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        return mote__errno();
    *ours = p[i == 0];
    *theirs = p[i != 0];
    /* Keep the child's end off 0..2: a dup2 onto a number that a later
     * dup2 reads from would cross the streams. */
    if (*theirs < 3) {
        int fd = fcntl(*theirs, F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
            return mote__errno();
        close(*theirs);
        *theirs = fd;
    }
    return -posix_spawn_file_actions_adddup2(fa, *theirs, i);
}

static int do_spawn(const mote_child_opts *o, pid_t *pid, int ours[3]) {
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    int theirs[3] = {-1, -1, -1};
    int r = -posix_spawn_file_actions_init(&fa);
    if (r < 0)
        return r;
    if ((r = -posix_spawnattr_init(&at)) < 0) {
        posix_spawn_file_actions_destroy(&fa);
        return r;
    }
    for (int i = 0; i < 3 && r == 0; i++)
        r = setup_stream(&fa, i, o->stdio[i], &ours[i], &theirs[i]);
    if (r == 0 && o->cwd)
        r = -posix_spawn_file_actions_addchdir_np(&fa, o->cwd);
    if (r == 0)
        r = -posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    sigset_t none, pipe_sig;
    sigemptyset(&none);
    sigemptyset(&pipe_sig);
    sigaddset(&pipe_sig, SIGPIPE);
    if (r == 0)
        r = -posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    if (r == 0)
        r = -posix_spawnattr_setsigmask(&at, &none);
    if (r == 0)
        r = -posix_spawnattr_setsigdefault(&at, &pipe_sig);
    if (r == 0) {
        char *const *argv = (char *const *)(uintptr_t)o->argv;
        char *const *envp = o->envp ? (char *const *)(uintptr_t)o->envp : environ;
        mote_blocking_begin();
        if (strchr(o->argv[0], '/'))
            r = -posix_spawn(pid, o->argv[0], &fa, &at, argv, envp);
        else
            r = -posix_spawnp(pid, o->argv[0], &fa, &at, argv, envp);
        mote_blocking_end();
    }
    posix_spawnattr_destroy(&at);
    posix_spawn_file_actions_destroy(&fa);
    for (int i = 0; i < 3; i++)
        if (theirs[i] >= 0)
            close(theirs[i]);
    return r;
}

int mote_child_spawn(mote_child **out, const mote_child_opts *o) {
    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!o || !o->argv || !o->argv[0] || !o->argv[0][0])
        return -EINVAL;
    for (int i = 0; i < 3; i++)
        if (o->stdio[i] != MOTE_CHILD_INHERIT && o->stdio[i] != MOTE_CHILD_NULL && o->stdio[i] != MOTE_CHILD_PIPE)
            return -EINVAL;
    if (!mote__sched_running())
        return -ESHUTDOWN;
    mote_child *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    int ours[3] = {-1, -1, -1};
    int r = do_spawn(o, &c->pid, ours);
    if (r == 0 && (c->pidfd = pidfd_open(c->pid, 0)) < 0) {
        /* Cannot watch it (out of descriptors): do not leave it behind. */
        r = mote__errno();
        kill(c->pid, SIGKILL);
        mote_blocking_begin();
        while (waitpid(c->pid, NULL, 0) < 0 && mote__errno() == -EINTR)
            ;
        mote_blocking_end();
    }
    for (int i = 0; i < 3; i++) {
        mote_socket *s = NULL;
        if (ours[i] >= 0 && (r < 0 || mote__socket_wrap(&s, ours[i]) < 0))
            close(ours[i]); /* adopt cannot fail on a pipe we just made; if it did, the stream reads -EBADF */
        atomic_init(&c->io[i], s);
    }
    if (r < 0) {
        free(c);
        return r;
    }
    atomic_init(&c->refs, 1);
    registry_add(c);
    *out = c;
    return 0;
}

/* ---- The rest ------------------------------------------------------------- */

int mote_child_pid(const mote_child *c) {
    return c ? c->pid : -EINVAL;
}

static mote_stream child_stream(mote_child *c, int i) {
    return mote_socket_stream(c ? atomic_load(&c->io[i]) : NULL);
}

mote_stream mote_child_stdin(mote_child *c) {
    return child_stream(c, 0);
}

mote_stream mote_child_stdout(mote_child *c) {
    return child_stream(c, 1);
}

mote_stream mote_child_stderr(mote_child *c) {
    return child_stream(c, 2);
}

int mote_child_close_stdin(mote_child *c) {
    if (!c)
        return -EINVAL;
    mote_socket *s = atomic_exchange(&c->io[0], NULL);
    return s ? mote_socket_close(s) : -EBADF;
}

int mote_child_kill(mote_child *c, int signo) {
    if (!c || signo < 0 || signo >= 65)
        return -EINVAL;
    if (atomic_load(&c->reaped))
        return -ESRCH;
    return pidfd_send_signal(c->pidfd, signo, NULL, 0) == 0 ? 0 : mote__errno();
}

/* Runtime shutdown (no process runs, the poller is closed): reap the
 * children that have exited, leave running ones running, free everything. */
void mote__child_shutdown(void) {
    pthread_mutex_lock(&C.lock);
    mote_child *c = C.head;
    C.head = NULL;
    pthread_mutex_unlock(&C.lock);
    while (c) {
        mote_child *next = c->next;
        try_reap(c);
        close(c->pidfd);
        for (int i = 0; i < 3; i++) {
            mote_socket *s = atomic_load(&c->io[i]);
            if (s)
                mote__socket_discard(s); /* calls in flight belonged to processes now gone */
        }
        free(c);
        c = next;
    }
}
