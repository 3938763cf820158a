/*
 * test-exterm.c -- the examples as terminal programs: a usage line and
 * exit status 2 for -h, --help and bad arguments (no socket file named
 * "--help", no port that wraps around); SIGTERM and SIGINT stop each
 * server with status 0 and remove the Unix socket file; a connection open
 * when the signal comes finishes its exchange; a second signal cuts the
 * grace period short and the server closes what is left.
 */
#include <sys/un.h>

#include "helpers.h"

/* Under ThreadSanitizer the tests knock while they wait for a server to
 * react to a signal (see T_TSAN in helpers.h). */

static void example_path(char *buf, size_t len, const char *name) {
    snprintf(buf, len, "%s/examples/%s", MOTE_BUILD_DIR, name);
}

/* ---- usage ------------------------------------------------------------------------- */

typedef struct in_dir {
    const char *dir;
    char **argv;
} in_dir;

static void exec_in_dir(void *arg) {
    in_dir *d = arg;
    if (chdir(d->dir) != 0)
        _exit(126);
    t_exec(d->argv);
}

/* Run examples/<name> with up to two arguments in dir: it must print its
 * usage on stderr and exit 2. */
static void expect_usage(const char *dir, const char *name, const char *a1, const char *a2) {
    char exe[512], want[64];
    example_path(exe, sizeof exe, name);
    char *argv[] = {exe, (char *)a1, (char *)a2, NULL};
    in_dir d = {dir, argv};
    t_child c;
    t_child_run(&c, exec_in_dir, &d);
    snprintf(want, sizeof want, "usage: %s ", name);
    cr_assert(WIFEXITED(c.status) && WEXITSTATUS(c.status) == 2,
              "%s %s %s: status 0x%x\nstderr:\n%s", name, a1 ? a1 : "", a2 ? a2 : "", c.status, c.err);
    T_ASSERT_CONTAINS(c.err, want);
    cr_assert_str_empty(c.out);
    t_child_free(&c);
}

Test(exterm, usage_on_help_and_bad_arguments) {
    char dir[] = "/tmp/mote-exterm-XXXXXX";
    cr_assert(mkdtemp(dir) != NULL);
    static const char *const all[] = {"echo", "echo_active", "fd_echo", "udp_echo", "unix_echo", "cat"};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) {
        expect_usage(dir, all[i], "--help", NULL);
        expect_usage(dir, all[i], "-h", NULL);
    }
    static const char *const tcp[] = {"echo", "echo_active", "udp_echo"};
    for (size_t i = 0; i < sizeof tcp / sizeof *tcp; i++) {
        expect_usage(dir, tcp[i], "127.0.0.1:99999", NULL);
        expect_usage(dir, tcp[i], "127.0.0.1:-1", NULL);
        expect_usage(dir, tcp[i], "127.0.0.1", NULL);
        expect_usage(dir, tcp[i], "localhost:7000", NULL);
        expect_usage(dir, tcp[i], "[::1]:70000", NULL);
        expect_usage(dir, tcp[i], "unix:/tmp/x", NULL);
        expect_usage(dir, tcp[i], "127.0.0.1:0", "extra");
    }
    expect_usage(dir, "fd_echo", "99999", NULL);
    expect_usage(dir, "fd_echo", "65536", NULL);
    expect_usage(dir, "fd_echo", "-1", NULL);
    expect_usage(dir, "fd_echo", "12x", NULL);
    expect_usage(dir, "fd_echo", "", NULL);
    expect_usage(dir, "fd_echo", "0", "0");
    expect_usage(dir, "unix_echo", "", NULL);
    expect_usage(dir, "unix_echo", "-x", NULL);
    expect_usage(dir, "unix_echo", "a", "b");
    expect_usage(dir, "cat", "-n", NULL);
    expect_usage(dir, "cat", "--number", NULL);
    /* Nothing was created: no socket file named "--help" or "-x". */
    int left = 0;
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));)
        left += e->d_name[0] != '.';
    if (d)
        closedir(d);
    rmdir(dir);
    cr_assert_eq(left, 0, "an example created a file in %s", dir);
}

/* cat still takes "-" and names after "--". */
Test(exterm, cat_dash_and_double_dash) {
    char path[] = "/tmp/mote-exterm-cat-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, "file\n", 5), 5);
    close(fd);
    char exe[512];
    example_path(exe, sizeof exe, "cat");
    char *argv[] = {exe, "--", path, NULL};
    t_child c;
    t_child_exec(&c, argv);
    unlink(path);
    T_ASSERT_EXITED(&c, 0);
    cr_assert_str_eq(c.out, "file\n");
    t_child_free(&c);
}

/* ---- stopping servers ------------------------------------------------------------------ */

/* A client socket to a server's "listening on" address ("unix:PATH" too);
 * blocking, with a 30 s receive timeout. -1 if it cannot connect. */
static int dial(const char *addr, int type) {
    mote_addr a;
    if (mote_addr_parse(&a, addr) != 0)
        return -1;
    const struct sockaddr *sa = (const struct sockaddr *)a.storage;
    int fd = socket(sa->sa_family, type | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {30, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, sa, a.len) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* One exchange on a connected client: len bytes out, the same back. */
static bool exchange(int fd, const char *text) {
    size_t len = strlen(text);
    char back[256] = {0};
    return t_xfer(fd, (char *)text, len, true) && t_xfer(fd, back, len, false) && memcmp(back, text, len) == 0;
}

/* True once the server no longer accepts (a connect fails), or for a
 * Unix socket once its file is gone. Knocks under TSan (see T_TSAN). */
static bool wait_not_listening(const char *addr) {
    for (int i = 0; i < 3000; i++) {
        if (strncmp(addr, "unix:", 5) == 0 && addr[5] != '@') {
            if (access(addr + 5, F_OK) != 0)
                return true;
#ifdef T_TSAN
            t_knock(addr);
#endif
        } else {
            int fd = dial(addr, SOCK_STREAM);
            if (fd < 0)
                return true;
            close(fd);
        }
        usleep(10 * 1000);
    }
    return false;
}

/* Wait for the server to exit (knocking under TSan); its status, or -1
 * after 60 s (it is then killed). */
static int wait_exit(t_server *s) {
    for (int i = 0; i < 6000; i++) {
        int st;
        if (waitpid(s->pid, &st, WNOHANG) == s->pid)
            return st;
#ifdef T_TSAN
        if (i % 20 == 19)
            t_knock(s->addr);
#endif
        usleep(10 * 1000);
    }
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    return -1;
}

/* The server's stderr so far (caller frees); closes its descriptors. */
static char *server_done(t_server *s) {
    close(s->out);
    FILE *f = fdopen(s->err, "r");
    fseek(f, 0, SEEK_END);
    char *text = t_slurp(f);
    unlink(s->errpath);
    return text;
}

/* Send sig, expect exit status 0 with "stopping" on stderr and no
 * sanitizer report. */
static void stop_expect_clean(t_server *s, int sig) {
    cr_assert_eq(kill(s->pid, sig), 0);
    int st = wait_exit(s);
    char *err = server_done(s);
    cr_assert(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "status 0x%x, stderr:\n%s", st, err);
    T_ASSERT_CONTAINS(err, sig == SIGINT ? "SIGINT: stopping" : "SIGTERM: stopping");
    cr_assert(!strstr(err, "Sanitizer") && !strstr(err, "still open"), "stderr:\n%s", err);
    free(err);
}

Test(exterm, signals_stop_each_server_with_status_0) {
    static const struct {
        const char *name, *arg;
        int type, sig;
    } servers[] = {
        {"echo", "127.0.0.1:0", SOCK_STREAM, SIGTERM},     {"echo", "127.0.0.1:0", SOCK_STREAM, SIGINT},
        {"echo_active", "127.0.0.1:0", SOCK_STREAM, SIGTERM}, {"fd_echo", "0", SOCK_STREAM, SIGTERM},
        {"fd_echo", "0", SOCK_STREAM, SIGINT},             {"udp_echo", "127.0.0.1:0", SOCK_DGRAM, SIGTERM},
        {"udp_echo", "[::1]:0", SOCK_DGRAM, SIGINT},
    };
    for (size_t i = 0; i < sizeof servers / sizeof *servers; i++) {
        if (strchr(servers[i].arg, '[')) { /* IPv6 loopback may be missing */
            int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
            struct sockaddr_in6 lo = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
            bool v6 = fd >= 0 && bind(fd, (struct sockaddr *)&lo, sizeof lo) == 0;
            if (fd >= 0)
                close(fd);
            if (!v6)
                continue;
        }
        t_server srv;
        t_server_start(&srv, servers[i].name, servers[i].arg);
        if (servers[i].type == SOCK_STREAM) { /* it serves before the signal */
            int fd = dial(srv.addr, SOCK_STREAM);
            cr_assert(fd >= 0 && exchange(fd, "hello"), "%s", servers[i].name);
            close(fd);
        }
        stop_expect_clean(&srv, servers[i].sig);
    }
}

Test(exterm, unix_echo_removes_its_socket_file) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/mote-exterm-%d.sock", (int)getpid());
    unlink(path);
    t_server srv;
    t_server_start(&srv, "unix_echo", path);
    cr_assert_eq(access(path, F_OK), 0);
    int fd = dial(srv.addr, SOCK_STREAM);
    cr_assert(fd >= 0 && exchange(fd, "hello unix"));
    close(fd);
    stop_expect_clean(&srv, SIGTERM);
    cr_assert(access(path, F_OK) != 0, "%s is still there", path);
    /* The abstract namespace has no file; it stops the same way. */
    snprintf(path, sizeof path, "@mote-exterm-%d", (int)getpid());
    t_server_start(&srv, "unix_echo", path);
    stop_expect_clean(&srv, SIGINT);
}

/* A connection open when SIGTERM comes finishes its exchange; the server
 * then exits 0 without cutting anything. */
static void open_connection_finishes(const char *name, const char *arg) {
    t_server srv;
    t_server_start(&srv, name, arg);
    int fd = dial(srv.addr, SOCK_STREAM);
    cr_assert(fd >= 0 && exchange(fd, "before the signal"), "%s", name);
    cr_assert_eq(kill(srv.pid, SIGTERM), 0);
    cr_assert(wait_not_listening(srv.addr), "%s still accepts after SIGTERM", name);
    cr_assert(exchange(fd, "after the signal"), "%s: the open connection broke", name);
    cr_assert(exchange(fd, "and once more"), "%s", name);
    close(fd);
    int st = wait_exit(&srv);
    char *err = server_done(&srv);
    cr_assert(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: status 0x%x, stderr:\n%s", name, st, err);
    cr_assert(!strstr(err, "Sanitizer") && !strstr(err, "still open"), "%s stderr:\n%s", name, err);
    free(err);
}

Test(exterm, open_connection_finishes_after_sigterm) {
    open_connection_finishes("echo", "127.0.0.1:0");
    open_connection_finishes("echo_active", "127.0.0.1:0");
    open_connection_finishes("fd_echo", "0");
    char path[64];
    snprintf(path, sizeof path, "/tmp/mote-exterm-open-%d.sock", (int)getpid());
    unlink(path);
    open_connection_finishes("unix_echo", path);
    cr_assert(access(path, F_OK) != 0, "%s is still there", path);
}

/* A second signal ends the grace period: the server shuts the open
 * connection down (the client reads end of stream) and exits 0. */
static void second_signal_cuts(const char *name, const char *arg) {
    t_server srv;
    t_server_start(&srv, name, arg);
    int fd = dial(srv.addr, SOCK_STREAM);
    cr_assert(fd >= 0 && exchange(fd, "hello"), "%s", name);
    cr_assert_eq(kill(srv.pid, SIGTERM), 0);
    cr_assert(wait_not_listening(srv.addr), "%s", name);
    cr_assert_eq(kill(srv.pid, SIGINT), 0);
#ifdef T_TSAN
    /* The open connection wakes the main thread under TSan: write on it
     * until the end of stream shows (the echo of each write is read). */
    char c;
    ssize_t n;
    while (write(fd, "x", 1) == 1 && (n = read(fd, &c, 1)) == 1)
        usleep(10 * 1000);
#endif
    char buf[16];
    cr_assert_eq(read(fd, buf, sizeof buf), 0, "%s: expected end of stream", name);
    close(fd);
    int st = wait_exit(&srv);
    char *err = server_done(&srv);
    cr_assert(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: status 0x%x, stderr:\n%s", name, st, err);
    T_ASSERT_CONTAINS(err, "closing 1 connection(s) still open");
    cr_assert(!strstr(err, "Sanitizer"), "%s stderr:\n%s", name, err);
    free(err);
}

Test(exterm, second_signal_cuts_the_grace_period) {
    second_signal_cuts("echo", "127.0.0.1:0");
    second_signal_cuts("echo_active", "127.0.0.1:0");
    second_signal_cuts("fd_echo", "0");
}
