#include "devices/virtio/rng.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "devices/virtio/virtio.h"

struct virtio_rng {
    struct virtio_dev *vd; /* set when a transport attaches */
    struct rate_limiter limiter;
    struct rng_counters ctr;
    virtio_rng_source_fn source;
    void *source_ctx;
    struct virtq_chain chain;
};

static long host_random(void *buf, uint64_t len, void *ctx)
{
    (void)ctx;
    uint64_t done = 0;
    while (done < len) {
        /* Never blocks once the host's pool is initialised, which it is long before a VM runs. */
        ssize_t n = getrandom((uint8_t *)buf + done, len - done, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EIO;
        done += (uint64_t)n;
    }
    return (long)done;
}

int virtio_rng_create(struct virtio_rng **out, const struct rng_config *cfg, struct errmsg *err)
{
    struct virtio_rng *r = calloc(1, sizeof(*r));
    if (!r)
        return err_set(err, -ENOMEM, "out of memory");
    int rc = rate_limiter_init(&r->limiter, &cfg->rate_limiter);
    if (rc) {
        free(r);
        return err_set(err, rc, "entropy device: cannot create its rate limiter's timer: %s", strerror(-rc));
    }
    r->source = host_random;
    *out = r;
    return 0;
}

void virtio_rng_free(struct virtio_rng *r)
{
    if (!r)
        return;
    rate_limiter_destroy(&r->limiter);
    free(r);
}

struct rng_counters virtio_rng_counters(const struct virtio_rng *r)
{
    struct rng_counters c = r->ctr;
    c.throttled = r->limiter.throttled;
    c.limiter_wakeups = r->limiter.wakeups;
    return c;
}

struct rate_limiter *virtio_rng_rate_limiter(struct virtio_rng *r) { return &r->limiter; }

void virtio_rng_set_source(struct virtio_rng *r, virtio_rng_source_fn fn, void *ctx)
{
    r->source = fn;
    r->source_ctx = ctx;
}

/* Fills the chain's device-writable buffers, up to `want` bytes; what was written, 0 if the host failed. */
static uint32_t fill(struct virtio_rng *r, const struct virtq_chain *c, uint64_t want)
{
    uint64_t done = 0;
    for (unsigned i = 0; i < c->nbufs && done < want; i++) {
        const struct virtq_buf *b = &c->bufs[i];
        if (!b->device_writes)
            continue; /* the guest may put readable buffers in; they are not ours to write */
        uint64_t n = b->len < want - done ? b->len : want - done;
        long got = r->source(b->host, n, r->source_ctx); /* mapping checked by virtq_pop */
        if (got != (long)n) {
            r->ctr.host_fails++;
            return 0;
        }
        done += n;
    }
    return (uint32_t)done;
}

static void process_queue(struct virtio_rng *r)
{
    struct virtio_dev *vd = r->vd;
    struct virtq *q = &vd->queues[0];
    bool pushed = false;
    for (;;) {
        int rc = virtq_pop(q, vd->gm, &r->chain);
        if (rc == 0) {
            if (!virtq_rearm(q, vd->gm))
                break;
            continue;
        }
        if (rc < 0) {
            virtio_dev_set_needs_reset(vd, "the guest handed over a malformed descriptor chain");
            return;
        }
        uint64_t want = r->chain.writable < VIRTIO_RNG_MAX_REQUEST ? r->chain.writable : VIRTIO_RNG_MAX_REQUEST;
        if (!rate_limiter_consume(&r->limiter, 1, want)) {
            virtq_unpop(q); /* stays in the ring: the limiter's timer resumes the queue */
            break;
        }
        uint32_t written = 0;
        if (want == 0)
            r->ctr.bad_requests++; /* nothing the device may write: completed empty */
        else
            written = fill(r, &r->chain, want);
        r->ctr.requests++;
        r->ctr.bytes += written;
        if (virtq_push(q, vd->gm, r->chain.head, written)) {
            virtio_dev_set_needs_reset(vd, "used ring outside guest memory");
            return;
        }
        pushed = true;
    }
    if (pushed)
        virtio_dev_notify_used(vd, 0);
}

static void limiter_ready(void *opaque, uint32_t events)
{
    (void)events;
    struct virtio_rng *r = opaque;
    virtio_dev_lock(r->vd);
    rate_limiter_timer_event(&r->limiter);
    if (virtio_dev_driver_ok(r->vd))
        process_queue(r);
    virtio_dev_unlock(r->vd);
}

static uint64_t rng_features(void *dev)
{
    (void)dev;
    return BIT64(VIRTIO_F_VERSION_1) | BIT64(VIRTIO_F_EVENT_IDX) | BIT64(VIRTIO_F_INDIRECT_DESC);
}

static void rng_config_read(void *dev, uint64_t off, uint8_t *data, uint32_t len)
{
    (void)dev;
    (void)off;
    memset(data, 0, len); /* virtio-rng has no configuration space */
}

static void rng_attach(void *dev, struct virtio_dev *vd) { ((struct virtio_rng *)dev)->vd = vd; }

static int rng_activate(void *dev, struct virtio_dev *vd)
{
    struct virtio_rng *r = dev;
    r->vd = vd;
    return rate_limiter_watch(&r->limiter, vd->loop, limiter_ready, r);
}

static void rng_notify(void *dev, struct virtio_dev *vd, uint16_t q)
{
    (void)vd;
    if (q == 0)
        process_queue(dev);
}

/* Nothing in flight: a request is served whole on the kick, or left in the ring. */
static void rng_reset(void *dev, struct virtio_dev *vd)
{
    (void)dev;
    (void)vd;
}

const struct virtio_dev_ops virtio_rng_ops = {
    .device_id = VIRTIO_ID_RNG,
    .num_queues = 1,
    .features = rng_features,
    .config_read = rng_config_read,
    .config_write = NULL,
    .attach = rng_attach,
    .activate = rng_activate,
    .queue_notify = rng_notify,
    .reset = rng_reset,
};
