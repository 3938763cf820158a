/* Tracing: a program traced with mote_trace_start / MOTE_TRACE writes a
 * Chrome trace event file whose events say what happened (checked with
 * python3's json module: turns named after processes, how they ended,
 * wake-ups with arrows to the turns they caused, spawns, a blocking
 * section). */
#include "helpers.h"

#include <fcntl.h>

/* The checker: argv[1] the file, then pinger's, ponger's and blocker's ids
 * and the number of calls. Prints "OK" or what is wrong. */
static const char *const checker =
    "import json, sys\n"
    "from collections import defaultdict\n"
    "path, ping, pong, blocker, calls = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])\n"
    "errors = []\n"
    "def need(cond, what):\n"
    "    if not cond: errors.append(what)\n"
    "doc = json.load(open(path))\n"
    "ev = doc['traceEvents']\n"
    "threads = {e['tid']: e['args']['name'] for e in ev if e['ph'] == 'M' and e['name'] == 'thread_name'}\n"
    "need(any(n.startswith('worker ') for n in threads.values()), 'no track for a worker: %s' % threads)\n"
    "need('main thread' in threads.values(), 'no track for the main thread')\n"
    "turns = [e for e in ev if e['ph'] == 'X' and e.get('cat') == 'turn']\n"
    "for e in ev:\n"
    "    if e['ph'] in 'Xisf': need(e['tid'] in threads, 'event on an unnamed thread: %s' % e)\n"
    "    if e['ph'] == 'X': need(e['dur'] >= 0 and e['ts'] >= 0, 'bad slice %s' % e)\n"
    "pings = [e for e in turns if e['name'] == 'process %d (pinger)' % ping]\n"
    "pongs = [e for e in turns if e['name'] == 'process %d (ponger)' % pong]\n"
    "# a turn may run two calls: the next can arrive before it ends\n"
    "need(len(pongs) >= calls // 2, 'ponger ran %d turns, want %d' % (len(pongs), calls // 2))\n"
    "need(all(e['args']['ended'] == 'done' and e['args']['process'] == pong for e in pongs), 'ponger turns: %s' % pongs[:3])\n"
    "need(sum(1 for e in pings if e['args']['ended'] == 'suspended in call') >= calls // 2, 'pinger not suspended in its calls: %s' % pings[:3])\n"
    "need(any(e['args']['ended'] == 'suspended in sleep' for e in pings), 'pinger never slept')\n"
    "need(any(e['ph'] == 'X' and e['name'] == 'blocking section' and e['args']['process'] == blocker for e in ev), 'no blocking section')\n"
    "need(any(e['ph'] == 'i' and e['name'] == 'spawn process %d' % ping for e in ev), 'no spawn of pinger')\n"
    "wakes = [e for e in ev if e['ph'] == 'i' and e['name'] == 'wake process %d' % ping]\n"
    "need(sum(1 for w in wakes if w['args']['by'] == pong) >= calls // 2, 'wakes of pinger by ponger: %s' % wakes[:3])\n"
    "need(any(e['ph'] == 'i' and e['name'] == 'message to process %d' % pong for e in ev), 'no message to ponger')\n"
    "starts = {e['id']: e for e in ev if e['ph'] == 's'}\n"
    "ends = [e for e in ev if e['ph'] == 'f']\n"
    "need(len(ends) >= calls // 2, 'only %d arrows' % len(ends))\n"
    "for f in ends:\n"
    "    s = starts.get(f['id'])\n"
    "    need(s is not None and s['ts'] <= f['ts'] + 0.001 and f.get('bp') == 'e', 'arrow end without its start: %s' % f)\n"
    "by_tid = defaultdict(list)\n"
    "for e in turns: by_tid[e['tid']].append(e)\n"
    "for tid, es in by_tid.items():\n"
    "    es.sort(key=lambda e: e['ts'])\n"
    "    for a, b in zip(es, es[1:]):\n"
    "        need(b['ts'] + 0.002 >= a['ts'] + a['dur'], 'turns overlap on one thread: %s %s' % (a, b))\n"
    "print('\\n'.join(errors[:10]) if errors else 'OK')\n";

static char trace_path[64];
static uint64_t id_ping, id_pong, id_block;
enum { CALLS = 200 };

static mote_result h_pong(void *state, void *arg) {
    (void)state;
    (void)arg;
    return mote_ok_i(1);
}

static void fn_pinger(void *arg) {
    mote_proc *pong = *(mote_proc **)arg;
    mote_proc_set_name(mote_self(), "pinger");
    for (int i = 0; i < CALLS; i++) {
        T_CHECK_EQ(mote_call(pong, h_pong, NULL, 0, NULL), 0);
        if (i % 50 == 0)
            mote_sleep(MOTE_USEC(200));
    }
}

static mote_result h_block(void *state, void *arg) {
    (void)state;
    (void)arg;
    mote_blocking_begin();
    usleep(2000);
    mote_blocking_end();
    return mote_ok_i(0);
}

static int main_traced(void *arg) {
    bool start = arg != NULL;
    if (start) {
        T_CHECK_EQ(mote_trace_start(trace_path), 0);
        T_CHECK_EQ(mote_trace_start(trace_path), -EBUSY);
    }
    mote_proc *pong, *ping, *block;
    T_CHECK_EQ(mote_spawn(&pong, NULL, 8, NULL), 0);
    T_CHECK_EQ(mote_proc_set_name(pong, "ponger"), 0);
    T_CHECK_EQ(mote_spawn_fn(&ping, fn_pinger, &pong, sizeof pong), 0);
    T_CHECK_EQ(mote_spawn(&block, NULL, 8, NULL), 0);
    T_CHECK_EQ(mote_call(block, h_block, NULL, 0, NULL), 0);
    T_CHECK_EQ(mote_call(ping, h_pong, NULL, 0, NULL), 0); /* after its function */
    id_ping = mote_proc_id(ping);
    id_pong = mote_proc_id(pong);
    id_block = mote_proc_id(block);
    mote_proc_release(ping);
    mote_proc_release(pong);
    mote_proc_release(block);
    if (start) {
        T_CHECK_EQ(mote_trace_stop(), 0);
        T_CHECK_EQ(mote_trace_stop(), -EINVAL);
    }
    return 0;
}

static void skip_without_python(void) {
    if (system("command -v python3 >/dev/null 2>&1") != 0)
        cr_skip_test("python3 is not installed: the trace is not checked");
}

static void check_trace(const char *path) {
    char script[] = "/tmp/mote-trace-check-XXXXXX";
    int fd = mkstemp(script);
    cr_assert(fd >= 0);
    cr_assert(write(fd, checker, strlen(checker)) == (ssize_t)strlen(checker));
    close(fd);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "python3 %s %s %llu %llu %llu %d 2>&1", script, path, (unsigned long long)id_ping,
             (unsigned long long)id_pong, (unsigned long long)id_block, CALLS);
    FILE *p = popen(cmd, "r");
    cr_assert(p);
    char out[8192] = "";
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    unlink(script);
    cr_assert(st == 0 && strcmp(out, "OK\n") == 0, "trace %s:\n%s", path, out);
}

Test(trace, started_and_stopped_by_calls) {
    skip_without_python();
    snprintf(trace_path, sizeof trace_path, "/tmp/mote-trace-%d.json", (int)getpid());
    T_RUN_OK(NULL, main_traced, (void *)1);
    check_trace(trace_path);
    unlink(trace_path);
}

static void child_env(void *arg) {
    setenv("MOTE_TRACE", trace_path, 1);
    t_child_mote(arg);
}

Test(trace, env_written_at_shutdown) {
    skip_without_python();
    snprintf(trace_path, sizeof trace_path, "/tmp/mote-trace-env-%d.json", (int)getpid());
    t_run_spec spec = {NULL, main_traced, NULL};
    t_child c;
    /* The ids: the child's are the same (a fresh runtime, the same order). */
    id_ping = 3;
    id_pong = 2;
    id_block = 4;
    t_child_run(&c, child_env, &spec);
    T_ASSERT_EXITED(&c, 0);
    t_child_free(&c);
    check_trace(trace_path);
    unlink(trace_path);
}

static int main_errors(void *arg) {
    (void)arg;
    T_CHECK_EQ(mote_trace_stop(), -EINVAL);
    T_CHECK_EQ(mote_trace_start(NULL), -EINVAL);
    T_CHECK_EQ(mote_trace_start(""), -EINVAL);
    T_CHECK_EQ(mote_trace_start("/nonexistent-dir/x.json"), -ENOENT);
    /* A trace can run twice in one runtime. */
    char path[64];
    snprintf(path, sizeof path, "/tmp/mote-trace-twice-%d.json", (int)getpid());
    for (int i = 0; i < 2; i++) {
        T_CHECK_EQ(mote_trace_start(path), 0);
        mote_yield();
        T_CHECK_EQ(mote_trace_stop(), 0);
    }
    unlink(path);
    return 0;
}

Test(trace, errors) {
    cr_assert_eq(mote_trace_start("/tmp/x.json"), -ESHUTDOWN);
    T_RUN_OK(NULL, main_errors, NULL);
}

/* Stopping while every thread records: no event is torn, no crash (run
 * under the sanitizers). */
static atomic_int stop_spinning;

static void fn_spinner(void *arg) {
    (void)arg;
    mote_proc *self = mote_self();
    (void)self;
    while (!atomic_load(&stop_spinning))
        mote_yield();
}

static int main_stop_under_load(void *arg) {
    (void)arg;
    char path[64];
    snprintf(path, sizeof path, "/tmp/mote-trace-load-%d.json", (int)getpid());
    mote_proc *s[4];
    for (int i = 0; i < 4; i++)
        T_CHECK_EQ(mote_spawn_fn(&s[i], fn_spinner, NULL, 0), 0);
    for (int round = 0; round < T_SCALE(20, 5); round++) {
        T_CHECK_EQ(mote_trace_start(path), 0);
        mote_sleep(MOTE_MSEC(2));
        T_CHECK_EQ(mote_trace_stop(), 0);
    }
    atomic_store(&stop_spinning, 1);
    for (int i = 0; i < 4; i++)
        mote_proc_release(s[i]);
    unlink(path);
    return 0;
}

Test(trace, stop_while_threads_record) { T_RUN_OK(NULL, main_stop_under_load, NULL); }
