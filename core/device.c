#include "core/device.h"

#include <string.h>

struct irq_line device_irq_line(const struct device_env *env, uint32_t gsi)
{
    return (struct irq_line){env->irq_set, env->ctx, gsi};
}

int device_claim_gsi(const struct device_env *env, uint32_t gsi, const char *owner, struct errmsg *err)
{
    int rc = alloc_gsi_at(env->alloc, gsi, owner);
    if (rc)
        return err_set(err, rc, "cannot reserve IRQ line %u for %s: %s", gsi, owner, strerror(-rc));
    return 0;
}

int device_claim_pio(const struct device_env *env, uint16_t base, uint16_t len, const char *owner,
                     const struct io_ops *ops, void *opaque, struct errmsg *err)
{
    int rc = alloc_claim_pio(env->alloc, base, len, owner, ops, opaque);
    if (rc)
        return err_set(err, rc, "cannot attach %s at port %#x: %s", owner, base, strerror(-rc));
    return 0;
}
