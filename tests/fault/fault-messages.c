/* Messages under faults: casts with exact counts from several senders,
 * calls, and a receive loop; every send that succeeded must arrive. */
#include "common.h"

enum { COUNTERS = 3, SENDERS = 3, CASTS = 40, DATA = 60 };

static mote_proc *counters[COUNTERS];
static atomic_int sent[COUNTERS], senders_done, received, receiver_up;

static mote_result h_add(void *state, void *arg) {
    *(int64_t *)state += *(int64_t *)arg;
    return mote_ok_i(0);
}

static mote_result h_get(void *state, void *arg) {
    (void)arg;
    return mote_ok_i(*(int64_t *)state);
}

static mote_result h_received(void *state, void *arg) {
    (void)state;
    (void)arg;
    return mote_ok_i(atomic_load(&received));
}

static void sender(void *arg) {
    (void)arg;
    int64_t one = 1;
    for (int k = 0; k < CASTS; k++)
        for (int i = 0; i < COUNTERS; i++)
            if (counters[i] && f_err("mote_cast", mote_cast(counters[i], h_add, &one, sizeof one)) == 0)
                atomic_fetch_add(&sent[i], 1);
    atomic_fetch_add(&senders_done, 1);
}

static void receiver(void *arg) {
    (void)arg;
    atomic_store(&receiver_up, 1);
    for (;;) {
        mote_msg *m;
        int r = mote_receive(&m, MOTE_FOREVER);
        if (r == -ECANCELED)
            return; /* shutdown cancels it: its normal end */
        if (f_err("mote_receive", r) < 0)
            return;
        F_CHECK(mote_msg_size(m) == sizeof(int) && *(const int *)mote_msg_data(m) == atomic_load(&received),
                "message %d out of order", atomic_load(&received));
        atomic_fetch_add(&received, 1);
        mote_msg_free(m);
    }
}

static int main_fn(void *arg) {
    (void)arg;
    for (int i = 0; i < COUNTERS; i++)
        f_err("mote_spawn", mote_spawn(&counters[i], NULL, sizeof(int64_t), NULL));
    int started = 0;
    for (int s = 0; s < SENDERS; s++)
        started += f_err("mote_spawn_fn", mote_spawn_fn(NULL, sender, NULL, 0)) == 0;
    F_CHECK(f_wait_for(&senders_done, started), "%d of %d senders finished", atomic_load(&senders_done), started);
    for (int i = 0; i < COUNTERS; i++) {
        if (!counters[i])
            continue;
        mote_result r;
        if (f_err("mote_call", mote_call(counters[i], h_get, NULL, 0, &r)) == 0)
            F_CHECK(r.i == atomic_load(&sent[i]), "counter %d: %lld of %d casts", i, (long long)r.i,
                    atomic_load(&sent[i]));
        mote_proc_release(counters[i]);
    }
    /* Data messages, numbered: the receiver sees each one that was sent,
     * in order (a failed send is not retried, so numbers stay dense). */
    mote_proc *rp = NULL;
    if (f_err("mote_spawn_fn", mote_spawn_fn(&rp, receiver, NULL, 0)) == 0) {
        f_wait_for(&receiver_up, 1);
        int n = 0;
        for (int k = 0; k < DATA; k++)
            if (f_err("mote_send", mote_send(rp, &n, sizeof n)) == 0)
                n++;
        mote_result r;
        if (f_err("mote_call", mote_call(rp, h_received, NULL, 0, &r)) == 0)
            F_CHECK(r.i == n, "receiver got %lld of %d", (long long)r.i, n);
        mote_proc_release(rp);
    }
    return 0;
}

int main(void) {
    return f_run("fault-messages", main_fn);
}
