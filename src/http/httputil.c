/* httputil.c - allocation-free HTTP helpers: percent-decoding, path checks,
 * Range, HTTP-date (see http.h). */
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "parser.h"

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int sk__http_percent_decode(const char *in, size_t n, char *out, size_t cap, size_t *outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '%') {
            if (n - i < 3)
                return -1;
            int hi = hexval((unsigned char)in[i + 1]), lo = hexval((unsigned char)in[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = (unsigned char)(hi * 16 + lo);
            i += 2;
        }
        if (c == 0 || o + 1 >= cap)
            return -1;
        out[o++] = (char)c; /* o <= i: safe when out == in */
    }
    if (o >= cap)
        return -1;
    out[o] = '\0';
    *outlen = o;
    return 0;
}

int sk__http_normalize_path(char *path, size_t n, size_t *outlen)
{
    if (n == 0 || path[0] != '/')
        return -1;
    size_t o = 0, i = 0;
    while (i < n) {
        /* path[i] == '/': skip the run of slashes, emit one. */
        while (i < n && path[i] == '/')
            i++;
        path[o++] = '/';
        size_t s = i;
        while (i < n && path[i] != '/') {
            unsigned char c = (unsigned char)path[i];
            if (c == '\\' || c == 0 || c == 0xc0 || c == 0xc1 || c >= 0xf5)
                return -1;
            i++;
        }
        size_t len = i - s;
        if ((len == 1 && path[s] == '.') || (len == 2 && path[s] == '.' && path[s + 1] == '.'))
            return -1;
        memmove(path + o, path + s, len); /* o <= s */
        o += len;
    }
    path[o] = '\0';
    *outlen = o;
    return 0;
}

/* Read 1*DIGIT at p[*i..n), saturating at UINT64_MAX. Returns 0 if none. */
static int read_u64(const char *p, size_t n, size_t *i, uint64_t *v)
{
    size_t s = *i;
    uint64_t x = 0;
    while (*i < n && p[*i] >= '0' && p[*i] <= '9') {
        unsigned d = (unsigned)(p[*i] - '0');
        x = x > (UINT64_MAX - d) / 10 ? UINT64_MAX : x * 10 + d;
        (*i)++;
    }
    *v = x;
    return *i > s;
}

int sk__http_parse_range(const char *p, size_t n, uint64_t size, uint64_t *first, uint64_t *last)
{
    static const char unit[] = "bytes=";
    size_t i = sizeof unit - 1;
    if (n < i)
        return -1;
    for (size_t k = 0; k < i; k++) {
        char c = p[k];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c + ('a' - 'A'));
        if (c != unit[k])
            return -1;
    }
    uint64_t a, b;
    int has_a = read_u64(p, n, &i, &a);
    if (i >= n || p[i] != '-')
        return -1;
    i++;
    int has_b = read_u64(p, n, &i, &b);
    if (i != n || (!has_a && !has_b))
        return -1; /* trailing bytes: several ranges, whitespace, junk */
    if (has_a && has_b && a > b)
        return -1;
    if (!has_a) { /* suffix: the last b bytes */
        if (b == 0 || size == 0)
            return 0;
        *first = b >= size ? 0 : size - b;
        *last = size - 1;
        return 1;
    }
    if (a >= size)
        return 0;
    *first = a;
    *last = (!has_b || b >= size) ? size - 1 : b;
    return 1;
}

/* ------------------------------------------------------------------ dates */

static const char wkdays[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char *const wkdays_long[7] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                           "Thursday", "Friday", "Saturday"};
static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static int is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* k decimal digits at p, or -1. */
static int digits(const char *p, size_t k)
{
    int v = 0;
    for (size_t i = 0; i < k; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    return v;
}

static int month_index(const char *p)
{
    for (int i = 0; i < 12; i++)
        if (memcmp(p, months[i], 3) == 0)
            return i + 1;
    return -1;
}

static int is_wkday(const char *p)
{
    for (int i = 0; i < 7; i++)
        if (memcmp(p, wkdays[i], 3) == 0)
            return 1;
    return 0;
}

/* "HH:MM:SS" at p -> seconds of the day, or -1. */
static int64_t time_of_day(const char *p)
{
    int h = digits(p, 2), m = digits(p + 3, 2), s = digits(p + 6, 2);
    if (p[2] != ':' || p[5] != ':' || h < 0 || h > 23 || m < 0 || m > 59 || s < 0 || s > 60)
        return -1;
    return (int64_t)h * 3600 + m * 60 + s;
}

static int make_time(int64_t y, int mon, int day, int64_t tod, int64_t *t)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (mon < 1 || day < 1 || tod < 0 || y < 0)
        return -1;
    if (day > mdays[mon - 1] + (mon == 2 && is_leap(y)))
        return -1;
    *t = days_from_civil(y, mon, day) * 86400 + tod;
    return 0;
}

/* The year of a two-digit rfc850 year (RFC 9110 5.6.7). */
static int64_t full_year(int yy)
{
    int64_t now_y;
    int m, d;
    time_t now = time(NULL);
    int64_t days = (int64_t)now / 86400 - ((int64_t)now % 86400 < 0);
    civil_from_days(days, &now_y, &m, &d);
    int64_t y = now_y - now_y % 100 + yy;
    if (y > now_y + 50)
        y -= 100;
    return y;
}

int sk__http_parse_date(const char *p, size_t n, int64_t *t)
{
    if (n == 29 && p[3] == ',') { /* Sun, 06 Nov 1994 08:49:37 GMT */
        if (!is_wkday(p) || p[4] != ' ' || p[7] != ' ' || p[11] != ' ' || p[16] != ' ' ||
            memcmp(p + 25, " GMT", 4) != 0)
            return -1;
        int y = digits(p + 12, 4);
        return y < 0 ? -1
                     : make_time(y, month_index(p + 8), digits(p + 5, 2), time_of_day(p + 17), t);
    }
    if (n == 24 && p[3] == ' ') { /* Sun Nov  6 08:49:37 1994 */
        if (!is_wkday(p) || p[7] != ' ' || p[10] != ' ' || p[19] != ' ')
            return -1;
        int day = p[8] == ' ' ? digits(p + 9, 1) : digits(p + 8, 2);
        int y = digits(p + 20, 4);
        if (y < 0)
            return -1;
        return make_time(y, month_index(p + 4), day, time_of_day(p + 11), t);
    }
    for (int w = 0; w < 7; w++) { /* Sunday, 06-Nov-94 08:49:37 GMT */
        size_t k = strlen(wkdays_long[w]);
        if (n != k + 24 || memcmp(p, wkdays_long[w], k) != 0)
            continue;
        const char *q = p + k;
        if (q[0] != ',' || q[1] != ' ' || q[4] != '-' || q[8] != '-' || q[11] != ' ' ||
            memcmp(q + 20, " GMT", 4) != 0)
            return -1;
        int yy = digits(q + 9, 2);
        if (yy < 0)
            return -1;
        return make_time(full_year(yy), month_index(q + 5), digits(q + 2, 2), time_of_day(q + 12),
                         t);
    }
    return -1;
}

static void put2(char *p, int v)
{
    p[0] = (char)('0' + v / 10);
    p[1] = (char)('0' + v % 10);
}

size_t sk__http_format_date(int64_t t, char *buf)
{
    const int64_t lo = -62167219200, hi = 253402300799; /* 0000-01-01, 9999-12-31 23:59:59 */
    if (t < lo)
        t = lo;
    if (t > hi)
        t = hi;
    int64_t days = t / 86400, secs = t % 86400;
    if (secs < 0) {
        secs += 86400;
        days--;
    }
    int64_t y;
    int m, d;
    civil_from_days(days, &y, &m, &d);
    int wd = (int)(((days % 7) + 11) % 7); /* 1970-01-01 was a Thursday */
    memcpy(buf, wkdays[wd], 3);
    memcpy(buf + 3, ", ", 2);
    put2(buf + 5, d);
    buf[7] = ' ';
    memcpy(buf + 8, months[m - 1], 3);
    buf[11] = ' ';
    put2(buf + 12, (int)(y / 100));
    put2(buf + 14, (int)(y % 100));
    buf[16] = ' ';
    put2(buf + 17, (int)(secs / 3600));
    buf[19] = ':';
    put2(buf + 20, (int)(secs / 60 % 60));
    buf[22] = ':';
    put2(buf + 23, (int)(secs % 60));
    memcpy(buf + 25, " GMT", 5);
    return SK_HTTP_DATE_LEN;
}
