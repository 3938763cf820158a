/* Metrics: mote_metrics_get counts what happened, the struct's size field
 * keeps old callers working, and the Prometheus text (in process and from
 * examples/metrics_http over HTTP) is well formed, counters growing. */
#include "helpers.h"

#include <fcntl.h>
#include <regex.h>

static mote_metrics get(void) {
    mote_metrics m;
    memset(&m, 0, sizeof m);
    m.size = sizeof m;
    T_CHECK_EQ(mote_metrics_get(&m), 0);
    return m;
}

static mote_result h_one(void *state, void *arg) {
    (void)state;
    (void)arg;
    return mote_ok_i(1);
}

static int pipe_fds[2];

static void fn_fd_waiter(void *arg) {
    (void)arg;
    T_CHECK_EQ(mote_fd_wait(pipe_fds[0], MOTE_READABLE, T_PATIENCE), MOTE_READABLE);
}

static mote_result h_block_until_handoff(void *state, void *arg) {
    (void)state;
    (void)arg;
    /* Blocked far past the threshold: the monitor hands the worker's
     * place to a backup worker. Wait (no timing assertion) until the
     * count says so. */
    mote_blocking_begin();
    int64_t deadline = mote_now() + T_PATIENCE;
    while (get().handoffs == 0 && mote_now() < deadline)
        usleep(1000);
    mote_blocking_end();
    return mote_ok_i(0);
}

static int main_counts(void *arg) {
    (void)arg;
    mote_metrics m0 = get();
    T_CHECK_EQ(m0.version, MOTE_METRICS_VERSION);
    T_CHECK_EQ(m0.size, sizeof m0);
    T_CHECK_EQ(m0.workers, mote_threads());
    T_CHECK(m0.procs_live >= 1); /* main */
    T_CHECK_EQ(m0.procs_live, m0.procs_spawned - m0.procs_finished);

    /* Processes and messages. */
    enum { NPROC = 20, NCALLS = 500 };
    mote_proc *p[NPROC];
    for (int i = 0; i < NPROC; i++)
        T_CHECK_EQ(mote_spawn(&p[i], NULL, 8, NULL), 0);
    for (int k = 0; k < NCALLS; k++)
        T_CHECK_EQ(mote_call(p[k % NPROC], h_one, NULL, 0, NULL), 0);
    mote_metrics m1 = get();
    T_CHECK(m1.procs_spawned >= m0.procs_spawned + NPROC);
    T_CHECK(m1.procs_live >= m0.procs_live + NPROC);
    T_CHECK(m1.msgs_sent >= m0.msgs_sent + NCALLS);
    T_CHECK(m1.msgs_run >= m0.msgs_run + NCALLS);
    T_CHECK(m1.turns >= m0.turns + NCALLS);
    /* main waits in a call unless the answer came first */
    T_CHECK(m1.parks > m0.parks);
    T_CHECK(m1.wakeups > m0.wakeups);
    for (int i = 0; i < NPROC; i++)
        mote_proc_release(p[i]);
    mote_metrics m2 = get();
    T_CHECK(m2.procs_finished >= m1.procs_finished + NPROC);
    T_CHECK_EQ(m2.procs_live, m2.procs_spawned - m2.procs_finished);

    /* Timers. */
    T_CHECK_EQ(mote_sleep(MOTE_MSEC(1)), 0);
    mote_metrics m3 = get();
    T_CHECK(m3.timers_armed >= m2.timers_armed + 1);
    T_CHECK(m3.timers_fired >= m2.timers_fired + 1);

    /* The poller: a process waits on a pipe, a byte arrives. */
    T_CHECK_EQ(pipe2(pipe_fds, O_NONBLOCK | O_CLOEXEC), 0);
    mote_proc *w;
    T_CHECK_EQ(mote_spawn_fn(&w, fn_fd_waiter, NULL, 0), 0);
    mote_sleep(MOTE_MSEC(5));
    T_CHECK_EQ(write(pipe_fds[1], "x", 1), 1);
    T_CHECK_EQ(mote_call(w, h_one, NULL, 0, NULL), 0); /* after fn */
    mote_proc_release(w);
    mote_metrics m4 = get();
    T_CHECK(m4.poll_events >= m3.poll_events + 1);
    mote_fd_close(pipe_fds[0]);
    close(pipe_fds[1]);

    /* Blocking sections and a hand-off to a backup worker. */
    mote_proc *b;
    T_CHECK_EQ(mote_spawn(&b, NULL, 8, NULL), 0);
    T_CHECK_EQ(mote_call(b, h_block_until_handoff, NULL, 0, NULL), 0);
    mote_proc_release(b);
    mote_metrics m5 = get();
    T_CHECK(m5.blocking_sections >= m4.blocking_sections + 1);
    T_CHECK(m5.handoffs >= 1);
    T_CHECK(m5.backup_threads >= 1);

    /* Stacks and busy time. */
    T_CHECK(m5.stacks_mapped >= 1);
    T_CHECK(m5.busy_ns > 0);
    uint64_t busy[64];
    int n = mote_metrics_workers(busy, 64);
    T_CHECK_EQ(n, (int)mote_threads() + 1);
    uint64_t sum = 0;
    for (int i = 0; i < n; i++)
        sum += busy[i];
    T_CHECK(sum > 0);
    T_CHECK(sum <= get().busy_ns); /* read before: never more */

    /* Every counter only grows. */
    const uint64_t *a = &m0.procs_spawned, *z = &m5.procs_spawned;
    for (size_t i = 0; i < 4; i++) /* spawned, finished, sent, run */
        T_CHECK(z[i] >= a[i]);
    return 0;
}

Test(metrics, count_what_happens) { T_RUN_OK(NULL, main_counts, NULL); }

/* ---- The struct's size: old and new callers ---- */

typedef struct newer_metrics { /* what a later header might declare */
    mote_metrics m;
    uint64_t later_field;
} newer_metrics;

static int main_abi(void *arg) {
    (void)arg;
    /* Only the header. */
    struct {
        uint32_t size, version;
        uint64_t after;
    } small = {8, 0, 12345};
    T_CHECK_EQ(mote_metrics_get((mote_metrics *)(void *)&small), 0);
    T_CHECK_EQ(small.version, MOTE_METRICS_VERSION);
    T_CHECK_EQ(small.after, 12345); /* beyond size: untouched */
    /* A newer, bigger struct: the fields this library knows, the rest left. */
    newer_metrics big;
    memset(&big, 0, sizeof big);
    big.m.size = sizeof big;
    big.later_field = 777;
    T_CHECK_EQ(mote_metrics_get(&big.m), 0);
    T_CHECK_EQ(big.later_field, 777);
    T_CHECK(big.m.procs_live >= 1);
    mote_metrics bad = {.size = 4};
    T_CHECK_EQ(mote_metrics_get(&bad), -EINVAL);
    T_CHECK_EQ(mote_metrics_get(NULL), -EINVAL);
    T_CHECK_EQ(mote_metrics_workers(NULL, 3), -EINVAL);
    T_CHECK_EQ(mote_metrics_prometheus(NULL, 5), -EINVAL);
    return 0;
}

Test(metrics, size_field_and_errors) {
    mote_metrics m = {.size = sizeof m};
    cr_assert_eq(mote_metrics_get(&m), -ESHUTDOWN);
    cr_assert_eq(mote_metrics_prometheus(NULL, 0), -ESHUTDOWN);
    uint64_t b[2];
    cr_assert_eq(mote_metrics_workers(b, 2), -ESHUTDOWN);
    T_RUN_OK(NULL, main_abi, NULL);
}

/* ---- The Prometheus text ---- */

typedef struct sample {
    char name[128];   /* with its labels */
    char family[128]; /* the name alone */
    double value;
} sample;

typedef struct families {
    char name[64][128];
    char type[64][16];
    bool help[64];
    int n;
} families;

static int family_of(families *f, const char *name) {
    for (int i = 0; i < f->n; i++)
        if (!strcmp(f->name[i], name))
            return i;
    if (f->n == 64)
        return -1;
    snprintf(f->name[f->n], sizeof f->name[0], "%s", name);
    f->type[f->n][0] = '\0';
    f->help[f->n] = false;
    return f->n++;
}

/* Parse text in the Prometheus text format, strictly enough to catch
 * mistakes: names, HELP and TYPE before a family's samples, counters
 * named *_total, label syntax, numbers. Returns the sample count, or -1
 * with the problem in err. */
static int parse_prometheus(const char *text, sample *out, int max, char *err, size_t errlen) {
    regex_t name_re, sample_re;
    regcomp(&name_re, "^[a-zA-Z_:][a-zA-Z0-9_:]*$", REG_EXTENDED | REG_NOSUB);
    regcomp(&sample_re, "^([a-zA-Z_:][a-zA-Z0-9_:]*)(\\{[a-zA-Z_][a-zA-Z0-9_]*=\"[^\"]*\"(,[a-zA-Z_][a-zA-Z0-9_]*=\"[^\"]*\")*\\})? ([^ ]+)$",
            REG_EXTENDED);
    families f = {.n = 0};
    int n = 0, rc = 0;
    char *copy = strdup(text), *save = NULL;
    if (!*text || text[strlen(text) - 1] != '\n') {
        snprintf(err, errlen, "the text does not end with a newline");
        rc = -1;
    }
    for (char *line = strtok_r(copy, "\n", &save); line && rc == 0; line = strtok_r(NULL, "\n", &save)) {
        char name[128], rest[256];
        if (!strncmp(line, "# HELP ", 7) || !strncmp(line, "# TYPE ", 7)) {
            bool help = line[2] == 'H';
            if (sscanf(line + 7, "%127s %255[^\n]", name, rest) != 2 || regexec(&name_re, name, 0, NULL, 0)) {
                snprintf(err, errlen, "bad line: %s", line);
                rc = -1;
                break;
            }
            int i = family_of(&f, name);
            if (help) {
                f.help[i] = true;
            } else if (strcmp(rest, "counter") && strcmp(rest, "gauge")) {
                snprintf(err, errlen, "unknown type: %s", line);
                rc = -1;
            } else {
                snprintf(f.type[i], sizeof f.type[0], "%.15s", rest);
                if (!strcmp(rest, "counter") && (strlen(name) < 6 || strcmp(name + strlen(name) - 6, "_total"))) {
                    snprintf(err, errlen, "counter not named *_total: %s", name);
                    rc = -1;
                }
            }
            continue;
        }
        if (line[0] == '#')
            continue;
        regmatch_t mt[5];
        if (regexec(&sample_re, line, 5, mt, 0)) {
            snprintf(err, errlen, "bad sample line: %s", line);
            rc = -1;
            break;
        }
        snprintf(name, sizeof name, "%.*s", (int)(mt[1].rm_eo - mt[1].rm_so), line + mt[1].rm_so);
        int i = family_of(&f, name);
        if (i < 0 || !f.help[i] || !f.type[i][0]) {
            snprintf(err, errlen, "sample before its HELP and TYPE: %s", line);
            rc = -1;
            break;
        }
        char *end;
        double v = strtod(line + mt[4].rm_so, &end);
        if (*end || v < 0) {
            snprintf(err, errlen, "bad value: %s", line);
            rc = -1;
            break;
        }
        if (n < max) {
            snprintf(out[n].name, sizeof out[n].name, "%.*s", (int)(mt[4].rm_so - 1), line);
            snprintf(out[n].family, sizeof out[n].family, "%s", name);
            out[n].value = v;
            n++;
        }
    }
    for (int i = 0; i < f.n && rc == 0; i++)
        if (!f.help[i] || !f.type[i][0]) {
            snprintf(err, errlen, "family without HELP or TYPE: %s", f.name[i]);
            rc = -1;
        }
    free(copy);
    regfree(&name_re);
    regfree(&sample_re);
    return rc < 0 ? -1 : n;
}

static const sample *find(const sample *s, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (!strcmp(s[i].name, name))
            return &s[i];
    return NULL;
}

/* Every counter in b is >= in a, and some grew. */
static void assert_counters_grow(const sample *a, int na, const sample *b, int nb, const char *text) {
    int grew = 0;
    for (int i = 0; i < nb; i++) {
        size_t len = strlen(b[i].family);
        if (len < 6 || strcmp(b[i].family + len - 6, "_total"))
            continue;
        const sample *old = find(a, na, b[i].name);
        cr_assert(old, "%s appeared only in the second scrape", b[i].name);
        cr_assert(b[i].value >= old->value, "counter %s went down: %f -> %f", b[i].name, old->value, b[i].value);
        grew += b[i].value > old->value;
    }
    cr_assert(grew > 0, "no counter grew:\n%s", text);
}

static char *prom_text;
static char *prom_text2;
static int64_t prom_cut_len, prom_len;

static int main_prometheus(void *arg) {
    (void)arg;
    prom_len = mote_metrics_prometheus(NULL, 0);
    T_CHECK(prom_len > 0);
    prom_text = malloc((size_t)prom_len + 4096);
    T_CHECK(mote_metrics_prometheus(prom_text, (size_t)prom_len + 4096) >= prom_len);
    /* A short buffer: cut, terminated, and the whole length returned. */
    char small[64];
    memset(small, 'x', sizeof small);
    prom_cut_len = mote_metrics_prometheus(small, sizeof small);
    T_CHECK(prom_cut_len >= prom_len);
    T_CHECK_EQ(small[sizeof small - 1], '\0');
    T_CHECK_EQ(strlen(small), sizeof small - 1);
    /* Some work, then again. */
    mote_proc *p = t_spawn_counter(0);
    for (int i = 0; i < 100; i++)
        T_CHECK_EQ(mote_call(p, h_one, NULL, 0, NULL), 0);
    mote_proc_release(p);
    int64_t len2 = mote_metrics_prometheus(NULL, 0);
    prom_text2 = malloc((size_t)len2 + 4096);
    T_CHECK(mote_metrics_prometheus(prom_text2, (size_t)len2 + 4096) >= len2);
    return 0;
}

Test(metrics, prometheus_text_is_well_formed) {
    T_RUN_OK(NULL, main_prometheus, NULL);
    sample a[128], b[128];
    char err[512] = "";
    int na = parse_prometheus(prom_text, a, 128, err, sizeof err);
    cr_assert(na > 0, "%s\n%s", err, prom_text);
    int nb = parse_prometheus(prom_text2, b, 128, err, sizeof err);
    cr_assert(nb == na, "%s\n%s", err, prom_text2);
    cr_assert(find(a, na, "mote_processes") && find(a, na, "mote_messages_sent_total") &&
                  find(a, na, "mote_worker_busy_seconds_total{worker=\"0\"}") &&
                  find(a, na, "mote_worker_busy_seconds_total{worker=\"backup\"}"),
              "%s", prom_text);
    cr_assert(find(b, nb, "mote_messages_sent_total")->value >= find(a, na, "mote_messages_sent_total")->value + 100);
    assert_counters_grow(a, na, b, nb, prom_text2);
    free(prom_text);
    free(prom_text2);
}

/* ---- examples/metrics_http, scraped with curl ---- */

static char *curl(const char *url) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "curl -sS --max-time 30 %s", url);
    FILE *p = popen(cmd, "r");
    cr_assert(p, "popen curl");
    size_t cap = 65536, len = 0;
    char *out = malloc(cap);
    size_t k;
    while ((k = fread(out + len, 1, cap - len - 1, p)) > 0) {
        len += k;
        if (len + 1 == cap)
            out = realloc(out, cap *= 2);
    }
    out[len] = '\0';
    cr_assert_eq(pclose(p), 0, "curl %s failed", url);
    return out;
}

Test(metrics, served_over_http) {
    if (system("command -v curl >/dev/null 2>&1") != 0)
        cr_skip_test("curl is not installed");
    t_server srv;
    t_server_start(&srv, "metrics_http", "127.0.0.1:0");
    char url[256];
    snprintf(url, sizeof url, "http://%s/metrics", srv.addr);
    char *one = curl(url);
    usleep(50 * 1000); /* the example's ticker runs every 10 ms */
    char *two = curl(url);
    snprintf(url, sizeof url, "-o /dev/null -w %%{http_code} http://%s/nothing", srv.addr);
    char *code = curl(url);
    t_server_stop(&srv);
    sample a[128], b[128];
    char err[512] = "";
    int na = parse_prometheus(one, a, 128, err, sizeof err);
    cr_assert(na > 0, "%s\n%s", err, one);
    int nb = parse_prometheus(two, b, 128, err, sizeof err);
    cr_assert(nb > 0, "%s\n%s", err, two);
    cr_assert(find(a, na, "mote_messages_sent_total") && find(a, na, "mote_timers_fired_total"), "%s", one);
    assert_counters_grow(a, na, b, nb, two);
    cr_assert(find(b, nb, "mote_timers_fired_total")->value > find(a, na, "mote_timers_fired_total")->value,
              "the ticker's timers did not move:\n%s\n%s", one, two);
    cr_assert_str_eq(code, "404");
    free(one);
    free(two);
    free(code);
}

/* The checker itself catches what it is meant to. */
Test(metrics, checker_rejects_bad_text) {
    sample s[8];
    char err[256];
    const char *bad[] = {
        "x_total 1\n",                                                    /* no HELP/TYPE */
        "# HELP x help\n# TYPE x counter\nx 1\n",                         /* counter not *_total */
        "# HELP x help\n# TYPE x gauge\nx one\n",                         /* not a number */
        "# HELP x help\n# TYPE x gauge\nx{a=b} 1\n",                      /* label unquoted */
        "# HELP 9x help\n# TYPE 9x gauge\n9x 1\n",                        /* bad name */
        "# HELP x help\n# TYPE x gauge\nx 1",                             /* no final newline */
        "# TYPE x gauge\nx 1\n",                                          /* no HELP */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_assert_eq(parse_prometheus(bad[i], s, 8, err, sizeof err), -1, "accepted: %s", bad[i]);
    cr_assert_eq(parse_prometheus("# HELP x_total h\n# TYPE x_total counter\nx_total{a=\"b\",c=\"d\"} 1.5\n", s, 8,
                                  err, sizeof err),
                 1, "%s", err);
    cr_assert_str_eq(s[0].name, "x_total{a=\"b\",c=\"d\"}");
}
