/*
 * signal.c -- signals as messages (mote_signal_watch) and as a wait
 * (mote_signal_wait), libuv's way.
 *
 * While a signal has at least one user (a watching process or a waiter),
 * its handler is on_signal: it counts the arrival in pending[signo] and
 * writes the eventfd, nothing else (both async-signal-safe, and it works on
 * whichever thread the kernel picked). A dispatcher process, spawned on
 * first use, waits on the eventfd through the poller (mote_fd_wait), then
 * takes each count and hands the arrivals on: a message per arrival to each
 * watcher, the signal number to each waiter. The count, not the eventfd,
 * says how many arrived, so nothing is lost between two wake-ups; the
 * kernel's own merging of a standard signal sent again while still pending
 * is outside our reach (documented in mote.h).
 *
 * The first user of a signal installs the handler and keeps the old
 * disposition; the last one to go restores it, so with nobody watching the
 * program behaves as if mote did not exist (SIGINT kills).
 *
 * Locking: S.lock (a mutex) guards the lists and the counts. Nothing that
 * may suspend runs under it: sends can yield and a process release can run
 * a destructor, so both happen after unlocking (the dispatcher copies the
 * watchers it will send to). Completing a waiter's future never suspends.
 *
 * Shutdown (mote__signal_shutdown, after the workers and the poller have
 * stopped): every disposition is restored, then `closing` is set and the
 * eventfd is closed only once no handler is between its check of `closing`
 * and its write (`inflight`, a Dekker pair: the handler bumps inflight,
 * then reads closing; shutdown sets closing, then reads inflight), so a
 * late handler never writes to a closed (or reused) descriptor.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "io/internal.h"

#define NSIGS 65 /* signal numbers 1..64 */
#define SIGBIT(s) (UINT64_C(1) << ((s) - 1))

typedef struct watch {
    struct watch *next;
    mote_proc *proc; /* a reference */
    int signo;
} watch;

/* A mote_signal_wait in progress, on the waiter's stack. */
typedef struct waiter {
    struct waiter *next, **pprev;
    uint64_t mask;   /* SIGBIT(s): waits for signal s */
    bool linked;     /* in S.waiters (under S.lock) */
    bool counted;    /* still counted in S.users (shutdown clears it) */
    mote_future fut; /* resolves with the signal number */
} waiter;

static struct {
    pthread_mutex_t lock;
    bool started;                 /* eventfd open, dispatcher spawned */
    unsigned users[NSIGS];        /* watchers + waiters per signal */
    struct sigaction old[NSIGS];  /* disposition before the first user */
    watch *watches;
    waiter *waiters;
    mote_proc **scratch;          /* dispatcher only: copies of watchers */
    size_t scratch_cap;
    _Atomic int efd;
    _Atomic uint32_t pending[NSIGS];
    _Atomic uint32_t inflight;
    _Atomic bool closing;
} S = {.lock = PTHREAD_MUTEX_INITIALIZER, .efd = -1};

/* ---- The handler ---------------------------------------------------------- */

static void on_signal(int signo) {
    int saved = errno; /* the interrupted code may be about to read it */
    atomic_fetch_add(&S.inflight, 1);
    if (!atomic_load(&S.closing)) {
        atomic_fetch_add(&S.pending[signo], 1);
        uint64_t one = 1;
        ssize_t r = write(atomic_load(&S.efd), &one, sizeof one);
        (void)r; /* the counter cannot overflow in practice; EAGAIN means "already readable" */
    }
    atomic_fetch_sub(&S.inflight, 1);
    errno = saved;
}

/* Signals mote can catch for a watcher: not SIGKILL/SIGSTOP (nobody can),
 * nor the synchronous faults, whose handler returning re-runs the fault. */
static bool catchable(int s) {
    return s > 0 && s < NSIGS && s != SIGKILL && s != SIGSTOP && s != SIGSEGV && s != SIGBUS &&
           s != SIGILL && s != SIGFPE && s != SIGTRAP && s != SIGSYS;
}

/* One more user of s (under S.lock): the first installs the handler. */
static int sig_use(int s) {
    if (S.users[s] == 0) {
        struct sigaction sa = {0};
        sa.sa_handler = on_signal;
        sa.sa_flags = SA_RESTART;
        sigemptyset(&sa.sa_mask);
        if (sigaction(s, &sa, &S.old[s]) != 0)
            return mote__errno();
    }
    S.users[s]++;
    return 0;
}

/* One user less (under S.lock): the last restores the old disposition. */
static void sig_unuse(int s) {
    if (--S.users[s] == 0)
        sigaction(s, &S.old[s], NULL);
}

/* ---- The dispatcher ------------------------------------------------------- */

/* Send n arrivals of s to every watcher of s and wake the waiters of s. */
static void deliver(int s, uint32_t n) {
    pthread_mutex_lock(&S.lock);
    for (waiter *w = S.waiters, *next; w; w = next) {
        next = w->next;
        if (!(w->mask & SIGBIT(s)))
            continue;
        *w->pprev = next;
        if (next)
            next->pprev = w->pprev;
        w->linked = false;
        mote__future_complete(&w->fut, mote_ok_i(s));
    }
    size_t k = 0;
    for (watch *x = S.watches; x; x = x->next) {
        if (x->signo != s)
            continue;
        if (k == S.scratch_cap) {
            size_t cap = k ? 2 * k : 8;
            mote_proc **grown = realloc(S.scratch, cap * sizeof *grown);
            if (!grown)
                break; /* out of memory: the remaining watchers miss this one */
            S.scratch = grown;
            S.scratch_cap = cap;
        }
        S.scratch[k++] = mote_proc_ref(x->proc);
    }
    pthread_mutex_unlock(&S.lock);
    mote_signal_msg msg = {.signo = s};
    for (size_t i = 0; i < k; i++) {
        for (uint32_t j = 0; j < n; j++)
            mote__send_kind(S.scratch[i], MOTE_MSG_SIGNAL, &msg, sizeof msg);
        mote_proc_release(S.scratch[i]);
    }
}

static void dispatcher(void *arg) {
    (void)arg;
    int efd = atomic_load(&S.efd);
    for (;;) {
        int r = mote_fd_wait(efd, MOTE_READABLE, MOTE_FOREVER);
        if (r < 0 && r != -EINTR)
            mote_sleep(MOTE_MSEC(10)); /* cannot wait (-ENOMEM, ...): poll the counts */
        uint64_t v;
        while (read(efd, &v, sizeof v) > 0)
            ;
        /* After draining: a handler bumps its count before writing, so
         * every count behind a write we consumed is visible now. */
        for (int s = 1; s < NSIGS; s++) {
            uint32_t n = atomic_exchange(&S.pending[s], 0);
            if (n)
                deliver(s, n);
        }
    }
}

/* Under S.lock: open the eventfd on first use. *spawn is set when the
 * caller must start the dispatcher once it has unlocked. */
static int start_locked(bool *spawn) {
    *spawn = false;
    if (S.started)
        return 0;
    if (atomic_load(&S.efd) < 0) {
        int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (fd < 0)
            return mote__errno();
        atomic_store(&S.efd, fd);
    }
    S.started = true;
    *spawn = true;
    return 0;
}

/* After unlocking: spawn the dispatcher if start_locked said so. Arrivals
 * before it runs wait in the counts and the eventfd. */
static int start_dispatcher(bool spawn) {
    if (!spawn)
        return 0;
    int r = mote_spawn_fn(NULL, dispatcher, NULL, 0);
    if (r < 0) {
        pthread_mutex_lock(&S.lock);
        S.started = false; /* the next user tries again */
        pthread_mutex_unlock(&S.lock);
    }
    return r;
}

/* ---- Public calls --------------------------------------------------------- */

int mote_signal_watch(mote_proc *p, int signo) {
    if (!p || !catchable(signo))
        return -EINVAL;
    if (!mote__sched_running())
        return -ESHUTDOWN;
    watch *x = malloc(sizeof *x);
    if (!x)
        return -ENOMEM;
    bool spawn = false;
    pthread_mutex_lock(&S.lock);
    int r = 0;
    for (watch *y = S.watches; y; y = y->next)
        if (y->proc == p && y->signo == signo)
            r = -EEXIST;
    if (r == 0)
        r = start_locked(&spawn);
    if (r == 0)
        r = sig_use(signo);
    if (r == 0) {
        x->proc = mote_proc_ref(p);
        x->signo = signo;
        x->next = S.watches;
        S.watches = x;
    }
    pthread_mutex_unlock(&S.lock);
    if (r < 0)
        free(x);
    /* A dispatcher that cannot start leaves the watch in place: the next
     * call tries again, and the arrivals wait in the counts. */
    int e = start_dispatcher(spawn);
    return r < 0 ? r : e;
}

int mote_signal_unwatch(mote_proc *p, int signo) {
    if (!p || !catchable(signo))
        return -EINVAL;
    watch *found = NULL;
    pthread_mutex_lock(&S.lock);
    for (watch **pp = &S.watches; *pp; pp = &(*pp)->next) {
        if ((*pp)->proc == p && (*pp)->signo == signo) {
            found = *pp;
            *pp = found->next;
            sig_unuse(signo);
            break;
        }
    }
    pthread_mutex_unlock(&S.lock);
    if (!found)
        return -ENOENT;
    mote_proc_release(found->proc); /* may run its destructor: not under the lock */
    free(found);
    return 0;
}

int mote_signal_wait(const int *signos, size_t n, int64_t timeout) {
    if (!signos || n == 0 || n >= NSIGS)
        return -EINVAL;
    uint64_t mask = 0;
    for (size_t i = 0; i < n; i++) {
        if (!catchable(signos[i]))
            return -EINVAL;
        mask |= SIGBIT(signos[i]);
    }
    if (!mote__sched_running())
        return -ESHUTDOWN;
    waiter w = {.mask = mask};
    mote__future_init_stack(&w.fut);
    bool spawn = false;
    pthread_mutex_lock(&S.lock);
    int r = start_locked(&spawn);
    int s = 1;
    for (; r == 0 && s < NSIGS; s++)
        if ((mask & SIGBIT(s)) && (r = sig_use(s)) < 0)
            break;
    if (r < 0) {
        while (--s > 0) /* give back the ones taken */
            if (mask & SIGBIT(s))
                sig_unuse(s);
    } else {
        w.next = S.waiters;
        w.pprev = &S.waiters;
        if (w.next)
            w.next->pprev = &w.next;
        S.waiters = &w;
        w.linked = w.counted = true;
    }
    pthread_mutex_unlock(&S.lock);
    if (r < 0)
        return r;
    r = start_dispatcher(spawn);
    if (r == 0)
        r = mote__future_wait(&w.fut, timeout);
    pthread_mutex_lock(&S.lock);
    bool done = !w.linked; /* completed, under the lock, by the dispatcher or shutdown */
    if (!done) {
        *w.pprev = w.next;
        if (w.next)
            w.next->pprev = w.pprev;
    }
    if (w.counted)
        for (s = 1; s < NSIGS; s++)
            if (mask & SIGBIT(s))
                sig_unuse(s);
    pthread_mutex_unlock(&S.lock);
    if (!done)
        return r; /* -ETIMEDOUT, or the dispatcher could not start */
    return w.fut.res.err < 0 ? w.fut.res.err : (int)w.fut.res.i;
}

/* ---- Shutdown ------------------------------------------------------------- */

/* Runtime shutdown, once no process runs and the poller is closed: restore
 * every disposition, close the eventfd, free the watches. A foreign thread
 * still in mote_signal_wait gets -ECANCELED. The dispatcher process (parked
 * in mote_fd_wait) is freed with the other processes. */
void mote__signal_shutdown(void) {
    pthread_mutex_lock(&S.lock);
    for (int s = 1; s < NSIGS; s++)
        if (S.users[s]) {
            sigaction(s, &S.old[s], NULL);
            S.users[s] = 0;
        }
    for (waiter *w = S.waiters, *next; w; w = next) {
        next = w->next;
        w->linked = w->counted = false;
        mote__future_complete(&w->fut, mote_error(-ECANCELED));
    }
    S.waiters = NULL;
    watch *x = S.watches;
    S.watches = NULL;
    atomic_store(&S.closing, true);
    while (atomic_load(&S.inflight)) /* a handler between its check and its write */
        sched_yield();
    int fd = atomic_exchange(&S.efd, -1);
    if (fd >= 0)
        close(fd);
    for (int s = 1; s < NSIGS; s++)
        atomic_store(&S.pending[s], 0);
    free(S.scratch);
    S.scratch = NULL;
    S.scratch_cap = 0;
    S.started = false;
    atomic_store(&S.closing, false);
    pthread_mutex_unlock(&S.lock);
    /* The processes themselves are freed by the runtime right after. */
    while (x) {
        watch *next = x->next;
        free(x);
        x = next;
    }
}
