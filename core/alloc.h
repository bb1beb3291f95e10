/*
 * The allocator: owns what the guest may touch. Guest RAM layout, IRQ lines
 * (GSIs), MMIO and PIO ranges are handed out here explicitly, each with an
 * owner name; overlapping grants are refused. The dispatcher only routes an
 * exit to a device through a range granted here.
 */
#ifndef EMBER_ALLOC_H
#define EMBER_ALLOC_H

#include <stdint.h>

#include "core/guest_mem.h"

#define ALLOC_MAX_RANGES 64
#define ALLOC_NR_GSIS 24
/* GSIs handed out dynamically (virtio devices): the legacy-free ones. */
#define ALLOC_GSI_DYN_FIRST 5
/* 4 KiB virtio-mmio slots start here, in the 32-bit hole. */
#define ALLOC_MMIO_DYN_BASE 0xC0001000ULL
#define ALLOC_MMIO_DYN_END 0xD0000000ULL

#define IOAPIC_BASE 0xFEC00000ULL
#define LAPIC_BASE 0xFEE00000ULL

struct alloc_range {
    uint64_t base;
    uint64_t len;
    const char *owner;
};

struct allocator {
    struct guest_mem mem;
    struct alloc_range pio[ALLOC_MAX_RANGES];
    int nr_pio;
    struct alloc_range mmio[ALLOC_MAX_RANGES];
    int nr_mmio;
    const char *gsi_owner[ALLOC_NR_GSIS];
    uint64_t mmio_next;
};

/* Sets up the RAM map (mapped) and the fixed platform reservations. */
int alloc_init(struct allocator *a, uint64_t ram_bytes);
/* As alloc_init, on caller-provided backing (tests). */
int alloc_init_with(struct allocator *a, uint64_t ram_bytes, uint8_t *backing);
void alloc_destroy(struct allocator *a);

int alloc_pio(struct allocator *a, uint16_t base, uint16_t len, const char *owner);
int alloc_mmio_at(struct allocator *a, uint64_t base, uint64_t len, const char *owner);
int alloc_mmio(struct allocator *a, uint64_t len, const char *owner, uint64_t *base);
int alloc_gsi_at(struct allocator *a, uint32_t gsi, const char *owner);
int alloc_gsi(struct allocator *a, const char *owner, uint32_t *gsi);

/* Owner of the range containing [addr, addr+len), or NULL. */
const char *alloc_pio_owner(const struct allocator *a, uint64_t addr, uint64_t len);
const char *alloc_mmio_owner(const struct allocator *a, uint64_t addr, uint64_t len);

#endif
