#include "devices/virtio/balloon.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "core/le.h"
#include "devices/virtio/balloon_internal.h"
#include "devices/virtio/virtio.h"

/*
 * Gives a page range back to the host. On Ember's anonymous guest memory the
 * pages are freed and read back as zeros. On memory mapped MAP_PRIVATE from a
 * snapshot's memory file MADV_DONTNEED is right too: it drops the private copy
 * (the process's RSS falls) and the page reads the file again if touched; the
 * guest makes no assumption about an inflated page's contents.
 */
static int host_discard(void *host, uint64_t len, void *ctx)
{
    (void)ctx;
    return madvise(host, len, MADV_DONTNEED) ? -errno : 0;
}

int virtio_balloon_create(struct virtio_balloon **out, const struct balloon_config *cfg, struct errmsg *err)
{
    struct virtio_balloon *b = calloc(1, sizeof(*b));
    if (!b)
        return err_set(err, -ENOMEM, "out of memory");
    b->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (b->timer_fd < 0) {
        int rc = -errno;
        free(b);
        return err_set(err, rc, "balloon: cannot create its statistics timer: %s", strerror(-rc));
    }
    b->cfg = *cfg;
    b->stats_offered = cfg->stats_polling_interval_s > 0;
    b->target_pages = cfg->amount_mib * BALLOON_PAGES_PER_MIB;
    b->discard = host_discard;
    *out = b;
    return 0;
}

void virtio_balloon_free(struct virtio_balloon *b)
{
    if (!b)
        return;
    if (b->watched)
        evloop_remove(b->watched, b->timer_fd);
    close(b->timer_fd);
    for (int i = 0; i < GUEST_MEM_MAX_REGIONS; i++)
        free(b->held[i]);
    free(b);
}

void virtio_balloon_set_discard(struct virtio_balloon *b, virtio_balloon_discard_fn fn, void *ctx)
{
    b->discard = fn;
    b->discard_ctx = ctx;
}

/* Statistics refreshes: the first after first_ns, then every interval_s seconds; both 0 stop them. */
void balloon_arm_timer(struct virtio_balloon *b, uint64_t first_ns, uint32_t interval_s)
{
    struct itimerspec its = {
        .it_value = {.tv_sec = (time_t)(first_ns / 1000000000ULL), .tv_nsec = (long)(first_ns % 1000000000ULL)},
        .it_interval = {.tv_sec = interval_s},
    };
    timerfd_settime(b->timer_fd, 0, &its, NULL); /* cannot fail with a valid fd and these values */
}

/* The page at pfn: its host address, region and index there; NULL when it is not guest RAM (MMIO gap included). */
uint8_t *balloon_page(const struct virtio_balloon *b, uint64_t pfn, int *region, uint64_t *index)
{
    const struct guest_mem *gm = b->vd->gm;
    uint64_t gpa = pfn << BALLOON_PFN_SHIFT; /* pfn < 2^32: no overflow */
    uint8_t *host = gm_ptr(gm, gpa, GUEST_PAGE_SIZE);
    if (!host)
        return NULL;
    for (int r = 0; r < gm->nr_regions; r++) {
        const struct guest_region *g = &gm->regions[r];
        if (gpa >= g->gpa && gpa - g->gpa < g->size) {
            *region = r;
            *index = (gpa - g->gpa) >> BALLOON_PFN_SHIFT;
            return host;
        }
    }
    return NULL;
}

/* Region r's bitmap of held pages, made on first use; NULL when out of memory. */
uint64_t *balloon_bitmap(struct virtio_balloon *b, int r)
{
    if (!b->held[r]) {
        uint64_t pages = b->vd->gm->regions[r].size >> BALLOON_PFN_SHIFT;
        b->held[r] = calloc((pages + 63) / 64, sizeof(uint64_t));
    }
    return b->held[r];
}

void balloon_drop_held(struct virtio_balloon *b)
{
    for (int i = 0; i < GUEST_MEM_MAX_REGIONS; i++) {
        free(b->held[i]);
        b->held[i] = NULL;
    }
    b->held_count = 0;
}

/* A run of contiguous host pages waiting for one discard call. */
struct run {
    uint8_t *host;
    uint64_t len;
};

static void flush_run(struct virtio_balloon *b, struct run *run)
{
    if (run->len && b->discard(run->host, run->len, b->discard_ctx))
        b->ctr.discard_fails++;
    run->len = 0;
}

/* One page number from the inflate queue: checked, recorded, discarded (adjacent pages in one call). */
static void inflate_pfn(struct virtio_balloon *b, uint32_t pfn, struct run *run)
{
    int r;
    uint64_t i;
    uint8_t *host = balloon_page(b, pfn, &r, &i);
    uint64_t *bits = host ? balloon_bitmap(b, r) : NULL;
    if (!host || (bits && (bits[i / 64] >> (i % 64) & 1))) {
        b->ctr.hostile_pfns++; /* not RAM, or already given: skipped */
        return;
    }
    if (!bits) {
        b->ctr.discard_fails++; /* no memory to remember it: left resident, which the guest cannot tell */
        return;
    }
    bits[i / 64] |= 1ULL << (i % 64);
    b->held_count++;
    b->ctr.pages_inflated++;
    if (run->len && run->host + run->len == host) {
        run->len += GUEST_PAGE_SIZE;
        return;
    }
    flush_run(b, run);
    run->host = host;
    run->len = GUEST_PAGE_SIZE;
}

/* One page number from the deflate queue: the guest takes back a page it gave; nothing to do on the host. */
static void deflate_pfn(struct virtio_balloon *b, uint32_t pfn)
{
    int r;
    uint64_t i;
    uint64_t *bits = balloon_page(b, pfn, &r, &i) ? b->held[r] : NULL;
    if (!bits || !(bits[i / 64] >> (i % 64) & 1)) {
        b->ctr.hostile_pfns++; /* not RAM, or not given: ignored */
        return;
    }
    bits[i / 64] &= ~(1ULL << (i % 64));
    b->held_count--;
    b->ctr.pages_deflated++;
}

/*
 * One inflate or deflate request. At most BALLOON_MAX_PFNS_PER_REQUEST page numbers are served: a guest that
 * posts huge buffers would otherwise keep the VMM thread (and every device on it) busy for as long as it likes.
 * The numbers past the cap are counted as hostile and ignored, unread.
 */
static void pfn_chain(struct virtio_balloon *b, const struct virtq_chain *c, bool inflate)
{
    struct run run = {0};
    uint64_t budget = BALLOON_MAX_PFNS_PER_REQUEST;
    for (unsigned k = 0; k < c->nbufs; k++) {
        const struct virtq_buf *buf = &c->bufs[k];
        if (buf->device_writes)
            continue; /* page numbers are in device-readable buffers only */
        uint64_t n = buf->len / 4, served = n < budget ? n : budget;
        for (uint64_t off = 0; off < 4 * served; off += 4) {
            uint32_t pfn = le_ld32(buf->host + off); /* mapping checked by virtq_pop */
            if (inflate)
                inflate_pfn(b, pfn, &run);
            else
                deflate_pfn(b, pfn);
        }
        budget -= served;
        b->ctr.hostile_pfns += n - served;
    }
    flush_run(b, &run);
    if (inflate)
        b->ctr.inflate_count++;
    else
        b->ctr.deflate_count++;
}

static void return_stats_buffer(struct virtio_balloon *b)
{
    struct virtio_dev *vd = b->vd;
    if (!b->stats_held)
        return;
    b->stats_held = false;
    if (virtq_push(&vd->queues[BALLOON_Q_STATS], vd->gm, b->stats_head, 0)) {
        virtio_dev_set_needs_reset(vd, "used ring outside guest memory");
        return;
    }
    virtio_dev_notify_used(vd, BALLOON_Q_STATS);
}

/* The guest's statistics: kept, and the buffer held until the next refresh. */
static void stats_chain(struct virtio_balloon *b, const struct virtq_chain *c)
{
    uint8_t buf[BALLOON_STATS_READ_MAX];
    uint64_t n = c->readable < sizeof(buf) ? c->readable : sizeof(buf);
    struct balloon_stats s = b->last;
    if (virtq_chain_read(c, b->vd->gm, 0, buf, n) == 0 && balloon_parse_stats(buf, n, &s))
        b->ctr.stats_updates++;
    else
        b->ctr.stats_fails++;
    b->last = s;
    return_stats_buffer(b); /* a guest that sends a second buffer gets the first back */
    b->stats_held = true;
    b->stats_head = c->head;
}

static void process_queue(struct virtio_balloon *b, uint16_t qi)
{
    struct virtio_dev *vd = b->vd;
    struct virtq *q = &vd->queues[qi];
    bool pushed = false;
    for (;;) {
        int rc = virtq_pop(q, vd->gm, &b->chain);
        if (rc == 0) {
            if (!virtq_rearm(q, vd->gm))
                break;
            continue;
        }
        if (rc < 0) {
            b->ctr.event_fails++;
            virtio_dev_set_needs_reset(vd, "the guest handed over a malformed descriptor chain");
            return;
        }
        if (qi == BALLOON_Q_STATS) {
            stats_chain(b, &b->chain);
            continue;
        }
        pfn_chain(b, &b->chain, qi == BALLOON_Q_INFLATE);
        if (virtq_push(q, vd->gm, b->chain.head, 0)) {
            virtio_dev_set_needs_reset(vd, "used ring outside guest memory");
            return;
        }
        pushed = true;
    }
    if (pushed)
        virtio_dev_notify_used(vd, qi);
}

bool balloon_stats_live(const struct virtio_balloon *b)
{
    return b->vd && virtio_dev_driver_ok(b->vd) && virtio_dev_has_feature(b->vd, VIRTIO_BALLOON_F_STATS_VQ) &&
           b->vd->queues[BALLOON_Q_STATS].ready;
}

static void timer_fired(void *opaque, uint32_t events)
{
    (void)events;
    struct virtio_balloon *b = opaque;
    uint64_t expiries;
    if (read(b->timer_fd, &expiries, sizeof(expiries)) == (ssize_t)sizeof(expiries))
        balloon_stats_refresh(b);
}

void balloon_stats_refresh(struct virtio_balloon *b)
{
    virtio_dev_lock(b->vd);
    if (balloon_stats_live(b))
        return_stats_buffer(b); /* the guest refills it and sends it again */
    virtio_dev_unlock(b->vd);
}

static uint64_t balloon_features(void *dev)
{
    const struct virtio_balloon *b = dev;
    uint64_t f = BIT64(VIRTIO_F_VERSION_1);
    if (b->stats_offered)
        f |= BIT64(VIRTIO_BALLOON_F_STATS_VQ);
    if (b->cfg.deflate_on_oom)
        f |= BIT64(VIRTIO_BALLOON_F_DEFLATE_ON_OOM);
    return f;
}

static void balloon_config_read(void *dev, uint64_t off, uint8_t *data, uint32_t len)
{
    const struct virtio_balloon *b = dev;
    uint8_t cfg[BALLOON_CFG_SIZE];
    le_st32(cfg + BALLOON_CFG_NUM_PAGES, b->target_pages);
    le_st32(cfg + BALLOON_CFG_ACTUAL, b->actual_pages);
    for (uint32_t i = 0; i < len; i++)
        data[i] = off + i < sizeof(cfg) ? cfg[off + i] : 0;
}

/* Only `actual` is the driver's to write; a write elsewhere is ignored. */
static void balloon_config_write(void *dev, uint64_t off, const uint8_t *data, uint32_t len)
{
    struct virtio_balloon *b = dev;
    uint8_t actual[4];
    le_st32(actual, b->actual_pages);
    for (uint32_t i = 0; i < len; i++)
        if (off + i >= BALLOON_CFG_ACTUAL && off + i < BALLOON_CFG_SIZE)
            actual[off + i - BALLOON_CFG_ACTUAL] = data[i];
    b->actual_pages = le_ld32(actual);
}

static void balloon_attach(void *dev, struct virtio_dev *vd) { ((struct virtio_balloon *)dev)->vd = vd; }

static int balloon_activate(void *dev, struct virtio_dev *vd)
{
    struct virtio_balloon *b = dev;
    b->vd = vd;
    if (!b->watched && vd->loop) {
        int rc = evloop_add(vd->loop, b->timer_fd, EPOLLIN, timer_fired, b);
        if (rc) {
            b->ctr.activate_fails++;
            return rc;
        }
        b->watched = vd->loop;
    }
    if (balloon_stats_live(b) && b->cfg.stats_polling_interval_s)
        balloon_arm_timer(b, (uint64_t)b->cfg.stats_polling_interval_s * 1000000000ULL,
                          b->cfg.stats_polling_interval_s);
    /*
     * Linux primes the statistics queue with its first buffer and kicks it before it sets DRIVER_OK, when a
     * kick is not yet served: take what is already there. (After a snapshot restore nothing is: the saved
     * ring position is past the held buffer.)
     */
    if (balloon_stats_live(b) && !b->stats_held)
        process_queue(b, BALLOON_Q_STATS);
    return 0;
}

static void balloon_notify(void *dev, struct virtio_dev *vd, uint16_t q)
{
    (void)vd;
    if (q == BALLOON_Q_INFLATE || q == BALLOON_Q_DEFLATE ||
        (q == BALLOON_Q_STATS && virtio_dev_has_feature(vd, VIRTIO_BALLOON_F_STATS_VQ)))
        process_queue(dev, q);
}

/* The driver starts over: every page is the guest's again, the statistics buffer is gone. */
static void balloon_reset(void *dev, struct virtio_dev *vd)
{
    (void)vd;
    struct virtio_balloon *b = dev;
    balloon_arm_timer(b, 0, 0);
    b->stats_held = false;
    b->actual_pages = 0;
    balloon_drop_held(b);
}

const struct virtio_dev_ops virtio_balloon_ops = {
    .device_id = VIRTIO_ID_BALLOON,
    .num_queues = 3,
    .features = balloon_features,
    .config_read = balloon_config_read,
    .config_write = balloon_config_write,
    .attach = balloon_attach,
    .activate = balloon_activate,
    .queue_notify = balloon_notify,
    .reset = balloon_reset,
};
