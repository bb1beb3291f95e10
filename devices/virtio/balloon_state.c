/* The balloon's runtime requests (target, statistics), its statistics parser and its snapshot section. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/le.h"
#include "devices/virtio/balloon_internal.h"

#define STATE_VERSION 1
/* The most runs of inflated pages an image may name: one per page of 1 TiB of RAM in the worst case. */
#define MAX_RUNS (1ULL << 28)

struct balloon_counters virtio_balloon_counters(struct virtio_balloon *b)
{
    virtio_dev_lock(b->vd);
    struct balloon_counters c = b->ctr;
    virtio_dev_unlock(b->vd);
    return c;
}

void virtio_balloon_set_target(struct virtio_balloon *b, uint32_t amount_mib)
{
    virtio_dev_lock(b->vd);
    b->cfg.amount_mib = amount_mib;
    b->target_pages = amount_mib * BALLOON_PAGES_PER_MIB;
    virtio_dev_config_changed(b->vd); /* the driver rereads num_pages */
    virtio_dev_unlock(b->vd);
}

int virtio_balloon_set_stats_interval(struct virtio_balloon *b, uint32_t secs, struct errmsg *err)
{
    if ((secs > 0) != b->stats_offered)
        return err_set(err, -EINVAL,
                       "Cannot enable/disable the statistics after boot: stats_polling_interval_s was %s when the "
                       "balloon was configured.",
                       b->stats_offered ? "not 0" : "0");
    virtio_dev_lock(b->vd);
    b->cfg.stats_polling_interval_s = secs;
    if (balloon_stats_live(b))
        balloon_arm_timer(b, 1, secs); /* Firecracker's rule: the first refresh at once */
    virtio_dev_unlock(b->vd);
    return 0;
}

void virtio_balloon_stats(struct virtio_balloon *b, struct balloon_stats *out)
{
    virtio_dev_lock(b->vd);
    *out = b->last;
    out->target_pages = b->target_pages;
    out->actual_pages = b->actual_pages;
    virtio_dev_unlock(b->vd);
}

uint64_t virtio_balloon_held_pages(struct virtio_balloon *b)
{
    virtio_dev_lock(b->vd);
    uint64_t n = b->held_count;
    virtio_dev_unlock(b->vd);
    return n;
}

bool balloon_parse_stats(const uint8_t *buf, uint64_t len, struct balloon_stats *s)
{
    uint64_t whole = len / BALLOON_STAT_SIZE;
    if (!whole)
        return false; /* what the guest had before stays */
    s->present = 0;
    for (uint64_t i = 0; i < whole; i++) {
        const uint8_t *p = buf + i * BALLOON_STAT_SIZE;
        uint16_t tag = le_ld16(p);
        if (tag >= BALLOON_S_NR)
            continue; /* a newer guest's statistic: not ours to show */
        s->values[tag] = le_ld64(p + 2);
        s->present |= 1U << tag;
    }
    return len % BALLOON_STAT_SIZE == 0;
}

/* Calls fn for every run of held pages (first pfn, count), in address order. */
static void each_run(const struct virtio_balloon *b, void (*fn)(void *ctx, uint64_t pfn, uint64_t n), void *ctx)
{
    const struct guest_mem *gm = b->vd->gm;
    for (int r = 0; r < gm->nr_regions; r++) {
        const uint64_t *bits = b->held[r];
        uint64_t pages = gm->regions[r].size >> BALLOON_PFN_SHIFT, base = gm->regions[r].gpa >> BALLOON_PFN_SHIFT;
        for (uint64_t i = 0; bits && i < pages;) {
            if (!(bits[i / 64] >> (i % 64) & 1)) {
                i++;
                continue;
            }
            uint64_t start = i;
            while (i < pages && (bits[i / 64] >> (i % 64) & 1))
                i++;
            fn(ctx, base + start, i - start);
        }
    }
}

static void count_run(void *ctx, uint64_t pfn, uint64_t n)
{
    (void)pfn;
    (void)n;
    (*(uint32_t *)ctx)++;
}

static void put_run(void *ctx, uint64_t pfn, uint64_t n)
{
    state_put_u64(ctx, pfn);
    state_put_u64(ctx, n);
}

int virtio_balloon_save(struct virtio_balloon *b, struct state_writer *w)
{
    virtio_dev_lock(b->vd);
    size_t mark = state_begin(w, "virtio-balloon", STATE_VERSION);
    state_put_u32(w, b->target_pages);
    state_put_u32(w, b->actual_pages);
    state_put_u32(w, b->cfg.stats_polling_interval_s);
    state_put_u8(w, b->stats_offered);
    state_put_u8(w, b->stats_held);
    state_put_u16(w, b->stats_head);
    state_put_u32(w, b->last.present);
    for (int i = 0; i < BALLOON_S_NR; i++)
        state_put_u64(w, b->last.values[i]);
    uint32_t runs = 0;
    each_run(b, count_run, &runs);
    state_put_u32(w, runs);
    each_run(b, put_run, w);
    virtio_dev_unlock(b->vd);
    return state_end(w, mark);
}

/* Marks a saved run held; false when it is not wholly inside one RAM region or out of memory. */
static bool hold_run(struct virtio_balloon *b, uint64_t pfn, uint64_t n)
{
    int r;
    uint64_t i;
    if (!n || n > MAX_RUNS || pfn > UINT32_MAX || n - 1 > UINT32_MAX - pfn || !balloon_page(b, pfn, &r, &i) ||
        !gm_ptr(b->vd->gm, pfn << BALLOON_PFN_SHIFT, n << BALLOON_PFN_SHIFT))
        return false;
    uint64_t *bits = balloon_bitmap(b, r);
    if (!bits)
        return false;
    for (uint64_t k = i; k < i + n; k++) {
        if (!(bits[k / 64] >> (k % 64) & 1))
            b->held_count++;
        bits[k / 64] |= 1ULL << (k % 64);
    }
    return true;
}

/* The device's state after the transport's restore; the image is checked before the balloon changes. */
int virtio_balloon_restore(struct virtio_balloon *b, struct state_reader *r, struct errmsg *err)
{
    uint32_t version;
    struct state_reader s;
    int rc = state_open(r, "virtio-balloon", STATE_VERSION, &version, &s, err);
    if (rc)
        return rc;
    uint32_t target = state_get_u32(&s), actual = state_get_u32(&s), interval = state_get_u32(&s);
    bool offered = state_get_u8(&s) != 0, held = state_get_u8(&s) != 0;
    uint16_t head = state_get_u16(&s);
    struct balloon_stats last = {.present = state_get_u32(&s)};
    for (int i = 0; i < BALLOON_S_NR; i++)
        last.values[i] = state_get_u64(&s);
    uint32_t runs = state_get_u32(&s);
    if (s.err || offered != b->stats_offered || (interval > 0) != offered || interval > BALLOON_MAX_STATS_INTERVAL_S ||
        (held && head >= b->vd->queues[BALLOON_Q_STATS].size) || runs > (s.len - s.pos) / 16)
        return err_set(err, -EINVAL, "virtio-balloon: the snapshot's balloon state does not fit this device");
    virtio_dev_lock(b->vd);
    balloon_drop_held(b);
    for (uint32_t k = 0; k < runs && !rc; k++) {
        uint64_t pfn = state_get_u64(&s), n = state_get_u64(&s);
        if (!hold_run(b, pfn, n))
            rc = err_set(err, -EINVAL, "virtio-balloon: the snapshot names inflated pages outside guest RAM");
    }
    if (!rc)
        rc = state_close(&s, "virtio-balloon", err);
    if (rc) {
        balloon_drop_held(b); /* a failed load ends the process; nothing half-restored is used */
    } else {
        b->target_pages = target;
        b->cfg.amount_mib = target / BALLOON_PAGES_PER_MIB;
        b->actual_pages = actual;
        b->cfg.stats_polling_interval_s = interval;
        b->last = last;
        if (held || !b->stats_held) { /* a buffer the restored device took at its activation stays held */
            b->stats_held = held;
            b->stats_head = head;
        }
        if (balloon_stats_live(b))
            balloon_arm_timer(b, (uint64_t)interval * 1000000000ULL, interval);
    }
    virtio_dev_unlock(b->vd);
    return rc;
}
