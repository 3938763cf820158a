/* Files under faults: write, read back through a buffered reader, copy,
 * list, remove. Whatever was written and read without error matches. */
#include "common.h"

#include <unistd.h>

enum { FILES = 3, LEN = 20000 };

static void fill(char *buf, int seed) {
    for (int i = 0; i < LEN; i++)
        buf[i] = (char)(seed * 131 + i * 7);
}

static void one_file(const char *dir, int k) {
    char path[256], copy[256];
    snprintf(path, sizeof path, "%s/f%d", dir, k);
    snprintf(copy, sizeof copy, "%s/c%d", dir, k);
    static char out[FILES][LEN], back[FILES][LEN];
    fill(out[k], k);
    mote_file *f = NULL;
    if (f_err("mote_file_open", mote_file_open(&f, path, MOTE_FILE_WRITE | MOTE_FILE_CREATE)) < 0)
        return;
    int w = f_err("mote_file_write_all", mote_file_write_all(f, out[k], LEN));
    f_err("mote_file_close", mote_file_close(f));
    if (w < 0)
        return;
    if (f_err("mote_fs_copy", (int)mote_fs_copy(path, copy)) < 0)
        snprintf(copy, sizeof copy, "%s", path);
    if (f_err("mote_file_open", mote_file_open(&f, copy, MOTE_FILE_READ)) < 0)
        return;
    mote_reader *r = NULL;
    if (f_err("mote_reader_new", mote_reader_new(&r, mote_file_stream(f), 1000)) == 0) {
        size_t got = 0;
        int64_t n;
        while (got < LEN && (n = mote_reader_read(r, back[k] + got, LEN - got, -1)) > 0)
            got += (size_t)n;
        F_CHECK(got == LEN && memcmp(out[k], back[k], LEN) == 0, "file %d: %zu bytes read back", k, got);
        mote_reader_free(r);
    }
    f_err("mote_file_close", mote_file_close(f));
}

static int main_fn(void *arg) {
    (void)arg;
    char dir[] = "/tmp/mote-fault-XXXXXX";
    if (!mkdtemp(dir)) {
        f_err("mkdtemp", -errno);
        return 0;
    }
    for (int k = 0; k < FILES; k++)
        one_file(dir, k);
    char **names = NULL;
    int n = f_err("mote_fs_list", mote_fs_list(dir, &names));
    for (int i = 0; i < n; i++) {
        char path[256];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        f_err("mote_fs_remove", mote_fs_remove(path));
    }
    mote_fs_list_free(names);
    if (n < 0) { /* clean up without mote */
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "fault-files: could not remove %s\n", dir);
    } else {
        f_err("mote_fs_remove", mote_fs_remove(dir));
    }
    return 0;
}

int main(void) {
    return f_run("fault-files", main_fn);
}
