/*
 * xfer_proto.c - the transfer protocol's frames (docs/PROTOCOL.md): no I/O,
 * no allocation. Decoders check every length against the payload, so a
 * hostile peer can at worst make a frame be refused as malformed.
 */
#include <string.h>

#include "xfer_proto.h"

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 3; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) << 32 | get32(p + 4);
}

size_t sk__xf_hash_len(int algo)
{
    return algo == SK_XF_XXH3 ? 16 : algo == SK_XF_SHA256 ? 32 : 0;
}

const char *sk__xf_hash_name(int algo)
{
    return algo == SK_XF_XXH3 ? "xxh3" : algo == SK_XF_SHA256 ? "sha256" : "?";
}

static int known_type(uint8_t t)
{
    switch (t) {
    case SK_XF_HELLO:
    case SK_XF_WELCOME:
    case SK_XF_REFUSE:
    case SK_XF_ENTRY:
    case SK_XF_BATCH_END:
    case SK_XF_START:
    case SK_XF_CHUNK:
    case SK_XF_END:
    case SK_XF_RESULT:
    case SK_XF_BYE:
    case SK_XF_SUMMARY: return 1;
    default: return 0;
    }
}

int sk__xf_head(const uint8_t *p, size_t len, uint8_t *type, uint32_t *plen)
{
    /* A wrong first byte is refused at once, before the length arrives. */
    if (len >= 1 && !known_type(p[0]))
        return SK_XF_BAD;
    if (len < SK_XF_HEAD)
        return SK_XF_NEED;
    uint32_t n = get32(p + 1);
    if (n > SK_XF_MAX_PAYLOAD)
        return SK_XF_BAD;
    *type = p[0];
    *plen = n;
    return SK_XF_HEAD;
}

size_t sk__xf_put_head(uint8_t *out, uint8_t type, uint32_t plen)
{
    out[0] = type;
    put32(out + 1, plen);
    return SK_XF_HEAD;
}

int sk__xf_get_hello(const uint8_t *p, size_t len, sk__xf_hello *h)
{
    /* Magic and version first, so that any version's HELLO can be answered
     * with a clear refusal; the rest is version 1's layout. */
    if (len < 6 || memcmp(p, SK_XF_MAGIC, 4) != 0)
        return SK_XF_BAD;
    memset(h, 0, sizeof *h);
    h->version = get16(p + 4);
    if (h->version != SK_XF_VERSION)
        return 0;
    if (len != 12)
        return SK_XF_BAD;
    h->hash = p[6];
    h->flags = p[7];
    h->chunk = get32(p + 8);
    return 0;
}

size_t sk__xf_put_hello(uint8_t *out, size_t cap, uint8_t type, const sk__xf_hello *h)
{
    if (cap < SK_XF_HEAD + 12)
        return 0;
    uint8_t *p = out + sk__xf_put_head(out, type, 12);
    memcpy(p, SK_XF_MAGIC, 4);
    put16(p + 4, h->version);
    p[6] = h->hash;
    p[7] = h->flags;
    put32(p + 8, h->chunk);
    return SK_XF_HEAD + 12;
}

int sk__xf_get_refuse(const uint8_t *p, size_t len, uint16_t *version, uint16_t *code,
                      const uint8_t **msg, size_t *msg_len)
{
    if (len < 4)
        return SK_XF_BAD;
    *version = get16(p);
    *code = get16(p + 2);
    *msg = p + 4;
    *msg_len = len - 4;
    return 0;
}

size_t sk__xf_put_refuse(uint8_t *out, size_t cap, uint16_t version, uint16_t code, const char *msg)
{
    size_t m = msg ? strlen(msg) : 0;
    if (cap < SK_XF_HEAD + 4 + m)
        return 0;
    uint8_t *p = out + sk__xf_put_head(out, SK_XF_REFUSE, (uint32_t)(4 + m));
    put16(p, version);
    put16(p + 2, code);
    if (m)
        memcpy(p + 4, msg, m);
    return SK_XF_HEAD + 4 + m;
}

#define ENTRY_FIXED 26

int sk__xf_get_entry(const uint8_t *p, size_t len, sk__xf_entry *e)
{
    if (len < ENTRY_FIXED)
        return SK_XF_BAD;
    memset(e, 0, sizeof *e);
    e->type = p[0];
    e->flags = p[1];
    e->mode = get16(p + 2);
    e->size = get64(p + 4);
    e->mtime_sec = (int64_t)get64(p + 12);
    e->mtime_nsec = get32(p + 20);
    e->name_len = get16(p + 24);
    if (e->type < SK_XF_FILE || e->type > SK_XF_SYMLINK || (e->flags & ~SK_XF_E_STREAM) ||
        e->mode > 07777 || e->mtime_nsec >= 1000000000u || e->name_len == 0 ||
        e->name_len > len - ENTRY_FIXED)
        return SK_XF_BAD;
    e->name = p + ENTRY_FIXED;
    e->target = e->name + e->name_len;
    e->target_len = len - ENTRY_FIXED - e->name_len;
    if ((e->type == SK_XF_SYMLINK) != (e->target_len > 0))
        return SK_XF_BAD; /* a target exactly for symlinks */
    if (e->type != SK_XF_FILE && (e->size != 0 || e->flags))
        return SK_XF_BAD;
    if ((e->flags & SK_XF_E_STREAM) != (e->size == SK_XF_SIZE_UNKNOWN ? SK_XF_E_STREAM : 0))
        return SK_XF_BAD; /* unknown size exactly for a stream */
    return 0;
}

size_t sk__xf_put_entry(uint8_t *out, size_t cap, const sk__xf_entry *e)
{
    size_t plen = ENTRY_FIXED + e->name_len + e->target_len;
    if (e->name_len > 0xffff || plen > SK_XF_MAX_PAYLOAD || cap < SK_XF_HEAD + plen)
        return 0;
    uint8_t *p = out + sk__xf_put_head(out, SK_XF_ENTRY, (uint32_t)plen);
    p[0] = e->type;
    p[1] = e->flags;
    put16(p + 2, e->mode);
    put64(p + 4, e->size);
    put64(p + 12, (uint64_t)e->mtime_sec);
    put32(p + 20, e->mtime_nsec);
    put16(p + 24, (uint16_t)e->name_len);
    memcpy(p + ENTRY_FIXED, e->name, e->name_len);
    if (e->target_len)
        memcpy(p + ENTRY_FIXED + e->name_len, e->target, e->target_len);
    return SK_XF_HEAD + plen;
}

size_t sk__xf_put_empty(uint8_t *out, size_t cap, uint8_t type)
{
    if (cap < SK_XF_HEAD)
        return 0;
    return sk__xf_put_head(out, type, 0);
}

int sk__xf_get_start(const uint8_t *p, size_t len, size_t hash_len, sk__xf_start *s)
{
    if (len < 10)
        return SK_XF_BAD;
    memset(s, 0, sizeof *s);
    s->code = get16(p);
    s->chunks = get64(p + 2);
    if (s->chunks > (len - 10) / (hash_len ? hash_len : 1))
        return SK_XF_BAD;
    if (s->code != SK_XF_OK && s->chunks != 0)
        return SK_XF_BAD;
    s->hashes = p + 10;
    s->message = s->hashes + s->chunks * hash_len;
    s->message_len = len - 10 - s->chunks * hash_len;
    return 0;
}

size_t sk__xf_put_start(uint8_t *out, size_t cap, uint16_t code, uint64_t chunks,
                        const uint8_t *hashes, size_t hash_len, const char *msg)
{
    size_t m = msg ? strlen(msg) : 0;
    if (chunks > SK_XF_MAX_PAYLOAD / (hash_len ? hash_len : 1))
        return 0;
    size_t plen = 10 + chunks * hash_len + m;
    if (plen > SK_XF_MAX_PAYLOAD || cap < SK_XF_HEAD + plen)
        return 0;
    uint8_t *p = out + sk__xf_put_head(out, SK_XF_START, (uint32_t)plen);
    put16(p, code);
    put64(p + 2, chunks);
    if (chunks)
        memcpy(p + 10, hashes, chunks * hash_len);
    if (m)
        memcpy(p + 10 + chunks * hash_len, msg, m);
    return SK_XF_HEAD + plen;
}

int sk__xf_get_chunk(const uint8_t *p, size_t len, uint32_t plen, size_t hash_len,
                     uint32_t chunk_size, sk__xf_chunk *c)
{
    size_t head = SK_XF_CHUNK_HEAD(hash_len);
    if (len < head || plen < head || len > plen)
        return SK_XF_BAD;
    c->index = get64(p);
    c->enc = p[8];
    c->raw_len = get32(p + 9);
    c->hash = p + 13;
    c->data_len = plen - head;
    if (c->enc > SK_XF_ZSTD_ENC || c->raw_len == 0 || c->raw_len > chunk_size)
        return SK_XF_BAD;
    if (c->enc == SK_XF_RAW && c->data_len != c->raw_len)
        return SK_XF_BAD;
    if (c->enc == SK_XF_ZSTD_ENC && c->data_len == 0)
        return SK_XF_BAD;
    return 0;
}

size_t sk__xf_put_chunk_head(uint8_t *out, size_t cap, uint64_t index, uint8_t enc,
                             uint32_t raw_len, const uint8_t *hash, size_t hash_len,
                             size_t data_len)
{
    size_t head = SK_XF_CHUNK_HEAD(hash_len);
    if (cap < SK_XF_HEAD + head || head + data_len > SK_XF_MAX_PAYLOAD)
        return 0;
    uint8_t *p = out + sk__xf_put_head(out, SK_XF_CHUNK, (uint32_t)(head + data_len));
    put64(p, index);
    p[8] = enc;
    put32(p + 9, raw_len);
    memcpy(p + 13, hash, hash_len);
    return SK_XF_HEAD + head;
}

int sk__xf_get_end(const uint8_t *p, size_t len, size_t hash_len, sk__xf_end *e)
{
    if (len != 17 + hash_len || p[0] > 1)
        return SK_XF_BAD;
    e->status = p[0];
    e->size = get64(p + 1);
    e->chunks = get64(p + 9);
    e->hash = p + 17;
    return 0;
}

size_t sk__xf_put_end(uint8_t *out, size_t cap, uint8_t status, uint64_t size, uint64_t chunks,
                      const uint8_t *hash, size_t hash_len)
{
    if (cap < SK_XF_HEAD + 17 + hash_len)
        return 0;
    uint8_t *p = out + sk__xf_put_head(out, SK_XF_END, (uint32_t)(17 + hash_len));
    p[0] = status;
    put64(p + 1, size);
    put64(p + 9, chunks);
    memcpy(p + 17, hash, hash_len);
    return SK_XF_HEAD + 17 + hash_len;
}

int sk__xf_get_result(const uint8_t *p, size_t len, size_t hash_len, sk__xf_result *r)
{
    if (len < 10 + hash_len)
        return SK_XF_BAD;
    r->code = get16(p);
    r->size = get64(p + 2);
    r->hash = p + 10;
    r->message = p + 10 + hash_len;
    r->message_len = len - 10 - hash_len;
    return 0;
}

size_t sk__xf_put_result(uint8_t *out, size_t cap, uint16_t code, uint64_t size,
                         const uint8_t *hash, size_t hash_len, const char *msg)
{
    size_t m = msg ? strlen(msg) : 0;
    size_t plen = 10 + hash_len + m;
    if (cap < SK_XF_HEAD + plen)
        return 0;
    uint8_t *p = out + sk__xf_put_head(out, SK_XF_RESULT, (uint32_t)plen);
    put16(p, code);
    put64(p + 2, size);
    if (hash)
        memcpy(p + 10, hash, hash_len);
    else
        memset(p + 10, 0, hash_len);
    if (m)
        memcpy(p + 10 + hash_len, msg, m);
    return SK_XF_HEAD + plen;
}

int sk__xf_get_summary(const uint8_t *p, size_t len, uint64_t *files, uint64_t *bytes)
{
    if (len != 16)
        return SK_XF_BAD;
    *files = get64(p);
    *bytes = get64(p + 8);
    return 0;
}

size_t sk__xf_put_summary(uint8_t *out, size_t cap, uint64_t files, uint64_t bytes)
{
    if (cap < SK_XF_HEAD + 16)
        return 0;
    uint8_t *p = out + sk__xf_put_head(out, SK_XF_SUMMARY, 16);
    put64(p, files);
    put64(p + 8, bytes);
    return SK_XF_HEAD + 16;
}
