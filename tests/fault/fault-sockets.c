/* Sockets under faults: a TCP echo server and clients in one program.
 * A connection may fail (injected ECONNRESET/EPIPE, ENOMEM), but every
 * exchange that succeeded carried the exact bytes, and every process ends. */
#include "common.h"

#include <sys/socket.h>

enum { CLIENTS = 4, ROUNDS = 4, LEN = 3000 };

static char addr[64];
static atomic_int echo_live, clients_done, stop, acceptor_done;

static void echo(void *arg) {
    mote_socket *s = *(mote_socket **)arg;
    char buf[4096];
    int64_t n;
    while ((n = mote_socket_read(s, buf, sizeof buf, MOTE_SEC(20))) > 0)
        if (f_err("mote_socket_write_all", mote_socket_write_all(s, buf, (size_t)n, MOTE_SEC(20))) < 0)
            break;
    if (n < 0)
        f_err("mote_socket_read", (int)n);
    mote_socket_close(s);
    atomic_fetch_sub(&echo_live, 1);
}

/* Owns the listener: closes it when told to stop (a close by another
 * process could race with the next accept on a freed handle). */
static void acceptor(void *arg) {
    mote_socket *l = *(mote_socket **)arg, *c;
    while (!atomic_load(&stop)) {
        int r = mote_socket_accept(l, &c, NULL, MOTE_MSEC(10));
        if (r == -ETIMEDOUT || f_err("mote_socket_accept", r) < 0)
            continue;
        atomic_fetch_add(&echo_live, 1);
        if (f_err("mote_spawn_fn", mote_spawn_fn(NULL, echo, &c, sizeof c)) < 0) {
            mote_socket_close(c);
            atomic_fetch_sub(&echo_live, 1);
        }
    }
    mote_socket_close(l);
    atomic_store(&acceptor_done, 1);
}

static void client(void *arg) {
    int id = *(int *)arg;
    mote_socket *s = NULL;
    if (f_err("mote_tcp_connect", mote_tcp_connect(&s, addr, MOTE_SEC(20))) == 0) {
        char out[LEN], back[LEN];
        for (int k = 0; k < ROUNDS; k++) {
            for (int i = 0; i < LEN; i++)
                out[i] = (char)(id * 31 + k * 7 + i);
            if (f_err("mote_socket_write_all", mote_socket_write_all(s, out, LEN, MOTE_SEC(20))) < 0 ||
                f_err("mote_socket_read_exact", mote_socket_read_exact(s, back, LEN, MOTE_SEC(20))) < 0)
                break;
            F_CHECK(memcmp(out, back, LEN) == 0, "client %d round %d: bytes differ", id, k);
        }
        mote_socket_close(s);
    }
    atomic_fetch_add(&clients_done, 1);
}

static int main_fn(void *arg) {
    (void)arg;
    mote_socket *l = NULL;
    if (f_err("mote_tcp_listen", mote_tcp_listen(&l, "127.0.0.1:0", 0, false)) < 0)
        return 0;
    mote_addr a;
    if (f_err("mote_socket_local_addr", mote_socket_local_addr(l, &a)) < 0 ||
        f_err("mote_addr_format", mote_addr_format(&a, addr, sizeof addr)) < 0) {
        mote_socket_close(l);
        return 0;
    }
    mote_proc *acc = NULL;
    if (f_err("mote_spawn_fn", mote_spawn_fn(&acc, acceptor, &l, sizeof l)) < 0) {
        mote_socket_close(l);
        return 0;
    }
    int started = 0;
    for (int i = 0; i < CLIENTS; i++)
        started += f_err("mote_spawn_fn", mote_spawn_fn(NULL, client, &i, sizeof i)) == 0;
    F_CHECK(f_wait_for(&clients_done, started), "%d of %d clients ended", atomic_load(&clients_done), started);
    int64_t deadline = mote_now() + MOTE_SEC(20);
    while (atomic_load(&echo_live) > 0 && mote_now() < deadline)
        mote_sleep(MOTE_MSEC(1));
    F_CHECK(atomic_load(&echo_live) == 0, "%d echo processes still running", atomic_load(&echo_live));
    atomic_store(&stop, 1);
    F_CHECK(f_wait_for(&acceptor_done, 1), "the acceptor did not end");
    mote_proc_release(acc);
    return 0;
}

int main(void) {
    return f_run("fault-sockets", main_fn);
}
