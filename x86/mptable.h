/*
 * Intel MultiProcessor Specification 1.4 tables: how a guest without ACPI
 * learns its CPUs, its IOAPIC and how ISA IRQs are wired.
 */
#ifndef EMBER_MPTABLE_H
#define EMBER_MPTABLE_H

#include <stdint.h>

#include "core/guest_mem.h"

/* What fits in the last KiB of base memory (and Firecracker's ceiling). */
#define MPTABLE_MAX_CPUS 32

/* Writes the floating pointer and configuration table at EBDA_GPA. */
int mptable_write(struct guest_mem *gm, int nr_cpus);
uint8_t mptable_checksum(const uint8_t *p, uint64_t len);

#endif
