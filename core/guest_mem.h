/*
 * Guest RAM: host mappings of guest-physical ranges, and the single checked
 * accessor through which every guest-supplied address is translated.
 */
#ifndef EMBER_GUEST_MEM_H
#define EMBER_GUEST_MEM_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define GUEST_MEM_MAX_REGIONS 2

/* x86: RAM above this is moved past the 32-bit MMIO hole. */
#define MMIO_GAP_START 0xC0000000ULL
#define MMIO_GAP_END 0x100000000ULL

#define GUEST_PAGE_SIZE 4096ULL

struct guest_region {
    uint64_t gpa;
    uint64_t size;
    uint8_t *host;
    /*
     * With dirty tracking (guest_mem_track_dirty): one bit per page handed
     * out by gm_ptr, i.e. every page Ember's devices may have written. KVM's
     * dirty log knows only the guest's own writes; a Diff snapshot needs both.
     */
    _Atomic uint64_t *dirty;
};

struct guest_mem {
    struct guest_region regions[GUEST_MEM_MAX_REGIONS];
    int nr_regions;
    uint64_t total;
    int file_backed; /* mapped MAP_PRIVATE from a memory file: a dropped page reads the file again, not zeros */
};

/* Lay out `bytes` of RAM (split around the MMIO gap) and map it anonymously. */
int guest_mem_init(struct guest_mem *gm, uint64_t bytes);
/*
 * The same layout mapped MAP_PRIVATE from a memory file (a snapshot's): region
 * i starts in the file where the regions before it end. Nothing is read until
 * touched, the file is never written, and VMs mapping one file share its
 * page cache. The file must hold at least `bytes` (the caller checks).
 */
int guest_mem_init_file(struct guest_mem *gm, uint64_t bytes, int fd);
/* Same layout, backed by caller-provided memory (unit tests). */
int guest_mem_init_with(struct guest_mem *gm, uint64_t bytes, uint8_t *backing);
void guest_mem_free(struct guest_mem *gm);

/* Starts tracking the pages gm_ptr hands out (see struct guest_region): 0 or -ENOMEM. */
int guest_mem_track_dirty(struct guest_mem *gm);
/* Number of 64-bit words of region i's page bitmap. */
size_t gm_dirty_words(const struct guest_mem *gm, int region);
/* ORs region i's tracked pages into out (gm_dirty_words long) and clears them; nothing when not tracking. */
void gm_take_dirty(const struct guest_mem *gm, int region, uint64_t *out);
/* ORs `pages` back into region i's bitmap: what a failed snapshot took stays dirty for the next one. */
void gm_return_dirty(const struct guest_mem *gm, int region, const uint64_t *pages);

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
