/*
 * trace.c -- mote_trace_start / mote_trace_stop: scheduling events in
 * per-thread rings. At stop, trace_file.c writes them out as a Chrome
 * trace event file (trace_ring.h is all the two share).
 *
 * Recording (see trace.h) touches only the calling thread's ring: the
 * event, then the ring's count. The
 * ring keeps the last MOTE_TRACE_EVENTS events of each thread (default
 * 262144: 8 MiB, mapped and touched when the thread records its first
 * event, so that a thread pays its ~2,000 page faults once, up front,
 * not as the ring first fills, in the middle of the traced run; a few
 * milliseconds per thread). The scheduler's own trace points write into
 * its worker's ring inline (trace.h). Timestamps are
 * the CPU's counter (rdtsc, cntvct), converted to nanoseconds at stop
 * against the monotonic clock read at start and stop.
 *
 * Stopping while threads record: the stopper turns tracing off and makes
 * every thread of the process pass a memory barrier (membarrier(2), or a
 * pause where it is missing). Each thread may then still be writing one
 * event, into the slot at its ring's count, which the file writer leaves
 * out (trace.h). Rings live until the runtime shuts down (a thread keeps
 * its ring's address) and are never cleared: a trace takes each ring from
 * the count it had at the start (`start`); an event still being written
 * by the trace before (a thread held up for that long) is told by its
 * timestamp, earlier than the start's, and dropped.
 */
#include "debug/trace_ring.h"
#include "proc/proc.h"

#include <errno.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

void mote__trace_start_env(void);
void mote__trace_shutdown(void);

#define DEFAULT_EVENTS ((size_t)1 << 18)

_Atomic bool mote__tracing __attribute__((aligned(MOTE_CACHELINE))) MOTE_HIDDEN;

static struct {
    pthread_mutex_t lock; /* start, stop, the ring list and the names */
    _Atomic uint64_t gen; /* a new one per runtime: rings of an old one are gone */
    tr_buf *rings;
    size_t cap;
    FILE *out;
    uint64_t tsc0;
    int64_t ns0;
    tr_name *names;
    size_t nnames, names_cap;
    tr_task *known; /* the processes there were when the trace started */
    size_t nknown;
} TR = {.lock = PTHREAD_MUTEX_INITIALIZER, .gen = 1};

static _Thread_local tr_buf *tls_ring;
static _Thread_local uint64_t tls_gen;
static _Thread_local char tls_label[32];

void mote__trace_thread_name(const char *name) {
    snprintf(tls_label, sizeof tls_label, "%s", name);
}

/* ---- Recording ---- */

static MOTE_NOINLINE tr_buf *ring_new(uint64_t gen) {
    pthread_mutex_lock(&TR.lock);
    tr_buf *t = NULL;
    if (atomic_load(&mote__tracing) && atomic_load(&TR.gen) == gen) {
        size_t size = sizeof(tr_buf) + TR.cap * sizeof(tr_event);
        void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (m != MAP_FAILED) {
            t = m;
            t->cap = TR.cap;
            t->map_size = size;
            t->tid = (int)syscall(SYS_gettid);
            if (tls_label[0]) {
                snprintf(t->name, sizeof t->name, "%s", tls_label);
            } else {
                prctl(PR_GET_NAME, t->name, 0, 0, 0); /* 16 bytes at most */
                t->name[15] = '\0';
            }
            t->next = TR.rings;
            TR.rings = t;
        }
    }
    pthread_mutex_unlock(&TR.lock);
    if (t) {
#ifdef MADV_POPULATE_WRITE /* Linux 5.14: elsewhere the faults come as it fills */
        madvise(t, t->map_size, MADV_POPULATE_WRITE); /* outside the lock: it takes a while */
#endif
        tls_ring = t;
        tls_gen = gen;
    }
    return t;
}

/* The thread's first event of this runtime: make its ring first. */
static MOTE_NOINLINE void record_first(unsigned type, uint64_t a, uint64_t b, bool stamped) {
    tr_buf *t = ring_new(atomic_load_explicit(&TR.gen, memory_order_relaxed));
    if (t)
        mote__trace_put(t, type, a, b, stamped);
}

/* An event into this thread's ring (made on its first event). Inlined
 * into the two entry points below, whose stamped is a constant. */
static inline void record(unsigned type, uint64_t a, uint64_t b, bool stamped) {
    tr_buf *t = tls_ring;
    if (MOTE_UNLIKELY(!t || tls_gen != atomic_load_explicit(&TR.gen, memory_order_relaxed)))
        record_first(type, a, b, stamped);
    else
        mote__trace_put(t, type, a, b, stamped);
}

mote__trace_ring *mote__trace_ring_here(void) {
    if (!atomic_load_explicit(&mote__tracing, memory_order_relaxed))
        return NULL;
    uint64_t gen = atomic_load_explicit(&TR.gen, memory_order_relaxed);
    return tls_ring && tls_gen == gen ? tls_ring : ring_new(gen);
}

void mote__trace(unsigned type, uint64_t a, uint64_t b) {
    record(type, a, b, true);
}

void mote__trace_mark(unsigned type, uint64_t a, uint64_t b) {
    record(type, a, b, false);
}

/* With TR.lock held. */
static void name_add(uint64_t id, const char *name) {
    if (TR.nnames == TR.names_cap) {
        size_t cap = TR.names_cap ? 2 * TR.names_cap : 256;
        tr_name *bigger = realloc(TR.names, cap * sizeof *bigger);
        if (!bigger)
            return;
        TR.names = bigger;
        TR.names_cap = cap;
    }
    TR.names[TR.nnames].id = id;
    TR.names[TR.nnames].seq = TR.nnames;
    snprintf(TR.names[TR.nnames].name, MOTE_NAME_MAX, "%s", name);
    TR.nnames++;
}

void mote__trace_name(uint64_t id, const char *name) {
    pthread_mutex_lock(&TR.lock);
    if (atomic_load(&mote__tracing))
        name_add(id, name ? name : "");
    pthread_mutex_unlock(&TR.lock);
}

/* ---- Start and stop ---- */

int mote_trace_start(const char *path) {
    if (!path || !*path)
        return -EINVAL;
    if (!mote__sched_running())
        return -ESHUTDOWN;
    pthread_mutex_lock(&TR.lock);
    int r = 0;
    if (TR.out) {
        r = -EBUSY;
        goto out;
    }
    FILE *f = fopen(path, "we");
    if (!f) {
        r = mote__errno();
        goto out;
    }
    size_t cap = mote__env_size("MOTE_TRACE_EVENTS", DEFAULT_EVENTS), pow2 = 1024;
    while (pow2 < cap && pow2 < ((size_t)1 << 28))
        pow2 <<= 1;
    /* Rings of an earlier trace in this runtime keep their size. */
    for (tr_buf *t = TR.rings; t; t = t->next)
        t->start = atomic_load(&t->n);
    TR.cap = TR.rings ? TR.rings->cap : pow2;
    TR.out = f;
    TR.nnames = 0;
    /* The processes there are now, with their names; later ones come
     * through SPAWN events and mote__trace_name. */
    mote__proc_view *v = NULL;
    int64_t n = mote__proc_snapshot(&v, false);
    free(TR.known);
    TR.known = n > 0 ? malloc((size_t)n * sizeof *TR.known) : NULL;
    TR.nknown = 0;
    for (int64_t i = 0; i < n; i++) {
        if (TR.known)
            TR.known[TR.nknown++] = (tr_task){(uintptr_t)v[i].task, 0, v[i].id};
        if (v[i].name[0])
            name_add(v[i].id, v[i].name);
    }
    free(v);
    TR.ns0 = mote__now();
    TR.tsc0 = mote__trace_stamp();
    atomic_store(&mote__tracing, true);
out:
    pthread_mutex_unlock(&TR.lock);
    return r;
}

/* With tracing off: every thread sees it off from its next trace point
 * on (see the head comment). */
static void writers_settle(void) {
    if (syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0) != 0) {
        struct timespec ts = {0, 2000000}; /* store buffers drain long before */
        nanosleep(&ts, NULL);
    }
}

/* With TR.lock held. */
static int stop_locked(void) {
    if (!TR.out)
        return -EINVAL;
    uint64_t tsc1 = mote__trace_stamp();
    int64_t ns1 = mote__now();
    atomic_store(&mote__tracing, false);
    writers_settle();
    mote__trace_data d = {TR.rings, TR.names, TR.nnames, TR.known, TR.nknown, TR.tsc0, tsc1, TR.ns0, ns1};
    int r = mote__trace_write(TR.out, &d);
    if (fclose(TR.out) != 0 && r == 0)
        r = mote__errno();
    TR.out = NULL;
    free(TR.known);
    TR.known = NULL;
    TR.nknown = 0;
    free(TR.names);
    TR.names = NULL;
    TR.nnames = TR.names_cap = 0;
    return r;
}

int mote_trace_stop(void) {
    /* Writing the file may take a while: from a process, a blocking section. */
    mote_blocking_begin();
    pthread_mutex_lock(&TR.lock);
    int r = stop_locked();
    pthread_mutex_unlock(&TR.lock);
    mote_blocking_end();
    return r;
}

void mote__trace_start_env(void) {
    const char *path = getenv("MOTE_TRACE");
    if (path && *path && mote_trace_start(path) < 0)
        fprintf(stderr, "mote: MOTE_TRACE=%s: cannot write there; not tracing\n", path);
}

/* Runtime shutdown, every runtime thread joined: write the trace if one
 * runs, and free the rings. */
void mote__trace_shutdown(void) {
    pthread_mutex_lock(&TR.lock);
    if (TR.out) {
        int r = stop_locked();
        if (r < 0)
            fprintf(stderr, "mote: writing the trace failed: %s\n", mote_strerror(r));
    }
    tr_buf *t = TR.rings;
    TR.rings = NULL;
    atomic_fetch_add(&TR.gen, 1); /* threads' ring pointers are stale now */
    pthread_mutex_unlock(&TR.lock);
    while (t) {
        tr_buf *next = t->next;
        munmap(t, t->map_size);
        t = next;
    }
}
