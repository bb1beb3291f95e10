#include "x86/bootparams.h"

#include <errno.h>
#include <string.h>

#include "x86/layout.h"
#include "core/le.h"

int e820_build(const struct guest_mem *gm, struct e820_entry *out, int max)
{
    int n = 0;
    if (max < 2 + GUEST_MEM_MAX_REGIONS)
        return -ENOSPC;
    if (gm->nr_regions < 1 || gm->regions[0].gpa != 0 || gm->regions[0].size <= HIMEM_GPA)
        return -EINVAL;
    out[n++] = (struct e820_entry){0, EBDA_GPA, E820_RAM};
    /* EBDA and BIOS area hold the MP table: reserved so the kernel keeps them. */
    out[n++] = (struct e820_entry){EBDA_GPA, HIMEM_GPA - EBDA_GPA, E820_RESERVED};
    out[n++] = (struct e820_entry){HIMEM_GPA, gm->regions[0].size - HIMEM_GPA, E820_RAM};
    for (int i = 1; i < gm->nr_regions; i++)
        out[n++] = (struct e820_entry){gm->regions[i].gpa, gm->regions[i].size, E820_RAM};
    return n;
}

int zero_page_build(uint8_t zp[ZP_SIZE], const struct kernel_image *k, const struct boot_info *bi,
                    const struct e820_entry *e820, int nr_e820)
{
    if (nr_e820 < 0 || nr_e820 > E820_MAX)
        return -EINVAL;
    memset(zp, 0, ZP_SIZE);
    if (k->is_bzimage) {
        /* The kernel reads its own header back from the zero page. */
        memcpy(zp + SETUP_HDR_OFF, k->setup_hdr, k->setup_hdr_len);
    } else {
        le_st16(zp + ZP_BOOT_FLAG, 0xaa55);
        memcpy(zp + ZP_HEADER, "HdrS", 4);
        le_st16(zp + ZP_VERSION, 0x020f);
        le_st32(zp + ZP_KERNEL_ALIGNMENT, 0x1000000);
    }
    zp[ZP_TYPE_OF_LOADER] = 0xff;    /* "undefined" boot loader */
    zp[ZP_LOADFLAGS] |= 0x01 | 0x80; /* LOADED_HIGH | CAN_USE_HEAP */
    le_st16(zp + ZP_HEAP_END_PTR, 0xfe00);
    le_st32(zp + ZP_CMD_LINE_PTR, (uint32_t)bi->cmdline_gpa);
    le_st32(zp + ZP_EXT_CMD_LINE_PTR, (uint32_t)(bi->cmdline_gpa >> 32));
    le_st32(zp + ZP_CMDLINE_SIZE, bi->cmdline_len);
    if (bi->initrd_size) {
        le_st32(zp + ZP_RAMDISK_IMAGE, (uint32_t)bi->initrd_gpa);
        le_st32(zp + ZP_RAMDISK_SIZE, (uint32_t)bi->initrd_size);
        le_st32(zp + ZP_EXT_RAMDISK_IMAGE, (uint32_t)(bi->initrd_gpa >> 32));
        le_st32(zp + ZP_EXT_RAMDISK_SIZE, (uint32_t)(bi->initrd_size >> 32));
    }
    zp[ZP_E820_ENTRIES] = (uint8_t)nr_e820;
    for (int i = 0; i < nr_e820; i++) {
        uint8_t *p = zp + ZP_E820_TABLE + i * 20;
        le_st64(p, e820[i].addr);
        le_st64(p + 8, e820[i].size);
        le_st32(p + 16, e820[i].type);
    }
    return 0;
}

/* struct hvm_start_info layout (xen/include/public/arch-x86/hvm/start_info.h). */
#define PVH_MAGIC 0x336ec578
#define PVH_MODLIST_OFF 0x40
#define PVH_MEMMAP_OFF 0x80
#define PVH_MEMMAP_ENTRY 24

int pvh_info_write(struct guest_mem *gm, const struct boot_info *bi, const struct e820_entry *e820, int nr_e820)
{
    uint64_t len = PVH_MEMMAP_OFF + (uint64_t)nr_e820 * PVH_MEMMAP_ENTRY;
    if (nr_e820 < 0 || len > 0x1000)
        return -EINVAL;
    uint8_t *p = gm_ptr(gm, PVH_INFO_GPA, len);
    if (!p)
        return -EFAULT;
    memset(p, 0, len);
    le_st32(p + 0, PVH_MAGIC);
    le_st32(p + 4, 1); /* version 1: has the memmap */
    le_st64(p + 24, bi->cmdline_gpa);
    if (bi->initrd_size) {
        le_st32(p + 12, 1);
        le_st64(p + 16, PVH_INFO_GPA + PVH_MODLIST_OFF);
        le_st64(p + PVH_MODLIST_OFF, bi->initrd_gpa);
        le_st64(p + PVH_MODLIST_OFF + 8, bi->initrd_size);
    }
    le_st64(p + 40, PVH_INFO_GPA + PVH_MEMMAP_OFF);
    le_st32(p + 48, (uint32_t)nr_e820);
    for (int i = 0; i < nr_e820; i++) {
        uint8_t *m = p + PVH_MEMMAP_OFF + i * PVH_MEMMAP_ENTRY;
        le_st64(m, e820[i].addr);
        le_st64(m + 8, e820[i].size);
        le_st32(m + 16, e820[i].type);
    }
    return 0;
}
