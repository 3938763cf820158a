/*
 * metrics_http.c -- serves mote's counters in the Prometheus text format at
 * GET /metrics (anything else: 404), one process per connection, while a
 * little background work keeps the counters moving: a ticker process
 * wakes every 10 ms and calls a counter process.
 *
 *   metrics_http [HOST:PORT]   default 127.0.0.1:9464 (port 0: any free
 *                              one); prints "listening on ADDR"
 *   curl http://127.0.0.1:9464/metrics
 *
 * SIGINT or SIGTERM stops it gracefully (examples/common/graceful.h).
 *
 * A scrape configuration for Prometheus itself:
 *   scrape_configs: [{job_name: mote, static_configs: [{targets: ["127.0.0.1:9464"]}]}]
 */
#include <mote.h>
#include "common/cli.h"
#include "common/graceful.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static mote_result count(void *state, void *arg) {
    (void)arg;
    return mote_ok_i(++*(int64_t *)state);
}

static void ticker(void *arg) {
    mote_proc *counter = *(mote_proc **)arg;
    mote_proc_set_name(mote_self(), "ticker");
    for (;;) {
        mote_sleep(MOTE_MSEC(10));
        mote_call(counter, count, NULL, 0, NULL);
    }
}

static void respond(mote_socket *c, const char *status, const char *type, const char *body, size_t len) {
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                     status, type, len);
    if (mote_socket_write_all(c, head, (size_t)n, MOTE_SEC(10)) == 0)
        mote_socket_write_all(c, body, len, MOTE_SEC(10));
}

static void connection(void *arg) {
    mote_socket *c = *(mote_socket **)arg;
    mote_proc_set_name(mote_self(), "http");
    mote_reader *r;
    if (mote_reader_new(&r, mote_socket_stream(c), 4096) < 0) {
        graceful_conn_close(c);
        return;
    }
    const char *line;
    char method[16] = "", path[256] = "";
    if (mote_reader_read_line(r, &line, MOTE_SEC(10)) >= 0)
        sscanf(line, "%15s %255s", method, path);
    /* The headers, up to the blank line. */
    int64_t n;
    while ((n = mote_reader_read_line(r, &line, MOTE_SEC(10))) > 0)
        ;
    if (n == 0 && !strcmp(method, "GET") && !strcmp(path, "/metrics")) {
        /* The text grows as the counters do: room to spare, and again if
         * it still did not fit. */
        char *text = NULL;
        int64_t len = mote_metrics_prometheus(NULL, 0);
        for (size_t cap = 0; len >= 0 && (size_t)len >= cap;) {
            cap = (size_t)len + 1024;
            char *bigger = realloc(text, cap);
            len = bigger ? mote_metrics_prometheus(text = bigger, cap) : -1;
        }
        if (len >= 0)
            respond(c, "200 OK", "text/plain; version=0.0.4", text, (size_t)len);
        else
            respond(c, "500 Internal Server Error", "text/plain", "\n", 1);
        free(text);
    } else if (n == 0) {
        respond(c, "404 Not Found", "text/plain", "not found\n", 10);
    }
    mote_reader_free(r);
    graceful_conn_close(c);
}

static int serve(void *arg) {
    const char *addr = arg;
    mote_socket *l;
    int r = mote_tcp_listen(&l, addr, 128, false);
    if (r < 0) {
        fprintf(stderr, "metrics_http: listen %s: %s\n", addr, mote_strerror(r));
        return 1;
    }
    mote_proc *counter;
    int64_t zero = 0;
    mote_spawn(&counter, &zero, sizeof zero, NULL);
    mote_proc_set_name(counter, "counter");
    mote_spawn_fn(NULL, ticker, &counter, sizeof counter);
    /* The ticker keeps using counter until the runtime shuts down. */
    return graceful_serve("metrics_http", l, connection, NULL);
}

int main(int argc, char **argv) {
    const char *addr;
    int r = cli_one_arg(argc, argv, "127.0.0.1:9464", cli_tcp_addr_ok, "[HOST:PORT]  (default 127.0.0.1:9464)",
                        &addr);
    if (r == 0)
        r = mote_run(NULL, serve, (void *)addr);
    return r < 0 ? 1 : r;
}
