/*
 * kv.c -- a key-value server speaking the Redis protocol (RESP2), so
 * redis-cli and redis-benchmark talk to it.
 *
 *   kv [-p port] [-t shards] [-a]   listens on 127.0.0.1:port (default
 *                              6379; 0 picks a free one) and prints
 *                              "listening on ADDR"; shards default to the
 *                              number of worker threads; -a: active sockets
 *
 * Commands: GET, SET (EX, PX, NX, XX, KEEPTTL), DEL, EXISTS, INCR, DECR,
 * INCRBY, DECRBY, EXPIRE, PEXPIRE, TTL, PTTL, MGET, MSET, DBSIZE, PING,
 * ECHO, SELECT 0, QUIT; COMMAND answers an empty array, CONFIG GET save and
 * appendonly say there is no persistence (other settings: an empty array),
 * INFO an empty string and CLIENT "+OK", which is all redis-cli and
 * redis-benchmark ask at start. Keys and values are binary-safe.
 *
 * Design. The keys are spread over shard processes by hash; a shard's
 * state is an open-addressing hash table, which only that process touches
 * (a process runs one message at a time, so no locks). Keys with a TTL
 * expire lazily (a command that finds one expired deletes it) and in a
 * periodic sweep (every 100 ms each shard looks at a slice of its table).
 *
 * Each connection is a process in a blocking-style read loop. Everything a
 * read brings is parsed (examples/common/resp.c) into a batch of commands;
 * their key operations are grouped by shard and each shard gets ONE
 * message for the whole batch (mote_call when one shard is involved, else
 * mote_async to each, then mote_await on all), which runs the operations
 * in order and writes their replies into a buffer of its own. The replies
 * are then put together in command order and sent in one write. The
 * shard reads keys and values straight out of the connection's input
 * buffer: the connection waits for every shard of the batch before it
 * touches that buffer again. A pipeline of 16 commands therefore costs one
 * read, one message per shard involved and one write.
 *
 * With -a, connections are served by active sockets instead: the
 * connection's process gets the data as calls and holds no stack between
 * them; batching and replies are the same. Measured (bench/kv.sh, two runs
 * on a loaded 2-CPU machine, bench/RESULTS.md): the same server CPU per
 * request within the noise (plain 13.9 vs 14.4 us, 16-deep pipelines 1.01
 * vs 0.98 us), req/s a little higher with -a in most rows but within the
 * run-to-run spread. The process per connection stays the default: a read
 * lands straight in the connection's buffer and always gives one write,
 * while an active socket hands data over in 4 KiB pieces (a copy, and a
 * write per piece on long pipelines). Both were at or above
 * redis-server's req/s in both modes in the same runs (kv's CPU per request:
 * 1.18 x Redis's plain, 0.91 x pipelined).
 */
#include <errno.h>
#include <mote.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/resp.h"
#include "common/serve.h"

/* ---- Hashing ------------------------------------------------------------ */

/* 64-bit multiply-xorshift over 8-byte words: fast on short keys, and its
 * high half picks the shard, its low bits the slot. */
static uint64_t hash_bytes(const char *p, size_t n) {
    const uint64_t m = 0x9e3779b97f4a7c15ull;
    uint64_t h = 0x243f6a8885a308d3ull ^ (n * m);
    for (; n >= 8; p += 8, n -= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * m;
        h ^= h >> 32;
    }
    uint64_t w = 0;
    memcpy(&w, p, n);
    h = (h ^ w) * m;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    return h ^ (h >> 32);
}

/* ---- A shard: one hash table, owned by one process ----------------------- */

typedef struct entry {
    uint64_t hash;
    int64_t expire; /* mote_now() deadline, 0: none */
    uint32_t klen, vlen;
    char data[];    /* the key, then the value */
} entry;

typedef struct shard {
    entry **slots;  /* linear probing, no tombstones (deletion shifts back) */
    size_t mask;    /* slots - 1; a power of two minus one */
    size_t count;
    size_t sweep_at;
} shard;

static bool expired(const entry *e, int64_t now) { return e->expire != 0 && e->expire <= now; }

/* The slot holding the key, or the empty slot where it would go. */
static size_t slot_of(const shard *sh, uint64_t h, const char *key, size_t klen) {
    size_t i = h & sh->mask;
    for (entry *e; (e = sh->slots[i]) != NULL; i = (i + 1) & sh->mask)
        if (e->hash == h && e->klen == klen && memcmp(e->data, key, klen) == 0)
            break;
    return i;
}

/* Remove slot i and shift the rest of its run back, so every entry stays
 * reachable from its home slot without tombstones. */
static void remove_at(shard *sh, size_t i) {
    free(sh->slots[i]);
    sh->slots[i] = NULL;
    sh->count--;
    for (size_t j = (i + 1) & sh->mask; sh->slots[j]; j = (j + 1) & sh->mask) {
        size_t home = sh->slots[j]->hash & sh->mask;
        /* j's entry may move to the hole at i if its home is not in (i, j]. */
        if (((j - home) & sh->mask) >= ((j - i) & sh->mask)) {
            sh->slots[i] = sh->slots[j];
            sh->slots[j] = NULL;
            i = j;
        }
    }
}

/* The live entry for the key (an expired one is deleted), or NULL; *slot
 * is where it is or would go. */
static entry *lookup(shard *sh, uint64_t h, const char *key, size_t klen, int64_t now, size_t *slot) {
    size_t i = slot_of(sh, h, key, klen);
    entry *e = sh->slots[i];
    if (e && expired(e, now)) {
        remove_at(sh, i);
        e = NULL;
        i = slot_of(sh, h, key, klen);
    }
    *slot = i;
    return e;
}

static int grow(shard *sh) {
    size_t n = (sh->mask + 1) * 2;
    entry **slots = calloc(n, sizeof *slots);
    if (!slots)
        return -ENOMEM;
    for (size_t i = 0; i <= sh->mask; i++) {
        entry *e = sh->slots[i];
        if (!e)
            continue;
        size_t j = e->hash & (n - 1);
        while (slots[j])
            j = (j + 1) & (n - 1);
        slots[j] = e;
    }
    free(sh->slots);
    sh->slots = slots;
    sh->mask = n - 1;
    return 0;
}

/* Store value under the key at slot (from lookup); old is the entry there
 * or NULL. Returns the entry, or NULL when out of memory. */
static entry *store(shard *sh, size_t slot, entry *old, uint64_t h, const char *key, size_t klen, const char *val,
                    size_t vlen) {
    if (old && old->vlen == vlen) {
        memcpy(old->data + klen, val, vlen);
        return old;
    }
    if (!old && (sh->count + 1) * 4 > (sh->mask + 1) * 3) {
        if (grow(sh) < 0)
            return NULL;
        slot = slot_of(sh, h, key, klen);
    }
    entry *e = realloc(old, sizeof *e + klen + vlen);
    if (!e)
        return NULL;
    if (!old) {
        *e = (entry){.hash = h, .klen = (uint32_t)klen};
        memcpy(e->data, key, klen);
        sh->count++;
    }
    e->vlen = (uint32_t)vlen;
    memcpy(e->data + klen, val, vlen);
    sh->slots[slot] = e;
    return e;
}

static void shard_free(void *state) {
    shard *sh = state;
    for (size_t i = 0; sh->slots && i <= sh->mask; i++)
        free(sh->slots[i]);
    free(sh->slots);
}

/* Expire a slice of the table: 128 slots at a time, again while more than
 * a quarter of the keys looked at had expired (at most 16 slices). */
static mote_result sweep(void *state, void *arg) {
    (void)arg;
    shard *sh = state;
    int64_t now = mote_now();
    for (int round = 0; round < 16; round++) {
        size_t seen = 0, gone = 0;
        for (int k = 0; k < 128; k++) {
            size_t i = sh->sweep_at & sh->mask;
            entry *e = sh->slots[i];
            if (e && expired(e, now)) {
                remove_at(sh, i); /* another entry may have moved into i: look again */
                gone++;
            } else {
                sh->sweep_at = i + 1;
            }
            seen += e != NULL;
        }
        if (gone * 4 <= seen)
            break;
    }
    return mote_ok_i(0);
}

/* ---- Key operations, run by the shards ---------------------------------- */

enum { OP_GET, OP_SET, OP_DEL, OP_EXISTS, OP_INCRBY, OP_EXPIRE, OP_TTL, OP_COUNT };
enum { F_NX = 1, F_XX = 2, F_KEEPTTL = 4, F_MS = 8, F_QUIET = 16 };

typedef struct op {
    uint8_t kind, flags;
    uint32_t shard;
    uint32_t next;  /* the shard's next op in this batch, or NO_OP */
    uint64_t hash;
    const char *key, *val;
    size_t klen, vlen;
    int64_t arg;    /* INCRBY delta; SET/EXPIRE time to live in ms (SET: 0 none) */
    int64_t num;    /* DEL/EXISTS: keys counted */
    size_t off, len; /* the reply, in the shard's buffer of this batch */
} op;

#define NO_OP UINT32_MAX

/* A deadline ms from now, or 0 if it does not fit in the clock. */
static int64_t deadline_ms(int64_t now, int64_t ms) {
    return ms > (INT64_MAX - now) / 1000000 ? 0 : now + ms * 1000000;
}

static int do_incr(shard *sh, op *o, resp_buf *b, int64_t now) {
    size_t slot;
    entry *e = lookup(sh, o->hash, o->key, o->klen, now, &slot);
    int64_t v = 0;
    if (e && resp_to_int(e->data + e->klen, e->vlen, &v) < 0)
        return resp_put_error(b, "ERR value is not an integer or out of range");
    if ((o->arg > 0 && v > INT64_MAX - o->arg) || (o->arg < 0 && v < INT64_MIN - o->arg))
        return resp_put_error(b, "ERR increment or decrement would overflow");
    v += o->arg;
    char text[24];
    int n = snprintf(text, sizeof text, "%lld", (long long)v);
    if (!store(sh, slot, e, o->hash, o->key, o->klen, text, (size_t)n))
        return resp_put_error(b, "ERR out of memory");
    return resp_put_int(b, v);
}

static int do_set(shard *sh, op *o, resp_buf *b, int64_t now) {
    size_t slot;
    entry *e = lookup(sh, o->hash, o->key, o->klen, now, &slot);
    if ((o->flags & F_NX && e) || (o->flags & F_XX && !e))
        return o->flags & F_QUIET ? 0 : resp_put_null(b);
    int64_t keep = e && (o->flags & F_KEEPTTL) ? e->expire : 0;
    if (!(e = store(sh, slot, e, o->hash, o->key, o->klen, o->val, o->vlen)))
        return resp_put_error(b, "ERR out of memory");
    e->expire = o->arg ? deadline_ms(now, o->arg) : keep;
    return o->flags & F_QUIET ? 0 : resp_put_raw(b, "+OK\r\n", 5);
}

/* Run one op; its reply (if any) goes to b. -ENOMEM if b cannot grow. */
static int run_op(shard *sh, op *o, resp_buf *b, int64_t now) {
    size_t slot;
    entry *e;
    switch (o->kind) {
    case OP_GET:
        e = lookup(sh, o->hash, o->key, o->klen, now, &slot);
        return e ? resp_put_bulk(b, e->data + e->klen, e->vlen) : resp_put_null(b);
    case OP_SET:
        return do_set(sh, o, b, now);
    case OP_DEL:
    case OP_EXISTS:
        e = lookup(sh, o->hash, o->key, o->klen, now, &slot);
        o->num = e != NULL;
        if (e && o->kind == OP_DEL)
            remove_at(sh, slot);
        return 0;
    case OP_INCRBY:
        return do_incr(sh, o, b, now);
    case OP_EXPIRE:
        if (!(e = lookup(sh, o->hash, o->key, o->klen, now, &slot)))
            return resp_put_int(b, 0);
        if (o->arg <= 0)
            remove_at(sh, slot);
        else if (!(e->expire = deadline_ms(now, o->arg)))
            return resp_put_error(b, "ERR invalid expire time in 'expire' command");
        return resp_put_int(b, 1);
    case OP_TTL:
        if (!(e = lookup(sh, o->hash, o->key, o->klen, now, &slot)))
            return resp_put_int(b, -2);
        if (!e->expire)
            return resp_put_int(b, -1);
        int64_t ms = (e->expire - now + 999999) / 1000000;
        return resp_put_int(b, o->flags & F_MS ? ms : (ms + 500) / 1000);
    case OP_COUNT: /* like Redis, expired keys count until something removes them */
        o->num = (int64_t)sh->count;
        return 0;
    }
    return 0;
}

/* One shard's part of a batch: its ops, linked through op.next. */
typedef struct batch {
    op *ops;
    uint32_t head;
    resp_buf *out;
    int64_t now;
} batch;

static mote_result run_batch(void *state, void *arg) {
    batch *bt = arg;
    for (uint32_t i = bt->head; i != NO_OP; i = bt->ops[i].next) {
        op *o = &bt->ops[i];
        o->off = bt->out->len;
        if (run_op(state, o, bt->out, bt->now) < 0)
            return mote_error(-ENOMEM);
        o->len = bt->out->len - o->off;
    }
    return mote_ok_i(0);
}

/* ---- The server's shards ---------------------------------------------------- */

static mote_proc **shards;
static uint32_t nshards;

static mote_result init_table(void *state, void *arg) {
    (void)arg;
    shard *sh = state;
    sh->mask = 63;
    sh->slots = calloc(sh->mask + 1, sizeof *sh->slots);
    return sh->slots ? mote_ok_i(0) : mote_error(-ENOMEM);
}

static int start_shards(uint32_t n) {
    if (!(shards = calloc(n, sizeof *shards)))
        return -ENOMEM;
    for (nshards = 0; nshards < n; nshards++) {
        mote_result r;
        int rc = mote_spawn(&shards[nshards], NULL, sizeof(shard), shard_free);
        if (rc < 0 || (rc = mote_call(shards[nshards], init_table, NULL, 0, &r)) < 0 || (rc = r.err) < 0)
            return rc;
    }
    return 0;
}

static void sweeper(void *arg) {
    (void)arg;
    for (;;) {
        mote_sleep(MOTE_MSEC(100));
        for (uint32_t i = 0; i < nshards; i++)
            mote_cast(shards[i], sweep, NULL, 0);
    }
}

/* ---- A connection ----------------------------------------------------------- */

/* How a command's reply is put together once the shards have run. */
enum { R_LOCAL, R_OP, R_SUM, R_ARRAY, R_OK };

typedef struct plan {
    uint8_t how;
    size_t a, n; /* R_LOCAL: bytes [a, a+n) of the local replies; else ops [a, a+n) */
} plan;

enum { BATCH_MAX = 1024, ARGV_MAX = 1 << 16, INPUT_MAX = 128 << 20 };

typedef struct conn {
    mote_socket *s;
    char *in;
    size_t in_len, in_cap;
    resp_arg *argv;
    size_t argv_cap;
    op *ops;
    size_t nops, ops_cap;
    plan *plans; /* grown up to BATCH_MAX: an idle connection keeps few */
    size_t nplans, plans_cap;
    resp_buf local, out;
    resp_buf *shard_out; /* one per shard */
    uint32_t *head, *tail;
    bool closing;
} conn;

static int add_local(conn *c, int rc) {
    if (rc < 0)
        return rc;
    plan *p = &c->plans[c->nplans - 1];
    p->n = c->local.len - p->a;
    return 0;
}

/* Start a plan whose reply is written now, into the local buffer. */
static plan *local_plan(conn *c) {
    plan *p = &c->plans[c->nplans++];
    *p = (plan){R_LOCAL, c->local.len, 0};
    return p;
}

static int reply_error(conn *c, const char *text) {
    local_plan(c);
    return add_local(c, resp_put_error(&c->local, text));
}

static int wrong_args(conn *c, const char *name) {
    char text[96];
    snprintf(text, sizeof text, "ERR wrong number of arguments for '%s' command", name);
    return reply_error(c, text);
}

/* A new op for shard sh, linked into that shard's list. */
static op *op_on(conn *c, int kind, uint32_t sh) {
    if (c->nops == c->ops_cap) {
        size_t cap = c->ops_cap ? c->ops_cap * 2 : 64;
        op *ops = realloc(c->ops, cap * sizeof *ops);
        if (!ops)
            return NULL;
        c->ops = ops;
        c->ops_cap = cap;
    }
    uint32_t i = (uint32_t)c->nops++;
    op *o = &c->ops[i];
    *o = (op){.kind = (uint8_t)kind, .shard = sh, .next = NO_OP};
    if (c->head[sh] == NO_OP)
        c->head[sh] = i;
    else
        c->ops[c->tail[sh]].next = i;
    c->tail[sh] = i;
    return o;
}

/* A new op on the key, for the shard its hash picks. */
static op *new_op(conn *c, int kind, const resp_arg *key) {
    uint64_t h = hash_bytes(key->p, key->len);
    op *o = op_on(c, kind, (uint32_t)((h >> 32) % nshards));
    if (o) {
        o->hash = h;
        o->key = key->p;
        o->klen = key->len;
    }
    return o;
}

/* A plan over the ops made from here on. */
static plan *ops_plan(conn *c, int how) {
    plan *p = &c->plans[c->nplans++];
    *p = (plan){(uint8_t)how, c->nops, 0};
    return p;
}

static bool is(const resp_arg *a, const char *name) {
    return a->len == strlen(name) && strncasecmp(a->p, name, a->len) == 0;
}

static int int_arg(const resp_arg *a, int64_t *v) { return resp_to_int(a->p, a->len, v); }

/* SET key value [EX s | PX ms] [NX | XX] [KEEPTTL] */
static int cmd_set(conn *c, const resp_arg *argv, size_t argc) {
    int flags = 0;
    int64_t ttl = 0;
    for (size_t i = 3; i < argc; i++) {
        bool ex = is(&argv[i], "EX"), px = is(&argv[i], "PX");
        if ((ex || px) && i + 1 < argc && !ttl && !(flags & F_KEEPTTL)) {
            if (int_arg(&argv[++i], &ttl) < 0)
                return reply_error(c, "ERR value is not an integer or out of range");
            if (ttl <= 0 || (ex && ttl > INT64_MAX / 1000))
                return reply_error(c, "ERR invalid expire time in 'set' command");
            ttl *= ex ? 1000 : 1;
        } else if (is(&argv[i], "NX") && !(flags & F_XX)) {
            flags |= F_NX;
        } else if (is(&argv[i], "XX") && !(flags & F_NX)) {
            flags |= F_XX;
        } else if (is(&argv[i], "KEEPTTL") && !ttl) {
            flags |= F_KEEPTTL;
        } else {
            return reply_error(c, "ERR syntax error");
        }
    }
    ops_plan(c, R_OP)->n = 1;
    op *o = new_op(c, OP_SET, &argv[1]);
    if (!o)
        return -ENOMEM;
    o->val = argv[2].p;
    o->vlen = argv[2].len;
    o->flags = (uint8_t)flags;
    o->arg = ttl;
    return 0;
}

/* An op on each key in argv[first..argc) by step, answered as `how`. */
static int multi(conn *c, int kind, int how, const resp_arg *argv, size_t first, size_t argc, size_t step) {
    plan *p = ops_plan(c, how);
    for (size_t i = first; i < argc; i += step) {
        op *o = new_op(c, kind, &argv[i]);
        if (!o)
            return -ENOMEM;
        if (step == 2) { /* MSET */
            o->val = argv[i + 1].p;
            o->vlen = argv[i + 1].len;
            o->flags = F_QUIET;
        }
        p->n++;
    }
    return 0;
}

static int one(conn *c, int kind, const resp_arg *key, int64_t arg, int flags) {
    ops_plan(c, R_OP)->n = 1;
    op *o = new_op(c, kind, key);
    if (!o)
        return -ENOMEM;
    o->arg = arg;
    o->flags = (uint8_t)flags;
    return 0;
}

static int cmd_expire(conn *c, const resp_arg *argv, bool ms) {
    int64_t t;
    if (int_arg(&argv[2], &t) < 0)
        return reply_error(c, "ERR value is not an integer or out of range");
    if (!ms && (t > INT64_MAX / 1000 || t < INT64_MIN / 1000))
        return reply_error(c, "ERR invalid expire time in 'expire' command");
    return one(c, OP_EXPIRE, &argv[1], ms ? t : t * 1000, 0);
}

/* The error Redis gives for an unknown command, its name made printable. */
static int unknown(conn *c, const resp_arg *name) {
    char text[128];
    size_t n = (size_t)snprintf(text, sizeof text, "ERR unknown command '");
    for (size_t i = 0; i < name->len && i < 64; i++)
        text[n++] = name->p[i] >= ' ' && name->p[i] < 127 ? name->p[i] : '?';
    snprintf(text + n, sizeof text - n, "'");
    return reply_error(c, text);
}

static int config_get(conn *c, const resp_arg *param) {
    static const char *const known[][2] = {{"save", ""}, {"appendonly", "no"}};
    local_plan(c);
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (is(param, known[i][0])) {
            int rc = resp_put_array(&c->local, 2);
            rc = rc ? rc : resp_put_bulk(&c->local, known[i][0], strlen(known[i][0]));
            rc = rc ? rc : resp_put_bulk(&c->local, known[i][1], strlen(known[i][1]));
            return add_local(c, rc);
        }
    return add_local(c, resp_put_array(&c->local, 0));
}

/* Turn one parsed command into plans and ops; -ENOMEM only. */
static int command(conn *c, const resp_arg *argv, size_t argc) {
    const resp_arg *name = &argv[0];
#define ARITY(cond, lname)                                                                         \
    if (!(cond))                                                                                   \
    return wrong_args(c, lname)
    if (is(name, "GET")) {
        ARITY(argc == 2, "get");
        return one(c, OP_GET, &argv[1], 0, 0);
    }
    if (is(name, "SET")) {
        ARITY(argc >= 3, "set");
        return cmd_set(c, argv, argc);
    }
    if (is(name, "DEL") || is(name, "EXISTS")) {
        bool del = is(name, "DEL");
        ARITY(argc >= 2, del ? "del" : "exists");
        return multi(c, del ? OP_DEL : OP_EXISTS, R_SUM, argv, 1, argc, 1);
    }
    if (is(name, "MGET")) {
        ARITY(argc >= 2, "mget");
        return multi(c, OP_GET, R_ARRAY, argv, 1, argc, 1);
    }
    if (is(name, "MSET")) {
        ARITY(argc >= 3 && argc % 2 == 1, "mset");
        return multi(c, OP_SET, R_OK, argv, 1, argc, 2);
    }
    if (is(name, "INCR") || is(name, "DECR")) {
        ARITY(argc == 2, is(name, "INCR") ? "incr" : "decr");
        return one(c, OP_INCRBY, &argv[1], is(name, "INCR") ? 1 : -1, 0);
    }
    if (is(name, "INCRBY") || is(name, "DECRBY")) {
        bool up = is(name, "INCRBY");
        int64_t d;
        ARITY(argc == 3, up ? "incrby" : "decrby");
        if (int_arg(&argv[2], &d) < 0 || (!up && d == INT64_MIN))
            return reply_error(c, "ERR value is not an integer or out of range");
        return one(c, OP_INCRBY, &argv[1], up ? d : -d, 0);
    }
    if (is(name, "EXPIRE") || is(name, "PEXPIRE")) {
        bool ms = is(name, "PEXPIRE");
        ARITY(argc == 3, ms ? "pexpire" : "expire");
        return cmd_expire(c, argv, ms);
    }
    if (is(name, "TTL") || is(name, "PTTL")) {
        bool ms = is(name, "PTTL");
        ARITY(argc == 2, ms ? "pttl" : "ttl");
        return one(c, OP_TTL, &argv[1], 0, ms ? F_MS : 0);
    }
    if (is(name, "DBSIZE")) {
        ARITY(argc == 1, "dbsize");
        plan *p = ops_plan(c, R_SUM);
        for (uint32_t sh = 0; sh < nshards; sh++, p->n++)
            if (!op_on(c, OP_COUNT, sh))
                return -ENOMEM;
        return 0;
    }
    if (is(name, "PING")) {
        ARITY(argc <= 2, "ping");
        local_plan(c);
        return add_local(c, argc == 2 ? resp_put_bulk(&c->local, argv[1].p, argv[1].len)
                                      : resp_put_simple(&c->local, "PONG"));
    }
    if (is(name, "ECHO")) {
        ARITY(argc == 2, "echo");
        local_plan(c);
        return add_local(c, resp_put_bulk(&c->local, argv[1].p, argv[1].len));
    }
    if (is(name, "SELECT")) {
        ARITY(argc == 2, "select");
        if (!(argv[1].len == 1 && argv[1].p[0] == '0'))
            return reply_error(c, "ERR DB index is out of range");
        local_plan(c);
        return add_local(c, resp_put_simple(&c->local, "OK"));
    }
    if (is(name, "QUIT")) {
        c->closing = true;
        local_plan(c);
        return add_local(c, resp_put_simple(&c->local, "OK"));
    }
    /* What clients ask at start: no command table; redis-benchmark wants
     * "save" and "appendonly" (no persistence here), other settings are
     * unknown. */
    if (is(name, "COMMAND")) {
        local_plan(c);
        return add_local(c, resp_put_array(&c->local, 0));
    }
    if (is(name, "CONFIG") && argc == 3 && is(&argv[1], "GET"))
        return config_get(c, &argv[2]);
    if (is(name, "INFO") || is(name, "CLIENT")) {
        local_plan(c);
        return add_local(c, is(name, "INFO") ? resp_put_bulk(&c->local, "", 0) : resp_put_simple(&c->local, "OK"));
    }
    return unknown(c, name);
#undef ARITY
}

/* Run the batch's ops on their shards: one message per shard involved. */
static int dispatch(conn *c) {
    int64_t now = mote_now();
    mote_future *futs[64];
    batch args[64];
    uint32_t involved = 0, last = 0;
    for (uint32_t s = 0; s < nshards; s++)
        if (c->head[s] != NO_OP)
            involved++, last = s;
    if (involved == 0)
        return 0;
    if (involved == 1) { /* no future to allocate */
        batch b = {c->ops, c->head[last], &c->shard_out[last], now};
        mote_result r;
        int rc = mote_call(shards[last], run_batch, &b, sizeof b, &r);
        return rc < 0 ? rc : r.err;
    }
    /* More shards than futs[] holds: in rounds. */
    int err = 0;
    for (uint32_t s0 = 0; s0 < nshards; s0 += 64) {
        uint32_t n = 0;
        for (uint32_t s = s0; s < nshards && s < s0 + 64; s++) {
            if (c->head[s] == NO_OP)
                continue;
            args[n] = (batch){c->ops, c->head[s], &c->shard_out[s], now};
            int rc = mote_async(shards[s], run_batch, &args[n], sizeof args[n], &futs[n]);
            if (rc < 0) { /* the shards already sent to still use our buffers: wait for them */
                err = rc;
                break;
            }
            n++;
        }
        for (uint32_t i = 0; i < n; i++) {
            mote_result r;
            int rc = mote_await(futs[i], &r);
            if (rc < 0 || r.err < 0)
                err = rc < 0 ? rc : r.err;
        }
        if (err)
            break;
    }
    return err;
}

static const resp_buf *op_buf(const conn *c, const op *o) { return &c->shard_out[o->shard]; }

static int put_op(conn *c, const op *o) { return resp_put_raw(&c->out, op_buf(c, o)->p + o->off, o->len); }

/* Put the batch's replies together in command order. */
static int assemble(conn *c) {
    int rc = 0;
    for (size_t i = 0; i < c->nplans && rc == 0; i++) {
        const plan *p = &c->plans[i];
        const op *o = p->how == R_LOCAL ? NULL : &c->ops[p->a];
        switch (p->how) {
        case R_LOCAL:
            rc = resp_put_raw(&c->out, c->local.p + p->a, p->n);
            break;
        case R_OP:
            rc = put_op(c, o);
            break;
        case R_ARRAY:
            rc = resp_put_array(&c->out, p->n);
            for (size_t k = 0; k < p->n && rc == 0; k++)
                rc = put_op(c, &o[k]);
            break;
        case R_SUM: {
            int64_t sum = 0;
            for (size_t k = 0; k < p->n; k++)
                sum += o[k].num;
            rc = resp_put_int(&c->out, sum);
            break;
        }
        case R_OK:
            rc = resp_put_raw(&c->out, "+OK\r\n", 5);
            break;
        }
    }
    return rc;
}

static void batch_reset(conn *c) {
    c->nops = c->nplans = 0;
    c->local.len = 0;
    for (uint32_t s = 0; s < nshards; s++) {
        c->head[s] = NO_OP;
        c->shard_out[s].len = 0;
    }
}

/* Parse, run and answer every complete command in c->in; returns the bytes
 * used, or -errno when the connection must end (after c->out is sent). */
static int64_t serve_input(conn *c) {
    size_t pos = 0;
    while (!c->closing) {
        batch_reset(c);
        bool more = true;
        while (more && c->nplans < BATCH_MAX && !c->closing) {
            if (c->nplans == c->plans_cap) { /* every command, or the error ending them, adds one plan */
                plan *plans = realloc(c->plans, 2 * c->plans_cap * sizeof *plans);
                if (!plans)
                    return -ENOMEM;
                c->plans = plans;
                c->plans_cap *= 2;
            }
            size_t argc;
            const char *why = NULL;
            int64_t r = resp_parse(c->in + pos, c->in_len - pos, c->argv, c->argv_cap, &argc, &why);
            if (r == RESP_TOO_MANY && argc <= ARGV_MAX) {
                resp_arg *argv = realloc(c->argv, argc * sizeof *argv);
                if (!argv)
                    return -ENOMEM;
                c->argv = argv;
                c->argv_cap = argc;
                continue;
            }
            if (r == RESP_TOO_MANY || r == RESP_ERROR) {
                char text[128];
                snprintf(text, sizeof text, "ERR Protocol error: %s", why ? why : "invalid multibulk length");
                if (reply_error(c, text) < 0)
                    return -ENOMEM;
                c->closing = true; /* Redis too closes: the stream is out of step */
                break;
            }
            if (r == RESP_INCOMPLETE) {
                more = false;
                break;
            }
            pos += (size_t)r;
            if (argc > 0 && command(c, c->argv, argc) < 0)
                return -ENOMEM;
        }
        if (c->nplans == 0)
            break;
        int rc = dispatch(c);
        if (rc < 0 || assemble(c) < 0)
            return rc < 0 ? rc : -ENOMEM;
        if (!more)
            break;
    }
    return (int64_t)pos;
}

static void conn_free(conn *c) {
    for (uint32_t s = 0; c->shard_out && s < nshards; s++)
        free(c->shard_out[s].p);
    free(c->shard_out);
    free(c->head);
    free(c->tail);
    free(c->in);
    free(c->argv);
    free(c->ops);
    free(c->plans);
    free(c->local.p);
    free(c->out.p);
    free(c);
}

static conn *conn_new(mote_socket *s) {
    conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->s = s;
    c->in_cap = 16384;
    c->argv_cap = 64;
    c->plans_cap = 16;
    c->in = malloc(c->in_cap);
    c->plans = malloc(c->plans_cap * sizeof *c->plans);
    c->argv = malloc(c->argv_cap * sizeof *c->argv);
    c->shard_out = calloc(nshards, sizeof *c->shard_out);
    c->head = malloc(nshards * sizeof *c->head);
    c->tail = malloc(nshards * sizeof *c->tail);
    if (!c->in || !c->argv || !c->plans || !c->shard_out || !c->head || !c->tail) {
        conn_free(c);
        return NULL;
    }
    return c;
}

/* Room for at least one more byte of input (a command may outgrow the
 * buffer: it doubles, up to INPUT_MAX). */
static bool input_room(conn *c, size_t want) {
    while (c->in_cap - c->in_len < want) {
        char *in = c->in_cap < INPUT_MAX ? realloc(c->in, c->in_cap * 2) : NULL;
        if (!in)
            return false;
        c->in = in;
        c->in_cap *= 2;
    }
    return true;
}

/* Serve what c->in holds and send the replies in one write; false when
 * the connection must end. */
static bool served(conn *c) {
    c->out.len = 0;
    int64_t used = serve_input(c);
    if (c->out.len && mote_socket_write_all(c->s, c->out.p, c->out.len, MOTE_SEC(30)) < 0)
        return false;
    if (used < 0 || c->closing)
        return false;
    memmove(c->in, c->in + used, c->in_len - (size_t)used);
    c->in_len -= (size_t)used;
    return true;
}

/* A process per connection, reading in a loop. */
static void connection(void *arg) {
    mote_socket *s = *(mote_socket **)arg;
    conn *c = conn_new(s);
    while (c && input_room(c, 1)) {
        int64_t n = mote_socket_read(s, c->in + c->in_len, c->in_cap - c->in_len, MOTE_FOREVER);
        if (n <= 0)
            break;
        c->in_len += (size_t)n;
        if (!served(c))
            break;
    }
    if (c)
        conn_free(c);
    mote_socket_close(s);
}

/* -a: active sockets. The connection's process has the conn as its state
 * and gets the data as calls; it holds no stack between them. */
static void on_data(void *state, mote_socket *s, const void *data, int64_t n) {
    conn *c = *(conn **)state;
    bool ok = n > 0 && input_room(c, (size_t)n);
    if (ok) {
        memcpy(c->in + c->in_len, data, (size_t)n);
        c->in_len += (size_t)n;
        ok = served(c);
    }
    if (!ok)
        mote_socket_close(s); /* no call follows; the process ends and frees c */
}

static void conn_dtor(void *state) { conn_free(*(conn **)state); }

static void connection_active(void *arg) {
    mote_socket *s = *(mote_socket **)arg;
    conn *c = conn_new(s);
    mote_proc *p = NULL;
    if (c && mote_spawn(&p, &c, sizeof c, conn_dtor) < 0) {
        conn_free(c);
        c = NULL;
    }
    if (!c || mote_socket_activate(s, p, on_data) < 0)
        mote_socket_close(s);
    mote_proc_release(p); /* the active socket holds p now */
}

/* ---- Start-up ------------------------------------------------------------------ */

typedef struct options {
    char addr[32];
    uint32_t shards; /* 0: one per worker thread */
    bool active;
} options;

static int serve(void *arg) {
    options *o = arg;
    int rc = start_shards(o->shards ? o->shards : mote_threads());
    if (rc < 0) {
        fprintf(stderr, "kv: starting shards: %s\n", mote_strerror(rc));
        return 1;
    }
    if ((rc = mote_spawn_fn(NULL, sweeper, NULL, 0)) < 0) {
        fprintf(stderr, "kv: %s\n", mote_strerror(rc));
        return 1;
    }
    return serve_forever("kv", o->addr, 1024, o->active ? connection_active : connection);
}

static int usage(FILE *f, int status) {
    fprintf(f, "usage: kv [-p port] [-t shards] [-a]\n"
               "  -p port    TCP port on 127.0.0.1 (default 6379; 0: any free port)\n"
               "  -t shards  key shards, one process each (1-1024; default: worker threads)\n"
               "  -a         active sockets: a connection's process gets its data as calls\n");
    return status;
}

/* A whole decimal number in [lo, hi], or -1. */
static long number(const char *s, long lo, long hi) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    return errno || end == s || *end || v < lo || v > hi || s[0] == '-' || s[0] == '+' ? -1 : v;
}

int main(int argc, char **argv) {
    options o = {.shards = 0};
    long port = 6379;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help"))
            return usage(stdout, 0);
        if (!strcmp(a, "-a")) {
            o.active = true;
            continue;
        }
        if ((strcmp(a, "-p") && strcmp(a, "-t")) || i + 1 == argc)
            return usage(stderr, 2);
        const char *v = argv[++i];
        long n = a[1] == 'p' ? number(v, 0, 65535) : number(v, 1, 1024);
        if (n < 0) {
            fprintf(stderr, "kv: bad %s '%s'\n", a[1] == 'p' ? "port" : "shard count", v);
            return usage(stderr, 2);
        }
        if (a[1] == 'p')
            port = n;
        else
            o.shards = (uint32_t)n;
    }
    snprintf(o.addr, sizeof o.addr, "127.0.0.1:%ld", port);
    return mote_run(NULL, serve, &o);
}
