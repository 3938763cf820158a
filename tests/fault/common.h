/*
 * common.h -- what the fault programs share. Each program runs a small
 * workload and exits:
 *   0  completed: prints "ok"
 *   1  a mote call reported an error (the injected ENOMEM, ECONNRESET, ...):
 *      prints "<program>: <call>: <error>" for the first one, and every
 *      check on what did succeed still held
 *   2  a check failed: a message lost, a count or a byte wrong, a wait that
 *      never ended (prints "<program>: LOST: ...")
 * Failed calls never end the workload early: it carries on, so that every
 * message whose send succeeded is still checked.
 */
#ifndef FAULT_COMMON_H
#define FAULT_COMMON_H

#include <errno.h>
#include <mote.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *f_name;
static atomic_int f_errors, f_lost;
static char f_first[256];
static atomic_flag f_first_set = ATOMIC_FLAG_INIT;

/* A mote call returned r < 0: note it (the first one is printed). */
static inline int f_err(const char *what, int r) {
    if (r >= 0)
        return r;
    atomic_fetch_add(&f_errors, 1);
    if (!atomic_flag_test_and_set(&f_first_set))
        snprintf(f_first, sizeof f_first, "%s: %s: %s", f_name, what, mote_strerror(r));
    return r;
}

/* A check that must hold whatever failed. */
#define F_CHECK(cond, ...)                                                                         \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s: LOST: %s: ", f_name, #cond);                                     \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            atomic_fetch_add(&f_lost, 1);                                                          \
        }                                                                                          \
    } while (0)

/* Wait (in a process) until *v reaches want; false after 20 s. */
static inline bool f_wait_for(atomic_int *v, int want) {
    int64_t deadline = mote_now() + MOTE_SEC(20);
    while (atomic_load(v) < want) {
        if (mote_now() > deadline)
            return false;
        mote_sleep(MOTE_MSEC(1));
    }
    return true;
}

/* Run main_fn under mote_run and exit as described above. */
static inline int f_run(const char *name, mote_main_fn main_fn) {
    f_name = name;
    mote_config cfg = {.threads = 2};
    int r = mote_run(&cfg, main_fn, NULL);
    if (r < 0)
        f_err("mote_run", r);
    if (atomic_load(&f_lost))
        return 2;
    if (atomic_load(&f_errors)) {
        fprintf(stderr, "%s\n", f_first);
        return 1;
    }
    printf("ok\n");
    return 0;
}

#endif
