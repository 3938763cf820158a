/*
 * waitset.pml -- Promela model of a wait set (waitset.c, docs/design.md
 * "Wait sets"): a future source hooked into a future's word, a timer
 * source, the set's inbox and its owner's wait, with the lifetimes of the
 * sources, the set and the future made explicit.
 *
 * Threads: the producer (completes the future), the timer (fires the timer
 * source once unless it is cancelled), and the owner, which adds both
 * sources, then waits and reports until both are resolved, choosing at
 * each turn to drop the future (mote_future_drop while it is in the set)
 * or to remove it (mote_waitset_remove, then mote_await) if it has not yet
 * been reported; at the end it frees the set. Checked exhaustively by
 * scripts/check-models.sh.
 *
 * Mapping to the C:
 *   w, hooked          f->w: NUL, BUSY, DONE, DROPPED or HOOK (the
 *                      source's hook); f->hooked (HDONE, HDROP), written
 *                      under BUSY.
 *   ffree              the future was freed (future_free), exactly once.
 *   pending[i]         source i's pending bits (i = 0: the future source,
 *                      1: the timer source); alive[i] its memory; dead[i]
 *                      removed while listed.
 *   inbox, fifo        the set's inbox (who is pushed, as a bit mask) and
 *                      the owner's private list; setalive the set's memory.
 *   seq, woken         the owner's park sequence and the wake (park.pml's
 *                      protocol, reduced to "woken with the current
 *                      sequence since armed").
 *   tarmed, tlock      the timer source's timer and the timer lock, held
 *                      while it fires; cancel takes it (final).
 *   notify(i, why)     src_notify: fetch_or pending; the one that found 0
 *                      pushes (CAS) and, if the inbox was empty, reads the
 *                      owner's sequence (set memory) and wakes it.
 *   producer           mote__future_complete: future_take (waits out BUSY);
 *                      DROPPED -> free; HOOK -> hooked |= HDONE, notify,
 *                      put the hook back; NUL -> DONE.
 *   drop               mote_future_drop by the owner: NUL -> DROPPED; DONE
 *                      -> free; HOOK -> BUSY, hooked |= HDROP, notify, put
 *                      the hook back.
 *   unhook             mote__future_unhook: CAS HOOK -> BUSY (spinning
 *                      past BUSY), store DONE or NUL, then drop if HDROP.
 *
 * Properties: nothing touches a source, the set or the future after it is
 * freed (asserts); the future is freed exactly once; no lost wake-up: when
 * nothing can move, the owner has resolved both sources and freed the set
 * (checker).
 *
 * Mutants (must fail):
 *   MUTANT_WAKE_NONEMPTY   the push wakes the owner only when the inbox
 *                          was not empty (instead of only when it was);
 *   MUTANT_NO_RECHECK      the owner sleeps without looking at the inbox
 *                          after arming;
 *   MUTANT_UNHOOK_NO_SPIN  unhook does not wait out BUSY: the source is
 *                          freed while a notify is still under way;
 *   MUTANT_DROP_FREES      a drop treats a hooked future as pending and
 *                          hands it to the producer, which frees it under
 *                          the set;
 *   MUTANT_FREE_LISTED     a removed source is freed even while listed;
 *   MUTANT_BITS_FIRST      a reported future source's bits are taken
 *                          before it leaves its origin: a notify under way
 *                          lists it again, and it is freed while listed.
 */

#define NUL     0
#define BUSY    1
#define DONE    2
#define DROPPED 3
#define HOOK    4

#define HDONE 1
#define HDROP 2

byte w = NUL;
byte hooked = 0;
byte ffree = 0;

byte pending[2];
bit  alive[2];
bit  dead[2];
byte inbox = 0;
byte fifo = 0;
bit  setalive = 0;

byte seq = 0;
bit  woken = 0;

bit tarmed = 0;
bit tlock = 0;

bit f_done = 0;       /* the future was reported, removed, or dropped */
bit t_done = 0;       /* the timer was reported */
bit dropped = 0;
bit owner_done = 0;
bit producer_done = 0;

inline touch_future() { assert(ffree == 0) }

inline free_future() {
    atomic { assert(ffree == 0); ffree++ }
}

inline task_wake(s) {
    atomic { if :: s == seq -> woken = 1 :: else -> skip fi }
}

/* src_notify(source i, why). Inlines use the caller's locals (NOTIFY_LOCALS):
 * a Promela inline may not declare what a second use would declare again. */
#define NOTIFY_LOCALS byte nold, nseq; bit inbox_was_empty
inline notify(i, why) {
    atomic { assert(alive[i] && setalive); nold = pending[i]; pending[i] = pending[i] | why };
    if
    :: nold == 0 ->
        atomic { assert(alive[i] && setalive); inbox_was_empty = (inbox == 0); inbox = inbox | (1 << i) };
#ifdef MUTANT_WAKE_NONEMPTY
        if :: !inbox_was_empty -> atomic { assert(setalive); nseq = seq }; task_wake(nseq)
           :: else -> skip fi
#else
        if :: inbox_was_empty -> atomic { assert(setalive); nseq = seq }; task_wake(nseq)
           :: else -> skip fi
#endif
    :: else -> skip
    fi
}

active proctype producer() {
    byte old;
    NOTIFY_LOCALS;
    atomic { touch_future(); w != BUSY -> old = w; w = BUSY };   /* future_take */
    if
    :: old == DROPPED -> free_future()
    :: old == HOOK ->
        hooked = hooked | HDONE;
        notify(0, HDONE);
        w = HOOK                                                /* the hook stays */
    :: else -> w = DONE
    fi;
    producer_done = 1
}

active proctype timer() {
    NOTIFY_LOCALS;
end:
    do
    :: atomic { tarmed && !tlock -> tlock = 1; tarmed = 0 };
        notify(1, HDONE);
        tlock = 0
    od
}

/* mote_future_drop (by the owner, while the set holds f or after it let
 * go of it in unhook). */
inline drop() {
    do
    :: atomic {
        touch_future();
        d = w;
        if
        :: d == NUL -> w = DROPPED
#ifdef MUTANT_DROP_FREES
        :: d == HOOK -> w = DROPPED
#else
        :: d == HOOK -> w = BUSY
#endif
        :: else -> skip
        fi
       };
       if
       :: d == NUL -> break                                     /* the producer frees it */
       :: d == DONE -> free_future(); break
       :: d == BUSY -> skip
#ifdef MUTANT_DROP_FREES
       :: d == HOOK -> break
#else
       :: d == HOOK -> hooked = hooked | HDROP; notify(0, HDROP); w = HOOK; break
#endif
       fi
    od
}

/* mote__future_unhook; what: the hooked bits. */
inline unhook(what) {
#ifdef MUTANT_UNHOOK_NO_SPIN
    atomic { touch_future(); (w == HOOK || w == BUSY) -> w = BUSY };
#else
    atomic { touch_future(); w == HOOK -> w = BUSY };
#endif
    what = hooked;
    hooked = 0;
    if
    :: what & HDONE -> w = DONE
    :: else -> w = NUL
    fi;
    if
    :: what & HDROP -> drop()
    :: else -> skip
    fi
}

/* src_leave for the future source: then the future is the owner's
 * again (or dropped). */
inline leave_future(what) {
    unhook(what)
}

/* src_free: free now, or once taken off the list. */
inline src_free(i) {
#ifdef MUTANT_FREE_LISTED
    alive[i] = 0
#else
    if
    :: pending[i] != 0 -> dead[i] = 1
    :: else -> alive[i] = 0
    fi
#endif
}

/* collect: take the inbox, report what is listed. A source that leaves
 * the set leaves its origin before its bits are taken (report()). */
inline collect() {
    atomic { fifo = fifo | inbox; inbox = 0 };
    do
    :: fifo & 1 ->
        fifo = fifo & 2;
        if
        :: dead[0] -> atomic { assert(alive[0]); pending[0] = 0; alive[0] = 0 }
        :: else ->
#ifndef MUTANT_BITS_FIRST
            leave_future(what);
            atomic { assert(alive[0]); bits = pending[0]; pending[0] = 0 };
#else
            atomic { assert(alive[0]); bits = pending[0]; pending[0] = 0 };
            leave_future(what);
#endif
            alive[0] = 0;
            if
            :: what & HDROP -> skip                              /* dropped: not reported */
            :: else -> touch_future(); assert(w == DONE); free_future()  /* reported; mote_await */
            fi;
            f_done = 1
        fi
    :: fifo & 2 ->
        fifo = fifo & 1;
        if
        :: dead[1] -> atomic { assert(alive[1]); pending[1] = 0; alive[1] = 0 }
        :: else ->
            atomic { !tlock -> tarmed = 0 };                     /* cancel: final */
            atomic { assert(alive[1]); bits = pending[1]; pending[1] = 0 };
            alive[1] = 0;
            t_done = 1
        fi
    :: fifo == 0 -> break
    od
}

active proctype owner() {
    byte what, r, d, bits;
    NOTIFY_LOCALS;
    /* mote_waitset_new, add_future, add_timer */
    setalive = 1;
    alive[0] = 1;
    alive[1] = 1;
    atomic {                                                     /* mote__future_hook */
        touch_future();
        w != BUSY ->
        if
        :: w == NUL -> w = HOOK; r = 1
        :: else -> hooked = HDONE; w = HOOK; r = 0               /* DONE: hooked all the same */
        fi
    };
    if
    :: r == 0 -> notify(0, HDONE)
    :: else -> skip
    fi;
    tarmed = 1;
    do
    :: f_done && t_done -> break
    :: !f_done && !dropped -> dropped = 1; drop()                /* mote_future_drop */
    :: !f_done && !dropped ->                                    /* mote_waitset_remove(f), mote_await(f) */
        leave_future(what);
        src_free(0);
        if
        :: what & HDROP -> skip
        :: else -> atomic { touch_future(); w == DONE }; free_future()
        fi;
        f_done = 1
    :: else ->                                                   /* mote_waitset_wait */
        collect();
        if
        :: f_done && t_done -> skip
        :: else ->
            atomic { seq++; woken = 0 };                         /* arm */
#ifndef MUTANT_NO_RECHECK
            if
            :: inbox != 0 || fifo != 0 -> skip
            :: else -> woken                                     /* sleep */
            fi
#else
            woken
#endif
        fi
    od;
    /* mote_waitset_free: nothing is left hooked or armed; listed sources
     * are dead. */
    collect();
    assert(!tarmed && w != HOOK);
    atomic { assert(!(alive[0] && !dead[0]) && !(alive[1] && !dead[1])); setalive = 0 };
    owner_done = 1
}

/* Once nothing can move: the owner resolved both sources and freed the
 * set, and the future was freed exactly once. */
active proctype checker() {
    timeout -> assert(owner_done && producer_done && ffree == 1)
}
