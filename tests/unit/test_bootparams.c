/* bootparams: e820 map, Linux zero page, PVH hvm_start_info. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "x86/bootparams.h"
#include "x86/layout.h"

#define MiB (1ULL << 20)
#define GiB (1ULL << 30)

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p) { return rd16(p) | (uint32_t)rd16(p + 2) << 16; }
static uint64_t rd64(const uint8_t *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }

/* A guest_mem with only a layout: e820_build never touches guest memory. */
static struct guest_mem layout_only(uint64_t bytes)
{
    struct guest_mem m = {0};
    cr_assert_eq(guest_mem_layout(bytes, m.regions, &m.nr_regions), 0);
    return m;
}

static void expect_entry(const struct e820_entry *e, uint64_t addr, uint64_t size, uint32_t type)
{
    cr_assert_eq(e->addr, addr, "addr %#llx want %#llx", (unsigned long long)e->addr, (unsigned long long)addr);
    cr_assert_eq(e->size, size, "size %#llx want %#llx", (unsigned long long)e->size, (unsigned long long)size);
    cr_assert_eq(e->type, type);
}

Test(e820, ram_128m)
{
    struct guest_mem m = layout_only(128 * MiB);
    struct e820_entry e[E820_MAX];
    cr_assert_eq(e820_build(&m, e, E820_MAX), 3);
    expect_entry(&e[0], 0, 0x9fc00, E820_RAM);
    expect_entry(&e[1], 0x9fc00, 0x100000 - 0x9fc00, E820_RESERVED);
    expect_entry(&e[2], 0x100000, 128 * MiB - 0x100000, E820_RAM);
}

Test(e820, ram_above_3g)
{
    struct guest_mem m = layout_only(5 * GiB);
    struct e820_entry e[E820_MAX];
    cr_assert_eq(e820_build(&m, e, E820_MAX), 4);
    expect_entry(&e[0], 0, 0x9fc00, E820_RAM);
    expect_entry(&e[1], 0x9fc00, 0x60400, E820_RESERVED);
    expect_entry(&e[2], 0x100000, 3 * GiB - 0x100000, E820_RAM);
    expect_entry(&e[3], 4 * GiB, 2 * GiB, E820_RAM);
}

Test(e820, refusals)
{
    struct e820_entry e[E820_MAX];
    struct guest_mem m = layout_only(128 * MiB);
    cr_assert_eq(e820_build(&m, e, 3), -ENOSPC, "room for the worst case is required");
    cr_assert_eq(e820_build(&m, e, 4), 3);
    struct guest_mem tiny = layout_only(MiB);
    cr_assert_eq(e820_build(&tiny, e, E820_MAX), -EINVAL, "no RAM above 1 MiB");
    struct guest_mem none = {0};
    cr_assert_eq(e820_build(&none, e, E820_MAX), -EINVAL);
}

static const struct e820_entry sample_e820[] = {
    {0, 0x9fc00, E820_RAM},
    {0x9fc00, 0x60400, E820_RESERVED},
    {0x100000, 0x7f00000, E820_RAM},
    {0x100000000ULL, 0x180000000ULL, E820_RAM},
};

static const struct boot_info sample_bi = {
    .cmdline_gpa = CMDLINE_GPA,
    .cmdline_len = 42,
    .initrd_gpa = 0x7e00000,
    .initrd_size = 0x123456,
};

Test(zero_page, elf_kernel_fields)
{
    uint8_t zp[ZP_SIZE];
    memset(zp, 0xee, sizeof(zp));
    struct kernel_image k = {.proto = BOOT_LINUX64, .entry = 0x1000000};
    cr_assert_eq(zero_page_build(zp, &k, &sample_bi, sample_e820, 4), 0);

    cr_assert_eq(rd16(zp + 0x1fe), 0xaa55, "boot_flag");
    cr_assert_eq(memcmp(zp + 0x202, "HdrS", 4), 0);
    cr_assert_geq(rd16(zp + 0x206), 0x020c, "version");
    cr_assert_eq(zp[0x210], 0xff, "type_of_loader");
    cr_assert_eq(zp[0x211] & 0x81, 0x81, "LOADED_HIGH | CAN_USE_HEAP");
    cr_assert_eq(rd32(zp + 0x228), CMDLINE_GPA, "cmd_line_ptr");
    cr_assert_eq(rd32(zp + 0x0c8), 0, "ext_cmd_line_ptr");
    cr_assert_eq(rd32(zp + 0x238), 42, "cmdline_size");
    cr_assert_eq(rd32(zp + 0x218), 0x7e00000, "ramdisk_image");
    cr_assert_eq(rd32(zp + 0x21c), 0x123456, "ramdisk_size");
    cr_assert_eq(rd32(zp + 0x0c0), 0, "ext_ramdisk_image");
    cr_assert_eq(rd32(zp + 0x0c4), 0, "ext_ramdisk_size");

    cr_assert_eq(zp[0x1e8], 4, "e820_entries");
    for (int i = 0; i < 4; i++) {
        const uint8_t *p = zp + 0x2d0 + 20 * i;
        cr_assert_eq(rd64(p), sample_e820[i].addr, "entry %d addr", i);
        cr_assert_eq(rd64(p + 8), sample_e820[i].size, "entry %d size", i);
        cr_assert_eq(rd32(p + 16), sample_e820[i].type, "entry %d type", i);
    }
    for (size_t i = 0x2d0 + 4 * 20; i < ZP_SIZE; i++)
        cr_assert_eq(zp[i], 0, "byte %#zx past the table not cleared", i);
    cr_assert_eq(zp[0], 0, "zero page starts cleared");
}

Test(zero_page, no_initrd_leaves_ramdisk_zero)
{
    uint8_t zp[ZP_SIZE];
    memset(zp, 0xee, sizeof(zp));
    struct kernel_image k = {.proto = BOOT_LINUX64};
    struct boot_info bi = {.cmdline_gpa = CMDLINE_GPA, .cmdline_len = 3};
    cr_assert_eq(zero_page_build(zp, &k, &bi, sample_e820, 3), 0);
    cr_assert_eq(rd32(zp + 0x218), 0);
    cr_assert_eq(rd32(zp + 0x21c), 0);
    cr_assert_eq(zp[0x1e8], 3);
}

Test(zero_page, high_addresses_use_ext_fields)
{
    uint8_t zp[ZP_SIZE];
    struct kernel_image k = {.proto = BOOT_LINUX64};
    struct boot_info bi = {.cmdline_gpa = 0x123456789ULL,
                           .cmdline_len = 1,
                           .initrd_gpa = 0x200000000ULL + 0x1000,
                           .initrd_size = 0x100000010ULL};
    cr_assert_eq(zero_page_build(zp, &k, &bi, sample_e820, 1), 0);
    cr_assert_eq(rd32(zp + 0x228), 0x23456789);
    cr_assert_eq(rd32(zp + 0x0c8), 0x1);
    cr_assert_eq(rd32(zp + 0x218), 0x1000);
    cr_assert_eq(rd32(zp + 0x0c0), 0x2);
    cr_assert_eq(rd32(zp + 0x21c), 0x10);
    cr_assert_eq(rd32(zp + 0x0c4), 0x1);
}

Test(zero_page, bzimage_header_copied)
{
    struct kernel_image k = {.proto = BOOT_LINUX64, .is_bzimage = 1};
    /* A recognisable header: bytes from 0x1f1 up to 0x26c. */
    k.setup_hdr_len = 0x26c - SETUP_HDR_OFF;
    for (size_t i = 0; i < k.setup_hdr_len; i++)
        k.setup_hdr[i] = (uint8_t)(0x30 + i);
    const size_t flag = 0x1fe - SETUP_HDR_OFF, magic = 0x202 - SETUP_HDR_OFF, ver = 0x206 - SETUP_HDR_OFF;
    k.setup_hdr[flag] = 0x55, k.setup_hdr[flag + 1] = 0xaa;
    memcpy(k.setup_hdr + magic, "HdrS", 4);
    k.setup_hdr[ver] = 0x0f, k.setup_hdr[ver + 1] = 0x02;
    k.setup_hdr[0x211 - SETUP_HDR_OFF] = 0x01;

    uint8_t zp[ZP_SIZE];
    cr_assert_eq(zero_page_build(zp, &k, &sample_bi, sample_e820, 2), 0);
    cr_assert_eq(zp[0x1f1], 0x30, "setup_sects from the kernel's header");
    cr_assert_eq(rd16(zp + 0x1fe), 0xaa55);
    cr_assert_eq(memcmp(zp + 0x202, "HdrS", 4), 0);
    cr_assert_eq(rd16(zp + 0x206), 0x020f);
    cr_assert_eq(zp[0x234], (uint8_t)(0x30 + 0x234 - SETUP_HDR_OFF), "an untouched header byte");
    cr_assert_eq(zp[0x26b], (uint8_t)(0x30 + 0x26b - SETUP_HDR_OFF), "last header byte");
    cr_assert_eq(zp[0x26c], 0, "past the header");
    /* The loader's own fields are written over the kernel's header. */
    cr_assert_eq(zp[0x210], 0xff);
    cr_assert_eq(zp[0x211], 0x81);
    cr_assert_eq(rd32(zp + 0x228), CMDLINE_GPA);
    cr_assert_eq(rd32(zp + 0x218), 0x7e00000);
    cr_assert_eq(zp[0x1e8], 2);
}

Test(zero_page, too_many_entries_refused)
{
    uint8_t zp[ZP_SIZE];
    struct kernel_image k = {.proto = BOOT_LINUX64};
    static struct e820_entry many[E820_MAX + 1];
    cr_assert_eq(zero_page_build(zp, &k, &sample_bi, many, E820_MAX + 1), -EINVAL);
    cr_assert_eq(zero_page_build(zp, &k, &sample_bi, many, -1), -EINVAL);
    cr_assert_eq(zero_page_build(zp, &k, &sample_bi, many, E820_MAX), 0);
    cr_assert_eq(zp[0x1e8], E820_MAX);
}

/* ---- PVH ---- */

#define RAM (2 * MiB)
static uint8_t *backing;
static struct guest_mem gm;

static void pvh_setup(void)
{
    backing = malloc(RAM);
    cr_assert_not_null(backing);
    memset(backing, 0xee, RAM);
    cr_assert_eq(guest_mem_init_with(&gm, RAM, backing), 0);
}

static void pvh_teardown(void) { free(backing); }

TestSuite(pvh, .init = pvh_setup, .fini = pvh_teardown);

Test(pvh, start_info_with_initrd)
{
    cr_assert_eq(pvh_info_write(&gm, &sample_bi, sample_e820, 4), 0);
    const uint8_t *p = backing + PVH_INFO_GPA;
    cr_assert_eq(rd32(p + 0), 0x336ec578, "magic");
    cr_assert_eq(rd32(p + 4), 1, "version");
    cr_assert_eq(rd32(p + 8), 0, "flags");
    cr_assert_eq(rd32(p + 12), 1, "nr_modules");
    uint64_t modlist = rd64(p + 16);
    cr_assert_eq(rd64(p + 24), CMDLINE_GPA, "cmdline_paddr");
    cr_assert_eq(rd64(p + 32), 0, "rsdp_paddr");
    uint64_t memmap = rd64(p + 40);
    cr_assert_eq(rd32(p + 48), 4, "memmap_entries");

    /* Module list and memmap lie in guest memory, after the 56-byte header, not overlapping. */
    cr_assert_geq(modlist, PVH_INFO_GPA + 56);
    cr_assert_geq(memmap, modlist + 32);
    cr_assert_lt(memmap + 4 * 24, ZERO_PAGE_GPA + 1, "stays below the zero page");
    const uint8_t *mod = backing + modlist;
    cr_assert_eq(rd64(mod + 0), 0x7e00000, "module paddr");
    cr_assert_eq(rd64(mod + 8), 0x123456, "module size");
    cr_assert_eq(rd64(mod + 16), 0, "module cmdline");
    for (int i = 0; i < 4; i++) {
        const uint8_t *m = backing + memmap + 24 * i;
        cr_assert_eq(rd64(m), sample_e820[i].addr);
        cr_assert_eq(rd64(m + 8), sample_e820[i].size);
        cr_assert_eq(rd32(m + 16), sample_e820[i].type);
        cr_assert_eq(rd32(m + 20), 0, "reserved");
    }
}

Test(pvh, start_info_without_initrd)
{
    struct boot_info bi = {.cmdline_gpa = CMDLINE_GPA, .cmdline_len = 5};
    cr_assert_eq(pvh_info_write(&gm, &bi, sample_e820, 3), 0);
    const uint8_t *p = backing + PVH_INFO_GPA;
    cr_assert_eq(rd32(p + 0), 0x336ec578);
    cr_assert_eq(rd32(p + 12), 0, "nr_modules");
    cr_assert_eq(rd64(p + 16), 0, "modlist_paddr");
    cr_assert_eq(rd32(p + 48), 3);
}

Test(pvh, refusals)
{
    static struct e820_entry many[200];
    cr_assert_eq(pvh_info_write(&gm, &sample_bi, many, 200), -EINVAL, "more than a page");
    cr_assert_eq(pvh_info_write(&gm, &sample_bi, many, -1), -EINVAL);
    cr_assert_eq(backing[PVH_INFO_GPA], 0xee, "nothing written");

    struct guest_mem small;
    uint8_t tiny[0x6000];
    cr_assert_eq(guest_mem_init_with(&small, sizeof(tiny), tiny), 0);
    cr_assert_eq(pvh_info_write(&small, &sample_bi, sample_e820, 4), -EFAULT);
}
