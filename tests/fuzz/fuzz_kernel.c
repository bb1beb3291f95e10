/*
 * The kernel loaders (x86/loader_elf.c, x86/loader_bzimage.c and, for a
 * bzImage Ember decompresses itself, x86/decompress.c) on a hostile image,
 * then the boot structures built from what they return (x86/bootparams.c).
 * Input: one byte (bit 0 use_pvh, bit 1 host_decompress), then the image.
 * The guest is 8 MiB of anonymous memory mapped once (as Ember maps it: its
 * size bounds what a bzImage may decompress to, and gm_zero drops whole pages)
 * and not cleared between runs (the loaders must not depend on zeros they did
 * not write).
 *
 * Invariants after a successful load: the kernel lies in guest RAM at or
 * above 1 MiB (HIMEM_GPA <= load_start < load_end <= RAM), its entry is in
 * RAM (below 4 GiB for PVH), the command-line limit is one the kernel can
 * take, the copied setup header fits, a host-decompressed kernel names a
 * format Ember decompresses; the zero page or PVH start info then builds.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/guest_mem.h"
#include "x86/bootparams.h"
#include "x86/layout.h"
#include "x86/loader.h"

#define RAM (8u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what, const struct kernel_image *k)
{
    fprintf(stderr, "fuzz invariant violated: %s (entry %#llx, [%#llx, %#llx), cmdline_max %u)\n", what,
            (unsigned long long)k->entry, (unsigned long long)k->load_start, (unsigned long long)k->load_end,
            k->cmdline_max);
    abort();
}

static void check(struct guest_mem *gm, const struct kernel_image *k)
{
    if (k->load_start < HIMEM_GPA || k->load_start >= k->load_end || k->load_end > RAM)
        fail("kernel outside [1 MiB, RAM)", k);
    if (!gm_ptr(gm, k->load_start, k->load_end - k->load_start))
        fail("kernel range not one piece of RAM", k);
    if (!gm_ptr(gm, k->entry, 1))
        fail("entry outside RAM", k);
    if (k->proto == BOOT_PVH && k->entry >= 0x100000000ULL)
        fail("PVH entry above 4 GiB", k);
    if (k->cmdline_max < 256 || k->cmdline_max > 0x10000)
        fail("command-line limit", k);
    if (k->setup_hdr_len > SETUP_HDR_MAX || (k->is_bzimage && k->setup_hdr_len == 0))
        fail("setup header length", k);
    if (k->host_decompressed && strcmp(k->payload_format, "gzip") && strcmp(k->payload_format, "xz") &&
        strcmp(k->payload_format, "zstd") && strcmp(k->payload_format, "lz4"))
        fail("host-decompressed from a format Ember does not decompress", k);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct guest_mem gm; /* for the whole process: a mapping, not a leak */
    static uint8_t zp[ZP_SIZE];
    if (size < 1)
        return 0;
    if (!gm.nr_regions && guest_mem_init(&gm, RAM))
        abort();
    struct kernel_image k;
    struct errmsg err = {{0}};
    int use_pvh = data[0] & 1, host_decompress = (data[0] >> 1) & 1;
    int rc = load_kernel(&gm, data + 1, size - 1, use_pvh, host_decompress, &k, &err);
    if (rc == 0) {
        check(&gm, &k);
        struct e820_entry e820[E820_MAX];
        int nr = e820_build(&gm, e820, E820_MAX);
        if (nr <= 0 || nr > E820_MAX)
            abort();
        struct boot_info bi = {.cmdline_gpa = CMDLINE_GPA,
                               .cmdline_len = 12,
                               .initrd_gpa = 0x600000,
                               .initrd_size = 4096};
        rc = k.proto == BOOT_PVH ? pvh_info_write(&gm, &bi, e820, nr) : zero_page_build(zp, &k, &bi, e820, nr);
        if (rc) {
            fprintf(stderr, "boot structures for a loaded kernel: %d\n", rc);
            abort();
        }
    } else if (!err.text[0]) {
        fprintf(stderr, "loader error %d without a message\n", rc);
        abort();
    }
    return 0;
}
