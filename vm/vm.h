/*
 * One microVM: the KVM VM, its allocator-owned resources, its devices and
 * vCPUs, and the single stop decision every thread funnels into. Opaque
 * outside vm/: what others need goes through these functions.
 */
#ifndef EMBER_VM_H
#define EMBER_VM_H

#include <stdint.h>

#include "core/errmsg.h"
#include "core/event_loop.h"
#include "devices/virtio/blk.h"
#include "devices/virtio/net.h"
#include "vm/config.h"
#include "vm/stats.h"

struct vm;

/* How the VM ended; maps to ember's exit status. */
enum vm_end {
    VM_END_NONE = 0,
    VM_END_RESET,    /* guest asked for a reset (i8042, reboot): clean */
    VM_END_SHUTDOWN, /* guest powered off: clean */
    VM_END_SIGNAL,   /* SIGINT/SIGTERM: clean */
    VM_END_CRASH,    /* triple fault, emulation failure, unhandled exit */
    VM_END_ERROR,    /* host-side failure while running */
};

/* Counters summed over the VM's vCPUs and devices (metrics, --stats). */
struct vm_metrics {
    struct exit_stats vcpu;
    uint64_t serial_tx_bytes;
    struct blk_counters blk; /* every drive */
    struct net_counters net; /* every NIC */
    struct rng_counters rng; /* the entropy device */
    struct vsock_counters vsock;
    struct balloon_counters balloon;
};

/* A VM with nothing built yet (NULL: out of memory); vm_free releases it and all it holds. */
struct vm *vm_new(void);
void vm_free(struct vm *vm);
/* When the process started (start-up time in --stats); default: when vm_create ran. */
void vm_set_start_time(struct vm *vm, uint64_t t_ns);

/*
 * Makes the configuration-independent KVM objects ahead of vm_create. Optional:
 * vm_create makes them itself when this did not run or failed. Never on a
 * vm that vm_create has already built.
 */
int vm_prepare(struct vm *vm, struct errmsg *err);
/* Build everything up to (not including) running vCPUs; devices register on `loop`. */
int vm_create(struct vm *vm, const struct vm_config *cfg, struct event_loop *loop, struct errmsg *err);
/* Start the vCPU threads (the guest runs from here on). */
int vm_start(struct vm *vm, struct errmsg *err);
/* Kick every vCPU out of KVM_RUN and join the threads (after the end is decided). */
void vm_stop(struct vm *vm);
/* Park / unpark every vCPU thread; pause returns once all are parked. */
int vm_pause(struct vm *vm);
int vm_resume(struct vm *vm);
int vm_is_paused(struct vm *vm);
/* With --stats: exit counters, interpreted instructions and start-up time on stderr. */
void vm_print_stats(struct vm *vm);
void vm_metrics(struct vm *vm, struct vm_metrics *m);
/* PATCH /drives: swap a drive's backing file; the guest sees the new size. */
int vm_replace_drive(struct vm *vm, const char *id, const char *path, struct errmsg *err);
/* PATCH /drives, /network-interfaces: change a running device's rate limiters (NULL: that one unchanged). */
int vm_update_drive_rate_limiter(struct vm *vm, const char *id, const struct rate_limiter_update *u,
                                 struct errmsg *err);
int vm_update_net_rate_limiters(struct vm *vm, const char *id, const struct rate_limiter_update *rx,
                                const struct rate_limiter_update *tx, struct errmsg *err);
/* The balloon (-ENODEV without one): PATCH /balloon, PATCH and GET /balloon/statistics. */
int vm_balloon_set_target(struct vm *vm, uint32_t amount_mib);
int vm_balloon_set_stats_interval(struct vm *vm, uint32_t secs, struct errmsg *err);
int vm_balloon_stats(struct vm *vm, struct balloon_stats *out);
int vm_ctrl_alt_del(struct vm *vm);
/* Host console input for the guest's UART; returns the bytes it took (its FIFO may be full). */
unsigned vm_console_input(struct vm *vm, const uint8_t *buf, unsigned len);
/* Releases what vm_prepare/vm_create made; the vm can be created again. */
void vm_destroy(struct vm *vm);

/* Decide how the VM ends (first caller wins) and wake the main loop. */
void vm_request_end(struct vm *vm, enum vm_end end, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int vm_has_ended(const struct vm *vm);
int vm_exit_status(const struct vm *vm);
const char *vm_end_reason(const struct vm *vm);
/* Readable once the end is decided (for the control loop's poll). */
int vm_stop_fd(const struct vm *vm);
uint64_t now_ns(void);

#endif
