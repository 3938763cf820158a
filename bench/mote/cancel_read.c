/*
 * cancel_read: how long cancelling a process blocked in a socket read takes
 * until it has ended. A measuring process connects to a loopback listener,
 * starts a reader process on the accepted socket, monitors it, lets it
 * block in mote_socket_read, then times mote_cancel() until the exit
 * notice is in its mailbox (the reader saw -ECANCELED and returned). The
 * socket is the measuring process's, closed after the measurement: a TCP
 * close costs the kernel ~15-20 us here, the same for every runtime, and
 * would hide what cancelling costs. 2000 times; p50, p99 and max in
 * microseconds.
 */
#include "bench.h"

#include <errno.h>

enum { ROUNDS = 2000 };

typedef struct reader_arg {
    mote_socket *s;
    mote_proc *report;
} reader_arg;

static void fn_reader(void *arg) {
    reader_arg a = *(reader_arg *)arg;
    int64_t ready = 1;
    bench_ok(mote_send(a.report, &ready, sizeof ready), "mote_send");
    char buf[256];
    int64_t n = mote_socket_read(a.s, buf, sizeof buf, MOTE_FOREVER);
    if (n != -ECANCELED) {
        fprintf(stderr, "read returned %lld\n", (long long)n);
        exit(1);
    }
}

static mote_result measure(void *state, void *arg) {
    (void)state;
    int64_t *lat = *(int64_t **)arg;
    mote_socket *l;
    bench_ok(mote_tcp_listen(&l, "127.0.0.1:0", 16, false), "listen");
    mote_addr addr;
    char where[64];
    bench_ok(mote_socket_local_addr(l, &addr), "local_addr");
    bench_ok(mote_addr_format(&addr, where, sizeof where), "addr_format");
    int64_t cancelled = 0;
    for (int i = 0; i < ROUNDS; i++) {
        mote_socket *c, *s;
        bench_ok(mote_tcp_connect(&c, where, MOTE_SEC(5)), "connect");
        bench_ok(mote_socket_accept(l, &s, NULL, MOTE_SEC(5)), "accept");
        reader_arg a = {s, mote_self()};
        mote_proc *p;
        uint64_t ref;
        bench_ok(mote_spawn_fn(&p, fn_reader, &a, sizeof a), "spawn");
        bench_ok(mote_monitor(p, &ref), "monitor");
        bench_receive_i64(); /* about to read */
        mote_sleep(MOTE_USEC(200)); /* suspended in the read by now */
        int64_t t0 = mote_now();
        bench_ok(mote_cancel(p), "cancel");
        mote_msg *m;
        bench_ok(mote_receive(&m, MOTE_FOREVER), "receive"); /* no timer, as Go's and tokio's */
        lat[i] = mote_now() - t0;
        mote_exit x;
        cancelled += mote_msg_exit(m, &x) && x.reason == MOTE_EXIT_CANCELLED;
        mote_msg_free(m);
        mote_proc_release(p);
        mote_socket_close(s);
        mote_socket_close(c);
    }
    mote_socket_close(l);
    return mote_ok_i(cancelled);
}

static int cancel_main(void *arg) {
    (void)arg;
    static int64_t lat[ROUNDS];
    mote_proc *p;
    bench_ok(mote_spawn(&p, NULL, 0, NULL), "spawn");
    mote_result r;
    int64_t *latp = lat;
    bench_ok(mote_call(p, measure, &latp, sizeof latp, &r), "call");
    mote_proc_release(p);
    if (!bench_check("cancel_read_cancelled", r.i, ROUNDS))
        return 1;
    /* Latencies, not lateness: bench_lateness reports them the same way
     * (none can be negative). */
    return bench_lateness("cancel_read", lat, ROUNDS) ? 0 : 1;
}

int main(void) { return bench_run(NULL, cancel_main); }
