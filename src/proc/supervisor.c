/*
 * supervisor.c -- a process that starts children and restarts them when
 * they end abnormally (Erlang's supervisor, one-for-one and all-for-one,
 * with a restart intensity).
 *
 * The supervisor is a state process running one long message (sup_run)
 * that starts the children, then loops on mote_receive. It traps exits
 * and links to every child, so:
 *   - a child's end arrives as a link notice (matched by process id; a
 *     notice for a child already replaced is ignored);
 *   - the supervisor's own end (cancelled, or giving up) is abnormal and
 *     takes every child with it through the links, and reaches its own
 *     monitors and links like any process's end.
 * mote_sup_child is a call, which mote_receive runs in order with the
 * notices: a caller that saw its child fail and asks again is answered
 * after the restart (the child's end posts the notice before it cancels
 * the caller's message; see proc.c, mote__proc_end).
 */
#include "proc/proc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_RESTARTS 3
#define DEFAULT_PERIOD MOTE_SEC(5)

typedef struct sup_child {
    mote_child_spec spec;
    mote_proc *proc; /* our handle to the running child; NULL once it ended normally */
} sup_child;

typedef struct sup_state {
    int strategy;
    unsigned max_restarts;
    int64_t period;
    size_t n;
    sup_child *children;
    int64_t *restarts; /* when the last max_restarts restarts happened (a ring) */
    unsigned nrestarts, next;
} sup_state;

typedef struct run_arg {
    mote_future *started; /* completed with init's result */
} run_arg;

static void sup_dtor(void *state) {
    sup_state *s = state;
    for (size_t i = 0; i < s->n; i++)
        mote_proc_release(s->children[i].proc);
    free(s->children);
    free(s->restarts);
}

/* Start child i and link to it. */
static int start_child(sup_state *s, size_t i) {
    sup_child *c = &s->children[i];
    mote_proc *p = NULL;
    int r = c->spec.start(&p, c->spec.arg);
    if (r == 0 && !p)
        r = -EINVAL; /* a start function must hand out its child */
    if (r < 0)
        return r;
    c->proc = p;
    /* A child that already ended is reported by the link at once. */
    return mote_link(p);
}

/* Count a restart; false if it would be one more than the intensity
 * allows within the period. */
static bool allow_restart(sup_state *s) {
    int64_t now = mote__now();
    if (s->nrestarts == s->max_restarts) {
        if (now - s->restarts[s->next] < s->period)
            return false;
    } else {
        s->nrestarts++;
    }
    s->restarts[s->next] = now;
    s->next = (s->next + 1) % s->max_restarts;
    return true;
}

/* End the supervisor abnormally with text (its links take the children). */
static void give_up(sup_state *s) {
    mote_proc *self = mote__proc_self();
    bool closed;
    mote__proc_ext *e = mote__proc_ext_get(self, &closed);
    if (e && !e->exit_text) {
        char text[128];
        snprintf(text, sizeof text, "supervisor gave up: more than %u restarts in %lld ms",
                 s->max_restarts, (long long)(s->period / MOTE_MSEC(1)));
        e->exit_text = strdup(text);
    }
    mote__proc_cancel(self, MOTE__CANCEL_FAIL);
}

/* Cancel child i and wait until it has ended (its resources are free
 * before its replacement starts). */
static void stop_child(sup_child *c) {
    if (!c->proc)
        return;
    mote_unlink(c->proc);
    mote_future *f = NULL;
    if (mote_monitor_future(c->proc, &f) == 0) {
        mote_cancel(c->proc);
        mote_result r;
        if (mote_await(f, &r) == 0 && r.err == 0)
            mote_msg_free(r.p);
    }
    mote_proc_release(c->proc);
    c->proc = NULL;
}

/* Restart child i (one-for-one) or all children (all-for-one) until they
 * run, within the intensity. False if the supervisor gave up. */
static bool restart(sup_state *s, size_t i) {
    for (;;) {
        if (mote_cancelled())
            return false;
        if (!allow_restart(s)) {
            give_up(s);
            return false;
        }
        size_t from = i, to = i + 1;
        if (s->strategy == MOTE_SUP_ALL_FOR_ONE) {
            from = 0;
            to = s->n;
            for (size_t j = 0; j < s->n; j++)
                stop_child(&s->children[j]);
        } else {
            stop_child(&s->children[i]);
        }
        int r = 0;
        for (size_t j = from; j < to && r == 0; j++)
            r = start_child(s, j);
        if (r == 0)
            return true; /* a start that failed counts as another end */
    }
}

static void child_ended(sup_state *s, const mote_exit *x) {
    for (size_t i = 0; i < s->n; i++) {
        sup_child *c = &s->children[i];
        if (!c->proc || mote_proc_id(c->proc) != x->proc_id)
            continue;
        if (x->reason == MOTE_EXIT_NORMAL) { /* done: not restarted */
            mote_proc_release(c->proc);
            c->proc = NULL;
        } else {
            restart(s, i);
        }
        return;
    }
}

static mote_result sup_run(void *state, void *arg) {
    sup_state *s = state;
    run_arg *a = arg;
    mote_trap_exits(true);
    int r = 0;
    for (size_t i = 0; i < s->n && r == 0; i++)
        r = start_child(s, i);
    mote__future_complete(a->started, mote_error(r));
    if (r < 0) { /* end now: the links take the children started so far */
        mote__proc_cancel(mote__proc_self(), MOTE__CANCEL_USER);
        return mote_ok_i(0);
    }
    mote_msg *m = NULL;
    while (mote_receive(&m, MOTE_FOREVER) == 0) {
        mote_exit x;
        if (mote_msg_exit(m, &x) && x.link)
            child_ended(s, &x);
        mote_msg_free(m);
    }
    return mote_ok_i(0); /* cancelled, or gave up: the turn ends us */
}

int mote_sup_start(mote_proc **out, const mote_sup_spec *spec) {
    if (out)
        *out = NULL;
    if (!out || !spec || !spec->children || spec->n == 0 || spec->n > 65536 ||
        (spec->strategy != MOTE_SUP_ONE_FOR_ONE && spec->strategy != MOTE_SUP_ALL_FOR_ONE) ||
        spec->period < 0)
        return -EINVAL;
    for (size_t i = 0; i < spec->n; i++)
        if (!spec->children[i].start)
            return -EINVAL;
    sup_state s = {
        .strategy = spec->strategy,
        .max_restarts = spec->max_restarts ? spec->max_restarts : DEFAULT_RESTARTS,
        .period = spec->period ? spec->period : DEFAULT_PERIOD,
        .n = spec->n,
    };
    s.children = calloc(s.n, sizeof *s.children);
    s.restarts = calloc(s.max_restarts, sizeof *s.restarts);
    if (!s.children || !s.restarts) {
        sup_dtor(&s);
        return -ENOMEM;
    }
    for (size_t i = 0; i < s.n; i++)
        s.children[i].spec = spec->children[i];
    mote_proc *p = NULL;
    int r = mote_spawn(&p, &s, sizeof s, sup_dtor);
    if (r < 0) {
        sup_dtor(&s);
        return r;
    }
    /* One message does it all, so no notice can arrive before the loop
     * that receives it; the start's outcome comes back through a future. */
    run_arg a = {mote__future_new(MOTE__FUT_HEAP)};
    if (!a.started || (r = mote_cast(p, sup_run, &a, sizeof a)) < 0) {
        if (a.started)
            mote__future_release(a.started);
        mote_proc_release(p);
        return a.started ? r : -ENOMEM;
    }
    mote_result res;
    r = mote_await(a.started, &res);
    if (r == 0)
        r = res.err;
    if (r < 0) {
        mote_proc_release(p);
        return r;
    }
    *out = p;
    return 0;
}

static mote_result sup_get_child(void *state, void *arg) {
    sup_state *s = state;
    size_t i = *(size_t *)arg;
    if (i >= s->n)
        return mote_error(-EINVAL);
    if (!s->children[i].proc)
        return mote_error(-ESRCH);
    /* A caller cancelled while it waits leaves the reference in the
     * reply: mark it, so that the runtime releases it then. Only a
     * process's call has a reply message (a foreign thread's cannot be
     * cancelled). */
    mote__msg *m = mote__proc_self()->cur;
    if (m->kind & MOTE__MSG_REPLY)
        m->kind |= MOTE__MSG_PROC_RESULT;
    return mote_ok_p(mote_proc_ref(s->children[i].proc));
}

int mote_sup_child(mote_proc *sup, size_t i, mote_proc **out) {
    if (out)
        *out = NULL;
    if (!sup || !out)
        return -EINVAL;
    mote_result r;
    int rc = mote_call(sup, sup_get_child, &i, sizeof i, &r);
    if (rc < 0)
        return rc;
    if (r.err < 0)
        return r.err; /* -ECANCELED: the supervisor has ended */
    *out = r.p;
    return 0;
}
