/* bzImage loader: protected-mode kernel at 1 MiB, entered at its 64-bit entry. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "x86/decompress.h"
#include "x86/layout.h"
#include "x86/loader.h"
#include "core/le.h"

/* Offsets into the real-mode header (Documentation/x86/boot.rst). */
#define HDR_SETUP_SECTS 0x1f1
#define HDR_BOOT_FLAG 0x1fe
#define HDR_JUMP 0x200
#define HDR_MAGIC 0x202
#define HDR_VERSION 0x206
#define HDR_LOADFLAGS 0x211
#define HDR_INITRD_MAX 0x22c
#define HDR_RELOCATABLE 0x234
#define HDR_XLOADFLAGS 0x236
#define HDR_CMDLINE_SIZE 0x238
#define HDR_PAYLOAD_OFFSET 0x248
#define HDR_PAYLOAD_LENGTH 0x24c
#define HDR_PREF_ADDRESS 0x258
#define HDR_INIT_SIZE 0x260
#define XLF_KERNEL_64 0x1
#define LOADED_HIGH 0x1

enum kernel_format kernel_detect(const uint8_t *file, size_t size)
{
    if (size >= 4 && memcmp(file, "\177ELF", 4) == 0)
        return KFMT_ELF;
    if (size >= HDR_MAGIC + 4 && memcmp(file + HDR_MAGIC, "HdrS", 4) == 0 && le_ld16(file + HDR_BOOT_FLAG) == 0xaa55)
        return KFMT_BZIMAGE;
    return KFMT_UNKNOWN;
}

/* Checks what every bzImage path needs from the setup header. */
static int check_header(const uint8_t *file, size_t size, struct errmsg *err)
{
    if (kernel_detect(file, size) != KFMT_BZIMAGE)
        return err_set(err, -ENOEXEC, "not a bzImage (no HdrS setup header)");
    if (size < HDR_INIT_SIZE + 4)
        return err_set(err, -ENOEXEC, "bzImage setup header truncated");
    uint16_t version = le_ld16(file + HDR_VERSION);
    if (version < 0x20c)
        return err_set(err, -ENOEXEC, "bzImage boot protocol %u.%u is too old (need 2.12 for a 64-bit entry)",
                       version >> 8, version & 0xff);
    if (!(le_ld16(file + HDR_XLOADFLAGS) & XLF_KERNEL_64))
        return err_set(err, -ENOEXEC, "bzImage has no 64-bit entry point (XLF_KERNEL_64 clear)");
    if (!(file[HDR_LOADFLAGS] & LOADED_HIGH))
        return err_set(err, -ENOEXEC, "bzImage is not a high-loaded (bzImage) kernel");
    return 0;
}

/* The header fields the zero page carries over, whichever way the kernel was loaded. */
static void take_header(const uint8_t *file, struct kernel_image *out)
{
    out->is_bzimage = 1;
    out->cmdline_max = le_ld32(file + HDR_CMDLINE_SIZE) + 1;
    if (out->cmdline_max < 256 || out->cmdline_max > 0x10000)
        out->cmdline_max = CMDLINE_MAX_DEFAULT;
    out->initrd_addr_max = le_ld32(file + HDR_INITRD_MAX);
    /* The header ends at 0x202 + the jump's byte offset; copy it whole into the zero page. */
    size_t hdr_end = 0x202 + file[HDR_JUMP + 1];
    if (hdr_end > SETUP_HDR_OFF + SETUP_HDR_MAX)
        hdr_end = SETUP_HDR_OFF + SETUP_HDR_MAX;
    out->setup_hdr_len = hdr_end - SETUP_HDR_OFF;
    memcpy(out->setup_hdr, file + SETUP_HDR_OFF, out->setup_hdr_len);
}

int load_bzimage(struct guest_mem *gm, const uint8_t *file, size_t size, struct kernel_image *out, struct errmsg *err)
{
    int rc = check_header(file, size, err);
    if (rc)
        return rc;
    unsigned setup_sects = file[HDR_SETUP_SECTS] ? file[HDR_SETUP_SECTS] : 4;
    uint64_t kernel_off = (uint64_t)(setup_sects + 1) * 512;
    if (kernel_off >= size)
        return err_set(err, -ENOEXEC, "bzImage truncated: setup (%llu bytes) is larger than the file",
                       (unsigned long long)kernel_off);
    uint64_t kernel_len = size - kernel_off;

    uint64_t load = HIMEM_GPA;
    if (!file[HDR_RELOCATABLE])
        load = le_ld64(file + HDR_PREF_ADDRESS);
    if (load < HIMEM_GPA)
        return err_set(err, -ENOEXEC, "bzImage wants to load at %#llx, inside the boot area below 1 MiB",
                       (unsigned long long)load);
    uint64_t init_size = le_ld32(file + HDR_INIT_SIZE);
    uint64_t need = init_size > kernel_len ? init_size : kernel_len;
    /* The vCPU starts at load + 0x200: that must be the kernel's, not memory past it (or past RAM). */
    if (need <= 0x200)
        return err_set(err, -ENOEXEC,
                       "bzImage too small: its kernel (%#llx bytes with init_size) ends before the 64-bit entry at "
                       "+0x200: truncated or corrupt",
                       (unsigned long long)need);
    uint8_t *dst = gm_ptr(gm, load, need);
    if (!dst)
        return err_set(err, -ENOMEM,
                       "bzImage needs [%#llx, +%#llx) but guest memory is %llu MiB: give the VM more memory",
                       (unsigned long long)load, (unsigned long long)need, (unsigned long long)(gm->total >> 20));
    memcpy(dst, file + kernel_off, kernel_len);

    memset(out, 0, sizeof(*out));
    out->proto = BOOT_LINUX64;
    out->entry = load + 0x200; /* startup_64 sits 0x200 into the 32-bit entry */
    out->load_start = load;
    out->load_end = load + need;
    take_header(file, out);
    return 0;
}

int load_bzimage_decompressed(struct guest_mem *gm, const uint8_t *file, size_t size, int use_pvh,
                              struct kernel_image *out, struct errmsg *err)
{
    int rc = check_header(file, size, err);
    if (rc)
        return rc;
    unsigned setup_sects = file[HDR_SETUP_SECTS] ? file[HDR_SETUP_SECTS] : 4;
    uint64_t kernel_off = (uint64_t)(setup_sects + 1) * 512;
    uint64_t poff = le_ld32(file + HDR_PAYLOAD_OFFSET), plen = le_ld32(file + HDR_PAYLOAD_LENGTH);
    if (kernel_off >= size || poff > size - kernel_off || plen > size - kernel_off - poff || plen == 0)
        return err_set(err, -ENOEXEC,
                       "bzImage payload [%#llx, +%#llx) lies outside the file (%zu bytes): truncated or corrupt",
                       (unsigned long long)kernel_off + poff, (unsigned long long)plen, size);
    const uint8_t *payload = file + kernel_off + poff;
    enum payload_format fmt = payload_detect(payload, plen);
    uint8_t *elf = NULL;
    size_t elf_len = 0;
    /* The vmlinux cannot be larger than the guest's memory. */
    rc = payload_decompress(payload, plen, gm->total ? gm->total : (size_t)1 << 30, &elf, &elf_len, err);
    if (rc)
        return rc; /* -ENOTSUP: the guest decompresses it; anything else: a damaged kernel */
    if (kernel_detect(elf, elf_len) != KFMT_ELF) {
        free(elf);
        return err_set(err, -ENOTSUP, "bzImage payload is not an ELF vmlinux");
    }
    struct errmsg eerr;
    rc = load_elf(gm, elf, elf_len, use_pvh, out, &eerr);
    free(elf);
    if (rc)
        return err_set(err, rc, "the vmlinux inside the bzImage: %s", eerr.text);
    take_header(file, out);
    out->host_decompressed = 1;
    snprintf(out->payload_format, sizeof(out->payload_format), "%s", payload_format_name(fmt));
    return 0;
}

int load_kernel(struct guest_mem *gm, const uint8_t *file, size_t size, int use_pvh, int host_decompress,
                struct kernel_image *out, struct errmsg *err)
{
    switch (kernel_detect(file, size)) {
    case KFMT_ELF: return load_elf(gm, file, size, use_pvh, out, err);
    case KFMT_BZIMAGE:
        if (host_decompress) {
            int rc = load_bzimage_decompressed(gm, file, size, use_pvh, out, err);
            if (rc != -ENOTSUP)
                return rc;
        }
        return load_bzimage(gm, file, size, out, err);
    default: return err_set(err, -ENOEXEC, "neither an ELF vmlinux nor a bzImage (%zu bytes)", size);
    }
}
