/* util.c - messages, exits and strict option parsing for the sockit program. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "cli.h"

int cli_syslog; /* serve --log syslog: messages go to syslog(3), not stderr */

static void vmsg(const char *fmt, va_list ap)
{
    char line[1024];
    vsnprintf(line, sizeof line, fmt, ap);
    if (cli_syslog) {
        syslog(LOG_NOTICE, "%s", line);
        return;
    }
    fprintf(stderr, "sockit: %s\n", line);
    fflush(stderr);
}

void cli_usage(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmsg(fmt, ap);
    va_end(ap);
    exit(EXIT_USAGE);
}

void cli_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmsg(fmt, ap);
    va_end(ap);
    exit(1);
}

void cli_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmsg(fmt, ap);
    va_end(ap);
}

void cli_die(const sk_err *err)
{
    if (cli_syslog)
        syslog(LOG_ERR, "%s", err->msg);
    else
        fprintf(stderr, "sockit: %s\n", err->msg);
    exit(err->usage ? EXIT_USAGE : 1);
}

void cli_bad_option(const char *cmd, int ch, char **argv)
{
    /* getopt_long leaves the offending word at argv[optind - 1], and optopt
     * holds a short option's letter (or a long option's code, not printable). */
    const char *word = optind > 0 ? argv[optind - 1] : "?";
    int letter = optopt > 0 && optopt < 128 && isalnum(optopt) ? optopt : 0;
    if (ch == ':') {
        if (letter && strncmp(word, "--", 2) != 0)
            cli_usage("option -%c needs a value", letter);
        cli_usage("option %s needs a value", word);
    }
    if (strncmp(word, "--", 2) == 0) {
        const char *eq = strchr(word, '=');
        if (eq != NULL)
            cli_usage("option %.*s takes no value", (int)(eq - word), word);
        cli_usage("unknown option \"%s\" (see sockit %s --help)", word, cmd);
    }
    if (letter)
        cli_usage("unknown option \"-%c\" (see sockit %s --help)", letter, cmd);
    cli_usage("unknown option \"%s\" (see sockit %s --help)", word, cmd);
}

/* Whether a word is a whole address that names its own port or path (so it
 * cannot be the HOST of HOST PORT): tcp://h:1, unix:/p, [::1]:80, h:80. An
 * IPv6 literal such as ::1 has more than one colon and is a host. */
static int names_its_port(const char *w)
{
    if (strstr(w, "://") || strncmp(w, "unix:", 5) == 0 || strncmp(w, "unixgram:", 9) == 0)
        return 1;
    const char *colon = strrchr(w, ':');
    if (colon == NULL || colon[1] == '\0')
        return 0;
    return w[0] == '[' ? colon > w && colon[-1] == ']' : strchr(w, ':') == colon;
}

void cli_client_address(int words, char **argv, sk_addr *a, const char *usage)
{
    sk_err err;
    int rc;
    if (words == 2 && names_its_port(argv[0]))
        cli_usage("\"%s\" is a whole address, so \"%s\" is one word too many (%s)", argv[0],
                  argv[1], strncmp(usage, "usage: ", 7) == 0 ? usage + 7 : usage);
    if (words == 1)
        rc = sk_addr_parse(a, argv[0], &err);
    else if (words == 2)
        rc = sk_addr_parse_host_port(a, argv[0], argv[1], &err);
    else
        cli_usage("%s", usage);
    if (rc < 0)
        cli_die(&err);
}

long cli_number(const char *opt, const char *s, long min, long max)
{
    char *end;
    errno = 0;
    if (s == NULL || *s == '\0' || *s == ' ' || *s == '+')
        cli_usage("%s: expected a number, got \"%s\"", opt, s ? s : "");
    long v = strtol(s, &end, 10);
    if (*end != '\0')
        cli_usage("%s: expected a number, got \"%s\"", opt, s);
    if (errno == ERANGE || v < min || v > max)
        cli_usage("%s: %s is out of range (%ld-%ld)", opt, s, min, max);
    return v;
}

int cli_seconds_ms(const char *opt, const char *s)
{
    /* Parsed by hand rather than strtod: no locale, no "inf", no "1e9". */
    long whole = 0, frac = 0, scale = 1000;
    const char *p = s;
    if (s == NULL || *s < '0' || *s > '9')
        cli_usage("%s: expected seconds, got \"%s\"", opt, s ? s : "");
    for (; *p >= '0' && *p <= '9'; p++) {
        whole = whole * 10 + (*p - '0');
        if (whole > 86400 * 24)
            cli_usage("%s: %s is out of range (at most %d seconds)", opt, s, 86400 * 24);
    }
    if (*p == '.') {
        for (p++; *p >= '0' && *p <= '9'; p++) {
            if (scale > 1) {
                scale /= 10;
                frac += (*p - '0') * scale;
            }
        }
    }
    if (*p != '\0')
        cli_usage("%s: expected seconds, got \"%s\"", opt, s);
    long ms = whole * 1000 + frac;
    return (int)ms;
}
