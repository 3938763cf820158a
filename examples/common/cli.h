/*
 * cli.h -- command-line handling the terminal examples share: a usage line
 * on -h, --help or a bad argument (exit status 2), and checked addresses,
 * ports and paths, so a typo is reported instead of becoming a socket file
 * named "--help" or a port that wrapped around.
 */
#ifndef MOTE_EXAMPLES_CLI_H
#define MOTE_EXAMPLES_CLI_H

#include <mote.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

/* Print "usage: NAME USAGE" on stderr; returns the exit status 2. */
static inline int cli_usage(const char *name, const char *usage) {
    fprintf(stderr, "usage: %s %s\n", name, usage);
    return 2;
}

static inline bool cli_is_help(const char *arg) {
    return !strcmp(arg, "-h") || !strcmp(arg, "--help");
}

/* "HOST:PORT" with a numeric IPv4 or [IPv6] host and a port 0..65535. */
static inline bool cli_tcp_addr_ok(const char *text) {
    mote_addr a;
    if (mote_addr_parse(&a, text) != 0)
        return false;
    sa_family_t family = ((const struct sockaddr *)a.storage)->sa_family;
    return family == AF_INET || family == AF_INET6;
}

/* A port: decimal digits, 0..65535. */
static inline bool cli_port_ok(const char *text) {
    long v = 0;
    if (!*text)
        return false;
    for (const char *p = text; *p; p++) {
        if (*p < '0' || *p > '9' || (v = v * 10 + (*p - '0')) > 65535)
            return false;
    }
    return true;
}

/* A Unix socket path ("@name": abstract) that fits in sun_path. */
static inline bool cli_unix_path_ok(const char *text) {
    return text[0] && text[0] != '-' && strlen(text) < sizeof(((struct sockaddr_un *)0)->sun_path);
}

/*
 * The one optional argument of a server: argv[1], or def without one.
 * Returns 0 with it in *out, or prints the usage (and what was wrong) and
 * returns 2: for -h or --help, a second argument, or one that ok() rejects.
 */
static inline int cli_one_arg(int argc, char **argv, const char *def, bool (*ok)(const char *),
                              const char *usage, const char **out) {
    const char *name = argc > 0 ? argv[0] : "server";
    const char *slash = strrchr(name, '/');
    name = slash ? slash + 1 : name;
    if (argc > 2) {
        fprintf(stderr, "%s: one argument at most\n", name);
        return cli_usage(name, usage);
    }
    *out = argc == 2 ? argv[1] : def;
    if (argc == 2 && cli_is_help(argv[1]))
        return cli_usage(name, usage);
    if (!ok(*out)) {
        fprintf(stderr, "%s: bad argument '%s'\n", name, *out);
        return cli_usage(name, usage);
    }
    return 0;
}

#endif
