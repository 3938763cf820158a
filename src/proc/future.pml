/*
 * future.pml -- Promela model of a future's waiter word (future.c,
 * docs/design.md "Futures"), with the waiter's lifetime made explicit.
 *
 * Three threads: the producer (the process running the message), the
 * consumer (the process awaiting the future, with a timeout), and the
 * timer that may fire that timeout. Checked exhaustively by
 * scripts/check-models.sh.
 *
 * Mapping to the C:
 *   w                   f->w: NUL (NULL), WAITER (the consumer's
 *                       mote__waiter*), BUSY, DONE, DROPPED.
 *   walive              the consumer's mote__waiter exists: it lives on the
 *                       consumer's stack from mote__waiter_init() until
 *                       mote__future_wait() returns. Whoever touches it
 *                       asserts walive (no use after free).
 *   wevents, woken      w->events, and the wake itself (w->futex for a
 *                       thread; for a task the park protocol, checked in
 *                       park.pml, reduced here to "woken since armed").
 *   timed_out, armed    w->timed_out and the waiter's timer: armed by
 *                       mote__waiter_sleep(), cancelled by
 *                       mote__waiter_done() under the timer lock (tlock),
 *                       which the timer holds while it fires
 *                       (waiter_timer_fire -> mote__waiter_wake).
 *   ffree               the future was freed (future_free): by the
 *                       consumer after taking the result or on a drop of a
 *                       DONE future, by the producer on DROPPED. Exactly
 *                       once, and nobody touches f after it.
 *   producer            mote__future_complete(): exchange BUSY; DROPPED ->
 *                       free; a waiter -> events++, wake; store DONE.
 *   consumer            mote_await_for(f, timeout): mote__future_wait()
 *                       (fast paths, future_register, mote__waiter_wait,
 *                       mote__waiter_done, future_unregister, which spins
 *                       past BUSY); on -ETIMEDOUT it either drops the
 *                       future (mote_future_drop) or awaits it again
 *                       without a timeout (mote_await).
 *
 * Properties: no use of the waiter after it is gone (assert walive in the
 * producer and the timer); the future freed exactly once and never used
 * after (asserts on ffree); no lost wake-up: an await without timeout
 * ends with the result (checker at timeout, and end states).
 *
 * Mutants (must fail):
 *   MUTANT_DONE_EARLY   the producer stores DONE before waking the waiter:
 *                       the waiter sees DONE, returns, and is woken after
 *                       it is gone (release before BUSY clears);
 *   MUTANT_NO_SPIN      future_unregister returns at BUSY without spinning
 *                       until DONE (the same use after free);
 *   MUTANT_NO_RECHECK   mote__waiter_wait sleeps without looking at the
 *                       events after arming (lost wake-up).
 */

#define NUL     0
#define WAITER  1
#define BUSY    2
#define DONE    3
#define DROPPED 4

byte w = NUL;
bit walive = 0;
byte wevents = 0;
bit woken = 0;
bit timed_out = 0;
bit armed = 0;
bit tlock = 0;
byte ffree = 0;
bit got_result = 0;
bit dropped = 0;
bit consumer_done = 0;
bit producer_done = 0;

inline touch_future() { assert(ffree == 0) }
inline touch_waiter() { assert(walive) }

inline free_future() {
    atomic { assert(ffree == 0); ffree++ }
}

/* mote__waiter_wake: wake the waiter (it must exist). */
inline waiter_wake() {
    atomic { touch_waiter(); woken = 1 }
}

active proctype producer() {
    byte old;
    touch_future();                       /* f->res = r */
    atomic { touch_future(); old = w; w = BUSY };   /* atomic_exchange */
    if
    :: old == DROPPED -> free_future()
    :: old == WAITER ->
#ifdef MUTANT_DONE_EARLY
        w = DONE;
#endif
        atomic { touch_waiter(); wevents++ };
        waiter_wake();
#ifndef MUTANT_DONE_EARLY
        w = DONE
#endif
    :: else -> w = DONE
    fi;
    producer_done = 1
}

/* The timer thread: fires an armed timer under the timer lock. */
active proctype timer() {
end:
    do
    :: atomic { armed && !tlock -> tlock = 1 };
        if
        :: armed -> atomic { touch_waiter(); timed_out = 1 }; waiter_wake(); armed = 0
        :: else -> skip
        fi;
        tlock = 0
    od
}

/* mote__waiter_wait(w, timeout): until an event or (with a timeout) the
 * timer fires. */
inline waiter_wait(with_timeout) {
    do
    :: atomic { woken = 0 };                              /* mote__waiter_arm */
#ifndef MUTANT_NO_RECHECK
        if
        :: wevents > 0 || timed_out -> break
        :: else -> skip
        fi;
#endif
        if                                                /* mote__waiter_sleep */
        :: with_timeout && !armed && !timed_out -> armed = 1
        :: else -> skip
        fi;
        woken;                                            /* park until woken */
        if
        :: wevents > 0 || timed_out -> break
        :: else -> skip
        fi
    od;
    atomic { !tlock -> armed = 0 }                        /* mote__waiter_done */
}

/* future_unregister: result is 1 if f is done. */
inline unregister(res) {
    atomic {
        touch_future();
        if
        :: w == WAITER -> w = NUL; res = 0
        :: else -> res = 1
        fi
    };
#ifndef MUTANT_NO_SPIN
    if
    :: res -> (w == DONE)                                 /* spin_until_done */
    :: else -> skip
    fi
#endif
}

/* mote__future_wait(f, timeout): rc 0 (done) or 1 (timed out). */
inline future_wait(with_timeout, rc) {
    byte s;
    bit r;
    s = w;
    if
    :: s == DONE -> rc = 0
    :: s == BUSY -> (w == DONE); rc = 0
    :: else ->
        atomic { walive = 1; wevents = 0; woken = 0; timed_out = 0 };  /* mote__waiter_init */
        atomic {                                          /* future_register */
            touch_future();
            if
            :: w == NUL -> w = WAITER; r = 1
            :: else -> wevents++; r = 0                   /* BUSY or DONE */
            fi
        };
        if
        :: r -> waiter_wait(with_timeout); unregister(r); rc = 1 - r
        :: else -> (w == DONE); rc = 0
        fi;
        walive = 0                                        /* the stack frame ends */
    fi
}

/* mote_future_drop */
inline drop() {
    byte d;
    do
    :: atomic {
        touch_future();
        d = w;
        if
        :: d == NUL -> w = DROPPED
        :: else -> skip
        fi
       };
       if
       :: d == NUL -> break                               /* the producer frees it */
       :: d == DONE -> free_future(); break
       :: d == BUSY -> skip                               /* cpu_relax */
       fi
    od
}

active proctype consumer() {
    byte rc;
    future_wait(1, rc);                                   /* mote_await_for(f, t) */
    if
    :: rc == 0 -> touch_future(); got_result = 1; free_future()
    :: else ->
        if
        :: drop(); dropped = 1
        :: future_wait(0, rc);                            /* mote_await(f): forever */
           assert(rc == 0);
           touch_future(); got_result = 1; free_future()
        fi
    fi;
    consumer_done = 1
}

/* Once nothing can move: both sides finished, the result was taken or the
 * future dropped, and it was freed exactly once. */
active proctype checker() {
    timeout -> assert(consumer_done && producer_done && (got_result || dropped) && ffree == 1)
}
