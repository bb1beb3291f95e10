/*
 * What the guest finds in memory at its first instruction: the kernel (ELF or
 * bzImage, x86/loader.c), the initrd, the command line (the user's, what the
 * devices added, the host-compat arguments) and the boot structures (zero
 * page or PVH start info, e820, MP table, GDT/page tables).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "core/path_open.h"
#include "vm/hostcompat.h"
#include "vm/vm_internal.h"
#include "x86/bootparams.h"
#include "x86/cpu_boot.h"
#include "x86/layout.h"
#include "x86/mptable.h"

#define MAX_IMAGE_BYTES (1ULL << 32)

/*
 * Maps a whole input file read-only. Mapping (not reading) lets the loader
 * copy straight from the page cache into guest memory: one copy, no buffer.
 */
static int map_file(const char *what, const char *path, uint64_t limit, uint8_t **buf, size_t *size, struct errmsg *err)
{
    struct stat st;
    int fd = path_open_noblock(path, O_RDONLY | O_CLOEXEC, &st); /* a FIFO must not hold InstanceStart */
    if (fd < 0)
        return err_set(err, fd, "%s '%s': %s", what, path, strerror(-fd));
    int rc = 0;
    if (!S_ISREG(st.st_mode))
        rc = err_set(err, -EINVAL, "%s '%s' is %s, not a regular file", what, path, path_kind(st.st_mode));
    else if ((uint64_t)st.st_size > limit)
        rc = err_set(err, -EFBIG, "%s '%s' (%lld bytes) is larger than guest memory", what, path,
                     (long long)st.st_size);
    else if (st.st_size == 0)
        rc = err_set(err, -EINVAL, "%s '%s' is empty", what, path);
    if (!rc) {
        void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
        if (p == MAP_FAILED)
            rc = err_set(err, -errno, "%s '%s': cannot map it: %s", what, path, strerror(errno));
        else
            *buf = p, *size = (size_t)st.st_size;
    }
    close(fd);
    return rc;
}

/* Puts the initrd as high as the kernel allows in low RAM, page aligned. */
static int place_initrd(struct vm *vm, const uint8_t *data, size_t size, struct boot_info *bi, struct errmsg *err)
{
    uint64_t top = gm_low_end(&vm->alloc.mem);
    if (vm->kernel.initrd_addr_max + 1 < top)
        top = vm->kernel.initrd_addr_max + 1;
    uint64_t aligned = ((uint64_t)size + 0xfff) & ~0xfffULL;
    if (aligned > top || ((top - aligned) & ~0xfffULL) < vm->kernel.load_end)
        return err_set(err, -ENOMEM,
                       "initrd '%s' (%zu bytes) does not fit between the kernel (ends at %#" PRIx64
                       ") and the end of low memory (%#" PRIx64 "): give the VM more memory",
                       vm->cfg.initrd_path, size, vm->kernel.load_end, top);
    uint64_t gpa = (top - aligned) & ~0xfffULL;
    if (gm_write(&vm->alloc.mem, gpa, data, size))
        return err_set(err, -EFAULT, "initrd placement at %#" PRIx64 " is outside guest memory", gpa);
    bi->initrd_gpa = gpa;
    bi->initrd_size = size;
    return 0;
}

int vm_setup_boot(struct vm *vm, struct errmsg *err)
{
    uint64_t mem_bytes = vm->cfg.mem_mib << 20;
    uint8_t *image = NULL;
    size_t image_size = 0;
    int rc = map_file("kernel", vm->cfg.kernel_path, mem_bytes < MAX_IMAGE_BYTES ? mem_bytes : MAX_IMAGE_BYTES, &image,
                      &image_size, err);
    if (rc)
        return rc;
    struct errmsg lerr;
    int host_decompress = vm->cfg.decompress == KDECOMP_HOST || (vm->cfg.decompress == KDECOMP_AUTO && vm->pvm_host);
    rc = load_kernel(&vm->alloc.mem, image, image_size, vm->cfg.use_pvh, host_decompress, &vm->kernel, &lerr);
    munmap(image, image_size);
    if (rc)
        return err_set(err, rc, "kernel '%s': %s", vm->cfg.kernel_path, lerr.text);
    char what[80];
    if (vm->kernel.host_decompressed)
        snprintf(what, sizeof(what), "bzImage (%s), its vmlinux decompressed by Ember", vm->kernel.payload_format);
    else
        snprintf(what, sizeof(what), "%s", vm->kernel.is_bzimage ? "bzImage" : "ELF vmlinux");
    log_info("kernel: %s, %s entry at %#" PRIx64 ", occupies [%#" PRIx64 ", %#" PRIx64 ")", what,
             vm->kernel.proto == BOOT_PVH ? "PVH 32-bit" : "64-bit", vm->kernel.entry, vm->kernel.load_start,
             vm->kernel.load_end);

    struct boot_info bi = {.cmdline_gpa = CMDLINE_GPA};
    if (vm->cfg.initrd_path) {
        uint8_t *initrd = NULL;
        size_t initrd_size = 0;
        rc = map_file("initrd", vm->cfg.initrd_path, mem_bytes, &initrd, &initrd_size, err);
        if (rc)
            return rc;
        rc = place_initrd(vm, initrd, initrd_size, &bi, err);
        munmap(initrd, initrd_size);
        if (rc)
            return rc;
    }

    const char *extra = hostcompat_active(vm->cfg.host_compat, vm->pvm_host) ? hostcompat_cmdline(vm->cfg.vcpus) : "";
    char *cmdline = malloc(vm->kernel.cmdline_max);
    char *with_devices = malloc(vm->kernel.cmdline_max);
    if (!cmdline || !with_devices) {
        free(cmdline);
        free(with_devices);
        return err_set(err, -ENOMEM, "out of memory");
    }
    int len = cmdline_build(with_devices, vm->kernel.cmdline_max,
                            vm->cfg.cmdline ? vm->cfg.cmdline : EMBER_DEFAULT_CMDLINE, vm->dev_cmdline);
    if (len >= 0)
        len = cmdline_build(cmdline, vm->kernel.cmdline_max, with_devices, extra);
    free(with_devices);
    if (len < 0) {
        free(cmdline);
        return err_set(err, -E2BIG, "kernel command line is too long: this kernel accepts %u bytes%s",
                       vm->kernel.cmdline_max - 1,
                       *extra ? " including the host-compat arguments (see --host-compat)" : "");
    }
    rc = gm_write(&vm->alloc.mem, CMDLINE_GPA, cmdline, (uint64_t)len + 1);
    log_info("command line: %s", cmdline);
    free(cmdline);
    if (rc)
        return err_set(err, -EFAULT, "command line does not fit in guest memory");
    bi.cmdline_len = (uint32_t)len;

    struct e820_entry e820[E820_MAX];
    int nr = e820_build(&vm->alloc.mem, e820, E820_MAX);
    if (nr < 0)
        return err_set(err, nr, "guest memory too small for a memory map (%" PRIu64 " MiB)", vm->cfg.mem_mib);
    if (vm->kernel.proto == BOOT_PVH) {
        rc = pvh_info_write(&vm->alloc.mem, &bi, e820, nr);
    } else {
        uint8_t *zp = gm_ptr(&vm->alloc.mem, ZERO_PAGE_GPA, ZP_SIZE);
        rc = zp ? zero_page_build(zp, &vm->kernel, &bi, e820, nr) : -EFAULT;
    }
    if (!rc)
        rc = mptable_write(&vm->alloc.mem, (int)vm->cfg.vcpus);
    if (!rc)
        rc = boot_tables_write(&vm->alloc.mem);
    if (rc)
        return err_set(err, rc, "cannot write boot structures: %s", strerror(-rc));
    return 0;
}
