/*
 * uring.h - internal to the io_uring model (model_uring.c) and its ring
 * helpers (uring_ring.c). Not installed.
 *
 * The pure helpers (staging output, tagging completions) are compiled on
 * every system so that the unit tests cover them; the ring itself only when
 * the Makefile found liburing (SK_HAVE_URING, Linux).
 */
#ifndef SK_URING_H
#define SK_URING_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "sockit.h"

/* Copy the bytes of iov[0..k) into dst, at most cap of them, in order.
 * Returns the number copied. A completion-based send needs its bytes to stay
 * put until the kernel completes it, and a connection's output buffer may
 * move (a service appending reallocates it), so the model sends a copy. */
size_t sk__uring_stage(const struct iovec *iov, int k, uint8_t *dst, size_t cap);

/* A completion's user_data: the address of the object it belongs to (at
 * least 16-byte aligned, as malloc gives) with a 4-bit tag saying which of
 * its operations completed. */
#define SK_URING_TAG_BITS 4u
#define SK_URING_TAG_MASK ((1u << SK_URING_TAG_BITS) - 1u)
static inline uint64_t sk__uring_ud(const void *obj, unsigned tag)
{
    return (uint64_t)(uintptr_t)obj | (tag & SK_URING_TAG_MASK);
}
static inline void *sk__uring_ud_obj(uint64_t ud)
{
    return (void *)(uintptr_t)(ud & ~(uint64_t)SK_URING_TAG_MASK);
}
static inline unsigned sk__uring_ud_tag(uint64_t ud)
{
    return (unsigned)(ud & SK_URING_TAG_MASK);
}

#ifdef SK_HAVE_URING
#include <liburing.h>

/* What liburing 2.3's headers (Debian 12) lack, from the kernel's uapi. */
#ifndef IORING_SETUP_SINGLE_ISSUER
#define IORING_SETUP_SINGLE_ISSUER (1U << 12)
#endif
#ifndef IORING_SETUP_DEFER_TASKRUN
#define IORING_SETUP_DEFER_TASKRUN (1U << 13)
#endif
#ifndef IORING_RECV_MULTISHOT
#define IORING_RECV_MULTISHOT (1U << 1)
#endif
#ifndef IORING_ACCEPT_MULTISHOT
#define IORING_ACCEPT_MULTISHOT (1U << 0)
#endif

/* A provided-buffer ring: n buffers of size bytes each, group bgid.
 * (io_uring_setup_buf_ring arrived in liburing 2.4: this is its equivalent.) */
typedef struct sk__uring_bufs {
    struct io_uring_buf_ring *br;
    uint8_t *mem;
    size_t map_len;
    unsigned n, size, mask;
    int bgid;
} sk__uring_bufs;

/* Set up the ring in the calling thread (it becomes the single issuer):
 * single-issuer with deferred task running when the kernel has them, plain
 * otherwise. 0, or -1 with err (a clear message: no io_uring here). */
int sk__uring_ring_init(struct io_uring *ring, unsigned entries, sk_err *err);
int sk__uring_bufs_init(struct io_uring *ring, sk__uring_bufs *b, unsigned n, unsigned size,
                        int bgid, sk_err *err);
/* Unregister (ring not NULL) and unmap. */
void sk__uring_bufs_free(struct io_uring *ring, sk__uring_bufs *b);
/* Give buffer bid back to the kernel. */
void sk__uring_bufs_recycle(sk__uring_bufs *b, unsigned bid);
/* A submission entry, submitting what is queued to make room if the ring is
 * full. Never NULL. */
struct io_uring_sqe *sk__uring_sqe(struct io_uring *ring);
#endif

#endif
