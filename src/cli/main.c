/* main.c - sockit: one program, subcommands in the manner of git and ip. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: sockit SUBCOMMAND [OPTIONS] ...\n"
            "\n"
            "  serve SERVICE ADDRESS...     run a service (sockit serve --help)\n"
            "  connect ADDRESS | HOST PORT  the client: stdin to the socket, the socket to stdout\n"
            "  bench [OPTIONS] ADDRESS      load generator, checking every reply\n"
            "  send [OPTIONS] PATH... ADDRESS  files and trees to `serve recv`, verified\n"
            "  relay [OPTIONS] LISTEN_ADDRESS TARGET_ADDRESS  forward connections (or UDP)\n"
            "\n"
            "Addresses: PORT, HOST:PORT, [IPV6]:PORT, tcp://HOST:PORT, udp://HOST:PORT,\n"
            "tcp4:// tcp6:// udp4:// udp6://, unix:PATH, unixgram:PATH, unix:@NAME.\n"
            "\n"
            "  sockit --help | --version\n");
}

/* Started with 0, 1 or 2 closed (`>&-`), the next descriptor we open would take
 * that number: a stop pipe on 1 reads our own "listening on" line as a stop
 * request, a socket on 0 sends the peer's reply back to it. So the three are
 * held open on /dev/null before anything else is opened. */
static void hold_std_fds(void)
{
    for (int fd = 0; fd <= 2; fd++) {
        if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
            continue;
        int n = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
        if (n < 0)
            _exit(1);  /* nowhere to say so: stderr may be the one missing */
        if (n != fd) { /* (lower ones are open by now, so n is fd; be sure) */
            if (dup2(n, fd) < 0)
                _exit(1);
            close(n);
        }
    }
}

int main(int argc, char **argv)
{
    hold_std_fds();
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0) {
        printf("sockit %s\n", SOCKIT_VERSION);
        return 0;
    }
    if (strcmp(cmd, "serve") == 0)
        return cli_serve(argc - 1, argv + 1);
    if (strcmp(cmd, "connect") == 0)
        return cli_connect(argc - 1, argv + 1);
    if (strcmp(cmd, "bench") == 0)
        return cli_bench(argc - 1, argv + 1);
    if (strcmp(cmd, "send") == 0)
        return cli_send(argc - 1, argv + 1);
    if (strcmp(cmd, "relay") == 0)
        return cli_relay(argc - 1, argv + 1);
    if (cmd[0] == '-')
        cli_usage("unknown option \"%s\" (see sockit --help)", cmd);
    cli_usage("unknown subcommand \"%s\" (serve, connect, bench, send, relay; see sockit --help)",
              cmd);
}
