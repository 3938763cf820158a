/*
 * poller_kqueue.c -- the BSD/macOS backend: kqueue, with an EV_CLEAR
 * (edge-triggered) read filter and write filter per descriptor, both
 * carrying the registration's pointer, and an EVFILT_USER event to
 * interrupt a wait. On Linux it builds over libkqueue (kqueue in user
 * space on top of epoll), which is how CI tests it; libkqueue's
 * differences from the BSD kernels that matter here are noted where they
 * bite (its BUGS.md lists the general ones).
 *
 * Events map to the epoll backend's meaning:
 *   read filter            READ          (EPOLLIN)
 *   read filter, EV_EOF    READ|HUP      (EPOLLRDHUP: the read side is closed)
 *   write filter           WRITE         (EPOLLOUT)
 *   write filter, EV_EOF   WRITE         (the peer stopped reading: a write
 *                                         fails at once; says nothing of
 *                                         our read side, which our own
 *                                         shutdown(SHUT_WR) leaves open)
 *   EV_EOF with fflags     READ|WRITE|ERR|HUP  (EPOLLERR: a pending error)
 */
#include "poll/poller.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/event.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifdef EVFILT_LIBKQUEUE
/* libkqueue frees a closed kqueue on its own monitoring thread, later;
 * this waits for that (exported for tests, not declared in its header),
 * so nothing of the poller outlives mote_run. */
void libkqueue_drain_pending_close(void);
#endif

/* The EVFILT_USER event's ident: user events have their own namespace. */
#define WAKE_IDENT 1

typedef struct kqueue_poller {
    mote__poller base;
    int kq;
} kqueue_poller;

static int kq_open(mote__poller **out) {
    kqueue_poller *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    p->base.ops = &mote__poller_kqueue;
    p->kq = kqueue();
    if (p->kq < 0) {
        int e = mote__errno();
        free(p);
        return e;
    }
    /* Close-on-exec like every mote descriptor: kqueue() has no flag for
     * it everywhere (the BSDs do not pass a kqueue to a forked child, but
     * an exec'd one would see the number). */
    struct kevent ch;
    EV_SET(&ch, WAKE_IDENT, EVFILT_USER, EV_ADD | EV_CLEAR, 0, 0, NULL);
    if (fcntl(p->kq, F_SETFD, FD_CLOEXEC) != 0 || kevent(p->kq, &ch, 1, NULL, 0, NULL) != 0) {
        int e = mote__errno();
        close(p->kq);
        free(p);
        return e;
    }
    *out = &p->base;
    return 0;
}

static void kq_close(mote__poller *base) {
    kqueue_poller *p = (kqueue_poller *)base;
    close(p->kq);
#ifdef EVFILT_LIBKQUEUE
    libkqueue_drain_pending_close();
#endif
    free(p);
}

/*
 * One kevent() call deletes both filters and adds them again, so that the
 * answer "already registered" (-EEXIST, from the delete) is about the
 * open description, as epoll's is:
 *   - native kqueue drops a descriptor's filters when it is closed, so a
 *     number closed behind our back and reused is new (0);
 *   - libkqueue cannot see such a close and keeps the old filters, which
 *     would keep the new description unpolled (BUGS.md: "If a file
 *     descriptor outside of kqueue is closed, the internal kqueue state is
 *     not cleaned up"); deleting and adding registers it anyway (libkqueue
 *     reports that delete as a success, so the answer is then -EEXIST and
 *     the caller keeps the old description's readiness: at worst one
 *     spurious wake-up).
 * Adding evaluates the filter at once, so readiness the delete dropped
 * from the queue is reported again; nothing is lost.
 */
static int kq_add(mote__poller *base, int fd, void *data) {
    kqueue_poller *p = (kqueue_poller *)base;
    /* kqueue takes files (always readable), epoll refuses them: mote
     * keeps them for blocking sections, so refuse them here too. */
    struct stat st;
    if (fstat(fd, &st) != 0)
        return mote__errno();
    if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))
        return -EPERM;
    /* EV_RECEIPT: one result per change, in order, errors in data.
     * Write before read: libkqueue shares one epoll registration between
     * an fd's two filters, and adding the write filter second drops
     * EPOLLRDHUP from it, so a peer's shutdown(SHUT_WR) would never say
     * EV_EOF. */
    struct kevent ch[4], res[4];
    EV_SET(&ch[0], fd, EVFILT_READ, EV_DELETE | EV_RECEIPT, 0, 0, NULL);
    EV_SET(&ch[1], fd, EVFILT_WRITE, EV_DELETE | EV_RECEIPT, 0, 0, NULL);
    EV_SET(&ch[2], fd, EVFILT_WRITE, EV_ADD | EV_CLEAR | EV_RECEIPT, 0, 0, data);
    EV_SET(&ch[3], fd, EVFILT_READ, EV_ADD | EV_CLEAR | EV_RECEIPT, 0, 0, data);
    int n = kevent(p->kq, ch, 4, res, 4, NULL);
    if (n < 0)
        return mote__errno();
    if (n != 4)
        return -EIO;
    /* Some descriptors take only one direction (a BSD pipe's read end
     * refuses the write filter); epoll registers both regardless. */
    if (res[2].data != 0 && res[3].data != 0)
        return (int)-res[3].data;
    return res[0].data == 0 || res[1].data == 0 ? -EEXIST : 0;
}

static int kq_del(mote__poller *base, int fd) {
    kqueue_poller *p = (kqueue_poller *)base;
    struct kevent ch[2], res[2];
    EV_SET(&ch[0], fd, EVFILT_READ, EV_DELETE | EV_RECEIPT, 0, 0, NULL);
    EV_SET(&ch[1], fd, EVFILT_WRITE, EV_DELETE | EV_RECEIPT, 0, 0, NULL);
    int n = kevent(p->kq, ch, 2, res, 2, NULL);
    if (n < 0)
        return mote__errno();
    if (n != 2)
        return -EIO;
    return res[0].data == 0 || res[1].data == 0 ? 0 : (int)-res[0].data;
}

static unsigned kq_events(const struct kevent *k) {
    if ((k->flags & EV_EOF) && k->fflags != 0)
        return MOTE__EV_READ | MOTE__EV_WRITE | MOTE__EV_ERR | MOTE__EV_HUP;
    if (k->filter == EVFILT_WRITE)
        return MOTE__EV_WRITE;
    return k->flags & EV_EOF ? MOTE__EV_READ | MOTE__EV_HUP : MOTE__EV_READ;
}

static int kq_wait(mote__poller *base, mote__poll_event *out, int max, int64_t timeout, bool *woken) {
    kqueue_poller *p = (kqueue_poller *)base;
    /* 64: this may run on a process's loop stack (16 KiB at least), and
     * a BSD struct kevent takes 64 bytes. */
    struct kevent ev[64];
    if (max > 64)
        max = 64;
    *woken = false;
    struct timespec ts, *tsp = NULL;
    if (timeout >= 0) {
        ts.tv_sec = (time_t)(timeout / 1000000000);
        ts.tv_nsec = (long)(timeout % 1000000000);
        tsp = &ts;
    }
    int n = kevent(p->kq, NULL, 0, ev, max, tsp);
    if (n < 0)
        return mote__errno();
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (ev[i].filter == EVFILT_USER) {
            *woken = true; /* EV_CLEAR: delivered to one wait only */
            continue;
        }
        if (ev[i].flags & EV_ERROR)
            continue; /* a change's result; wait passes no changes */
        out[k].data = ev[i].udata;
        out[k].events = kq_events(&ev[i]);
        k++;
    }
    return k;
}

static void kq_wakeup(mote__poller *base) {
    kqueue_poller *p = (kqueue_poller *)base;
    struct kevent ch;
    EV_SET(&ch, WAKE_IDENT, EVFILT_USER, 0, NOTE_TRIGGER, 0, NULL);
    (void)kevent(p->kq, &ch, 1, NULL, 0, NULL); /* one pending trigger suffices */
}

const mote__poller_ops mote__poller_kqueue = {
    .name = "kqueue",
    .open = kq_open,
    .close = kq_close,
    .add = kq_add,
    .del = kq_del,
    .wait = kq_wait,
    .wakeup = kq_wakeup,
};
