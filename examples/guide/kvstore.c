/* kvstore.c -- a small network service: a key-value store spoken over TCP
 * in lines of text.
 *
 *   kvstore [ADDR]      default 127.0.0.1:7001
 *
 *   SET key value   ->  OK
 *   GET key         ->  VALUE value | NOT_FOUND
 *   DEL key         ->  OK | NOT_FOUND
 *   QUIT            ->  BYE, and the server closes the connection
 *
 * One process owns the table (its state: no lock); one process per
 * connection parses requests and calls the store. */
#include <errno.h>
#include <mote.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- The store process ---- */

enum { SLOTS = 256 };

typedef struct store {
    char *key[SLOTS], *value[SLOTS]; /* heap strings, owned by the store */
} store;

typedef struct kv {
    char *key, *value; /* heap strings: ownership travels with the message */
} kv;

static int find(const store *s, const char *key) {
    for (int i = 0; i < SLOTS; i++)
        if (s->key[i] && strcmp(s->key[i], key) == 0)
            return i;
    return -1;
}

static mote_result store_set(void *state, void *arg) {
    store *s = state;
    kv *req = arg;
    int i = find(s, req->key);
    if (i >= 0) {
        free(req->key); /* the old key stays */
    } else {
        for (i = 0; i < SLOTS && s->key[i]; i++)
            ;
        if (i == SLOTS) {
            free(req->key);
            free(req->value);
            return mote_error(-ENOSPC);
        }
        s->key[i] = req->key;
    }
    free(s->value[i]);
    s->value[i] = req->value;
    return mote_ok_i(0);
}

/* The result is a copy of the value, owned by the caller. */
static mote_result store_get(void *state, void *arg) {
    kv *req = arg;
    int i = find(state, req->key);
    free(req->key);
    if (i < 0)
        return mote_error(-ENOENT);
    char *copy = strdup(((store *)state)->value[i]);
    return copy ? mote_ok_p(copy) : mote_error(-ENOMEM);
}

static mote_result store_del(void *state, void *arg) {
    store *s = state;
    kv *req = arg;
    int i = find(s, req->key);
    free(req->key);
    if (i < 0)
        return mote_error(-ENOENT);
    free(s->key[i]);
    free(s->value[i]);
    s->key[i] = s->value[i] = NULL;
    return mote_ok_i(0);
}

static void store_free(void *state) {
    store *s = state;
    for (int i = 0; i < SLOTS; i++) {
        free(s->key[i]);
        free(s->value[i]);
    }
}

/* ---- One connection ---- */

typedef struct session {
    mote_socket *sock;
    mote_proc *store; /* a reference */
} session;

/* Call the store with copies of key and value: the message passes their
 * ownership to the store. */
static mote_result call_store(mote_proc *db, mote_msg_fn fn, const char *key, const char *value) {
    kv req = {strdup(key), value ? strdup(value) : NULL};
    mote_result r = mote_error(-ENOMEM);
    if (req.key && (req.value || !value)) {
        int e = mote_call(db, fn, &req, sizeof req, &r);
        if (e == 0)
            return r; /* the store took the strings */
        r = mote_error(e);
    }
    free(req.key); /* not sent: still ours */
    free(req.value);
    return r;
}

/* Answer one request line; false to end the session. */
static bool handle(mote_proc *db, char *line, mote_writer *out) {
    int64_t t = MOTE_SEC(10);
    char *save; /* strtok_r: processes run on several threads at once */
    char *cmd = strtok_r(line, " ", &save), *key = strtok_r(NULL, " ", &save);
    char *value = strtok_r(NULL, "", &save);
    if (!cmd || strcmp(cmd, "QUIT") == 0) {
        mote_writer_printf(out, t, "BYE\r\n");
        return false;
    }
    mote_msg_fn fn = NULL;
    if (strcmp(cmd, "SET") == 0 && key && value)
        fn = store_set;
    else if (strcmp(cmd, "GET") == 0 && key && !value)
        fn = store_get;
    else if (strcmp(cmd, "DEL") == 0 && key && !value)
        fn = store_del;
    if (!fn) {
        mote_writer_printf(out, t, "ERROR usage: SET key value | GET key | DEL key | QUIT\r\n");
        return true;
    }
    mote_result r = call_store(db, fn, key, value);
    if (r.err == -ENOENT) {
        mote_writer_printf(out, t, "NOT_FOUND\r\n");
    } else if (r.err < 0) {
        mote_writer_printf(out, t, "ERROR %s\r\n", mote_strerror(r.err));
    } else if (fn == store_get) {
        mote_writer_printf(out, t, "VALUE %s\r\n", (char *)r.p);
        free(r.p); /* the result's copy is ours */
    } else {
        mote_writer_printf(out, t, "OK\r\n");
    }
    return true;
}

static void connection(void *arg) {
    session *s = arg;
    mote_reader *in = NULL;
    mote_writer *out = NULL;
    mote_stream st = mote_socket_stream(s->sock);
    if (mote_reader_new(&in, st, 1024) == 0 && mote_writer_new(&out, st, 0) == 0) {
        const char *line;
        int64_t n;
        bool more = true;
        /* Lines up to 1023 bytes; a longer one ends the session (-ENOBUFS). */
        while (more && (n = mote_reader_read_line(in, &line, MOTE_SEC(300))) >= 0) {
            char req[1024];
            memcpy(req, line, (size_t)n);
            req[n] = '\0'; /* a line is not NUL-terminated */
            more = handle(s->store, req, out);
            if (mote_writer_flush(out, MOTE_SEC(10)) < 0)
                break;
        }
    }
    mote_writer_free(out);
    mote_reader_free(in);
    mote_socket_close(s->sock);
    mote_proc_release(s->store);
}

/* ---- The server ---- */

static int serve(void *arg) {
    mote_proc *db;
    mote_socket *l;
    int r = mote_spawn(&db, NULL, sizeof(store), store_free);
    if (r == 0 && (r = mote_tcp_listen(&l, arg, 0, false)) < 0)
        mote_proc_release(db);
    if (r < 0) {
        fprintf(stderr, "kvstore: %s\n", mote_strerror(r));
        return 1;
    }
    mote_addr a;
    char where[128] = "?";
    if (mote_socket_local_addr(l, &a) == 0)
        mote_addr_format(&a, where, sizeof where);
    printf("listening on %s\n", where);
    fflush(stdout);
    for (;;) {
        session s = {NULL, db};
        r = mote_socket_accept(l, &s.sock, NULL, MOTE_FOREVER);
        if (r == 0) {
            mote_proc_ref(db); /* the session's reference */
            if (mote_spawn_fn(NULL, connection, &s, sizeof s) < 0) {
                mote_socket_close(s.sock);
                mote_proc_release(db);
            }
        } else if (r == -EMFILE || r == -ENFILE) {
            mote_sleep(MOTE_MSEC(10));
        } else if (r != -ECONNABORTED) {
            fprintf(stderr, "accept: %s\n", mote_strerror(r));
            return 1;
        }
    }
}

int main(int argc, char **argv) {
    return mote_run(NULL, serve, argc > 1 ? argv[1] : "127.0.0.1:7001");
}
