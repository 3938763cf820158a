/*
 * A minimal stand-in for Criterion, used only for ThreadSanitizer builds.
 *
 * Criterion 2.4 (BoxFort) maps its inheritable arena at a random fixed
 * address in 0x200000000000-0x7f0000000000, which ThreadSanitizer reserves
 * for itself: every Criterion binary aborts at start with "Could not
 * initialize inheritable arena" (Snaipe/Criterion#274). This header gives the
 * subset of Criterion the tests use -- Test(), cr_assert*, cr_skip_test --
 * and a main() that runs each test in its own forked process, so the test
 * files build unchanged against either.
 */
#ifndef MOTE_CRITERION_SHIM_H
#define MOTE_CRITERION_SHIM_H

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct cr_shim_test {
    const char *suite, *name;
    void (*fn)(void);
    struct cr_shim_test *next;
} cr_shim_test;

static cr_shim_test *cr_shim_tests, **cr_shim_tail = &cr_shim_tests;

#define CR_SHIM_SKIPPED 77

#define Test(suite, name, ...)                                                                     \
    static void suite##_##name##_impl(void);                                                       \
    static cr_shim_test suite##_##name##_desc = {#suite, #name, suite##_##name##_impl, NULL};     \
    __attribute__((constructor)) static void suite##_##name##_register(void) {                     \
        *cr_shim_tail = &suite##_##name##_desc;                                                    \
        cr_shim_tail = &suite##_##name##_desc.next;                                                \
    }                                                                                              \
    static void suite##_##name##_impl(void)

/* fmt may be "" (no message). */
__attribute__((noreturn)) static inline void cr_shim_fail(const char *file, int line, const char *what,
                                                          const char *fmt, ...) {
    fprintf(stderr, "[----] %s:%d: Assertion Failed: %s\n", file, line, what);
    if (fmt && *fmt) {
        va_list ap;
        va_start(ap, fmt);
        fputs("[----]   ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
    }
    exit(1);
}

#define cr_assert(cond, ...)                                                                       \
    do {                                                                                           \
        if (!(cond))                                                                               \
            cr_shim_fail(__FILE__, __LINE__, #cond, "" __VA_ARGS__);                               \
    } while (0)
#define cr_assert_fail(...) cr_shim_fail(__FILE__, __LINE__, "cr_assert_fail", "" __VA_ARGS__)
#define cr_assert_eq(a, b, ...) cr_assert((a) == (b), __VA_ARGS__)
#define cr_assert_geq(a, b, ...) cr_assert((a) >= (b), __VA_ARGS__)
#define cr_assert_str_eq(a, b, ...) cr_assert(strcmp((a), (b)) == 0, __VA_ARGS__)
#define cr_assert_str_empty(s, ...) cr_assert((s)[0] == '\0', __VA_ARGS__)
#define cr_skip_test(...)                                                                          \
    do {                                                                                           \
        fprintf(stderr, "[SKIP] " __VA_ARGS__);                                                    \
        fputc('\n', stderr);                                                                       \
        exit(CR_SHIM_SKIPPED);                                                                     \
    } while (0)

/* Accepts Criterion's "-jN", "--timeout N" and "--filter suite/name". */
int main(int argc, char **argv) {
    unsigned timeout = 0;
    const char *filter = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--timeout") && i + 1 < argc)
            timeout = (unsigned)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--filter") && i + 1 < argc)
            filter = argv[++i];
    }
    int passed = 0, failed = 0, skipped = 0;
    for (cr_shim_test *t = cr_shim_tests; t; t = t->next) {
        char full[256];
        snprintf(full, sizeof full, "%s/%s", t->suite, t->name);
        if (filter && strcmp(filter, full) != 0)
            continue;
        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 2;
        }
        if (pid == 0) {
            if (timeout)
                alarm(timeout);
            t->fn();
            exit(0); /* not _exit: sanitizers report at exit (TSan's exit code 66) */
        }
        int status = 0;
        while (waitpid(pid, &status, 0) < 0)
            ;
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
            passed++;
        } else if (WIFEXITED(status) && WEXITSTATUS(status) == CR_SHIM_SKIPPED) {
            skipped++;
            fprintf(stderr, "[SKIP] %s\n", full);
        } else {
            failed++;
            if (WIFSIGNALED(status))
                fprintf(stderr, "[FAIL] %s: crashed with signal %d%s\n", full, WTERMSIG(status),
                        WTERMSIG(status) == SIGALRM ? " (timed out)" : "");
            else
                fprintf(stderr, "[FAIL] %s: exit status %d\n", full, WEXITSTATUS(status));
        }
    }
    fprintf(stderr, "[====] Synthesis: Tested: %d | Passing: %d | Failing: %d | Skipped: %d\n",
            passed + failed + skipped, passed, failed, skipped);
    return failed ? 1 : 0;
}

#endif /* MOTE_CRITERION_SHIM_H */
