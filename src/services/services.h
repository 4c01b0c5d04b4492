/* services.h - internal to src/services: the built-in services and shared helpers. */
#ifndef SK_SERVICES_H
#define SK_SERVICES_H

#include "sockit.h"

/* The services themselves are listed in services.c (the registry). */

/* "127.0.0.1, port 40000" for IP peers, "unix:/path" or "an unnamed unix socket". */
void sk__peer_words(const struct sockaddr *sa, socklen_t len, sk_transport t, char *buf,
                    size_t cap);

/* Report lines built without stdio (echo reports every read): append len
 * bytes of text, or v in decimal, at buf+o, keeping buf (cap > 0 bytes)
 * NUL-terminated and truncating what does not fit. Return the new length. */
size_t sk__put_text(char *buf, size_t o, size_t cap, const char *text, size_t len);
size_t sk__put_uint(char *buf, size_t o, size_t cap, uint64_t v);

/* "HOST, port P", as sk__peer_words words an IP peer. */
void sk__host_port_words(char *buf, size_t cap, const char *host, unsigned port);

/* "Received N bytes from WHO" through sk_server_report_line. */
void sk__report_received(sk_server *s, size_t n, const char *who);

/* Copy len bytes to dst (cap >= len+1) as printable text: control bytes become
 * '.', so a peer cannot send escape sequences to the operator's terminal.
 * Returns dst, NUL-terminated. */
char *sk__printable(char *dst, const uint8_t *src, size_t len);

#endif
