/*
 * The VM's and vCPUs' fields and the functions vm/ files share: private to
 * vm/ (everything else uses vm/vm.h).
 */
#ifndef EMBER_VM_INTERNAL_H
#define EMBER_VM_INTERNAL_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "core/alloc.h"
#include "core/device.h"
#include "core/event_loop.h"
#include "vm/config.h"
#include "vm/dispatch.h"
#include "vm/gate.h"
#include "vm/stats.h"
#include "vm/vm.h"
#include "x86/loader.h"

/* Legacy rows, one per drive and per NIC. */
#define VM_MAX_DEVICES (8 + EMBER_MAX_DRIVES + EMBER_MAX_NETS)

struct vcpu {
    struct vm *vm;
    int id;
    int fd;
    struct kvm_run *run;
    pthread_t thread;
    int thread_started;
    struct exit_stats stats;
};

/*
 * What vm_prepare also makes ahead on a hardware KVM host, every VM needing it
 * whatever its configuration: the in-kernel irqchip, PIT and TSS, vCPU 0 and
 * its thread (seccomp-filtered, waiting for the vCPU it will run). Each one
 * costs about a millisecond of a snapshot load or InstanceStart otherwise.
 * Not on kvm-pvm, where an irqchip made before the RAM slot made InstanceStart
 * 4.5 ms slower (measured); vCPU 0 needs the irqchip first (its LAPIC).
 */
struct vcpu_standby;
struct vm_ahead {
    int irqchip;                  /* KVM_CREATE_IRQCHIP, KVM_CREATE_PIT2 and KVM_SET_TSS_ADDR done */
    int vcpu0_fd;                 /* vCPU 0, or -1 */
    struct kvm_run *vcpu0_run;    /* its run area, or NULL */
    struct vcpu_standby *standby; /* vCPU 0's thread, or NULL */
};

/*
 * KVM objects that depend on no configuration: /dev/kvm, the VM and its
 * supported-CPUID table. In API mode they are made
 * while ember waits for the orchestrator's configuration (vm_prepare), so
 * that InstanceStart does not pay for them.
 */
struct vm_kvm {
    int ready;
    int kvm_fd;
    int vm_fd;
    int max_vcpus;
    long run_size;
    struct kvm_cpuid2 *cpuid;
    struct vm_ahead ahead;
};

/* One realized device: its type, its state and the id the VM knows it by. */
struct device_instance {
    const struct device_ops *ops;
    void *dev;
    const char *id; /* drive/NIC id, or the type name */
};

struct vm {
    int created;            /* vm_create ran: vm_destroy has something to release */
    struct vm_kvm prepared; /* from vm_prepare, taken over by vm_create */
    struct vm_ahead ahead;  /* taken over from prepared: what is still unused of it */
    struct vm_config cfg;
    int kvm_fd;
    int vm_fd;
    long run_size;
    int pvm_host;
    struct kvm_cpuid2 *cpuid; /* host-supported CPUID, patched per vCPU */
    struct allocator alloc;
    struct dispatcher dispatcher;
    /* In the order they were realized (legacy, then virtio with the root drive first). */
    struct device_instance devices[VM_MAX_DEVICES];
    unsigned nr_devices;
    int serial_out_fd;      /* PUT /serial target, or -1 */
    char dev_cmdline[1024]; /* what devices added (root=, virtio_mmio.device=) */
    struct kernel_image kernel;
    struct vcpu *vcpus;
    int nr_vcpus;

    /* Snapshots: the MSRs a vCPU's state carries and the XSAVE size, found while KVM calls are still allowed. */
    uint32_t *snap_msrs;
    uint32_t nr_snap_msrs;
    uint32_t xsave_size;
    int start_paused;    /* vm_start parks every vCPU before its first KVM_RUN (a snapshot loaded without resume) */
    int uffd, uffd_sock; /* a Uffd memory backend: the userfaultfd and the handler's connection, else -1 */

    atomic_int end; /* enum vm_end, first writer wins */
    char end_reason[512];
    int stop_efd;            /* written once when `end` is decided */
    struct event_loop *loop; /* the process's event loop (VMM thread) */
    int running;             /* vCPU threads started */
    struct gate gate;        /* start barrier and pause */

    uint64_t t_start_ns; /* process start (main) */
    _Atomic uint64_t t_first_run_ns;
};

/* vm/vm.c: what creating a VM and restoring one share. */
/*
 * Everything but the boot structures and vCPUs: KVM objects, guest RAM (from
 * mem_fd, a snapshot's memory file, when >= 0; else anonymous), the irqchip,
 * the devices. The caller runs vm_destroy on failure.
 */
int vm_build_machine(struct vm *vm, const struct vm_config *cfg, struct event_loop *loop, int mem_fd,
                     struct errmsg *err);
/* cfg->vcpus vCPUs; `boot`: set up for the kernel's entry (else a restore overwrites their state). */
int vm_create_vcpus(struct vm *vm, int boot, struct errmsg *err);

/* vm/kvm.c: KVM objects, guest memory slots, the in-kernel irqchip. */
void kvm_objects_close(struct vm_kvm *k);
/* Closes what is left unused of what vm_prepare made ahead. */
void vm_ahead_release(struct vm_ahead *a, long run_size);
int vm_setup_kvm(struct vm *vm, struct errmsg *err);
/* Guest RAM (see vm_build_machine for mem_fd) and its KVM slots, dirty-logged with cfg.track_dirty_pages. */
int vm_setup_memory(struct vm *vm, int mem_fd, struct errmsg *err);
int vm_setup_irqchip(struct vm *vm, struct errmsg *err);
void vm_irq_set(void *vm, uint32_t gsi, int level);

/* vm/boot.c: kernel, initrd, command line and boot structures in guest memory. */
int vm_setup_boot(struct vm *vm, struct errmsg *err);

/* vm/snapshot.c: what snapshots need of every VM (vm_build_machine), and its release (vm_destroy). */
int vm_snapshot_prepare(struct vm *vm, struct errmsg *err);
void vm_snapshot_release(struct vm *vm);

/* vm/devices.c: the device table and the VM's instance list. */
int vm_devices_realize(struct vm *vm, struct errmsg *err);
void vm_devices_teardown(struct vm *vm);
/* The instance of type `ops` (with `id`, if not NULL), or NULL. */
void *vm_device_find(struct vm *vm, const struct device_ops *ops, const char *id);
/* Adds every device's counters into m. */
void vm_devices_metrics(struct vm *vm, struct vm_metrics *m);

#endif
