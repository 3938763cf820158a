/* mote_dump: every process's state, mailbox and, when suspended, where it
 * waits; on a signal; while everything keeps running. */
#include "helpers.h"

#include <fcntl.h>

static atomic_int waiting; /* processes about to wait */
static mote_proc *gatekeeper; /* answers gated calls */
static t_gate gate;
static t_gate blocker_gate;
static int pipe_fds[2];
static char *dump_text; /* the last dump main took, for the test body */
static uint64_t ids[8];
enum { ALPHA, BETA, FDW, CALLER, AWAITER, BLOCKER, IDLER, GATEKEEPER };

/* noinline, and work after the call whose result the caller uses: each
 * keeps its own frame (no inlining, no tail call). */
__attribute__((noinline)) static int wait_here_receive(void) {
    atomic_fetch_add(&waiting, 1);
    mote_msg *m = NULL;
    int r = mote_receive(&m, MOTE_SEC(3600));
    mote_msg_free(m);
    return r + 1;
}

__attribute__((noinline)) static int wait_here_sleep(void) {
    atomic_fetch_add(&waiting, 1);
    return mote_sleep(MOTE_SEC(3600)) + 1;
}

__attribute__((noinline)) static int wait_here_fd(void) {
    atomic_fetch_add(&waiting, 1);
    return mote_fd_wait(pipe_fds[0], MOTE_READABLE, MOTE_SEC(3600)) + 1;
}

__attribute__((noinline)) static int wait_here_call(void) {
    atomic_fetch_add(&waiting, 1);
    t_gated g = {&gate, 5};
    mote_result r;
    return mote_call(gatekeeper, t_h_gated, &g, sizeof g, &r) + (int)r.i;
}

__attribute__((noinline)) static int wait_here_await(void) {
    atomic_fetch_add(&waiting, 1);
    mote_future *f = t_async_gated(gatekeeper, &gate, 6);
    mote_result r;
    return mote_await(f, &r) + (int)r.i;
}

static void named(const char *name, int slot) {
    mote_proc_set_name(mote_self(), name);
    ids[slot] = mote_proc_id(mote_self());
}

static void fn_alpha(void *arg) {
    (void)arg;
    named("alpha", ALPHA);
    T_CHECK_EQ(wait_here_receive(), 1);
}

static void fn_beta(void *arg) {
    (void)arg;
    named("beta", BETA);
    T_CHECK_EQ(wait_here_sleep(), 1);
}

static void fn_fdw(void *arg) {
    (void)arg;
    named("fd-waiter", FDW);
    T_CHECK_EQ(wait_here_fd(), -EBADF + 1);
}

static void fn_caller(void *arg) {
    (void)arg;
    named("caller", CALLER);
    T_CHECK_EQ(wait_here_call(), 5);
}

static void fn_awaiter(void *arg) {
    (void)arg;
    named("awaiter", AWAITER);
    T_CHECK_EQ(wait_here_await(), 6);
}

static mote_result h_block(void *state, void *arg) {
    (void)state;
    (void)arg;
    mote_proc_set_name(mote_self(), "blocker");
    ids[BLOCKER] = mote_proc_id(mote_self());
    mote_blocking_begin();
    atomic_fetch_add(&waiting, 1);
    while (!atomic_load(&blocker_gate.open))
        usleep(1000);
    mote_blocking_end();
    return mote_ok_i(0);
}

static char *take_dump(void) {
    FILE *f = tmpfile();
    T_CHECK(f != NULL);
    if (!f)
        return strdup("");
    T_CHECK_EQ(mote_dump(fileno(f)), 0);
    long len = lseek(fileno(f), 0, SEEK_END);
    char *text = calloc(1, (size_t)(len > 0 ? len : 0) + 1);
    if (len > 0 && pread(fileno(f), text, (size_t)len, 0) != len)
        T_CHECK(!"short read of the dump");
    fclose(f);
    return text;
}

/* The dump's paragraph about process id (up to the blank line after it). */
static char *paragraph(const char *text, uint64_t id) {
    char head[48];
    snprintf(head, sizeof head, "\nprocess %llu", (unsigned long long)id);
    for (const char *p = strstr(text, head); p; p = strstr(p + 1, head)) {
        char c = p[strlen(head)];
        if (c != ' ' && c != ':')
            continue; /* a longer id */
        p++;
        const char *end = strstr(p, "\n\n");
        return strndup(p, end ? (size_t)(end - p) : strlen(p));
    }
    return strdup("");
}

static bool all_suspended(const char *text) {
    int slots[] = {ALPHA, BETA, FDW, CALLER, AWAITER};
    for (size_t i = 0; i < sizeof slots / sizeof *slots; i++) {
        char *para = paragraph(text, ids[slots[i]]);
        bool ok = strstr(para, ": suspended ") != NULL;
        free(para);
        if (!ok)
            return false;
    }
    return strstr(text, "in a blocking section") != NULL;
}

static int main_dump(void *arg) {
    (void)arg;
    mote_proc_set_name(mote_self(), "main");
    T_CHECK_EQ(pipe2(pipe_fds, O_NONBLOCK | O_CLOEXEC), 0);
    gatekeeper = t_spawn_counter(0);
    mote_proc_set_name(gatekeeper, "gatekeeper");
    ids[GATEKEEPER] = mote_proc_id(gatekeeper);
    mote_proc *p[6], *idler = t_spawn_counter(0);
    ids[IDLER] = mote_proc_id(idler);
    mote_proc_fn fns[] = {fn_alpha, fn_beta, fn_fdw, fn_caller, fn_awaiter};
    for (int i = 0; i < 5; i++)
        T_CHECK_EQ(mote_spawn_fn(&p[i], fns[i], NULL, 0), 0);
    T_CHECK_EQ(mote_spawn(&p[5], NULL, 0, NULL), 0);
    T_CHECK_EQ(mote_cast(p[5], h_block, NULL, 0), 0);
    t_wait_at_least(&waiting, 6);
    /* The caller is suspended in its call: messages to it queue up. */
    for (int i = 0; i < 3; i++)
        T_CHECK_EQ(mote_cast(p[3], t_h_echo, &(int64_t){i}, sizeof(int64_t)), 0);
    /* "About to wait" is not "suspended": dump until all are. */
    for (int tries = 0; tries < 3000; tries++) {
        free(dump_text);
        dump_text = take_dump();
        if (all_suspended(dump_text))
            break;
        mote_sleep(MOTE_MSEC(10));
    }
    /* Let everything finish. */
    t_gate_open(&blocker_gate);
    t_gate_open(&gate);
    T_CHECK_EQ(mote_send(p[0], "x", 1), 0);
    T_CHECK_EQ(mote_fd_close(pipe_fds[0]), 0);
    close(pipe_fds[1]);
    for (int i = 0; i < 6; i++)
        mote_proc_release(p[i]);
    mote_proc_release(idler);
    mote_proc_release(gatekeeper);
    return 0;
}

static void assert_para(uint64_t id, const char *a, const char *b) {
    char *para = paragraph(dump_text, id);
    cr_assert(strstr(para, a) && (!b || strstr(para, b)), "process %llu: want \"%s\" and \"%s\" in:\n%s\n\nwhole dump:\n%s",
              (unsigned long long)id, a, b ? b : "", para, dump_text);
    free(para);
}

Test(dump, states_wait_reasons_mailboxes_and_backtraces) {
    T_RUN_OK(NULL, main_dump, NULL);
    cr_assert(strstr(dump_text, "mote dump (pid ") && strstr(dump_text, "end of mote dump"), "%s", dump_text);
    cr_assert(all_suspended(dump_text), "never saw them all suspended:\n%s", dump_text);
    /* Who and what. */
    assert_para(1, "process 1 (main): running on the main thread", NULL);
    assert_para(ids[ALPHA], "(alpha): suspended in receive, ", " left, mailbox 0, age ");
    assert_para(ids[BETA], "(beta): suspended in sleep, ", " left");
    char want[64];
    snprintf(want, sizeof want, "waiting for fd %d to be readable", pipe_fds[0]);
    assert_para(ids[FDW], "(fd-waiter): suspended ", want);
    snprintf(want, sizeof want, "in a call to process %llu", (unsigned long long)ids[GATEKEEPER]);
    assert_para(ids[CALLER], want, "mailbox 3,");
    assert_para(ids[AWAITER], "(awaiter): suspended in await of future 0x", NULL);
    assert_para(ids[BLOCKER], "(blocker): in a blocking section on ", "worker ");
    assert_para(ids[IDLER], ": idle, mailbox 0", NULL);
    cr_assert(strstr(dump_text, "in a blocking section, process ") && strstr(dump_text, "(blocker)"), "%s",
              dump_text);
    /* Where each suspended one waits: its own function on the way. */
    assert_para(ids[ALPHA], "in wait_here_receive", "in fn_alpha");
    assert_para(ids[BETA], "in wait_here_sleep", "in mote_sleep");
    assert_para(ids[FDW], "in wait_here_fd", NULL);
    assert_para(ids[CALLER], "in wait_here_call", "in mote_call");
    assert_para(ids[AWAITER], "in wait_here_await", "in mote_await");
#ifdef T_HAVE_LIBDW
    assert_para(ids[ALPHA], "in wait_here_receive at ", "test-dump.c:");
#endif
    free(dump_text);
    dump_text = NULL;
}

/* ---- Errors ---- */

static int main_errors(void *arg) {
    (void)arg;
    T_CHECK_EQ(mote_dump(-1), -EBADF);
    T_CHECK_EQ(mote_dump_on_signal(SIGKILL), -EINVAL);
    T_CHECK_EQ(mote_dump_on_signal(SIGSEGV), -EINVAL);
    T_CHECK_EQ(mote_dump_on_signal(-1), -EINVAL);
    T_CHECK_EQ(mote_dump_on_signal(0), 0);
    return 0;
}

Test(dump, errors) {
    cr_assert_eq(mote_dump(2), -ESHUTDOWN);
    cr_assert_eq(mote_dump_on_signal(SIGQUIT), -ESHUTDOWN);
    T_RUN_OK(NULL, main_errors, NULL);
    cr_assert_eq(mote_dump(2), -ESHUTDOWN);
}

/* ---- On a signal (in a child: the dump goes to its stderr) ---- */

/* Wait until the child's stderr (a file) holds a whole dump. */
static bool stderr_has_dump(int count) {
    for (int i = 0; i < 3000; i++) {
        char buf[65536];
        ssize_t n = pread(2, buf, sizeof buf - 1, 0);
        buf[n > 0 ? n : 0] = '\0';
        int seen = 0;
        for (char *p = strstr(buf, "end of mote dump"); p; p = strstr(p + 1, "end of mote dump"))
            seen++;
        if (seen >= count)
            return true;
        mote_sleep(MOTE_MSEC(10));
    }
    return false;
}

static int main_env_signal(void *arg) {
    (void)arg;
    raise(SIGQUIT); /* MOTE_DUMP_SIGNAL=1: a dump, and the program carries on */
    if (!stderr_has_dump(1))
        return 4;
    printf("still here\n");
    return 0;
}

static void child_env_signal(void *arg) {
    setenv("MOTE_DUMP_SIGNAL", "1", 1);
    t_child_mote(arg);
}

Test(dump, env_signal_prints_and_carries_on) {
    t_run_spec spec = {NULL, main_env_signal, NULL};
    t_child c;
    t_child_run(&c, child_env_signal, &spec);
    T_ASSERT_EXITED(&c, 0);
    T_ASSERT_CONTAINS(c.out, "still here");
    T_ASSERT_CONTAINS(c.err, "mote dump (pid ");
    T_ASSERT_CONTAINS(c.err, "\nprocess 1: ");
    t_child_free(&c);
}

static int main_api_signal(void *arg) {
    (void)arg;
    if (mote_dump_on_signal(SIGUSR1) != 0)
        return 4;
    kill(getpid(), SIGUSR1);
    if (!stderr_has_dump(1))
        return 5;
    /* Off: the earlier disposition (ignore) is back. */
    if (mote_dump_on_signal(0) != 0)
        return 6;
    struct sigaction sa;
    sigaction(SIGUSR1, NULL, &sa);
    if (sa.sa_handler != SIG_IGN)
        return 7;
    kill(getpid(), SIGUSR1); /* ignored: no second dump, no death */
    /* On again, and left on: shutdown restores it. */
    if (mote_dump_on_signal(SIGUSR1) != 0)
        return 8;
    kill(getpid(), SIGUSR1);
    if (!stderr_has_dump(2))
        return 9;
    return 0;
}

static void child_api_signal(void *arg) {
    signal(SIGUSR1, SIG_IGN);
    t_run_spec *spec = arg;
    int rc = mote_run(spec->cfg, spec->main, spec->arg);
    struct sigaction sa;
    sigaction(SIGUSR1, NULL, &sa);
    printf("mote_run: %d, restored: %d\n", rc, sa.sa_handler == SIG_IGN);
    exit(rc);
}

Test(dump, api_signal_on_off_and_restored) {
    t_run_spec spec = {NULL, main_api_signal, NULL};
    t_child c;
    t_child_run(&c, child_api_signal, &spec);
    T_ASSERT_EXITED(&c, 0);
    T_ASSERT_CONTAINS(c.out, "mote_run: 0, restored: 1");
    t_child_free(&c);
}

/* ---- While everything runs: dumps race with parks, wakes, spawns and
 * ends; none may crash or report nonsense (run under the sanitizers). */

static mote_result h_pong(void *state, void *arg) {
    (void)state;
    (void)arg;
    return mote_ok_i(1);
}

static void fn_pinger(void *arg) {
    mote_proc *peer = *(mote_proc **)arg;
    for (int i = 0; i < T_SCALE(20000, 2000); i++) {
        mote_result r;
        T_CHECK_EQ(mote_call(peer, h_pong, NULL, 0, &r), 0);
        if (i % 64 == 0)
            mote_sleep(MOTE_USEC(50));
    }
}

static void fn_short(void *arg) {
    (void)arg;
    mote_proc_set_name(mote_self(), "short-lived");
    mote_yield();
}

static int main_stress(void *arg) {
    (void)arg;
    int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    mote_proc *peers[8], *pingers[8];
    for (int i = 0; i < 8; i++) {
        peers[i] = t_spawn_counter(0);
        T_CHECK_EQ(mote_spawn_fn(&pingers[i], fn_pinger, &peers[i], sizeof peers[i]), 0);
    }
    for (int round = 0; round < T_SCALE(40, 10); round++) {
        for (int k = 0; k < 50; k++)
            T_CHECK_EQ(mote_spawn_fn(NULL, fn_short, NULL, 0), 0);
        T_CHECK_EQ(mote_dump(fd), 0);
    }
    close(fd);
    for (int i = 0; i < 8; i++) {
        mote_result r;
        T_CHECK_EQ(mote_call(pingers[i], h_pong, NULL, 0, &r), 0); /* after fn */
        mote_proc_release(pingers[i]);
        mote_proc_release(peers[i]);
    }
    return 0;
}

Test(dump, races_with_a_busy_program) { T_RUN_OK(NULL, main_stress, NULL); }
