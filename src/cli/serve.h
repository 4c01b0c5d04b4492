/*
 * serve.h - what `sockit serve` (and `sockit relay`) parse from the command
 * line (serve_opts.c) and serve with (serve.c). Internal to the CLI.
 */
#ifndef SOCKIT_CLI_SERVE_H
#define SOCKIT_CLI_SERVE_H

#include "sockit.h"
#include "deploy.h"

#define MAX_LISTENERS 64
#define MAX_TLS_PAIRS 16

struct serve_cfg {
    sk_server_opts o;
    void *config; /* the service's settings, from its own options */
    const char *service;
    int quiet;
    int keep_open; /* stdio: -k */
    char **addrs;
    int naddrs;
    sk_access *access; /* --allow/--deny/--allow-file/--deny-file, NULL if none */
    /* TLS: any of its options implies --tls */
    int tls;
    sk_tls_server_opts to;
    sk_tls_pair pairs[MAX_TLS_PAIRS];
    /* deploy: --inetd (1) / --inetd-wait (2), --idle-exit, --log, --reuseport */
    int inetd;
    int idle_exit_ms;
    int reuseport;
    struct cli_deploy d;
    char wait_addr[32]; /* --inetd-wait: "fd:N", the socket from descriptor 0 */
    char *wait_addrs[1];
    struct access_arg { /* the access options in order, replayed on SIGHUP */
        int allow, file;
        const char *arg;
    } * acc;
    int nacc;
    int svc_files;            /* a file option of a service that re-reads on SIGHUP (http --auth) */
    sk_access *proxy_from;    /* --proxy-from/--proxy-from-file, NULL: loopback and unix */
    struct access_arg *pfrom; /* the same, replayed on SIGHUP when a file is among them */
    int npfrom, pfrom_files;
    /* `sockit relay` is this command with the relay service (relay.c): the
     * stream relay's listening side is an ordinary server. */
    int relay;
    const char *relay_target;
    int relay_dgram; /* a datagram LISTEN_ADDRESS: sk_forward_udp instead */
};

/* Parse argv into c (c->relay set by the caller). Usage errors exit 2 with
 * one line (cli_usage); --help prints and exits 0. */
void cli__serve_parse(int argc, char **argv, struct serve_cfg *c);

#endif
