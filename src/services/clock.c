/*
 * clock.c - the two time-of-day services.
 *   daytime (RFC 867): the date and time as text, "Sat Nov 21 07:00:00 2026\r\n"
 *     (the ctime() format inetd has always used), then close.
 *   time (RFC 868): the time as 32-bit big-endian seconds since 1900-01-01,
 *     then close. Over UDP any datagram (the RFC's is empty) gets the 4 bytes.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "services.h"

#define SECONDS_1900_TO_1970 2208988800UL

static size_t daytime_text(char *buf, size_t cap)
{
    time_t now = time(NULL);
    struct tm tm;
    if (localtime_r(&now, &tm) == NULL)
        return 0;
    return strftime(buf, cap, "%a %b %e %H:%M:%S %Y\r\n", &tm);
}

static void time_bytes(uint8_t out[4])
{
    /* Wraps in 2036, as RFC 868's 32 bits do; clients handle the era. */
    uint32_t t = (uint32_t)((unsigned long)time(NULL) + SECONDS_1900_TO_1970);
    out[0] = (uint8_t)(t >> 24);
    out[1] = (uint8_t)(t >> 16);
    out[2] = (uint8_t)(t >> 8);
    out[3] = (uint8_t)t;
}

static void daytime_open(sk_conn *c)
{
    char buf[64];
    size_t n = daytime_text(buf, sizeof buf);
    sk_conn_send(c, buf, n);
    sk_conn_close(c);
}

static int daytime_datagram(sk_dgram *d)
{
    d->reply_len = daytime_text((char *)d->reply, d->cap);
    return d->reply_len > 0;
}

static void time_open(sk_conn *c)
{
    uint8_t b[4];
    time_bytes(b);
    sk_conn_send(c, b, 4);
    sk_conn_close(c);
}

static int time_datagram(sk_dgram *d)
{
    uint8_t b[4];
    time_bytes(b);
    return sk_dgram_reply(d, b, 4);
}

/* Input is ignored by both; the default on_eof closes. */
static void ignore_data(sk_conn *c, const uint8_t *data, size_t len)
{
    (void)c;
    (void)data;
    (void)len;
}

const sk_service sk__svc_daytime = {
    .name = "daytime",
    .summary = "RFC 867: the date and time as text, then close",
    .flags = SK_SVC_STREAM | SK_SVC_DGRAM,
    .on_open = daytime_open,
    .on_data = ignore_data,
    .on_datagram = daytime_datagram,
};

const sk_service sk__svc_time = {
    .name = "time",
    .summary = "RFC 868: seconds since 1900 as 32 bits big-endian (rdate -p), then close",
    .flags = SK_SVC_STREAM | SK_SVC_DGRAM,
    .on_open = time_open,
    .on_data = ignore_data,
    .on_datagram = time_datagram,
};
