/*
 * dump.c -- mote_dump: every worker and every process, what each is doing
 * and, for a suspended process, where in its code it waits (like Go's
 * SIGQUIT goroutine dump). A top-layer tool: it reads the process and
 * scheduler layers through their snapshot calls.
 *
 * What a dump stops: nothing. It holds each registry shard's lock only
 * while it copies that shard's list (no system call, no allocation but a
 * growing array); processes keep running. A suspended process is
 * referenced while its stack is read, and its stack is copied with
 * process_vm_readv, which cannot fault: if the process resumed meanwhile
 * (its state word changed), the copy is thrown away and the dump says so.
 * A running process's stack is never read.
 *
 * On a signal (mote_dump_on_signal, MOTE_DUMP_SIGNAL) the handler only
 * sets a flag and wakes the dump thread, which prints to stderr: nothing
 * that is not async-signal-safe runs in the handler.
 */
#include "debug/symbol.h"
#include "proc/proc.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/uio.h>
#include <unistd.h>

void mote__dump_start(void);
void mote__dump_stop(void);

#define DUMP_FRAMES 48
#define STACK_COPY_MAX ((size_t)1 << 20) /* of the innermost frames */

static struct {
    pthread_mutex_t lock; /* one dump at a time; shutdown waits for it */
    bool closed;          /* the runtime is stopping: no more dumps */
    int sig;              /* the signal that asks for a dump, 0 none */
    struct sigaction old;
    pthread_t thread;
    bool started;
    _Atomic uint32_t word; /* futex: 1 a dump is wanted, 2 stop */
} D = {.lock = PTHREAD_MUTEX_INITIALIZER, .closed = true};

/* ---- Reading a suspended process's stack ---- */

static int vm_read(void *dst, uintptr_t src, size_t len) {
    struct iovec local = {dst, len}, remote = {(void *)src, len};
    ssize_t n = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
    if (n == (ssize_t)len)
        return 0;
    return n < 0 ? mote__errno() : -EFAULT;
}

/* Copy t's stack, check that t did not move meanwhile (state word st),
 * and unwind it. Returns the number of frames or -errno (-EAGAIN: it
 * moved). */
static int stack_frames(mote__task *t, uint64_t st, mote__wait_note *note, void **pcs, unsigned char *buf) {
    MOTE_RACY_BEGIN(); /* stable while t is parked with state st */
    mote__stack *s = t->stack;
    MOTE_RACY_END();
    if (!s)
        return -ESRCH;
    mote__stack hdr;
    int r = vm_read(&hdr, (uintptr_t)s, sizeof hdr);
    if (r < 0)
        return r;
    /* The note lives on the stack itself (in the waiter). */
    memset(note, 0, sizeof *note);
    if (hdr.wait && vm_read(note, (uintptr_t)hdr.wait, sizeof *note) < 0)
        memset(note, 0, sizeof *note);
#ifdef MOTE_USE_UCONTEXT
    (void)st, (void)pcs, (void)buf;
    return -ENOTSUP;
#else
    uintptr_t sp = (uintptr_t)hdr.ctx.sp, lo = (uintptr_t)hdr.ctx.lo, hi = lo + hdr.ctx.size;
    if (sp < lo || sp > hi - MOTE__CTX_FRAME_SIZE)
        return -EAGAIN;
    size_t len = hi - sp < STACK_COPY_MAX ? hi - sp : STACK_COPY_MAX;
    if ((r = vm_read(buf, sp, len)) < 0)
        return r;
    if (atomic_load(&t->state) != st)
        return -EAGAIN;
    mote__regs regs;
    if (!mote__ctx_saved_regs(buf, sp, &regs))
        return -ENOTSUP;
    return mote__unwind(&regs, buf, sp, sp + len, pcs, DUMP_FRAMES);
#endif
}

/* ---- Text ---- */

static const char *dur(char *b, size_t n, int64_t ns) {
    if (ns < 0)
        ns = 0;
    if (ns < MOTE_USEC(1))
        snprintf(b, n, "%lld ns", (long long)ns);
    else if (ns < MOTE_MSEC(1))
        snprintf(b, n, "%.0f us", (double)ns / 1e3);
    else if (ns < MOTE_SEC(1))
        snprintf(b, n, "%.1f ms", (double)ns / 1e6);
    else
        snprintf(b, n, "%.1f s", (double)ns / 1e9);
    return b;
}

static const char *worker_name(char *b, size_t n, const mote__worker_view *w) {
    if (w->kind == MOTE__WK_MAIN)
        snprintf(b, n, "the main thread");
    else if (w->kind == MOTE__WK_BACKUP)
        snprintf(b, n, "backup worker %u", w->id);
    else
        snprintf(b, n, "worker %u", w->id);
    return b;
}

static void proc_label(mote__out *o, const mote__proc_view *v) {
    if (v->name[0])
        mote__out_printf(o, "process %llu (%s)", (unsigned long long)v->id, v->name);
    else
        mote__out_printf(o, "process %llu", (unsigned long long)v->id);
}

typedef struct prec prec;
static const char *name_of(const prec *recs, int64_t n, uint64_t id);

/* "in receive, 2.0 s left" and the like. */
static void wait_text(mote__out *o, const mote__wait_note *n, int64_t now, const prec *recs, int64_t nrecs) {
    switch (n->kind) {
    case MOTE__WAIT_RECEIVE:
        mote__out_printf(o, "in receive");
        break;
    case MOTE__WAIT_AWAIT:
        mote__out_printf(o, "in await of future 0x%llx", (unsigned long long)n->obj);
        break;
    case MOTE__WAIT_CALL: {
        const char *callee = name_of(recs, nrecs, n->obj);
        mote__out_printf(o, "in a call to process %llu%s%s%s", (unsigned long long)n->obj, callee ? " (" : "",
                         callee ? callee : "", callee ? ")" : "");
        break;
    }
    case MOTE__WAIT_POLL:
        mote__out_printf(o, "in poll of %d futures", n->arg);
        break;
    case MOTE__WAIT_SLEEP:
        mote__out_printf(o, "in sleep");
        break;
    case MOTE__WAIT_FD:
        mote__out_printf(o, "waiting for fd %d to be %s", n->arg,
                         n->obj == (MOTE_READABLE | MOTE_WRITABLE) ? "readable or writable"
                         : n->obj == MOTE_WRITABLE               ? "writable"
                                                                 : "readable");
        break;
    case MOTE__WAIT_RESOLVE:
        mote__out_printf(o, "in a host name lookup");
        break;
    case MOTE__WAIT_WAITSET:
        mote__out_printf(o, "in a wait set of %d sources", n->arg);
        break;
    default:
        mote__out_printf(o, "waiting");
        return;
    }
    char b[32];
    if (n->until >= 0 && n->until >= now)
        mote__out_printf(o, ", %s left", dur(b, sizeof b, n->until - now));
    else if (n->until >= 0)
        mote__out_printf(o, ", deadline passed %s ago", dur(b, sizeof b, now - n->until));
}

/* ---- The dump ---- */

struct prec {
    mote__proc_view v;
    int worker; /* index in the worker views, -1 */
    mote__wait_note note;
    int nframes; /* or -errno */
    void *frames[DUMP_FRAMES];
};

/* The name of process id among recs, sorted by id (NULL: none). */
static const char *name_of(const prec *recs, int64_t n, uint64_t id) {
    int64_t lo = 0, hi = n;
    while (lo < hi) {
        int64_t mid = (lo + hi) / 2;
        if (recs[mid].v.id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && recs[lo].v.id == id && recs[lo].v.name[0] ? recs[lo].v.name : NULL;
}

static int by_id(const void *a, const void *b) {
    uint64_t x = ((const prec *)a)->v.id, y = ((const prec *)b)->v.id;
    return x < y ? -1 : x > y;
}

typedef struct dump_job {
    int fd;
    int result;
} dump_job;

static void dump_run(void *arg) {
    dump_job *job = arg;
    mote__out *o = malloc(sizeof *o);
    unsigned nw = mote__sched_workers(NULL, 0);
    mote__worker_view *w = calloc(nw ? nw : 1, sizeof *w);
    mote__proc_view *views = NULL;
    int64_t n = mote__proc_snapshot(&views, true);
    prec *recs = n > 0 ? calloc((size_t)n, sizeof *recs) : NULL;
    unsigned char *buf = malloc(STACK_COPY_MAX);
    if (!o || !w || n < 0 || (n > 0 && !recs) || !buf) {
        for (int64_t i = 0; i < n; i++)
            mote_proc_release(views[i].ref);
        free(views), free(recs), free(buf), free(w), free(o);
        job->result = -ENOMEM;
        return;
    }
    nw = mote__sched_workers(w, nw);
    int64_t now = mote__now();
    for (int64_t i = 0; i < n; i++) {
        prec *r = &recs[i];
        r->v = views[i];
        r->worker = -1;
        if (MOTE__ST(r->v.state) == MOTE__RUNNING)
            for (unsigned k = 0; k < nw; k++)
                if (w[k].current == r->v.task)
                    r->worker = (int)k;
        if (r->v.ref) {
            r->nframes = stack_frames(r->v.task, r->v.state, &r->note, r->frames, buf);
            mote_proc_release(r->v.ref);
        }
    }
    free(views);
    free(buf);
    if (n > 0)
        qsort(recs, (size_t)n, sizeof *recs, by_id);

    mote__out_init(o, job->fd);
    unsigned nworkers = 0, backups = 0, running_backups = 0;
    for (unsigned k = 0; k < nw; k++) {
        nworkers += w[k].kind == MOTE__WK_WORKER;
        backups += w[k].kind == MOTE__WK_BACKUP;
        running_backups += w[k].kind == MOTE__WK_BACKUP && w[k].activity != MOTE__ACT_OFF;
    }
    mote__out_printf(o, "mote dump (pid %d): %lld processes; %u workers, %u of %u backup workers in use\n\n",
                     (int)getpid(), (long long)n, nworkers, running_backups, backups);
    char b1[48], b2[32];
    for (unsigned k = 0; k < nw; k++) {
        const mote__worker_view *x = &w[k];
        if (x->activity == MOTE__ACT_OFF)
            continue;
        const prec *cur = NULL;
        for (int64_t i = 0; i < n && x->current; i++)
            if (recs[i].v.task == x->current)
                cur = &recs[i];
        mote__out_printf(o, "%s: ", worker_name(b1, sizeof b1, x));
        if (x->activity == MOTE__ACT_IDLE || !cur) {
            mote__out_printf(o, "idle\n");
            continue;
        }
        mote__out_printf(o, x->activity == MOTE__ACT_BLOCK ? "in a blocking section, " : "running ");
        proc_label(o, &cur->v);
        if (x->since && x->kind != MOTE__WK_MAIN)
            mote__out_printf(o, " for %s", dur(b2, sizeof b2, now - x->since));
        mote__out_printf(o, "\n");
    }
    for (int64_t i = 0; i < n; i++) {
        prec *r = &recs[i];
        mote__out_printf(o, "\n");
        proc_label(o, &r->v);
        switch (MOTE__ST(r->v.state)) {
        case MOTE__IDLE:
            mote__out_printf(o, ": idle");
            break;
        case MOTE__QUEUED:
            mote__out_printf(o, ": runnable");
            break;
        case MOTE__RUNNING:
            if (r->worker >= 0 && w[r->worker].activity == MOTE__ACT_BLOCK)
                mote__out_printf(o, ": in a blocking section on %s",
                                 worker_name(b1, sizeof b1, &w[r->worker]));
            else if (r->worker >= 0)
                mote__out_printf(o, ": running on %s", worker_name(b1, sizeof b1, &w[r->worker]));
            else
                mote__out_printf(o, ": running");
            if (r->worker >= 0 && w[r->worker].since && w[r->worker].kind != MOTE__WK_MAIN)
                mote__out_printf(o, " for %s", dur(b2, sizeof b2, now - w[r->worker].since));
            break;
        case MOTE__PARKED:
            mote__out_printf(o, ": suspended ");
            wait_text(o, &r->note, now, recs, n);
            break;
        }
        mote__out_printf(o, ", mailbox %u, age %s\n", r->v.mbox, dur(b2, sizeof b2, MOTE_MSEC(r->v.age_ms)));
        if (r->nframes > 0) {
            /* From the call into mote's API on: the frames above it are
             * the runtime's own way of suspending. */
            int first = mote__frames_first_public(r->frames, r->nframes);
            mote__frames_print(o, "    ", r->frames + first, r->nframes - first, false);
        }
        else if (r->nframes == -EAGAIN)
            mote__out_printf(o, "    (it resumed while its stack was read)\n");
        else if (r->nframes < 0)
            mote__out_printf(o, "    (no backtrace: %s)\n", strerror(-r->nframes));
    }
    mote__out_printf(o, "\nend of mote dump\n");
    mote__out_flush(o);
    free(recs);
    free(w);
    free(o);
    job->result = 0;
}

/* With D.lock held. */
static int dump_locked(int fd) {
    if (D.closed || !mote__sched_running())
        return -ESHUTDOWN;
    dump_job job = {fd, 0};
    /* Unwinding and symbolising want more stack than a process may have. */
    mote__run_on_thread(dump_run, &job);
    return job.result;
}

int mote_dump(int fd) {
    if (fd < 0)
        return -EBADF;
    /* Writing may block: from a process, the worker's others move on. */
    mote_blocking_begin();
    pthread_mutex_lock(&D.lock);
    int r = dump_locked(fd);
    pthread_mutex_unlock(&D.lock);
    mote_blocking_end();
    return r;
}

/* ---- On a signal ---- */

static void on_signal(int sig) {
    (void)sig;
    int saved = errno;
    atomic_fetch_or(&D.word, 1);
    mote__futex_wake(&D.word, 1);
    errno = saved;
}

static void *dump_thread(void *arg) {
    (void)arg;
    prctl(PR_SET_NAME, "mote-dump", 0, 0, 0);
    for (;;) {
        uint32_t word;
        while ((word = atomic_load(&D.word)) == 0)
            mote__futex_wait(&D.word, 0, -1);
        if (word & 2)
            break;
        atomic_fetch_and(&D.word, ~1u);
        pthread_mutex_lock(&D.lock);
        dump_locked(2);
        pthread_mutex_unlock(&D.lock);
    }
    return NULL;
}

/* With D.lock held: put back what the signal did before. */
static void signal_restore(void) {
    if (D.sig)
        sigaction(D.sig, &D.old, NULL);
    D.sig = 0;
}

int mote_dump_on_signal(int sig) {
    if (sig < 0 || sig >= NSIG || sig == SIGKILL || sig == SIGSTOP || sig == SIGSEGV || sig == SIGBUS ||
        sig == SIGFPE || sig == SIGILL || sig == SIGPIPE)
        return -EINVAL;
    pthread_mutex_lock(&D.lock);
    int r = 0;
    if (D.closed || !mote__sched_running()) {
        r = -ESHUTDOWN;
        goto out;
    }
    signal_restore();
    if (!sig)
        goto out;
    if (!D.started) {
        atomic_store(&D.word, 0);
        if ((r = -pthread_create(&D.thread, NULL, dump_thread, NULL)) < 0)
            goto out;
        D.started = true;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(sig, &sa, &D.old) != 0) {
        r = mote__errno();
        goto out;
    }
    D.sig = sig;
out:
    pthread_mutex_unlock(&D.lock);
    return r;
}

/* MOTE_DUMP_SIGNAL: "1" or "QUIT" (SIGQUIT, as Go), "USR1", "USR2", or a
 * signal number. */
static int env_signal(void) {
    const char *v = getenv("MOTE_DUMP_SIGNAL");
    if (!v || !*v || !strcmp(v, "0"))
        return 0;
    if (!strcmp(v, "1") || !strcasecmp(v, "QUIT") || !strcasecmp(v, "SIGQUIT"))
        return SIGQUIT;
    if (!strcasecmp(v, "USR1") || !strcasecmp(v, "SIGUSR1"))
        return SIGUSR1;
    if (!strcasecmp(v, "USR2") || !strcasecmp(v, "SIGUSR2"))
        return SIGUSR2;
    char *end;
    long n = strtol(v, &end, 10);
    return *end == '\0' && n > 0 && n < NSIG ? (int)n : 0;
}

void mote__dump_start(void) {
    pthread_mutex_lock(&D.lock);
    D.closed = false;
    pthread_mutex_unlock(&D.lock);
    int sig = env_signal();
    if (sig)
        mote_dump_on_signal(sig);
}

void mote__dump_stop(void) {
    pthread_mutex_lock(&D.lock); /* waits for a dump in progress */
    D.closed = true;
    signal_restore();
    bool join = D.started;
    D.started = false;
    pthread_mutex_unlock(&D.lock);
    if (join) {
        atomic_fetch_or(&D.word, 2);
        mote__futex_wake(&D.word, 1);
        pthread_join(D.thread, NULL);
    }
}
