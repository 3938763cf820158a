/*
 * dial.c -- TCP, UDP and Unix sockets from address text: they only open,
 * bind, listen or connect through the generic calls of socket.c (and
 * resolve a host name through resolve.c), so a socket made here is an
 * ordinary mote_socket.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "io/internal.h"

/* ---- TCP ---- */

/* Parse addr and open a stream socket of its family. */
static int open_stream(mote_socket **s, mote_addr *a, const char *addr) {
    *s = NULL;
    int r = mote_addr_parse(a, addr);
    if (r < 0)
        return r;
    return mote_socket_open(s, ((const struct sockaddr *)a->storage)->sa_family, SOCK_STREAM, 0);
}

static bool is_inet(const mote_addr *a) {
    return ((const struct sockaddr *)a->storage)->sa_family != AF_UNIX;
}

/* On failure close s; on success hand it out. */
static int finish(mote_socket **out, mote_socket *s, int r) {
    if (r < 0) {
        if (s)
            mote_socket_close(s);
        return r;
    }
    *out = s;
    return 0;
}

/* A listening stream socket at addr (any family mote_addr_parse reads). */
static int listen_on(mote_socket **out, const char *addr, int backlog, bool reuse_port) {
    if (!out)
        return -EINVAL;
    *out = NULL;
    if (backlog < 0)
        return -EINVAL;
    mote_addr a;
    mote_socket *s;
    int r = open_stream(&s, &a, addr);
    if (r == 0 && is_inet(&a)) {
        r = mote_socket_set_option(s, SOL_SOCKET, SO_REUSEADDR, 1);
        if (r == 0 && reuse_port)
            r = mote_socket_set_option(s, SOL_SOCKET, SO_REUSEPORT, 1);
    }
    if (r == 0)
        r = mote_socket_bind(s, &a);
    if (r == 0)
        r = mote_socket_listen(s, backlog > 0 ? backlog : 1024);
    return finish(out, s, r);
}

int mote_tcp_listen(mote_socket **out, const char *addr, int backlog, bool reuse_port) {
    return listen_on(out, addr, backlog, reuse_port);
}

static int connect_one(mote_socket **out, const mote_addr *a, int64_t deadline) {
    mote_socket *s;
    int r = mote_socket_open(&s, ((const struct sockaddr *)a->storage)->sa_family, SOCK_STREAM, 0);
    if (r == 0 && is_inet(a))
        mote_socket_set_option(s, IPPROTO_TCP, TCP_NODELAY, 1);
    if (r == 0) {
        int64_t left = deadline < 0 ? -1 : deadline - mote__now();
        r = deadline >= 0 && left <= 0 ? -ETIMEDOUT : mote_socket_connect(s, a, left);
    }
    return finish(out, s, r);
}

int mote_tcp_connect(mote_socket **out, const char *addr, int64_t timeout) {
    if (!out || !addr)
        return -EINVAL;
    *out = NULL;
    int64_t deadline = mote__deadline(timeout);
    mote_addr a;
    if (mote_addr_parse(&a, addr) == 0)
        return connect_one(out, &a, deadline);
    /* "host:port": resolve on a helper thread, then try each address. */
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr || colon[1] == '\0' || addr[0] == '[' || strncmp(addr, "unix:", 5) == 0)
        return -EINVAL;
    char host[256];
    size_t hl = (size_t)(colon - addr);
    if (hl >= sizeof host)
        return -EINVAL;
    memcpy(host, addr, hl);
    host[hl] = '\0';
    /* A port the resolver would call an unknown "service": say what it is. */
    const char *port = colon + 1;
    size_t pl = strspn(port, "0123456789");
    if (pl == 0 || pl > 5 || port[pl] != '\0' || atoi(port) < 1 || atoi(port) > 65535)
        return -EINVAL;
    mote_addr cand[8];
    int n = mote__cancel_check();
    if (n == 0)
        n = mote__resolve(host, colon + 1, cand, 8, timeout);
    int r = n < 0 ? n : -ECONNREFUSED;
    for (int i = 0; i < n; i++) {
        r = connect_one(out, &cand[i], deadline);
        if (r == 0 || r == -ETIMEDOUT)
            break;
    }
    return r;
}

/* ---- UDP and Unix ---- */

/* A socket of domain and type, bound to a unless a is NULL. */
static int open_bound(mote_socket **out, int domain, int type, const mote_addr *a) {
    mote_socket *s;
    int r = mote_socket_open(&s, domain, type, 0);
    if (r == 0 && a)
        r = mote_socket_bind(s, a);
    return finish(out, s, r);
}

int mote_udp_bind(mote_socket **out, const char *addr) {
    if (!out)
        return -EINVAL;
    *out = NULL;
    mote_addr a;
    int r = mote_addr_parse(&a, addr);
    if (r == 0 && !is_inet(&a))
        r = -EINVAL; /* "unix:...": that is mote_unix_datagram */
    return r < 0 ? r : open_bound(out, ((const struct sockaddr *)a.storage)->sa_family, SOCK_DGRAM, &a);
}

/* The text "unix:<path>" for mote_addr_parse (which checks the length). */
#define UNIX_TEXT_MAX (5 + sizeof(((struct sockaddr_un *)0)->sun_path) + 1)
static int unix_text(char *buf, const char *path) {
    if (!path || !path[0])
        return -EINVAL;
    int n = snprintf(buf, UNIX_TEXT_MAX, "unix:%s", path);
    return n < 0 || (size_t)n >= UNIX_TEXT_MAX ? -EINVAL : 0;
}

int mote_unix_listen(mote_socket **out, const char *path, int backlog) {
    char text[UNIX_TEXT_MAX];
    int r = out ? unix_text(text, path) : -EINVAL;
    if (out)
        *out = NULL;
    /* No SO_REUSEADDR and no unlink: an existing socket file stays and
     * bind says -EADDRINUSE. */
    return r < 0 ? r : listen_on(out, text, backlog, false);
}

int mote_unix_connect(mote_socket **out, const char *path, int64_t timeout) {
    if (!out)
        return -EINVAL;
    *out = NULL;
    char text[UNIX_TEXT_MAX];
    mote_addr a;
    int r = unix_text(text, path);
    if (r == 0)
        r = mote_addr_parse(&a, text);
    return r < 0 ? r : connect_one(out, &a, mote__deadline(timeout));
}

int mote_unix_datagram(mote_socket **out, const char *path) {
    if (!out)
        return -EINVAL;
    *out = NULL;
    char text[UNIX_TEXT_MAX];
    mote_addr a;
    if (path) {
        int r = unix_text(text, path);
        if (r == 0)
            r = mote_addr_parse(&a, text);
        if (r < 0)
            return r;
    }
    return open_bound(out, AF_UNIX, SOCK_DGRAM, path ? &a : NULL);
}
