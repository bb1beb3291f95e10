/*
 * Guest RAM: host mappings of guest-physical ranges, and the single checked
 * accessor through which every guest-supplied address is translated.
 */
#ifndef EMBER_GUEST_MEM_H
#define EMBER_GUEST_MEM_H

#include <stddef.h>
#include <stdint.h>

#define GUEST_MEM_MAX_REGIONS 2

/* x86: RAM above this is moved past the 32-bit MMIO hole. */
#define MMIO_GAP_START 0xC0000000ULL
#define MMIO_GAP_END 0x100000000ULL

struct guest_region {
    uint64_t gpa;
    uint64_t size;
    uint8_t *host;
};

struct guest_mem {
    struct guest_region regions[GUEST_MEM_MAX_REGIONS];
    int nr_regions;
    uint64_t total;
};

/* Lay out `bytes` of RAM (split around the MMIO gap) and map it anonymously. */
int guest_mem_init(struct guest_mem *gm, uint64_t bytes);
/* Same layout, backed by caller-provided memory (unit tests). */
int guest_mem_init_with(struct guest_mem *gm, uint64_t bytes, uint8_t *backing);
void guest_mem_free(struct guest_mem *gm);

/* Compute the RAM layout only (no mapping). */
int guest_mem_layout(uint64_t bytes, struct guest_region *out, int *nr);

/*
 * The checked accessor: host pointer for [gpa, gpa+len) when the whole range
 * lies inside one RAM region, else NULL. len == 0 is valid for an in-range gpa.
 */
void *gm_ptr(const struct guest_mem *gm, uint64_t gpa, uint64_t len);
int gm_read(const struct guest_mem *gm, uint64_t gpa, void *dst, uint64_t len);
int gm_write(const struct guest_mem *gm, uint64_t gpa, const void *src, uint64_t len);
/*
 * Zeroes [gpa, gpa+len) (one RAM region, checked like gm_ptr). Whole pages of
 * memory guest_mem_init mapped are dropped with MADV_DONTNEED instead of
 * written: they read back as zeros and cost no page until the guest touches
 * them (a kernel's .bss is megabytes the loader would otherwise fault in).
 */
int gm_zero(const struct guest_mem *gm, uint64_t gpa, uint64_t len);

/* End of the RAM region that starts at 0 (the "low" RAM). */
uint64_t gm_low_end(const struct guest_mem *gm);

#endif
