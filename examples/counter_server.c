/*
 * counter_server.c - the HSE lecture's tcp_qq_srver, on libsockit.
 *
 *   counter_server ADDRESS PORT
 *
 * Greets each client with "Connection N!" (N counts the connections) and
 * closes. Written as a service whose on_open handler does all the work, run
 * by the engine's iterative model; Ctrl-C or SIGTERM stops it. Unlike the
 * lecture's program it closes its listening socket on the way out, and it
 * closes each connection gracefully, so a client that sent something first
 * still reads its greeting.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sockit.h"

#define MAX_LISTENERS 8

/* One process serves every connection (the iterative model), so a plain
 * variable can count them. Under the fork model each child would count in its
 * own copy; the built-in `counter` service keeps its count in shared memory. */
static unsigned long conncount;

static void greet(sk_conn *c)
{
    char buf[32];
    int len = snprintf(buf, sizeof buf, "Connection %lu!\n", ++conncount);
    if (len > 0 && sk_conn_send(c, buf, (size_t)len) < 0)
        return;       /* the connection is being closed already */
    sk_conn_close(c); /* once the greeting has been written */
}

static const sk_service counter = {
    .name = "counter",
    .summary = "\"Connection N!\", then close",
    .flags = SK_SVC_STREAM,
    .on_open = greet,
};

static sk_server *volatile server; /* for the signal handler */

static void on_signal(int sig)
{
    (void)sig;
    sk_server_stop(server);
}

/* The signal handler may run at any time, even after sk_server_run returns
 * (a second Ctrl-C): it must never see a freed server. */
static void free_server(void)
{
    sk_server *s = server;
    server = NULL;
    sk_server_free(s);
}

static void log_line(void *arg, int level, const char *line)
{
    (void)arg;
    (void)level;
    fprintf(stderr, "counter_server: %s\n", line);
}

static void die(const sk_err *err)
{
    fprintf(stderr, "counter_server: %s\n", err->msg);
    exit(err->usage ? 2 : 1);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: counter_server ADDRESS PORT\n");
        return 2;
    }
    sk_err err;
    sk_addr addr;
    if (sk_addr_parse_host_port(&addr, argv[1], argv[2], &err) < 0)
        die(&err);
    sk_server_opts o = {.service = &counter, .model = sk_model_find("iterative"), .log = log_line};
    server = sk_server_new(&o, &err);
    if (server == NULL)
        die(&err);
    sk_listener ls[MAX_LISTENERS];
    size_t n;
    if (sk_listen(&addr, NULL, ls, MAX_LISTENERS, &n, &err) < 0) {
        free_server();
        die(&err);
    }
    for (size_t i = 0; i < n; i++) {
        if (sk_server_add_listener(server, &ls[i], &err) < 0) {
            for (size_t j = i; j < n; j++)
                sk_listener_close(&ls[j]);
            free_server();
            die(&err);
        }
        if (strcmp(addr.port, "0") == 0)
            fprintf(stderr, "counter_server: listening on %s\n", ls[i].name);
    }
    sk_ignore_sigpipe();
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGINT, &sa, NULL) < 0 || sigaction(SIGTERM, &sa, NULL) < 0) {
        perror("counter_server: sigaction");
        free_server();
        return 1;
    }
    int rc = sk_server_run(server, &err);
    free_server();
    if (rc < 0)
        die(&err);
    return 0;
}
