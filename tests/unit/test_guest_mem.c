/* guest_mem: RAM layout around the MMIO gap and the checked accessor gm_ptr. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core/guest_mem.h"

#define MiB (1ULL << 20)
#define GiB (1ULL << 30)

/* 64 KiB of RAM on a malloc'd buffer, so ASan sees any access past it. */
#define SMALL (64 * 1024ULL)
static uint8_t *backing;
static struct guest_mem gm;

static void small_setup(void)
{
    backing = malloc(SMALL);
    cr_assert_not_null(backing);
    for (uint64_t i = 0; i < SMALL; i++)
        backing[i] = (uint8_t)i;
    cr_assert_eq(guest_mem_init_with(&gm, SMALL, backing), 0);
}

static void small_teardown(void)
{
    guest_mem_free(&gm);
    free(backing);
}

Test(guest_mem_layout, below_gap_is_one_region)
{
    struct guest_region r[GUEST_MEM_MAX_REGIONS];
    int nr = -1;
    cr_assert_eq(guest_mem_layout(128 * MiB, r, &nr), 0);
    cr_assert_eq(nr, 1);
    cr_assert_eq(r[0].gpa, 0);
    cr_assert_eq(r[0].size, 128 * MiB);
}

Test(guest_mem_layout, exactly_gap_start_is_one_region)
{
    struct guest_region r[GUEST_MEM_MAX_REGIONS];
    int nr = -1;
    cr_assert_eq(guest_mem_layout(MMIO_GAP_START, r, &nr), 0);
    cr_assert_eq(nr, 1);
    cr_assert_eq(r[0].size, MMIO_GAP_START);
}

Test(guest_mem_layout, above_gap_splits_at_3g_and_resumes_at_4g)
{
    struct guest_region r[GUEST_MEM_MAX_REGIONS];
    int nr = -1;
    cr_assert_eq(guest_mem_layout(6 * GiB, r, &nr), 0);
    cr_assert_eq(nr, 2);
    cr_assert_eq(r[0].gpa, 0);
    cr_assert_eq(r[0].size, 3 * GiB);
    cr_assert_eq(r[1].gpa, MMIO_GAP_END);
    cr_assert_eq(r[1].size, 3 * GiB);
    cr_assert_null(r[1].host, "layout must not map anything");
}

Test(guest_mem_layout, one_page_above_gap)
{
    struct guest_region r[GUEST_MEM_MAX_REGIONS];
    int nr = -1;
    cr_assert_eq(guest_mem_layout(MMIO_GAP_START + 0x1000, r, &nr), 0);
    cr_assert_eq(nr, 2);
    cr_assert_eq(r[1].gpa, 4 * GiB);
    cr_assert_eq(r[1].size, 0x1000);
}

Test(guest_mem_layout, zero_and_unaligned_refused)
{
    struct guest_region r[GUEST_MEM_MAX_REGIONS];
    int nr;
    cr_assert_eq(guest_mem_layout(0, r, &nr), -EINVAL);
    cr_assert_eq(guest_mem_layout(0x1001, r, &nr), -EINVAL);
    cr_assert_eq(guest_mem_layout(4 * MiB + 1, r, &nr), -EINVAL);
}

Test(guest_mem_init, mmap_backed_small_ram_is_usable)
{
    struct guest_mem m;
    cr_assert_eq(guest_mem_init(&m, 2 * MiB), 0);
    cr_assert_eq(m.nr_regions, 1);
    cr_assert_eq(m.total, 2 * MiB);
    cr_assert_eq(gm_low_end(&m), 2 * MiB);
    uint32_t v = 0xdeadbeef, back = 0;
    cr_assert_eq(gm_write(&m, 2 * MiB - 4, &v, 4), 0);
    cr_assert_eq(gm_read(&m, 2 * MiB - 4, &back, 4), 0);
    cr_assert_eq(back, 0xdeadbeef);
    guest_mem_free(&m);
    cr_assert_eq(m.nr_regions, 0);
    cr_assert_eq(gm_low_end(&m), 0);
}

Test(guest_mem_init, bad_size_refused)
{
    struct guest_mem m;
    cr_assert_eq(guest_mem_init(&m, 0), -EINVAL);
    cr_assert_eq(guest_mem_init(&m, 4097), -EINVAL);
}

Test(gm_ptr, in_range, .init = small_setup, .fini = small_teardown)
{
    cr_assert_eq(gm_ptr(&gm, 0, 1), backing);
    cr_assert_eq(gm_ptr(&gm, 0x1234, 16), backing + 0x1234);
    cr_assert_eq(gm_ptr(&gm, 0, SMALL), backing, "whole RAM in one access");
}

Test(gm_ptr, last_byte_and_one_past, .init = small_setup, .fini = small_teardown)
{
    cr_assert_eq(gm_ptr(&gm, SMALL - 1, 1), backing + SMALL - 1);
    cr_assert_null(gm_ptr(&gm, SMALL, 1), "one past the end");
    cr_assert_null(gm_ptr(&gm, SMALL - 1, 2), "straddles the end");
    cr_assert_null(gm_ptr(&gm, 0, SMALL + 1), "one byte too long");
}

Test(gm_ptr, len_zero, .init = small_setup, .fini = small_teardown)
{
    cr_assert_eq(gm_ptr(&gm, 0x100, 0), backing + 0x100);
    cr_assert_eq(gm_ptr(&gm, SMALL - 1, 0), backing + SMALL - 1);
    cr_assert_null(gm_ptr(&gm, SMALL, 0), "len 0 still needs an in-range gpa");
}

Test(gm_ptr, wraparound_refused, .init = small_setup, .fini = small_teardown)
{
    cr_assert_null(gm_ptr(&gm, UINT64_MAX, 1));
    cr_assert_null(gm_ptr(&gm, UINT64_MAX, 2), "gpa+len wraps to 0");
    cr_assert_null(gm_ptr(&gm, UINT64_MAX - 0xf, 0x20), "gpa+len wraps into RAM");
    cr_assert_null(gm_ptr(&gm, 0x10, UINT64_MAX), "huge len");
    cr_assert_null(gm_ptr(&gm, 0x10, UINT64_MAX - 0xf), "len wraps gpa+len to 0");
    cr_assert_null(gm_ptr(&gm, 1, UINT64_MAX));
}

Test(gm_ptr, mmio_gap_and_high_ram)
{
    /* 3 GiB + 8 KiB, anonymously mapped with MAP_NORESERVE: only touched pages cost. */
    struct guest_mem m;
    cr_assert_eq(guest_mem_init(&m, MMIO_GAP_START + 0x2000), 0);
    cr_assert_eq(m.nr_regions, 2);
    uint8_t *low = m.regions[0].host, *high = m.regions[1].host;

    cr_assert_eq(gm_ptr(&m, MMIO_GAP_START - 1, 1), low + MMIO_GAP_START - 1);
    cr_assert_null(gm_ptr(&m, MMIO_GAP_START - 1, 2), "low RAM into the gap");
    cr_assert_null(gm_ptr(&m, MMIO_GAP_START, 1), "start of the gap");
    cr_assert_null(gm_ptr(&m, 0xFEE00000ULL, 4), "LAPIC in the gap");
    cr_assert_null(gm_ptr(&m, MMIO_GAP_END - 1, 1), "last gap byte");
    cr_assert_null(gm_ptr(&m, MMIO_GAP_END - 1, 2), "gap into high RAM");
    cr_assert_eq(gm_ptr(&m, MMIO_GAP_END, 1), high);
    cr_assert_eq(gm_ptr(&m, MMIO_GAP_END + 0x1fff, 1), high + 0x1fff);
    cr_assert_null(gm_ptr(&m, MMIO_GAP_END + 0x2000, 1), "past high RAM");
    cr_assert_null(gm_ptr(&m, 0, MMIO_GAP_END + 1), "low to high across the gap");
    cr_assert_eq(gm_low_end(&m), MMIO_GAP_START);

    uint64_t v = 0x1122334455667788ULL, back = 0;
    cr_assert_eq(gm_write(&m, MMIO_GAP_END + 0x1ff8, &v, 8), 0);
    cr_assert_eq(gm_read(&m, MMIO_GAP_END + 0x1ff8, &back, 8), 0);
    cr_assert_eq(back, v);
    cr_assert_eq(gm_write(&m, MMIO_GAP_START - 4, &v, 8), -EFAULT);
    guest_mem_free(&m);
}

Test(guest_mem_init, init_with_puts_high_region_after_low_in_backing)
{
    uint64_t bytes = MMIO_GAP_START + 0x1000;
    uint8_t *buf = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    cr_assert_neq(buf, MAP_FAILED);
    struct guest_mem m;
    cr_assert_eq(guest_mem_init_with(&m, bytes, buf), 0);
    cr_assert_eq(m.nr_regions, 2);
    cr_assert_eq(m.regions[0].host, buf);
    cr_assert_eq(m.regions[1].host, buf + MMIO_GAP_START);
    cr_assert_eq(gm_ptr(&m, MMIO_GAP_END + 0xfff, 1), buf + bytes - 1);
    guest_mem_free(&m); /* must not munmap caller memory */
    cr_assert_eq(m.nr_regions, 0);
    buf[bytes - 1] = 1; /* still mapped: would SIGSEGV if guest_mem_free had unmapped it */
    munmap(buf, bytes);
}

Test(gm_rw, copies_and_faults, .init = small_setup, .fini = small_teardown)
{
    uint8_t buf[8];
    cr_assert_eq(gm_read(&gm, 0x10, buf, sizeof(buf)), 0);
    for (int i = 0; i < 8; i++)
        cr_assert_eq(buf[i], (uint8_t)(0x10 + i));

    const uint8_t pattern[4] = {0xaa, 0xbb, 0xcc, 0xdd};
    cr_assert_eq(gm_write(&gm, SMALL - 4, pattern, 4), 0);
    cr_assert_eq(memcmp(backing + SMALL - 4, pattern, 4), 0);

    memset(buf, 0x5a, sizeof(buf));
    cr_assert_eq(gm_read(&gm, SMALL - 4, buf, 8), -EFAULT);
    cr_assert_eq(buf[0], 0x5a, "nothing copied on a fault");
    cr_assert_eq(gm_write(&gm, SMALL - 3, pattern, 4), -EFAULT);
    cr_assert_eq(backing[SMALL - 3], 0xbb, "nothing written on a fault");
    cr_assert_eq(gm_read(&gm, UINT64_MAX, buf, 1), -EFAULT);
    cr_assert_eq(gm_write(&gm, UINT64_MAX - 1, pattern, 4), -EFAULT);
    cr_assert_eq(gm_read(&gm, 0, buf, 0), 0, "len 0 in range");
}

/* gm_zero on memory guest_mem_init mapped: whole pages dropped, edges written, neighbours kept. */
Test(gm_zero, zeroes_range_keeps_neighbours_on_own_mapping)
{
    struct guest_mem own;
    cr_assert_eq(guest_mem_init(&own, 2 * MiB), 0);
    uint8_t *h = gm_ptr(&own, 0, 2 * MiB);
    cr_assert_not_null(h);
    memset(h, 0xab, 2 * MiB);
    uint64_t start = 4096 * 3 + 100, len = 4096 * 5 + 17; /* unaligned both ends, spans whole pages */
    cr_assert_eq(gm_zero(&own, start, len), 0);
    for (uint64_t i = start - 200; i < start + len + 200; i++)
        cr_assert_eq(h[i], (i >= start && i < start + len) ? 0 : 0xab, "byte %llu", (unsigned long long)i);
    cr_assert_eq(gm_zero(&own, 2 * MiB - 10, 20), -EFAULT);
    cr_assert_eq(h[2 * MiB - 1], 0xab, "a refused range writes nothing");
    cr_assert_eq(gm_zero(&own, 10, 20), 0, "within one page: plain memset");
    cr_assert_eq(h[9], 0xab);
    cr_assert_eq(h[10], 0);
    cr_assert_eq(h[29], 0);
    cr_assert_eq(h[30], 0xab);
    guest_mem_free(&own);
}

/* On memory the caller owns (guest_mem_init_with) it must write, never madvise. */
Test(gm_zero, external_backing_is_written, .init = small_setup, .fini = small_teardown)
{
    memset(backing, 0x5a, SMALL);
    cr_assert_eq(gm_zero(&gm, 4096, 3 * 4096), 0);
    cr_assert_eq(backing[4095], 0x5a);
    for (unsigned i = 4096; i < 4 * 4096; i++)
        cr_assert_eq(backing[i], 0);
    cr_assert_eq(backing[4 * 4096], 0x5a);
    cr_assert_eq(gm_zero(&gm, SMALL - 1, 2), -EFAULT);
}
