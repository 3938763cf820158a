/*
 * test-poller.c -- the poller backend interface (src/poll/poller.h),
 * directly, for every backend built in: registration, edge-triggered
 * events in both directions, HUP, wake-ups from other threads, timeouts
 * in nanoseconds, and the choice made by MOTE_POLLER. The rest of the
 * suite runs through whichever backend MOTE_POLLER chooses.
 */
#include "helpers.h"

#include <fcntl.h>
#include <sys/stat.h>

#include "poll/poller.h"

#define MAXEV 16
/* How long "nothing more comes" is watched for. A late event makes such
 * a check pass wrongly, never fail wrongly. */
#define QUIET MOTE_MSEC(20)

/* Every backend built, but one that falls back to another when the
 * kernel refuses it (uring without io_uring): test-uring covers that. */
#define EACH_BACKEND(ops)                                                                          \
    for (unsigned ops##_i = 0; (ops = mote__poller_backend(ops##_i)) != NULL; ops##_i++)         \
        if (falls_back(ops)) {                                                                     \
        } else

static bool falls_back(const mote__poller_ops *ops) {
    mote__poller *p = NULL;
    if (ops->open(&p) != 0)
        return false; /* open_backend says why */
    bool other = strcmp(mote__poller_name(p), ops->name) != 0;
    mote__poller_close(p);
    return other;
}

static mote__poller *open_backend(const mote__poller_ops *ops) {
    mote__poller *p = NULL;
    int r = ops->open(&p);
    cr_assert_eq(r, 0, "%s: open: %s", ops->name, strerror(-r));
    cr_assert_str_eq(mote__poller_name(p), ops->name);
    return p;
}

/* A connected Unix stream pair, both ends non-blocking. */
static void pair(int sv[2]) {
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
}

/* Events for data seen by waits until one brings `want` bits for it (or
 * T_PATIENCE passes); returns the bits seen for data (OR-ed). */
static unsigned wait_for(mote__poller *p, void *data, unsigned want) {
    unsigned seen = 0;
    int64_t deadline = mote_now() + T_PATIENCE;
    while ((seen & want) != want && mote_now() < deadline) {
        mote__poll_event ev[MAXEV];
        bool woken;
        int n = mote__poller_wait(p, ev, MAXEV, MOTE_MSEC(100), &woken);
        cr_assert(n >= 0, "%s: wait: %s", mote__poller_name(p), strerror(-n));
        for (int i = 0; i < n; i++)
            if (ev[i].data == data)
                seen |= ev[i].events;
    }
    return seen;
}

/* How many events for data, and with which bits, arrive within QUIET. */
static int count_events(mote__poller *p, void *data, unsigned bits) {
    int count = 0;
    int64_t end = mote_now() + QUIET;
    for (int64_t left = QUIET; left > 0; left = end - mote_now()) {
        mote__poll_event ev[MAXEV];
        bool woken;
        int n = mote__poller_wait(p, ev, MAXEV, left, &woken);
        cr_assert(n >= 0, "%s: wait: %s", mote__poller_name(p), strerror(-n));
        for (int i = 0; i < n; i++)
            if (ev[i].data == data && (ev[i].events & bits))
                count++;
    }
    return count;
}

/* One backend's poller with one end of a socket pair registered (its
 * pointer: &tag), the first write edge taken. */
typedef struct fixture {
    const mote__poller_ops *ops;
    mote__poller *p;
    int sv[2];
    int tag;
} fixture;

static void fx_open(fixture *f, const mote__poller_ops *ops) {
    f->ops = ops;
    f->p = open_backend(ops);
    pair(f->sv);
    cr_assert_eq(mote__poller_add(f->p, f->sv[0], &f->tag), 0, "%s", ops->name);
    cr_assert(wait_for(f->p, &f->tag, MOTE__EV_WRITE) & MOTE__EV_WRITE, "%s: no initial write edge", ops->name);
}

static void fx_close(fixture *f) {
    mote__poller_close(f->p);
    for (int i = 0; i < 2; i++)
        if (f->sv[i] >= 0)
            close(f->sv[i]);
}

Test(poller, every_backend_opens_and_reports_its_name) {
    const mote__poller_ops *ops;
    unsigned n = 0;
    EACH_BACKEND(ops) {
        mote__poller_close(open_backend(ops));
        n++;
    }
    cr_assert(n >= 1, "no backend built");
}

/* One event per edge: new data is a new edge; data left unread is not. */
Test(poller, one_event_per_edge) {
    const mote__poller_ops *ops;
    EACH_BACKEND(ops) {
        fixture f;
        fx_open(&f, ops);
        cr_assert_eq(count_events(f.p, &f.tag, MOTE__EV_READ | MOTE__EV_WRITE), 0, "%s: idle fd reported",
                     ops->name);
        for (int round = 0; round < 3; round++) {
            cr_assert_eq(write(f.sv[1], "x", 1), 1);
            cr_assert(wait_for(f.p, &f.tag, MOTE__EV_READ) & MOTE__EV_READ, "%s: no read edge", ops->name);
            /* The byte stays unread: edge-triggered, so nothing more. */
            cr_assert_eq(count_events(f.p, &f.tag, MOTE__EV_READ), 0, "%s: level-triggered?", ops->name);
        }
        char buf[8];
        cr_assert_eq(read(f.sv[0], buf, sizeof buf), 3);
        cr_assert_eq(count_events(f.p, &f.tag, MOTE__EV_HUP), 0, "%s: HUP without a close", ops->name);
        fx_close(&f);
    }
}

/* Writability comes back as an edge once a full buffer drains. */
Test(poller, write_edge_after_a_full_buffer_drains) {
    const mote__poller_ops *ops;
    EACH_BACKEND(ops) {
        fixture f;
        fx_open(&f, ops);
        static char chunk[65536];
        while (write(f.sv[0], chunk, sizeof chunk) > 0)
            ;
        cr_assert_eq(errno, EAGAIN);
        count_events(f.p, &f.tag, MOTE__EV_WRITE); /* whatever the filling raised */
        cr_assert_eq(count_events(f.p, &f.tag, MOTE__EV_WRITE), 0, "%s: writable while full", ops->name);
        while (read(f.sv[1], chunk, sizeof chunk) > 0)
            ;
        cr_assert(wait_for(f.p, &f.tag, MOTE__EV_WRITE) & MOTE__EV_WRITE, "%s: no write edge after draining",
                  ops->name);
        fx_close(&f);
    }
}

/* The peer's close and the peer's shutdown(SHUT_WR) both close our read
 * side for good: READ|HUP. Our own shutdown(SHUT_WR) does not. */
Test(poller, hup_when_the_read_side_closes) {
    const char *hows[] = {"peer's close", "peer's shutdown", "our shutdown"};
    const mote__poller_ops *ops;
    EACH_BACKEND(ops) {
        for (int how = 0; how < 3; how++) {
            fixture f;
            fx_open(&f, ops);
            cr_assert_eq(write(f.sv[1], "last", 4), 4); /* data and the end together */
            if (how == 0) {
                close(f.sv[1]);
                f.sv[1] = -1;
            } else {
                cr_assert_eq(shutdown(how == 1 ? f.sv[1] : f.sv[0], SHUT_WR), 0);
            }
            unsigned e = wait_for(f.p, &f.tag, how < 2 ? MOTE__EV_READ | MOTE__EV_HUP : MOTE__EV_READ);
            if (how == 2)
                e |= (unsigned)count_events(f.p, &f.tag, MOTE__EV_HUP) ? MOTE__EV_HUP : 0;
            unsigned want = how < 2 ? MOTE__EV_READ | MOTE__EV_HUP : MOTE__EV_READ;
            cr_assert_eq(e & (MOTE__EV_READ | MOTE__EV_HUP), want, "%s, %s: events 0x%x", ops->name, hows[how], e);
            fx_close(&f);
        }
    }
}

/* Registration: twice is -EEXIST, files are refused, deleted descriptors
 * are silent, and a number closed behind the poller's back and reused is
 * polled again, with the new pointer. */
Test(poller, registration) {
    const mote__poller_ops *ops;
    EACH_BACKEND(ops) {
        fixture f;
        fx_open(&f, ops);
        mote__poller *p = f.p;
        int tag2;
        cr_assert_eq(mote__poller_add(p, f.sv[0], &f.tag), -EEXIST, "%s", ops->name);
        int file = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
        cr_assert(file >= 0);
        cr_assert_eq(mote__poller_add(p, file, &tag2), -EPERM, "%s: a regular file", ops->name);
        close(file);
        int dir = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        cr_assert_eq(mote__poller_add(p, dir, &tag2), -EPERM, "%s: a directory", ops->name);
        close(dir);
        cr_assert_eq(mote__poller_add(p, 1 << 20, &tag2), -EBADF, "%s", ops->name);
        cr_assert_eq(mote__poller_del(p, f.sv[0]), 0);
        cr_assert_eq(write(f.sv[1], "x", 1), 1);
        cr_assert_eq(count_events(p, &f.tag, ~0u), 0, "%s: event after del", ops->name);

        cr_assert_eq(mote__poller_add(p, f.sv[0], &f.tag), 0, "%s", ops->name);
        wait_for(p, &f.tag, MOTE__EV_READ | MOTE__EV_WRITE);
        int old = f.sv[0];
        close(f.sv[0]); /* behind the poller's back */
        close(f.sv[1]);
        pair(f.sv);
        cr_assert_eq(f.sv[0], old);
        int r = mote__poller_add(p, f.sv[0], &tag2);
        /* libkqueue cannot tell (its BUGS.md), so it may say -EEXIST; the
         * new description must be polled either way. */
        cr_assert(r == 0 || (r == -EEXIST && strcmp(ops->name, "kqueue") == 0), "%s: %d", ops->name, r);
        cr_assert_eq(write(f.sv[1], "y", 1), 1);
        cr_assert(wait_for(p, &tag2, MOTE__EV_READ) & MOTE__EV_READ, "%s: reused number not polled",
                  ops->name);
        fx_close(&f);
    }
}

/* More ready descriptors than one wait takes: later waits report the
 * rest, nothing is dropped (an edge dropped never comes back). */
Test(poller, many_ready_descriptors_are_all_reported) {
    enum { N = 40 };
    const mote__poller_ops *ops;
    EACH_BACKEND(ops) {
        mote__poller *p = open_backend(ops);
        int sv[N][2];
        bool seen[N] = {0};
        for (int i = 0; i < N; i++) {
            pair(sv[i]);
            cr_assert_eq(write(sv[i][1], "x", 1), 1); /* readable and writable */
            cr_assert_eq(mote__poller_add(p, sv[i][0], &seen[i]), 0);
        }
        int got = 0;
        int64_t deadline = mote_now() + T_PATIENCE;
        while (got < N && mote_now() < deadline) {
            mote__poll_event ev[4];
            bool woken;
            int n = mote__poller_wait(p, ev, 4, MOTE_MSEC(100), &woken);
            cr_assert(n >= 0 && n <= 4, "%s: %d", ops->name, n);
            for (int i = 0; i < n; i++) {
                bool *s = ev[i].data;
                if ((ev[i].events & MOTE__EV_READ) && !*s) {
                    *s = true;
                    got++;
                }
            }
        }
        cr_assert_eq(got, N, "%s: %d of %d readable descriptors reported", ops->name, got, N);
        mote__poller_close(p);
        for (int i = 0; i < N; i++) {
            close(sv[i][0]);
            close(sv[i][1]);
        }
    }
}

typedef struct waker {
    mote__poller *p;
    atomic_int woken;
    atomic_int done;
} waker;

static void *wait_forever(void *arg) {
    waker *w = arg;
    mote__poll_event ev[MAXEV];
    bool woken = false;
    while (!woken) {
        int n = mote__poller_wait(w->p, ev, MAXEV, -1, &woken);
        if (n < 0 && n != -EINTR)
            break;
    }
    atomic_fetch_add(&w->woken, woken);
    atomic_fetch_add(&w->done, 1);
    return NULL;
}

/* A wake-up from another thread ends one wait, and exactly one wait
 * reports it, however many threads wait. */
Test(poller, wakeup_from_another_thread_is_consumed_once) {
    const mote__poller_ops *ops;
    EACH_BACKEND(ops) {
        waker w = {.p = open_backend(ops)};
        mote__poll_event ev[MAXEV];
        bool woken = true;
        /* Before a wait: the next wait takes it, the one after does not. */
        mote__poller_wakeup(w.p);
        mote__poller_wakeup(w.p);
        cr_assert_eq(mote__poller_wait(w.p, ev, MAXEV, T_PATIENCE, &woken), 0);
        cr_assert(woken, "%s", ops->name);
        cr_assert_eq(mote__poller_wait(w.p, ev, MAXEV, QUIET, &woken), 0);
        cr_assert(!woken, "%s: one wake-up reported twice", ops->name);

        pthread_t t[2];
        for (int i = 0; i < 2; i++)
            cr_assert_eq(pthread_create(&t[i], NULL, wait_forever, &w), 0);
        usleep(10000); /* usually both wait by now; either way one wakes */
        mote__poller_wakeup(w.p);
        int64_t deadline = mote_now() + T_PATIENCE;
        while (atomic_load(&w.done) < 1 && mote_now() < deadline)
            usleep(1000);
        usleep(QUIET / 1000);
        cr_assert_eq(atomic_load(&w.done), 1, "%s: one wake-up ended %d waits", ops->name, atomic_load(&w.done));
        mote__poller_wakeup(w.p);
        for (int i = 0; i < 2; i++)
            pthread_join(t[i], NULL);
        cr_assert_eq(atomic_load(&w.woken), 2);
        mote__poller_close(w.p);
    }
}

/* Timeouts are nanoseconds: a sub-millisecond wait is not cut to zero
 * (nor to a busy return), and no wait ends before its time. */
Test(poller, timeouts_in_nanoseconds) {
    const mote__poller_ops *ops;
    EACH_BACKEND(ops) {
        mote__poller *p = open_backend(ops);
        int64_t waits[] = {MOTE_USEC(300), MOTE_USEC(1500), MOTE_MSEC(3) + 1};
        for (unsigned i = 0; i < sizeof waits / sizeof waits[0]; i++) {
            mote__poll_event ev[MAXEV];
            bool woken;
            int64_t t0 = mote_now();
            cr_assert_eq(mote__poller_wait(p, ev, MAXEV, waits[i], &woken), 0);
            int64_t took = mote_now() - t0;
            cr_assert(took >= waits[i], "%s: a %lld ns wait returned after %lld ns", ops->name,
                      (long long)waits[i], (long long)took);
        }
        mote__poll_event ev[MAXEV];
        bool woken;
        cr_assert_eq(mote__poller_wait(p, ev, MAXEV, 0, &woken), 0);
        mote__poller_close(p);
    }
}

/* MOTE_POLLER chooses among the backends built; unset means the first. */
Test(poller, the_environment_chooses_the_backend) {
    const char *given = getenv("MOTE_POLLER");
    if (given && *given) {
        /* The suite runs under this choice: check that it is the one used. */
        mote__poller *p;
        cr_assert_eq(mote__poller_open(&p), 0, "MOTE_POLLER=%s", given);
        if (strcmp(given, "uring") != 0 || strcmp(mote__poller_name(p), "epoll") != 0)
            cr_assert_str_eq(mote__poller_name(p), given); /* uring may fall back to epoll */
        mote__poller_close(p);
    }
    unsetenv("MOTE_POLLER");
    cr_assert_eq(mote__poller_choose(), mote__poller_backend(0));
    const mote__poller_ops *ops;
    EACH_BACKEND(ops) {
        setenv("MOTE_POLLER", ops->name, 1);
        mote__poller *p;
        cr_assert_eq(mote__poller_open(&p), 0);
        cr_assert_str_eq(mote__poller_name(p), ops->name);
        mote__poller_close(p);
    }
    setenv("MOTE_POLLER", "nosuch", 1);
    cr_assert(mote__poller_choose() == NULL);
    mote__poller *p = NULL;
    cr_assert_eq(mote__poller_open(&p), -EINVAL);
    cr_assert(p == NULL);
}

static int main_fd_wait(void *arg) {
    int *r = arg, fds[2];
    T_CHECK_EQ(pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
    *r = mote_fd_wait(fds[0], MOTE_READABLE, MOTE_MSEC(1));
    close(fds[0]);
    close(fds[1]);
    return 0;
}

/* A name not built in fails with -EINVAL: mote_run's own, or the first
 * descriptor wait's (the poller opens on first use). */
Test(poller, an_unknown_backend_is_einval) {
    setenv("MOTE_POLLER", "nosuch", 1);
    int waited = 0;
    int r = t_run(NULL, main_fd_wait, &waited);
    cr_assert(r == -EINVAL, "mote_run %d (mote_fd_wait %d)", r, waited);
    unsetenv("MOTE_POLLER");
}
