/*
 * unix_d_send.c - the HSE lecture's Unix-domain datagram sender, on libsockit.
 *
 *   unix_d_send PATH MESSAGE
 *
 * Sends MESSAGE as one datagram to the socket PATH (see unix_d_server.c).
 * The lecture's sender bound its own socket to PATH, the server's address,
 * which fails while the server runs (or, without it, takes its place).
 * sk_connect gives our socket a name of its own instead: an autobound
 * abstract one, to which a server could reply.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sockit.h"

static void die(const sk_err *err)
{
    fprintf(stderr, "unix_d_send: %s\n", err->msg);
    exit(err->usage ? 2 : 1);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: unix_d_send PATH MESSAGE\n");
        return 2;
    }
    char text[512];
    const char *word = argv[1];
    if (strncmp(word, "unixgram:", 9) != 0) {
        if (snprintf(text, sizeof text, "unixgram:%s", word) >= (int)sizeof text) {
            fprintf(stderr, "unix_d_send: socket path too long\n");
            return 2;
        }
        word = text;
    }
    sk_err err;
    sk_addr addr;
    if (sk_addr_parse(&addr, word, &err) < 0)
        die(&err);
    int fd = sk_connect(&addr, 0, NULL, &err);
    if (fd < 0)
        die(&err);
    if (send(fd, argv[2], strlen(argv[2]), 0) < 0) {
        fprintf(stderr, "unix_d_send: send %s: %s\n", word, strerror(errno));
        return 1;
    }
    close(fd);
    return 0;
}
