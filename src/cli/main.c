/* main.c - sockit: one program, subcommands in the manner of git and ip. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: sockit SUBCOMMAND [OPTIONS] ...\n"
            "\n"
            "  serve SERVICE ADDRESS...     run a service (sockit serve --help)\n"
            "  connect ADDRESS | HOST PORT  the client: stdin to the socket, the socket to stdout\n"
            "  bench [OPTIONS] ADDRESS      load generator, checking every reply\n"
            "\n"
            "Addresses: PORT, HOST:PORT, [IPV6]:PORT, tcp://HOST:PORT, udp://HOST:PORT,\n"
            "tcp4:// tcp6:// udp4:// udp6://, unix:PATH, unixgram:PATH, unix:@NAME.\n"
            "\n"
            "  sockit --help | --version\n");
}

int main(int argc, char **argv)
{
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
    cli_usage("unknown subcommand \"%s\" (serve, connect, bench; see sockit --help)", cmd);
}
