/*
 * fdslot.pml -- Promela model of one direction's slot of a poll descriptor
 * (fd.c, docs/design.md "Descriptors"), with the waiters' lifetimes made
 * explicit.
 *
 * Threads: two waiters (processes in mote_fd_wait on the same fd and
 * direction), the poller delivering EDGES readiness edges, and a closer
 * that may or may not close the descriptor. Checked exhaustively by
 * scripts/check-models.sh.
 *
 * Mapping to the C:
 *   slot             pd->slot[d]: 0, READY (PD_READY), W1/W2 (a waiter's
 *                    mote__waiter*), BUSY (PD_BUSY).
 *   gen              pd->gen, bumped by mote__fd_abort (mote_fd_close).
 *   cancelled        the socket's closed flag (s->closed), set by
 *                    mote_socket_close before mote__fd_abort and passed
 *                    to mote__fd_wait_until. Without it a close that ends
 *                    before a wait reads gen leaves that wait asleep: a
 *                    plain mote_fd_close racing with the start of a wait
 *                    is a wait on a closed descriptor (documented), so
 *                    the model checks the socket path.
 *   walive[i]        waiter i's mote__waiter exists (on its stack, from
 *                    mote__waiter_init until mote__fd_wait_until returns);
 *                    pd_signal asserts it before touching the waiter.
 *   wevents[i],      w->events and the wake (the park protocol itself is
 *   woken[i]         checked in park.pml: here "woken since armed").
 *   poller           dispatch() -> pd_signal(pd, d, keep = true): BUSY:
 *                    spin; 0 -> READY; READY stays; a waiter: CAS -> BUSY,
 *                    events++, wake, store 0.
 *   closer           mote_socket_close(): cancelled = 1, then
 *                    mote__fd_abort(): gen++, pd_signal(keep = false)
 *                    (wakes a waiter, keeps no readiness), then CAS
 *                    READY -> 0.
 *   waiter           SOCK_IO's closed check, then
 *                    mote__fd_wait_until(fd, ev, forever, &s->closed): read gen,
 *                    pd_consume (CAS READY -> 0), pd_enlist (CAS 0 -> me;
 *                    READY: consume; another waiter: -EBUSY; BUSY: spin),
 *                    the gen/cancelled re-check after enlisting,
 *                    mote__waiter_wait,
 *                    pd_delist (CAS me -> 0, else spin past BUSY: woken),
 *                    then -EBADF if gen moved or cancelled is set.
 *   edges, delivered ghost: edges counts the poller's edges; delivered is
 *                    the edge count when readiness last reached a waiter
 *                    (its CAS READY -> 0, or the poller's CAS me -> BUSY).
 *
 * Properties:
 *   no use after free   assert(walive[i]) wherever a waiter is touched;
 *   one waiter          a second one gets -EBUSY only while the slot holds
 *                       the first (asserted at that CAS);
 *   READY is sticky     when nothing can move and the fd is open, the last
 *                       edge reached a waiter or still sits in the slot
 *                       (no lost readiness), and no waiter sleeps on it;
 *   close wakes         when nothing can move after a close, no waiter is
 *                       left waiting.
 *
 * Mutants (must fail):
 *   MUTANT_NO_BUSY_SPIN  pd_delist returns at BUSY without waiting: the
 *                        poller wakes a waiter that has returned;
 *   MUTANT_READY_LOST    pd_enlist overwrites READY with the waiter
 *                        (readiness between a failed read and the wait
 *                        is lost);
 *   MUTANT_NO_GEN_CHECK  no gen re-check after enlisting: a close just
 *                        before the waiter enlisted leaves it asleep.
 */

#define FREE   0
#define READY  1
#define BUSY   2
#define W1     3  /* waiter 0's pointer */
#define W2     4  /* waiter 1's pointer */
#define ME(i)  (W1 + (i))

#ifndef EDGES
#define EDGES 2
#endif

/* Results of a wait. */
#define R_NONE   0
#define R_READY  1
#define R_EBUSY  2
#define R_EBADF  3

byte slot = FREE;
byte gen = 0;
bit cancelled = 0;
bit walive[2];
byte wevents[2];
bit woken[2];
bit waiting[2];      /* inside mote__waiter_wait, not yet returned */
byte result[2];
bit wdone[2];
bit closed = 0;
bit closer_done = 0;
bit poller_done = 0;
byte edges = 0;
byte delivered = 0;

/* pd_signal(pd, d, keep) */
inline pd_signal(keep) {
    byte old;
    do
    :: atomic {
        old = slot;
        if
        :: old == BUSY -> skip                                    /* cpu_relax */
        :: old == FREE && keep -> slot = READY; old = 99          /* kept */
        :: old == FREE && !keep -> old = 99
        :: old == READY -> old = 99                               /* stays READY */
        :: old == W1 || old == W2 -> slot = BUSY; delivered = edges   /* CAS -> BUSY */
        fi
       };
       if
       :: old == 99 -> break
       :: old == W1 || old == W2 ->
           atomic { assert(walive[old - W1]); wevents[old - W1]++ };
           atomic { assert(walive[old - W1]); woken[old - W1] = 1 };  /* mote__waiter_wake */
           slot = FREE;
           break
       :: else -> skip
       fi
    od
}

active proctype poller() {
    byte k;
    for (k : 1 .. EDGES) {
        edges++;
        pd_signal(1)
    };
    poller_done = 1
}

active proctype closer() {
    if
    :: skip                                  /* never closes */
    :: cancelled = 1;                        /* atomic_exchange(&s->closed) */
       atomic { gen++; closed = 1 };         /* mote__fd_abort */
       pd_signal(0);
       atomic { if :: slot == READY -> slot = FREE :: else -> skip fi }
    fi;
    closer_done = 1
}

active [2] proctype waiter() {
    byte i = _pid - 2;      /* poller and closer are pids 0 and 1 */
    byte g, e;
    bit got = 0, enlisted = 0;
    if :: cancelled -> result[i] = R_EBADF; goto gone :: else -> skip fi;   /* SOCK_IO */
    atomic { walive[i] = 1; wevents[i] = 0; woken[i] = 0 };   /* mote__waiter_init */
    g = gen;
    atomic { if :: slot == READY -> slot = FREE; got = 1; delivered = edges :: else -> skip fi };  /* pd_consume */
    if
    :: got -> result[i] = R_READY; goto out
    :: else -> skip
    fi;
    do                                                           /* pd_enlist */
    :: atomic {
        e = slot;
        if
        :: e == FREE -> slot = ME(i); enlisted = 1
#ifdef MUTANT_READY_LOST
        :: e == READY -> slot = ME(i); enlisted = 1
#else
        :: e == READY -> slot = FREE; got = 1; delivered = edges
#endif
        :: e == BUSY -> skip
        :: e == W1 || e == W2 -> assert(e != ME(i)); result[i] = R_EBUSY
        fi
       };
       if
       :: enlisted || got || result[i] == R_EBUSY -> break
       :: else -> skip
       fi
    od;
    if
    :: got -> result[i] = R_READY; goto out
    :: result[i] == R_EBUSY -> goto out
    :: else -> skip
    fi;
#ifndef MUTANT_NO_GEN_CHECK
    if
    :: gen != g || cancelled -> goto delist                      /* gone */
    :: else -> skip
    fi;
#endif
    waiting[i] = 1;
    do                                                           /* mote__waiter_wait */
    :: woken[i] = 0;
       if :: wevents[i] > 0 -> break :: else -> skip fi;
end_sleep:                  /* with no edge left to come, sleeping is correct */
       woken[i];
       if :: wevents[i] > 0 -> break :: else -> skip fi
    od;
    waiting[i] = 0;
delist:
    atomic { if :: slot == ME(i) -> slot = FREE :: else -> got = 1 fi };   /* pd_delist */
#ifndef MUTANT_NO_BUSY_SPIN
    if :: got -> (slot != BUSY) :: else -> skip fi;
#endif
    if
    :: gen != g || cancelled -> result[i] = R_EBADF
    :: else -> result[i] = (got -> R_READY : R_NONE)
    fi;
out:
    walive[i] = 0;
gone:
    wdone[i] = 1
}

/* Once nothing can move. */
active proctype checker() {
    timeout ->
    assert(poller_done && closer_done);
    assert(!(waiting[0] && wevents[0] > 0) && !(waiting[1] && wevents[1] > 0));  /* woken, not run */
    if
    :: closed -> assert(!waiting[0] && !waiting[1])              /* close wakes every waiter */
    :: else ->
        assert(edges == 0 || slot == READY || delivered == edges);   /* no lost readiness */
        assert(!(slot == READY && (waiting[0] || waiting[1])))
    fi
}
