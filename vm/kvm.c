/*
 * The VM's KVM side: /dev/kvm and the VM object (ahead of the configuration
 * when the API allows), guest RAM slots, KVM's TSS, the in-kernel irqchip and
 * PIT, and the interrupt lines devices raise.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/log.h"
#include "vm/hostcompat.h"
#include "vm/vcpu.h"
#include "vm/vm_internal.h"

#define KVM_TSS_GPA 0xfffbd000ULL

void vm_irq_set(void *ctx, uint32_t gsi, int level)
{
    struct vm *vm = ctx;
    struct kvm_irq_level l = {.irq = gsi, .level = (uint32_t)level};
    if (ioctl(vm->vm_fd, KVM_IRQ_LINE, &l) < 0)
        log_warn("KVM_IRQ_LINE gsi %u: %s", gsi, strerror(errno));
}

void vm_ahead_release(struct vm_ahead *a, long run_size)
{
    vcpu_standby_free(a->standby);
    if (a->vcpu0_run)
        munmap(a->vcpu0_run, (size_t)run_size);
    if (a->vcpu0_fd >= 0)
        close(a->vcpu0_fd);
    memset(a, 0, sizeof(*a));
    a->vcpu0_fd = -1;
}

void kvm_objects_close(struct vm_kvm *k)
{
    vm_ahead_release(&k->ahead, k->run_size);
    free(k->cpuid);
    if (k->vm_fd >= 0)
        close(k->vm_fd);
    if (k->kvm_fd >= 0)
        close(k->kvm_fd);
    memset(k, 0, sizeof(*k));
    k->kvm_fd = k->vm_fd = -1;
    k->ahead.vcpu0_fd = -1;
}

/*
 * /dev/kvm, the VM and the host's CPUID table: nothing here depends on the
 * config. The irqchip, PIT and vCPU 0 are vm_prepare's (struct vm_ahead).
 */
static int kvm_objects_open(struct vm_kvm *k, struct errmsg *err)
{
    memset(k, 0, sizeof(*k));
    k->vm_fd = -1;
    k->ahead.vcpu0_fd = -1;
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

static int irqchip_create(int vm_fd, struct errmsg *err)
{
    if (ioctl(vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
        return err_set(err, -errno, "KVM_CREATE_IRQCHIP: %s", strerror(errno));
    struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};
    if (ioctl(vm_fd, KVM_CREATE_PIT2, &pit) < 0)
        return err_set(err, -errno, "KVM_CREATE_PIT2: %s", strerror(errno));
    return 0;
}

/* The irqchip, PIT, TSS and vCPU 0 before any configuration (see struct vm_ahead). */
static int kvm_make_ahead(struct vm_kvm *k, struct errmsg *err)
{
    struct vm_ahead *a = &k->ahead;
    int rc = irqchip_create(k->vm_fd, err);
    if (rc)
        return rc;
    if (ioctl(k->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)KVM_TSS_GPA) < 0)
        return err_set(err, -errno, "KVM_SET_TSS_ADDR: %s", strerror(errno));
    a->irqchip = 1;
    a->vcpu0_fd = ioctl(k->vm_fd, KVM_CREATE_VCPU, 0UL);
    if (a->vcpu0_fd < 0)
        return err_set(err, -errno, "cannot create vCPU 0: %s", strerror(errno));
    void *run = mmap(NULL, (size_t)k->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, a->vcpu0_fd, 0);
    if (run == MAP_FAILED)
        return err_set(err, -errno, "cannot map vCPU 0 run area: %s", strerror(errno));
    a->vcpu0_run = run;
    return 0;
}

int vm_prepare(struct vm *vm, struct errmsg *err)
{
    if (vm->created || vm->prepared.ready)
        return 0;
    struct vm_kvm *k = &vm->prepared;
    int rc = kvm_objects_open(k, err);
    if (!rc && !hostcompat_is_pvm(k->kvm_fd, NULL))
        rc = kvm_make_ahead(k, err);
    if (!rc)
        rc = vcpu_standby_start(&k->ahead.standby, err);
    if (rc)
        kvm_objects_close(k);
    return rc;
}

int vm_setup_kvm(struct vm *vm, struct errmsg *err)
{
    struct vm_kvm *k = &vm->prepared;
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
    vm->ahead = k->ahead;
    int max = k->max_vcpus;
    memset(k, 0, sizeof(*k));
    k->kvm_fd = k->vm_fd = -1;
    k->ahead.vcpu0_fd = -1;
    if (vm->cfg.vcpus < 1 || vm->cfg.vcpus > (unsigned)max)
        return err_set(err, -EINVAL, "--vcpus %u: this host's KVM allows 1 to %d", vm->cfg.vcpus, max);
    return 0;
}

int vm_setup_memory(struct vm *vm, int mem_fd, struct errmsg *err)
{
    uint64_t bytes = vm->cfg.mem_mib << 20;
    if (vm->cfg.mem_mib < 2)
        return err_set(err, -EINVAL, "--mem-mib %" PRIu64 ": a guest needs at least 2 MiB", vm->cfg.mem_mib);
    int rc = mem_fd >= 0 ? alloc_init_file(&vm->alloc, bytes, mem_fd) : alloc_init(&vm->alloc, bytes);
    if (rc)
        return err_set(err, rc, "cannot %s %" PRIu64 " MiB of guest memory: %s", mem_fd >= 0 ? "map" : "reserve",
                       vm->cfg.mem_mib, strerror(-rc));
    struct guest_mem *gm = &vm->alloc.mem;
    if (vm->cfg.track_dirty_pages && (rc = guest_mem_track_dirty(gm)))
        return err_set(err, rc, "out of memory for the dirty page bitmaps");
    for (int i = 0; i < gm->nr_regions; i++) {
        struct kvm_userspace_memory_region r = {
            .slot = (uint32_t)i,
            .flags = vm->cfg.track_dirty_pages ? KVM_MEM_LOG_DIRTY_PAGES : 0,
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
    if (!vm->ahead.irqchip && ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)KVM_TSS_GPA) < 0)
        return err_set(err, -errno, "KVM_SET_TSS_ADDR: %s", strerror(errno));
    return 0;
}

/* After the RAM slot (see kvm_objects_open). */
int vm_setup_irqchip(struct vm *vm, struct errmsg *err)
{
    int rc = vm->ahead.irqchip ? 0 : irqchip_create(vm->vm_fd, err);
    if (rc)
        return rc;
    /* The PIT owns ports 0x40-0x43 and 0x61 inside KVM; keep devices off them. */
    rc = alloc_claim_pio(&vm->alloc, 0x40, 4, "pit", NULL, NULL);
    if (!rc)
        rc = alloc_claim_pio(&vm->alloc, 0x20, 2, "pic-master", NULL, NULL);
    if (!rc)
        rc = alloc_claim_pio(&vm->alloc, 0xa0, 2, "pic-slave", NULL, NULL);
    if (rc)
        return err_set(err, rc, "cannot reserve in-kernel irqchip ports");
    return 0;
}
