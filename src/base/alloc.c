/* alloc.c -- see alloc.h. */
#include "base/alloc.h"

#include <pthread.h>
#include <stdlib.h>

#if defined(MOTE_SANITIZER_BUILD) || defined(MOTE_ASAN) || defined(MOTE_TSAN)
void *mote__alloc(size_t size) {
    return malloc(size);
}
void mote__free(void *p, size_t size) {
    (void)size;
    free(p);
}
void mote__alloc_thread_init(void) {}
void mote__alloc_thread_exit(void) {}
void mote__alloc_release_all(void) {}
void mote__alloc_census(size_t size, size_t *carved, size_t *depot) {
    (void)size;
    *carved = *depot = 0;
}
#else

#define NCLASS 6 /* 64, 128, 256, 512, 1024, 2048 */
#define MAX_SMALL 2048
#define CHUNK (64 * 1024)
#define CACHE_LIMIT 1024

/* A free object. The first object of a batch in the depot also holds the
 * batch's bookkeeping (every class is at least 64 bytes), so that moving a
 * batch between a cache and the depot never walks its objects: a walk
 * touches one cold cache line per object, which cost more than everything
 * else in a spawn-and-monitor loop. */
typedef struct obj {
    struct obj *next;
    struct obj *batch_next; /* the depot's next batch */
    struct obj *tail;       /* the batch's last object */
    uint32_t n;             /* objects in the batch */
} obj;

typedef struct cache {
    obj *list[NCLASS];
    obj *tail[NCLASS]; /* list's last object; valid while list is not NULL */
    uint32_t n[NCLASS];
} cache;

typedef struct chunk {
    struct chunk *next;
    _Alignas(16) unsigned char mem[];
} chunk;

static struct {
    mote__spinlock lock;
    obj *batches[NCLASS]; /* a stack of batches */
    uint32_t n[NCLASS];   /* objects in them */
    size_t carved[NCLASS]; /* objects made from chunks (tests: census) */
    chunk *chunks;
} D = {.lock = MOTE_SPINLOCK_INIT};

static _Thread_local cache *tls_cache;

/* Not inlined: a process may resume on another thread between calls. */
static MOTE_NOINLINE cache *my_cache(void) {
    return tls_cache;
}

static inline int class_of(size_t size) {
    if (size <= 64)
        return 0;
    if (size > MAX_SMALL)
        return -1;
    return 64 - __builtin_clzl((unsigned long)(size - 1)) - 6;
}

/* With the depot lock held: push the chain head..tail of n objects. A
 * single object joins the top batch while that is small, so that foreign
 * frees do not leave a stack of one-object batches behind. */
static void depot_put(int c, obj *head, obj *tail, uint32_t n) {
    obj *top = D.batches[c];
    tail->next = NULL;
    if (n == 1 && top && top->n < CACHE_LIMIT) {
        head->next = top;
        head->batch_next = top->batch_next;
        head->tail = top->tail;
        head->n = top->n + 1;
    } else {
        head->batch_next = top;
        head->tail = tail;
        head->n = n;
    }
    D.batches[c] = head;
    D.n[c] += n;
}

/* With the depot lock held: take the top batch of class c, or carve a new
 * chunk into one. *got and *tail describe it; NULL if out of memory. */
static obj *depot_take(int c, uint32_t *got, obj **tail) {
    obj *b = D.batches[c];
    if (b) {
        D.batches[c] = b->batch_next;
        D.n[c] -= b->n;
        *got = b->n;
        *tail = b->tail;
        return b;
    }
    chunk *ch = malloc(CHUNK);
    if (!ch)
        return NULL;
    ch->next = D.chunks;
    D.chunks = ch;
    size_t osz = (size_t)64 << c;
    size_t count = (CHUNK - sizeof(chunk)) / osz;
    unsigned char *mem = ch->mem;
    for (size_t i = 0; i + 1 < count; i++)
        ((obj *)(mem + i * osz))->next = (obj *)(mem + (i + 1) * osz);
    *tail = (obj *)(mem + (count - 1) * osz);
    (*tail)->next = NULL;
    D.carved[c] += count;
    *got = (uint32_t)count;
    return (obj *)mem;
}

void *mote__alloc(size_t size) {
    int c = class_of(size);
    if (c < 0)
        return malloc(size);
    cache *k = my_cache();
    if (k && k->list[c]) {
        obj *o = k->list[c];
        k->list[c] = o->next;
        k->n[c]--;
        /* The next allocation reads the new head's link: objects come back
         * cold (freed on another thread, or long ago), so fetch it now. */
        if (o->next)
            __builtin_prefetch(o->next, 1);
        return o;
    }
    uint32_t got = 0;
    obj *tail = NULL;
    mote__spin_lock(&D.lock);
    obj *list = depot_take(c, &got, &tail);
    if (list && !k && got > 1) /* foreign thread: keep one, give the rest back */
        depot_put(c, list->next, tail, got - 1);
    mote__spin_unlock(&D.lock);
    if (!list)
        return NULL;
    if (k) {
        k->list[c] = list->next;
        k->tail[c] = tail;
        k->n[c] = got - 1;
    }
    return list;
}

void mote__free(void *p, size_t size) {
    if (!p)
        return;
    int c = class_of(size);
    if (c < 0) {
        free(p);
        return;
    }
    obj *o = p;
    cache *k = my_cache();
    if (!k) { /* foreign thread: straight to the depot */
        mote__spin_lock(&D.lock);
        depot_put(c, o, o, 1);
        mote__spin_unlock(&D.lock);
        return;
    }
    if (k->n[c] >= CACHE_LIMIT) {
        /* Full: the whole list goes to the depot as one batch; o, the
         * warmest object, starts the cache again. */
        mote__spin_lock(&D.lock);
        depot_put(c, k->list[c], k->tail[c], k->n[c]);
        mote__spin_unlock(&D.lock);
        k->list[c] = NULL;
        k->n[c] = 0;
    }
    if (!k->list[c])
        k->tail[c] = o;
    o->next = k->list[c];
    k->list[c] = o;
    k->n[c]++;
}

void mote__alloc_thread_init(void) {
    tls_cache = calloc(1, sizeof(cache));
}

void mote__alloc_thread_exit(void) {
    cache *k = tls_cache;
    tls_cache = NULL;
    if (!k)
        return;
    mote__spin_lock(&D.lock);
    for (int c = 0; c < NCLASS; c++)
        if (k->list[c])
            depot_put(c, k->list[c], k->tail[c], k->n[c]);
    mote__spin_unlock(&D.lock);
    free(k);
}

void mote__alloc_release_all(void) {
    mote__spin_lock(&D.lock);
    chunk *ch = D.chunks;
    D.chunks = NULL;
    for (int c = 0; c < NCLASS; c++) {
        D.batches[c] = NULL;
        D.n[c] = 0;
        D.carved[c] = 0;
    }
    mote__spin_unlock(&D.lock);
    while (ch) {
        chunk *next = ch->next;
        free(ch);
        ch = next;
    }
}

void mote__alloc_census(size_t size, size_t *carved, size_t *depot) {
    int c = class_of(size);
    mote__spin_lock(&D.lock);
    *carved = c < 0 ? 0 : D.carved[c];
    *depot = c < 0 ? 0 : D.n[c];
    mote__spin_unlock(&D.lock);
}
#endif
