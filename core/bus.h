/*
 * A bus maps address ranges (granted by the allocator) to device io_ops.
 * Two instances exist: port I/O and MMIO. Filled before vCPUs start, then
 * read-only, so lookups from vCPU threads need no lock.
 */
#ifndef EMBER_BUS_H
#define EMBER_BUS_H

#include <stdint.h>

#include "core/io.h"

#define BUS_MAX_DEVICES 32

struct bus_entry {
    uint64_t base;
    uint64_t len;
    const char *name;
    const struct io_ops *ops;
    void *opaque;
};

struct bus {
    struct bus_entry entries[BUS_MAX_DEVICES];
    int nr;
};

int bus_add(struct bus *b, uint64_t base, uint64_t len, const char *name,
            const struct io_ops *ops, void *opaque);
const struct bus_entry *bus_find(const struct bus *b, uint64_t addr, uint32_t len);

#endif
