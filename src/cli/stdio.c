/*
 * stdio.c - `sockit serve stdio`: one client joined to this process's stdin
 * and stdout through the relay, as `nc -l` does; with -k (`nc -lk`), one
 * client after another. Stdin is read only while a client is connected, so
 * input typed between clients waits for the next one.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli.h"

#define MAX_WAIT 64

/* fd: the accepted stream socket, or -1 (a datagram peer). */
static void log_peer(const struct cli_stdio_opts *o, const sk_listener *l, int fd,
                     const struct sockaddr_storage *peer, socklen_t plen)
{
    char name[SK_NAME_MAX];
    if (!o->verbose)
        return;
    int pid;
    unsigned uid;
    if (l->transport == SK_UNIX && fd >= 0 && sk_unix_peer_cred(fd, &pid, &uid) == 0)
        sk_unix_peer_format(pid, uid, name, sizeof name); /* as the server's -v says it */
    else
        sk_sockaddr_format((const struct sockaddr *)peer, plen, l->transport, name, sizeof name);
    cli_warn("connection from %s", name);
}

/* --allow/--deny (access): 1 if the peer may be served. */
static int admitted(const struct cli_stdio_opts *o, const sk_listener *l,
                    const struct sockaddr_storage *peer, socklen_t plen)
{
    struct sockaddr_storage unix_peer = {.ss_family = AF_UNIX};
    int is_unix = l->transport == SK_UNIX || l->transport == SK_UNIXGRAM;
    const struct sockaddr *sa = (const struct sockaddr *)(is_unix ? &unix_peer : peer);
    if (sk_access_check(o->access, sa, is_unix ? (socklen_t)sizeof(sa_family_t) : plen))
        return 1;
    char name[SK_NAME_MAX];
    if (o->verbose)
        cli_warn("refused %s: not allowed by the access list",
                 sk_sockaddr_format((const struct sockaddr *)peer, plen, l->transport, name,
                                    sizeof name));
    return 0;
}

/* A datagram listener has no connections: the first datagram picks the peer,
 * the socket is connect()ed to it so only it is heard, and it becomes the
 * relay's. Returns the socket, or -1 to wait again. */
static int take_datagram_peer(const struct cli_stdio_opts *o, sk_listener *l)
{
    struct sockaddr_storage peer;
    socklen_t plen = sizeof peer;
    uint8_t dgram[SK_DGRAM_MAX];
    ssize_t got = recvfrom(l->fd, dgram, sizeof dgram, 0, (struct sockaddr *)&peer, &plen);
    if (got < 0) {
        if (errno == EAGAIN || errno == EINTR)
            return -1;
        cli_fail("recvfrom %s: %s", l->name, strerror(errno));
    }
    if (!admitted(o, l, &peer, plen))
        return -1; /* dropped: wait for an allowed peer */
    if (plen > (socklen_t)sizeof(sa_family_t) && connect(l->fd, (struct sockaddr *)&peer, plen) < 0)
        cli_fail("connect %s: %s", l->name, strerror(errno));
    log_peer(o, l, -1, &peer, plen); /* the peer first, then what it sent */
    if (sk_write_all(STDOUT_FILENO, dgram, (size_t)got, -1) < 0)
        cli_fail("write standard output: %s", strerror(errno));
    int fd = l->fd;
    l->fd = -1; /* the relay owns it now */
    return fd;
}

/* Wait for the next client on any listener still open. Returns its socket
 * (*which: its listener), or -1 when no listener is left. */
static int next_peer(const struct cli_stdio_opts *o, sk_listener *ls, size_t n, size_t *which)
{
    for (;;) {
        struct pollfd p[MAX_WAIT];
        size_t idx[MAX_WAIT], np = 0;
        for (size_t i = 0; i < n && np < MAX_WAIT; i++) {
            if (ls[i].fd >= 0) {
                idx[np] = i;
                p[np++] = (struct pollfd){.fd = ls[i].fd, .events = POLLIN};
            }
        }
        if (np == 0)
            return -1;
        if (poll(p, (nfds_t)np, -1) < 0) {
            if (errno == EINTR)
                continue;
            cli_fail("poll: %s", strerror(errno));
        }
        for (size_t k = 0; k < np; k++) {
            if (!p[k].revents)
                continue;
            sk_listener *l = &ls[idx[k]];
            *which = idx[k];
            if (!sk_transport_is_stream(l->transport)) {
                int fd = take_datagram_peer(o, l);
                if (fd >= 0)
                    return fd;
                continue;
            }
            struct sockaddr_storage peer;
            socklen_t plen = sizeof peer;
            int fd = sk_accept(l->fd, (struct sockaddr *)&peer, &plen, 0);
            if (fd >= 0 && !admitted(o, l, &peer, plen)) {
                close(fd); /* before a byte is read or written */
                continue;
            }
            if (fd >= 0) {
                log_peer(o, l, fd, &peer, plen);
                return fd;
            }
            if (errno != EAGAIN && errno != EINTR && errno != EMFILE && errno != ENFILE)
                cli_fail("accept %s: %s", l->name, strerror(errno));
        }
    }
}

/* One client, to the end. Returns the relay's result. */
static int serve_one(const struct cli_stdio_opts *o, int fd, int stream, sk_err *err)
{
    sk_relay_opts ro = {.stream = stream,
                        /* The client leaving ends its session: always with -k
                         * (the next one is waiting), and on a terminal, as nc -l. */
                        .stop_at_peer_eof = o->keep_open || isatty(STDIN_FILENO),
                        .idle_timeout_ms = o->idle_timeout_ms,
                        .dgram_linger_ms = o->idle_timeout_ms};
    if (!stream && ro.dgram_linger_ms == 0)
        ro.dgram_linger_ms = -1; /* a datagram server keeps listening to its peer */
    sk_relay_stats st;
    int rc = sk_relay(fd, STDIN_FILENO, STDOUT_FILENO, &ro, &st, err);
    close(fd);
    if (o->verbose)
        cli_warn("closed: %llu bytes in, %llu bytes out", (unsigned long long)st.from_net,
                 (unsigned long long)st.to_net);
    return rc;
}

int cli_serve_stdio(sk_listener *ls, size_t n, const struct cli_stdio_opts *o,
                    volatile sig_atomic_t *live)
{
    for (;;) {
        size_t which = 0;
        int fd = next_peer(o, ls, n, &which);
        if (fd < 0)
            return 0; /* -k, and the only listeners were datagram ones, now used */
        int stream = sk_transport_is_stream(ls[which].transport);
        if (!o->keep_open) {
            *live = 0; /* from here on a signal just ends the relay */
            for (size_t i = 0; i < n; i++)
                sk_listener_close(&ls[i]); /* like nc -l: one peer, then done */
        }
        sk_err err;
        if (serve_one(o, fd, stream, &err) < 0) {
            if (!o->keep_open)
                cli_die(&err);
            cli_warn("%s", err.msg); /* that client's trouble; wait for the next */
        }
        if (!o->keep_open)
            return 0;
    }
}
