/* discard.c - RFC 863: read and throw away everything; never answer. */
#include "services.h"

static void discard_data(sk_conn *c, const uint8_t *data, size_t len)
{
    (void)c;
    (void)data;
    (void)len;
}

static int discard_datagram(sk_dgram *d)
{
    (void)d;
    return 0;
}

const sk_service sk__svc_discard = {
    .name = "discard",
    .summary = "RFC 863: reads and discards everything",
    .flags = SK_SVC_STREAM | SK_SVC_DGRAM | SK_SVC_DISCARDS_INPUT,
    .on_data = discard_data,
    .on_datagram = discard_datagram,
};
