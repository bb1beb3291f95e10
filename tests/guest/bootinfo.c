/* Ember test guest: reading what the monitor handed over at boot.
 *
 * 64-bit boot protocol: RSI = Linux boot_params ("zero page"), with the
 * command line pointer and the e820 memory map.
 * PVH: EBX = struct hvm_start_info (Xen's public arch-x86/hvm/start_info.h),
 * with the command line and, from version 1 on, a memory map in the same
 * e820 type numbering.
 * The rest of the guest sees one view: a command line and memory ranges. */
#include "guest.h"

/* boot_params offsets (Linux Documentation/arch/x86/zero-page.rst) */
#define BP_E820_ENTRIES 0x1e8 /* u8 */
#define BP_CMD_LINE_PTR 0x228 /* u32 */
#define BP_E820_TABLE   0x2d0 /* 20-byte entries */
#define BP_E820_MAX     128

struct boot_e820_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
} __attribute__((packed));

#define HVM_START_MAGIC 0x336ec578

struct hvm_start_info {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr;   /* version >= 1 */
	uint32_t memmap_entries; /* version >= 1 */
	uint32_t reserved;
};

struct hvm_memmap_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
	uint32_t reserved;
};

static unsigned kind;
static uintptr_t info;
static const char *error;

void bootinfo_init(unsigned boot_kind, uintptr_t boot_info)
{
	kind = boot_kind;
	info = boot_info;
	if (kind == BOOT_PVH) {
		const struct hvm_start_info *si = (const void *)info;

		if (si->magic != HVM_START_MAGIC)
			error = "bad hvm_start_info magic";
		else if (si->version < 1)
			error = "hvm_start_info version 0 has no memory map";
	} else if (((const uint8_t *)info)[BP_E820_ENTRIES] > BP_E820_MAX) {
		error = "zero page e820_entries above 128";
	}
}

const char *bootinfo_error(void)
{
	return error;
}

const char *boot_kind_name(void)
{
	return kind == BOOT_PVH ? "pvh" : "linux64";
}

const char *boot_cmdline(void)
{
	uintptr_t p;

	if (error)
		return "";
	if (kind == BOOT_PVH)
		p = ((const struct hvm_start_info *)info)->cmdline_paddr;
	else
		p = *(const uint32_t *)(info + BP_CMD_LINE_PTR);
	return p ? (const char *)p : "";
}

unsigned boot_mem_count(void)
{
	if (error)
		return 0;
	if (kind == BOOT_PVH)
		return ((const struct hvm_start_info *)info)->memmap_entries;
	return ((const uint8_t *)info)[BP_E820_ENTRIES];
}

int boot_mem_entry(unsigned i, struct mem_range *out)
{
	if (i >= boot_mem_count())
		return -1;
	if (kind == BOOT_PVH) {
		const struct hvm_start_info *si = (const void *)info;
		const struct hvm_memmap_entry *e =
			(const void *)(uintptr_t)si->memmap_paddr;

		*out = (struct mem_range){ e[i].addr, e[i].size, e[i].type };
	} else {
		const struct boot_e820_entry *e =
			(const void *)(info + BP_E820_TABLE);

		*out = (struct mem_range){ e[i].addr, e[i].size, e[i].type };
	}
	return 0;
}
