/*
 * unix_d_server.c - the HSE lecture's Unix-domain datagram server, on libsockit.
 *
 *   unix_d_server PATH
 *
 * Creates the datagram socket PATH, receives one datagram, prints its bytes
 * in hexadecimal ("4d 65 73 73 61 67 65 "), removes PATH and exits.
 * Unlike the lecture's program it takes a datagram of any size (not the first
 * 16 bytes), prints bytes above 0x7f as two digits, and removes PATH first
 * only if no server is using it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sockit.h"

static void die(const sk_err *err)
{
    fprintf(stderr, "unix_d_server: %s\n", err->msg);
    exit(err->usage ? 2 : 1);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: unix_d_server PATH\n");
        return 2;
    }
    char text[512];
    const char *word = argv[1];
    if (strncmp(word, "unixgram:", 9) != 0) {
        if (snprintf(text, sizeof text, "unixgram:%s", word) >= (int)sizeof text) {
            fprintf(stderr, "unix_d_server: socket path too long\n");
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

    /* On a datagram socket one read is one whole datagram. */
    static unsigned char dgram[SK_DGRAM_MAX];
    ssize_t got = sk_read_deadline(l.fd, dgram, sizeof dgram, -1);
    int read_errno = errno;
    sk_listener_close(&l); /* removes PATH */
    if (got < 0) {
        fprintf(stderr, "unix_d_server: read: %s\n", strerror(read_errno));
        return 1;
    }
    for (ssize_t i = 0; i < got; i++)
        if (printf("%02x ", dgram[i]) < 0)
            break;
    if (putchar('\n') == EOF || fflush(stdout) == EOF) {
        fprintf(stderr, "unix_d_server: write standard output: %s\n", strerror(errno));
        return 1;
    }
    return 0;
}
