/*
 * config.c - the http service's command-line options (as the generic
 * sk_svc_option table the CLI and library users read), how their values land
 * in sk__http_config, and the line that tells the operator what is served where.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_internal.h"

const sk_svc_option sk__http_options[] = {
    {"root", "DIR", "directory to serve (default .)", SK_OPT_PATH},
    {"index", "NAME", "file served for a directory (default index.html)", SK_OPT_STRING},
    {"listing", NULL, "list directories that have no index file", SK_OPT_FLAG},
    {"auth", "FILE", "require HTTP Basic auth against user:crypt-hash lines", SK_OPT_PATH},
    {"access-log", "FILE|-", "Combined Log Format, to FILE or stdout", SK_OPT_PATH},
    {NULL, NULL, NULL, 0},
};

int sk__http_configure(void *config, const char *option, const char *value, sk_err *err)
{
    sk__http_config *c = config;
    if (strcmp(option, "root") == 0)
        c->root = value;
    else if (strcmp(option, "index") == 0)
        c->index = value;
    else if (strcmp(option, "listing") == 0)
        c->listing = 1;
    else if (strcmp(option, "auth") == 0)
        c->auth_file = value;
    else if (strcmp(option, "access-log") == 0)
        c->access_log = value;
    else
        return sk_err_usage(err, "--%s is not an option of the http service", option);
    return 0;
}

size_t sk__http_describe(const void *config, const sk_listener *l, char *buf, size_t cap)
{
    const sk__http_config *c = config;
    const char *root = c && c->root ? c->root : ".";
    char real[PATH_MAX];
    const char *dir = realpath(root, real) ? real : root; /* as python3 -m http.server: absolute */
    int n;
    const char *rest = strstr(l->name, "://");
    if (l->transport == SK_TCP && rest) /* "tcp://[::]:8080" -> "http://[::]:8080/" */
        n = snprintf(buf, cap, "serving %s at http://%s/", dir, rest + 3);
    else /* "unix:/run/www.sock": curl --unix-socket */
        n = snprintf(buf, cap, "serving %s at %s", dir, l->name);
    if (n < 0 || cap == 0)
        return 0;
    return (size_t)n < cap ? (size_t)n : cap - 1;
}
