/* guest_walk: 4-level page-table walks over tables built in guest memory. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "interp/guest_walk.h"

#define RAM (4ULL << 20)
#define P 0x1ULL
#define RW 0x2ULL
#define PS 0x80ULL
#define PAT_LARGE 0x1000ULL /* PAT bit of a large-page entry: not an address bit */

/* Table locations (guest-physical). */
#define PML4 0x1000ULL
#define PDPT_LO 0x2000ULL
#define PD_LO 0x3000ULL
#define PT_LO 0x4000ULL
#define PDPT_HI 0x6000ULL

static uint8_t *backing;
static struct guest_mem gm;
static struct kvm_sregs sregs;

static void set_entry(uint64_t table, unsigned idx, uint64_t val) { memcpy(backing + table + idx * 8, &val, 8); }

/*
 * Mappings:
 *   0x10000 (4K) -> 0x30000, 0x11000 (4K) -> 0x25000 (lower, not contiguous), 0x12000 not present
 *   0xa00000 (2M) -> 0x200000
 *   0x40000000 (1G) -> 0xc0000000 (outside RAM: translation does not care)
 *   0xffffffff80000000 (1G) -> 0
 *   0x600000: PD entry pointing at a page table outside RAM
 */
static void setup(void)
{
    backing = calloc(1, RAM);
    cr_assert_not_null(backing);
    cr_assert_eq(guest_mem_init_with(&gm, RAM, backing), 0);
    set_entry(PML4, 0, PDPT_LO | P | RW);
    set_entry(PML4, 511, PDPT_HI | P | RW);
    set_entry(PDPT_LO, 0, PD_LO | P | RW);
    set_entry(PDPT_LO, 1, 0xc0000000ULL | PAT_LARGE | P | RW | PS);
    set_entry(PDPT_HI, 510, 0 | P | RW | PS);
    set_entry(PD_LO, 0, PT_LO | P | RW);
    set_entry(PD_LO, 3, 0x10000000ULL | P | RW);
    set_entry(PD_LO, 5, 0x200000ULL | PAT_LARGE | P | RW | PS);
    set_entry(PT_LO, 0x10, 0x30000 | P | RW);
    set_entry(PT_LO, 0x11, 0x25000 | P | RW | 0x8000000000000000ULL /* NX */);
    set_entry(PT_LO, 0x12, 0x26000 | RW); /* not present */

    memset(&sregs, 0, sizeof(sregs));
    sregs.cr0 = 0x80000001ULL; /* PG | PE */
    sregs.cr4 = 0x20;          /* PAE */
    sregs.efer = 0x500;        /* LME | LMA */
    sregs.cr3 = PML4 | 0x18;   /* PWT | PCD must be ignored */
}

static void teardown(void) { free(backing); }

TestSuite(walk, .init = setup, .fini = teardown);

static uint64_t xlate(uint64_t lin)
{
    uint64_t gpa = 0xdeadbeef;
    int rc = guest_translate(&gm, &sregs, lin, &gpa);
    cr_assert_eq(rc, 0, "translate %#llx: rc %d", (unsigned long long)lin, rc);
    return gpa;
}

static void expect_fault(uint64_t lin)
{
    uint64_t gpa;
    cr_assert_eq(guest_translate(&gm, &sregs, lin, &gpa), -EFAULT, "%#llx should not translate",
                 (unsigned long long)lin);
}

Test(walk, four_kib_pages)
{
    cr_assert_eq(xlate(0x10000), 0x30000);
    cr_assert_eq(xlate(0x10abc), 0x30abc);
    cr_assert_eq(xlate(0x10fff), 0x30fff);
    cr_assert_eq(xlate(0x11000), 0x25000, "NX bit is not an address bit");
    cr_assert_eq(xlate(0x11123), 0x25123);
}

Test(walk, two_mib_page)
{
    cr_assert_eq(xlate(0xa00000), 0x200000);
    cr_assert_eq(xlate(0xa01234), 0x201234, "PAT bit is not an address bit");
    cr_assert_eq(xlate(0xbfffff), 0x3fffff);
}

Test(walk, one_gib_page)
{
    cr_assert_eq(xlate(0x40000000), 0xc0000000ULL);
    cr_assert_eq(xlate(0x40123456), 0xc0123456ULL, "PAT bit is not an address bit");
    cr_assert_eq(xlate(0x7fffffff), 0xffffffffULL);
}

Test(walk, higher_half)
{
    cr_assert_eq(xlate(0xffffffff80000000ULL), 0);
    cr_assert_eq(xlate(0xffffffff81000000ULL), 0x1000000);
    expect_fault(0xffffffff00000000ULL); /* PDPT_HI[508] */
}

Test(walk, non_present_entries_fault)
{
    expect_fault(0x12000);               /* PTE */
    expect_fault(0x13000);               /* zero PTE */
    expect_fault(0x400000);              /* PDE */
    expect_fault(0x80000000ULL);         /* PDPTE */
    expect_fault(0x8000000000ULL);       /* PML4E */
    expect_fault(0xffff800000000000ULL); /* PML4[256] */
    expect_fault(0x600000);              /* page table outside guest RAM */
}

Test(walk, table_outside_ram_faults)
{
    sregs.cr3 = RAM; /* PML4 itself past the end of RAM */
    expect_fault(0);
}

Test(walk, paging_off_is_identity)
{
    sregs.cr0 = 0x1;
    sregs.efer = 0;
    cr_assert_eq(xlate(0x12345678), 0x12345678);
    cr_assert_eq(xlate(0x10000), 0x10000, "tables are ignored");
    cr_assert_eq(xlate(0x100001000ULL), 0x1000, "32-bit linear addresses");
}

Test(walk, legacy_paging_not_supported)
{
    sregs.efer = 0;
    uint64_t gpa;
    cr_assert_eq(guest_translate(&gm, &sregs, 0x10000, &gpa), -EOPNOTSUPP);
}

Test(walk, read_linear_across_page_boundary)
{
    for (int i = 0; i < 8; i++) {
        backing[0x30ff8 + i] = (uint8_t)(0xa0 + i);
        backing[0x25000 + i] = (uint8_t)(0xb0 + i);
    }
    backing[0x31000] = 0xee; /* what a contiguous (wrong) read would get */
    uint8_t buf[16];
    cr_assert_eq(guest_read_linear(&gm, &sregs, 0x10ff8, buf, sizeof(buf)), 0);
    for (int i = 0; i < 8; i++) {
        cr_assert_eq(buf[i], 0xa0 + i, "byte %d", i);
        cr_assert_eq(buf[8 + i], 0xb0 + i, "byte %d", 8 + i);
    }
}

Test(walk, read_linear_within_page_and_empty)
{
    memcpy(backing + 0x30100, "hello", 5);
    char buf[6] = {0};
    cr_assert_eq(guest_read_linear(&gm, &sregs, 0x10100, buf, 5), 0);
    cr_assert_str_eq(buf, "hello");
    cr_assert_eq(guest_read_linear(&gm, &sregs, 0x12000, buf, 0), 0, "len 0 reads nothing");
}

Test(walk, read_linear_faults_in_second_page)
{
    uint8_t buf[16];
    cr_assert_eq(guest_read_linear(&gm, &sregs, 0x11ff8, buf, sizeof(buf)), -EFAULT);
    cr_assert_eq(guest_read_linear(&gm, &sregs, 0x40000000, buf, 4), -EFAULT, "maps to 3 GiB: not RAM");
}

Test(walk, read_linear_paging_off)
{
    sregs.cr0 = 0x1;
    sregs.efer = 0;
    memcpy(backing + RAM - 4, "tail", 4);
    char buf[5] = {0};
    cr_assert_eq(guest_read_linear(&gm, &sregs, RAM - 4, buf, 4), 0);
    cr_assert_str_eq(buf, "tail");
    cr_assert_eq(guest_read_linear(&gm, &sregs, RAM - 4, buf, 5), -EFAULT);
}
