/*
 * Ports that answer "nothing here" on purpose: reads all ones, writes
 * dropped, no warning. Port 0x80 (POST codes, Linux's I/O delay) and the
 * PCI configuration mechanism at 0xCF8-0xCFF: there is no PCI bus, and a
 * kernel probes it early even with pci=off (all ones: no host bridge).
 */
#ifndef EMBER_SINK_H
#define EMBER_SINK_H

#include "core/device.h"

extern const struct device_ops post_code_device_ops;
extern const struct device_ops no_pci_device_ops;

#endif
