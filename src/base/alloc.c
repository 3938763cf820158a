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
#define BATCH 64
#define CACHE_LIMIT 1024

typedef struct obj {
    struct obj *next;
} obj;

typedef struct cache {
    obj *list[NCLASS];
    uint32_t n[NCLASS];
} cache;

typedef struct chunk {
    struct chunk *next;
    _Alignas(16) unsigned char mem[];
} chunk;

static struct {
    mote__spinlock lock;
    obj *list[NCLASS];
    uint32_t n[NCLASS];
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


/* With the depot lock held: take up to BATCH objects of class c. */
static obj *depot_take(int c, uint32_t *got) {
    obj *head = D.list[c];
    uint32_t n = 0;
    obj *last = NULL;
    for (obj *o = head; o && n < BATCH; o = o->next) {
        last = o;
        n++;
    }
    if (n) {
        D.list[c] = last->next;
        D.n[c] -= n;
        last->next = NULL;
        *got = n;
        return head;
    }
    /* Carve a new chunk. */
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
    ((obj *)(mem + (count - 1) * osz))->next = NULL;
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
        return o;
    }
    uint32_t got = 0;
    mote__spin_lock(&D.lock);
    obj *list = depot_take(c, &got);
    if (list && !k) { /* foreign thread: keep one, give the rest back */
        obj *rest = list->next;
        if (rest) {
            obj *last = rest;
            while (last->next)
                last = last->next;
            last->next = D.list[c];
            D.list[c] = rest;
            D.n[c] += got - 1;
        }
    }
    mote__spin_unlock(&D.lock);
    if (!list)
        return NULL;
    if (k) {
        k->list[c] = list->next;
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
    if (k && k->n[c] < CACHE_LIMIT) {
        o->next = k->list[c];
        k->list[c] = o;
        k->n[c]++;
        return;
    }
    /* Foreign thread, or a full cache: hand this one (and half the cache)
     * to the depot. */
    obj *first = o, *last = o;
    uint32_t n = 1;
    if (k) {
        while (k->n[c] > CACHE_LIMIT / 2) {
            obj *x = k->list[c];
            k->list[c] = x->next;
            k->n[c]--;
            last->next = x;
            last = x;
            n++;
        }
    }
    mote__spin_lock(&D.lock);
    last->next = D.list[c];
    D.list[c] = first;
    D.n[c] += n;
    mote__spin_unlock(&D.lock);
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
    for (int c = 0; c < NCLASS; c++) {
        obj *o = k->list[c];
        while (o) {
            obj *next = o->next;
            o->next = D.list[c];
            D.list[c] = o;
            D.n[c]++;
            o = next;
        }
    }
    mote__spin_unlock(&D.lock);
    free(k);
}

void mote__alloc_release_all(void) {
    mote__spin_lock(&D.lock);
    chunk *ch = D.chunks;
    D.chunks = NULL;
    for (int c = 0; c < NCLASS; c++) {
        D.list[c] = NULL;
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
