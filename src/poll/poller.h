/*
 * poller.h -- the OS readiness backend, behind six calls (Redis's ae
 * style). One implementation file per backend (poller_epoll.c today;
 * io_uring or kqueue would add theirs); io/netpoll.c, which uses it, never
 * sees the OS API.
 *
 * Descriptors are registered once, edge-triggered, for both directions;
 * an event carries the pointer given at registration.
 */
#ifndef MOTE_POLLER_H
#define MOTE_POLLER_H

#include "base/base.h"

/* EV_HUP: the read side is closed for good (peer's FIN, hang-up or error). */
enum { MOTE__EV_READ = 1, MOTE__EV_WRITE = 2, MOTE__EV_ERR = 4, MOTE__EV_HUP = 8 };

typedef struct mote__poll_event {
    void *data;
    unsigned events; /* MOTE__EV_* */
} mote__poll_event;

typedef struct mote__poller mote__poller;

int mote__poller_open(mote__poller **out);
void mote__poller_close(mote__poller *p);
int mote__poller_add(mote__poller *p, int fd, void *data);
int mote__poller_del(mote__poller *p, int fd);
/* Wait up to timeout ns (< 0: forever; 0: not at all) for events; returns
 * how many, or -errno. mote__poller_wakeup() makes a waiting call return
 * early; *woken tells whether this call consumed such a wake-up. */
int mote__poller_wait(mote__poller *p, mote__poll_event *ev, int max, int64_t timeout, bool *woken);
void mote__poller_wakeup(mote__poller *p);

#endif
