/*
 * test-fdecho.c -- examples/fd_echo under load: many concurrent clients,
 * byte-exact echo of messages of many sizes, over loopback.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"

enum { CLIENTS = 50, ROUNDS = T_SCALE(200, 40) };

static const char *server_addr;

static void *client(void *arg) {
    uintptr_t id = (uintptr_t)arg;
    int fd = t_dial(server_addr);
    if (fd < 0)
        return (void *)"connect failed";
    static __thread char out[65536], in[65536];
    unsigned seed = (unsigned)id * 7919u + 1;
    for (int r = 0; r < ROUNDS; r++) {
        seed = seed * 1103515245u + 12345u;
        size_t len = 1 + (seed >> 8) % (r % 10 == 0 ? sizeof out : 512);
        for (size_t i = 0; i < len; i++)
            out[i] = (char)(id + r + i);
        if (!t_xfer(fd, out, len, true) || !t_xfer(fd, in, len, false)) {
            close(fd);
            return (void *)"short transfer";
        }
        if (memcmp(out, in, len) != 0) {
            close(fd);
            return (void *)"echo differs";
        }
    }
    close(fd);
    return NULL;
}

Test(fdecho, many_clients_byte_exact) {
    t_server srv;
    t_server_start(&srv, "fd_echo", "0"); /* any free port: suites may run side by side */
    server_addr = srv.addr;
    pthread_t th[CLIENTS];
    for (uintptr_t i = 0; i < CLIENTS; i++)
        th[i] = t_thread(client, (void *)i);
    const char *err = NULL;
    for (int i = 0; i < CLIENTS; i++) {
        void *r = NULL;
        pthread_join(th[i], &r);
        if (r && !err)
            err = r;
    }
    t_server_stop(&srv);
    cr_assert(err == NULL, "client: %s", err ? err : "");
}
