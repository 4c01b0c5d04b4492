/* services.c - the registry of built-in services, and helpers they share. */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "services.h"

static const sk_service *const services[] = {
    &sk__svc_ack,  &sk__svc_echo,    &sk__svc_discard, &sk__svc_chargen, &sk__svc_daytime,
    &sk__svc_time, &sk__svc_counter, &sk__svc_dump,    &sk__svc_broker,  &sk__svc_http,
    NULL,
};

const sk_service *const *sk_services(void)
{
    return services;
}

const sk_service *sk_service_find(const char *name)
{
    for (size_t i = 0; services[i]; i++)
        if (strcmp(services[i]->name, name) == 0)
            return services[i];
    return NULL;
}

int sk_dgram_reply(sk_dgram *d, const void *data, size_t len)
{
    if (len > d->cap)
        return 0;
    memcpy(d->reply, data, len);
    d->reply_len = len;
    return 1;
}

void sk__peer_words(const struct sockaddr *sa, socklen_t len, sk_transport t, char *buf, size_t cap)
{
    char host[SK_NAME_MAX];
    unsigned port;
    sk_sockaddr_host_port(sa, len, host, sizeof host, &port);
    /* An unnamed Unix sender comes with an address length of 0: go by the
     * transport, not by the address. */
    if (t == SK_UNIX || t == SK_UNIXGRAM) {
        if (strcmp(host, "unnamed") == 0)
            snprintf(buf, cap, "an unnamed unix socket");
        else
            snprintf(buf, cap, "unix:%s", host);
        return;
    }
    snprintf(buf, cap, "%s, port %u", host, port);
}

char *sk__printable(char *dst, const uint8_t *src, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        uint8_t b = src[i];
        dst[i] = (b < 0x20 && b != '\t') || b == 0x7f ? '.' : (char)b;
    }
    dst[len] = '\0';
    return dst;
}
