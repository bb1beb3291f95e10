/*
 * One microVM: the KVM VM, its allocator-owned resources, its devices and
 * vCPUs, and the single stop decision every thread funnels into.
 */
#ifndef EMBER_VM_H
#define EMBER_VM_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "devices/cmos.h"
#include "devices/i8042.h"
#include "devices/serial.h"
#include "devices/virtio/blk.h"
#include "devices/virtio/mmio.h"
#include "devices/virtio/net.h"
#include "core/alloc.h"
#include "vm/config.h"
#include "core/errmsg.h"
#include "core/event_loop.h"
#include "x86/loader.h"
#include "vm/stats.h"

#define UNCLAIMED_REPORT_LIMIT 16

/* How the VM ended; maps to ember's exit status. */
enum vm_end {
    VM_END_NONE = 0,
    VM_END_RESET,    /* guest asked for a reset (i8042, reboot): clean */
    VM_END_SHUTDOWN, /* guest powered off: clean */
    VM_END_SIGNAL,   /* SIGINT/SIGTERM: clean */
    VM_END_CRASH,    /* triple fault, emulation failure, unhandled exit */
    VM_END_ERROR,    /* host-side failure while running */
};

struct vcpu {
    struct vm *vm;
    int id;
    int fd;
    struct kvm_run *run;
    pthread_t thread;
    int thread_started;
    struct exit_stats stats;
    unsigned unclaimed_reports;
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
};

struct vm {
    int created;              /* vm_create ran: vm_destroy has something to release */
    struct vm_kvm prepared;   /* from vm_prepare, taken over by vm_create */
    struct vm_config cfg;
    int kvm_fd;
    int vm_fd;
    long run_size;
    int pvm_host;
    struct kvm_cpuid2 *cpuid; /* host-supported CPUID, patched per vCPU */
    struct allocator alloc;
    struct serial serial;
    struct i8042 i8042;
    struct cmos cmos;
    int devices_ready;
    int serial_out_fd;        /* PUT /serial target, or -1 */
    /* virtio devices, in the order the guest sees them (root drive first). */
    struct virtio_mmio virtio[EMBER_MAX_DRIVES + EMBER_MAX_NETS];
    unsigned nr_virtio;
    struct virtio_blk *blks[EMBER_MAX_DRIVES];
    unsigned nr_blks;
    struct virtio_net *nets[EMBER_MAX_NETS];
    unsigned nr_nets;
    char virtio_cmdline[1024]; /* root= and virtio_mmio.device= arguments */
    struct kernel_image kernel;
    struct vcpu *vcpus;
    int nr_vcpus;

    atomic_int end;           /* enum vm_end, first writer wins */
    char end_reason[512];
    int stop_efd;             /* written once when `end` is decided */
    struct event_loop *loop;  /* the process's event loop (VMM thread) */
    int running;              /* vCPU threads started */

    /* Pause (PATCH /vm): vCPU threads park until resumed. */
    pthread_mutex_t pause_lock;
    pthread_cond_t pause_cond;
    int pause_requested;
    int nr_paused;
    int nr_ready;             /* vCPU threads filtered and waiting to start */
    int vmm_filtered;         /* the VMM thread's filter is in place */
    int go;                   /* the guest may run */
    /* Unclaimed addresses already reported (each is reported once). */
    pthread_mutex_t report_lock;
    uint64_t reported[16];
    unsigned nr_reported;

    uint64_t t_start_ns;      /* process start (main) */
    _Atomic uint64_t t_first_run_ns;
};

/* Build everything up to (not including) running vCPUs; devices register on `loop`. */
/*
 * Makes the configuration-independent KVM objects ahead of vm_create. Optional:
 * vm_create makes them itself when this did not run or failed. Never on a
 * vm that vm_create has already built.
 */
int vm_prepare(struct vm *vm, struct errmsg *err);
int vm_create(struct vm *vm, const struct vm_config *cfg, struct event_loop *loop, struct errmsg *err);
/* Start the vCPU threads (the guest runs from here on). */
int vm_start(struct vm *vm, struct errmsg *err);
/* Kick every vCPU out of KVM_RUN and join the threads (after the end is decided). */
void vm_stop(struct vm *vm);
/* Park / unpark every vCPU thread; pause returns once all are parked. */
int vm_pause(struct vm *vm);
int vm_resume(struct vm *vm);
int vm_is_paused(const struct vm *vm);
void vm_print_stats(struct vm *vm);
/* PATCH /drives: swap a drive's backing file; the guest sees the new size. */
int vm_replace_drive(struct vm *vm, const char *id, const char *path, struct errmsg *err);
int vm_ctrl_alt_del(struct vm *vm);
void vm_destroy(struct vm *vm);

/* Decide how the VM ends (first caller wins) and wake the main loop. */
void vm_request_end(struct vm *vm, enum vm_end end, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int vm_exit_status(const struct vm *vm);
uint64_t now_ns(void);

#endif
