/*
 * test-kv.c -- examples/kv driven from outside: redis-cli for every command
 * (expiry included), redis-benchmark's start-up, a C RESP client over a
 * socket that stores and reads back 100,000 random binary keys and values
 * byte for byte through pipelines, and malformed input, which must get an
 * error reply or a close, never a crash. Everything runs against both
 * connection styles: a process per connection, and active sockets (-a).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "helpers.h"

static t_server srv;

/* Four shards, so pipelines and multi-key commands cross shards; with
 * active, connections are served by active sockets (kv -a). */
static void start(bool active) {
    char *args[] = {"-p", "0", "-t", "4", active ? "-a" : NULL, NULL};
    t_server_startv(&srv, "kv", args);
}
static void stop(void) { t_server_stop(&srv); }

static const char *port(void) { return strrchr(srv.addr, ':') + 1; }

/* Run a shell command, return its stdout (caller frees) and status. */
static char *run(const char *cmd, int *status) {
    FILE *p = popen(cmd, "r");
    cr_assert(p != NULL);
    size_t cap = 4096, have = 0, n;
    char *buf = malloc(cap);
    cr_assert(buf);
    while ((n = fread(buf + have, 1, cap - 1 - have, p)) > 0)
        if ((have += n) == cap - 1)
            cr_assert((buf = realloc(buf, cap *= 2)) != NULL);
    buf[have] = '\0';
    *status = pclose(p);
    return buf;
}

/* redis-cli (formatted output, as on a terminal) with args; the output must
 * be exactly want. */
static void cli(const char *args, const char *want) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "redis-cli --no-raw -p %s %s 2>&1", port(), args);
    int st;
    char *got = run(cmd, &st);
    cr_assert_eq(st, 0, "%s: exit %d: %s", cmd, st, got);
    cr_assert_str_eq(got, want, "redis-cli %s", args);
    free(got);
}

/* redis-cli printing an integer in [lo, hi]: a TTL, which depends on how
 * much time passed (sanitizer builds on a loaded machine are slow). */
static void cli_between(const char *args, long lo, long hi) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "redis-cli --no-raw -p %s %s 2>&1", port(), args);
    int st;
    char *got = run(cmd, &st);
    long v = 0;
    cr_assert(st == 0 && sscanf(got, "(integer) %ld", &v) == 1, "redis-cli %s: %s", args, got);
    cr_assert(v >= lo && v <= hi, "redis-cli %s: %ld not in [%ld, %ld]", args, v, lo, hi);
    free(got);
}

/* Each test runs twice, against kv and kv -a, with a server of its own
 * (no TestSuite .init/.fini: the TSan build's Criterion shim has none). */
#define KV_TEST(name)                                                                              \
    static void name##_body(void);                                                                 \
    Test(kv, name) {                                                                               \
        start(false);                                                                              \
        name##_body();                                                                             \
        stop();                                                                                    \
    }                                                                                              \
    Test(kv_active, name) {                                                                        \
        start(true);                                                                               \
        name##_body();                                                                             \
        stop();                                                                                    \
    }                                                                                              \
    static void name##_body(void)

KV_TEST(strings) {
    cli("PING", "PONG\n");
    cli("PING hi", "\"hi\"\n");
    cli("ECHO 'a b'", "\"a b\"\n");
    cli("GET nothing", "(nil)\n");
    cli("SET k hello", "OK\n");
    cli("GET k", "\"hello\"\n");
    cli("SET k world NX", "(nil)\n");
    cli("SET k world XX", "OK\n");
    cli("GET k", "\"world\"\n");
    cli("SET fresh v XX", "(nil)\n");
    cli("SET fresh v NX", "OK\n");
    cli("SET k v NX XX", "(error) ERR syntax error\n");
    cli("SET k v EX 0", "(error) ERR invalid expire time in 'set' command\n");
    cli("SET k v EX x", "(error) ERR value is not an integer or out of range\n");
    cli("GET", "(error) ERR wrong number of arguments for 'get' command\n");
    cli("NOSUCH a", "(error) ERR unknown command 'NOSUCH'\n");
    cli("SELECT 0", "OK\n");
    cli("SELECT 1", "(error) ERR DB index is out of range\n");
}

KV_TEST(del_exists_mget_mset) {
    cli("MSET a 1 b 2 c 3 d 4", "OK\n");
    cli("MGET a b nope c d", "1) \"1\"\n2) \"2\"\n3) (nil)\n4) \"3\"\n5) \"4\"\n");
    cli("EXISTS a b nope", "(integer) 2\n");
    cli("DEL a b nope", "(integer) 2\n");
    cli("DEL a", "(integer) 0\n");
    cli("EXISTS a b c", "(integer) 1\n");
    cli("MSET a", "(error) ERR wrong number of arguments for 'mset' command\n");
}

KV_TEST(counters) {
    cli("INCR n", "(integer) 1\n");
    cli("INCR n", "(integer) 2\n");
    cli("INCRBY n 40", "(integer) 42\n");
    cli("DECR n", "(integer) 41\n");
    cli("DECRBY n 50", "(integer) -9\n");
    cli("GET n", "\"-9\"\n");
    cli("SET s abc", "OK\n");
    cli("INCR s", "(error) ERR value is not an integer or out of range\n");
    cli("SET big 9223372036854775807", "OK\n");
    cli("INCR big", "(error) ERR increment or decrement would overflow\n");
    cli("SET lead 007", "OK\n");
    cli("INCR lead", "(error) ERR value is not an integer or out of range\n");
}

KV_TEST(expiry) {
    cli("SET k v", "OK\n");
    cli("TTL k", "(integer) -1\n");
    cli("TTL none", "(integer) -2\n");
    cli("EXPIRE none 10", "(integer) 0\n");
    cli("EXPIRE k 100", "(integer) 1\n");
    cli_between("TTL k", 1, 100);
    cli("SET k v2", "OK\n"); /* a plain SET drops the TTL */
    cli("TTL k", "(integer) -1\n");
    cli("SET k v EX 50", "OK\n");
    cli_between("TTL k", 1, 50);
    cli("SET k v3 KEEPTTL", "OK\n");
    cli_between("TTL k", 1, 50);
    cli_between("PTTL k", 1, 50000);
    cli("INCR c", "(integer) 1\n");
    cli("EXPIRE c 30", "(integer) 1\n");
    cli("INCR c", "(integer) 2\n"); /* INCR keeps it */
    cli_between("TTL c", 1, 30);
    /* Short ones are gone once their time is up (that they exist before
     * is not checked: on a slow machine 300 ms may pass between two
     * redis-cli runs). */
    cli("SET p v PX 300", "OK\n");
    cli("SET e v EX 1", "OK\n");
    cli("SET q v", "OK\n");
    cli("PEXPIRE q 300", "(integer) 1\n");
    usleep(1300 * 1000);
    cli("GET p", "(nil)\n");
    cli("TTL e", "(integer) -2\n");
    cli("EXISTS p e q", "(integer) 0\n");
    cli("EXPIRE k -1", "(integer) 1\n"); /* a past time deletes */
    cli("GET k", "(nil)\n");
}

/* Keys nobody touches again are removed by the periodic sweep: DBSIZE,
 * which counts expired keys until something removes them, drops to the
 * keys without a TTL. */
KV_TEST(sweep_removes_expired_keys) {
    char *cmds = malloc(300 * 40);
    cr_assert(cmds);
    size_t len = 0;
    for (int i = 0; i < 300; i++)
        len += (size_t)sprintf(cmds + len, "SET sweep:%d v PX %d\r\n", i, 50 + i % 100);
    len += (size_t)sprintf(cmds + len, "SET stays v\r\nMSET a 1 b 2\r\n");
    int fd = t_dial(srv.addr);
    cr_assert(fd >= 0);
    cr_assert(t_xfer(fd, cmds, len, true));
    char want[302 * 5];
    memset(want, 0, sizeof want);
    cr_assert(t_xfer(fd, want, 302 * 5, false)); /* 302 times "+OK\r\n" */
    for (int i = 0; i < 302; i++)
        cr_assert(memcmp(want + 5 * i, "+OK\r\n", 5) == 0);
    close(fd);
    free(cmds);
    cli_between("DBSIZE", 3, 303);
    /* The sweep runs every 100 ms; give it until the hang guard. */
    int64_t deadline = mote_now() + MOTE_SEC(20);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "redis-cli -p %s DBSIZE", port());
    for (;;) {
        int st;
        char *got = run(cmd, &st);
        bool done = strcmp(got, "3\n") == 0;
        free(got);
        if (done)
            break;
        cr_assert(mote_now() < deadline, "expired keys were never swept");
        usleep(100 * 1000);
    }
    cli("GET stays", "\"v\"\n");
}

KV_TEST(redis_benchmark_starts_cleanly) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "redis-benchmark -p %s -t set,get -n 2000 -c 4 -P 4 --csv 2>&1", port());
    int st;
    char *out = run(cmd, &st);
    cr_assert_eq(st, 0, "%s", out);
    cr_assert(strstr(out, "\"SET\"") && strstr(out, "\"GET\""), "%s", out);
    cr_assert(!strstr(out, "WARNING") && !strstr(out, "ERROR"), "%s", out);
    free(out);
    cli("CONFIG GET save", "1) \"save\"\n2) \"\"\n");
    cli("CONFIG GET maxmemory", "(empty array)\n");
}

/* ---- A RESP client over a plain socket ----------------------------------- */

typedef struct client {
    int fd;
    char *buf;
    size_t pos, len, cap;
} client;

static void client_open(client *c) {
    *c = (client){.fd = t_dial(srv.addr), .cap = 1 << 16};
    cr_assert(c->fd >= 0);
    struct timeval tv = {30, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    cr_assert((c->buf = malloc(c->cap)) != NULL);
}

static void client_close(client *c) {
    close(c->fd);
    free(c->buf);
}

/* Make n bytes available at c->buf + c->pos; false at end of stream. */
static bool fill(client *c, size_t n) {
    if (c->len - c->pos >= n)
        return true;
    memmove(c->buf, c->buf + c->pos, c->len - c->pos);
    c->len -= c->pos;
    c->pos = 0;
    while (c->cap < n)
        cr_assert((c->buf = realloc(c->buf, c->cap *= 2)) != NULL);
    while (c->len < n) {
        ssize_t r = read(c->fd, c->buf + c->len, c->cap - c->len);
        if (r <= 0)
            return false;
        c->len += (size_t)r;
    }
    return true;
}

/* A reply line without its "\r\n" (NUL-terminated in place). */
static char *reply_line(client *c) {
    for (size_t want = 1;; want++) {
        cr_assert(fill(c, want), "connection ended inside a reply");
        if (want >= 2 && c->buf[c->pos + want - 2] == '\r' && c->buf[c->pos + want - 1] == '\n') {
            char *line = c->buf + c->pos;
            line[want - 2] = '\0';
            c->pos += want;
            return line;
        }
    }
}

/* A bulk reply: its bytes (valid until the next read) and length; NULL
 * for a null bulk. */
static const char *reply_bulk(client *c, size_t *len) {
    char *line = reply_line(c);
    cr_assert(line[0] == '$', "expected a bulk, got '%s'", line);
    long n = atol(line + 1);
    if (n < 0)
        return NULL;
    cr_assert(fill(c, (size_t)n + 2));
    const char *p = c->buf + c->pos;
    cr_assert(p[n] == '\r' && p[n + 1] == '\n');
    c->pos += (size_t)n + 2;
    *len = (size_t)n;
    return p;
}

/* Append a command of n arguments to out. */
static void put_cmd(char **out, size_t *len, size_t *cap, int n, const char **arg,
                    const size_t *alen) {

    size_t need = 32;
    for (int i = 0; i < n; i++)
        need += alen[i] + 32;
    while (*len + need > *cap)
        cr_assert((*out = realloc(*out, *cap = *cap * 2 + need)) != NULL);
    *len += (size_t)sprintf(*out + *len, "*%d\r\n", n);
    for (int i = 0; i < n; i++) {
        *len += (size_t)sprintf(*out + *len, "$%zu\r\n", alen[i]);
        memcpy(*out + *len, arg[i], alen[i]);
        *len += alen[i];
        memcpy(*out + *len, "\r\n", 2);
        *len += 2;
    }
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Random bytes (every byte value, "\r\n" and NUL included). */
static void random_bytes(char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        p[i] = (char)rnd();
}

typedef struct kvpair {
    char *key, *val;
    size_t klen, vlen;
} kvpair;

/* Key i: random bytes with i's 4 bytes in front, so keys are distinct.
 * Values: mostly 0-300 bytes, one in 100 up to 64 KiB. */
static kvpair make_pair(uint32_t i) {
    kvpair p;
    p.klen = 4 + rnd() % 40;
    p.vlen = rnd() % 100 == 0 ? rnd() % 65536 : rnd() % 300;
    p.key = malloc(p.klen);
    p.val = malloc(p.vlen + 1);
    cr_assert(p.key && p.val);
    memcpy(p.key, &i, 4);
    random_bytes(p.key + 4, p.klen - 4);
    random_bytes(p.val, p.vlen);
    return p;
}

KV_TEST(random_binary_keys_and_values_read_back) {
    const uint32_t n = T_SCALE(100000, 20000), depth = 500;
    kvpair *pairs = malloc(n * sizeof *pairs);
    cr_assert(pairs);
    for (uint32_t i = 0; i < n; i++)
        pairs[i] = make_pair(i);
    client c;
    client_open(&c);
    size_t cap = 1 << 20, len;
    char *out = malloc(cap);
    cr_assert(out);
    /* SET in pipelines of `depth` commands (every 7th batch as one MSET). */
    for (uint32_t b = 0; b < n; b += depth) {
        uint32_t end = b + depth < n ? b + depth : n;
        bool mset = (b / depth) % 7 == 3;
        len = 0;
        if (mset) {
            int argc = 1 + 2 * (int)(end - b);
            const char **arg = malloc((size_t)argc * sizeof *arg);
            size_t *alen = malloc((size_t)argc * sizeof *alen);
            cr_assert(arg && alen);
            arg[0] = "MSET", alen[0] = 4;
            for (uint32_t i = b; i < end; i++) {
                arg[1 + 2 * (i - b)] = pairs[i].key, alen[1 + 2 * (i - b)] = pairs[i].klen;
                arg[2 + 2 * (i - b)] = pairs[i].val, alen[2 + 2 * (i - b)] = pairs[i].vlen;
            }
            put_cmd(&out, &len, &cap, argc, arg, alen);
            free(arg);
            free(alen);
        } else {
            for (uint32_t i = b; i < end; i++) {
                const char *arg[] = {"SET", pairs[i].key, pairs[i].val};
                size_t alen[] = {3, pairs[i].klen, pairs[i].vlen};
                put_cmd(&out, &len, &cap, 3, arg, alen);
            }
        }
        cr_assert(t_xfer(c.fd, out, len, true));
        for (uint32_t i = b; i < (mset ? b + 1 : end); i++)
            cr_assert_str_eq(reply_line(&c), "+OK");
    }
    /* GET them back (every 5th batch as one MGET), byte for byte. */
    for (uint32_t b = 0; b < n; b += depth) {
        uint32_t end = b + depth < n ? b + depth : n;
        bool mget = (b / depth) % 5 == 2;
        len = 0;
        if (mget) {
            int argc = 1 + (int)(end - b);
            const char **arg = malloc((size_t)argc * sizeof *arg);
            size_t *alen = malloc((size_t)argc * sizeof *alen);
            cr_assert(arg && alen);
            arg[0] = "MGET", alen[0] = 4;
            for (uint32_t i = b; i < end; i++)
                arg[1 + i - b] = pairs[i].key, alen[1 + i - b] = pairs[i].klen;
            put_cmd(&out, &len, &cap, argc, arg, alen);
            free(arg);
            free(alen);
        } else {
            for (uint32_t i = b; i < end; i++) {
                const char *arg[] = {"GET", pairs[i].key};
                size_t alen[] = {3, pairs[i].klen};
                put_cmd(&out, &len, &cap, 2, arg, alen);
            }
        }
        cr_assert(t_xfer(c.fd, out, len, true));
        if (mget) {
            char want[32];
            snprintf(want, sizeof want, "*%u", end - b);
            cr_assert_str_eq(reply_line(&c), want);
        }
        for (uint32_t i = b; i < end; i++) {
            size_t vlen = 0;
            const char *v = reply_bulk(&c, &vlen);
            cr_assert(v != NULL, "key %u missing", i);
            cr_assert(vlen == pairs[i].vlen && memcmp(v, pairs[i].val, vlen) == 0, "key %u: value differs", i);
        }
    }
    client_close(&c);
    for (uint32_t i = 0; i < n; i++) {
        free(pairs[i].key);
        free(pairs[i].val);
    }
    free(pairs);
    free(out);
}

/* Replies come back in command order however the keys are spread. */
KV_TEST(pipelined_replies_in_order) {
    client c;
    client_open(&c);
    static const char req[] = "*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n"
                              "INCR a\r\n"
                              "*2\r\n$3\r\nGET\r\n$1\r\nb\r\n"
                              "PING\r\n"
                              "MSET b x c y\r\n"
                              "*4\r\n$4\r\nMGET\r\n$1\r\nc\r\n$1\r\nb\r\n$1\r\na\r\n"
                              "DEL a b c zz\r\n"
                              "BOGUS\r\n"
                              "*3\r\n$6\r\nEXPIRE\r\n$1\r\na\r\n$2\r\n10\r\n"
                              "\r\n" /* an empty inline line is no command */
                              "TTL a\r\n";
    static const char want[] = "+OK\r\n:2\r\n$-1\r\n+PONG\r\n+OK\r\n*3\r\n$1\r\ny\r\n$1\r\nx\r\n$1\r\n2\r\n"
                               ":3\r\n-ERR unknown command 'BOGUS'\r\n:0\r\n:-2\r\n";
    cr_assert(t_xfer(c.fd, (char *)req, sizeof req - 1, true));
    char got[sizeof want] = {0};
    cr_assert(t_xfer(c.fd, got, sizeof want - 1, false), "got '%s'", got);
    cr_assert_str_eq(got, want);
    client_close(&c);
}

/* Send bytes; the server must answer with an error (or nothing) and may
 * close; either way it must keep serving others. */
static void malformed(const char *bytes, size_t len) {
    int fd = t_dial(srv.addr);
    cr_assert(fd >= 0);
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    cr_assert(t_xfer(fd, (char *)bytes, len, true));
    shutdown(fd, SHUT_WR); /* the end of the stream, not a timeout, ends an incomplete command */
    char buf[512];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n > 0) {
        buf[n] = '\0';
        cr_assert(buf[0] == '-', "not an error reply to a malformed command: '%s'", buf);
    }
}

#define MALFORMED(lit) malformed((lit), sizeof(lit) - 1)

KV_TEST(malformed_input) {
    MALFORMED("*abc\r\n");
    MALFORMED("*2\r\n$3\r\nGET\r\n:5\r\n");
    MALFORMED("*1\r\n$99999999999\r\n");
    MALFORMED("*1\r\n$-3\r\n");
    MALFORMED("*1\r\n$3\r\nGETXX\r\n");
    MALFORMED("*99999999\r\n");
    MALFORMED("*-1\r\nFOO\r\n");
    MALFORMED("*2\r\x00\n");
    MALFORMED("$5\r\nhello\r\n");
    MALFORMED("\x00\x01\x02\r\n");
    /* Random bytes, and random bytes behind a valid start. */
    char buf[300];
    for (int i = 0; i < 200; i++) {
        size_t len = 1 + rnd() % sizeof buf;
        random_bytes(buf, len);
        if (i % 2)
            memcpy(buf, "*3\r\n$3\r\nSET\r\n", len < 13 ? len : 13);
        malformed(buf, len);
    }
    /* A line that never ends is refused once it is too long. */
    size_t big = 100 * 1024;
    char *line = malloc(big);
    cr_assert(line);
    memset(line, 'x', big);
    malformed(line, big);
    line[0] = '*';
    malformed(line, big);
    free(line);
    cli("PING", "PONG\n");
}

/* ---- Options ------------------------------------------------------------ */

static void kv_args(t_child *c, char *a1, char *a2) {
    char exe[512];
    snprintf(exe, sizeof exe, "%s/examples/kv", MOTE_BUILD_DIR);
    char *argv[] = {exe, a1, a2, NULL};
    t_child_exec(c, argv);
}

Test(kv_options, usage_and_bad_arguments) {
    t_child c;
    kv_args(&c, "-h", NULL);
    T_ASSERT_EXITED(&c, 0);
    T_ASSERT_CONTAINS(c.out, "usage: kv [-p port] [-t shards]");
    t_child_free(&c);
    kv_args(&c, "--help", NULL);
    T_ASSERT_EXITED(&c, 0);
    t_child_free(&c);
    char *bad[][2] = {{"-p", "70000"}, {"-p", "-1"}, {"-p", "80x"}, {"-p", ""}, {"-p", NULL},
                      {"-t", "0"},     {"-t", "x"},  {"-x", NULL},  {"8080", NULL}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        kv_args(&c, bad[i][0], bad[i][1]);
        T_ASSERT_EXITED(&c, 2);
        T_ASSERT_CONTAINS(c.err, "usage: kv");
        t_child_free(&c);
    }
}
