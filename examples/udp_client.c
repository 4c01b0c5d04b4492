/*
 * udp_client.c - the Sockets Tutorial's datagram client, on libsockit.
 *
 *   udp_client HOST PORT
 *
 * Prompts "Please enter the message: ", sends one line as one datagram, and
 * prints "Got an ack: " and the reply. Datagrams can be lost: without a reply
 * within 5 seconds it gives up.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sockit.h"

#define REPLY_TIMEOUT_MS 5000

static void die(const sk_err *err)
{
    fprintf(stderr, "udp_client: %s\n", err->msg);
    exit(err->usage ? 2 : 1);
}

static void fail(const char *what)
{
    fprintf(stderr, "udp_client: %s: %s\n", what, strerror(errno));
    exit(1);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: udp_client HOST PORT\n");
        return 2;
    }
    sk_err err;
    sk_addr addr;
    if (sk_addr_parse_host_port(&addr, argv[1], argv[2], &err) < 0)
        die(&err);
    addr.transport = SK_UDP; /* the two-word form parses as TCP */
    /* A connected datagram socket: send() needs no address, and only the
     * server's replies arrive. */
    int fd = sk_connect(&addr, 0, NULL, &err);
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
        len = 0; /* end of input: send an empty datagram */
    }
    if (send(fd, line ? line : "", (size_t)len, 0) < 0)
        fail("send"); /* EMSGSIZE: longer than a datagram can be */
    free(line);

    static char reply[SK_DGRAM_MAX];
    ssize_t n = sk_read_deadline(fd, reply, sizeof reply, sk_now_ms() + REPLY_TIMEOUT_MS);
    if (n < 0) {
        if (errno == ETIMEDOUT)
            fprintf(stderr, "udp_client: no reply within %d seconds\n", REPLY_TIMEOUT_MS / 1000);
        else
            fprintf(stderr, "udp_client: read: %s\n", strerror(errno));
        return 1;
    }
    close(fd);
    if (fputs("Got an ack: ", stdout) == EOF || fwrite(reply, 1, (size_t)n, stdout) != (size_t)n ||
        ((n == 0 || reply[n - 1] != '\n') && putchar('\n') == EOF) || fflush(stdout) == EOF)
        fail("write standard output");
    return 0;
}
