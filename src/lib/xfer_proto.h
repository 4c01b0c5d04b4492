/*
 * xfer_proto.h - the file transfer protocol's frames (docs/PROTOCOL.md):
 * encoding and decoding with no I/O and no allocation, shared by the sender
 * (xfer_send.c), the receiving service (src/services/recv.c) and the tests.
 * Internal (not installed).
 *
 * A frame is TYPE (1 byte) LENGTH (4 bytes, big-endian) PAYLOAD (LENGTH
 * bytes). Every integer on the wire is big-endian.
 */
#ifndef SK_XFER_PROTO_H
#define SK_XFER_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define SK_XF_VERSION 1
#define SK_XF_MAGIC "SKXF"
#define SK_XF_HEAD 5                           /* type + length */
#define SK_XF_CHUNK_DEFAULT (1u << 20)         /* 1 MiB */
#define SK_XF_CHUNK_MIN 4096u                  /* chunk sizes: powers of two in [MIN, MAX] */
#define SK_XF_CHUNK_MAX (8u << 20)             /* 8 MiB */
#define SK_XF_MAX_PAYLOAD ((16u << 20) + 4096) /* no frame is longer */
#define SK_XF_NAME_MAX 4096                    /* bytes of a relative name */
#define SK_XF_HASH_MAX 32
#define SK_XF_SIZE_UNKNOWN UINT64_MAX /* a stream (stdin): size not known */
#define SK_XF_BATCH 64                /* entries a sender announces before their data */

/* Frame types */
enum {
    SK_XF_HELLO = 0x01,     /* S->R: magic, version, hash, flags, chunk size */
    SK_XF_WELCOME = 0x02,   /* R->S: magic, version, hash, flags */
    SK_XF_REFUSE = 0x03,    /* R->S or S->R: version, code, message; then close */
    SK_XF_ENTRY = 0x10,     /* S->R: one file, directory or symlink header */
    SK_XF_BATCH_END = 0x11, /* S->R: the receiver answers every entry since the last */
    SK_XF_START = 0x12,     /* R->S: one per entry: send from chunk K, done, or refused */
    SK_XF_CHUNK = 0x20,     /* S->R: index, encoding, raw length, hash, data */
    SK_XF_END = 0x21,       /* S->R: the file's trailer: status, size, chunks, whole hash */
    SK_XF_RESULT = 0x22,    /* R->S: stored and verified (its hash) or refused */
    SK_XF_BYE = 0x30,       /* S->R: no more entries */
    SK_XF_SUMMARY = 0x31,   /* R->S: files and bytes stored; then close */
};

/* Hash algorithms */
enum { SK_XF_XXH3 = 1, SK_XF_SHA256 = 2 };

/* HELLO / WELCOME flags */
#define SK_XF_F_ZSTD 0x01u      /* sender: may compress; receiver: accepted */
#define SK_XF_F_OVERWRITE 0x02u /* replace existing files */
#define SK_XF_F_NO_RESUME 0x04u /* ignore any .part, start over */

/* Entry types and flags */
enum { SK_XF_FILE = 1, SK_XF_DIR = 2, SK_XF_SYMLINK = 3 };
#define SK_XF_E_STREAM 0x01u /* size unknown, no resume */

/* Chunk encodings */
enum { SK_XF_RAW = 0, SK_XF_ZSTD_ENC = 1 };

/* START / RESULT / REFUSE codes (docs/PROTOCOL.md, "Codes") */
enum {
    SK_XF_OK = 0,   /* START: send from chunk K; RESULT: stored and verified */
    SK_XF_DONE = 1, /* START: a directory or symlink: created, nothing to send */
    SK_XF_E_VERSION = 10,
    SK_XF_E_PROTO = 11, /* malformed frame or frame out of order */
    SK_XF_E_HASH = 12,  /* hash algorithm or chunk size not supported */
    SK_XF_E_NAME = 20,  /* name refused (traversal, symlink, control characters) */
    SK_XF_E_EXISTS = 21,
    SK_XF_E_BUSY = 22,
    SK_XF_E_TOO_BIG = 23,  /* --max-size */
    SK_XF_E_NO_SPACE = 24, /* free space, or disk full while writing */
    SK_XF_E_CORRUPT = 25,  /* a chunk's hash or the whole file's did not match */
    SK_XF_E_LIMIT = 26,    /* --max-files or --max-depth */
    SK_XF_E_IO = 27,       /* the receiver could not write */
    SK_XF_E_TYPE = 28,     /* exists as another type (a directory where a file goes) */
    SK_XF_E_ABORTED = 29,  /* the sender gave the file up (read error, file changed) */
    SK_XF_E_SIZE = 30,     /* bytes or chunks differ from what the entry said */
};

/* Decoding results */
#define SK_XF_NEED 0 /* more bytes needed */
#define SK_XF_BAD (-1)

typedef struct sk__xf_hello {
    uint16_t version;
    uint8_t hash;
    uint8_t flags;
    uint32_t chunk; /* HELLO only; 0 in WELCOME */
} sk__xf_hello;

typedef struct sk__xf_entry {
    uint8_t type;
    uint8_t flags;
    uint16_t mode; /* permission bits, 07777 */
    uint64_t size; /* SK_XF_SIZE_UNKNOWN for a stream; 0 for dirs and symlinks */
    int64_t mtime_sec;
    uint32_t mtime_nsec;
    const uint8_t *name; /* not NUL-terminated; points into the frame */
    size_t name_len;
    const uint8_t *target; /* symlink target; points into the frame */
    size_t target_len;
} sk__xf_entry;

typedef struct sk__xf_start {
    uint16_t code;
    uint64_t chunks;        /* OK: chunks the receiver has (resume from there) */
    const uint8_t *hashes;  /* chunks * hash_len bytes */
    const uint8_t *message; /* refusal text */
    size_t message_len;
} sk__xf_start;

typedef struct sk__xf_chunk {
    uint64_t index;
    uint8_t enc;
    uint32_t raw_len;
    const uint8_t *hash;
    size_t data_len; /* bytes of data after the chunk head */
} sk__xf_chunk;

#define SK_XF_CHUNK_HEAD(hash_len) (8 + 1 + 4 + (hash_len)) /* before the data */

typedef struct sk__xf_end {
    uint8_t status; /* 0 complete, 1 given up by the sender */
    uint64_t size;
    uint64_t chunks;
    const uint8_t *hash;
} sk__xf_end;

typedef struct sk__xf_result {
    uint16_t code;
    uint64_t size;
    const uint8_t *hash; /* hash_len bytes */
    const uint8_t *message;
    size_t message_len;
} sk__xf_result;

/* Bytes of a hash. 0 for an unknown algorithm. */
size_t sk__xf_hash_len(int algo);
/* "xxh3", "sha256", or "?" */
const char *sk__xf_hash_name(int algo);

/*
 * Frame head: given the first len bytes of the stream, returns SK_XF_NEED
 * (fewer than 5 bytes), SK_XF_BAD (a type that does not exist, or a length
 * over SK_XF_MAX_PAYLOAD), or SK_XF_HEAD with *type and *plen set.
 */
int sk__xf_head(const uint8_t *p, size_t len, uint8_t *type, uint32_t *plen);
/* Write a frame head for a payload of plen bytes; returns SK_XF_HEAD. */
size_t sk__xf_put_head(uint8_t *out, uint8_t type, uint32_t plen);

/*
 * Decoders take one complete payload (the LENGTH bytes after the head) and
 * return 0, or SK_XF_BAD when it is malformed (short, long, or a field out of
 * range). Pointers in the results point into the payload.
 */
int sk__xf_get_hello(const uint8_t *p, size_t len, sk__xf_hello *h);
int sk__xf_get_entry(const uint8_t *p, size_t len, sk__xf_entry *e);
int sk__xf_get_start(const uint8_t *p, size_t len, size_t hash_len, sk__xf_start *s);
/* The chunk head only: len may be the whole payload or just its first
 * SK_XF_CHUNK_HEAD(hash_len) bytes; plen is the frame's payload length. */
int sk__xf_get_chunk(const uint8_t *p, size_t len, uint32_t plen, size_t hash_len,
                     uint32_t chunk_size, sk__xf_chunk *c);
int sk__xf_get_end(const uint8_t *p, size_t len, size_t hash_len, sk__xf_end *e);
int sk__xf_get_result(const uint8_t *p, size_t len, size_t hash_len, sk__xf_result *r);
/* REFUSE: version, code, message */
int sk__xf_get_refuse(const uint8_t *p, size_t len, uint16_t *version, uint16_t *code,
                      const uint8_t **msg, size_t *msg_len);
/* SUMMARY: files stored, bytes stored */
int sk__xf_get_summary(const uint8_t *p, size_t len, uint64_t *files, uint64_t *bytes);

/*
 * Encoders write a whole frame (head included) into out (cap bytes) and
 * return its length, or 0 if it does not fit.
 */
size_t sk__xf_put_hello(uint8_t *out, size_t cap, uint8_t type, const sk__xf_hello *h);
size_t sk__xf_put_refuse(uint8_t *out, size_t cap, uint16_t version, uint16_t code,
                         const char *msg);
size_t sk__xf_put_entry(uint8_t *out, size_t cap, const sk__xf_entry *e);
size_t sk__xf_put_empty(uint8_t *out, size_t cap, uint8_t type); /* BATCH_END, BYE */
size_t sk__xf_put_start(uint8_t *out, size_t cap, uint16_t code, uint64_t chunks,
                        const uint8_t *hashes, size_t hash_len, const char *msg);
/* The chunk's head (frame head + chunk head); the data_len bytes of data follow. */
size_t sk__xf_put_chunk_head(uint8_t *out, size_t cap, uint64_t index, uint8_t enc,
                             uint32_t raw_len, const uint8_t *hash, size_t hash_len,
                             size_t data_len);
size_t sk__xf_put_end(uint8_t *out, size_t cap, uint8_t status, uint64_t size, uint64_t chunks,
                      const uint8_t *hash, size_t hash_len);
size_t sk__xf_put_result(uint8_t *out, size_t cap, uint16_t code, uint64_t size,
                         const uint8_t *hash, size_t hash_len, const char *msg);
size_t sk__xf_put_summary(uint8_t *out, size_t cap, uint64_t files, uint64_t bytes);

/* Streaming hashes (xfer_hash.c): XXH3-128 (canonical, big-endian bytes) or SHA-256. */
typedef struct sk__xf_hash {
    int algo;
    void *state; /* XXH3_state_t or EVP_MD_CTX */
} sk__xf_hash;
int sk__xf_hash_init(sk__xf_hash *h, int algo); /* 0, or -1 (ENOMEM, unknown algo) */
void sk__xf_hash_reset(sk__xf_hash *h);
void sk__xf_hash_update(sk__xf_hash *h, const void *p, size_t n);
void sk__xf_hash_final(sk__xf_hash *h, uint8_t *out); /* sk__xf_hash_len bytes */
void sk__xf_hash_free(sk__xf_hash *h);
/* One-shot */
void sk__xf_hash_once(sk__xf_hash *h, const void *p, size_t n, uint8_t *out);

#endif
