/*
 * trace_file.c -- a finished trace (trace_ring.h) as a Chrome trace event
 * file (JSON), which Perfetto's UI (ui.perfetto.dev) and chrome://tracing
 * open: one track per thread (each worker, backup thread, the timer, the
 * pollers), a slice per turn of a process, named after it, with why the
 * turn ended; slices for blocking sections, waits in the poller and idle
 * workers; instant events for spawns, steals and hand-offs; and an arrow
 * from each wake-up (or message to an idle process) to the turn it caused.
 *
 * The rings hold what was cheapest to record (trace.h): task addresses
 * and timestamps on some events only. Here, off the hot path, each ring
 * is copied with every time filled in, addresses become process ids, and
 * events are paired into slices.
 */
#include "debug/trace_ring.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* An event of any ring, for the pass in time order that draws arrows. */
typedef struct tr_ref {
    uint64_t ts;
    uint64_t id;
    bool turn;  /* the start of a turn of id (else a wake-up of id) */
    size_t seq; /* the order recorded */
    int tid;
} tr_ref;

/* Time order; at one time, wake-ups before turns (a wake and the turn it
 * causes share a time when the turn follows on the same thread), then
 * the order recorded. */
static int by_ts(const void *x, const void *y) {
    const tr_ref *a = x, *b = y;
    if (a->ts != b->ts)
        return a->ts < b->ts ? -1 : 1;
    if (a->turn != b->turn)
        return a->turn ? 1 : -1;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static int by_id(const void *x, const void *y) {
    const tr_name *a = x, *b = y;
    if (a->id != b->id)
        return a->id < b->id ? -1 : 1;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* Counter ticks to microseconds since the trace started. */
typedef struct clockmap {
    uint64_t tsc0;
    double us_per_tick;
} clockmap;

static double us(const clockmap *c, uint64_t ts) {
    return ts >= c->tsc0 ? (double)(ts - c->tsc0) * c->us_per_tick : 0;
}

static void json_str(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

/* The last name given to process id (names sorted by id, then seq). */
static const char *name_of(const mote__trace_data *d, uint64_t id) {
    const char *found = NULL;
    size_t lo = 0, hi = d->nnames;
    while (lo < hi) { /* the first entry with this id */
        size_t mid = (lo + hi) / 2;
        if (d->names[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (; lo < d->nnames && d->names[lo].id == id; lo++)
        found = d->names[lo].name;
    return found && *found ? found : NULL;
}

static void proc_name(FILE *f, const mote__trace_data *d, uint64_t id) {
    char buf[MOTE_NAME_MAX + 32];
    const char *name = name_of(d, id);
    if (name)
        snprintf(buf, sizeof buf, "process %llu (%s)", (unsigned long long)id, name);
    else
        snprintf(buf, sizeof buf, "process %llu", (unsigned long long)id);
    json_str(f, buf);
}

static const char *WAITS[] = {"", "receive", "await", "call", "poll", "sleep", "fd wait", "name lookup", "wait"};

static void end_reason(char *buf, size_t len, uint64_t b) {
    unsigned why = (unsigned)(b & 0xff), kind = (unsigned)(b >> 8);
    if (why == MOTE__TR_END_PARK)
        snprintf(buf, len, "suspended%s%s", kind && kind < sizeof WAITS / sizeof *WAITS ? " in " : "",
                 kind < sizeof WAITS / sizeof *WAITS ? WAITS[kind] : "");
    else
        snprintf(buf, len, "%s", why == MOTE__TR_END_YIELD ? "yielded" : why == MOTE__TR_END_ABANDON ? "panicked" : "done");
}

typedef struct writer {
    FILE *f;
    const mote__trace_data *d;
    int pid;
    bool first;
    clockmap c;
} writer;

static void ev_begin(writer *w) {
    fputs(w->first ? "\n" : ",\n", w->f);
    w->first = false;
}

static void slice(writer *w, int tid, uint64_t from, uint64_t to, const char *cat) {
    ev_begin(w);
    double t0 = us(&w->c, from), t1 = us(&w->c, to);
    fprintf(w->f, "{\"ph\":\"X\",\"pid\":%d,\"tid\":%d,\"ts\":%.3f,\"dur\":%.3f,\"cat\":\"%s\",\"name\":", w->pid, tid,
            t0, t1 > t0 ? t1 - t0 : 0, cat);
}

static void instant(writer *w, int tid, uint64_t ts, const char *cat) {
    ev_begin(w);
    fprintf(w->f, "{\"ph\":\"i\",\"s\":\"t\",\"pid\":%d,\"tid\":%d,\"ts\":%.3f,\"cat\":\"%s\",\"name\":", w->pid, tid,
            us(&w->c, ts), cat);
}

/* A ring's events, oldest first, every timestamp filled in (see trace.h):
 * a RUN takes the last stamped time before it (the end of whatever the
 * thread did before), any other unstamped event the next stamped time
 * after it (or the last before, at the end). A STOP that carries a
 * wake-up (MOTE__TR_WHY_SHIFT) becomes the WAKE or SCHED event it stands
 * for, then a plain STOP. The events are those of this trace (from the
 * ring's start) but the oldest slot: a thread may still be writing the
 * slot at the count it has not yet published, which in a full ring is
 * the oldest one (trace.h). An event stamped before the trace began was
 * still being written by the one before (trace.c). A malloc'd copy. */
typedef struct ring_copy {
    const tr_buf *ring;
    tr_event *ev;
    size_t n;
} ring_copy;

static bool ring_copy_make(ring_copy *c, const tr_buf *t, uint64_t tsc0) {
    uint64_t n = atomic_load_explicit(&t->n, memory_order_acquire);
    uint64_t first = n >= t->cap ? n - t->cap + 1 : 0;
    if (first < t->start)
        first = t->start;
    size_t k = 0, room = (size_t)(n - first);
    for (uint64_t i = first; i < n; i++) {
        const tr_event *e = &t->ev[i & (t->cap - 1)];
        room += (e->type & 0xff) == MOTE__TR_STOP && e->b;
    }
    c->ring = t;
    c->n = 0;
    c->ev = malloc((room ? room : 1) * sizeof *c->ev);
    bool *own = malloc(room ? room : 1);
    if (!c->ev || !own) {
        free(own);
        return false;
    }
    for (uint64_t i = first; i < n; i++) {
        tr_event e = t->ev[i & (t->cap - 1)];
        if (e.ts && e.ts < tsc0)
            continue;
        if ((e.type & 0xff) == MOTE__TR_STOP) {
            if (e.b) {
                unsigned kind = e.b & MOTE__TR_WOKE_SCHED ? MOTE__TR_SCHED : MOTE__TR_WAKE;
                own[k] = false;
                c->ev[k++] = (tr_event){0, e.b & ~(uint64_t)MOTE__TR_WOKE_SCHED, e.a, kind};
            }
            e.b = e.type >> MOTE__TR_WHY_SHIFT;
            e.type = MOTE__TR_STOP;
        }
        own[k] = e.ts != 0;
        c->ev[k++] = e;
    }
    uint64_t next = 0, prev = 0;
    for (size_t i = k; i-- > 0;) {
        if (own[i])
            next = c->ev[i].ts;
        else if (c->ev[i].type != MOTE__TR_RUN)
            c->ev[i].ts = next;
    }
    for (size_t i = 0; i < k; i++) {
        if (own[i])
            prev = c->ev[i].ts;
        else if (!c->ev[i].ts)
            c->ev[i].ts = prev;
    }
    free(own);
    c->n = k;
    return true;
}

/* Task addresses to process ids: the processes known at the start and
 * every SPAWN, sorted by address, then time. */
typedef struct taskmap {
    tr_task *v;
    size_t n;
} taskmap;

static int by_task(const void *x, const void *y) {
    const tr_task *a = x, *b = y;
    if (a->task != b->task)
        return a->task < b->task ? -1 : 1;
    return a->ts < b->ts ? -1 : a->ts > b->ts;
}

static bool taskmap_make(taskmap *m, const mote__trace_data *d, const ring_copy *rings, size_t nrings) {
    size_t n = d->nknown;
    for (size_t r = 0; r < nrings; r++)
        for (size_t i = 0; i < rings[r].n; i++)
            n += rings[r].ev[i].type == MOTE__TR_SPAWN;
    m->v = malloc((n ? n : 1) * sizeof *m->v);
    m->n = 0;
    if (!m->v)
        return false;
    for (size_t i = 0; i < d->nknown; i++)
        m->v[m->n++] = d->known[i];
    for (size_t r = 0; r < nrings; r++)
        for (size_t i = 0; i < rings[r].n; i++) {
            const tr_event *e = &rings[r].ev[i];
            if (e->type == MOTE__TR_SPAWN)
                m->v[m->n++] = (tr_task){(uintptr_t)e->a, e->ts, e->b};
        }
    qsort(m->v, m->n, sizeof *m->v, by_task);
    return true;
}

/* The process that task address held at time ts: the last one it was
 * given at or before ts (0: unknown). A spawn is stamped when it happens,
 * before anything the new process does, so a reused address is told apart. */
static uint64_t taskmap_id(const taskmap *m, uint64_t task, uint64_t ts) {
    if (!task)
        return 0;
    size_t lo = 0, hi = m->n;
    while (lo < hi) { /* the first entry for this address */
        size_t mid = (lo + hi) / 2;
        if (m->v[mid].task < task)
            lo = mid + 1;
        else
            hi = mid;
    }
    uint64_t id = 0;
    for (size_t i = lo; i < m->n && m->v[i].task == task; i++)
        if (m->v[i].ts <= ts || !id)
            id = m->v[i].id;
    return id;
}

/* Every event's task addresses become process ids. */
static void ids_resolve(const taskmap *m, ring_copy *rings, size_t nrings) {
    for (size_t r = 0; r < nrings; r++)
        for (size_t i = 0; i < rings[r].n; i++) {
            tr_event *e = &rings[r].ev[i];
            switch (e->type) {
            case MOTE__TR_WAKE:
            case MOTE__TR_SCHED:
                e->b = taskmap_id(m, e->b, e->ts);
                /* fall through */
            case MOTE__TR_RUN:
            case MOTE__TR_STOP:
            case MOTE__TR_STEAL:
            case MOTE__TR_BLOCK:
            case MOTE__TR_UNBLOCK:
                e->a = taskmap_id(m, e->a, e->ts);
                break;
            case MOTE__TR_SPAWN:
                e->a = e->b;
                break;
            }
        }
}

/* A turn, for the arrows: when and where process `id` started one. */
typedef struct tr_turn {
    uint64_t ts, id;
    int tid;
} tr_turn;

typedef struct turns {
    tr_turn *v;
    size_t n, cap;
} turns;

static void turn_add(turns *t, uint64_t ts, uint64_t id, int tid) {
    if (t->n == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 1024;
        tr_turn *bigger = realloc(t->v, cap * sizeof *bigger);
        if (!bigger)
            return;
        t->v = bigger;
        t->cap = cap;
    }
    t->v[t->n++] = (tr_turn){ts, id, tid};
}

/* One ring's events, paired into slices; the turns go to *out as well. */
static void write_ring(writer *w, const ring_copy *c, turns *out) {
    int tid = c->ring->tid;
    uint64_t idle = 0, block = 0, poll = 0;
    const tr_event *bound = NULL; /* the last turn boundary (see trace.h) */
    for (size_t i = 0; i < c->n; i++) {
        const tr_event *e = &c->ev[i];
        char why[48];
        switch (e->type) {
        case MOTE__TR_RUN:
            bound = e;
            break;
        case MOTE__TR_STOP:
            if (bound && (bound->type != MOTE__TR_RUN || bound->a == e->a)) {
                slice(w, tid, bound->ts, e->ts, "turn");
                proc_name(w->f, w->d, e->a);
                end_reason(why, sizeof why, e->b);
                fprintf(w->f, ",\"args\":{\"process\":%llu,\"ended\":\"%s\"}}", (unsigned long long)e->a, why);
                turn_add(out, bound->ts, e->a, tid);
            }
            bound = e;
            break;
        case MOTE__TR_IDLE:
            idle = e->ts;
            bound = NULL;
            break;
        case MOTE__TR_BUSY:
            if (idle) {
                slice(w, tid, idle, e->ts, "idle");
                fputs("\"idle\"}", w->f);
            }
            idle = 0;
            bound = e;
            break;
        case MOTE__TR_BLOCK:
            block = e->ts;
            break;
        case MOTE__TR_UNBLOCK:
            if (block) {
                slice(w, tid, block, e->ts, "blocking");
                fprintf(w->f, "\"blocking section\",\"args\":{\"process\":%llu}}", (unsigned long long)e->a);
            }
            block = 0;
            break;
        case MOTE__TR_POLL:
            poll = e->ts;
            break;
        case MOTE__TR_POLLED:
            if (poll) {
                slice(w, tid, poll, e->ts, "poll");
                fprintf(w->f, "\"poll wait\",\"args\":{\"events\":%llu}}", (unsigned long long)e->b);
            }
            poll = 0;
            bound = e;
            break;
        case MOTE__TR_WAKE:
        case MOTE__TR_SCHED:
            instant(w, tid, e->ts, "wake");
            fputs(e->type == MOTE__TR_WAKE ? "\"wake " : "\"message to ", w->f);
            fprintf(w->f, "process %llu\",\"args\":{\"process\":%llu,\"by\":%llu}}", (unsigned long long)e->a,
                    (unsigned long long)e->a, (unsigned long long)e->b);
            break;
        case MOTE__TR_SPAWN:
            instant(w, tid, e->ts, "spawn");
            fprintf(w->f, "\"spawn process %llu\",\"args\":{\"process\":%llu}}", (unsigned long long)e->a,
                    (unsigned long long)e->a);
            break;
        case MOTE__TR_STEAL:
            instant(w, tid, e->ts, "steal");
            fprintf(w->f, "\"steal\",\"args\":{\"process\":%llu}}", (unsigned long long)e->a);
            bound = e;
            break;
        case MOTE__TR_HANDOFF:
            instant(w, tid, e->ts, "handoff");
            fprintf(w->f, "\"hand-off to backup worker %llu\",\"args\":{\"worker\":%llu}}",
                    (unsigned long long)e->a, (unsigned long long)e->a);
            break;
        }
    }
}

/* Arrows: each wake (or message to an idle process) to the next turn of
 * that process, on whichever thread it ran: a pass in time order. */
static void write_flows(writer *w, const ring_copy *rings, size_t nrings, const turns *tu) {
    size_t total = tu->n;
    for (size_t r = 0; r < nrings; r++)
        total += rings[r].n;
    tr_ref *refs = malloc((total ? total : 1) * sizeof *refs);
    if (!refs)
        return;
    size_t k = 0;
    for (size_t r = 0; r < nrings; r++)
        for (size_t i = 0; i < rings[r].n; i++) {
            const tr_event *e = &rings[r].ev[i];
            if (e->type == MOTE__TR_WAKE || e->type == MOTE__TR_SCHED) {
                refs[k] = (tr_ref){e->ts, e->a, false, k, rings[r].ring->tid};
                k++;
            }
        }
    for (size_t i = 0; i < tu->n; i++, k++)
        refs[k] = (tr_ref){tu->v[i].ts, tu->v[i].id, true, k, tu->v[i].tid};
    qsort(refs, k, sizeof *refs, by_ts);
    /* Open addressing: process id -> the flow waiting for its next turn. */
    size_t cap = 16;
    while (cap < 2 * k + 16)
        cap <<= 1;
    uint64_t *keys = calloc(cap, sizeof *keys), *flow = calloc(cap, sizeof *flow), next = 0;
    for (size_t i = 0; keys && flow && i < k; i++) {
        uint64_t id = refs[i].id;
        size_t h = (size_t)(id * 0x9E3779B97F4A7C15ull) & (cap - 1);
        while (keys[h] && keys[h] != id)
            h = (h + 1) & (cap - 1);
        if (!refs[i].turn) {
            keys[h] = id;
            flow[h] = ++next;
            ev_begin(w);
            fprintf(w->f, "{\"ph\":\"s\",\"pid\":%d,\"tid\":%d,\"ts\":%.3f,\"id\":%llu,\"cat\":\"wake\",\"name\":\"wake\"}",
                    w->pid, refs[i].tid, us(&w->c, refs[i].ts), (unsigned long long)next);
        } else if (keys[h] == id && flow[h]) {
            ev_begin(w);
            fprintf(w->f,
                    "{\"ph\":\"f\",\"bp\":\"e\",\"pid\":%d,\"tid\":%d,\"ts\":%.3f,\"id\":%llu,\"cat\":\"wake\","
                    "\"name\":\"wake\"}",
                    w->pid, refs[i].tid, us(&w->c, refs[i].ts), (unsigned long long)flow[h]);
            flow[h] = 0; /* the key stays: probing chains stay whole */
        }
    }
    free(keys);
    free(flow);
    free(refs);
}

int mote__trace_write(FILE *f, mote__trace_data *d) {
    writer w = {f, d, (int)getpid(), true, {d->tsc0, 0}};
    double ticks = (double)(d->tsc1 - d->tsc0), ns = (double)(d->ns1 - d->ns0);
    w.c.us_per_tick = ticks > 0 ? ns / ticks / 1e3 : 0;
    if (d->nnames)
        qsort(d->names, d->nnames, sizeof *d->names, by_id);
    size_t nrings = 0;
    for (const tr_buf *t = d->rings; t; t = t->next)
        nrings++;
    ring_copy *rings = calloc(nrings ? nrings : 1, sizeof *rings);
    if (!rings)
        return -ENOMEM;
    size_t r = 0;
    for (const tr_buf *t = d->rings; t; t = t->next)
        if (ring_copy_make(&rings[r], t, d->tsc0))
            r++;
    nrings = r;
    taskmap tm;
    if (!taskmap_make(&tm, d, rings, nrings))
        tm.n = 0;
    ids_resolve(&tm, rings, nrings);
    free(tm.v);
    turns tu = {NULL, 0, 0};
    fprintf(f, "{\"displayTimeUnit\":\"ns\",\"otherData\":{\"producer\":\"mote\",\"start_ns\":%lld},\"traceEvents\":[",
            (long long)d->ns0);
    ev_begin(&w);
    fprintf(f, "{\"ph\":\"M\",\"pid\":%d,\"name\":\"process_name\",\"args\":{\"name\":\"mote (pid %d)\"}}", w.pid, w.pid);
    for (r = 0; r < nrings; r++) {
        const tr_buf *t = rings[r].ring;
        ev_begin(&w);
        char label[64];
        if (t->tid == w.pid)
            snprintf(label, sizeof label, "main thread");
        else
            snprintf(label, sizeof label, "%s (%d)", t->name, t->tid);
        fprintf(f, "{\"ph\":\"M\",\"pid\":%d,\"tid\":%d,\"name\":\"thread_name\",\"args\":{\"name\":", w.pid, t->tid);
        json_str(f, label);
        fputs("}}", f);
        write_ring(&w, &rings[r], &tu);
    }
    write_flows(&w, rings, nrings, &tu);
    free(tu.v);
    fputs("\n]}\n", f);
    for (r = 0; r < nrings; r++)
        free(rings[r].ev);
    free(rings);
    return ferror(f) ? -EIO : 0;
}
