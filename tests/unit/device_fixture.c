/* The legacy device test fixture (device_fixture.h); it has no tests of its own. */
#include "tests/unit/device_fixture.h"

#include <criterion/criterion.h>

void irq_rec_set(void *ctx, uint32_t gsi, int level)
{
    struct irq_rec *r = ctx;
    cr_assert_lt(r->n, IRQ_REC_MAX);
    r->levels[r->n++] = level;
    r->last_gsi = gsi;
}

uint8_t port_rd8(const struct io_ops *ops, void *dev, uint64_t off)
{
    uint8_t v = 0;
    ops->read(dev, off, &v, 1);
    return v;
}

void port_wr8(const struct io_ops *ops, void *dev, uint64_t off, uint8_t v) { ops->write(dev, off, &v, 1); }
