/*
 * virtio-rng (entropy device): one request queue whose device-writable
 * buffers the device fills with bytes from the host's getrandom(2), at most
 * 64 KiB per request (as Firecracker), optionally rate limited. Served on
 * the VMM thread. The guest's hw_random core reads it as /dev/hwrng.
 */
#ifndef EMBER_VIRTIO_RNG_H
#define EMBER_VIRTIO_RNG_H

#include <stdint.h>

#include "core/errmsg.h"
#include "core/rate_limiter.h"
#include "devices/virtio/virtio_dev.h"

#define VIRTIO_ID_RNG 4
/* The most bytes one request gets: a guest asking for more gets this much (its driver asks again). */
#define VIRTIO_RNG_MAX_REQUEST (64 * 1024)

struct rng_config {
    struct rate_limiter_config rate_limiter; /* all zero: unlimited */
};

struct virtio_rng;

int virtio_rng_create(struct virtio_rng **out, const struct rng_config *cfg, struct errmsg *err);
void virtio_rng_free(struct virtio_rng *r);
extern const struct virtio_dev_ops virtio_rng_ops;

/* Firecracker's entropy metrics. */
struct rng_counters {
    uint64_t requests;     /* entropy_event_count: requests served */
    uint64_t bytes;        /* entropy_bytes: bytes handed to the guest */
    uint64_t bad_requests; /* entropy_event_fails: requests without a writable buffer */
    uint64_t host_fails;   /* host_rng_fails: getrandom failed (the request completes with 0 bytes) */
    uint64_t throttled, limiter_wakeups;
};
struct rng_counters virtio_rng_counters(const struct virtio_rng *r);
/* The device's limiter (tests set its clock). */
struct rate_limiter *virtio_rng_rate_limiter(struct virtio_rng *r);
/* Tests: the host's random source (default getrandom(2)); returns bytes written or -errno. */
typedef long (*virtio_rng_source_fn)(void *buf, uint64_t len, void *ctx);
void virtio_rng_set_source(struct virtio_rng *r, virtio_rng_source_fn fn, void *ctx);

#endif
