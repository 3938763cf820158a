/* poller.c -- chooses the backend and dispatches to it. Which backends
 * exist is decided at build time (CMake's MOTE_POLLERS defines
 * MOTE_POLLER_<NAME> for each); which one runs, at run time (MOTE_POLLER). */
#include "poll/poller.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if !defined(MOTE_POLLER_EPOLL) && !defined(MOTE_POLLER_KQUEUE) && !defined(MOTE_POLLER_URING)
#error "no poller backend: build with MOTE_POLLERS (defines MOTE_POLLER_<NAME>)"
#endif

/* The first one built is the default: epoll where it exists. */
static const mote__poller_ops *const backends[] = {
#ifdef MOTE_POLLER_EPOLL
    &mote__poller_epoll,
#endif
#ifdef MOTE_POLLER_KQUEUE
    &mote__poller_kqueue,
#endif
#ifdef MOTE_POLLER_URING
    &mote__poller_uring, /* chosen by name only: MOTE_POLLER=uring */
#endif
    NULL,
};

const mote__poller_ops *mote__poller_backend(unsigned i) {
    return i < sizeof backends / sizeof backends[0] ? backends[i] : NULL;
}

const mote__poller_ops *mote__poller_choose(void) {
    const char *want = getenv("MOTE_POLLER");
    if (!want || !*want)
        return backends[0];
    for (unsigned i = 0; backends[i]; i++)
        if (strcmp(backends[i]->name, want) == 0)
            return backends[i];
    static _Atomic bool told; /* once: every descriptor wait would repeat it */
    if (!atomic_exchange(&told, true)) {
        char built[64] = "";
        for (unsigned i = 0; backends[i]; i++)
            snprintf(built + strlen(built), sizeof built - strlen(built), " %s", backends[i]->name);
        fprintf(stderr, "mote: MOTE_POLLER=%s: no such poller in this build (built:%s)\n", want, built);
    }
    return NULL;
}

const char *mote__poller_name(const mote__poller *p) {
    return p->ops->name;
}

int mote__poller_open(mote__poller **out) {
    const mote__poller_ops *ops = mote__poller_choose();
    return ops ? ops->open(out) : -EINVAL;
}

void mote__poller_close(mote__poller *p) {
    if (p)
        p->ops->close(p);
}

int mote__poller_add(mote__poller *p, int fd, void *data) {
    return p->ops->add(p, fd, data);
}

int mote__poller_del(mote__poller *p, int fd) {
    return p->ops->del(p, fd);
}

int mote__poller_wait(mote__poller *p, mote__poll_event *ev, int max, int64_t timeout, bool *woken) {
    return p->ops->wait(p, ev, max, timeout, woken);
}

void mote__poller_wakeup(mote__poller *p) {
    p->ops->wakeup(p);
}
