/*
 * skynet: 1M leaf processes in a 10-ary tree (1,111,111 processes in all)
 * sum their ordinals 0..999999. No process holds a stack while it waits: a
 * node receives a compute cast, spawns its 10 children and casts each a
 * compute message; every child casts its sum to its parent, which counts 10
 * replies and casts its own sum up. The root sends the total to main as a
 * data message.
 */
#include "bench.h"

enum { DIV = 10, LEAVES = 1000000 };
#define SKYNET_SUM INT64_C(499999500000)

typedef struct node {
    mote_proc *parent; /* owned reference, dropped once the sum is sent */
    int64_t sum;
    int replies;
    bool root; /* the parent is main: report with a data message */
} node;

typedef struct compute_msg {
    int64_t num;  /* first ordinal of the subtree */
    int64_t size; /* leaves in the subtree */
    mote_proc *parent;
    bool root;
} compute_msg;

static mote_result on_child_sum(void *state, void *arg);

static void report(node *n, int64_t sum) {
    if (n->root)
        bench_ok(mote_send(n->parent, &sum, sizeof sum), "mote_send");
    else
        bench_ok(mote_cast(n->parent, on_child_sum, &sum, sizeof sum), "mote_cast");
    mote_proc_release(n->parent);
    n->parent = NULL;
}

static mote_result on_child_sum(void *state, void *arg) {
    node *n = state;
    n->sum += *(const int64_t *)arg;
    if (++n->replies == DIV)
        report(n, n->sum);
    return mote_ok_i(0);
}

static mote_result on_compute(void *state, void *arg) {
    node *n = state;
    const compute_msg *m = arg;
    n->parent = m->parent;
    n->root = m->root;
    if (m->size == 1) {
        report(n, m->num);
        return mote_ok_i(0);
    }
    int64_t sub = m->size / DIV;
    for (int i = 0; i < DIV; i++) {
        compute_msg c = {m->num + i * sub, sub, mote_proc_ref(mote_self()), false};
        bench_spawn_cast(NULL, sizeof(node), on_compute, &c, sizeof c);
    }
    return mote_ok_i(0);
}

static int skynet_main(void *arg) {
    (void)arg;
    int64_t t0 = mote_now();
    compute_msg root = {0, LEAVES, mote_proc_ref(mote_self()), true};
    bench_spawn_cast(NULL, sizeof(node), on_compute, &root, sizeof root);
    int64_t sum = bench_receive_i64();
    double ms = (double)(mote_now() - t0) / 1e6;
    if (!bench_check("skynet_sum", sum, SKYNET_SUM))
        return 1;
    bench_result("skynet", "ms", ms);
    return 0;
}

int main(void) { return bench_run(NULL, skynet_main); }
