/* err.c - filling sk_err: one line naming what failed, and the errno text. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "sockit.h"

static int fill(sk_err *err, int code, int usage, int add_errno, const char *fmt, va_list ap)
{
    if (err == NULL)
        return -1;
    err->code = code;
    err->usage = usage;
    int n = vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    if (n < 0)
        n = 0;
    if (add_errno && (size_t)n < sizeof err->msg)
        snprintf(err->msg + n, sizeof err->msg - (size_t)n, ": %s", strerror(code));
    /* One line, whatever the inputs were: names from the network or the
     * command line never break the message into several. */
    for (char *p = err->msg; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    return -1;
}

int sk_errf(sk_err *err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fill(err, code, 0, 0, fmt, ap);
    va_end(ap);
    return -1;
}

int sk_errno(sk_err *err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fill(err, code, 0, 1, fmt, ap);
    va_end(ap);
    return -1;
}

int sk_err_usage(sk_err *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fill(err, EINVAL, 1, 0, fmt, ap);
    va_end(ap);
    return -1;
}
