/*
 * What the legacy device tests (i8042, serial) share, no Test() here: a fake
 * interrupt line that records every level change, and one-byte port access
 * through a device's io_ops.
 */
#ifndef EMBER_TEST_DEVICE_FIXTURE_H
#define EMBER_TEST_DEVICE_FIXTURE_H

#include <stdint.h>

#include "core/io.h"

#define IRQ_REC_MAX 256

struct irq_rec {
    int levels[IRQ_REC_MAX]; /* every level set, in order */
    int n;
    uint32_t last_gsi;
};

/* An irq_line set_level callback; ctx is the struct irq_rec. Asserts the record has room. */
void irq_rec_set(void *ctx, uint32_t gsi, int level);

/* One byte read from / written to port offset `off` of dev. */
uint8_t port_rd8(const struct io_ops *ops, void *dev, uint64_t off);
void port_wr8(const struct io_ops *ops, void *dev, uint64_t off, uint8_t v);

#endif
