/*
 * send_file.c - a short file sender with libsockit: connects to a
 * `sockit serve recv --dir DIR` and sends the files named on the command
 * line, each verified by the receiver.
 *
 *   send_file HOST PORT FILE...
 */
#include <stdio.h>
#include <unistd.h>

#include "sockit.h"

static void outcome(void *arg, const sk_xfer_file *f)
{
    (void)arg;
    if (f->status == SK_XFER_STORED)
        printf("%s: stored and verified\n", f->name);
    else if (f->status == SK_XFER_REFUSED)
        printf("%s: refused: %s\n", f->name, f->reason);
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s HOST PORT FILE...\n", argv[0]);
        return 2;
    }
    sk_err err;
    sk_addr a;
    if (sk_addr_parse_host_port(&a, argv[1], argv[2], &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 2;
    }
    int fd = sk_connect(&a, 5000, NULL, &err);
    if (fd < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    sk_xfer_opts o = {.on_file = outcome};
    sk_xfer_stats st;
    int rc = sk_xfer_send(fd, (const char *const *)argv + 3, (size_t)(argc - 3), &o, &st, &err);
    close(fd);
    if (rc < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    printf("%llu stored, %llu refused\n", (unsigned long long)st.stored,
           (unsigned long long)st.refused);
    return rc;
}
