/* Process names: set, read back, cut, removed, from any thread. */
#include "helpers.h"

static int main_names(void *arg) {
    (void)arg;
    mote_proc *p = NULL;
    T_CHECK_EQ(mote_spawn(&p, NULL, 8, NULL), 0);
    char buf[MOTE_NAME_MAX];
    T_CHECK_EQ(mote_proc_name(p, buf, sizeof buf), 0); /* no name yet */
    T_CHECK_EQ(buf[0], '\0');
    T_CHECK_EQ(mote_proc_set_name(p, "worker-7"), 0);
    T_CHECK_EQ(mote_proc_name(p, buf, sizeof buf), 8);
    T_CHECK(strcmp(buf, "worker-7") == 0);
    /* A small buffer gets a cut copy, still terminated. */
    char small[4];
    T_CHECK_EQ(mote_proc_name(p, small, sizeof small), 3);
    T_CHECK(strcmp(small, "wor") == 0);
    /* Renaming replaces; the caller's bytes are copied. */
    char mine[16] = "renamed";
    T_CHECK_EQ(mote_proc_set_name(p, mine), 0);
    mine[0] = 'X';
    T_CHECK_EQ(mote_proc_name(p, buf, sizeof buf), 7);
    T_CHECK(strcmp(buf, "renamed") == 0);
    /* Too long: cut to MOTE_NAME_MAX - 1 bytes. */
    char longname[100];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    T_CHECK_EQ(mote_proc_set_name(p, longname), 0);
    T_CHECK_EQ(mote_proc_name(p, buf, sizeof buf), MOTE_NAME_MAX - 1);
    /* Never inside a UTF-8 character: 30 ASCII bytes, then a 3-byte
     * character that would straddle the limit. */
    char utf[64];
    memset(utf, 'b', 30);
    strcpy(utf + 30, "\xe2\x82\xac tail");
    T_CHECK_EQ(mote_proc_set_name(p, utf), 0);
    T_CHECK_EQ(mote_proc_name(p, buf, sizeof buf), 30);
    /* NULL and "" remove it. */
    T_CHECK_EQ(mote_proc_set_name(p, NULL), 0);
    T_CHECK_EQ(mote_proc_name(p, buf, sizeof buf), 0);
    T_CHECK_EQ(mote_proc_set_name(p, "again"), 0);
    T_CHECK_EQ(mote_proc_set_name(p, ""), 0);
    T_CHECK_EQ(mote_proc_name(p, buf, sizeof buf), 0);
    /* The calling process names itself. */
    T_CHECK_EQ(mote_proc_set_name(mote_self(), "main"), 0);
    T_CHECK_EQ(mote_proc_name(mote_self(), buf, sizeof buf), 4);
    mote_proc_release(p);
    return 0;
}

Test(names, set_get_cut_remove) { T_RUN_OK(NULL, main_names, NULL); }

Test(names, bad_arguments) {
    char buf[8];
    cr_assert_eq(mote_proc_set_name(NULL, "x"), -EINVAL);
    cr_assert_eq(mote_proc_name(NULL, buf, sizeof buf), -EINVAL);
}

/* Many threads rename one process while others read its name: every read
 * is one of the names written, whole. */
typedef struct rename_job {
    mote_proc *p;
    int which;
} rename_job;

static void *thread_rename(void *arg) {
    rename_job *j = arg;
    for (int i = 0; i < T_SCALE(20000, 2000); i++)
        T_CHECK_EQ(mote_proc_set_name(j->p, j->which ? "BBBBBBBBBBBBBBBB" : "aaaa"), 0);
    return NULL;
}

static void *thread_read(void *arg) {
    rename_job *j = arg;
    char buf[MOTE_NAME_MAX];
    for (int i = 0; i < T_SCALE(20000, 2000); i++) {
        int n = mote_proc_name(j->p, buf, sizeof buf);
        T_CHECK(n == 0 || strcmp(buf, "aaaa") == 0 || strcmp(buf, "BBBBBBBBBBBBBBBB") == 0);
    }
    return NULL;
}

static int main_rename_race(void *arg) {
    (void)arg;
    mote_proc *p = NULL;
    T_CHECK_EQ(mote_spawn(&p, NULL, 0, NULL), 0);
    rename_job a = {p, 0}, b = {p, 1};
    pthread_t t1 = t_thread(thread_rename, &a), t2 = t_thread(thread_rename, &b);
    pthread_t t3 = t_thread(thread_read, &a);
    t_join(t1);
    t_join(t2);
    t_join(t3);
    mote_proc_release(p);
    return 0;
}

Test(names, concurrent_renames_are_whole) { T_RUN_OK(NULL, main_rename_race, NULL); }
