/* services.h - internal to src/services: the built-in services and shared helpers. */
#ifndef SK_SERVICES_H
#define SK_SERVICES_H

#include "sockit.h"

/* The services themselves are listed in services.c (the registry). */

/* "127.0.0.1, port 40000" for IP peers, "unix:/path" or "an unnamed unix socket". */
void sk__peer_words(const struct sockaddr *sa, socklen_t len, sk_transport t, char *buf,
                    size_t cap);

/* Copy len bytes to dst (cap >= len+1) as printable text: control bytes become
 * '.', so a peer cannot send escape sequences to the operator's terminal.
 * Returns dst, NUL-terminated. */
char *sk__printable(char *dst, const uint8_t *src, size_t len);

#endif
