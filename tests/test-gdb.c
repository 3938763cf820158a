/* The gdb commands of tools/mote-gdb.py, driven in batch mode on
 * tests/gdb-target.c: `mote procs` lists the processes, `mote bt` shows
 * where a suspended one waits, and the thread's registers come back. */
#include "helpers.h"

#include <sys/stat.h>

static const char *const gdb_script =
    "set pagination off\n"
    "set confirm off\n"
    "source " MOTE_SOURCE_DIR "/tools/mote-gdb.py\n"
    "break target_ready\n"
    "run\n"
    "python\n"
    "def both_suspended():\n"
    "    rows = [l.split() for l in gdb.execute('mote procs', to_string=True).splitlines()]\n"
    "    return sum(1 for r in rows if len(r) >= 3 and r[1] in ('alpha', 'beta') and r[2] == 'suspended') == 2\n"
    "for _ in range(500):\n"
    "    if both_suspended():\n"
    "        break\n"
    "    gdb.execute('continue', to_string=True)\n"
    "end\n"
    "echo === procs\\n\n"
    "mote procs\n"
    "echo === bt alpha\\n\n"
    "mote bt alpha\n"
    "echo === bt beta\\n\n"
    "mote bt beta\n"
    "echo === after\\n\n"
    "frame\n"
    "python\n"
    "for key in ('1', 'nobody'):\n"
    "    try:\n"
    "        gdb.execute('mote bt ' + key)\n"
    "    except gdb.error as e:\n"
    "        print('=== error', key, e)\n"
    "end\n"
    "kill\n";

static void run_sh(void *cmd) {
    execl("/bin/sh", "sh", "-c", (const char *)cmd, (char *)NULL);
    _exit(127);
}

/* gdb present, and allowed to trace a child here? */
static void skip_without_gdb(void) {
    t_child c;
    t_child_run(&c, run_sh, "command -v gdb >/dev/null || exit 3; "
                            "gdb -nx -batch -ex run --args /bin/true 2>&1");
    if (WIFEXITED(c.status) && WEXITSTATUS(c.status) == 3) {
        t_child_free(&c);
        cr_skip_test("gdb is not installed");
    }
    bool traced = strstr(c.out, "exited normally") != NULL;
    if (!traced) {
        fprintf(stderr, "gdb cannot run a program here:\n%s%s", c.out, c.err);
        t_child_free(&c);
        cr_skip_test("gdb cannot trace a program here (ptrace not permitted?)");
    }
    t_child_free(&c);
}

/* The text between "=== <from>" and the next "===" line. */
static char *section(const char *out, const char *from) {
    char mark[64];
    snprintf(mark, sizeof mark, "=== %s\n", from);
    const char *s = strstr(out, mark);
    cr_assert(s, "no '%s' section in gdb's output:\n%s", from, out);
    s += strlen(mark);
    const char *e = strstr(s, "===");
    return strndup(s, e ? (size_t)(e - s) : strlen(s));
}

Test(gdb, procs_and_bt_of_suspended_processes) {
    skip_without_gdb();
    char path[] = "/tmp/mote-gdb-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    cr_assert(write(fd, gdb_script, strlen(gdb_script)) == (ssize_t)strlen(gdb_script));
    close(fd);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "gdb -nx -batch -x %s --args %s/tests/gdb-target 2>&1", path, MOTE_BUILD_DIR);
    t_child c;
    t_child_run(&c, run_sh, cmd);
    unlink(path);

    char *procs = section(c.out, "procs");
    cr_assert(strstr(procs, "alpha") && strstr(procs, "beta"), "mote procs:\n%s", procs);
    int suspended = 0;
    for (char *l = strtok(procs, "\n"); l; l = strtok(NULL, "\n"))
        if ((strstr(l, " alpha ") || strstr(l, " beta ")) && strstr(l, "suspended"))
            suspended++;
    cr_assert_eq(suspended, 2, "alpha and beta are not both suspended:\n%s", c.out);
    cr_assert(strstr(c.out, "suspended  in receive") && strstr(c.out, "suspended  in sleep"),
              "no wait reasons:\n%s", c.out);
    free(procs);

    char *a = section(c.out, "bt alpha"), *b = section(c.out, "bt beta");
    cr_assert(strstr(a, "wait_here_a") && strstr(a, "mote_receive") && strstr(a, "alpha"),
              "mote bt alpha:\n%s", a);
    cr_assert(!strstr(a, "wait_here_b"), "mote bt alpha:\n%s", a);
    cr_assert(strstr(b, "wait_here_b") && strstr(b, "mote_sleep") && strstr(b, "beta"),
              "mote bt beta:\n%s", b);
    free(a);
    free(b);
    /* The stopped thread's own frame is back. */
    char *after = section(c.out, "after");
    cr_assert(strstr(after, "target_ready"), "registers not restored:\n%s", after);
    free(after);
    /* A running process (main, id 1) and an unknown one: errors, no crash. */
    cr_assert(strstr(c.out, "=== error 1 mote: process 1 is running"), "%s", c.out);
    cr_assert(strstr(c.out, "=== error nobody mote: no process nobody"), "%s", c.out);
    t_child_free(&c);
}
