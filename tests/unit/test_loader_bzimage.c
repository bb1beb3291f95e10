/* bzImage loader, kernel_detect and load_kernel on crafted setup headers. */
#include <criterion/criterion.h>
#include <elf.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/boot_fixture.h"
#include "x86/loader.h"

#define RAM BFX_LOADER_RAM
#define SETUP_SECTS 2
#define KERNEL_OFF ((SETUP_SECTS + 1) * 512)
#define KERNEL_LEN 0x1000
#define HDR_JUMP_OFF 0x6a /* header ends at 0x202 + 0x6a = 0x26c */

TestSuite(bzimage, .init = bfx_loader_setup, .fini = bfx_fini);

static void w16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8); }
static void w32(uint8_t *p, uint32_t v) { w16(p, (uint16_t)v), w16(p + 2, (uint16_t)(v >> 16)); }
static void w64(uint8_t *p, uint64_t v) { w32(p, (uint32_t)v), w32(p + 4, (uint32_t)(v >> 32)); }

/* A minimal protocol-2.15, relocatable, 64-bit capable bzImage of exactly `size` bytes. */
static uint8_t *bz_new(size_t size)
{
    uint8_t *f = bfx_track(calloc(1, size));
    cr_assert_geq(size, 0x264);
    f[0x1f1] = SETUP_SECTS;
    w16(f + 0x1fe, 0xaa55);
    f[0x200] = 0xeb;
    f[0x201] = HDR_JUMP_OFF;
    memcpy(f + 0x202, "HdrS", 4);
    w16(f + 0x206, 0x020f);
    f[0x211] = 0x01;            /* LOADED_HIGH */
    w32(f + 0x22c, 0x7fffffff); /* initrd_addr_max */
    f[0x234] = 1;               /* relocatable */
    w16(f + 0x236, 0x0001);     /* XLF_KERNEL_64 */
    w32(f + 0x238, 2047);       /* cmdline_size */
    w64(f + 0x258, 0x1000000);  /* pref_address */
    w32(f + 0x260, 0x3000);     /* init_size */
    for (size_t i = KERNEL_OFF; i < size; i++)
        f[i] = (uint8_t)(i * 7);
    return f;
}

#define BZ_SIZE (KERNEL_OFF + KERNEL_LEN)

static void expect_error(uint8_t *f, size_t size, int want_rc)
{
    int rc = load_bzimage(&bfx.gm, f, size, &bfx.k, &bfx.err);
    cr_assert_eq(rc, want_rc, "rc %d, want %d (%s)", rc, want_rc, bfx.err.text);
    cr_assert_neq(bfx.err.text[0], '\0', "an error needs a message");
}

Test(bzimage, good_image)
{
    uint8_t *f = bz_new(BZ_SIZE);
    cr_assert_eq(load_bzimage(&bfx.gm, f, BZ_SIZE, &bfx.k, &bfx.err), 0, "%s", bfx.err.text);
    cr_assert_eq(bfx.k.proto, BOOT_LINUX64);
    cr_assert_eq(bfx.k.is_bzimage, 1);
    cr_assert_eq(bfx.k.entry, 0x100000 + 0x200);
    cr_assert_eq(bfx.k.load_start, 0x100000);
    cr_assert_eq(bfx.k.load_end, 0x100000 + 0x3000, "init_size exceeds the file: it decides");
    cr_assert_eq(bfx.k.cmdline_max, 2048);
    cr_assert_eq(bfx.k.initrd_addr_max, 0x7fffffff);
    cr_assert_eq(memcmp(bfx.ram + 0x100000, f + KERNEL_OFF, KERNEL_LEN), 0, "protected-mode part at 1 MiB");
    cr_assert_eq(bfx.ram[0x100000 + KERNEL_LEN], 0xcc, "nothing past the file's payload");
    cr_assert_eq(bfx.ram[0xfffff], 0xcc);
    cr_assert_eq(bfx.k.setup_hdr_len, 0x202 + HDR_JUMP_OFF - 0x1f1);
    cr_assert_eq(memcmp(bfx.k.setup_hdr, f + 0x1f1, bfx.k.setup_hdr_len), 0);
}

Test(bzimage, load_end_from_file_when_larger_than_init_size)
{
    uint8_t *f = bz_new(BZ_SIZE);
    w32(f + 0x260, 0x100);
    cr_assert_eq(load_bzimage(&bfx.gm, f, BZ_SIZE, &bfx.k, &bfx.err), 0, "%s", bfx.err.text);
    cr_assert_eq(bfx.k.load_end, 0x100000 + KERNEL_LEN);
}

Test(bzimage, setup_sects_zero_means_four)
{
    size_t size = 5 * 512 + 0x200;
    uint8_t *f = bz_new(size);
    f[0x1f1] = 0;
    cr_assert_eq(load_bzimage(&bfx.gm, f, size, &bfx.k, &bfx.err), 0, "%s", bfx.err.text);
    cr_assert_eq(memcmp(bfx.ram + 0x100000, f + 5 * 512, 0x200), 0);
}

Test(bzimage, cmdline_max_from_header)
{
    uint8_t *f = bz_new(BZ_SIZE);
    w32(f + 0x238, 0xffff);
    cr_assert_eq(load_bzimage(&bfx.gm, f, BZ_SIZE, &bfx.k, &bfx.err), 0);
    cr_assert_eq(bfx.k.cmdline_max, 0x10000);
    w32(f + 0x238, 255);
    cr_assert_eq(load_bzimage(&bfx.gm, f, BZ_SIZE, &bfx.k, &bfx.err), 0);
    cr_assert_eq(bfx.k.cmdline_max, 256);
    w32(f + 0x238, 100); /* implausible: default */
    cr_assert_eq(load_bzimage(&bfx.gm, f, BZ_SIZE, &bfx.k, &bfx.err), 0);
    cr_assert_eq(bfx.k.cmdline_max, 2048);
    w32(f + 0x238, 0x10000);
    cr_assert_eq(load_bzimage(&bfx.gm, f, BZ_SIZE, &bfx.k, &bfx.err), 0);
    cr_assert_eq(bfx.k.cmdline_max, 2048);
    w32(f + 0x238, 0xffffffff); /* + 1 wraps to 0 */
    cr_assert_eq(load_bzimage(&bfx.gm, f, BZ_SIZE, &bfx.k, &bfx.err), 0);
    cr_assert_eq(bfx.k.cmdline_max, 2048);
}

Test(bzimage, header_copy_capped)
{
    uint8_t *f = bz_new(BZ_SIZE);
    f[0x201] = 0xff; /* would end at 0x301: capped at the zero page's header end */
    cr_assert_eq(load_bzimage(&bfx.gm, f, BZ_SIZE, &bfx.k, &bfx.err), 0);
    cr_assert_eq(bfx.k.setup_hdr_len, SETUP_HDR_MAX);
    cr_assert_eq(memcmp(bfx.k.setup_hdr, f + 0x1f1, SETUP_HDR_MAX), 0);
}

Test(bzimage, non_relocatable_loads_at_pref_address)
{
    uint8_t *f = bz_new(BZ_SIZE);
    f[0x234] = 0;
    w64(f + 0x258, 0x200000);
    cr_assert_eq(load_bzimage(&bfx.gm, f, BZ_SIZE, &bfx.k, &bfx.err), 0, "%s", bfx.err.text);
    cr_assert_eq(bfx.k.entry, 0x200200);
    cr_assert_eq(bfx.k.load_start, 0x200000);
    cr_assert_eq(memcmp(bfx.ram + 0x200000, f + KERNEL_OFF, KERNEL_LEN), 0);
    cr_assert_eq(bfx.ram[0x100000], 0xcc);
    w64(f + 0x258, RAM); /* pref_address past guest memory */
    expect_error(f, BZ_SIZE, -ENOMEM);
}

Test(bzimage, BUG_non_relocatable_below_1mib_refused)
{
    /*
     * BUG (x86/loader_bzimage.c load_bzimage): a non-relocatable image's pref_address
     * is used unchecked, so the kernel is copied over the boot area below 1 MiB
     * (GDT, page tables, zero page, MP table) which Ember overwrites afterwards.
     * The ELF loader refuses the same case ("overlaps the boot area below 1 MiB").
     */
    uint8_t *f = bz_new(BZ_SIZE);
    f[0x234] = 0;
    w64(f + 0x258, 0x7000);
    expect_error(f, BZ_SIZE, -ENOEXEC);
    cr_assert_eq(bfx.ram[0x7000], 0xcc, "boot area untouched");
}

Test(bzimage, old_protocol_refused)
{
    uint8_t *f = bz_new(BZ_SIZE);
    w16(f + 0x206, 0x020b);
    expect_error(f, BZ_SIZE, -ENOEXEC);
    cr_assert(strstr(bfx.err.text, "2.11") != NULL, "names the version: %s", bfx.err.text);
    w16(f + 0x206, 0x020c);
    cr_assert_eq(load_bzimage(&bfx.gm, f, BZ_SIZE, &bfx.k, &bfx.err), 0, "2.12 is enough");
}

Test(bzimage, no_64bit_entry_refused)
{
    uint8_t *f = bz_new(BZ_SIZE);
    w16(f + 0x236, 0x0002);
    expect_error(f, BZ_SIZE, -ENOEXEC);
    cr_assert_eq(bfx.ram[0x100000], 0xcc);
}

Test(bzimage, not_loaded_high_refused)
{
    uint8_t *f = bz_new(BZ_SIZE);
    f[0x211] = 0x80;
    expect_error(f, BZ_SIZE, -ENOEXEC);
}

Test(bzimage, truncated)
{
    uint8_t *f = bz_new(BZ_SIZE);
    /* Each cut is copied to an exact-size buffer: ASan sees any over-read. */
    static const size_t cuts[] = {0, 0x1ff, 0x205, 0x206, 0x263, 0x264, KERNEL_OFF - 1, KERNEL_OFF};
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
        uint8_t *cut = bfx_track(malloc(cuts[i] ? cuts[i] : 1));
        memcpy(cut, f, cuts[i]);
        memset(&bfx.err, 0, sizeof(bfx.err));
        int rc = load_bzimage(&bfx.gm, cut, cuts[i], &bfx.k, &bfx.err);
        cr_assert_eq(rc, -ENOEXEC, "size %#zx: rc %d", cuts[i], rc);
        cr_assert_neq(bfx.err.text[0], '\0');
    }
}

Test(bzimage, too_big_for_memory)
{
    uint8_t *f = bz_new(BZ_SIZE);
    w32(f + 0x260, (uint32_t)RAM); /* 1 MiB + 4 MiB > 4 MiB of RAM */
    expect_error(f, BZ_SIZE, -ENOMEM);
    cr_assert_eq(bfx.ram[0x100000], 0xcc, "nothing copied");
    w32(f + 0x260, (uint32_t)(RAM - 0x100000));
    cr_assert_eq(load_bzimage(&bfx.gm, f, BZ_SIZE, &bfx.k, &bfx.err), 0, "exactly fits");
    cr_assert_eq(bfx.k.load_end, RAM);
}

Test(bzimage, payload_bigger_than_memory)
{
    size_t size = KERNEL_OFF + RAM;
    uint8_t *f = bz_new(size);
    expect_error(f, size, -ENOMEM);
}

Test(kernel_detect, formats)
{
    uint8_t *bz = bz_new(BZ_SIZE);
    cr_assert_eq(kernel_detect(bz, BZ_SIZE), KFMT_BZIMAGE);
    cr_assert_eq(kernel_detect(bz, 0x206), KFMT_BZIMAGE, "magic fits exactly");
    cr_assert_eq(kernel_detect(bz, 0x205), KFMT_UNKNOWN, "magic cut off");
    bz[0x1fe] = 0;
    cr_assert_eq(kernel_detect(bz, BZ_SIZE), KFMT_UNKNOWN, "HdrS without boot flag");

    static const uint8_t elf[] = {0x7f, 'E', 'L', 'F'};
    cr_assert_eq(kernel_detect(elf, 4), KFMT_ELF);
    cr_assert_eq(kernel_detect(elf, 3), KFMT_UNKNOWN);

    uint8_t junk[0x400];
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (uint8_t)(i * 13 + 1);
    cr_assert_eq(kernel_detect(junk, sizeof(junk)), KFMT_UNKNOWN);
    cr_assert_eq(kernel_detect(junk, 0), KFMT_UNKNOWN);
}

Test(bzimage, load_kernel_dispatches)
{
    uint8_t *f = bz_new(BZ_SIZE);
    cr_assert_eq(load_kernel(&bfx.gm, f, BZ_SIZE, 1, 0, &bfx.k, &bfx.err), 0, "%s", bfx.err.text);
    cr_assert_eq(bfx.k.is_bzimage, 1);

    /* A small valid ELF: header, one PT_LOAD, 16 bytes of data at 2 MiB. */
    size_t size;
    uint8_t *e = bfx_track(bfx_elf_one_load(16, 16, &size));
    cr_assert_eq(load_kernel(&bfx.gm, e, size, 1, 0, &bfx.k, &bfx.err), 0, "%s", bfx.err.text);
    cr_assert_eq(bfx.k.is_bzimage, 0);
    cr_assert_eq(bfx.k.entry, 0x200000);
    cr_assert_eq(bfx.ram[0x200000], 0x42);

    uint8_t junk[64] = {1, 2, 3};
    memset(&bfx.err, 0, sizeof(bfx.err));
    cr_assert_eq(load_kernel(&bfx.gm, junk, sizeof(junk), 1, 0, &bfx.k, &bfx.err), -ENOEXEC);
    cr_assert_neq(bfx.err.text[0], '\0');
}

/* Found by tests/fuzz/fuzz_kernel.c: a kernel shorter than its entry offset put the vCPU's first fetch past RAM. */
Test(bzimage, entry_must_lie_inside_the_kernel)
{
    size_t size = KERNEL_OFF + 0x100;
    uint8_t *f = bz_new(size);
    w32(f + 0x260, 0x100); /* init_size: the kernel ends at +0x100, before startup_64 at +0x200 */
    f[0x234] = 0;
    w64(f + 0x258, RAM - 0x100); /* the entry would be RAM + 0x100 */
    expect_error(f, size, -ENOEXEC);
    f[0x234] = 1; /* relocatable, at 1 MiB: still no code at the entry */
    expect_error(f, size, -ENOEXEC);
    w32(f + 0x260, 0x200); /* ends exactly at the entry */
    expect_error(f, size, -ENOEXEC);
    w32(f + 0x260, 0x201);
    cr_assert_eq(load_bzimage(&bfx.gm, f, size, &bfx.k, &bfx.err), 0, "%s", bfx.err.text);
    cr_assert_lt(bfx.k.entry, bfx.k.load_end);
}
