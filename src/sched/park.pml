/*
 * park.pml -- Promela model of the task park/wake protocol (sched.c,
 * docs/design.md "Task states" and "The wakeup protocol").
 *
 * One task waits NWAITS times for an event; NWAKERS wakers each publish one
 * event; NWORKERS workers run the task whenever it is queued. Checked with
 * spin exhaustively (scripts/check-models.sh).
 *
 * Mapping to the C:
 *   st, notified, seq   the task's state word t->state: MOTE__ST (IDLE,
 *                       QUEUED, RUNNING, PARKED), MOTE__NOTIFIED and
 *                       MOTE__SEQ. Each atomic block on them is one load,
 *                       store or CAS of that word.
 *   queued              times the task sits in a run queue (enqueue() adds
 *                       one, a worker's pop takes one): must stay <= 1.
 *   onstack             workers executing the task's code, i.e. on its
 *                       stack: must stay <= 1 (no double run).
 *   events, reg         the wait source: events published and not yet
 *                       consumed (a future's result, a message), and the
 *                       sequence number registered with it (a future's
 *                       waiter word / p->recv_seq; 0 = nobody).
 *   task_code           the waiter: mote__waiter_wait() around
 *                       mote__park_prepare() (seq+1, NOTIFIED cleared,
 *                       RUNNING), registration, the re-check, mote__park()
 *                       (switch_out), and the check after resuming.
 *   worker              worker_loop(): pop, set_running() (plain store:
 *                       the worker owns a popped task), run the task until
 *                       it switches out, then post_switch() ->
 *                       finish_park(): RUNNING(s) -> PARKED(s) by CAS,
 *                       or QUEUED + enqueue if NOTIFIED is set.
 *   waker               mote__future_complete / proc_send: publish the
 *                       event, read the registered seq, then
 *                       mote__task_wake(t, s): PARKED(s) -> QUEUED(s) by
 *                       CAS and enqueue, or RUNNING(s) -> +NOTIFIED; any
 *                       other seq or state: nothing.
 *   Promela runs statements in one interleaving (sequential consistency),
 *   which is what the C's seq_cst accesses and the store-load fences give.
 *
 * Properties:
 *   no double run      assert(onstack <= 1) and assert(queued <= 1);
 *   no lost wake-up    checker: when nothing can move (timeout), the task
 *                      must have consumed every event (else it sleeps
 *                      forever with its condition true);
 *   end states         workers may only stop idle (end label).
 *
 * Mutants (each must make spin fail; scripts/check-models.sh checks that):
 *   MUTANT_NO_NOTIFIED  finish_park ignores NOTIFIED (lost wake-up);
 *   MUTANT_NO_RECHECK   the waiter parks without re-checking its condition
 *                       after registering (lost wake-up);
 *   MUTANT_EARLY_PARK   the worker marks the task PARKED before leaving its
 *                       stack (a waker queues it and a second worker runs
 *                       it on the same stack: double run).
 */

#define IDLE    0
#define QUEUED  1
#define RUNNING 2
#define PARKED  3

#ifndef NWORKERS
#define NWORKERS 2
#endif
#define NWAKERS 2
#define NWAITS  2

byte st = QUEUED;   /* t->state: MOTE__ST */
bit notified = 0;   /* t->state: MOTE__NOTIFIED */
byte seq = 0;       /* t->state: MOTE__SEQ */
byte queued = 1;    /* the task starts in a run queue */
byte onstack = 0;
byte events = 0;
byte consumed = 0;
byte reg = 0;
bit done = 0;

/* Where the task resumes when a worker runs it (its saved context). */
#define AT_START  0
#define AT_PARKED 1
byte resume_at = AT_START;
byte waits = 0;     /* waits completed */

inline enqueue() {
    queued++;
    assert(queued <= 1)
}

/* Reload the state word into o_* (what a failed CAS does). */
#define RELOAD(p) p##st = st; p##n = notified; p##seq = seq
#define SAME(p) (st == p##st && notified == p##n && seq == p##seq)

/* mote__task_wake(t, s) */
inline task_wake(s) {
    byte o_st; bit o_n; byte o_seq;
    atomic { RELOAD(o_) };                               /* old = load */
    do
    :: o_seq != s -> break                               /* stale: nothing */
    :: o_seq == s && o_st == PARKED ->                   /* CAS PARKED(s) -> QUEUED(s) */
        atomic {
            if
            :: SAME(o_) -> st = QUEUED; enqueue(); break
            :: else -> RELOAD(o_)
            fi
        }
    :: o_seq == s && o_st == RUNNING && o_n -> break
    :: o_seq == s && o_st == RUNNING && !o_n ->          /* CAS RUNNING(s) -> +NOTIFIED */
        atomic {
            if
            :: SAME(o_) -> notified = 1; break
            :: else -> RELOAD(o_)
            fi
        }
    :: o_seq == s && (o_st == IDLE || o_st == QUEUED) -> break
    od
}

/* finish_park(t), run by the worker after it left the task's stack. */
inline finish_park() {
    byte f_st; bit f_n; byte f_seq;
    atomic { RELOAD(f_) };
    do
#ifndef MUTANT_NO_NOTIFIED
    :: f_n -> atomic { st = QUEUED; notified = 0; enqueue() }; break
#endif
    :: !f_n ->                                          /* CAS RUNNING(s) -> PARKED(s) */
        atomic {
            if
            :: SAME(f_) -> st = PARKED; break
            :: else -> RELOAD(f_)
            fi
        }
#ifdef MUTANT_NO_NOTIFIED
    :: f_n -> atomic {
            if
            :: SAME(f_) -> st = PARKED; notified = 0; break
            :: else -> RELOAD(f_)
            fi
        }
#endif
    od
}

/* Consume one event if there is one (the waiter's condition check). */
inline check(ok) {
    atomic {
        if
        :: events > 0 -> events--; consumed++; ok = 1
        :: else -> ok = 0
        fi
    }
}

/*
 * One turn of the task on worker's stack: runs until the task switches out
 * (parked = 1) or finishes. The task's "program counter" is resume_at.
 */
inline task_code(parked) {
    bit ok;
    parked = 0;
    if
    :: resume_at == AT_PARKED ->
        check(ok);               /* mote__waiter_wait: check after mote__park */
        if
        :: ok -> reg = 0; waits++
        :: else -> skip          /* woken without event: wait again */
        fi
    :: else -> skip
    fi;
    do
    :: waits == NWAITS -> done = 1; break
    :: waits < NWAITS ->
        atomic { seq++; notified = 0; st = RUNNING };   /* mote__park_prepare */
        reg = seq;                                      /* register (t, s) */
#ifndef MUTANT_NO_RECHECK
        check(ok);                                      /* the re-check */
#else
        ok = 0;
#endif
        if
        :: ok -> reg = 0; waits++                       /* no park */
        :: else -> resume_at = AT_PARKED; parked = 1; break   /* mote__park */
        fi
    od
}

active [NWORKERS] proctype worker() {
    bit parked;
end:
    do
    :: atomic { queued > 0 -> queued-- };                  /* pop */
        atomic { st = RUNNING; notified = 0 };             /* set_running */
        onstack++;
        assert(onstack <= 1);
        task_code(parked);
        if
        :: parked ->
#ifdef MUTANT_EARLY_PARK
            finish_park();
            onstack--
#else
            onstack--;                                     /* mote__ctx_switch away */
            finish_park()                                  /* post_switch */
#endif
        :: else -> atomic { onstack--; st = IDLE }          /* settle: turn over */
        fi
    od
}

active [NWAKERS] proctype waker() {
    byte s;
    events++;          /* publish the event (seq_cst) */
    s = reg;           /* then read the registered seq */
    if
    :: s != 0 -> task_wake(s)
    :: else -> skip
    fi
}

/* No lost wake-up: once nothing can move, every event was consumed. */
active proctype checker() {
    timeout -> assert(done && consumed == NWAKERS && events == 0)
}
