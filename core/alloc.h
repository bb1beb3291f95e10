/*
 * The allocator: owns what the guest may touch. Guest RAM layout, IRQ lines
 * (GSIs), MMIO and PIO ranges are handed out here explicitly, each with an
 * owner name; overlapping grants are refused. A granted range is also its
 * route: the entry carries the device's io_ops, and the dispatcher finds the
 * device of an exit by looking the address up here. An entry without ops is a
 * reservation (the range is taken, e.g. by KVM's in-kernel devices, and
 * nothing in Ember answers there).
 *
 * The tables are filled before vCPUs start and are read-only afterwards, so
 * lookups from vCPU threads need no lock.
 */
#ifndef EMBER_ALLOC_H
#define EMBER_ALLOC_H

#include <stdint.h>

#include "core/guest_mem.h"
#include "core/io.h"

#define ALLOC_MAX_RANGES 64
#define ALLOC_NR_GSIS 24
/* GSIs handed out dynamically (virtio devices): the legacy-free ones. */
#define ALLOC_GSI_DYN_FIRST 5
/* 4 KiB virtio-mmio slots start here, in the 32-bit hole. */
#define ALLOC_MMIO_DYN_BASE 0xC0001000ULL
#define ALLOC_MMIO_DYN_END 0xD0000000ULL

#define IOAPIC_BASE 0xFEC00000ULL
#define LAPIC_BASE 0xFEE00000ULL

/* One granted range of an address space. */
struct alloc_entry {
    uint64_t base;
    uint64_t len;
    const char *owner;
    const struct io_ops *ops; /* NULL: a reservation */
    void *opaque;             /* the device, passed back to ops */
};

/* One address space (port I/O or MMIO): non-overlapping entries. */
struct alloc_space {
    struct alloc_entry entries[ALLOC_MAX_RANGES];
    int nr;
};

struct allocator {
    struct guest_mem mem;
    struct alloc_space pio;
    struct alloc_space mmio;
    const char *gsi_owner[ALLOC_NR_GSIS];
    uint64_t mmio_next;
};

/* Sets up the RAM map (mapped) and the fixed platform reservations. */
int alloc_init(struct allocator *a, uint64_t ram_bytes);
/* As alloc_init, RAM mapped from a snapshot's memory file (guest_mem_init_file). */
int alloc_init_file(struct allocator *a, uint64_t ram_bytes, int fd);
/* As alloc_init, on caller-provided backing (tests). */
int alloc_init_with(struct allocator *a, uint64_t ram_bytes, uint8_t *backing);
void alloc_destroy(struct allocator *a);

/*
 * Grant [base, base+len) to `owner` and route it to ops/opaque (ops NULL:
 * reserve only). -EINVAL for an empty or out-of-space range, -EBUSY when it
 * overlaps a grant (or, for MMIO, guest RAM), -ENOSPC when the table is full.
 */
int alloc_claim_pio(struct allocator *a, uint16_t base, uint16_t len, const char *owner, const struct io_ops *ops,
                    void *opaque);
int alloc_claim_mmio(struct allocator *a, uint64_t base, uint64_t len, const char *owner, const struct io_ops *ops,
                     void *opaque);
/* As alloc_claim_mmio, at the next free page-aligned slot of the dynamic window; *base receives it. */
int alloc_claim_mmio_slot(struct allocator *a, uint64_t len, const char *owner, const struct io_ops *ops, void *opaque,
                          uint64_t *base);
int alloc_gsi_at(struct allocator *a, uint32_t gsi, const char *owner);
int alloc_gsi(struct allocator *a, const char *owner, uint32_t *gsi);

/* The entry whose range holds all of [addr, addr+len), or NULL (lock-free once vCPUs run). */
const struct alloc_entry *alloc_find_pio(const struct allocator *a, uint64_t addr, uint64_t len);
const struct alloc_entry *alloc_find_mmio(const struct allocator *a, uint64_t addr, uint64_t len);
/* Owner of the range containing [addr, addr+len), or NULL. */
const char *alloc_pio_owner(const struct allocator *a, uint64_t addr, uint64_t len);
const char *alloc_mmio_owner(const struct allocator *a, uint64_t addr, uint64_t len);

#endif
