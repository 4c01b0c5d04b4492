/*
 * unix_server.c - the Sockets Tutorial's Unix-domain stream server, on libsockit.
 *
 *   unix_server PATH
 *
 * Creates the socket PATH, accepts one connection, reads one line, prints
 * "A connection has been established" and the line, replies
 * "I got your message" and exits, removing PATH. A socket file left behind by
 * a server that was killed is replaced the next time; a running server's is
 * not. PATH may also be written unix:PATH, or unix:@NAME for Linux's abstract
 * namespace (no file at all).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sockit.h"

#define MSG_MAX 65536
#define TIMEOUT_MS 30000
#define LINGER_MS 1000

static void die(const sk_err *err)
{
    fprintf(stderr, "unix_server: %s\n", err->msg);
    exit(err->usage ? 2 : 1);
}

static void fail(const char *what)
{
    fprintf(stderr, "unix_server: %s: %s\n", what, strerror(errno));
    exit(1);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: unix_server PATH\n");
        return 2;
    }
    sk_ignore_sigpipe();
    char text[512];
    const char *word = argv[1];
    if (strncmp(word, "unix:", 5) != 0) {
        if (snprintf(text, sizeof text, "unix:%s", word) >= (int)sizeof text) {
            fprintf(stderr, "unix_server: socket path too long\n");
            return 2;
        }
        word = text;
    }
    sk_err err;
    sk_addr addr;
    if (sk_addr_parse(&addr, word, &err) < 0)
        die(&err);
    sk_listener l;
    size_t n;
    if (sk_listen(&addr, NULL, &l, 1, &n, &err) < 0)
        die(&err);
    int fd = sk_accept(l.fd, NULL, NULL, 0);
    int accept_errno = errno;
    sk_listener_close(&l); /* one client only: remove the socket file now */
    if (fd < 0) {
        errno = accept_errno;
        fail("accept");
    }

    static char msg[MSG_MAX];
    size_t len = 0;
    char *nl = NULL;
    int64_t deadline = sk_now_ms() + TIMEOUT_MS;
    while (nl == NULL && len < sizeof msg) {
        ssize_t got = sk_read_deadline(fd, msg + len, sizeof msg - len, deadline);
        if (got < 0)
            fail("read");
        if (got == 0)
            break;
        nl = memchr(msg + len, '\n', (size_t)got);
        len += (size_t)got;
    }
    if (nl != NULL)
        len = (size_t)(nl - msg);
    if (puts("A connection has been established") == EOF || fwrite(msg, 1, len, stdout) != len ||
        putchar('\n') == EOF || fflush(stdout) == EOF)
        fail("write standard output");

    if (sk_write_all(fd, "I got your message\n", 19, deadline) < 0)
        fail("write");
    if (shutdown(fd, SHUT_WR) < 0)
        fail("shutdown");
    int64_t linger = sk_now_ms() + LINGER_MS; /* see server.c */
    while (sk_read_deadline(fd, msg, sizeof msg, linger) > 0) {
    }
    close(fd);
    return 0;
}
