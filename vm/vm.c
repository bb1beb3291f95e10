#include "vm/vm.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "x86/bootparams.h"
#include "x86/cpu_boot.h"
#include "vm/hostcompat.h"
#include "x86/layout.h"
#include "core/log.h"
#include "x86/mptable.h"
#include "vm/seccomp.h"
#include "vm/vcpu.h"

#define KVM_TSS_GPA 0xfffbd000ULL
#define MAX_IMAGE_BYTES (1ULL << 32)

uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

void vm_request_end(struct vm *vm, enum vm_end end, const char *fmt, ...)
{
    int expected = VM_END_NONE;
    if (!atomic_compare_exchange_strong(&vm->end, &expected, (int)end))
        return; /* the first decision stands */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(vm->end_reason, sizeof(vm->end_reason), fmt, ap);
    va_end(ap);
    uint64_t one = 1;
    if (write(vm->stop_efd, &one, sizeof(one)) < 0)
        log_error("cannot wake the main loop: %s", strerror(errno));
}

int vm_exit_status(const struct vm *vm)
{
    switch (atomic_load(&vm->end)) {
    case VM_END_RESET:
    case VM_END_SHUTDOWN:
    case VM_END_SIGNAL:
        return 0;
    case VM_END_CRASH:
        return 2;
    default:
        return 1;
    }
}

static void irq_set(void *ctx, uint32_t gsi, int level)
{
    struct vm *vm = ctx;
    struct kvm_irq_level l = {.irq = gsi, .level = (uint32_t)level};
    if (ioctl(vm->vm_fd, KVM_IRQ_LINE, &l) < 0)
        log_warn("KVM_IRQ_LINE gsi %u: %s", gsi, strerror(errno));
}

static void i8042_reset(void *ctx)
{
    vm_request_end(ctx, VM_END_RESET, "guest requested a reset through the i8042");
}

/*
 * Ports that answer "nothing here" on purpose: reads all ones, writes
 * dropped, no warning. Port 0x80 (POST codes, Linux's I/O delay) and the
 * PCI configuration mechanism at 0xCF8-0xCFF: there is no PCI bus, and a
 * kernel probes it early even with pci=off (all ones: no host bridge).
 */
static void post_read(void *o, uint64_t off, uint8_t *d, uint32_t len) { (void)o, (void)off; memset(d, 0xff, len); }
static void post_write(void *o, uint64_t off, const uint8_t *d, uint32_t len) { (void)o, (void)off, (void)d, (void)len; }
static const struct io_ops post_io_ops = {.read = post_read, .write = post_write};

/* Grant a PIO range from the allocator, routed to the device. */
static int attach_pio(struct vm *vm, uint16_t base, uint16_t len, const char *name,
                      const struct io_ops *ops, void *opaque, struct errmsg *err)
{
    int rc = alloc_claim_pio(&vm->alloc, base, len, name, ops, opaque);
    if (rc)
        return err_set(err, rc, "cannot attach %s at port %#x: %s", name, base, strerror(-rc));
    return 0;
}

/*
 * Maps a whole input file read-only. Mapping (not reading) lets the loader
 * copy straight from the page cache into guest memory: one copy, no buffer.
 */
static int map_file(const char *what, const char *path, uint64_t limit, uint8_t **buf, size_t *size,
                    struct errmsg *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return err_set(err, -errno, "%s '%s': %s", what, path, strerror(errno));
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
        rc = err_set(err, -EINVAL, "%s '%s' is not a regular file", what, path);
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

static void kvm_objects_close(struct vm_kvm *k)
{
    free(k->cpuid);
    if (k->vm_fd >= 0)
        close(k->vm_fd);
    if (k->kvm_fd >= 0)
        close(k->kvm_fd);
    memset(k, 0, sizeof(*k));
    k->kvm_fd = k->vm_fd = -1;
}

/*
 * /dev/kvm, the VM and the host's CPUID table: nothing here depends on the
 * config. The irqchip and PIT are not made here: created before the guest
 * RAM slot they made InstanceStart 4.5 ms slower on kvm-pvm (measured).
 */
static int kvm_objects_open(struct vm_kvm *k, struct errmsg *err)
{
    memset(k, 0, sizeof(*k));
    k->vm_fd = -1;
    k->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (k->kvm_fd < 0)
        return err_set(err, -errno, "cannot open /dev/kvm: %s (is KVM available and are you allowed to use it?)",
                       strerror(errno));
    int api = ioctl(k->kvm_fd, KVM_GET_API_VERSION, 0);
    if (api != KVM_API_VERSION)
        return err_set(err, -ENOTSUP, "/dev/kvm speaks API version %d, Ember needs %d", api, KVM_API_VERSION);
    k->max_vcpus = ioctl(k->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
    if (k->max_vcpus <= 0)
        k->max_vcpus = ioctl(k->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
    if (k->max_vcpus <= 0)
        k->max_vcpus = 4;
    k->vm_fd = ioctl(k->kvm_fd, KVM_CREATE_VM, 0);
    if (k->vm_fd < 0)
        return err_set(err, -errno, "KVM_CREATE_VM: %s", strerror(errno));
    k->run_size = ioctl(k->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (k->run_size < (long)sizeof(struct kvm_run))
        return err_set(err, -ENOTSUP, "KVM_GET_VCPU_MMAP_SIZE: %s", strerror(errno));

    int nent = 128;
    for (;;) {
        free(k->cpuid);
        k->cpuid = calloc(1, sizeof(*k->cpuid) + (size_t)nent * sizeof(k->cpuid->entries[0]));
        if (!k->cpuid)
            return err_set(err, -ENOMEM, "out of memory");
        k->cpuid->nent = (uint32_t)nent;
        if (ioctl(k->kvm_fd, KVM_GET_SUPPORTED_CPUID, k->cpuid) == 0)
            break;
        if (errno != E2BIG || nent >= 4096)
            return err_set(err, -errno, "KVM_GET_SUPPORTED_CPUID: %s", strerror(errno));
        nent *= 2;
    }
    k->ready = 1;
    return 0;
}

int vm_prepare(struct vm *vm, struct errmsg *err)
{
    if (vm->created || vm->prepared.ready)
        return 0;
    int rc = kvm_objects_open(&vm->prepared, err);
    if (rc)
        kvm_objects_close(&vm->prepared);
    return rc;
}

static int setup_kvm(struct vm *vm, struct vm_kvm *k, struct errmsg *err)
{
    if (!k->ready) {
        int rc = kvm_objects_open(k, err);
        if (rc) {
            kvm_objects_close(k);
            return rc;
        }
    }
    /* The VM owns them from here (vm_destroy closes them). */
    vm->kvm_fd = k->kvm_fd;
    vm->vm_fd = k->vm_fd;
    vm->run_size = k->run_size;
    vm->cpuid = k->cpuid;
    int max = k->max_vcpus;
    memset(k, 0, sizeof(*k));
    k->kvm_fd = k->vm_fd = -1;
    if (vm->cfg.vcpus < 1 || vm->cfg.vcpus > (unsigned)max)
        return err_set(err, -EINVAL, "--vcpus %u: this host's KVM allows 1 to %d", vm->cfg.vcpus, max);
    return 0;
}

static int setup_memory(struct vm *vm, struct errmsg *err)
{
    uint64_t bytes = vm->cfg.mem_mib << 20;
    if (vm->cfg.mem_mib < 2)
        return err_set(err, -EINVAL, "--mem-mib %" PRIu64 ": a guest needs at least 2 MiB", vm->cfg.mem_mib);
    int rc = alloc_init(&vm->alloc, bytes);
    if (rc)
        return err_set(err, rc, "cannot reserve %" PRIu64 " MiB of guest memory: %s", vm->cfg.mem_mib, strerror(-rc));
    const struct guest_mem *gm = &vm->alloc.mem;
    for (int i = 0; i < gm->nr_regions; i++) {
        struct kvm_userspace_memory_region r = {
            .slot = (uint32_t)i,
            .guest_phys_addr = gm->regions[i].gpa,
            .memory_size = gm->regions[i].size,
            .userspace_addr = (uint64_t)(uintptr_t)gm->regions[i].host,
        };
        if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
            return err_set(err, -errno, "KVM_SET_USER_MEMORY_REGION slot %d: %s", i, strerror(errno));
    }
    /* KVM's TSS (needed on Intel) sits in the MMIO hole: the allocator must know. */
    rc = alloc_claim_mmio(&vm->alloc, KVM_TSS_GPA, 0x3000, "kvm-tss", NULL, NULL);
    if (rc)
        return err_set(err, rc, "cannot reserve the KVM TSS range");
    if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)KVM_TSS_GPA) < 0)
        return err_set(err, -errno, "KVM_SET_TSS_ADDR: %s", strerror(errno));
    return 0;
}

/* After the RAM slot (see kvm_objects_open). */
static int setup_irqchip(struct vm *vm, struct errmsg *err)
{
    if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
        return err_set(err, -errno, "KVM_CREATE_IRQCHIP: %s", strerror(errno));
    struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};
    if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
        return err_set(err, -errno, "KVM_CREATE_PIT2: %s", strerror(errno));
    /* The PIT owns ports 0x40-0x43 and 0x61 inside KVM; keep devices off them. */
    int rc = alloc_claim_pio(&vm->alloc, 0x40, 4, "pit", NULL, NULL);
    if (!rc)
        rc = alloc_claim_pio(&vm->alloc, 0x20, 2, "pic-master", NULL, NULL);
    if (!rc)
        rc = alloc_claim_pio(&vm->alloc, 0xa0, 2, "pic-slave", NULL, NULL);
    if (rc)
        return err_set(err, rc, "cannot reserve in-kernel irqchip ports");
    return 0;
}

static time_t wall_clock(void) { return time(NULL); }

static int setup_devices(struct vm *vm, struct errmsg *err)
{
    int rc = alloc_gsi_at(&vm->alloc, SERIAL_COM1_GSI, "serial");
    if (!rc)
        rc = alloc_gsi_at(&vm->alloc, I8042_GSI, "i8042");
    if (rc)
        return err_set(err, rc, "cannot reserve legacy IRQ lines");
    int out_fd = STDOUT_FILENO;
    if (vm->cfg.serial_out_path) {
        out_fd = open(vm->cfg.serial_out_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (out_fd < 0)
            return err_set(err, -errno, "serial output '%s': %s", vm->cfg.serial_out_path, strerror(errno));
        vm->serial_out_fd = out_fd;
    }
    serial_init(&vm->serial, out_fd, (struct irq_line){irq_set, vm, SERIAL_COM1_GSI});
    i8042_init(&vm->i8042, (struct irq_line){irq_set, vm, I8042_GSI}, i8042_reset, vm);
    cmos_init(&vm->cmos, wall_clock);
    vm->devices_ready = 1;
    rc = attach_pio(vm, SERIAL_COM1_BASE, SERIAL_NR_REGS, "serial", &serial_io_ops, &vm->serial, err);
    if (!rc)
        rc = attach_pio(vm, I8042_DATA_PORT, 5, "i8042", &i8042_io_ops, &vm->i8042, err);
    if (!rc)
        rc = attach_pio(vm, CMOS_PORT, CMOS_NR_PORTS, "cmos", &cmos_io_ops, &vm->cmos, err);
    if (!rc)
        rc = attach_pio(vm, 0x80, 1, "post-code", &post_io_ops, NULL, err);
    if (!rc)
        rc = attach_pio(vm, 0xcf8, 8, "no-pci", &post_io_ops, NULL, err);
    return rc;
}

/* Grants a 4 KiB MMIO slot and a GSI, and routes the slot to a new virtio-mmio transport. */
static int attach_virtio(struct vm *vm, const char *name, const struct virtio_dev_ops *ops, void *dev,
                         struct errmsg *err)
{
    uint64_t base;
    uint32_t gsi;
    struct virtio_mmio *m = &vm->virtio[vm->nr_virtio];
    /* Routed before the transport exists: nothing dispatches before the vCPUs start. */
    int rc = alloc_claim_mmio_slot(&vm->alloc, VIRTIO_MMIO_SIZE, name, &virtio_mmio_io_ops, m, &base);
    if (!rc)
        rc = alloc_gsi(&vm->alloc, name, &gsi);
    if (rc)
        return err_set(err, rc, "%s: no MMIO slot or IRQ line left for it", name);
    rc = virtio_mmio_init(m, name, ops, dev, &vm->alloc.mem, vm->loop, vm->vm_fd, base, gsi,
                          (struct irq_line){irq_set, vm, gsi});
    vm->nr_virtio++; /* counted even on failure so destroy releases what init made */
    if (rc)
        return err_set(err, rc, "%s: cannot set up its virtio-mmio transport: %s", name, strerror(-rc));
    size_t len = strlen(vm->virtio_cmdline);
    snprintf(vm->virtio_cmdline + len, sizeof(vm->virtio_cmdline) - len, "%svirtio_mmio.device=4K@%#llx:%u",
             len ? " " : "", (unsigned long long)base, gsi);
    return 0;
}

static int setup_virtio(struct vm *vm, struct errmsg *err)
{
    /* The root drive goes first so the guest names it /dev/vda; the rest keep their order. */
    unsigned order[EMBER_MAX_DRIVES], k = 0;
    for (unsigned i = 0; i < vm->cfg.nr_drives; i++)
        if (vm->cfg.drives[i].root)
            order[k++] = i;
    for (unsigned i = 0; i < vm->cfg.nr_drives; i++)
        if (!vm->cfg.drives[i].root)
            order[k++] = i;
    for (unsigned j = 0; j < k; j++) {
        const struct blk_config *d = &vm->cfg.drives[order[j]];
        int rc = virtio_blk_create(&vm->blks[vm->nr_blks], d, err);
        if (rc)
            return rc;
        struct virtio_blk *b = vm->blks[vm->nr_blks++];
        rc = attach_virtio(vm, d->id, &virtio_blk_ops, b, err);
        if (rc)
            return rc;
        if (d->root) {
            size_t len = strlen(vm->virtio_cmdline);
            snprintf(vm->virtio_cmdline + len, sizeof(vm->virtio_cmdline) - len, " root=/dev/vda %s",
                     d->read_only ? "ro" : "rw");
        }
    }
    for (unsigned i = 0; i < vm->cfg.nr_nets; i++) {
        int rc = virtio_net_create(&vm->nets[vm->nr_nets], &vm->cfg.nets[i], err);
        if (rc)
            return rc;
        rc = attach_virtio(vm, vm->cfg.nets[i].id, &virtio_net_ops, vm->nets[vm->nr_nets++], err);
        if (rc)
            return rc;
    }
    return 0;
}

/* Puts the initrd as high as the kernel allows in low RAM, page aligned. */
static int place_initrd(struct vm *vm, const uint8_t *data, size_t size, struct boot_info *bi,
                        struct errmsg *err)
{
    uint64_t top = gm_low_end(&vm->alloc.mem);
    if (vm->kernel.initrd_addr_max + 1 < top)
        top = vm->kernel.initrd_addr_max + 1;
    uint64_t aligned = ((uint64_t)size + 0xfff) & ~0xfffULL;
    if (aligned > top || ((top - aligned) & ~0xfffULL) < vm->kernel.load_end)
        return err_set(err, -ENOMEM,
                       "initrd '%s' (%zu bytes) does not fit between the kernel (ends at %#" PRIx64 ") and the end of low memory (%#" PRIx64 "): give the VM more memory",
                       vm->cfg.initrd_path, size, vm->kernel.load_end, top);
    uint64_t gpa = (top - aligned) & ~0xfffULL;
    if (gm_write(&vm->alloc.mem, gpa, data, size))
        return err_set(err, -EFAULT, "initrd placement at %#" PRIx64 " is outside guest memory", gpa);
    bi->initrd_gpa = gpa;
    bi->initrd_size = size;
    return 0;
}

static int setup_boot(struct vm *vm, struct errmsg *err)
{
    uint64_t mem_bytes = vm->cfg.mem_mib << 20;
    uint8_t *image = NULL;
    size_t image_size = 0;
    int rc = map_file("kernel", vm->cfg.kernel_path, mem_bytes < MAX_IMAGE_BYTES ? mem_bytes : MAX_IMAGE_BYTES,
                       &image, &image_size, err);
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
                            vm->cfg.cmdline ? vm->cfg.cmdline : EMBER_DEFAULT_CMDLINE, vm->virtio_cmdline);
    if (len >= 0)
        len = cmdline_build(cmdline, vm->kernel.cmdline_max, with_devices, extra);
    free(with_devices);
    if (len < 0) {
        free(cmdline);
        return err_set(err, -E2BIG, "kernel command line is too long: this kernel accepts %u bytes%s",
                       vm->kernel.cmdline_max - 1, *extra ? " including the host-compat arguments (see --host-compat)" : "");
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

int vm_create(struct vm *vm, const struct vm_config *cfg, struct event_loop *loop, struct errmsg *err)
{
    uint64_t t0 = vm->t_start_ns;
    struct vm_kvm k = vm->prepared;
    memset(vm, 0, sizeof(*vm));
    vm->prepared = k;
    vm->created = 1;
    vm->loop = loop;
    pthread_mutex_init(&vm->pause_lock, NULL);
    pthread_cond_init(&vm->pause_cond, NULL);
    vm->t_start_ns = t0 ? t0 : now_ns();
    vm->cfg = *cfg;
    vm->kvm_fd = vm->vm_fd = vm->stop_efd = vm->serial_out_fd = -1;
    atomic_init(&vm->end, VM_END_NONE);
    pthread_mutex_init(&vm->report_lock, NULL);
    vm->stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (vm->stop_efd < 0)
        return err_set(err, -errno, "eventfd: %s", strerror(errno));
    int rc = setup_kvm(vm, &vm->prepared, err);
    if (!rc) {
        vm->pvm_host = hostcompat_is_pvm(vm->kvm_fd, NULL);
        if (vm->pvm_host)
            log_info("host KVM is kvm-pvm (software): %s", hostcompat_active(cfg->host_compat, 1)
                         ? "adding guest kernel arguments for it (--host-compat off to disable)"
                         : "host-compat arguments disabled");
    }
    if (!rc)
        rc = setup_memory(vm, err);
    if (!rc)
        rc = setup_irqchip(vm, err);
    if (!rc)
        rc = setup_devices(vm, err);
    if (!rc)
        rc = setup_virtio(vm, err);
    if (!rc)
        rc = setup_boot(vm, err);
    if (rc)
        return rc;
    vm->vcpus = calloc(cfg->vcpus, sizeof(*vm->vcpus));
    if (!vm->vcpus)
        return err_set(err, -ENOMEM, "out of memory");
    for (unsigned i = 0; i < cfg->vcpus; i++) {
        rc = vcpu_create(vm, &vm->vcpus[i], (int)i, err);
        vm->nr_vcpus = (int)i + 1;
        if (rc)
            return rc;
    }
    return 0;
}

int vm_start(struct vm *vm, struct errmsg *err)
{
    int rc = 0;
    for (int i = 0; i < vm->nr_vcpus && !rc; i++)
        rc = vcpu_start_thread(&vm->vcpus[i], err);
    /*
     * This thread's filter goes on while the vCPU threads install theirs (it
     * needed clone until now). Each vCPU thread then waits until every
     * thread is filtered; the last one to get there says go.
     */
    if (!rc)
        rc = seccomp_install(THREAD_VMM, err);
    pthread_mutex_lock(&vm->pause_lock);
    if (!rc) {
        vm->vmm_filtered = 1;
        if (vm->nr_ready == vm->nr_vcpus)
            vm->go = 1;
        pthread_cond_broadcast(&vm->pause_cond);
    }
    /* Answer only once every vCPU thread has its filter (or failed to). */
    while (!rc && vm->nr_ready < vm->nr_vcpus && atomic_load(&vm->end) == VM_END_NONE)
        pthread_cond_wait(&vm->pause_cond, &vm->pause_lock);
    pthread_mutex_unlock(&vm->pause_lock);
    if (!rc && atomic_load(&vm->end) != VM_END_NONE)
        rc = err_set(err, -EPERM, "%s", vm->end_reason);
    if (rc) {
        vm_request_end(vm, VM_END_ERROR, "%s", err->text);
        vm_stop(vm);
        return rc;
    }
    vm->running = 1;
    if (seccomp_enabled())
        log_info("seccomp: every thread filtered before the guest's first instruction");
    else
        log_warn("seccomp filtering is OFF (--no-seccomp, or a sanitizer build): for debugging only");
    return 0;
}

void vm_stop(struct vm *vm)
{
    /* Wake paused vCPUs too: they re-check `end` and leave. */
    pthread_mutex_lock(&vm->pause_lock);
    vm->pause_requested = 0;
    pthread_cond_broadcast(&vm->pause_cond);
    pthread_mutex_unlock(&vm->pause_lock);
    for (int i = 0; i < vm->nr_vcpus; i++)
        vcpu_kick(&vm->vcpus[i]);
    for (int i = 0; i < vm->nr_vcpus; i++) {
        if (vm->vcpus[i].thread_started) {
            pthread_join(vm->vcpus[i].thread, NULL);
            vm->vcpus[i].thread_started = 0;
        }
    }
    vm->running = 0;
}

int vm_pause(struct vm *vm)
{
    if (!vm->running)
        return -EINVAL;
    pthread_mutex_lock(&vm->pause_lock);
    vm->pause_requested = 1;
    pthread_mutex_unlock(&vm->pause_lock);
    for (int i = 0; i < vm->nr_vcpus; i++)
        vcpu_kick(&vm->vcpus[i]);
    pthread_mutex_lock(&vm->pause_lock);
    while (vm->nr_paused < vm->nr_vcpus && atomic_load(&vm->end) == VM_END_NONE) {
        /* A kick can land just before a vCPU re-enters KVM_RUN: repeat it. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 10 * 1000 * 1000;
        if (ts.tv_nsec >= 1000000000L)
            ts.tv_sec++, ts.tv_nsec -= 1000000000L;
        if (pthread_cond_timedwait(&vm->pause_cond, &vm->pause_lock, &ts) == ETIMEDOUT)
            for (int i = 0; i < vm->nr_vcpus; i++)
                vcpu_kick(&vm->vcpus[i]);
    }
    pthread_mutex_unlock(&vm->pause_lock);
    return 0;
}

int vm_resume(struct vm *vm)
{
    if (!vm->running)
        return -EINVAL;
    pthread_mutex_lock(&vm->pause_lock);
    vm->pause_requested = 0;
    pthread_cond_broadcast(&vm->pause_cond);
    pthread_mutex_unlock(&vm->pause_lock);
    return 0;
}

int vm_is_paused(const struct vm *vm) { return vm->pause_requested; }

int vm_replace_drive(struct vm *vm, const char *id, const char *path, struct errmsg *err)
{
    for (unsigned i = 0; i < vm->nr_virtio; i++) {
        struct virtio_mmio *m = &vm->virtio[i];
        if (m->ops != &virtio_blk_ops || strcmp(m->name, id) != 0)
            continue;
        pthread_mutex_lock(&m->lock);
        int rc = virtio_blk_replace_backing(m->dev, path, err);
        if (!rc)
            virtio_mmio_config_changed(m); /* the guest re-reads the capacity */
        pthread_mutex_unlock(&m->lock);
        return rc;
    }
    return err_set(err, -ENOENT, "no drive with id '%s'", id);
}

int vm_ctrl_alt_del(struct vm *vm) { return i8042_send_ctrl_alt_del(&vm->i8042); }

void vm_print_stats(struct vm *vm)
{
    struct exit_stats sum;
    memset(&sum, 0, sizeof(sum));
    for (int i = 0; i < vm->nr_vcpus; i++)
        exit_stats_add(&sum, &vm->vcpus[i].stats);
    char line[512];
    size_t pos = 0;
    for (int k = 0; k < EXIT_KINDS; k++)
        pos += (size_t)snprintf(line + pos, sizeof(line) - pos, "%s%s=%" PRIu64, k ? " " : "",
                                exit_kind_name((enum exit_kind)k), sum.exits[k]);
    fprintf(stderr, "ember: stats: exits: %s\n", line);
    pos = 0;
    for (int k = 0; k < INSN_KINDS; k++)
        pos += (size_t)snprintf(line + pos, sizeof(line) - pos, "%s%s=%" PRIu64, k ? " " : "",
                                interp_insn_name((enum interp_insn)k), sum.insns[k]);
    fprintf(stderr, "ember: stats: interpreted: %s\n", line);
    uint64_t first = atomic_load(&vm->t_first_run_ns);
    fprintf(stderr, "ember: stats: start to first KVM_RUN: %.3f ms; serial bytes out: %" PRIu64 "\n",
            first ? (double)(first - vm->t_start_ns) / 1e6 : -1.0, vm->serial.tx_bytes);
}

void vm_destroy(struct vm *vm)
{
    if (vm->prepared.ready)
        kvm_objects_close(&vm->prepared); /* prepared, never started */
    if (!vm->created)
        return; /* never built: its zeroed fds are not ours to close */
    vm->created = 0;
    for (int i = 0; i < vm->nr_vcpus; i++)
        vcpu_destroy(&vm->vcpus[i]);
    free(vm->vcpus);
    vm->vcpus = NULL;
    vm->nr_vcpus = 0;
    for (unsigned i = 0; i < vm->nr_virtio; i++)
        virtio_mmio_destroy(&vm->virtio[i]);
    vm->nr_virtio = 0;
    for (unsigned i = 0; i < vm->nr_blks; i++)
        virtio_blk_free(vm->blks[i]);
    vm->nr_blks = 0;
    for (unsigned i = 0; i < vm->nr_nets; i++)
        virtio_net_free(vm->nets[i]);
    vm->nr_nets = 0;
    if (vm->devices_ready) {
        serial_destroy(&vm->serial);
        i8042_destroy(&vm->i8042);
        cmos_destroy(&vm->cmos);
        vm->devices_ready = 0;
    }
    alloc_destroy(&vm->alloc);
    free(vm->cpuid);
    vm->cpuid = NULL;
    if (vm->vm_fd >= 0)
        close(vm->vm_fd);
    if (vm->kvm_fd >= 0)
        close(vm->kvm_fd);
    if (vm->stop_efd >= 0)
        close(vm->stop_efd);
    if (vm->serial_out_fd >= 0)
        close(vm->serial_out_fd);
    vm->serial_out_fd = -1;
    vm->vm_fd = vm->kvm_fd = vm->stop_efd = -1;
    pthread_mutex_destroy(&vm->pause_lock);
    pthread_cond_destroy(&vm->pause_cond);
}
