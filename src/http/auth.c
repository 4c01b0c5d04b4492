/*
 * auth.c - HTTP Basic authentication (RFC 7617) against an htpasswd-style
 * file of "user:hash" lines, where hash is any crypt(3) format libcrypt
 * supports ($6$ SHA-512, $y$ yescrypt, $2b$ bcrypt, ...).
 *
 * The answer must not tell an attacker which part was wrong: an unknown user
 * is checked against a dummy hash, so it costs as much time as a wrong
 * password, and hashes are compared in constant time.
 */
#define _GNU_SOURCE /* crypt_r */
#include <crypt.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http_internal.h"

#define AUTH_MAX_USERS 10000
#define CRED_MAX 1024

struct user {
    char *name;
    char *hash;
};

struct sk__http_auth {
    struct user *users;
    size_t n;
    char dummy[CRYPT_OUTPUT_SIZE]; /* a hash of the most common kind in the file */
};

void sk__http_auth_free(sk__http_auth *a)
{
    if (a == NULL)
        return;
    for (size_t i = 0; i < a->n; i++) {
        free(a->users[i].name);
        free(a->users[i].hash);
    }
    free(a->users);
    free(a);
}

sk__http_auth *sk__http_auth_load(const char *path, sk_err *err)
{
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        sk_errno(err, errno, "--auth %s", path);
        return NULL;
    }
    sk__http_auth *a = calloc(1, sizeof *a);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    unsigned lineno = 0;
    int ok = a != NULL;
    while (ok && (len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len == 0 || line[0] == '#')
            continue;
        char *colon = strchr(line, ':');
        /* Apache's format may carry more fields after the hash: ignore them. */
        char *end = colon ? strchr(colon + 1, ':') : NULL;
        if (end)
            *end = '\0';
        if (colon == NULL || colon == line || colon[1] != '$') {
            sk_err_usage(err, "--auth %s:%u: expected user:$id$...crypt hash", path, lineno);
            ok = 0;
            break;
        }
        if (a->n == AUTH_MAX_USERS) {
            sk_err_usage(err, "--auth %s: more than %d users", path, AUTH_MAX_USERS);
            ok = 0;
            break;
        }
        struct user *u = realloc(a->users, (a->n + 1) * sizeof *u);
        if (u == NULL) {
            sk_errno(err, ENOMEM, "--auth %s", path);
            ok = 0;
            break;
        }
        a->users = u;
        *colon = '\0';
        u[a->n].name = strdup(line);
        u[a->n].hash = strdup(colon + 1);
        a->n++;
        if (u[a->n - 1].name == NULL || u[a->n - 1].hash == NULL) {
            sk_errno(err, ENOMEM, "--auth %s", path);
            ok = 0;
        }
    }
    free(line);
    fclose(f);
    if (ok && a->n == 0) {
        sk_err_usage(err, "--auth %s: no users", path);
        ok = 0;
    }
    if (ok) {
        /* Check that libcrypt knows the hash kind now, not at the first login. */
        struct crypt_data *cd = calloc(1, sizeof *cd);
        for (size_t i = 0; ok && cd && i < a->n; i++) {
            const char *h = crypt_r("probe", a->users[i].hash, cd);
            if (h == NULL || h[0] == '*') {
                sk_err_usage(err, "--auth %s: user %s: hash kind not supported by crypt(3)", path,
                             a->users[i].name);
                ok = 0;
            }
        }
        if (ok && cd) {
            const char *h = crypt_r("sockit-dummy", a->users[0].hash, cd);
            snprintf(a->dummy, sizeof a->dummy, "%s", h ? h : "");
        }
        free(cd);
        ok = ok && cd != NULL;
    }
    if (!ok) {
        sk__http_auth_free(a);
        return NULL;
    }
    return a;
}

static int b64val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Decode standard base64 (padding optional). Returns the length or -1. */
static long b64decode(const char *in, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    unsigned acc = 0;
    int bits = 0;
    while (n > 0 && in[n - 1] == '=')
        n--;
    for (size_t i = 0; i < n; i++) {
        int v = b64val((unsigned char)in[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o + 1 >= cap)
                return -1;
            out[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    out[o] = '\0';
    return (long)o;
}

/* Compare two strings in time that depends only on their lengths. */
static int same_secret(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t n = la > lb ? la : lb;
    unsigned char diff = (unsigned char)(la != lb);
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)((i < la ? a[i] : 0) ^ (i < lb ? b[i] : 0));
    return diff == 0;
}

int sk__http_auth_check(const sk__http_auth *a, sk__http_slice value, char *user, size_t cap)
{
    struct crypt_data cd; /* ~32 KiB: on the stack, so nothing outlives the call */
    char cred[CRED_MAX];
    if (value.p == NULL || value.n < 6 || strncasecmp(value.p, "Basic ", 6) != 0)
        return 0;
    const char *p = value.p + 6;
    size_t n = value.n - 6;
    while (n > 0 && *p == ' ') {
        p++;
        n--;
    }
    long len = b64decode(p, n, cred, sizeof cred);
    if (len < 0 || memchr(cred, '\0', (size_t)len) != NULL)
        return 0;
    char *colon = strchr(cred, ':');
    if (colon == NULL)
        return 0;
    *colon = '\0';
    const char *pass = colon + 1;
    const struct user *u = NULL;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->users[i].name, cred) == 0)
            u = &a->users[i];
    cd.initialized = 0;
    /* Always one crypt of the same kind, known user or not. */
    const char *hash = u ? u->hash : a->dummy;
    const char *got = crypt_r(pass, hash, &cd);
    int ok = got != NULL && same_secret(got, hash) && u != NULL;
    if (ok)
        snprintf(user, cap, "%s", cred);
    return ok;
}
