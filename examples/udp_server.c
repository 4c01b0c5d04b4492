/*
 * udp_server.c - the Sockets Tutorial's datagram server, on libsockit.
 *
 *   udp_server PORT
 *
 * For every datagram: prints "Received a datagram: " and its contents, and
 * answers "Got your message\n" to whoever sent it. Runs until killed.
 * Instead of PORT, any datagram address works: udp://HOST:PORT, unixgram:PATH.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "sockit.h"

#define MAX_LISTENERS 8

static void die(const sk_err *err)
{
    fprintf(stderr, "udp_server: %s\n", err->msg);
    exit(err->usage ? 2 : 1);
}

static void fail(const char *what)
{
    fprintf(stderr, "udp_server: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* Receive one datagram on fd, show it, acknowledge it. */
static void serve_one(int fd)
{
    static char buf[SK_DGRAM_MAX];
    struct sockaddr_storage from;
    socklen_t fromlen = sizeof from;
    ssize_t n = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &fromlen);
    if (n < 0) {
        /* E.g. an ICMP error for an earlier reply: about that datagram, not ours. */
        fprintf(stderr, "udp_server: recvfrom: %s\n", strerror(errno));
        return;
    }
    if (fputs("Received a datagram: ", stdout) == EOF ||
        fwrite(buf, 1, (size_t)n, stdout) != (size_t)n ||
        ((n == 0 || buf[n - 1] != '\n') && putchar('\n') == EOF) || fflush(stdout) == EOF)
        fail("write standard output");
    if (fromlen <= (socklen_t)sizeof(sa_family_t))
        return; /* an unnamed Unix socket: it cannot be answered */
    if (sendto(fd, "Got your message\n", 17, 0, (struct sockaddr *)&from, fromlen) < 0)
        fprintf(stderr, "udp_server: sendto: %s\n", strerror(errno));
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: udp_server PORT\n");
        return 2;
    }
    sk_err err;
    sk_addr addr;
    if (sk_addr_parse(&addr, argv[1], &err) < 0)
        die(&err);
    /* A bare PORT (or HOST:PORT) parses as TCP, the default transport. */
    if (addr.transport == SK_TCP && strncmp(argv[1], "tcp", 3) != 0)
        addr.transport = SK_UDP;
    if (sk_transport_is_stream(addr.transport)) {
        fprintf(stderr, "udp_server: \"%s\" is not a datagram address\n", argv[1]);
        return 2;
    }
    sk_listener ls[MAX_LISTENERS];
    size_t n;
    if (sk_listen(&addr, NULL, ls, MAX_LISTENERS, &n, &err) < 0)
        die(&err);
    struct pollfd p[MAX_LISTENERS];
    for (size_t i = 0; i < n; i++) {
        if (strcmp(addr.port, "0") == 0)
            fprintf(stderr, "udp_server: listening on %s\n", ls[i].name);
        p[i] = (struct pollfd){.fd = ls[i].fd, .events = POLLIN};
    }
    for (;;) {
        if (poll(p, (nfds_t)n, -1) < 0) {
            if (errno == EINTR)
                continue;
            fail("poll");
        }
        for (size_t i = 0; i < n; i++)
            if (p[i].revents)
                serve_one(p[i].fd);
    }
}
