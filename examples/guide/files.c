/* files.c -- files, paths and blocking sections. Regular files cannot be
 * polled, so every mote_file_ and mote_fs_ call runs in a blocking
 * section: if the disk is slow, a backup thread runs this worker's other
 * processes meanwhile. Your own blocking calls can do the same. */
#include <mote.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A blocking call of our own, in a section. */
static int host_name(char *buf, size_t len) {
    mote_blocking_begin();
    int r = gethostname(buf, len);
    int err = r < 0 ? mote_errno() : 0; /* no suspension inside a section */
    mote_blocking_end();
    return err;
}

static int demo(const char *dir) {
    char notes[128], today[160], copy[160];
    snprintf(notes, sizeof notes, "%s/notes", dir);
    snprintf(today, sizeof today, "%s/today.txt", notes);
    snprintf(copy, sizeof copy, "%s/copy.txt", notes);

    int r = mote_fs_mkdir(notes, true); /* like mkdir -p */
    if (r < 0)
        return r;
    mote_file *f;
    r = mote_file_open(&f, today, MOTE_FILE_WRITE | MOTE_FILE_CREATE | MOTE_FILE_TRUNCATE);
    if (r < 0)
        return r;
    const char text[] = "buy milk\ncall Ada\n";
    r = mote_file_write_all(f, text, strlen(text));
    mote_file_close(f);
    if (r < 0)
        return r;

    int64_t copied = mote_fs_copy(today, copy);
    printf("copied %lld bytes\n", (long long)copied);
    if ((r = mote_file_open(&f, copy, MOTE_FILE_READ)) < 0)
        return r;
    char buf[8];
    int64_t n = mote_file_pread(f, buf, sizeof buf, 0); /* the first 8 bytes */
    printf("the copy starts with \"%.*s\", size %lld\n", (int)n, buf, (long long)mote_file_size(f));
    mote_file_close(f);

    char **names;
    int count = mote_fs_list(notes, &names); /* sorted */
    for (int i = 0; i < count; i++)
        printf("notes/%s\n", names[i]);
    if (count >= 0)
        mote_fs_list_free(names);

    char host[256];
    if (host_name(host, sizeof host) == 0)
        printf("host name read in a blocking section\n");

    mote_fs_remove(copy); /* files first, then the empty directory */
    mote_fs_remove(today);
    return mote_fs_remove(notes);
}

static int app(void *arg) {
    (void)arg;
    char dir[] = "/tmp/mote-files-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    int r = demo(dir);
    if (r < 0)
        printf("error: %s\n", mote_strerror(r));
    mote_fs_remove(dir);
    return r < 0;
}

int main(void) {
    return mote_run(NULL, app, NULL);
}
