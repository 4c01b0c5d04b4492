/*
 * activate.h - internal: listening sockets handed to us (activate.c).
 */
#ifndef SK_ACTIVATE_H
#define SK_ACTIVATE_H

#include "sockit.h"

#define SK_SD_MAX 64 /* sockets taken from systemd at most */

/* The descriptors systemd passed under `name` ("" = all of them), in order.
 * Reads (and unsets) LISTEN_PID/LISTEN_FDS/LISTEN_FDNAMES on first use.
 * Returns their number (> 0), or -1 with a usage error saying why none. */
int sk__sd_fds(const char *name, int *fds, int cap, sk_err *err);
/* The transport of inherited descriptor fd (a listening stream socket, or a
 * datagram socket); `word` names it in errors. 0 or -1 (usage error). */
int sk__inherited_type(int fd, const char *word, sk_transport *t, sk_err *err);
/* sk_listen for an fd:/sd: address: adopt the descriptors as listeners. */
int sk__listen_inherited(const sk_addr *a, sk_listener *out, size_t cap, size_t *n, sk_err *err);

/* unsetenv(name), and blank its text where /proc/PID/environ shows it. */
void sk__env_scrub(const char *name);

#endif
