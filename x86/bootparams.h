/* What the kernel finds in memory at entry: e820 map, zero page, PVH start info. */
#ifndef EMBER_BOOTPARAMS_H
#define EMBER_BOOTPARAMS_H

#include <stdint.h>

#include "core/guest_mem.h"
#include "x86/loader.h"

#define E820_RAM 1
#define E820_RESERVED 2
#define E820_MAX 128

struct e820_entry {
    uint64_t addr;
    uint64_t size;
    uint32_t type;
};

/* Zero-page offsets used by Ember (arch/x86/include/uapi/asm/bootparam.h). */
#define ZP_EXT_RAMDISK_IMAGE 0x0c0
#define ZP_EXT_RAMDISK_SIZE 0x0c4
#define ZP_EXT_CMD_LINE_PTR 0x0c8
#define ZP_E820_ENTRIES 0x1e8
#define ZP_BOOT_FLAG 0x1fe
#define ZP_HEADER 0x202
#define ZP_VERSION 0x206
#define ZP_TYPE_OF_LOADER 0x210
#define ZP_LOADFLAGS 0x211
#define ZP_RAMDISK_IMAGE 0x218
#define ZP_RAMDISK_SIZE 0x21c
#define ZP_HEAP_END_PTR 0x224
#define ZP_CMD_LINE_PTR 0x228
#define ZP_KERNEL_ALIGNMENT 0x230
#define ZP_CMDLINE_SIZE 0x238
#define ZP_E820_TABLE 0x2d0
#define ZP_SIZE 4096

struct boot_info {
    uint64_t cmdline_gpa;
    uint32_t cmdline_len; /* without the NUL */
    uint64_t initrd_gpa;
    uint64_t initrd_size;
};

/* RAM as the guest should see it: base memory below the EBDA, then from 1 MiB. */
int e820_build(const struct guest_mem *gm, struct e820_entry *out, int max);

/* Fills a 4 KiB Linux zero page (boot_params). */
int zero_page_build(uint8_t zp[ZP_SIZE], const struct kernel_image *k, const struct boot_info *bi,
                    const struct e820_entry *e820, int nr_e820);

/* Writes hvm_start_info (+ module list + memmap) at PVH_INFO_GPA. */
int pvh_info_write(struct guest_mem *gm, const struct boot_info *bi, const struct e820_entry *e820, int nr_e820);

#endif
