/* linecount.c -- streams and buffered readers: count the lines and words
 * of standard input or of files. The same code reads a pipe, a terminal
 * or a file, because all of them are streams.
 *
 *   linecount [FILE...]
 */
#include <errno.h>
#include <mote.h>
#include <stdio.h>

typedef struct counts {
    long lines, words, longest;
} counts;

/* Count one stream, line by line. */
static int count_stream(mote_stream s, counts *c) {
    mote_reader *r;
    int e = mote_reader_new(&r, s, 64 * 1024); /* lines up to 64 KiB */
    if (e < 0)
        return e;
    const char *line;
    int64_t n;
    while ((n = mote_reader_read_line(r, &line, MOTE_FOREVER)) >= 0) {
        c->lines++;
        if (n > c->longest)
            c->longest = n;
        for (int64_t i = 0; i < n; i++) /* line is not NUL-terminated */
            if (line[i] != ' ' && (i == 0 || line[i - 1] == ' '))
                c->words++;
    }
    mote_reader_free(r);
    return n == -ENODATA ? 0 : (int)n; /* -ENODATA: the end */
}

static int count_file(const char *path, counts *c) {
    mote_file *f;
    int e = mote_file_open(&f, path, MOTE_FILE_READ);
    if (e == 0) {
        e = count_stream(mote_file_stream(f), c);
        mote_file_close(f);
    }
    return e;
}

/* One line of output, into the buffered writer. */
static int report(mote_writer *out, const char *name, int err, const counts *c) {
    if (err < 0) {
        mote_writer_printf(out, MOTE_FOREVER, "%s: %s\n", name, mote_strerror(err));
        return 1;
    }
    mote_writer_printf(out, MOTE_FOREVER, "%s: %ld lines, %ld words, longest %ld\n", name,
                       c->lines, c->words, c->longest);
    return 0;
}

static int app(void *arg) {
    char **paths = arg; /* NULL-terminated */
    mote_writer *out;
    if (mote_writer_new(&out, mote_stdout(), 0) < 0)
        return 1;
    int status = 0;
    if (!paths[0]) {
        counts c = {0};
        status |= report(out, "-", count_stream(mote_stdin(), &c), &c);
    }
    for (int i = 0; paths[i]; i++) {
        counts c = {0};
        status |= report(out, paths[i], count_file(paths[i], &c), &c);
    }
    mote_writer_flush(out, MOTE_FOREVER); /* nothing is written before this */
    mote_writer_free(out);
    return status;
}

int main(int argc, char **argv) {
    (void)argc;
    return mote_run(NULL, app, argv + 1);
}
