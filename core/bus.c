#include "core/bus.h"

#include <errno.h>
#include <stddef.h>

int bus_add(struct bus *b, uint64_t base, uint64_t len, const char *name,
            const struct io_ops *ops, void *opaque)
{
    if (len == 0 || base + len < base || !ops)
        return -EINVAL;
    for (int i = 0; i < b->nr; i++) {
        const struct bus_entry *e = &b->entries[i];
        if (base < e->base + e->len && e->base < base + len)
            return -EBUSY;
    }
    if (b->nr >= BUS_MAX_DEVICES)
        return -ENOSPC;
    b->entries[b->nr++] = (struct bus_entry){base, len, name, ops, opaque};
    return 0;
}

const struct bus_entry *bus_find(const struct bus *b, uint64_t addr, uint32_t len)
{
    for (int i = 0; i < b->nr; i++) {
        const struct bus_entry *e = &b->entries[i];
        /* The whole access must fall inside one device's range. */
        if (addr >= e->base && addr - e->base < e->len && len <= e->len - (addr - e->base))
            return e;
    }
    return NULL;
}
