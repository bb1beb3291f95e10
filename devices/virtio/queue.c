#include "devices/virtio/queue.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "devices/virtio/virtio.h"

#define DESC_SIZE 16

struct desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};

void virtq_reset(struct virtq *q) { memset(q, 0, sizeof(*q)); }

static uint64_t avail_bytes(uint16_t size) { return 4 + 2ULL * size + 2; }
static uint64_t used_bytes(uint16_t size) { return 4 + 8ULL * size + 2; }

int virtq_validate(struct virtq *q, const struct guest_mem *gm)
{
    q->desc_host = q->avail_host = q->used_host = NULL;
    if (q->size == 0 || q->size > VIRTQ_MAX_SIZE || (q->size & (q->size - 1)))
        return -EINVAL;
    /* Alignment from the virtio spec (2.7): desc 16, avail 2, used 4. */
    if ((q->desc_gpa & 15) || (q->avail_gpa & 1) || (q->used_gpa & 3))
        return -EINVAL;
    uint8_t *desc = gm_ptr(gm, q->desc_gpa, (uint64_t)DESC_SIZE * q->size);
    uint8_t *avail = gm_ptr(gm, q->avail_gpa, avail_bytes(q->size));
    uint8_t *used = gm_ptr(gm, q->used_gpa, used_bytes(q->size));
    if (!desc || !avail || !used)
        return -EFAULT;
    q->desc_host = desc;
    q->avail_host = avail;
    q->used_host = used;
    return 0;
}

/*
 * `len` bytes at offset `off` of a ring. Every caller's offset lies inside
 * the ring's extent for q->size, which validation checked whole.
 */
static void *ring_at(const struct guest_mem *gm, uint8_t *host, uint64_t gpa, uint64_t off, uint64_t len)
{
    return host ? host + off : gm_ptr(gm, gpa + off, len);
}

/* Ring fields are shared with a running guest: single loads/stores with ordering. */
static uint16_t load16(const uint16_t *p) { return p ? __atomic_load_n(p, __ATOMIC_ACQUIRE) : 0; }

static void store16(uint16_t *p, uint16_t v)
{
    if (p)
        __atomic_store_n(p, v, __ATOMIC_RELEASE);
}

static uint16_t avail_load(const struct virtq *q, const struct guest_mem *gm, uint64_t off)
{
    return load16(ring_at(gm, q->avail_host, q->avail_gpa, off, 2));
}

static void used_store(const struct virtq *q, const struct guest_mem *gm, uint64_t off, uint16_t v)
{
    store16(ring_at(gm, q->used_host, q->used_gpa, off, 2), v);
}

static void parse_desc(const uint8_t *p, struct desc *d)
{
    memcpy(&d->addr, p, 8);
    memcpy(&d->len, p + 8, 4);
    memcpy(&d->flags, p + 12, 2);
    memcpy(&d->next, p + 14, 2);
}

/* Inlined into both walks: it runs once per descriptor on every request. */
static inline __attribute__((always_inline)) int add_buf(struct virtq_chain *c, const struct guest_mem *gm,
                                                         const struct desc *d)
{
    if (c->nbufs >= VIRTQ_MAX_CHAIN)
        return -EPROTO; /* over-long or cyclic chain */
    if (d->len == 0)
        return 0; /* harmless: nothing to transfer */
    uint8_t *host = gm_ptr(gm, d->addr, d->len);
    if (!host)
        return -EPROTO;
    int writes = (d->flags & VIRTQ_DESC_F_WRITE) != 0;
    /* The spec puts every device-writable buffer after the readable ones. */
    if (!writes && c->writable)
        return -EPROTO;
    c->bufs[c->nbufs++] = (struct virtq_buf){d->addr, d->len, writes, host};
    if (writes)
        c->writable += d->len;
    else
        c->readable += d->len;
    return 0;
}

static int walk_indirect(struct virtq_chain *c, const struct guest_mem *gm, const struct desc *ind)
{
    if (ind->len == 0 || ind->len % DESC_SIZE || ind->len / DESC_SIZE > VIRTQ_MAX_CHAIN)
        return -EPROTO;
    const uint8_t *table = gm_ptr(gm, ind->addr, ind->len);
    if (!table)
        return -EPROTO;
    uint32_t n = ind->len / DESC_SIZE;
    uint32_t idx = 0;
    /* At most n steps: a cycle inside the table cannot loop forever. */
    for (uint32_t steps = 0; steps < n; steps++) {
        struct desc d;
        parse_desc(table + (uint64_t)idx * DESC_SIZE, &d); /* idx < n: inside the checked table */
        if (d.flags & VIRTQ_DESC_F_INDIRECT)
            return -EPROTO; /* nested indirect tables are forbidden */
        int rc = add_buf(c, gm, &d);
        if (rc)
            return rc;
        if (!(d.flags & VIRTQ_DESC_F_NEXT))
            return 0;
        if (d.next >= n)
            return -EPROTO;
        idx = d.next;
    }
    return -EPROTO;
}

bool virtq_has_avail(const struct virtq *q, const struct guest_mem *gm)
{
    return q->ready && avail_load(q, gm, 2) != q->last_avail;
}

int virtq_pop(struct virtq *q, const struct guest_mem *gm, struct virtq_chain *c)
{
    if (!q->ready)
        return 0;
    uint16_t avail_idx = avail_load(q, gm, 2);
    if (avail_idx == q->last_avail)
        return 0;
    if ((uint16_t)(avail_idx - q->last_avail) > q->size)
        return -EPROTO; /* the driver claims more entries than the ring holds */
    uint16_t head = avail_load(q, gm, 4 + 2ULL * (q->last_avail % q->size));
    if (head >= q->size)
        return -EPROTO;
    c->head = head;
    c->nbufs = 0;
    c->readable = c->writable = 0;
    uint16_t idx = head;
    for (unsigned steps = 0;; steps++) {
        if (steps >= q->size)
            return -EPROTO; /* longer than the table: a cycle */
        struct desc d;
        const uint8_t *dp = ring_at(gm, q->desc_host, q->desc_gpa, (uint64_t)idx * DESC_SIZE, DESC_SIZE);
        if (!dp)
            return -EPROTO;
        parse_desc(dp, &d);
        int rc;
        if (d.flags & VIRTQ_DESC_F_INDIRECT) {
            if (d.flags & VIRTQ_DESC_F_NEXT)
                return -EPROTO; /* an indirect descriptor ends its chain */
            rc = walk_indirect(c, gm, &d);
            if (rc)
                return rc;
            break;
        }
        rc = add_buf(c, gm, &d);
        if (rc)
            return rc;
        if (!(d.flags & VIRTQ_DESC_F_NEXT))
            break;
        if (d.next >= q->size)
            return -EPROTO;
        idx = d.next;
    }
    q->last_avail++;
    return 1;
}

void virtq_unpop(struct virtq *q) { q->last_avail--; }

int virtq_push(struct virtq *q, const struct guest_mem *gm, uint16_t head, uint32_t len)
{
    uint8_t *p = ring_at(gm, q->used_host, q->used_gpa, 4 + 8ULL * (q->used_idx % q->size), 8);
    if (!p)
        return -EPROTO;
    uint32_t id = head;
    memcpy(p, &id, 4);
    memcpy(p + 4, &len, 4);
    q->used_idx++;
    /* Release: the element is visible before the index that publishes it. */
    used_store(q, gm, 2, q->used_idx);
    return 0;
}

bool virtq_should_notify(struct virtq *q, const struct guest_mem *gm)
{
    __atomic_thread_fence(__ATOMIC_SEQ_CST); /* used idx store before reading the driver's wish */
    uint16_t old = q->signalled_used, now = q->used_idx;
    bool valid = q->signalled_valid;
    q->signalled_used = now;
    q->signalled_valid = true;
    if (!q->event_idx)
        return !(avail_load(q, gm, 0) & VIRTQ_AVAIL_F_NO_INTERRUPT);
    if (!valid)
        return true;
    uint16_t used_event = avail_load(q, gm, 4 + 2ULL * q->size);
    /* vring_need_event(): did used_idx cross used_event since the last notification? */
    return (uint16_t)(now - used_event - 1) < (uint16_t)(now - old);
}

void virtq_set_avail_event(struct virtq *q, const struct guest_mem *gm)
{
    if (q->event_idx)
        used_store(q, gm, 4 + 8ULL * q->size, q->last_avail);
}

int virtq_describe(const struct virtq *q, const struct guest_mem *gm, char *buf, size_t len)
{
    if (!q->ready)
        return snprintf(buf, len, "not ready");
    uint16_t used_idx_in_guest = load16(ring_at(gm, q->used_host, q->used_gpa, 2, 2));
    uint16_t avail_event = load16(ring_at(gm, q->used_host, q->used_gpa, 4 + 8ULL * q->size, 2));
    return snprintf(buf, len,
                    "size %u; device: next avail %u, next used %u, last interrupt at used %u%s; guest memory: avail "
                    "idx %u flags %#x used_event %u, used idx %u avail_event %u",
                    q->size, q->last_avail, q->used_idx, q->signalled_used, q->signalled_valid ? "" : " (none yet)",
                    avail_load(q, gm, 2), avail_load(q, gm, 0), avail_load(q, gm, 4 + 2ULL * q->size),
                    used_idx_in_guest, avail_event);
}

bool virtq_rearm(struct virtq *q, const struct guest_mem *gm)
{
    virtq_set_avail_event(q, gm);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    return virtq_has_avail(q, gm);
}

/* Walks the buffers of one direction, copying `len` bytes at `offset`. */
static int chain_copy(const struct virtq_chain *c, const struct guest_mem *gm, bool writable, uint64_t offset,
                      uint8_t *host, uint64_t len, bool to_guest)
{
    (void)gm; /* the buffers' host mappings were checked when the chain was popped */
    for (unsigned i = 0; i < c->nbufs && len; i++) {
        const struct virtq_buf *b = &c->bufs[i];
        if (b->device_writes != writable)
            continue;
        if (offset >= b->len) {
            offset -= b->len;
            continue;
        }
        uint64_t n = b->len - offset;
        if (n > len)
            n = len;
        uint8_t *g = b->host + offset; /* inside [gpa, gpa + len), checked at pop */
        if (to_guest)
            memcpy(g, host, n);
        else
            memcpy(host, g, n);
        host += n;
        len -= n;
        offset = 0;
    }
    return len ? -ENOSPC : 0;
}

int virtq_chain_read(const struct virtq_chain *c, const struct guest_mem *gm, uint64_t offset, void *dst, uint64_t len)
{
    return chain_copy(c, gm, false, offset, dst, len, false);
}

int virtq_chain_write(const struct virtq_chain *c, const struct guest_mem *gm, uint64_t offset, const void *src,
                      uint64_t len)
{
    return chain_copy(c, gm, true, offset, (uint8_t *)src, len, true);
}
