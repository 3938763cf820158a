/*
 * file_read: read a 1 GiB file that sits in the page cache in 64 KiB and
 * in 4 KiB chunks, from a process with mote_file_read (each read in a
 * blocking section)
 * and, for comparison, with a plain read() loop on the main thread with no
 * runtime running. Reports GB/s for each and mote/plain: each way reads
 * the file ROUNDS times (the ways interleaved), timing every 64 MiB of it,
 * and the fastest 64 MiB counts (other work on the machine only slows).
 *
 * The file is BENCH_FILE (default /tmp/mote-bench-1g), created when missing
 * and read once before the clock starts so that it is cached.
 */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

enum { ROUNDS = 3 };
#define FILE_SIZE ((int64_t)1 << 30)
#define SLICE ((int64_t)64 << 20) /* timed separately */

static const size_t chunks[2] = {64 * 1024, 4 * 1024};
static const char *const names[2] = {"read64k", "read4k"};
static const char *path;
static char buf[64 * 1024];

static void die(const char *what) {
    fprintf(stderr, "%s %s: %s\n", what, path, strerror(errno));
    exit(1);
}

/* Create the file if it is missing or short, then read it once. */
static void prepare(void) {
    struct stat st;
    if (stat(path, &st) != 0 || st.st_size != FILE_SIZE) {
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s.%d", path, (int)getpid());
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0)
            die("create");
        for (size_t i = 0; i < sizeof buf; i++)
            buf[i] = (char)(i * 131);
        for (int64_t done = 0; done < FILE_SIZE; done += (int64_t)sizeof buf)
            if (write(fd, buf, sizeof buf) != (ssize_t)sizeof buf)
                die("write");
        if (close(fd) != 0 || rename(tmp, path) != 0)
            die("rename");
    }
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        die("open");
    while (read(fd, buf, sizeof buf) > 0)
        ;
    close(fd);
}

/* Read the whole file in chunks of `chunk`; returns the fewest ns any
 * SLICE bytes of it took (the machine is shared: the best stretch is the
 * least disturbed one), or exits. */
static int64_t read_all(size_t chunk, bool with_mote) {
    /* mote: the files API (each read in a blocking section); plain: read(). */
    mote_file *f = NULL;
    int fd = -1;
    if (with_mote ? mote_file_open(&f, path, MOTE_FILE_READ) < 0 : (fd = open(path, O_RDONLY)) < 0)
        die("open");
    int64_t total = 0, best = INT64_MAX, t0 = mote_now();
    for (;;) {
        int64_t n = with_mote ? mote_file_read(f, buf, chunk) : read(fd, buf, chunk);
        if (n <= 0) {
            if (n < 0)
                die("read");
            break;
        }
        total += n;
        if (total % SLICE == 0) {
            int64_t t1 = mote_now();
            best = t1 - t0 < best ? t1 - t0 : best;
            t0 = t1;
        }
    }
    if (with_mote)
        mote_file_close(f);
    else
        close(fd);
    if (total != FILE_SIZE) {
        fprintf(stderr, "read %lld bytes of %s, want %lld\n", (long long)total, path,
                (long long)FILE_SIZE);
        exit(1);
    }
    return best;
}

typedef struct reader_arg {
    int64_t *ns; /* one per chunk size */
    mote_proc *main;
} reader_arg;

static void reader(void *arg) {
    const reader_arg *a = arg;
    for (int c = 0; c < 2; c++)
        a->ns[c] = read_all(chunks[c], true);
    int64_t done = 1;
    bench_ok(mote_send(a->main, &done, sizeof done), "mote_send");
}

static int mote_round(void *arg) {
    reader_arg a = {arg, mote_self()};
    bench_ok(mote_spawn_fn(NULL, reader, &a, sizeof a), "mote_spawn_fn");
    return bench_receive_i64() == 1 ? 0 : 1;
}

int main(void) {
    path = getenv("BENCH_FILE");
    if (!path || !*path)
        path = "/tmp/mote-bench-1g";
    prepare();
    int64_t best_plain[2] = {INT64_MAX, INT64_MAX}, best_mote[2] = {INT64_MAX, INT64_MAX};
    for (int r = 0; r < ROUNDS; r++) {
        int64_t ns[2];
        for (int c = 0; c < 2; c++) {
            ns[c] = read_all(chunks[c], false);
            best_plain[c] = ns[c] < best_plain[c] ? ns[c] : best_plain[c];
        }
        int rc = mote_run(NULL, mote_round, ns);
        if (rc != 0) {
            fprintf(stderr, "mote_run: %s\n", rc < 0 ? mote_strerror(rc) : "reader failed");
            return 1;
        }
        for (int c = 0; c < 2; c++)
            best_mote[c] = ns[c] < best_mote[c] ? ns[c] : best_mote[c];
    }
    for (int c = 0; c < 2; c++) {
        double mote = (double)SLICE / (double)best_mote[c];
        double plain = (double)SLICE / (double)best_plain[c];
        /* two decimals, finer than bench_result's one */
        printf("RESULT %s GB/s %.2f\n", names[c], mote);
        printf("RESULT %s_plain GB/s %.2f\n", names[c], plain);
        printf("RESULT %s_ratio x %.3f\n", names[c], mote / plain);
    }
    return 0;
}
