/*
 * uring_ring.c - the io_uring model's ring: setting it up (single issuer,
 * deferred task running, and the fallback when the kernel refuses them), the
 * provided-buffer ring that multishot receives fill (liburing 2.3 has no
 * io_uring_setup_buf_ring), and the pure helpers the model and the unit tests
 * share.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>

#include "uring.h"

size_t sk__uring_stage(const struct iovec *iov, int k, uint8_t *dst, size_t cap)
{
    size_t n = 0;
    for (int i = 0; i < k && n < cap; i++) {
        size_t len = iov[i].iov_len < cap - n ? iov[i].iov_len : cap - n;
        if (len > 0)
            memcpy(dst + n, iov[i].iov_base, len);
        n += len;
    }
    return n;
}

#ifdef SK_HAVE_URING

int sk__uring_ring_init(struct io_uring *ring, unsigned entries, sk_err *err)
{
    /* Completions for many connections can come in one wakeup (multishot
     * receives post one per arrival): a completion queue well above the
     * submission queue. */
    static const unsigned tries[] = {
        IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN, /* Linux 6.1 */
        0,
    };
    int r = -EINVAL;
    for (size_t i = 0; i < sizeof tries / sizeof tries[0]; i++) {
        struct io_uring_params p;
        memset(&p, 0, sizeof p);
        p.flags = tries[i] | IORING_SETUP_CQSIZE;
        p.cq_entries = entries * 8;
        r = io_uring_queue_init_params(entries, ring, &p);
        if (r == 0) {
            if (!(p.features & IORING_FEAT_EXT_ARG) || !(p.features & IORING_FEAT_NODROP)) {
                io_uring_queue_exit(ring);
                return sk_errno(err, ENOSYS,
                                "io_uring: this kernel is too old for --model uring (Linux 5.19 "
                                "or later)");
            }
            return 0;
        }
        if (r != -EINVAL)
            break; /* not a flag it does not know: no io_uring at all */
    }
    if (r == -ENOSYS || r == -EPERM)
        return sk_errno(err, -r,
                        "io_uring: not available here (kernel without io_uring, or "
                        "kernel.io_uring_disabled, or a seccomp filter): use --model epoll");
    return sk_errno(err, -r, "io_uring setup");
}

int sk__uring_bufs_init(struct io_uring *ring, sk__uring_bufs *b, unsigned n, unsigned size,
                        int bgid, sk_err *err)
{
    memset(b, 0, sizeof *b);
    /* The ring of buffer descriptors and the buffers, in one mapping: the
     * descriptors first (page aligned, as the kernel requires). */
    size_t ring_len = (size_t)n * sizeof(struct io_uring_buf);
    b->map_len = ring_len + (size_t)n * size;
    void *m = mmap(NULL, b->map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return sk_errno(err, errno, "io_uring: buffer ring");
    b->br = m;
    b->mem = (uint8_t *)m + ring_len;
    b->n = n;
    b->size = size;
    b->mask = (unsigned)io_uring_buf_ring_mask(n);
    b->bgid = bgid;
    struct io_uring_buf_reg reg;
    memset(&reg, 0, sizeof reg);
    reg.ring_addr = (uint64_t)(uintptr_t)b->br;
    reg.ring_entries = n;
    reg.bgid = (uint16_t)bgid;
    int r = io_uring_register_buf_ring(ring, &reg, 0);
    if (r < 0) {
        munmap(m, b->map_len);
        b->br = NULL;
        return sk_errno(err, -r,
                        "io_uring: provided buffer rings are not supported (Linux 5.19 or later)");
    }
    io_uring_buf_ring_init(b->br);
    for (unsigned i = 0; i < n; i++)
        io_uring_buf_ring_add(b->br, b->mem + (size_t)i * size, size, (unsigned short)i, b->mask,
                              (int)i);
    io_uring_buf_ring_advance(b->br, (int)n);
    return 0;
}

void sk__uring_bufs_free(struct io_uring *ring, sk__uring_bufs *b)
{
    if (b->br == NULL)
        return;
    if (ring != NULL)
        io_uring_unregister_buf_ring(ring, b->bgid);
    munmap(b->br, b->map_len);
    b->br = NULL;
}

void sk__uring_bufs_recycle(sk__uring_bufs *b, unsigned bid)
{
    io_uring_buf_ring_add(b->br, b->mem + (size_t)bid * b->size, b->size, (unsigned short)bid,
                          b->mask, 0);
    io_uring_buf_ring_advance(b->br, 1);
}

struct io_uring_sqe *sk__uring_sqe(struct io_uring *ring)
{
    for (;;) {
        struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
        if (sqe != NULL)
            return sqe;
        /* Full: hand what is queued to the kernel. A failure (EBUSY while
         * completions overflow) leaves the entries queued; trying again
         * after the kernel flushed its overflow list makes room. */
        int r = io_uring_submit(ring);
        if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY)
            io_uring_get_events(ring);
    }
}

#endif
