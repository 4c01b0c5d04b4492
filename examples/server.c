/*
 * server.c - the Sockets Tutorial's stream server, on libsockit.
 *
 *   server PORT
 *
 * Accepts one connection, reads one message, prints "Here is the message: ...",
 * replies "I got your message" and exits. A message is a line: the bytes up to
 * a newline or the end of the stream. (The tutorial took whatever one 255-byte
 * read() returned, which on a stream may be half a message.)
 *
 * This example uses the library's socket calls directly. forking_server.c is
 * the same server written as a service for the server engine.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sockit.h"

#define MAX_LISTENERS 8
#define MSG_MAX 65536    /* a longer line is cut here */
#define TIMEOUT_MS 30000 /* a client silent this long is given up */
#define LINGER_MS 1000   /* after replying: how long to wait for the client's close */

static void die(const sk_err *err)
{
    fprintf(stderr, "server: %s\n", err->msg);
    exit(err->usage ? 2 : 1);
}

static void fail(const char *what)
{
    fprintf(stderr, "server: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* Wait for a client on any of the listeners and accept it. */
static int accept_one(sk_listener *ls, size_t n)
{
    struct pollfd p[MAX_LISTENERS];
    for (size_t i = 0; i < n; i++)
        p[i] = (struct pollfd){.fd = ls[i].fd, .events = POLLIN};
    while (poll(p, (nfds_t)n, -1) < 0)
        if (errno != EINTR)
            fail("poll");
    size_t i = 0;
    while (p[i].revents == 0)
        i++;
    int fd = sk_accept(ls[i].fd, NULL, NULL, 0);
    if (fd < 0)
        fail("accept");
    return fd;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: server PORT\n");
        return 2;
    }
    sk_ignore_sigpipe();
    sk_err err;
    sk_addr addr;
    if (sk_addr_parse(&addr, argv[1], &err) < 0)
        die(&err);
    if (!sk_transport_is_stream(addr.transport)) {
        fprintf(stderr, "server: \"%s\" is not a stream address\n", argv[1]);
        return 2;
    }
    /* "PORT" gives one socket for IPv6 and IPv4; a host name may give several. */
    sk_listener ls[MAX_LISTENERS];
    size_t n;
    if (sk_listen(&addr, NULL, ls, MAX_LISTENERS, &n, &err) < 0)
        die(&err);
    for (size_t i = 0; i < n && strcmp(addr.port, "0") == 0; i++)
        fprintf(stderr, "server: listening on %s\n", ls[i].name);

    int fd = accept_one(ls, n);
    for (size_t i = 0; i < n; i++)
        sk_listener_close(&ls[i]);

    static char msg[MSG_MAX];
    size_t len = 0;
    char *nl = NULL;
    int64_t deadline = sk_now_ms() + TIMEOUT_MS;
    while (nl == NULL && len < sizeof msg) {
        ssize_t got = sk_read_deadline(fd, msg + len, sizeof msg - len, deadline);
        if (got < 0)
            fail("read");
        if (got == 0)
            break; /* end of stream: the message has no newline */
        nl = memchr(msg + len, '\n', (size_t)got);
        len += (size_t)got;
    }
    if (nl != NULL)
        len = (size_t)(nl - msg);
    if (len > 0 && msg[len - 1] == '\r')
        len--;
    if (fputs("Here is the message: ", stdout) == EOF || fwrite(msg, 1, len, stdout) != len ||
        putchar('\n') == EOF || fflush(stdout) == EOF)
        fail("write standard output");

    if (sk_write_all(fd, "I got your message", 18, deadline) < 0)
        fail("write");
    /* Close gracefully: send our end of stream, then wait a little for the
     * client's. Closing with unread input would reset the connection, and a
     * reset can destroy the reply before the client has read it. */
    if (shutdown(fd, SHUT_WR) < 0)
        fail("shutdown");
    int64_t linger = sk_now_ms() + LINGER_MS;
    while (sk_read_deadline(fd, msg, sizeof msg, linger) > 0) {
    }
    close(fd);
    return 0;
}
