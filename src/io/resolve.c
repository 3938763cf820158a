/*
 * resolve.c -- host names without blocking a worker: getaddrinfo runs on a
 * short-lived helper thread while the calling process waits on a waiter
 * (a foreign caller simply blocks). The request is shared by the caller
 * and the helper (two references), so a caller that times out leaves the
 * helper to finish and free it.
 */
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "io/internal.h"

typedef struct req {
    char host[256], port[8];
    int family;
    struct addrinfo *res;
    int err;
    mote__slot waiter; /* the caller's waiter; 0 once it left */
    _Atomic int refs;
} req;

static void req_unref(req *r) {
    if (atomic_fetch_sub(&r->refs, 1) == 1) {
        if (r->res)
            freeaddrinfo(r->res);
        free(r);
    }
}

static int gai_errno(int e) {
    switch (e) {
    case 0:
        return 0;
    case EAI_NONAME:
#ifdef EAI_NODATA
    case EAI_NODATA:
#endif
        return MOTE_EAI_NONAME;
    case EAI_AGAIN:
        return MOTE_EAI_AGAIN;
    case EAI_MEMORY:
        return -ENOMEM;
    case EAI_FAMILY:
        return -EAFNOSUPPORT;
    default:
        return MOTE_EAI_FAIL;
    }
}

static void *resolver(void *arg) {
    req *r = arg;
    struct addrinfo hints = {.ai_family = r->family, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_ADDRCONFIG | AI_NUMERICSERV};
    r->err = gai_errno(getaddrinfo(r->host, r->port, &hints, &r->res));
    mote__slot_wake(&r->waiter, 0, MOTE__HOOK_DONE); /* unless the caller left already */
    req_unref(r);
    return NULL;
}

int mote__resolve(const char *host, const char *port, mote_addr *out, int max, int64_t timeout) {
    if (strlen(host) >= sizeof((req *)0)->host || strlen(port) >= sizeof((req *)0)->port)
        return -EINVAL;
    req *r = calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    strcpy(r->host, host);
    strcpy(r->port, port);
    r->family = AF_UNSPEC;
    atomic_init(&r->refs, 2);
    mote__waiter w;
    mote__waiter_init(&w);
    mote__waiter_note(&w, MOTE__WAIT_RESOLVE, 0, 0);
    atomic_store(&r->waiter, (uintptr_t)&w);
    pthread_t th;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int e = pthread_create(&th, &attr, resolver, r);
    pthread_attr_destroy(&attr);
    if (e) {
        free(r);
        return -e;
    }
    int waited = mote__waiter_wait(&w, timeout);
    /* Leave: after this the helper never touches our waiter. */
    mote__slot_leave(&r->waiter, &w);
    bool done = atomic_load(&w.events) > 0;
    int n = waited < 0 && waited != -ETIMEDOUT ? waited : -ETIMEDOUT;
    if (done) {
        n = r->err;
        if (n == 0) {
            n = 0;
            for (struct addrinfo *ai = r->res; ai && n < max; ai = ai->ai_next) {
                if (ai->ai_addrlen > sizeof out[n].storage)
                    continue;
                memset(&out[n], 0, sizeof out[n]);
                memcpy(out[n].storage, ai->ai_addr, ai->ai_addrlen);
                out[n].len = (uint32_t)ai->ai_addrlen;
                n++;
            }
            if (n == 0)
                n = MOTE_EAI_NONAME; /* only addresses too long to keep */
        }
    }
    req_unref(r);
    return n;
}
