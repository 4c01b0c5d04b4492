/*
 * fmt.h - decimal formatting for the hot paths (HTTP heads, report lines),
 * where snprintf's locale and varargs cost more than the bytes.
 */
#ifndef SOCKIT_FMT_H
#define SOCKIT_FMT_H

#include <stddef.h>
#include <stdint.h>

/* The longest decimal uint64_t: 18446744073709551615. */
#define SK__U64_DIGITS 20

/* Write v in decimal at p (no NUL; p has room for SK__U64_DIGITS bytes).
 * Returns the number of digits written. */
static inline size_t sk__fmt_u64(char *p, uint64_t v)
{
    char tmp[SK__U64_DIGITS];
    size_t n = 0;
    do
        tmp[n++] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    for (size_t i = 0; i < n; i++)
        p[i] = tmp[n - 1 - i];
    return n;
}

#endif
