/*
 * Kernel image loading: ELF vmlinux (Linux 64-bit boot protocol, or PVH when
 * the ELF carries Xen's PHYS32_ENTRY note) and bzImage (64-bit entry from its
 * setup header). Every file offset and guest address is checked.
 */
#ifndef EMBER_LOADER_H
#define EMBER_LOADER_H

#include <stddef.h>
#include <stdint.h>

#include "core/errmsg.h"
#include "core/guest_mem.h"

enum boot_protocol { BOOT_LINUX64, BOOT_PVH };

#define SETUP_HDR_OFF 0x1f1
#define SETUP_HDR_MAX (0x290 - SETUP_HDR_OFF)

struct kernel_image {
    enum boot_protocol proto;
    int is_bzimage;
    int host_decompressed;  /* bzImage whose vmlinux Ember decompressed and loaded itself */
    char payload_format[8]; /* its compression, when host_decompressed */
    uint64_t entry;
    uint64_t load_start, load_end;    /* guest-physical [start, end) the kernel needs */
    uint32_t cmdline_max;             /* bytes, including the NUL */
    uint64_t initrd_addr_max;         /* highest byte an initrd may occupy */
    uint8_t setup_hdr[SETUP_HDR_MAX]; /* bzImage header bytes from 0x1f1 */
    size_t setup_hdr_len;
};

enum kernel_format { KFMT_UNKNOWN, KFMT_ELF, KFMT_BZIMAGE };
enum kernel_format kernel_detect(const uint8_t *file, size_t size);

/* use_pvh: take the PVH entry when the note is present (default on). */
int load_elf(struct guest_mem *gm, const uint8_t *file, size_t size, int use_pvh, struct kernel_image *out,
             struct errmsg *err);
int load_bzimage(struct guest_mem *gm, const uint8_t *file, size_t size, struct kernel_image *out, struct errmsg *err);
/*
 * bzImage whose payload Ember decompresses on the host and loads as the ELF
 * vmlinux it holds (at its link address: no KASLR, as with a vmlinux), with
 * the bzImage's setup header in the zero page. -ENOTSUP (nothing loaded) when
 * the payload is in a format Ember does not decompress or is not an ELF: the
 * caller then loads the bzImage to decompress itself in the guest.
 */
int load_bzimage_decompressed(struct guest_mem *gm, const uint8_t *file, size_t size, int use_pvh,
                              struct kernel_image *out, struct errmsg *err);
/* Dispatches on the format; a clear error for anything else. */
int load_kernel(struct guest_mem *gm, const uint8_t *file, size_t size, int use_pvh, int host_decompress,
                struct kernel_image *out, struct errmsg *err);

/* Finds the PVH entry in an ELF image; 0 and *entry set if present, -ENOENT if not. */
int elf_find_pvh_entry(const uint8_t *file, size_t size, uint64_t *entry);

#endif
