/* Guest-physical layout of everything Ember places in low memory at boot. */
#ifndef EMBER_LAYOUT_H
#define EMBER_LAYOUT_H

#define BOOT_GDT_GPA 0x500ULL
#define BOOT_IDT_GPA 0x530ULL   /* after the 5-entry GDT (0x500-0x527) */
#define PVH_INFO_GPA 0x6000ULL  /* hvm_start_info, then module list and memmap */
#define ZERO_PAGE_GPA 0x7000ULL /* Linux boot_params */
#define BOOT_STACK_GPA 0x8ff0ULL
#define PML4_GPA 0x9000ULL
#define PDPT_GPA 0xa000ULL
#define PD_GPA 0xb000ULL /* 4 page directories: identity map of 4 GiB */
#define CMDLINE_GPA 0x20000ULL
#define CMDLINE_MAX_DEFAULT 2048U /* x86 COMMAND_LINE_SIZE */
#define EBDA_GPA 0x9fc00ULL       /* MP table lives in the last KiB of base memory */
#define EBDA_END 0xa0000ULL
#define HIMEM_GPA 0x100000ULL /* kernels load at or above 1 MiB */

#endif
