/*
 * xfer_hash.c - the transfer protocol's hashes, streaming: XXH3-128 (the
 * default: detects corruption at memory speed) and SHA-256 (OpenSSL's EVP,
 * for peers that want a cryptographic hash). XXH3-128 is written in its
 * canonical (big-endian) form so that every implementation agrees on bytes.
 */
#include <errno.h>
#include <openssl/evp.h>
#include <xxhash.h>
#ifdef SK_XXH_DISPATCH
/* The same functions, each choosing at its first call the widest vector unit
 * the CPU has (the Makefile checks the library provides them). */
#include <xxh_x86dispatch.h>
#endif

#include "xfer_proto.h"

int sk__xf_hash_init(sk__xf_hash *h, int algo)
{
    h->algo = algo;
    h->state = NULL;
    if (algo == SK_XF_XXH3)
        h->state = XXH3_createState();
    else if (algo == SK_XF_SHA256)
        h->state = EVP_MD_CTX_new();
    else {
        errno = EINVAL;
        return -1;
    }
    if (h->state == NULL) {
        errno = ENOMEM;
        return -1;
    }
    sk__xf_hash_reset(h);
    return 0;
}

void sk__xf_hash_reset(sk__xf_hash *h)
{
    if (h->algo == SK_XF_XXH3)
        XXH3_128bits_reset(h->state);
    else
        EVP_DigestInit_ex(h->state, EVP_sha256(), NULL);
}

void sk__xf_hash_update(sk__xf_hash *h, const void *p, size_t n)
{
    if (n == 0)
        return;
    if (h->algo == SK_XF_XXH3)
        XXH3_128bits_update(h->state, p, n);
    else
        EVP_DigestUpdate(h->state, p, n);
}

void sk__xf_hash_final(sk__xf_hash *h, uint8_t *out)
{
    if (h->algo == SK_XF_XXH3) {
        XXH128_canonical_t c;
        XXH128_canonicalFromHash(&c, XXH3_128bits_digest(h->state));
        for (int i = 0; i < 16; i++)
            out[i] = c.digest[i];
    } else {
        unsigned n = 0;
        EVP_DigestFinal_ex(h->state, out, &n);
    }
    sk__xf_hash_reset(h);
}

void sk__xf_hash_once(sk__xf_hash *h, const void *p, size_t n, uint8_t *out)
{
    sk__xf_hash_reset(h);
    sk__xf_hash_update(h, p, n);
    sk__xf_hash_final(h, out);
}

void sk__xf_hash_free(sk__xf_hash *h)
{
    if (h->state == NULL)
        return;
    if (h->algo == SK_XF_XXH3)
        XXH3_freeState(h->state);
    else
        EVP_MD_CTX_free(h->state);
    h->state = NULL;
}
