/*
 * file_read: read a 1 GiB file that sits in the page cache in 64 KiB and
 * in 4 KiB chunks, from a process with mote_file_read, each read in a
 * blocking section (the default poller) and, where io_uring is available,
 * as an io_uring completion (MOTE_POLLER=uring); and, for comparison, with
 * a plain read() loop on the main thread with no runtime running. Reports
 * GB/s for each and mote/plain: each way reads the file ROUNDS times (the
 * ways interleaved), timing every 64 MiB of it, and the fastest 64 MiB
 * counts (other work on the machine only slows). The same plain loop also
 * runs on a second thread while the main thread waits for it (the _plain_mt
 * rows): Linux reads faster in a single-threaded process (no file
 * reference taken per call, no lock on the file position), which mote,
 * with its workers, never is.
 *
 * Then the same file from the disk, cold (posix_fadvise DONTNEED drops its
 * pages first, and as root drop_caches all clean caches; BENCH_COLD=0 skips
 * this part), in 64 KiB chunks, with
 * blocking sections and with io_uring, COLD_ROUNDS times each way
 * (BENCH_COLD_ROUNDS, default 2), interleaved, the first way alternating;
 * the fastest whole read counts.
 *
 * The file is BENCH_FILE (default /tmp/mote-bench-1g), created when missing
 * and read once before the clock starts so that it is cached.
 */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
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

/* Drop the file's pages from the page cache: the next read is the disk's.
 * As root, all clean caches go too (/proc/sys/vm/drop_caches, unless
 * BENCH_DROP_CACHES=0), so no metadata is cached either; says once on
 * stderr which way it went. */
static void evict(void) {
    static bool told;
    int fd = open(path, O_RDONLY);
    if (fd < 0 || fdatasync(fd) != 0 || posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) != 0)
        die("evict");
    close(fd);
    const char *drop = getenv("BENCH_DROP_CACHES");
    bool dropped = false;
    if (!drop || strcmp(drop, "0") != 0) {
        int d = open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);
        dropped = d >= 0 && write(d, "3", 1) == 1;
        if (d >= 0)
            close(d);
    }
    if (!told) {
        fprintf(stderr, "file_read: cold reads after %s\n",
                dropped ? "posix_fadvise(DONTNEED) and drop_caches 3" : "posix_fadvise(DONTNEED) only");
        told = true;
    }
}

/* Read the whole file in chunks of `chunk`; returns the fewest ns any
 * SLICE bytes of it took (the machine is shared: the best stretch is the
 * least disturbed one), or with whole, the ns the whole file took. */
static int64_t read_all(size_t chunk, bool with_mote, bool whole) {
    /* mote: the files API; plain: read(). */
    mote_file *f = NULL;
    int fd = -1;
    if (with_mote ? mote_file_open(&f, path, MOTE_FILE_READ) < 0 : (fd = open(path, O_RDONLY)) < 0)
        die("open");
    int64_t total = 0, best = INT64_MAX, start = mote_now(), t0 = start;
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
    int64_t took = mote_now() - start;
    if (with_mote)
        mote_file_close(f);
    else
        close(fd);
    if (total != FILE_SIZE) {
        fprintf(stderr, "read %lld bytes of %s, want %lld\n", (long long)total, path,
                (long long)FILE_SIZE);
        exit(1);
    }
    return whole ? took : best;
}

typedef struct plain_arg {
    size_t chunk;
    int64_t ns;
} plain_arg;

static void *plain_thread(void *arg) {
    plain_arg *a = arg;
    a->ns = read_all(a->chunk, false, false);
    return NULL;
}

/* The plain loop on a second thread: the process is multi-threaded. */
static int64_t read_all_mt(size_t chunk) {
    plain_arg a = {chunk, 0};
    pthread_t t;
    if (pthread_create(&t, NULL, plain_thread, &a) != 0 || pthread_join(t, NULL) != 0)
        die("pthread");
    return a.ns;
}

typedef struct reader_arg {
    int64_t *ns;   /* one per chunk size; or the cold read's */
    bool cold;
    mote_proc *main;
} reader_arg;

static void reader(void *arg) {
    const reader_arg *a = arg;
    if (a->cold)
        a->ns[0] = read_all(chunks[0], true, true);
    else
        for (int c = 0; c < 2; c++)
            a->ns[c] = read_all(chunks[c], true, false);
    int64_t done = 1;
    bench_ok(mote_send(a->main, &done, sizeof done), "mote_send");
}

typedef struct round_arg {
    int64_t *ns;
    bool cold;
} round_arg;

static int mote_round(void *arg) {
    round_arg *r = arg;
    reader_arg a = {r->ns, r->cold, mote_self()};
    bench_ok(mote_spawn_fn(NULL, reader, &a, sizeof a), "mote_spawn_fn");
    return bench_receive_i64() == 1 ? 0 : 1;
}

/* One round in a runtime whose poller is `poller` (NULL: the default, so
 * blocking sections). False if this build has no such poller. */
static bool run_round(const char *poller, int64_t *ns, bool cold) {
    if (poller)
        setenv("MOTE_POLLER", poller, 1);
    else
        unsetenv("MOTE_POLLER");
    round_arg r = {ns, cold};
    int rc = mote_run(NULL, mote_round, &r);
    unsetenv("MOTE_POLLER");
    if (rc == -EINVAL && poller)
        return false;
    if (rc != 0) {
        fprintf(stderr, "mote_run: %s\n", rc < 0 ? mote_strerror(rc) : "reader failed");
        exit(1);
    }
    return true;
}

static int64_t min64(int64_t a, int64_t b) {
    return a < b ? a : b;
}

static void report(const char *name, const char *way, int64_t best, int64_t plain) {
    char metric[64];
    double gbs = (double)SLICE / (double)best;
    snprintf(metric, sizeof metric, "%s%s", name, way);
    /* two decimals, finer than bench_result's one */
    printf("RESULT %s GB/s %.2f\n", metric, gbs);
    snprintf(metric, sizeof metric, "%s%s_ratio", name, way);
    printf("RESULT %s x %.3f\n", metric, (double)plain / (double)best);
}

int main(void) {
    path = getenv("BENCH_FILE");
    if (!path || !*path)
        path = "/tmp/mote-bench-1g";
    prepare();
    /* io_uring where the build has it; MOTE_POLLER=uring falls back to
     * epoll (and so to blocking sections) where the kernel refuses it. */
    bool uring = true;
    int64_t best_plain[2] = {INT64_MAX, INT64_MAX}, best_mt[2] = {INT64_MAX, INT64_MAX},
            best_mote[2] = {INT64_MAX, INT64_MAX}, best_uring[2] = {INT64_MAX, INT64_MAX};
    for (int r = 0; r < ROUNDS; r++) {
        int64_t ns[2];
        for (int c = 0; c < 2; c++) {
            best_plain[c] = min64(best_plain[c], read_all(chunks[c], false, false));
            best_mt[c] = min64(best_mt[c], read_all_mt(chunks[c]));
        }
        run_round(NULL, ns, false);
        for (int c = 0; c < 2; c++)
            best_mote[c] = min64(best_mote[c], ns[c]);
        if (uring && (uring = run_round("uring", ns, false)))
            for (int c = 0; c < 2; c++)
                best_uring[c] = min64(best_uring[c], ns[c]);
    }
    for (int c = 0; c < 2; c++) {
        printf("RESULT %s_plain GB/s %.2f\n", names[c], (double)SLICE / (double)best_plain[c]);
        report(names[c], "_plain_mt", best_mt[c], best_plain[c]);
        report(names[c], "", best_mote[c], best_plain[c]);
        if (uring)
            report(names[c], "_uring", best_uring[c], best_plain[c]);
    }
    fflush(stdout);
    const char *cold = getenv("BENCH_COLD");
    if (cold && strcmp(cold, "0") == 0)
        return 0;
    const char *rounds = getenv("BENCH_COLD_ROUNDS");
    int cold_rounds = rounds && atoi(rounds) > 0 ? atoi(rounds) : 2;
    int64_t cold_mote = INT64_MAX, cold_uring = INT64_MAX;
    /* Odd rounds read with io_uring first: the disk's speed drifts, and
     * a fixed order would favour whichever way it drifts toward. */
    for (int r = 0; r < cold_rounds; r++) {
        int64_t ns[2], took[2] = {0, 0}; /* sections, uring */
        for (int k = 0; k < 2; k++) {
            bool with_uring = (k == 0) == (r % 2 == 1);
            if (with_uring && !uring)
                continue;
            evict();
            run_round(with_uring ? "uring" : NULL, ns, true);
            took[with_uring] = ns[0];
        }
        cold_mote = min64(cold_mote, took[0]);
        fprintf(stderr, "file_read: cold round %d (%s first): sections %.3f GB/s", r,
                r % 2 && uring ? "uring" : "sections", (double)FILE_SIZE / (double)took[0]);
        if (uring) {
            cold_uring = min64(cold_uring, took[1]);
            fprintf(stderr, ", uring %.3f GB/s", (double)FILE_SIZE / (double)took[1]);
        }
        fprintf(stderr, "\n");
    }
    printf("RESULT cold64k GB/s %.3f\n", (double)FILE_SIZE / (double)cold_mote);
    if (uring) {
        printf("RESULT cold64k_uring GB/s %.3f\n", (double)FILE_SIZE / (double)cold_uring);
        printf("RESULT cold64k_uring_ratio x %.3f\n", (double)cold_mote / (double)cold_uring);
    }
    return 0;
}
