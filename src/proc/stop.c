/*
 * stop.c -- the processes' side of shutdown: what happens between main
 * returning and the scheduler stopping (runtime.c calls it in between).
 *
 *   1. After mote_stop only: a grace period in which the other processes
 *      may end by themselves; it ends early when every process has ended
 *      or is idle (no message, no wait).
 *   2. Spawning is closed and every process is cancelled (reason
 *      MOTE_EXIT_SHUTDOWN): its waits return -ECANCELED, so it unwinds
 *      through its own code and releases what it holds.
 *   3. Wait until every process is dead and idle (its end ran, its turn
 *      is over, its stack is back), at most the grace again. Whatever
 *      still runs is abandoned: the scheduler stops its worker at its next
 *      switch and the reaper discards its stack.
 *
 * Both waits scan the registry (there is no counter on any hot path): a
 * process reads as done from its flags and its task state word alone.
 */
#include "proc/proc.h"

#include <time.h>

static bool ended_or_idle(mote_proc *p) {
    return (atomic_load(&p->flags) & (MOTE__P_ENDED | MOTE__P_DAEMON)) ||
           MOTE__ST(atomic_load(&p->task.state)) == MOTE__IDLE;
}

static bool dead_and_idle(mote_proc *p) {
    return (atomic_load(&p->flags) & MOTE__P_DEAD) &&
           MOTE__ST(atomic_load(&p->task.state)) == MOTE__IDLE;
}

/* Poll pred over every process until it holds or the grace is over; the
 * pause grows from 50 us to 1 ms (this runs on the main thread, which is
 * no process any more). */
static void wait_for(bool (*pred)(mote_proc *p), int64_t grace) {
    int64_t deadline = mote__now() + grace, pause = MOTE_USEC(50);
    while (!mote__proc_all(pred) && mote__now() < deadline) {
        struct timespec ts = {0, (long)pause};
        nanosleep(&ts, NULL);
        pause = pause * 2 > MOTE_MSEC(1) ? MOTE_MSEC(1) : pause * 2;
    }
}

static void cancel_one(mote_proc *p, void *ctx) {
    (void)ctx;
    if (!(p->task.flags & MOTE__TASK_MAIN))
        mote__proc_cancel(p, MOTE__CANCEL_SHUTDOWN);
}

void mote__proc_shutdown(bool graceful, int64_t grace) {
    if (graceful)
        wait_for(ended_or_idle, grace);
    mote__proc_close_spawning(true);
    mote__proc_each(cancel_one, NULL);
    wait_for(dead_and_idle, grace);
}
