/*
 * services.c - the registry of built-in services, the generic handling of
 * their options, and helpers they share. Adding a service: one file defining
 * an sk_service, and one line in the table below (and its extern in services.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "../lib/fmt.h"
#include "services.h"

/* The registry: a new service is one file and one word here. The first
 * service declaring an option name decides how the command line reads it. */
#define SK_SERVICES(X)                                                                             \
    X(ack)                                                                                         \
    X(echo)                                                                                        \
    X(discard) X(chargen) X(daytime) X(time) X(counter) X(dump) X(broker) X(http) X(recv) X(exec)

#define SK_DECLARE(n) extern const sk_service sk__svc_##n;
SK_SERVICES(SK_DECLARE)
#define SK_ENTRY(n) &sk__svc_##n,
static const sk_service *const services[] = {SK_SERVICES(SK_ENTRY) NULL};

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

const sk_svc_option *sk_service_option(const sk_service *svc, const char *name)
{
    for (const sk_svc_option *o = svc->options; o && o->name; o++)
        if (strcmp(o->name, name) == 0)
            return o;
    return NULL;
}

void *sk_service_config_new(const sk_service *svc, sk_err *err)
{
    /* At least one byte: a service without settings still gets an object. */
    void *cfg = calloc(1, svc->config_size ? svc->config_size : 1);
    if (cfg == NULL) {
        sk_errno(err, ENOMEM, "%s settings", svc->name);
        return NULL;
    }
    if (svc->config_defaults)
        svc->config_defaults(cfg);
    return cfg;
}

void sk_service_config_free(const sk_service *svc, void *config)
{
    (void)svc; /* settings hold no resources: strings are the caller's */
    free(config);
}

/* The whole word is digits, with at most one '.' among them when frac. */
static int is_decimal(const char *s, int frac)
{
    int digits = 0, dots = 0;
    for (; *s; s++) {
        if (*s >= '0' && *s <= '9')
            digits++;
        else if (*s == '.' && frac && dots++ == 0)
            continue;
        else
            return 0;
    }
    return digits > 0;
}

int sk_service_set(const sk_service *svc, void *config, const char *name, const char *value,
                   sk_err *err)
{
    const sk_svc_option *o = sk_service_option(svc, name);
    if (o == NULL) {
        for (const sk_service *const *s = sk_services(); *s; s++)
            if (sk_service_option(*s, name))
                return sk_err_usage(err, "--%s is an option of the %s service, not of %s", name,
                                    (*s)->name, svc->name);
        return sk_err_usage(err, "--%s is not an option of the %s service", name, svc->name);
    }
    if (o->kind == SK_OPT_FLAG) {
        if (value != NULL)
            return sk_err_usage(err, "--%s takes no value", name);
    } else if (value == NULL || value[0] == '\0') {
        return sk_err_usage(err, "--%s needs a value (%s)", name, o->arg ? o->arg : "VALUE");
    } else if (o->kind == SK_OPT_NUMBER && !is_decimal(value, 0)) {
        return sk_err_usage(err, "--%s \"%s\": expected a number", name, value);
    } else if (o->kind == SK_OPT_SECONDS && !is_decimal(value, 1)) {
        return sk_err_usage(err, "--%s \"%s\": expected seconds (e.g. 10 or 0.5)", name, value);
    }
    if (svc->configure == NULL || config == NULL)
        return sk_err_usage(err, "--%s: the %s service takes no settings", name, svc->name);
    return svc->configure(config, name, value, err);
}

int sk_dgram_reply(sk_dgram *d, const void *data, size_t len)
{
    if (len > d->cap)
        return 0;
    memcpy(d->reply, data, len);
    d->reply_len = len;
    return 1;
}

size_t sk__put_text(char *buf, size_t o, size_t cap, const char *text, size_t len)
{
    if (o >= cap)
        return o;
    if (len > cap - 1 - o)
        len = cap - 1 - o;
    memcpy(buf + o, text, len);
    buf[o + len] = '\0';
    return o + len;
}

size_t sk__put_uint(char *buf, size_t o, size_t cap, uint64_t v)
{
    char digits[SK__U64_DIGITS];
    return sk__put_text(buf, o, cap, digits, sk__fmt_u64(digits, v));
}

#define PUT_LIT(buf, o, cap, lit) sk__put_text(buf, o, cap, lit, sizeof lit - 1)

void sk__peer_words(const struct sockaddr *sa, socklen_t len, sk_transport t, char *buf, size_t cap)
{
    char host[SK_NAME_MAX];
    unsigned port;
    if (cap == 0)
        return;
    sk_sockaddr_host_port(sa, len, host, sizeof host, &port);
    size_t o = 0;
    /* An unnamed Unix sender comes with an address length of 0: go by the
     * transport, not by the address. */
    if (t == SK_UNIX || t == SK_UNIXGRAM) {
        if (strcmp(host, "unnamed") == 0) {
            PUT_LIT(buf, o, cap, "an unnamed unix socket");
        } else {
            o = PUT_LIT(buf, o, cap, "unix:");
            sk__put_text(buf, o, cap, host, strlen(host));
        }
        return;
    }
    sk__host_port_words(buf, cap, host, port);
}

void sk__host_port_words(char *buf, size_t cap, const char *host, unsigned port)
{
    /* Built without stdio: echo says this for every read it reports. */
    size_t o = sk__put_text(buf, 0, cap, host, strlen(host));
    o = PUT_LIT(buf, o, cap, ", port ");
    sk__put_uint(buf, o, cap, port);
}

void sk__report_received(sk_server *s, size_t n, const char *who)
{
    char line[64 + SK_NAME_MAX + 16];
    size_t o = PUT_LIT(line, 0, sizeof line, "Received ");
    o = sk__put_uint(line, o, sizeof line, n);
    o = PUT_LIT(line, o, sizeof line, " bytes from ");
    o = sk__put_text(line, o, sizeof line, who, strlen(who));
    sk_server_report_line(s, line, o);
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

int sk_service_set_args(const sk_service *svc, void *config, int argc, char *const *argv,
                        sk_err *err)
{
    if (svc->args == NULL)
        return sk_err_usage(err, "the %s service takes no words after --", svc->name);
    if (config == NULL)
        return sk_err_usage(err, "%s: no settings to give the words after -- to", svc->name);
    return svc->args(config, argc, argv, err);
}
