/* poller_epoll.c -- the Linux backend: epoll, edge-triggered, plus an
 * eventfd to interrupt a wait. */
#include "poll/poller.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

typedef struct epoll_poller {
    mote__poller base;
    int epfd;
    int wakefd;
} epoll_poller;

static int ep_open(mote__poller **out) {
    epoll_poller *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    p->base.ops = &mote__poller_epoll;
    p->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (p->epfd < 0) {
        int e = mote__errno();
        free(p);
        return e;
    }
    p->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (p->wakefd < 0 || epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->wakefd, &ev) != 0) {
        int e = mote__errno();
        if (p->wakefd >= 0)
            close(p->wakefd);
        close(p->epfd);
        free(p);
        return e;
    }
    *out = &p->base;
    return 0;
}

static void ep_close(mote__poller *base) {
    epoll_poller *p = (epoll_poller *)base;
    close(p->wakefd);
    close(p->epfd);
    free(p);
}

static int ep_add(mote__poller *base, int fd, void *data) {
    epoll_poller *p = (epoll_poller *)base;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = data};
    return epoll_ctl(p->epfd, EPOLL_CTL_ADD, fd, &ev) == 0 ? 0 : mote__errno();
}

static int ep_del(mote__poller *base, int fd) {
    epoll_poller *p = (epoll_poller *)base;
    return epoll_ctl(p->epfd, EPOLL_CTL_DEL, fd, NULL) == 0 ? 0 : mote__errno();
}

/* epoll_pwait2 (Linux 5.11) takes nanoseconds: a worker that sleeps here
 * until the next timer must not round up to a millisecond. */
static _Atomic bool no_pwait2;

static int wait_ns(int epfd, struct epoll_event *ev, int max, int64_t timeout) {
    if (timeout > 0 && !atomic_load_explicit(&no_pwait2, memory_order_relaxed)) {
        struct timespec ts = {timeout / 1000000000, timeout % 1000000000};
        int n = epoll_pwait2(epfd, ev, max, &ts, NULL);
        if (n >= 0 || mote__errno() != -ENOSYS)
            return n;
        atomic_store(&no_pwait2, true);
    }
    int ms = timeout < 0 ? -1 : (int)((timeout + 999999) / 1000000);
    return epoll_wait(epfd, ev, max, ms);
}

static int ep_wait(mote__poller *base, mote__poll_event *out, int max, int64_t timeout, bool *woken) {
    epoll_poller *p = (epoll_poller *)base;
    struct epoll_event ev[128];
    if (max > 128)
        max = 128;
    *woken = false;
    int n = wait_ns(p->epfd, ev, max, timeout);
    if (n < 0)
        return mote__errno();
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (!ev[i].data.ptr) { /* the wake-up eventfd */
            /* One read takes the whole counter. Several waiting threads
             * may all see it readable; only the one that read it was
             * woken (the others owe nobody a wake-up). */
            uint64_t v;
            if (read(p->wakefd, &v, sizeof v) > 0)
                *woken = true;
            continue;
        }
        unsigned e = 0;
        if (ev[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
            e |= MOTE__EV_READ;
        if (ev[i].events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
            e |= MOTE__EV_WRITE;
        if (ev[i].events & EPOLLERR)
            e |= MOTE__EV_ERR;
        if (ev[i].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
            e |= MOTE__EV_HUP;
        out[k].data = ev[i].data.ptr;
        out[k].events = e;
        k++;
    }
    return k;
}

static void ep_wakeup(mote__poller *base) {
    epoll_poller *p = (epoll_poller *)base;
    uint64_t one = 1;
    ssize_t r = write(p->wakefd, &one, sizeof one);
    (void)r; /* a full counter already means "wake up" */
}

const mote__poller_ops mote__poller_epoll = {
    .name = "epoll",
    .open = ep_open,
    .close = ep_close,
    .add = ep_add,
    .del = ep_del,
    .wait = ep_wait,
    .wakeup = ep_wakeup,
};
