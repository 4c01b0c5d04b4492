/*
 * unix_client.c - the Sockets Tutorial's Unix-domain stream client, on libsockit.
 *
 *   unix_client PATH
 *
 * Connects to the socket PATH (or unix:PATH, unix:@NAME), prompts
 * "Please enter your message: ", sends one line, and prints
 * "The return message was" and the server's reply.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sockit.h"

#define CONNECT_TIMEOUT_MS 10000
#define TIMEOUT_MS 30000

static void die(const sk_err *err)
{
    fprintf(stderr, "unix_client: %s\n", err->msg);
    exit(err->usage ? 2 : 1);
}

static void fail(const char *what)
{
    fprintf(stderr, "unix_client: %s: %s\n", what, strerror(errno));
    exit(1);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: unix_client PATH\n");
        return 2;
    }
    sk_ignore_sigpipe();
    char text[512];
    const char *word = argv[1];
    if (strncmp(word, "unix:", 5) != 0) {
        if (snprintf(text, sizeof text, "unix:%s", word) >= (int)sizeof text) {
            fprintf(stderr, "unix_client: socket path too long\n");
            return 2;
        }
        word = text;
    }
    sk_err err;
    sk_addr addr;
    if (sk_addr_parse(&addr, word, &err) < 0)
        die(&err);
    int fd = sk_connect(&addr, CONNECT_TIMEOUT_MS, NULL, &err);
    if (fd < 0)
        die(&err);

    if (fputs("Please enter your message: ", stdout) == EOF || fflush(stdout) == EOF)
        fail("write standard output");
    char *line = NULL;
    size_t cap = 0;
    ssize_t len = getline(&line, &cap, stdin);
    if (len < 0) {
        if (ferror(stdin))
            fail("read standard input");
        len = 0;
    }
    if (sk_write_all(fd, line, (size_t)len, -1) < 0)
        fail("write");
    free(line);
    if (shutdown(fd, SHUT_WR) < 0 && errno != ENOTCONN)
        fail("shutdown");

    if (puts("The return message was") == EOF)
        fail("write standard output");
    char buf[4096];
    char last = '\n';
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
