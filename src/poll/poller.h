/*
 * poller.h -- the OS readiness backend, behind six calls (Redis's ae
 * style). Each backend is one file, poller_<name>.c, exporting one ops
 * table; CMake's MOTE_POLLERS says which are compiled in (each defines
 * MOTE_POLLER_<NAME>), and poller.c picks one when a poller is opened:
 * the one the MOTE_POLLER environment variable names, else the first
 * built (epoll on Linux, kqueue elsewhere; uring is never the default). io/netpoll.c, which uses it, never sees the OS API.
 *
 * The contract every backend keeps (io/netpoll.c relies on each point):
 *   - add registers a descriptor once, edge-triggered, for both
 *     directions; an event carries the pointer given at registration.
 *     It returns -EEXIST if fd is already registered (then its pending
 *     readiness stays as it is) and -EPERM for descriptors that cannot be
 *     polled (regular files, directories: they belong to blocking
 *     sections).
 *   - one event per readiness edge, per direction; more than `max` ready
 *     descriptors are reported by later waits, never dropped.
 *   - MOTE__EV_HUP when the read side is closed for good (the peer's FIN,
 *     a hang-up or an error): an end of stream that arrives with the last
 *     data raises no further edge, and socket reads rely on this flag.
 *   - wakeup() from any thread makes one wait return (or the next one, if
 *     none waits), and exactly one wait reports *woken for it.
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

typedef struct mote__poller_ops {
    const char *name; /* what MOTE_POLLER says to choose it */
    int (*open)(mote__poller **out);
    void (*close)(mote__poller *p);
    int (*add)(mote__poller *p, int fd, void *data);
    int (*del)(mote__poller *p, int fd);
    int (*wait)(mote__poller *p, mote__poll_event *ev, int max, int64_t timeout, bool *woken);
    void (*wakeup)(mote__poller *p);
} mote__poller_ops;

/* One per backend file (poller_<name>.c); only those built exist. */
extern const mote__poller_ops mote__poller_epoll;
extern const mote__poller_ops mote__poller_kqueue;
/* io_uring (poller_uring.c, uring.h): opening it falls back to epoll's
 * poller when the kernel refuses io_uring. */
extern const mote__poller_ops mote__poller_uring;

/* Every backend's state starts with this header: the calls below
 * dispatch through it. A backend's open sets it. */
struct mote__poller {
    const mote__poller_ops *ops;
};

/* Open the backend MOTE_POLLER names (unset or empty: the first built).
 * An unknown name, or one not built in, gets -EINVAL and a message on
 * stderr saying which backends are built. */
int mote__poller_open(mote__poller **out);
void mote__poller_close(mote__poller *p);
int mote__poller_add(mote__poller *p, int fd, void *data);
int mote__poller_del(mote__poller *p, int fd);
/* Wait up to timeout ns (< 0: forever; 0: not at all) for events; returns
 * how many, or -errno. mote__poller_wakeup() makes a waiting call return
 * early; *woken tells whether this call consumed such a wake-up. */
int mote__poller_wait(mote__poller *p, mote__poll_event *ev, int max, int64_t timeout, bool *woken);
void mote__poller_wakeup(mote__poller *p);

/* The backend MOTE_POLLER chooses, or NULL (after the message above).
 * Cheap: mote_run can call it first, so a wrong name fails at once. */
const mote__poller_ops *mote__poller_choose(void);
/* The i-th backend built in (0 is the default), NULL past the last. */
const mote__poller_ops *mote__poller_backend(unsigned i);
/* The name of an open poller's backend. */
const char *mote__poller_name(const mote__poller *p);

#endif
