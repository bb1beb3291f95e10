#include "core/alloc.h"

#include <errno.h>
#include <string.h>

static int overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen) { return a < b + blen && b < a + alen; }

static int space_add(struct alloc_space *s, uint64_t base, uint64_t len, const char *owner, const struct io_ops *ops,
                     void *opaque)
{
    if (len == 0 || base + len < base)
        return -EINVAL;
    for (int i = 0; i < s->nr; i++)
        if (overlaps(base, len, s->entries[i].base, s->entries[i].len))
            return -EBUSY;
    if (s->nr >= ALLOC_MAX_RANGES)
        return -ENOSPC;
    s->entries[s->nr++] = (struct alloc_entry){base, len, owner, ops, opaque};
    return 0;
}

static const struct alloc_entry *space_find(const struct alloc_space *s, uint64_t addr, uint64_t len)
{
    for (int i = 0; i < s->nr; i++) {
        const struct alloc_entry *e = &s->entries[i];
        /* The whole access must fall inside one range. */
        if (addr >= e->base && addr - e->base < e->len && len <= e->len - (addr - e->base))
            return e;
    }
    return NULL;
}

static int reserve_platform(struct allocator *a)
{
    /* The in-kernel IOAPIC and LAPIC live here; no device may claim them. */
    int rc = alloc_claim_mmio(a, IOAPIC_BASE, 0x1000, "ioapic", NULL, NULL);
    if (!rc)
        rc = alloc_claim_mmio(a, LAPIC_BASE, 0x1000, "lapic", NULL, NULL);
    /* Legacy GSIs wired on every PC: timer, keyboard, cascade, COM1. */
    if (!rc)
        rc = alloc_gsi_at(a, 0, "pit");
    if (!rc)
        rc = alloc_gsi_at(a, 2, "pic-cascade");
    a->mmio_next = ALLOC_MMIO_DYN_BASE;
    return rc;
}

static void reset_tables(struct allocator *a)
{
    memset(&a->pio, 0, sizeof(a->pio));
    memset(&a->mmio, 0, sizeof(a->mmio));
    memset(a->gsi_owner, 0, sizeof(a->gsi_owner));
}

/* The tables over memory guest_mem has just mapped (rc: how that went); the memory is released on failure. */
static int init_over_mapped(struct allocator *a, int rc)
{
    if (rc)
        return rc;
    rc = reserve_platform(a);
    if (rc)
        guest_mem_free(&a->mem);
    return rc;
}

int alloc_init(struct allocator *a, uint64_t ram_bytes)
{
    reset_tables(a);
    return init_over_mapped(a, guest_mem_init(&a->mem, ram_bytes));
}

int alloc_init_file(struct allocator *a, uint64_t ram_bytes, int fd)
{
    reset_tables(a);
    return init_over_mapped(a, guest_mem_init_file(&a->mem, ram_bytes, fd));
}

int alloc_init_with(struct allocator *a, uint64_t ram_bytes, uint8_t *backing)
{
    reset_tables(a);
    int rc = guest_mem_init_with(&a->mem, ram_bytes, backing);
    return rc ? rc : reserve_platform(a);
}

void alloc_destroy(struct allocator *a)
{
    guest_mem_free(&a->mem);
    reset_tables(a);
}

int alloc_claim_pio(struct allocator *a, uint16_t base, uint16_t len, const char *owner, const struct io_ops *ops,
                    void *opaque)
{
    if ((uint32_t)base + len > 0x10000)
        return -EINVAL;
    return space_add(&a->pio, base, len, owner, ops, opaque);
}

int alloc_claim_mmio(struct allocator *a, uint64_t base, uint64_t len, const char *owner, const struct io_ops *ops,
                     void *opaque)
{
    if (len == 0 || base + len < base)
        return -EINVAL;
    /* MMIO must never shadow RAM: the guest would lose the RAM or the device. */
    for (int i = 0; i < a->mem.nr_regions; i++)
        if (overlaps(base, len, a->mem.regions[i].gpa, a->mem.regions[i].size))
            return -EBUSY;
    return space_add(&a->mmio, base, len, owner, ops, opaque);
}

int alloc_claim_mmio_slot(struct allocator *a, uint64_t len, const char *owner, const struct io_ops *ops, void *opaque,
                          uint64_t *base)
{
    if (len == 0 || (len & 0xfff))
        return -EINVAL;
    /* Written so that a huge len cannot wrap the sum. */
    while (a->mmio_next <= ALLOC_MMIO_DYN_END && len <= ALLOC_MMIO_DYN_END - a->mmio_next) {
        uint64_t at = a->mmio_next;
        a->mmio_next += len;
        int rc = alloc_claim_mmio(a, at, len, owner, ops, opaque);
        if (rc == 0) {
            *base = at;
            return 0;
        }
        if (rc != -EBUSY)
            return rc;
    }
    return -ENOSPC;
}

int alloc_gsi_at(struct allocator *a, uint32_t gsi, const char *owner)
{
    if (gsi >= ALLOC_NR_GSIS)
        return -EINVAL;
    if (a->gsi_owner[gsi])
        return -EBUSY;
    a->gsi_owner[gsi] = owner;
    return 0;
}

int alloc_gsi(struct allocator *a, const char *owner, uint32_t *gsi)
{
    for (uint32_t g = ALLOC_GSI_DYN_FIRST; g < ALLOC_NR_GSIS; g++) {
        /* Leave the legacy ISA lines of devices Ember may add (COM2-4, RTC) alone. */
        if (g == 8 || g == 3 || g == 4)
            continue;
        if (!a->gsi_owner[g]) {
            a->gsi_owner[g] = owner;
            *gsi = g;
            return 0;
        }
    }
    return -ENOSPC;
}

const struct alloc_entry *alloc_find_pio(const struct allocator *a, uint64_t addr, uint64_t len)
{
    return space_find(&a->pio, addr, len);
}

const struct alloc_entry *alloc_find_mmio(const struct allocator *a, uint64_t addr, uint64_t len)
{
    return space_find(&a->mmio, addr, len);
}

const char *alloc_pio_owner(const struct allocator *a, uint64_t addr, uint64_t len)
{
    const struct alloc_entry *e = alloc_find_pio(a, addr, len);
    return e ? e->owner : NULL;
}

const char *alloc_mmio_owner(const struct allocator *a, uint64_t addr, uint64_t len)
{
    const struct alloc_entry *e = alloc_find_mmio(a, addr, len);
    return e ? e->owner : NULL;
}
