#include "devices/sink.h"

#include <string.h>

static void sink_read(void *o, uint64_t off, uint8_t *d, uint32_t len)
{
    (void)o, (void)off;
    memset(d, 0xff, len);
}
static void sink_write(void *o, uint64_t off, const uint8_t *d, uint32_t len)
{
    (void)o, (void)off, (void)d, (void)len;
}
static const struct io_ops sink_io_ops = {.read = sink_read, .write = sink_write};

/* Stateless: *dev stays NULL. */
static int post_realize(const struct device_env *env, const void *config, void **dev, struct errmsg *err)
{
    (void)config;
    *dev = NULL;
    return device_claim_pio(env, 0x80, 1, "post-code", &sink_io_ops, NULL, err);
}

static int no_pci_realize(const struct device_env *env, const void *config, void **dev, struct errmsg *err)
{
    (void)config;
    *dev = NULL;
    return device_claim_pio(env, 0xcf8, 8, "no-pci", &sink_io_ops, NULL, err);
}

static void sink_teardown(void *dev) { (void)dev; }

const struct device_ops post_code_device_ops = {.name = "post-code",
                                                .realize = post_realize,
                                                .teardown = sink_teardown};
const struct device_ops no_pci_device_ops = {.name = "no-pci", .realize = no_pci_realize, .teardown = sink_teardown};
