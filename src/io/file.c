/*
 * file.c -- regular files and paths. Regular files cannot be polled (they
 * are always "ready" and a read may still wait for the disk), so every
 * system call here runs inside a blocking section: the worker may stall,
 * but the monitor hands its other processes to a backup thread. Nothing in
 * a section suspends, so the process stays on its OS thread from the call
 * to the errno read that follows it.
 *
 * Where the runtime polls with io_uring, reads and writes are io_uring
 * completions instead (uring.c): no blocking section, the process parks
 * until the completion and its worker runs the others; reads of what the
 * page cache holds stay system calls in blocking sections there too.
 *
 * Every call returns 0 or a count, or a negative errno. Descriptors are
 * opened close-on-exec.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include "io/internal.h"

/*
 * A file opened for reading only keeps its position here (pos >= 0), not in
 * the kernel: a read is a pread at pos, then pos moves on by a
 * compare-and-swap, and a reader that loses the swap to another reader or
 * to a seek reads again where the position now is, so that concurrent
 * reads each get their own stretch of the file, as with the kernel's
 * position. Why: the kernel serializes read(2)s of one open file through a
 * mutex once the process has more than one thread, which a pread skips,
 * and io_uring reads (uring.c) need the offset to ask what is cached.
 * The kernel's position is brought up to date and then used from there on
 * (pos == -1) once mote_file_fd hands the descriptor out, since its owner
 * may read, seek or share it. Files opened for writing, and files that are
 * not regular (pipes, terminals: no offsets), use the kernel's from the
 * start.
 */
struct mote_file {
    int fd;
    _Atomic int64_t pos;
    mote__file_hint hint; /* what the reads found cached, for uring.c */
};

/* Run a system call that returns -1 and sets errno on failure inside a
 * blocking section, retrying on EINTR. r receives the result, or -errno. */
#define BLOCKING_CALL(r, call)                                                                     \
    do {                                                                                           \
        mote_blocking_begin();                                                                     \
        for (;;) {                                                                                 \
            (r) = (call);                                                                          \
            if ((r) >= 0)                                                                          \
                break;                                                                             \
            (r) = mote__errno();                                                                   \
            if ((r) != -EINTR)                                                                     \
                break;                                                                             \
        }                                                                                          \
        mote_blocking_end();                                                                       \
    } while (0)

/* Clamp a request to what one read/write can report in an ssize_t. */
static size_t clamp_len(size_t len) {
    return len > (size_t)SSIZE_MAX ? (size_t)SSIZE_MAX : len;
}

/* ---- Open and close ---- */

#define ALL_FLAGS                                                                                  \
    (MOTE_FILE_READ | MOTE_FILE_WRITE | MOTE_FILE_APPEND | MOTE_FILE_CREATE | MOTE_FILE_TRUNCATE | \
     MOTE_FILE_EXCL)

/* mote flags -> open(2) flags, or -EINVAL. */
static int open_flags(int flags) {
    if (flags == 0 || (flags & ~ALL_FLAGS))
        return -EINVAL;
    if (flags & MOTE_FILE_APPEND)
        flags |= MOTE_FILE_WRITE;
    bool rd = flags & MOTE_FILE_READ, wr = flags & MOTE_FILE_WRITE;
    if (!rd && !wr) /* CREATE, TRUNCATE or EXCL alone */
        return -EINVAL;
    if ((flags & (MOTE_FILE_TRUNCATE | MOTE_FILE_EXCL)) && !wr)
        return -EINVAL;
    int o = O_CLOEXEC | (rd && wr ? O_RDWR : wr ? O_WRONLY : O_RDONLY);
    if (flags & MOTE_FILE_APPEND)
        o |= O_APPEND;
    if (flags & MOTE_FILE_CREATE)
        o |= O_CREAT;
    if (flags & MOTE_FILE_TRUNCATE)
        o |= O_TRUNC;
    if (flags & MOTE_FILE_EXCL)
        o |= O_EXCL;
    return o;
}

int mote_file_open(mote_file **out, const char *path, int flags) {
    if (!out)
        return -EINVAL;
    *out = NULL;
    int o = open_flags(flags);
    if (!path || o < 0)
        return -EINVAL;
    mote_file *f = malloc(sizeof *f);
    if (!f)
        return -ENOMEM;
    int fd;
    BLOCKING_CALL(fd, open(path, o, 0666));
    if (fd < 0) {
        free(f);
        return fd;
    }
    struct stat st;
    int r = -1;
    if ((o & O_ACCMODE) == O_RDONLY)
        BLOCKING_CALL(r, fstat(fd, &st));
    *f = (mote_file){.fd = fd, .pos = r == 0 && S_ISREG(st.st_mode) ? 0 : -1};
    *out = f;
    return 0;
}

int mote_file_close(mote_file *f) {
    if (!f)
        return -EINVAL;
    int r;
    /* No retry on EINTR: Linux has released the descriptor either way. */
    mote_blocking_begin();
    r = close(f->fd);
    if (r < 0)
        r = mote__errno();
    mote_blocking_end();
    free(f);
    return r == -EINTR ? 0 : r;
}

int mote_file_fd(const mote_file *cf) {
    if (!cf)
        return -EINVAL;
    mote_file *f = (mote_file *)(uintptr_t)cf; /* always malloc'ed: only the position moves */
    int64_t p = atomic_load(&f->pos);
    while (p >= 0) {
        /* The kernel's position first, then the switch: a read that moved
         * pos meanwhile fails its swap and reads again the kernel's way. */
        off_t r;
        BLOCKING_CALL(r, lseek(f->fd, (off_t)p, SEEK_SET));
        if (r < 0) /* beyond the largest file size (mote_file_seek allows it): */
            BLOCKING_CALL(r, lseek(f->fd, 0, SEEK_END)); /* reads see the end all the same */
        if (atomic_compare_exchange_strong(&f->pos, &p, -1))
            break;
    }
    return f->fd;
}

/* ---- Reading and writing ---- */

/* One read at off, or at the kernel's position (off < 0). Reads in a
 * window that io_uring's path found cached go straight to the pread. */
static int64_t read_at(mote_file *f, void *buf, size_t len, int64_t off) {
    int64_t r = -ENOTSUP;
    if (off < 0 || !mote__file_hint_hit(&f->hint, off, len))
        r = mote__uring_file_io(f->fd, buf, len, off, false, &f->hint);
    if (r != -ENOTSUP)
        return r;
    /* no io_uring here, or cached: the call in a blocking section. pread
     * as the bare system call: glibc's is a cancellation point, which in a
     * multi-threaded process costs two atomic updates of the thread's
     * cancellation state per call (about 1 % of a cached 4 KiB read), and
     * nothing cancels mote's threads. */
    if (off < 0)
        BLOCKING_CALL(r, read(f->fd, buf, len));
    else
        BLOCKING_CALL(r, syscall(SYS_pread64, f->fd, buf, len, (off_t)off));
    return r;
}

int64_t mote_file_read(mote_file *f, void *buf, size_t len) {
    if (!f || (!buf && len))
        return -EINVAL;
    for (;;) {
        int64_t p = atomic_load(&f->pos);
        int64_t r = read_at(f, buf, clamp_len(len), p);
        /* An error or the end, at p: as if read before whatever moved pos. */
        if (p < 0 || r <= 0 || atomic_compare_exchange_strong(&f->pos, &p, p + r))
            return r;
        /* Another read or a seek moved the position: read where it is now. */
    }
}

int64_t mote_file_write(mote_file *f, const void *buf, size_t len) {
    if (!f || (!buf && len))
        return -EINVAL;
    ssize_t r = mote__uring_file_io(f->fd, (void *)(uintptr_t)buf, clamp_len(len), -1, true, NULL);
    if (r == -ENOTSUP) /* no io_uring here: the call in a blocking section */
        BLOCKING_CALL(r, write(f->fd, buf, clamp_len(len)));
    return r;
}

int mote_file_write_all(mote_file *f, const void *buf, size_t len) {
    if (!f || (!buf && len))
        return -EINVAL;
    const char *p = buf;
    while (len > 0) {
        int64_t n = mote_file_write(f, p, len);
        if (n < 0)
            return (int)n;
        if (n == 0)
            return -EIO; /* no progress and no error: do not spin */
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int64_t mote_file_pread(mote_file *f, void *buf, size_t len, uint64_t off) {
    if (!f || (!buf && len) || off > INT64_MAX)
        return -EINVAL;
    return read_at(f, buf, clamp_len(len), (int64_t)off);
}

int64_t mote_file_pwrite(mote_file *f, const void *buf, size_t len, uint64_t off) {
    if (!f || (!buf && len) || off > INT64_MAX)
        return -EINVAL;
    ssize_t r = mote__uring_file_io(f->fd, (void *)(uintptr_t)buf, clamp_len(len), (int64_t)off, true, NULL);
    if (r == -ENOTSUP) /* no io_uring here: the call in a blocking section */
        BLOCKING_CALL(r, pwrite(f->fd, buf, clamp_len(len), (off_t)off));
    return r;
}

int64_t mote_file_seek(mote_file *f, int64_t off, int whence) {
    if (!f || (whence != SEEK_SET && whence != SEEK_CUR && whence != SEEK_END))
        return -EINVAL;
    for (;;) {
        int64_t p = atomic_load(&f->pos);
        off_t r;
        if (p < 0) {
            BLOCKING_CALL(r, lseek(f->fd, (off_t)off, whence));
            return r;
        }
        /* SEEK_SET and SEEK_CUR leave the kernel's position alone: a
         * concurrent mote_file_fd may have just set it, and a SEEK_CUR
         * that then fails its swap is applied again, the kernel's way.
         * Only a negative or overflowing position is refused (lseek would
         * also refuse one beyond the file system's largest file size;
         * reads there find the end of the file). SEEK_END asks the kernel
         * for the size, and moving its position there is harmless: it is
         * the same wherever it is applied. */
        if (whence == SEEK_END)
            BLOCKING_CALL(r, lseek(f->fd, (off_t)off, SEEK_END));
        else if (whence == SEEK_SET)
            r = off < 0 ? -EINVAL : off;
        else
            r = (off > 0 ? p > INT64_MAX - off : p + off < 0) ? -EINVAL : p + off;
        if (r < 0 || atomic_compare_exchange_strong(&f->pos, &p, (int64_t)r))
            return r;
        /* A read or a seek moved the position meanwhile: SEEK_CUR from
         * where it is now (or the kernel's way, if mote_file_fd ran). */
    }
}

/* ---- Metadata ---- */

static void info_from_stat(const struct stat *st, mote_file_info *out) {
    memset(out, 0, sizeof *out);
    out->size = st->st_size > 0 ? (uint64_t)st->st_size : 0;
    out->mode = (uint32_t)st->st_mode;
    out->is_dir = S_ISDIR(st->st_mode);
    out->is_file = S_ISREG(st->st_mode);
    out->is_symlink = S_ISLNK(st->st_mode);
    out->mtime = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

static int fstat_of(mote_file *f, struct stat *st) {
    if (!f)
        return -EINVAL;
    int r;
    BLOCKING_CALL(r, fstat(f->fd, st));
    return r;
}

int64_t mote_file_size(mote_file *f) {
    struct stat st;
    int r = fstat_of(f, &st);
    return r < 0 ? r : (int64_t)st.st_size;
}

int mote_file_truncate(mote_file *f, uint64_t size) {
    if (!f || size > INT64_MAX)
        return -EINVAL;
    int r;
    BLOCKING_CALL(r, ftruncate(f->fd, (off_t)size));
    return r;
}

int mote_file_sync(mote_file *f) {
    if (!f)
        return -EINVAL;
    int r;
    BLOCKING_CALL(r, fsync(f->fd));
    return r;
}

int mote_file_info_of(mote_file *f, mote_file_info *out) {
    if (!out)
        return -EINVAL;
    struct stat st;
    int r = fstat_of(f, &st);
    if (r == 0)
        info_from_stat(&st, out);
    return r;
}

/* ---- The stream ---- */

static int64_t file_stream_read(void *obj, void *buf, size_t len, int64_t timeout) {
    (void)timeout; /* a regular file never waits for data */
    return mote_file_read(obj, buf, len);
}

static int64_t file_stream_write(void *obj, const void *buf, size_t len, int64_t timeout) {
    (void)timeout;
    int64_t n = mote_file_write(obj, buf, len);
    return n == 0 && len > 0 ? -EIO : n; /* a stream write makes progress or fails */
}

static const mote_stream_vt file_stream_vt = {file_stream_read, file_stream_write};

mote_stream mote_file_stream(mote_file *f) {
    mote_stream s = {&file_stream_vt, f}; /* a NULL f makes every call -EINVAL */
    return s;
}

/* ---- Paths ---- */

/* Follows symlinks; is_symlink tells whether path itself is one. */
int mote_fs_info(const char *path, mote_file_info *out) {
    if (!path || !out)
        return -EINVAL;
    struct stat st, lst;
    int r;
    BLOCKING_CALL(r, stat(path, &st));
    if (r < 0)
        return r;
    info_from_stat(&st, out);
    BLOCKING_CALL(r, lstat(path, &lst));
    if (r == 0 && S_ISLNK(lst.st_mode))
        out->is_symlink = true;
    return 0;
}

int mote_fs_remove(const char *path) {
    if (!path)
        return -EINVAL;
    int r;
    BLOCKING_CALL(r, unlink(path));
    if (r == -EISDIR)
        BLOCKING_CALL(r, rmdir(path));
    return r;
}

int mote_fs_rename(const char *from, const char *to) {
    if (!from || !to)
        return -EINVAL;
    int r;
    BLOCKING_CALL(r, rename(from, to));
    return r;
}

/* mkdir one directory; with ok_if_dir an existing directory is success and
 * an existing non-directory is -ENOTDIR (when more follows) or -EEXIST. */
static int mkdir_one(const char *path, bool ok_if_dir, bool last) {
    int r;
    BLOCKING_CALL(r, mkdir(path, 0777));
    if (r != -EEXIST || !ok_if_dir)
        return r;
    struct stat st;
    int s;
    BLOCKING_CALL(s, stat(path, &st));
    if (s < 0)
        return s;
    if (S_ISDIR(st.st_mode))
        return 0;
    return last ? -EEXIST : -ENOTDIR;
}

int mote_fs_mkdir(const char *path, bool parents) {
    if (!path)
        return -EINVAL;
    if (!parents)
        return mkdir_one(path, false, true);
    size_t n = strlen(path);
    if (n == 0)
        return -ENOENT;
    while (n > 1 && path[n - 1] == '/') /* "a/b/" names "a/b" */
        n--;
    char *buf = malloc(n + 1);
    if (!buf)
        return -ENOMEM;
    memcpy(buf, path, n);
    buf[n] = '\0';
    int r = 0;
    /* Each prefix ending before a '/', then the whole path. */
    for (size_t i = 1; i <= n && r == 0; i++) {
        if (i < n && (buf[i] != '/' || buf[i - 1] == '/'))
            continue;
        char saved = buf[i];
        buf[i] = '\0';
        r = mkdir_one(buf, true, i == n);
        buf[i] = saved;
    }
    free(buf);
    return r;
}

static int cmp_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void mote_fs_list_free(char **names) {
    if (!names)
        return;
    for (char **p = names; *p; p++)
        free(*p);
    free(names);
}

/* Read every name of dir into a NULL-terminated array. Runs inside a
 * blocking section (it makes system calls and never suspends). */
static int list_dir(DIR *dir, char ***out) {
    size_t n = 0, cap = 16;
    char **names = calloc(cap + 1, sizeof *names);
    if (!names)
        return -ENOMEM;
    for (;;) {
        errno = 0;
        struct dirent *e = readdir(dir);
        if (!e) {
            int err = mote__errno();
            if (err != 0) {
                mote_fs_list_free(names);
                return err;
            }
            break;
        }
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (n == (size_t)INT_MAX) {
            mote_fs_list_free(names);
            return -EOVERFLOW;
        }
        if (n == cap) {
            char **more = realloc(names, (cap * 2 + 1) * sizeof *names);
            if (!more) {
                mote_fs_list_free(names);
                return -ENOMEM;
            }
            names = more;
            cap *= 2;
        }
        if (!(names[n] = strdup(e->d_name))) {
            mote_fs_list_free(names);
            return -ENOMEM;
        }
        names[++n] = NULL;
    }
    qsort(names, n, sizeof *names, cmp_names);
    *out = names;
    return (int)n;
}

int mote_fs_list(const char *path, char ***out) {
    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!path)
        return -EINVAL;
    int fd;
    BLOCKING_CALL(fd, open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (fd < 0)
        return fd;
    int r;
    mote_blocking_begin();
    DIR *dir = fdopendir(fd);
    if (!dir) {
        r = mote__errno();
        close(fd);
    } else {
        r = list_dir(dir, out);
        closedir(dir);
    }
    mote_blocking_end();
    return r;
}

/* ---- Copy ---- */

#define COPY_CHUNK ((size_t)1 << 20)

/* Plain read/write from the current offsets; adds to *copied. */
static int copy_rw(int in, int out, int64_t *copied) {
    char *buf = malloc(64 * 1024);
    if (!buf)
        return -ENOMEM;
    int r = 0;
    for (;;) {
        ssize_t n;
        BLOCKING_CALL(n, read(in, buf, 64 * 1024));
        if (n <= 0) {
            r = (int)n;
            break;
        }
        for (ssize_t done = 0; done < n;) {
            ssize_t w;
            BLOCKING_CALL(w, write(out, buf + done, (size_t)(n - done)));
            if (w <= 0) {
                r = w < 0 ? (int)w : -EIO;
                goto out;
            }
            done += w;
        }
        *copied += n;
    }
out:
    free(buf);
    return r;
}

/* copy_file_range in the kernel (reflinks, server-side copies), falling
 * back to read/write where the file systems do not support it. */
static int copy_data(int in, int out, int64_t *copied) {
    for (;;) {
        ssize_t n;
        BLOCKING_CALL(n, copy_file_range(in, NULL, out, NULL, COPY_CHUNK, 0));
        if (n > 0) {
            *copied += n;
            continue;
        }
        if (n == 0 && *copied > 0)
            return 0;
        /* Nothing copied yet: an empty file, or one whose size the kernel
         * does not know (procfs and the like report 0); read to be sure. */
        if (n == 0 || n == -ENOSYS || n == -EXDEV || n == -EINVAL || n == -EOPNOTSUPP ||
            n == -EPERM || n == -ETXTBSY)
            return copy_rw(in, out, copied);
        return (int)n;
    }
}

int64_t mote_fs_copy(const char *from, const char *to) {
    if (!from || !to)
        return -EINVAL;
    int in, out, r;
    BLOCKING_CALL(in, open(from, O_RDONLY | O_CLOEXEC));
    if (in < 0)
        return in;
    struct stat sst, dst;
    BLOCKING_CALL(r, fstat(in, &sst));
    if (r == 0 && !S_ISREG(sst.st_mode))
        r = S_ISDIR(sst.st_mode) ? -EISDIR : -EINVAL;
    int64_t copied = 0;
    mode_t mode = sst.st_mode & 0777;
    out = -1;
    if (r == 0)
        BLOCKING_CALL(out, open(to, O_WRONLY | O_CREAT | O_CLOEXEC, mode));
    if (r == 0 && out < 0)
        r = out;
    if (r == 0)
        BLOCKING_CALL(r, fstat(out, &dst));
    /* Not O_TRUNC at open: copying a file onto itself must not empty it. */
    if (r == 0 && dst.st_dev == sst.st_dev && dst.st_ino == sst.st_ino)
        r = -EINVAL;
    if (r == 0)
        BLOCKING_CALL(r, ftruncate(out, 0));
    if (r == 0)
        BLOCKING_CALL(r, fchmod(out, mode)); /* an existing file keeps its mode otherwise */
    if (r == 0)
        r = copy_data(in, out, &copied);
    mote_blocking_begin();
    if (out >= 0 && close(out) < 0) {
        int err = mote__errno(); /* a delayed write error (NFS and the like) */
        if (r == 0 && err != -EINTR)
            r = err;
    }
    close(in);
    mote_blocking_end();
    return r < 0 ? r : copied;
}
