/*
 * addr.c -- socket addresses as text: numeric IPv4 ("1.2.3.4:80"), IPv6
 * ("[::1]:80") and Unix ("unix:/path", "unix:@abstract"). Host names are
 * not addresses: mote_tcp_connect resolves them (resolve.c).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "base/base.h"

_Static_assert(sizeof(((mote_addr *)0)->storage) >= sizeof(struct sockaddr_storage),
               "mote_addr must hold any socket address");

/* A port: decimal digits only (leading zeros allowed), 0..65535. No sign,
 * no space, not empty: strtol would take " 80", "+80" and "-0". */
static int parse_port(const char *p) {
    long v = 0;
    if (*p == '\0')
        return -EINVAL;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return -EINVAL;
        v = v * 10 + (*p - '0');
        if (v > 65535)
            return -EINVAL;
    }
    return (int)v;
}

/* A length mote could have filled in: within storage, and at least the
 * family's fixed part (a Unix address may be unnamed: family only). */
bool mote__addr_len_ok(const mote_addr *a) {
    if (a->len < sizeof(sa_family_t) || a->len > sizeof a->storage)
        return false;
    switch (((const struct sockaddr *)a->storage)->sa_family) {
    case AF_INET:
        return a->len >= sizeof(struct sockaddr_in);
    case AF_INET6:
        return a->len >= sizeof(struct sockaddr_in6);
    case AF_UNIX:
        return a->len <= sizeof(struct sockaddr_un);
    default:
        return true; /* other families: the kernel judges */
    }
}

int mote_addr_parse(mote_addr *out, const char *text) {
    if (!out || !text)
        return -EINVAL;
    memset(out, 0, sizeof *out);
    if (strncmp(text, "unix:", 5) == 0) {
        struct sockaddr_un *un = (struct sockaddr_un *)out->storage;
        const char *path = text + 5;
        size_t n = strlen(path);
        if (n == 0 || n >= sizeof un->sun_path)
            return -EINVAL;
        un->sun_family = AF_UNIX;
        memcpy(un->sun_path, path, n);
        if (path[0] == '@') { /* abstract: a leading NUL, no terminator */
            un->sun_path[0] = '\0';
            out->len = (uint32_t)(offsetof(struct sockaddr_un, sun_path) + n);
        } else {
            out->len = (uint32_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
        }
        return 0;
    }
    char host[64];
    const char *colon;
    bool v6 = text[0] == '[';
    if (v6) {
        const char *close = strchr(text, ']');
        if (!close || close[1] != ':' || (size_t)(close - text - 1) >= sizeof host)
            return -EINVAL;
        memcpy(host, text + 1, (size_t)(close - text - 1));
        host[close - text - 1] = '\0';
        colon = close + 1;
    } else {
        colon = strrchr(text, ':');
        if (!colon || (size_t)(colon - text) >= sizeof host)
            return -EINVAL;
        memcpy(host, text, (size_t)(colon - text));
        host[colon - text] = '\0';
    }
    int port = parse_port(colon + 1);
    if (port < 0)
        return -EINVAL;
    if (v6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)out->storage;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1)
            return -EINVAL;
        out->len = sizeof *in6;
    } else {
        struct sockaddr_in *in = (struct sockaddr_in *)out->storage;
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)port);
        if (inet_pton(AF_INET, host, &in->sin_addr) != 1)
            return -EINVAL; /* a host name: mote_tcp_connect resolves those */
        out->len = sizeof *in;
    }
    return 0;
}

int mote_addr_format(const mote_addr *a, char *buf, size_t len) {
    if (!a || !buf || len == 0 || !mote__addr_len_ok(a))
        return -EINVAL;
    const struct sockaddr *sa = (const struct sockaddr *)a->storage;
    char host[INET6_ADDRSTRLEN];
    int n;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const void *)sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        n = snprintf(buf, len, "%s:%u", host, ntohs(in->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const void *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        n = snprintf(buf, len, "[%s]:%u", host, ntohs(in6->sin6_port));
    } else if (sa->sa_family == AF_UNIX) {
        const struct sockaddr_un *un = (const void *)sa;
        /* mote__addr_len_ok: plen <= sizeof sun_path; a path need not end
         * in a NUL within it (the kernel allows that), so bound every read. */
        size_t plen = a->len > offsetof(struct sockaddr_un, sun_path)
                          ? a->len - offsetof(struct sockaddr_un, sun_path)
                          : 0;
        if (plen > 0 && un->sun_path[0] == '\0')
            n = snprintf(buf, len, "unix:@%.*s", (int)plen - 1, un->sun_path + 1);
        else
            n = snprintf(buf, len, "unix:%.*s", (int)strnlen(un->sun_path, plen), un->sun_path);
    } else {
        return -EAFNOSUPPORT;
    }
    return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
}
