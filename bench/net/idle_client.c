/*
 * idle_client.c -- many idle connections to an echo server: opens CONNS
 * connections one after the other, sends 64 bytes on each and reads the
 * echo (so the server's process, goroutine or task for it exists and now
 * waits in read), prints "READY CONNS", holds them all for HOLD seconds,
 * then resets them (no TIME_WAIT left behind).
 *
 *   net_idle_client HOST:PORT [CONNS=10000] [HOLD=4]
 *
 * A measuring script reads the server's RSS while the connections are held.
 */
#include "net.h"

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s HOST:PORT [CONNS] [HOLD]\n", argv[0]);
        return 2;
    }
    struct sockaddr_in sa = net_addr(argv[1]);
    int conns = argc > 2 ? atoi(argv[2]) : 10000;
    unsigned hold = argc > 3 ? (unsigned)atoi(argv[3]) : 4;
    int *fds = calloc(conns > 0 ? (size_t)conns : 1, sizeof *fds);
    if (conns < 1 || !fds) {
        fprintf(stderr, "idle_client: bad arguments\n");
        return 2;
    }
    net_raise_nofile();
    signal(SIGPIPE, SIG_IGN); /* a closed connection is an error, not a signal */
    char msg[64], buf[64];
    memset(msg, 'i', sizeof msg);
    struct timeval timeout = {.tv_sec = 10};
    for (int i = 0; i < conns; i++) {
        int fd = fds[i] = net_connect(&sa);
        if (fd < 0)
            net_die("idle_client: connect");
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
        if (write(fd, msg, sizeof msg) != (ssize_t)sizeof msg)
            net_die("idle_client: write");
        size_t got = 0;
        while (got < sizeof buf) {
            ssize_t n = read(fd, buf + got, sizeof buf - got);
            if (n <= 0)
                net_die(n == 0 ? "idle_client: server closed" : "idle_client: read");
            got += (size_t)n;
        }
    }
    printf("READY %d\n", conns);
    fflush(stdout);
    sleep(hold);
    struct linger reset = {.l_onoff = 1, .l_linger = 0};
    for (int i = 0; i < conns; i++) {
        setsockopt(fds[i], SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
        close(fds[i]);
    }
    return 0;
}
