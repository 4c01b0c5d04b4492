/*
 * client.c - the Sockets Tutorial's stream client, on libsockit.
 *
 *   client HOSTNAME PORT
 *
 * Connects (trying every address HOSTNAME resolves to), prompts
 * "Please enter the message: ", sends one line of any length, and prints the
 * server's reply: everything it sends until it closes the connection.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sockit.h"

#define CONNECT_TIMEOUT_MS 10000
#define TIMEOUT_MS 30000 /* give up on a server silent this long */

static void die(const sk_err *err)
{
    fprintf(stderr, "client: %s\n", err->msg);
    exit(err->usage ? 2 : 1);
}

static void fail(const char *what)
{
    fprintf(stderr, "client: %s: %s\n", what, strerror(errno));
    exit(1);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: client HOSTNAME PORT\n");
        return 2;
    }
    sk_ignore_sigpipe();
    sk_err err;
    sk_addr addr;
    if (sk_addr_parse_host_port(&addr, argv[1], argv[2], &err) < 0)
        die(&err);
    int fd = sk_connect(&addr, CONNECT_TIMEOUT_MS, NULL, &err);
    if (fd < 0)
        die(&err);

    if (fputs("Please enter the message: ", stdout) == EOF || fflush(stdout) == EOF)
        fail("write standard output");
    char *line = NULL;
    size_t cap = 0;
    ssize_t len = getline(&line, &cap, stdin);
    if (len < 0) {
        if (ferror(stdin))
            fail("read standard input");
        len = 0; /* end of input: send an empty message */
    }
    if (sk_write_all(fd, line, (size_t)len, -1) < 0)
        fail("write");
    free(line);
    /* Tell the server the message is complete. ENOTCONN: it has already gone. */
    if (shutdown(fd, SHUT_WR) < 0 && errno != ENOTCONN)
        fail("shutdown");

    char buf[4096];
    char last = 0;
    for (;;) {
        ssize_t got = sk_read_deadline(fd, buf, sizeof buf, sk_now_ms() + TIMEOUT_MS);
        if (got < 0)
            fail("read");
        if (got == 0)
            break;
        if (fwrite(buf, 1, (size_t)got, stdout) != (size_t)got)
            fail("write standard output");
        last = buf[got - 1];
    }
    close(fd);
    if ((last != '\n' && putchar('\n') == EOF) || fflush(stdout) == EOF)
        fail("write standard output");
    return 0;
}
