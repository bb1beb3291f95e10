/*
 * guest_mem for snapshots: RAM mapped MAP_PRIVATE from a memory file
 * (guest_mem_init_file) and the accessor's dirty page tracking
 * (guest_mem_track_dirty, gm_take_dirty).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/guest_mem.h"

#define PAGE GUEST_PAGE_SIZE
#define MiB (1ULL << 20)
#define GiB (1ULL << 30)

static char path[64];
static int fd = -1;

/* An empty file, opened read-write (the tests write it with pwrite; guest memory never does). */
static void file_setup(void)
{
    snprintf(path, sizeof(path), "/tmp/ember-gm-file-XXXXXX");
    fd = mkostemp(path, O_CLOEXEC);
    cr_assert_geq(fd, 0);
}

static void file_teardown(void)
{
    if (fd >= 0)
        close(fd);
    unlink(path);
}

static void put_u64(uint64_t off, uint64_t v) { cr_assert_eq(pwrite(fd, &v, 8, (off_t)off), 8); }

static uint64_t file_u64(uint64_t off)
{
    uint64_t v;
    cr_assert_eq(pread(fd, &v, 8, (off_t)off), 8);
    return v;
}

static uint64_t mem_u64(const struct guest_mem *m, uint64_t gpa)
{
    uint64_t v;
    cr_assert_eq(gm_read(m, gpa, &v, 8), 0, "gpa %#llx", (unsigned long long)gpa);
    return v;
}

TestSuite(guest_mem_file, .init = file_setup, .fini = file_teardown);

/* Reads see the file; writes stay in the process: the file is never written. */
Test(guest_mem_file, private_mapping)
{
    uint8_t *pattern = malloc(2 * MiB);
    cr_assert_not_null(pattern);
    for (uint64_t i = 0; i < 2 * MiB; i++)
        pattern[i] = (uint8_t)(i * 7 + (i >> 12));
    cr_assert_eq(pwrite(fd, pattern, 2 * MiB, 0), (ssize_t)(2 * MiB));
    struct guest_mem m;
    cr_assert_eq(guest_mem_init_file(&m, 2 * MiB, fd), 0);
    cr_assert_eq(m.total, 2 * MiB);
    cr_assert(m.file_backed);
    cr_assert_eq(m.nr_regions, 1);
    cr_assert_eq(memcmp(gm_ptr(&m, 0, 2 * MiB), pattern, 2 * MiB), 0, "guest memory differs from the file");
    const uint64_t v = 0x0123456789abcdefULL;
    cr_assert_eq(gm_write(&m, PAGE + 8, &v, 8), 0);
    memset(gm_ptr(&m, 100 * PAGE, PAGE), 0xee, PAGE);
    cr_assert_eq(mem_u64(&m, PAGE + 8), v);
    /* The file still holds the pattern, through the fd and through a fresh read-only mapping. */
    uint8_t *now = malloc(2 * MiB);
    cr_assert_not_null(now);
    cr_assert_eq(pread(fd, now, 2 * MiB, 0), (ssize_t)(2 * MiB));
    cr_assert_eq(memcmp(now, pattern, 2 * MiB), 0, "a write to guest memory reached the file");
    struct guest_mem again;
    cr_assert_eq(guest_mem_init_file(&again, 2 * MiB, fd), 0);
    cr_assert_eq(memcmp(gm_ptr(&again, 0, 2 * MiB), pattern, 2 * MiB), 0, "another VM sees the first one's writes");
    guest_mem_free(&again);
    guest_mem_free(&m);
    free(now);
    free(pattern);
}

/* Above the 32-bit gap: region 1 (at 4 GiB) maps the file where region 0 ends (3 GiB), and the fd may close. */
Test(guest_mem_file, regions_at_cumulative_offsets)
{
    const uint64_t ram = 3 * GiB + GiB / 2;
    cr_assert_eq(ftruncate(fd, (off_t)ram), 0); /* sparse */
    put_u64(0, 0x1111);
    put_u64(MMIO_GAP_START - 8, 0x2222);
    put_u64(MMIO_GAP_START, 0x3333);
    put_u64(ram - 8, 0x4444);
    struct guest_mem m;
    cr_assert_eq(guest_mem_init_file(&m, ram, fd), 0);
    close(fd);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    cr_assert_geq(fd, 0);
    cr_assert_eq(m.nr_regions, 2);
    cr_assert_eq(m.regions[1].gpa, MMIO_GAP_END);
    cr_assert_eq(m.regions[1].size, ram - MMIO_GAP_START);
    cr_assert_eq(mem_u64(&m, 0), 0x1111);
    cr_assert_eq(mem_u64(&m, MMIO_GAP_START - 8), 0x2222);
    cr_assert_eq(mem_u64(&m, MMIO_GAP_END), 0x3333);
    cr_assert_eq(mem_u64(&m, MMIO_GAP_END + (ram - MMIO_GAP_START) - 8), 0x4444);
    cr_assert_eq(mem_u64(&m, MMIO_GAP_END + 8), 0, "a hole reads as zeros");
    cr_assert_null(gm_ptr(&m, MMIO_GAP_START, 1), "the gap is not RAM");
    /* Private here too. */
    const uint64_t v = 0x5555;
    cr_assert_eq(gm_write(&m, MMIO_GAP_END, &v, 8), 0);
    cr_assert_eq(file_u64(MMIO_GAP_START), 0x3333);
    guest_mem_free(&m);
}

/* A page dropped from a file mapping would read the file again: gm_zero must write zeros. */
Test(guest_mem_file, zero_really_zeroes)
{
    uint8_t *ab = malloc(16 * PAGE);
    cr_assert_not_null(ab);
    memset(ab, 0xab, 16 * PAGE);
    cr_assert_eq(pwrite(fd, ab, 16 * PAGE, 0), (ssize_t)(16 * PAGE));
    struct guest_mem m;
    cr_assert_eq(guest_mem_init_file(&m, 16 * PAGE, fd), 0);
    const uint8_t *h = gm_ptr(&m, 0, 16 * PAGE);
    uint8_t first = h[PAGE]; /* fault the pages in from the file first */
    cr_assert_eq(first, 0xab);
    uint64_t start = 2 * PAGE, len = 4 * PAGE; /* whole pages: what gm_zero would madvise on anonymous memory */
    cr_assert_eq(gm_zero(&m, start, len), 0);
    uint64_t ustart = 8 * PAGE + 100, ulen = 3 * PAGE + 17; /* and unaligned */
    cr_assert_eq(gm_zero(&m, ustart, ulen), 0);
    for (uint64_t i = 0; i < 16 * PAGE; i++) {
        bool zero = (i >= start && i < start + len) || (i >= ustart && i < ustart + ulen);
        cr_assert_eq(h[i], zero ? 0 : 0xab, "byte %#llx", (unsigned long long)i);
    }
    uint8_t *file = malloc(16 * PAGE);
    cr_assert_not_null(file);
    cr_assert_eq(pread(fd, file, 16 * PAGE, 0), (ssize_t)(16 * PAGE));
    cr_assert_eq(memcmp(file, ab, 16 * PAGE), 0, "gm_zero reached the file");
    guest_mem_free(&m);
    free(file);
    free(ab);
}

/* ---- dirty tracking ---- */

#define PAGES 200 /* four words of bitmap, the last one partial */
static uint8_t *backing;
static struct guest_mem gm;

static void tracked_setup(void)
{
    backing = calloc(PAGES, PAGE);
    cr_assert_not_null(backing);
    cr_assert_eq(guest_mem_init_with(&gm, PAGES * PAGE, backing), 0);
    cr_assert_eq(guest_mem_track_dirty(&gm), 0);
}

static void tracked_teardown(void)
{
    guest_mem_free(&gm);
    free(backing);
}

static bool bit(const uint64_t *map, uint64_t p) { return (map[p / 64] >> (p % 64)) & 1; }

/* The pages of region 0 taken now are exactly those in want (a list ending with -1). */
static void expect_taken(const char *what, const int *want)
{
    uint64_t map[4] = {0};
    cr_assert_eq(gm_dirty_words(&gm, 0), 4);
    gm_take_dirty(&gm, 0, map);
    for (int p = 0; p < PAGES; p++) {
        bool wanted = false;
        for (const int *w = want; *w >= 0; w++)
            wanted |= *w == p;
        cr_expect_eq(bit(map, (uint64_t)p), wanted, "%s: page %d %s", what, p, wanted ? "not marked" : "marked");
    }
    for (int p = PAGES; p < 256; p++)
        cr_expect_not(bit(map, (uint64_t)p), "%s: bit %d past the region", what, p);
}

TestSuite(guest_mem_dirty, .init = tracked_setup, .fini = tracked_teardown);

Test(guest_mem_dirty, marks_exactly_the_pages_handed_out)
{
    expect_taken("nothing touched", (const int[]){-1});
    cr_assert_not_null(gm_ptr(&gm, 5 * PAGE, PAGE)); /* one whole page: not its neighbour */
    expect_taken("one page", (const int[]){5, -1});
    cr_assert_not_null(gm_ptr(&gm, 7 * PAGE + PAGE - 1, 2));  /* two bytes across a boundary */
    cr_assert_not_null(gm_ptr(&gm, 20 * PAGE + 8, 3 * PAGE)); /* three pages' worth over four */
    expect_taken("across boundaries", (const int[]){7, 8, 20, 21, 22, 23, -1});
    cr_assert_not_null(gm_ptr(&gm, 63 * PAGE + 4000, 200));    /* across a bitmap word */
    cr_assert_not_null(gm_ptr(&gm, (PAGES - 1) * PAGE, PAGE)); /* the last page, in the partial word */
    expect_taken("word boundary and last page", (const int[]){63, 64, PAGES - 1, -1});
    /* len 0: no byte can be written, but the pointer could be; the page of gpa counts (an over-approximation). */
    cr_assert_not_null(gm_ptr(&gm, 30 * PAGE + 5, 0));
    expect_taken("len 0", (const int[]){30, -1});
    /* Refused ranges hand out nothing and mark nothing. */
    cr_assert_null(gm_ptr(&gm, (PAGES - 1) * PAGE + 1, PAGE));
    cr_assert_null(gm_ptr(&gm, PAGES * PAGE, 0));
    cr_assert_null(gm_ptr(&gm, UINT64_MAX, 2));
    expect_taken("refused ranges", (const int[]){-1});
}

/* Every accessor goes through gm_ptr: reads count too (a device may write through any pointer it got). */
Test(guest_mem_dirty, accessors_mark)
{
    uint8_t buf[3 * PAGE] = {1};
    cr_assert_eq(gm_write(&gm, 10 * PAGE, buf, sizeof(buf)), 0);
    cr_assert_eq(gm_read(&gm, 40 * PAGE + 1, buf, 10), 0);
    cr_assert_eq(gm_zero(&gm, 50 * PAGE, 2 * PAGE), 0);
    cr_assert_eq(gm_write(&gm, PAGES * PAGE - 4, buf, 8), -EFAULT);
    expect_taken("gm_write, gm_read, gm_zero", (const int[]){10, 11, 12, 40, 50, 51, -1});
}

/* gm_take_dirty ORs into what the caller has (KVM's log) and starts over. */
Test(guest_mem_dirty, take_ors_and_clears)
{
    cr_assert_not_null(gm_ptr(&gm, 3 * PAGE, 1));
    cr_assert_not_null(gm_ptr(&gm, 130 * PAGE, 1));
    uint64_t map[4] = {1ULL << 9, 0, 1ULL << 2, 0}; /* pages 9 and 130 already there */
    gm_take_dirty(&gm, 0, map);
    cr_expect_eq(map[0], (1ULL << 9) | (1ULL << 3));
    cr_expect_eq(map[1], 0);
    cr_expect_eq(map[2], 1ULL << 2);
    cr_expect_eq(map[3], 0);
    uint64_t again[4] = {0};
    gm_take_dirty(&gm, 0, again);
    cr_expect_eq(again[0] | again[1] | again[2] | again[3], 0, "the first take did not clear the bitmap");
    /* Tracking again keeps the bitmap (and what it holds). */
    cr_assert_not_null(gm_ptr(&gm, 4 * PAGE, 1));
    cr_assert_eq(guest_mem_track_dirty(&gm), 0);
    expect_taken("after a second guest_mem_track_dirty", (const int[]){4, -1});
}

/* What a failed snapshot took goes back (gm_return_dirty) and merges with pages marked since. */
Test(guest_mem_dirty, returned_pages_are_dirty_again)
{
    cr_assert_not_null(gm_ptr(&gm, 6 * PAGE, 1));
    uint64_t taken[4] = {1ULL << 1}; /* page 1 came from KVM's log */
    gm_take_dirty(&gm, 0, taken);
    cr_assert_not_null(gm_ptr(&gm, 70 * PAGE, 1)); /* written while the snapshot was being made */
    gm_return_dirty(&gm, 0, taken);
    expect_taken("returned and new", (const int[]){1, 6, 70, -1});
}

Test(guest_mem_dirty, nothing_tracked_when_off)
{
    struct guest_mem off;
    cr_assert_eq(guest_mem_init_with(&off, PAGES * PAGE, backing), 0);
    cr_assert_not_null(gm_ptr(&off, 0, PAGES * PAGE));
    cr_assert_eq(gm_zero(&off, PAGE, PAGE), 0);
    uint64_t map[4] = {0xf0, 0, 0, 1};
    gm_take_dirty(&off, 0, map);
    cr_expect_eq(map[0], 0xf0);
    cr_expect_eq(map[1] | map[2], 0);
    cr_expect_eq(map[3], 1);
    guest_mem_free(&off);
}

/* Two regions: each has its own bitmap, indexed from its own start. */
Test(guest_mem_dirty, high_region_has_its_own_bitmap)
{
    const uint64_t ram = MMIO_GAP_START + 64 * MiB;
    uint8_t *big = mmap(NULL, ram, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    cr_assert_neq(big, MAP_FAILED);
    struct guest_mem m;
    cr_assert_eq(guest_mem_init_with(&m, ram, big), 0);
    cr_assert_eq(guest_mem_track_dirty(&m), 0);
    cr_assert_eq(gm_dirty_words(&m, 0), MMIO_GAP_START / PAGE / 64);
    cr_assert_eq(gm_dirty_words(&m, 1), 64 * MiB / PAGE / 64);
    cr_assert_not_null(gm_ptr(&m, MMIO_GAP_END + 3 * PAGE, 8));
    cr_assert_not_null(gm_ptr(&m, MMIO_GAP_START - 1, 1));
    uint64_t *lo = calloc(gm_dirty_words(&m, 0), 8), *hi = calloc(gm_dirty_words(&m, 1), 8);
    cr_assert(lo && hi);
    gm_take_dirty(&m, 0, lo);
    gm_take_dirty(&m, 1, hi);
    uint64_t nlo = 0, nhi = 0;
    for (size_t w = 0; w < gm_dirty_words(&m, 0); w++)
        nlo += (uint64_t)__builtin_popcountll(lo[w]);
    for (size_t w = 0; w < gm_dirty_words(&m, 1); w++)
        nhi += (uint64_t)__builtin_popcountll(hi[w]);
    cr_expect_eq(nlo, 1);
    cr_expect(bit(lo, MMIO_GAP_START / PAGE - 1));
    cr_expect_eq(nhi, 1);
    cr_expect(bit(hi, 3));
    free(lo);
    free(hi);
    guest_mem_free(&m);
    munmap(big, ram);
}
