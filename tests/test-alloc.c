/*
 * test-alloc.c -- the small-object allocator on its own (src/base/alloc.c),
 * without a runtime: every size class and the sizes around its edges,
 * objects that never overlap (each is filled with a pattern of its own and
 * checked later), caches that overflow into the depot and refill from it,
 * objects freed on another thread than the one that allocated them (some
 * with a cache, some foreign), and the census at the end: once every cache
 * is dropped, every object carved from a chunk is back in the depot, and
 * releasing the chunks forgets them all.
 *
 * Sanitizer builds use malloc underneath (so ASan sees every object): the
 * same tests then check the wrappers, and LeakSanitizer that nothing stays
 * allocated; the census is the slab build's.
 */
#include "helpers.h"

#include "base/alloc.h"

#ifdef MOTE_SANITIZER_BUILD
#define SLAB 0
#else
#define SLAB 1
#endif

/* Sizes at and around each class edge, and past the largest (malloc). */
static const size_t SIZES[] = {1,   8,   16,   63,   64,   65,   127,  128,  129,  255,   256,
                               257, 511, 512,  513,  1023, 1024, 1025, 2047, 2048, 2049, 70000};
#define NSIZES (sizeof SIZES / sizeof SIZES[0])
/* One size per class (and one past them), for the census. */
static const size_t CLASS_SIZES[] = {64, 128, 256, 512, 1024, 2048};
#define NCLASSES (sizeof CLASS_SIZES / sizeof CLASS_SIZES[0])

/* An object's pattern: its tag in every byte's position-dependent form, so
 * an overlap with any other object (or a stale free-list link) shows. */
static unsigned char pattern_byte(uint32_t tag, size_t i) {
    return (unsigned char)((tag * 2654435761u) >> 24 ^ (uint32_t)i * 31u);
}

static void fill(void *p, size_t size, uint32_t tag) {
    unsigned char *b = p;
    for (size_t i = 0; i < size; i++)
        b[i] = pattern_byte(tag, i);
}

static bool intact(const void *p, size_t size, uint32_t tag) {
    const unsigned char *b = p;
    for (size_t i = 0; i < size; i++)
        if (b[i] != pattern_byte(tag, i))
            return false;
    return true;
}

/* Every class: objects back in the depot, as many as were carved. */
static void census_all_home(void) {
    for (size_t c = 0; c < NCLASSES; c++) {
        size_t carved, depot;
        mote__alloc_census(CLASS_SIZES[c], &carved, &depot);
        cr_assert_eq(depot, carved, "class %zu: %zu carved, %zu in the depot", CLASS_SIZES[c], carved,
                     depot);
    }
}

static void release_and_check(void) {
    mote__alloc_release_all();
    for (size_t c = 0; c < NCLASSES; c++) {
        size_t carved, depot;
        mote__alloc_census(CLASS_SIZES[c], &carved, &depot);
        cr_assert(carved == 0 && depot == 0, "class %zu still counts objects", CLASS_SIZES[c]);
    }
    t_assert_clean(); /* LeakSanitizer: nothing left */
}

Test(alloc, every_size_aligned_and_disjoint) {
    enum { PER = 50 };
    static void *obj[NSIZES][PER];
    mote__alloc_thread_init();
    for (size_t s = 0; s < NSIZES; s++)
        for (int k = 0; k < PER; k++) {
            void *p = mote__alloc(SIZES[s]);
            cr_assert(p != NULL);
            cr_assert_eq((uintptr_t)p % 16, 0, "size %zu: %p is not 16-byte aligned", SIZES[s], p);
            fill(p, SIZES[s], (uint32_t)(s * PER + (size_t)k));
            obj[s][k] = p;
        }
    for (size_t s = 0; s < NSIZES; s++)
        for (int k = 0; k < PER; k++)
            cr_assert(intact(obj[s][k], SIZES[s], (uint32_t)(s * PER + (size_t)k)),
                      "size %zu, object %d overwritten", SIZES[s], k);
    /* Free every other one and allocate again: reused memory must not
     * overlap the survivors. */
    for (size_t s = 0; s < NSIZES; s++)
        for (int k = 0; k < PER; k += 2) {
            mote__free(obj[s][k], SIZES[s]);
            obj[s][k] = mote__alloc(SIZES[s]);
            cr_assert(obj[s][k] != NULL);
            fill(obj[s][k], SIZES[s], (uint32_t)(100000 + s * PER + (size_t)k));
        }
    for (size_t s = 0; s < NSIZES; s++)
        for (int k = 0; k < PER; k++) {
            uint32_t tag = (uint32_t)((k % 2 ? 0 : 100000) + s * PER + (size_t)k);
            cr_assert(intact(obj[s][k], SIZES[s], tag), "size %zu, object %d overwritten", SIZES[s], k);
            mote__free(obj[s][k], SIZES[s]);
        }
    mote__free(NULL, 64); /* allowed, does nothing */
    mote__alloc_thread_exit();
    census_all_home();
    release_and_check();
}

/* The slab build's bookkeeping, step by step. */
Test(alloc, census_of_caches_and_depot) {
    if (!SLAB)
        cr_skip_test("sanitizer build: the allocator is malloc");
    size_t carved, depot;
    mote__alloc_census(256, &carved, &depot);
    cr_assert(carved == 0 && depot == 0);
    /* A foreign thread (no cache) keeps one object of a fresh chunk and
     * leaves the rest in the depot. */
    void *f = mote__alloc(256);
    mote__alloc_census(256, &carved, &depot);
    cr_assert(carved > 1);
    cr_assert_eq(depot, carved - 1);
    /* It frees straight into the depot. */
    mote__free(f, 256);
    mote__alloc_census(256, &carved, &depot);
    cr_assert_eq(depot, carved);
    /* A thread with a cache takes a batch, and holds what it frees in its
     * cache only up to a limit: freeing many gives most of them back. */
    enum { N = 5000 };
    static void *obj[N];
    mote__alloc_thread_init();
    for (int i = 0; i < N; i++) {
        obj[i] = mote__alloc(256);
        cr_assert(obj[i] != NULL);
        fill(obj[i], 256, (uint32_t)i);
    }
    mote__alloc_census(256, &carved, &depot);
    cr_assert(depot + N <= carved, "%zu carved, %zu live, %zu in the depot", carved, (size_t)N, depot);
    for (int i = 0; i < N; i++) {
        cr_assert(intact(obj[i], 256, (uint32_t)i), "object %d overwritten", i);
        mote__free(obj[i], 256);
    }
    mote__alloc_census(256, &carved, &depot);
    /* alloc.c's CACHE_LIMIT is 1024. */
    cr_assert(depot + 1024 >= carved, "a cache keeps at most 1024 objects: %zu of %zu in the depot",
              depot, carved);
    cr_assert(depot < carved, "but it keeps some");
    /* Dropping the cache returns the rest. */
    mote__alloc_thread_exit();
    census_all_home();
    release_and_check();
}

/* ---- Cross-thread: producers allocate, consumers check and free ---------------- */

enum { PRODUCERS = 2, CONSUMERS = 3, QCAP = 1024, HOLD = 200 };

typedef struct item {
    void *p;
    size_t size;
    uint32_t tag;
} item;

/* One bounded queue all producers push into and all consumers pop from. */
static struct {
    pthread_mutex_t lock;
    pthread_cond_t not_empty, not_full;
    item q[QCAP];
    size_t head, len;
    int producers_left;
} Q = {.lock = PTHREAD_MUTEX_INITIALIZER,
       .not_empty = PTHREAD_COND_INITIALIZER,
       .not_full = PTHREAD_COND_INITIALIZER};

static _Atomic uint64_t freed_total;
static int per_producer;

static void q_put(item it) {
    pthread_mutex_lock(&Q.lock);
    while (Q.len == QCAP)
        pthread_cond_wait(&Q.not_full, &Q.lock);
    Q.q[(Q.head + Q.len++) % QCAP] = it;
    pthread_cond_signal(&Q.not_empty);
    pthread_mutex_unlock(&Q.lock);
}

/* False once every producer finished and the queue is empty. */
static bool q_get(item *out) {
    pthread_mutex_lock(&Q.lock);
    while (Q.len == 0 && Q.producers_left > 0)
        pthread_cond_wait(&Q.not_empty, &Q.lock);
    bool got = Q.len > 0;
    if (got) {
        *out = Q.q[Q.head];
        Q.head = (Q.head + 1) % QCAP;
        Q.len--;
        pthread_cond_signal(&Q.not_full);
    }
    pthread_mutex_unlock(&Q.lock);
    return got;
}

/* A producer has a cache; it also frees some of its own objects itself,
 * so its cache both drains and fills. */
static void *producer_main(void *arg) {
    int me = (int)(intptr_t)arg;
    mote__alloc_thread_init();
    uint32_t rnd = 0x9e3779b9u + (uint32_t)me;
    for (int i = 0; i < per_producer; i++) {
        size_t size = SIZES[t_rand(&rnd) % NSIZES];
        if (size > 4096)
            size = 3000; /* past the classes, but cheap to fill */
        uint32_t tag = (uint32_t)me << 28 | (uint32_t)i;
        void *p = mote__alloc(size);
        T_CHECK(p != NULL);
        if (!p)
            break;
        fill(p, size, tag);
        if (t_rand(&rnd) % 4 == 0) {
            T_CHECK(intact(p, size, tag));
            mote__free(p, size);
            atomic_fetch_add(&freed_total, 1);
        } else {
            q_put((item){p, size, tag});
        }
    }
    pthread_mutex_lock(&Q.lock);
    Q.producers_left--;
    pthread_cond_broadcast(&Q.not_empty);
    pthread_mutex_unlock(&Q.lock);
    mote__alloc_thread_exit();
    return NULL;
}

/* A consumer holds the last HOLD objects it got (checking them all now and
 * then, so an object handed out twice shows as a broken pattern) and
 * frees the oldest. Consumer 0 is a foreign thread without a cache. */
static void *consumer_main(void *arg) {
    int me = (int)(intptr_t)arg;
    if (me != 0)
        mote__alloc_thread_init();
    item held[HOLD];
    size_t n = 0, next = 0;
    uint64_t got = 0;
    item it;
    while (q_get(&it)) {
        if (n == HOLD) {
            item *old = &held[next];
            T_CHECK(intact(old->p, old->size, old->tag));
            mote__free(old->p, old->size);
            atomic_fetch_add(&freed_total, 1);
            *old = it;
            next = (next + 1) % HOLD;
        } else {
            held[n++] = it;
        }
        if (++got % 512 == 0)
            for (size_t k = 0; k < n; k++)
                T_CHECK(intact(held[k].p, held[k].size, held[k].tag));
    }
    for (size_t k = 0; k < n; k++) {
        T_CHECK(intact(held[k].p, held[k].size, held[k].tag));
        mote__free(held[k].p, held[k].size);
        atomic_fetch_add(&freed_total, 1);
    }
    if (me != 0)
        mote__alloc_thread_exit();
    return NULL;
}

Test(alloc, cross_thread_frees) {
    alarm(T_HANG_GUARD);
    per_producer = T_SCALE(150000, 20000);
    Q.producers_left = PRODUCERS;
    pthread_t th[PRODUCERS + CONSUMERS];
    for (int i = 0; i < CONSUMERS; i++)
        th[i] = t_thread(consumer_main, (void *)(intptr_t)i);
    for (int i = 0; i < PRODUCERS; i++)
        th[CONSUMERS + i] = t_thread(producer_main, (void *)(intptr_t)i);
    for (int i = 0; i < PRODUCERS + CONSUMERS; i++)
        cr_assert(t_join(th[i]));
    t_assert_clean();
    cr_assert_eq(atomic_load(&freed_total), (uint64_t)PRODUCERS * (uint64_t)per_producer);
    census_all_home();
    release_and_check();
}
