/*
 * cat.c -- copy stdin, or the files named as arguments, to stdout through
 * mote's streams: a file stream (mote_file_stream) or mote_stdin() as the
 * source, mote_stdout() as the sink. Reading a pipe or a terminal suspends
 * only this process, a regular file runs in blocking sections.
 *
 *     cat [FILE...]      ("-" names stdin, "--" ends the options)
 *
 * -h or --help, or an unknown option, prints the usage and exits 2.
 * SIGINT and SIGTERM keep their default action, as for any filter: the
 * shell sees cat die of the signal.
 */
#include <mote.h>
#include <stdio.h>
#include <string.h>

#include "common/cli.h"

#define USAGE "[FILE...]  (copy the files, or stdin, to stdout; \"-\" is stdin)"

/* Copy from until its end. 0, or a negative errno; *writing says which side
 * failed. */
static int copy(mote_stream from, mote_stream to, char *buf, size_t cap, int *writing) {
    for (;;) {
        int64_t n = mote_stream_read(from, buf, cap, MOTE_FOREVER);
        *writing = 0;
        if (n <= 0)
            return (int)n;
        *writing = 1;
        int r = mote_stream_write_all(to, buf, (size_t)n, MOTE_FOREVER);
        if (r < 0)
            return r;
    }
}

/* "cat: what: error" on stderr, through its stream too. */
static void complain(const char *what, int err) {
    char line[512];
    int n = snprintf(line, sizeof line, "cat: %s: %s\n", what, mote_strerror(err));
    mote_stream_write_all(mote_stderr(), line, n < 0 ? 0 : n >= (int)sizeof line ? sizeof line - 1 : (size_t)n,
                          MOTE_FOREVER);
}

typedef struct args {
    int n;        /* file names, without the options */
    char **names;
} args;

static int app(void *arg) {
    args *a = arg;
    static char buf[64 * 1024]; /* one main process: no need for a per-call buffer */
    int status = 0, writing = 0;
    if (a->n == 0) {
        int r = copy(mote_stdin(), mote_stdout(), buf, sizeof buf, &writing);
        if (r < 0)
            complain(writing ? "stdout" : "stdin", r);
        return r < 0;
    }
    for (int i = 0; i < a->n; i++) {
        const char *name = a->names[i];
        int r;
        if (!strcmp(name, "-")) {
            r = copy(mote_stdin(), mote_stdout(), buf, sizeof buf, &writing);
        } else {
            mote_file *f = NULL;
            r = mote_file_open(&f, name, MOTE_FILE_READ);
            writing = 0;
            if (r == 0) {
                r = copy(mote_file_stream(f), mote_stdout(), buf, sizeof buf, &writing);
                mote_file_close(f);
            }
        }
        if (r < 0) {
            complain(writing ? "stdout" : name, r);
            status = 1;
            if (writing)
                break;
        }
    }
    return status;
}

int main(int argc, char **argv) {
    /* The names, in place of argv[1..]: options first rejected. */
    args a = {0, argv + 1};
    bool options = true;
    for (int i = 1; i < argc; i++) {
        if (options && !strcmp(argv[i], "--")) {
            options = false;
        } else if (options && argv[i][0] == '-' && argv[i][1] != '\0') {
            if (!cli_is_help(argv[i]))
                fprintf(stderr, "cat: unknown option '%s'\n", argv[i]);
            return cli_usage("cat", USAGE);
        } else {
            a.names[a.n++] = argv[i];
        }
    }
    int r = mote_run(NULL, app, &a);
    if (r < 0) {
        fprintf(stderr, "cat: %s\n", mote_strerror(r));
        return 2;
    }
    return r;
}
