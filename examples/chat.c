/*
 * chat.c -- a line chat server: one process per client, a room process
 * that broadcasts, and monitors so the room learns of clients that end.
 *
 *   chat [port]      default 7001 (0: any free port); prints "listening on ADDR"
 *
 * SIGINT or SIGTERM stops it with mote_stop: main's accept is cancelled,
 * main cancels the room, the room cancels its clients, and whatever is
 * left after a second (stop_grace) is cancelled by the runtime.
 *
 * Each client sends its name as its first line, then lines of text, which
 * everyone else in the room gets as "name: text". The room announces
 * "* name joined" and "* name left".
 *
 * Who does what:
 *   client process  reads its socket, blocking style, a line at a time,
 *                   and sends each line to the room; it ends when the
 *                   connection ends (or it panics: see below).
 *   room process    a receive loop: joins, lines, and the exit notices of
 *                   the clients it monitors; it writes the broadcasts.
 *
 * A joined client's connection is shared: the client reads it, the room
 * writes it. Whoever lets go last closes it (conn_release), so it is never
 * closed under a process still using it. A client whose process panicked
 * never lets go (its stack is gone): its monitor tells the room, which
 * lets go for it.
 *
 * With CHAT_PANIC=1 in the environment, a client line "/panic" makes that
 * client's process panic (its handler keeps the server alive): the room
 * learns of it through its monitor, as of any other end.
 */
#include <errno.h>
#include <mote.h>
#include <stdatomic.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/cli.h"
#include "common/serve.h"

#define NAME_MAX_LEN 32
#define LINE_MAX_LEN 1024
#define WRITE_TIMEOUT MOTE_SEC(2) /* a client that cannot take a line goes */

/* ---- A connection, shared by its client and the room ---- */

typedef struct conn {
    mote_socket *sock;
    atomic_int refs;
} conn;

static void conn_release(conn *c) {
    if (atomic_fetch_sub(&c->refs, 1) == 1) {
        mote_socket_close(c->sock);
        free(c);
    }
}

/* ---- Messages to the room (data messages, for its receive loop) ---- */

enum { JOIN = 1, LINE };

typedef struct room_msg {
    int type;
    uint64_t from;       /* the client process's id */
    mote_proc *client;   /* JOIN: a reference, now the room's */
    conn *conn;          /* JOIN: a reference, now the room's */
    char name[NAME_MAX_LEN];
    char text[];         /* LINE */
} room_msg;

/* ---- The room ---- */

typedef struct member {
    mote_proc *proc;
    conn *conn;
    uint64_t id, ref; /* process id; monitor reference */
    char name[NAME_MAX_LEN];
} member;

typedef struct room {
    member *m;
    size_t n, cap;
} room;

/* Send text to every member but `except` (a process id, or 0). A member
 * whose socket cannot take it is shut down: its process then sees the end
 * of its stream, ends, and its monitor removes it. */
static void broadcast(room *r, uint64_t except, const char *text, size_t len) {
    for (size_t i = 0; i < r->n; i++) {
        mote_socket *s = r->m[i].conn->sock;
        if (r->m[i].id != except && mote_socket_write_all(s, text, len, WRITE_TIMEOUT) < 0)
            mote_socket_shutdown(s, SHUT_RDWR);
    }
}

static void announce(room *r, uint64_t except, const char *who, const char *what) {
    char text[NAME_MAX_LEN + 64];
    int len = snprintf(text, sizeof text, "* %s %s\n", who, what);
    broadcast(r, except, text, (size_t)len);
}

static void join(room *r, const room_msg *j) {
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 8;
        member *m = realloc(r->m, cap * sizeof *m);
        if (!m) { /* no room for it: send it away */
            mote_socket_shutdown(j->conn->sock, SHUT_RDWR);
            conn_release(j->conn);
            mote_proc_release(j->client);
            return;
        }
        r->m = m;
        r->cap = cap;
    }
    member *m = &r->m[r->n];
    m->proc = j->client;
    m->conn = j->conn;
    m->id = j->from;
    memcpy(m->name, j->name, sizeof m->name);
    /* A client that already ended is reported at once: it leaves in
     * leave(), like any other. */
    if (mote_monitor(m->proc, &m->ref) < 0) {
        mote_socket_shutdown(m->conn->sock, SHUT_RDWR);
        conn_release(m->conn);
        mote_proc_release(m->proc);
        return;
    }
    r->n++;
    char welcome[NAME_MAX_LEN + 64];
    int len = snprintf(welcome, sizeof welcome, "* welcome %s (%zu here)\n", m->name, r->n);
    if (mote_socket_write_all(m->conn->sock, welcome, (size_t)len, WRITE_TIMEOUT) < 0)
        mote_socket_shutdown(m->conn->sock, SHUT_RDWR);
    announce(r, m->id, m->name, "joined");
}

static void say(room *r, const room_msg *l) {
    for (size_t i = 0; i < r->n; i++)
        if (r->m[i].id == l->from) {
            char text[NAME_MAX_LEN + LINE_MAX_LEN + 4];
            int len = snprintf(text, sizeof text, "%s: %s\n", r->m[i].name, l->text);
            broadcast(r, l->from, text, (size_t)len);
            return;
        }
}

/* A client's process ended: its connection ended, or it panicked. */
static void leave(room *r, const mote_exit *x) {
    for (size_t i = 0; i < r->n; i++)
        if (r->m[i].ref == x->ref) {
            member gone = r->m[i];
            r->m[i] = r->m[--r->n];
            if (x->reason == MOTE_EXIT_PANIC) /* its reference died with its stack */
                conn_release(gone.conn);
            conn_release(gone.conn);
            mote_proc_release(gone.proc);
            if (x->reason != MOTE_EXIT_NORMAL)
                fprintf(stderr, "chat: %s's process ended: %s\n", gone.name, x->text);
            announce(r, 0, gone.name, "left");
            return;
        }
}

static void room_main(void *arg) {
    (void)arg;
    room r = {0};
    mote_msg *m;
    while (mote_receive(&m, MOTE_FOREVER) == 0) { /* -ECANCELED: we stop */
        mote_exit x;
        const room_msg *rm = mote_msg_data(m);
        if (mote_msg_exit(m, &x))
            leave(&r, &x);
        else if (rm && rm->type == JOIN)
            join(&r, rm);
        else if (rm && rm->type == LINE)
            say(&r, rm);
        mote_msg_free(m);
    }
    /* Cancelled: the server stops. Stop the clients too (each lets go of
     * its side of its connection), and let go of ours. */
    for (size_t i = 0; i < r.n; i++) {
        mote_cancel(r.m[i].proc);
        conn_release(r.m[i].conn);
        mote_proc_release(r.m[i].proc);
    }
    free(r.m);
}

/* ---- A client ---- */

typedef struct client_arg {
    mote_socket *sock;
    mote_proc *room;
} client_arg;

static void on_panic(const char *msg, void *ctx) {
    (void)ctx;
    fprintf(stderr, "chat: a client panicked: %s\n", msg);
}

static bool panic_command_enabled(void) {
    const char *v = getenv("CHAT_PANIC");
    return v && strcmp(v, "1") == 0;
}

static void client_main(void *arg) {
    client_arg a = *(client_arg *)arg;
    mote_on_panic(on_panic, NULL); /* a panic ends this client, not the server */
    mote_reader *rd = NULL;
    const char *line;
    int64_t n = -1;
    if (mote_reader_new(&rd, mote_socket_stream(a.sock), LINE_MAX_LEN) == 0)
        n = mote_reader_read_line(rd, &line, MOTE_SEC(60)); /* the name */
    if (n <= 0) {
        mote_reader_free(rd);
        mote_socket_close(a.sock); /* never joined: still ours */
        mote_proc_release(a.room);
        return;
    }
    conn *c = malloc(sizeof *c);
    if (!c) {
        mote_reader_free(rd);
        mote_socket_close(a.sock);
        mote_proc_release(a.room);
        return;
    }
    c->sock = a.sock;
    atomic_init(&c->refs, 2); /* ours, and the room's */
    room_msg j = {.type = JOIN, .from = mote_proc_id(mote_self()),
                  .client = mote_proc_ref(mote_self()), .conn = c};
    snprintf(j.name, sizeof j.name, "%.*s", (int)n, line);
    /* (A room that ends while this is on its way, at shutdown, drops it
     * unread: the references it carries are lost, and the connection is
     * closed only when the program ends.) */
    if (mote_send(a.room, &j, sizeof j) < 0) { /* the runtime is gone */
        mote_proc_release(j.client);
        conn_release(c);
        n = -1;
    }
    /* From here the room writes the socket; we read it. */
    bool panics = panic_command_enabled();
    while (n >= 0 && (n = mote_reader_read_line(rd, &line, MOTE_FOREVER)) >= 0) {
        if (panics && strcmp(line, "/panic") == 0) {
            /* A panic abandons this stack: let go of what only it holds
             * (the room lets go of the connection for us). */
            mote_reader_free(rd);
            mote_proc_release(a.room);
            mote_panic("asked to by its client");
        }
        size_t size = sizeof(room_msg) + (size_t)n + 1;
        room_msg *l = calloc(1, size);
        if (!l)
            break;
        l->type = LINE;
        l->from = j.from;
        memcpy(l->text, line, (size_t)n + 1);
        mote_send(a.room, l, size);
        free(l);
    }
    mote_reader_free(rd);
    conn_release(c);
    mote_proc_release(a.room);
}

/* ---- Stopping on SIGINT / SIGTERM ---- */

static void stopper(void *arg) {
    (void)arg;
    mote_proc *self = mote_self();
    if (mote_signal_watch(self, SIGINT) < 0 || mote_signal_watch(self, SIGTERM) < 0)
        return;
    mote_msg *m;
    while (mote_receive(&m, MOTE_FOREVER) == 0) {
        bool stop = mote_msg_kind(m) == MOTE_MSG_SIGNAL;
        mote_msg_free(m);
        if (stop) {
            fprintf(stderr, "chat: stopping\n");
            mote_stop(0); /* main is told first; then the rest */
            break;
        }
    }
    mote_signal_unwatch(self, SIGINT);
    mote_signal_unwatch(self, SIGTERM);
}

/* ---- Main: the accept loop ---- */

static int chat(void *arg) {
    const char *port = arg;
    char addr[64];
    snprintf(addr, sizeof addr, "0.0.0.0:%s", port);
    mote_socket *l;
    int r = mote_tcp_listen(&l, addr, 128, false);
    if (r < 0) {
        fprintf(stderr, "chat: listen %s: %s\n", addr, mote_strerror(r));
        return 1;
    }
    mote_proc *room;
    if ((r = mote_spawn_fn(&room, room_main, NULL, 0)) < 0 ||
        (r = mote_spawn_fn(NULL, stopper, NULL, 0)) < 0) {
        fprintf(stderr, "chat: %s\n", mote_strerror(r));
        return 1;
    }
    print_listening(l);
    for (;;) {
        client_arg c = {NULL, room};
        r = mote_socket_accept(l, &c.sock, NULL, MOTE_FOREVER);
        if (r == 0) {
            c.room = mote_proc_ref(room);
            if (mote_spawn_fn(NULL, client_main, &c, sizeof c) < 0) {
                mote_socket_close(c.sock);
                mote_proc_release(c.room);
            }
        } else if (r == -EMFILE || r == -ENFILE) {
            mote_sleep(MOTE_MSEC(10));
        } else if (r != -ECONNABORTED) {
            if (r != -ECANCELED)
                fprintf(stderr, "chat: accept: %s\n", mote_strerror(r));
            break;
        }
    }
    mote_socket_close(l);
    mote_cancel(room); /* told to stop: the room stops its clients */
    mote_proc_release(room);
    return r == -ECANCELED ? 0 : 1;
}

int main(int argc, char **argv) {
    const char *port;
    int r = cli_one_arg(argc, argv, "7001", cli_port_ok, "[port]   (default 7001; 0: any free port)",
                        &port);
    if (r)
        return r;
    /* After mote_stop, what is still running a second after main returned
     * (a client still at its name) is cancelled. */
    mote_config cfg = {.stop_grace = MOTE_SEC(1)};
    return mote_run(&cfg, chat, (void *)port);
}
