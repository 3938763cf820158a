/*
 * future.pml -- Promela model of a future's waiter word (future.c,
 * docs/design.md "Futures"), with the waiter's lifetime made explicit.
 *
 * Three threads: the producer (the process running the message), the
 * consumer (the process awaiting the future, with a timeout), and the
 * timer that may fire that timeout (the consumer's deadline). Checked
 * exhaustively by scripts/check-models.sh. (A wait set's hook in the word
 * is modelled in io/waitset.pml.)
 *
 * Mapping to the C:
 *   w                   f->w: NUL (NULL), WAITER (the consumer's
 *                       mote__waiter*), BUSY, DONE, DROPPED.
 *   walive              the consumer's mote__waiter exists: it lives on the
 *                       consumer's stack from mote__waiter_init() until
 *                       mote__future_wait() returns. Whoever touches it
 *                       asserts walive (no use after free).
 *   wevents, seq,       w->events, the consumer's park sequence (bumped by
 *   woken               mote__waiter_arm) and the wake itself: the park
 *                       protocol, checked in park.pml, reduced here to
 *                       "woken with the current sequence since armed"
 *                       (wake(s) with an older s does nothing).
 *   dseq, dwhen, fired  the process's deadline (future.h): task_sleep
 *                       stores dseq = seq, then arms dwhen (the deadline;
 *                       it may pass at any time), parks, disarms dwhen
 *                       and sets timed_out if fired == seq. The timer
 *                       (fire_expired + deadline_fire) takes dwhen with a
 *                       CAS, then reads dseq, stores fired and wakes that
 *                       sequence: it never touches the waiter.
 *   ffree               the future was freed (future_free): by the
 *                       consumer after taking the result or on a drop of a
 *                       DONE future, by the producer on DROPPED. Exactly
 *                       once, and nobody touches f after it.
 *   producer            mote__future_complete(): take the word to BUSY
 *                       (future_take: a CAS that waits out another BUSY);
 *                       DROPPED -> free; a waiter -> events++, wake;
 *                       store DONE.
 *   consumer            mote_await_for(f, timeout): mote__future_wait()
 *                       (fast path, future_register, which waits out BUSY,
 *                       mote__waiter_wait, future_unregister, which spins
 *                       past BUSY); on -ETIMEDOUT it either drops the
 *                       future (mote_future_drop) or awaits it again
 *                       without a timeout (mote_await).
 *
 * Properties: no use of the waiter after it is gone (assert walive in the
 * producer); the future freed exactly once and never used after (asserts
 * on ffree); no lost wake-up: an await without timeout ends with the
 * result (checker at timeout, and end states), also when a late fire of
 * the first wait's deadline comes during the second wait.
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
byte seq = 0;
bit woken = 0;
bit timed_out = 0;
byte dseq = 0;
bit dwhen = 0;
byte fired = 0;
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

/* mote__waiter_wake: wake the waiter (it must exist) with its current
 * sequence. */
inline waiter_wake() {
    atomic { touch_waiter(); woken = 1 }
}

/* mote__task_wake(task, s): only the current sequence wakes. */
inline task_wake(s) {
    atomic { if :: s == seq -> woken = 1 :: else -> skip fi }
}

active proctype producer() {
    byte old;
    touch_future();                       /* f->res = r */
    atomic { touch_future(); w != BUSY -> old = w; w = BUSY };  /* future_take */
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

/* The timer: the deadline may pass whenever it is armed. It takes it (the
 * CAS of `when` to OFF), then reads the sequence to wake (deadline_fire):
 * a sleep that moved on meanwhile gets a spurious wake, told apart in C by
 * the clock (the deadline of one wait passed for all its sleeps). */
active proctype timer() {
    byte s;
end:
    do
    :: atomic { dwhen -> dwhen = 0 };
        s = dseq;
        fired = s;
        task_wake(s)
    od
}

/* mote__waiter_wait(w, timeout): until an event or (with a timeout) the
 * deadline. */
inline waiter_wait(with_timeout) {
    do
    :: atomic { seq++; woken = 0 };                       /* mote__waiter_arm */
#ifndef MUTANT_NO_RECHECK
        if
        :: wevents > 0 || timed_out -> break
        :: else -> skip
        fi;
#endif
        if                                                /* task_sleep */
        :: with_timeout -> dseq = seq; dwhen = 1
        :: else -> skip
        fi;
        woken;                                            /* park until woken */
        if
        :: with_timeout ->
            dwhen = 0;                                    /* lazy disarm */
            if
            :: fired == seq -> timed_out = 1
            :: else -> skip
            fi
        :: else -> skip
        fi;
        if
        :: wevents > 0 || timed_out -> break
        :: else -> skip
        fi
    od
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
    bit r;
    if
    :: w == DONE -> rc = 0
    :: else ->
        atomic { walive = 1; wevents = 0; woken = 0; timed_out = 0 };  /* mote__waiter_init */
        atomic {                                          /* future_register */
            touch_future();
            w != BUSY ->                                  /* waits out BUSY */
            if
            :: w == NUL -> w = WAITER; r = 1
            :: else -> wevents++; r = 0                   /* DONE */
            fi
        };
        if
        :: r -> waiter_wait(with_timeout); unregister(r); rc = 1 - r
        :: else -> rc = 0
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
