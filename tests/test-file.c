/*
 * test-file.c -- mote_file_* and mote_fs_*: regular files and paths, run
 * in blocking sections from processes.
 */
#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>

#include "helpers.h"

/* ---- A temporary directory per test ---- */

typedef struct tdir {
    char path[128];
} tdir;

static void tdir_make(tdir *d) {
    snprintf(d->path, sizeof d->path, "/tmp/mote-file-XXXXXX");
    cr_assert(mkdtemp(d->path) != NULL);
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(p);
}

static void tdir_remove(tdir *d) {
    nftw(d->path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    cr_assert(access(d->path, F_OK) != 0, "could not clean up %s", d->path);
}

/* dir/name in a buffer that lives until the next call with the same buf. */
static const char *at(char *buf, const tdir *d, const char *name) {
    snprintf(buf, 256, "%s/%s", d->path, name);
    return buf;
}

static void run_in_tdir(mote_main_fn fn) {
    tdir d;
    tdir_make(&d);
    int rc = t_run(NULL, fn, &d);
    tdir_remove(&d);
    cr_assert_eq(rc, 0, "mote_run returned %d", rc);
}

/* Open path with flags, checked. */
static mote_file *open_ok(const char *path, int flags) {
    mote_file *f = NULL;
    int r = mote_file_open(&f, path, flags);
    T_CHECK_EQ(r, 0);
    return f;
}

/* Put text into path (created or truncated). */
static void put(const char *path, const char *text) {
    mote_file *f = open_ok(path, MOTE_FILE_WRITE | MOTE_FILE_CREATE | MOTE_FILE_TRUNCATE);
    if (!f)
        return;
    T_CHECK_EQ(mote_file_write_all(f, text, strlen(text)), 0);
    T_CHECK_EQ(mote_file_close(f), 0);
}

/* Check that path holds exactly text. */
static void expect(const char *path, const char *text) {
    mote_file *f = open_ok(path, MOTE_FILE_READ);
    if (!f)
        return;
    char buf[256] = {0};
    int64_t n = mote_file_read(f, buf, sizeof buf - 1);
    T_CHECK_EQ(n, (int64_t)strlen(text));
    if (strcmp(buf, text) != 0)
        t_fail(__FILE__, __LINE__, "%s holds '%s', expected '%s'", path, buf, text);
    T_CHECK_EQ(mote_file_close(f), 0);
}

/* ---- Open modes ---- */

static int main_modes(void *arg) {
    tdir *d = arg;
    char p[256];
    at(p, d, "a.txt");
    mote_file *f = NULL;
    char buf[16];

    T_CHECK_EQ(mote_file_open(&f, p, MOTE_FILE_READ), -ENOENT); /* no CREATE */
    T_CHECK(f == NULL);
    T_CHECK_EQ(mote_file_open(&f, p, MOTE_FILE_WRITE), -ENOENT);
    put(p, "hello");
    expect(p, "hello");

    /* Read-only refuses writes; write-only refuses reads. */
    f = open_ok(p, MOTE_FILE_READ);
    T_CHECK_EQ(mote_file_write(f, "x", 1), -EBADF);
    T_CHECK_EQ(mote_file_write_all(f, "x", 1), -EBADF);
    T_CHECK_EQ(mote_file_read(f, buf, sizeof buf), 5);
    T_CHECK_EQ(mote_file_read(f, buf, sizeof buf), 0); /* end of file */
    T_CHECK_EQ(mote_file_close(f), 0);
    f = open_ok(p, MOTE_FILE_WRITE);
    T_CHECK_EQ(mote_file_read(f, buf, sizeof buf), -EBADF);
    T_CHECK_EQ(mote_file_write(f, "J", 1), 1); /* no TRUNCATE: overwrites in place */
    T_CHECK_EQ(mote_file_close(f), 0);
    expect(p, "Jello");

    /* Append really appends, even after a seek to the start. */
    f = open_ok(p, MOTE_FILE_APPEND); /* implies WRITE */
    T_CHECK_EQ(mote_file_seek(f, 0, SEEK_SET), 0);
    T_CHECK_EQ(mote_file_write_all(f, " world", 6), 0);
    T_CHECK_EQ(mote_file_read(f, buf, sizeof buf), -EBADF);
    T_CHECK_EQ(mote_file_close(f), 0);
    expect(p, "Jello world");
    f = open_ok(p, MOTE_FILE_READ | MOTE_FILE_APPEND);
    T_CHECK_EQ(mote_file_write_all(f, "!", 1), 0);
    T_CHECK_EQ(mote_file_seek(f, 0, SEEK_CUR), 12); /* the write moved to the end */
    T_CHECK_EQ(mote_file_seek(f, 0, SEEK_SET), 0);
    T_CHECK_EQ(mote_file_read(f, buf, 5), 5);
    T_CHECK(memcmp(buf, "Jello", 5) == 0);
    T_CHECK_EQ(mote_file_close(f), 0);
    expect(p, "Jello world!");

    /* Read-write, create, truncate, exclusive. */
    f = open_ok(p, MOTE_FILE_READ | MOTE_FILE_WRITE);
    T_CHECK_EQ(mote_file_write(f, "Y", 1), 1);
    T_CHECK_EQ(mote_file_read(f, buf, 4), 4);
    T_CHECK(memcmp(buf, "ello", 4) == 0);
    T_CHECK_EQ(mote_file_close(f), 0);
    expect(p, "Yello world!");
    f = open_ok(p, MOTE_FILE_WRITE | MOTE_FILE_TRUNCATE);
    T_CHECK_EQ(mote_file_size(f), 0);
    T_CHECK_EQ(mote_file_close(f), 0);
    expect(p, "");
    T_CHECK_EQ(mote_file_open(&f, p, MOTE_FILE_WRITE | MOTE_FILE_CREATE | MOTE_FILE_EXCL), -EEXIST);
    char q[256];
    at(q, d, "new.txt");
    f = open_ok(q, MOTE_FILE_WRITE | MOTE_FILE_CREATE | MOTE_FILE_EXCL);
    T_CHECK_EQ(mote_file_close(f), 0);
    mote_file_info info;
    T_CHECK_EQ(mote_fs_info(q, &info), 0);
    T_CHECK(info.is_file);
    T_CHECK_EQ(info.size, 0);
    f = open_ok(q, MOTE_FILE_READ | MOTE_FILE_WRITE | MOTE_FILE_CREATE); /* exists: fine */
    T_CHECK_EQ(mote_file_close(f), 0);

    /* Bad flag combinations. */
    static const int bad[] = {
        0,
        64,
        MOTE_FILE_READ | 128,
        MOTE_FILE_CREATE,
        MOTE_FILE_TRUNCATE,
        MOTE_FILE_READ | MOTE_FILE_TRUNCATE,
        MOTE_FILE_READ | MOTE_FILE_CREATE | MOTE_FILE_EXCL,
        -1,
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        f = (mote_file *)(uintptr_t)1;
        T_CHECK_EQ(mote_file_open(&f, q, bad[i]), -EINVAL);
        T_CHECK(f == NULL);
    }
    return 0;
}

Test(file, open_modes) {
    run_in_tdir(main_modes);
}

/* ---- Positioned I/O, seek, size, truncate, sync, info ---- */

static int main_positioned(void *arg) {
    tdir *d = arg;
    char p[256];
    at(p, d, "pos.bin");
    mote_file *f = open_ok(p, MOTE_FILE_READ | MOTE_FILE_WRITE | MOTE_FILE_CREATE);
    T_CHECK_EQ(mote_file_write_all(f, "0123456789", 10), 0);
    T_CHECK_EQ(mote_file_seek(f, 2, SEEK_SET), 2);
    T_CHECK_EQ(mote_file_pwrite(f, "AB", 2, 5), 2);
    char buf[16] = {0};
    T_CHECK_EQ(mote_file_pread(f, buf, 4, 4), 4);
    T_CHECK(memcmp(buf, "4AB7", 4) == 0);
    T_CHECK_EQ(mote_file_seek(f, 0, SEEK_CUR), 2); /* neither moved the offset */
    T_CHECK_EQ(mote_file_read(f, buf, 3), 3);
    T_CHECK(memcmp(buf, "234", 3) == 0);
    T_CHECK_EQ(mote_file_pread(f, buf, sizeof buf, 100), 0); /* past the end */
    T_CHECK_EQ(mote_file_pwrite(f, "Z", 1, 12), 1);         /* leaves a hole */
    T_CHECK_EQ(mote_file_size(f), 13);
    T_CHECK_EQ(mote_file_pread(f, buf, 3, 10), 3);
    T_CHECK(memcmp(buf, "\0\0Z", 3) == 0);

    T_CHECK_EQ(mote_file_seek(f, 0, SEEK_END), 13);
    T_CHECK_EQ(mote_file_seek(f, -3, SEEK_END), 10);
    T_CHECK_EQ(mote_file_seek(f, 1, SEEK_CUR), 11);
    T_CHECK_EQ(mote_file_seek(f, -100, SEEK_SET), -EINVAL);
    T_CHECK_EQ(mote_file_seek(f, 0, 42), -EINVAL);
    T_CHECK_EQ(mote_file_truncate(f, 4), 0);
    T_CHECK_EQ(mote_file_size(f), 4);
    T_CHECK_EQ(mote_file_truncate(f, 4096), 0);
    T_CHECK_EQ(mote_file_size(f), 4096);
    T_CHECK_EQ(mote_file_sync(f), 0);

    T_CHECK_EQ(mote_file_truncate(f, 6), 0);
    int64_t before = (int64_t)time(NULL) * MOTE_SEC(1);
    mote_file_info info;
    memset(&info, 0xff, sizeof info);
    T_CHECK_EQ(mote_file_info_of(f, &info), 0);
    T_CHECK_EQ(info.size, 6);
    T_CHECK(info.is_file && !info.is_dir && !info.is_symlink);
    T_CHECK(S_ISREG(info.mode));
    T_CHECK(info.mtime > before - MOTE_SEC(60) && info.mtime < before + MOTE_SEC(60));
    T_CHECK_EQ(fchmod(mote_file_fd(f), 0604), 0);
    T_CHECK_EQ(mote_file_info_of(f, &info), 0);
    T_CHECK_EQ(info.mode & 07777, 0604);
    T_CHECK_EQ(mote_file_close(f), 0);

    /* Beyond what an off_t holds. */
    f = open_ok(p, MOTE_FILE_READ | MOTE_FILE_WRITE);
    T_CHECK_EQ(mote_file_pread(f, buf, 1, UINT64_MAX), -EINVAL);
    T_CHECK_EQ(mote_file_pwrite(f, buf, 1, (uint64_t)INT64_MAX + 1), -EINVAL);
    T_CHECK_EQ(mote_file_truncate(f, UINT64_MAX), -EINVAL);
    T_CHECK_EQ(mote_file_close(f), 0);
    return 0;
}

Test(file, positioned_io_seek_size_truncate_info) {
    run_in_tdir(main_positioned);
}

/* ---- Directories ---- */

static int main_dirs(void *arg) {
    tdir *d = arg;
    char p[256], q[256];
    mote_file_info info;

    /* mkdir, plain and with parents. */
    T_CHECK_EQ(mote_fs_mkdir(at(p, d, "one"), false), 0);
    T_CHECK_EQ(mote_fs_mkdir(p, false), -EEXIST);
    T_CHECK_EQ(mote_fs_mkdir(p, true), 0); /* an existing directory is fine */
    T_CHECK_EQ(mote_fs_mkdir(at(p, d, "x/y/z"), false), -ENOENT);
    T_CHECK_EQ(mote_fs_mkdir(at(p, d, "x/y/z"), true), 0);
    T_CHECK_EQ(mote_fs_mkdir(p, true), 0);
    T_CHECK_EQ(mote_fs_info(p, &info), 0);
    T_CHECK(info.is_dir && !info.is_file && S_ISDIR(info.mode));
    T_CHECK_EQ(mote_fs_mkdir(at(p, d, "x//y2///z2/"), true), 0);
    T_CHECK_EQ(mote_fs_info(at(p, d, "x/y2/z2"), &info), 0);
    T_CHECK(info.is_dir);
    put(at(p, d, "plain"), "data");
    T_CHECK_EQ(mote_fs_mkdir(at(p, d, "plain"), true), -EEXIST);
    int r = mote_fs_mkdir(at(p, d, "plain/sub/dir"), true);
    T_CHECK(r == -ENOTDIR || r == -EEXIST);
    T_CHECK_EQ(mote_fs_mkdir("", true), -ENOENT);

    /* list: sorted, without . and .. */
    T_CHECK_EQ(mote_fs_mkdir(at(p, d, "ls"), false), 0);
    static const char *names[] = {"b", "a.txt", "Z", "c", "aa"};
    static const char *sorted[] = {"Z", "a.txt", "aa", "b", "c"};
    for (int i = 0; i < 5; i++) {
        snprintf(q, sizeof q, "%s/ls/%s", d->path, names[i]);
        if (i == 3)
            T_CHECK_EQ(mote_fs_mkdir(q, false), 0);
        else
            put(q, names[i]);
    }
    char **list = NULL;
    T_CHECK_EQ(mote_fs_list(p, &list), 5);
    T_CHECK(list != NULL);
    for (int i = 0; list && i < 5; i++)
        if (!list[i] || strcmp(list[i], sorted[i]) != 0)
            t_fail(__FILE__, __LINE__, "list[%d] = %s, expected %s", i, list[i], sorted[i]);
    T_CHECK(list && list[5] == NULL);
    mote_fs_list_free(list);
    T_CHECK_EQ(mote_fs_mkdir(at(p, d, "empty"), false), 0);
    T_CHECK_EQ(mote_fs_list(p, &list), 0);
    T_CHECK(list && list[0] == NULL);
    mote_fs_list_free(list);
    T_CHECK_EQ(mote_fs_list(at(p, d, "missing"), &list), -ENOENT);
    T_CHECK(list == NULL);
    T_CHECK_EQ(mote_fs_list(at(p, d, "plain"), &list), -ENOTDIR);
    mote_fs_list_free(NULL);

    /* rename, remove. */
    T_CHECK_EQ(mote_fs_rename(at(p, d, "plain"), at(q, d, "renamed")), 0);
    expect(q, "data");
    T_CHECK_EQ(mote_fs_info(p, &info), -ENOENT);
    T_CHECK_EQ(mote_fs_rename(p, q), -ENOENT);
    T_CHECK_EQ(mote_fs_rename(at(p, d, "one"), at(q, d, "two")), 0); /* a directory */
    T_CHECK_EQ(mote_fs_info(q, &info), 0);
    T_CHECK(info.is_dir);
    T_CHECK_EQ(mote_fs_remove(at(p, d, "renamed")), 0);
    T_CHECK_EQ(mote_fs_remove(p), -ENOENT);
    T_CHECK_EQ(mote_fs_remove(at(p, d, "two")), 0); /* an empty directory */
    T_CHECK_EQ(mote_fs_info(p, &info), -ENOENT);
    T_CHECK_EQ(mote_fs_remove(at(p, d, "x/y")), -ENOTEMPTY);
    T_CHECK_EQ(mote_fs_remove(at(p, d, "x/y/z")), 0);
    T_CHECK_EQ(mote_fs_remove(at(p, d, "x/y")), 0);

    /* fs_info follows symlinks and says whether the path is one. */
    put(at(p, d, "target"), "12345");
    T_CHECK_EQ(symlink(p, at(q, d, "link")), 0);
    T_CHECK_EQ(mote_fs_info(q, &info), 0);
    T_CHECK(info.is_symlink && info.is_file && !info.is_dir);
    T_CHECK_EQ(info.size, 5);
    T_CHECK_EQ(mote_fs_info(p, &info), 0);
    T_CHECK(!info.is_symlink && info.is_file);
    T_CHECK_EQ(mote_fs_remove(p), 0);
    T_CHECK_EQ(mote_fs_info(q, &info), -ENOENT); /* dangling */
    T_CHECK_EQ(mote_fs_remove(q), 0);            /* removes the link itself */
    return 0;
}

Test(file, directories) {
    run_in_tdir(main_dirs);
}

/* ---- Copy ---- */

static void fill_pattern(char *buf, size_t len, unsigned seed) {
    for (size_t i = 0; i < len; i++)
        buf[i] = (char)((i * 131 + seed * 7 + (i >> 9)) & 0xff);
}

/* path holds exactly len bytes of pattern seed. */
static void expect_pattern(const char *path, size_t len, unsigned seed) {
    char *want = malloc(len + 1), *got = malloc(len + 1);
    fill_pattern(want, len, seed);
    mote_file *f = open_ok(path, MOTE_FILE_READ);
    size_t have = 0;
    for (int64_t n; f && (n = mote_file_read(f, got + have, len + 1 - have)) > 0;)
        have += (size_t)n;
    T_CHECK_EQ(have, len);
    T_CHECK(have == len && memcmp(want, got, len) == 0);
    if (f)
        T_CHECK_EQ(mote_file_close(f), 0);
    free(want);
    free(got);
}

static void write_pattern(const char *path, size_t len, unsigned seed) {
    char *buf = malloc(len);
    fill_pattern(buf, len, seed);
    mote_file *f = open_ok(path, MOTE_FILE_WRITE | MOTE_FILE_CREATE | MOTE_FILE_TRUNCATE);
    T_CHECK_EQ(mote_file_write_all(f, buf, len), 0);
    T_CHECK_EQ(mote_file_close(f), 0);
    free(buf);
}

static int main_copy(void *arg) {
    tdir *d = arg;
    char p[256], q[256], r[256];
    const size_t big = 3 * 1024 * 1024 + 123; /* more than one chunk */
    write_pattern(at(p, d, "src"), big, 1);
    T_CHECK_EQ(chmod(p, 0640), 0);
    T_CHECK_EQ(mote_fs_copy(p, at(q, d, "dst")), (int64_t)big);
    expect_pattern(q, big, 1);
    mote_file_info info;
    T_CHECK_EQ(mote_fs_info(q, &info), 0);
    T_CHECK_EQ(info.mode & 0777, 0640);

    /* The destination is replaced: a longer one shrinks, its mode follows. */
    write_pattern(at(r, d, "small"), 1000, 2);
    T_CHECK_EQ(chmod(r, 0751), 0);
    T_CHECK_EQ(mote_fs_copy(r, q), 1000);
    expect_pattern(q, 1000, 2);
    T_CHECK_EQ(mote_fs_info(q, &info), 0);
    T_CHECK_EQ(info.mode & 0777, 0751);
    T_CHECK_EQ(info.size, 1000);

    /* An empty file; a file onto itself; errors. */
    put(at(r, d, "empty"), "");
    T_CHECK_EQ(mote_fs_copy(r, q), 0);
    T_CHECK_EQ(mote_fs_info(q, &info), 0);
    T_CHECK_EQ(info.size, 0);
    T_CHECK_EQ(mote_fs_copy(p, p), -EINVAL);
    expect_pattern(p, big, 1);
    T_CHECK_EQ(mote_fs_copy(at(r, d, "missing"), q), -ENOENT);
    T_CHECK_EQ(mote_fs_copy(d->path, q), -EISDIR);
    T_CHECK_EQ(mote_fs_copy(p, at(r, d, "no/such/dir")), -ENOENT);
    /* Where the kernel reports size 0 but there is content. */
    T_CHECK(mote_fs_copy("/proc/self/status", q) > 0);
    return 0;
}

Test(file, copy_preserves_bytes_and_mode) {
    run_in_tdir(main_copy);
}

/* ---- Errors: missing files, bad handles, bad arguments ---- */

static int main_errors(void *arg) {
    tdir *d = arg;
    char p[256];
    mote_file *f = NULL;
    char buf[8];
    mote_file_info info;
    char **list = NULL;

    T_CHECK_EQ(mote_file_open(&f, at(p, d, "nope/x"), MOTE_FILE_WRITE | MOTE_FILE_CREATE), -ENOENT);
    T_CHECK_EQ(mote_fs_info(at(p, d, "nope"), &info), -ENOENT);
    T_CHECK_EQ(mote_fs_remove(p), -ENOENT);
    T_CHECK_EQ(mote_file_open(&f, d->path, MOTE_FILE_WRITE), -EISDIR);
    f = open_ok(d->path, MOTE_FILE_READ); /* a directory opens, but does not read */
    T_CHECK_EQ(mote_file_read(f, buf, sizeof buf), -EISDIR);
    T_CHECK_EQ(mote_file_close(f), 0);

    T_CHECK_EQ(mote_file_open(NULL, p, MOTE_FILE_READ), -EINVAL);
    T_CHECK_EQ(mote_file_open(&f, NULL, MOTE_FILE_READ), -EINVAL);
    T_CHECK_EQ(mote_file_close(NULL), -EINVAL);
    T_CHECK_EQ(mote_file_fd(NULL), -EINVAL);
    T_CHECK_EQ(mote_file_read(NULL, buf, 1), -EINVAL);
    T_CHECK_EQ(mote_file_write(NULL, buf, 1), -EINVAL);
    T_CHECK_EQ(mote_file_write_all(NULL, buf, 1), -EINVAL);
    T_CHECK_EQ(mote_file_pread(NULL, buf, 1, 0), -EINVAL);
    T_CHECK_EQ(mote_file_pwrite(NULL, buf, 1, 0), -EINVAL);
    T_CHECK_EQ(mote_file_seek(NULL, 0, SEEK_SET), -EINVAL);
    T_CHECK_EQ(mote_file_size(NULL), -EINVAL);
    T_CHECK_EQ(mote_file_truncate(NULL, 0), -EINVAL);
    T_CHECK_EQ(mote_file_sync(NULL), -EINVAL);
    T_CHECK_EQ(mote_file_info_of(NULL, &info), -EINVAL);
    T_CHECK_EQ(mote_fs_info(NULL, &info), -EINVAL);
    T_CHECK_EQ(mote_fs_info(d->path, NULL), -EINVAL);
    T_CHECK_EQ(mote_fs_remove(NULL), -EINVAL);
    T_CHECK_EQ(mote_fs_rename(NULL, p), -EINVAL);
    T_CHECK_EQ(mote_fs_rename(p, NULL), -EINVAL);
    T_CHECK_EQ(mote_fs_mkdir(NULL, true), -EINVAL);
    T_CHECK_EQ(mote_fs_list(NULL, &list), -EINVAL);
    T_CHECK_EQ(mote_fs_list(d->path, NULL), -EINVAL);
    T_CHECK_EQ(mote_fs_copy(NULL, p), -EINVAL);
    T_CHECK_EQ(mote_fs_copy(p, NULL), -EINVAL);

    f = open_ok(at(p, d, "f"), MOTE_FILE_READ | MOTE_FILE_WRITE | MOTE_FILE_CREATE);
    T_CHECK_EQ(mote_file_read(f, NULL, 1), -EINVAL);
    T_CHECK_EQ(mote_file_write(f, NULL, 1), -EINVAL);
    T_CHECK_EQ(mote_file_read(f, NULL, 0), 0);
    T_CHECK_EQ(mote_file_write(f, NULL, 0), 0);
    T_CHECK_EQ(mote_file_info_of(f, NULL), -EINVAL);
    /* A handle whose descriptor was closed behind its back. */
    int fd = mote_file_fd(f);
    T_CHECK(fd >= 0);
    T_CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    close(fd);
    T_CHECK_EQ(mote_file_read(f, buf, 1), -EBADF);
    T_CHECK_EQ(mote_file_write(f, buf, 1), -EBADF);
    T_CHECK_EQ(mote_file_size(f), -EBADF);
    T_CHECK_EQ(mote_file_sync(f), -EBADF);
    T_CHECK_EQ(mote_file_close(f), -EBADF);
    return 0;
}

Test(file, errors) {
    run_in_tdir(main_errors);
}

/* The calls work outside a runtime too (the sections do nothing there). */
Test(file, without_a_runtime) {
    tdir d;
    tdir_make(&d);
    char p[256];
    mote_file *f = NULL;
    cr_assert_eq(mote_file_open(&f, at(p, &d, "t"), MOTE_FILE_WRITE | MOTE_FILE_CREATE), 0);
    cr_assert_eq(mote_file_write_all(f, "abc", 3), 0);
    cr_assert_eq(mote_file_size(f), 3);
    cr_assert_eq(mote_file_close(f), 0);
    cr_assert_eq(mote_fs_remove(p), 0);
    tdir_remove(&d);
}

/* ---- The file stream ---- */

static int main_stream(void *arg) {
    tdir *d = arg;
    char p[256];
    const char *text = "a file read through its stream, seven bytes at a time\n";
    size_t len = strlen(text);

    mote_file *f = open_ok(at(p, d, "s"), MOTE_FILE_WRITE | MOTE_FILE_CREATE);
    mote_stream s = mote_file_stream(f);
    T_CHECK(s.vt != NULL && s.obj == f);
    for (size_t done = 0; done < len;) {
        int64_t n = s.vt->write(s.obj, text + done, len - done, MOTE_MSEC(1));
        T_CHECK(n >= 1);
        if (n < 1)
            break;
        done += (size_t)n;
    }
    char buf[64];
    T_CHECK_EQ(s.vt->read(s.obj, buf, sizeof buf, MOTE_FOREVER), -EBADF); /* write-only */
    T_CHECK_EQ(mote_file_close(f), 0);

    f = open_ok(p, MOTE_FILE_READ);
    s = mote_file_stream(f);
    char got[128] = {0};
    size_t have = 0;
    int pieces = 0;
    for (;;) {
        int64_t n = s.vt->read(s.obj, buf, 7, 0); /* timeouts are ignored */
        T_CHECK(n >= 0 && n <= 7);
        if (n <= 0)
            break;
        memcpy(got + have, buf, (size_t)n);
        have += (size_t)n;
        pieces++;
    }
    T_CHECK_EQ(have, len);
    T_CHECK_EQ(pieces, (int)((len + 6) / 7));
    T_CHECK(strcmp(got, text) == 0);
    T_CHECK_EQ(s.vt->write(s.obj, "x", 1, 0), -EBADF); /* read-only */
    T_CHECK_EQ(mote_file_close(f), 0);

    s = mote_file_stream(NULL);
    T_CHECK_EQ(s.vt->read(s.obj, buf, 1, 0), -EINVAL);
    T_CHECK_EQ(s.vt->write(s.obj, buf, 1, 0), -EINVAL);
    return 0;
}

Test(file, stream_reads_in_small_pieces) {
    run_in_tdir(main_stream);
}

/* ---- Many processes doing file I/O at once ---- */

#define WORKERS T_SCALE(32, 12)
#define CHUNK 4096
#define CHUNKS 16

typedef struct io_arg {
    const tdir *d;
    int id;
    mote_proc *report;
} io_arg;

/* Write a file of its own in chunks (yielding between them), read it back
 * with pread, check it, remove it; report 1 for success. */
static void fn_file_worker(void *arg) {
    io_arg *a = arg;
    char p[256], name[32];
    snprintf(name, sizeof name, "w%03d", a->id);
    at(p, a->d, name);
    char *buf = malloc(CHUNK), *back = malloc(CHUNK);
    int ok = 1;
    mote_file *f = open_ok(p, MOTE_FILE_READ | MOTE_FILE_WRITE | MOTE_FILE_CREATE | MOTE_FILE_EXCL);
    for (int c = 0; f && c < CHUNKS; c++) {
        fill_pattern(buf, CHUNK, (unsigned)(a->id * CHUNKS + c));
        ok &= mote_file_write_all(f, buf, CHUNK) == 0;
        mote_yield();
    }
    ok &= mote_file_sync(f) == 0;
    for (int c = CHUNKS - 1; f && c >= 0; c--) {
        fill_pattern(buf, CHUNK, (unsigned)(a->id * CHUNKS + c));
        ok &= mote_file_pread(f, back, CHUNK, (uint64_t)c * CHUNK) == CHUNK;
        ok &= memcmp(buf, back, CHUNK) == 0;
    }
    ok &= mote_file_size(f) == CHUNK * CHUNKS;
    ok &= f && mote_file_close(f) == 0;
    ok &= mote_fs_remove(p) == 0;
    T_CHECK(ok);
    free(buf);
    free(back);
    t_send_i64(a->report, ok);
    mote_proc_release(a->report);
}

static int main_concurrent(void *arg) {
    tdir *d = arg;
    for (int i = 0; i < WORKERS; i++) {
        io_arg a = {d, i, mote_proc_ref(mote_self())};
        T_CHECK_EQ(mote_spawn_fn(NULL, fn_file_worker, &a, sizeof a), 0);
    }
    int64_t sum = 0;
    for (int i = 0; i < WORKERS; i++)
        sum += t_recv_i64();
    T_CHECK_EQ(sum, WORKERS);
    char **list = NULL;
    T_CHECK_EQ(mote_fs_list(d->path, &list), 0); /* every file removed */
    mote_fs_list_free(list);
    return 0;
}

Test(file, many_processes_at_once) {
    run_in_tdir(main_concurrent);
}

/* Buffered line reading and writing work on files through their stream. */
static int main_lines(void *arg) {
    tdir *d = arg;
    char p[256];
    mote_file *f = open_ok(at(p, d, "lines"), MOTE_FILE_WRITE | MOTE_FILE_CREATE);
    mote_writer *w = NULL;
    T_CHECK_EQ(mote_writer_new(&w, mote_file_stream(f), 64), 0);
    for (int i = 0; i < 1000; i++)
        T_CHECK(mote_writer_printf(w, MOTE_FOREVER, "line %d%s", i, i % 2 ? "\r\n" : "\n") > 0);
    T_CHECK_EQ(mote_writer_flush(w, MOTE_FOREVER), 0);
    mote_writer_free(w);
    T_CHECK_EQ(mote_file_close(f), 0);

    f = open_ok(p, MOTE_FILE_READ);
    mote_reader *r = NULL;
    T_CHECK_EQ(mote_reader_new(&r, mote_file_stream(f), 16), 0);
    int i = 0;
    const char *line;
    int64_t n;
    while ((n = mote_reader_read_line(r, &line, MOTE_FOREVER)) >= 0) {
        char want[32];
        int wl = snprintf(want, sizeof want, "line %d", i);
        T_CHECK_EQ(n, wl);
        T_CHECK(n == wl && memcmp(line, want, (size_t)wl) == 0);
        i++;
    }
    T_CHECK_EQ(n, -ENODATA);
    T_CHECK_EQ(i, 1000);
    mote_reader_free(r);
    T_CHECK_EQ(mote_file_close(f), 0);
    return 0;
}

Test(file, buffered_lines_through_the_file_stream) {
    run_in_tdir(main_lines);
}

/* ---- The read position of read-only files (kept by mote, file.c) ---- */

/* Run fn in a fresh directory with the default poller, then with
 * MOTE_POLLER=uring where there is io_uring: the two read paths. */
static void run_both_pollers(mote_main_fn fn) {
    run_in_tdir(fn);
    tdir d;
    tdir_make(&d);
    setenv("MOTE_POLLER", "uring", 1);
    int rc = t_run(NULL, fn, &d);
    unsetenv("MOTE_POLLER");
    tdir_remove(&d);
    cr_assert(rc == 0 || rc == -EINVAL, "mote_run returned %d", rc); /* -EINVAL: no io_uring */
}

/* f's next len bytes are pattern seed's from off on. */
static void expect_read(mote_file *f, const char *want, size_t off, size_t len) {
    char got[4096];
    T_CHECK(len <= sizeof got);
    T_CHECK_EQ(mote_file_read(f, got, len), (int64_t)len);
    if (memcmp(got, want + off, len) != 0)
        t_fail(__FILE__, __LINE__, "read %zu bytes at %zu: wrong data", len, off);
}

static int main_position(void *arg) {
    tdir *d = arg;
    char p[256];
    enum { SIZE = 65536 + 123 };
    char *want = malloc(SIZE), got[256];
    fill_pattern(want, SIZE, 5);
    write_pattern(at(p, d, "pos"), SIZE, 5);
    mote_file *f = open_ok(p, MOTE_FILE_READ);
    expect_read(f, want, 0, 1000);
    T_CHECK_EQ(mote_file_seek(f, 0, SEEK_CUR), 1000);
    expect_read(f, want, 1000, 3000);
    T_CHECK_EQ(mote_file_pread(f, got, 100, 50000), 100); /* does not move it */
    T_CHECK(memcmp(got, want + 50000, 100) == 0);
    T_CHECK_EQ(mote_file_seek(f, 0, SEEK_CUR), 4000);
    /* Seeks, and reads from where they went. */
    T_CHECK_EQ(mote_file_seek(f, -10, SEEK_END), SIZE - 10);
    T_CHECK_EQ(mote_file_read(f, got, sizeof got), 10);
    T_CHECK(memcmp(got, want + SIZE - 10, 10) == 0);
    T_CHECK_EQ(mote_file_read(f, got, sizeof got), 0);
    T_CHECK_EQ(mote_file_seek(f, 0, SEEK_CUR), SIZE);
    T_CHECK_EQ(mote_file_seek(f, 100, SEEK_END), SIZE + 100);
    T_CHECK_EQ(mote_file_read(f, got, sizeof got), 0); /* past the end */
    T_CHECK_EQ(mote_file_seek(f, 5, SEEK_SET), 5);
    expect_read(f, want, 5, 10);
    T_CHECK_EQ(mote_file_seek(f, -3, SEEK_CUR), 12);
    T_CHECK_EQ(mote_file_seek(f, -100, SEEK_CUR), -EINVAL);
    T_CHECK_EQ(mote_file_seek(f, INT64_MAX, SEEK_CUR), -EINVAL);
    T_CHECK_EQ(mote_file_seek(f, -1, SEEK_SET), -EINVAL);
    T_CHECK_EQ(mote_file_seek(f, 0, SEEK_CUR), 12); /* failed seeks moved nothing */
    T_CHECK_EQ(mote_file_seek(f, (int64_t)1 << 50, SEEK_SET), (int64_t)1 << 50); /* past it all */
    T_CHECK_EQ(mote_file_read(f, got, sizeof got), 0);
    mote_file *g = open_ok(p, MOTE_FILE_READ); /* the same, then its descriptor */
    T_CHECK_EQ(mote_file_seek(g, (int64_t)1 << 62, SEEK_SET), (int64_t)1 << 62);
    T_CHECK(mote_file_fd(g) >= 0);
    T_CHECK_EQ(mote_file_read(g, got, sizeof got), 0);
    T_CHECK_EQ(mote_file_close(g), 0);
    T_CHECK_EQ(mote_file_seek(f, 12, SEEK_SET), 12);
    /* The descriptor handed out carries the position, and from then on
     * the kernel's position is the file's, whoever moves it. */
    int fd = mote_file_fd(f);
    T_CHECK(fd >= 0);
    T_CHECK_EQ(lseek(fd, 0, SEEK_CUR), 12);
    T_CHECK_EQ(read(fd, got, 8), 8);
    T_CHECK(memcmp(got, want + 12, 8) == 0);
    expect_read(f, want, 20, 8);
    T_CHECK_EQ(lseek(fd, 0, SEEK_CUR), 28);
    T_CHECK_EQ(lseek(fd, 100, SEEK_SET), 100);
    expect_read(f, want, 100, 4);
    T_CHECK_EQ(mote_file_seek(f, 0, SEEK_CUR), 104);
    T_CHECK_EQ(mote_file_seek(f, -4, SEEK_CUR), 100);
    T_CHECK_EQ(lseek(fd, 0, SEEK_CUR), 100);
    T_CHECK_EQ(mote_file_fd(f), fd);
    T_CHECK_EQ(mote_file_close(f), 0);

    /* Not a regular file: the kernel's position from the start. */
    f = open_ok("/dev/zero", MOTE_FILE_READ);
    memset(got, 1, sizeof got);
    T_CHECK_EQ(mote_file_read(f, got, sizeof got), (int64_t)sizeof got);
    T_CHECK(got[0] == 0 && got[sizeof got - 1] == 0);
    T_CHECK_EQ(mote_file_close(f), 0);
    T_CHECK_EQ(mkfifo(at(p, d, "fifo"), 0600), 0);
    f = open_ok(p, MOTE_FILE_READ | MOTE_FILE_WRITE); /* O_RDWR: does not wait for a peer */
    T_CHECK_EQ(mote_file_write(f, "abc", 3), 3);
    T_CHECK_EQ(mote_file_pread(f, got, 3, 0), -ESPIPE); /* no offsets, whatever the poller */
    T_CHECK_EQ(mote_file_read(f, got, sizeof got), 3);
    T_CHECK(memcmp(got, "abc", 3) == 0);
    T_CHECK_EQ(mote_file_close(f), 0);
    free(want);
    return 0;
}

Test(file, read_position_seek_and_fd) {
    run_both_pollers(main_position);
}

/* Processes reading one file at once each get their own stretch of it:
 * every 4-byte word of the file (which holds its own index) is read by
 * exactly one of them. */
#define SHARED_WORDS (1024 * 1024)
#define READERS 6

typedef struct shared_read {
    mote_file *f;
    _Atomic uint8_t seen[SHARED_WORDS];
    mote_proc *report;
} shared_read;

static void fn_shared_reader(void *arg) {
    shared_read *s = *(shared_read **)arg;
    uint32_t words[999]; /* not a multiple of a page */
    int64_t n, total = 0;
    for (int reads = 1; (n = mote_file_read(s->f, words, sizeof words)) > 0; reads++) {
        T_CHECK(n % 4 == 0);
        for (int64_t i = 0; i < n / 4; i++) {
            T_CHECK(words[i] < SHARED_WORDS && (i == 0 || words[i] == words[i - 1] + 1));
            if (words[i] < SHARED_WORDS)
                atomic_fetch_add(&s->seen[words[i]], 1);
        }
        total += n / 4;
        if (reads % 4 == 0) /* both workers reading at once, mostly */
            mote_yield();
    }
    T_CHECK_EQ(n, 0);
    t_send_i64(s->report, total);
}

static void shared_round(shared_read *s, bool kernel_position) {
    memset(s->seen, 0, sizeof s->seen);
    T_CHECK_EQ(mote_file_seek(s->f, 0, SEEK_SET), 0);
    if (kernel_position)
        T_CHECK(mote_file_fd(s->f) >= 0);
    for (int i = 0; i < READERS; i++)
        T_CHECK_EQ(mote_spawn_fn(NULL, fn_shared_reader, &s, sizeof s), 0);
    int64_t total = 0;
    for (int i = 0; i < READERS; i++)
        total += t_recv_i64();
    T_CHECK_EQ(total, SHARED_WORDS);
    int bad = 0;
    for (int i = 0; i < SHARED_WORDS; i++)
        bad += atomic_load(&s->seen[i]) != 1;
    T_CHECK_EQ(bad, 0);
}

static int main_shared(void *arg) {
    tdir *d = arg;
    char p[256];
    uint32_t *words = malloc(SHARED_WORDS * 4);
    for (uint32_t i = 0; i < SHARED_WORDS; i++)
        words[i] = i;
    mote_file *f = open_ok(at(p, d, "words"), MOTE_FILE_WRITE | MOTE_FILE_CREATE);
    T_CHECK_EQ(mote_file_write_all(f, words, SHARED_WORDS * 4), 0);
    T_CHECK_EQ(mote_file_close(f), 0);
    free(words);
    shared_read *s = calloc(1, sizeof *s);
    s->f = open_ok(p, MOTE_FILE_READ);
    s->report = mote_self();
    shared_round(s, false); /* the position kept by mote */
    shared_round(s, true);  /* the kernel's, once the descriptor is out */
    T_CHECK_EQ(mote_file_close(s->f), 0);
    free(s);
    return 0;
}

Test(file, concurrent_readers_share_the_position) {
    run_both_pollers(main_shared);
}

/* A file larger than the window that io_uring reads look ahead over
 * (uring.c), read in small and large chunks while cached, then again after
 * its pages were dropped: the same bytes either way. */
#define BIG_SIZE ((size_t)20 << 20)

static void read_big(const char *path, const char *want, size_t chunk) {
    mote_file *f = open_ok(path, MOTE_FILE_READ);
    char *got = malloc(chunk);
    size_t at_ = 0, bad = 0;
    for (int64_t n; (n = mote_file_read(f, got, chunk)) > 0; at_ += (size_t)n)
        bad += at_ + (size_t)n > BIG_SIZE || memcmp(got, want + at_, (size_t)n) != 0;
    T_CHECK_EQ(at_, BIG_SIZE);
    T_CHECK_EQ(bad, 0);
    for (size_t off = BIG_SIZE - chunk; off < BIG_SIZE; off -= BIG_SIZE / 7) { /* jumps */
        T_CHECK_EQ(mote_file_pread(f, got, chunk, off), (int64_t)chunk);
        T_CHECK(memcmp(got, want + off, chunk) == 0);
    }
    T_CHECK_EQ(mote_file_close(f), 0);
    free(got);
}

static void drop_pages(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    T_CHECK(fd >= 0);
    T_CHECK_EQ(fdatasync(fd), 0);
    T_CHECK_EQ(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
    close(fd);
}

static int main_big(void *arg) {
    tdir *d = arg;
    char p[256];
    char *want = malloc(BIG_SIZE);
    fill_pattern(want, BIG_SIZE, 9);
    write_pattern(at(p, d, "big"), BIG_SIZE, 9);
    read_big(p, want, 4096);
    read_big(p, want, 65536 + 512);
    drop_pages(p);
    read_big(p, want, 65536);
    drop_pages(p);
    read_big(p, want, 4096);
    free(want);
    return 0;
}

Test(file, large_reads_cached_and_not) {
    run_both_pollers(main_big);
}
