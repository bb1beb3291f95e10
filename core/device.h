/*
 * How a device model plugs into a VM: one `struct device_ops` per device
 * type, realized once per instance against the `struct device_env` the VM
 * provides. A device claims its own ranges and IRQ lines from the allocator
 * (which routes guest accesses to its io_ops), asks for its interrupt line
 * and kernel command line arguments through the env, and offers its state
 * for snapshots through save/restore. Devices depend on core/ only.
 */
#ifndef EMBER_DEVICE_H
#define EMBER_DEVICE_H

#include <stdint.h>

#include "core/alloc.h"
#include "core/errmsg.h"
#include "core/event_loop.h"
#include "core/io.h"

struct state_writer;
struct state_reader;

/* What the VM gives every device it realizes. */
struct device_env {
    struct allocator *alloc; /* guest memory, ranges, GSIs */
    struct event_loop *loop; /* the VMM thread's loop, for host fds */
    int vm_fd;               /* for ioeventfd/irqfd */
    int console_fd;          /* where the console UART writes (-1: nowhere) */
    void *ctx;               /* passed back to the callbacks below */
    /* Drives GSI `gsi` to `level` (KVM_IRQ_LINE). */
    void (*irq_set)(void *ctx, uint32_t gsi, int level);
    /* The guest asked for a machine reset (i8042 command 0xFE). */
    void (*request_reset)(void *ctx);
    /* Appends one argument to the kernel command line (e.g. virtio_mmio.device=): 0 or -E2BIG. */
    int (*cmdline_append)(void *ctx, const char *arg);
};

/* Receives one named counter of a device's metrics. */
typedef void device_emit_fn(void *ctx, const char *name, uint64_t value);

struct device_ops {
    const char *name; /* the device type ("serial", "virtio-blk") */
    /*
     * Creates an instance from `config` (NULL for devices that have none),
     * claims its ranges and IRQs and stores it in *dev. On failure *dev is
     * what teardown must release (or NULL) and err says why.
     */
    int (*realize)(const struct device_env *env, const void *config, void **dev, struct errmsg *err);
    void (*reset)(void *dev);                                              /* optional: back to power-on state */
    int (*save)(void *dev, struct state_writer *w);                        /* optional: guest-visible state */
    int (*restore)(void *dev, struct state_reader *r, struct errmsg *err); /* optional */
    void (*metrics)(void *dev, device_emit_fn *emit, void *ctx);           /* optional */
    void (*teardown)(void *dev);                                           /* releases everything realize made */
};

/* The interrupt line of a GSI the device was granted. */
struct irq_line device_irq_line(const struct device_env *env, uint32_t gsi);
/* Grants the legacy GSI `gsi` to `owner`; err names it on failure. */
int device_claim_gsi(const struct device_env *env, uint32_t gsi, const char *owner, struct errmsg *err);
/* Grants and routes a port range; err names the device and the port on failure. */
int device_claim_pio(const struct device_env *env, uint16_t base, uint16_t len, const char *owner,
                     const struct io_ops *ops, void *opaque, struct errmsg *err);

#endif
