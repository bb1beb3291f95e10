/*
 * The interface every device model (interpreter of guest I/O) implements.
 * A device sees offsets relative to the range the allocator granted it;
 * data is little-endian, len is 1, 2, 4 or 8.
 */
#ifndef EMBER_IO_H
#define EMBER_IO_H

#include <stdint.h>

struct io_ops {
    void (*read)(void *opaque, uint64_t offset, uint8_t *data, uint32_t len);
    void (*write)(void *opaque, uint64_t offset, const uint8_t *data, uint32_t len);
};

/* How a device raises its interrupt line; provided by the VMM. */
struct irq_line {
    void (*set)(void *ctx, uint32_t gsi, int level);
    void *ctx;
    uint32_t gsi;
};

static inline void irq_line_set(const struct irq_line *l, int level)
{
    if (l->set)
        l->set(l->ctx, l->gsi, level);
}

/* Edge on a line the IOAPIC/PIC treat as edge-triggered (ISA). */
static inline void irq_line_pulse(const struct irq_line *l)
{
    irq_line_set(l, 1);
    irq_line_set(l, 0);
}

#endif
