/* Boot-time CPU state for the BSP: page tables, GDT, segment and control registers. */
#ifndef EMBER_CPU_BOOT_H
#define EMBER_CPU_BOOT_H

#include <linux/kvm.h>

#include "core/guest_mem.h"
#include "x86/loader.h"

/* Identity-maps the first 4 GiB with 2 MiB pages and writes the boot GDT/IDT. */
int boot_tables_write(struct guest_mem *gm);
/* Registers for entering `k` (64-bit long mode or PVH 32-bit protected mode). */
void boot_regs(const struct kernel_image *k, struct kvm_regs *regs);
void boot_sregs(const struct kernel_image *k, struct kvm_sregs *sregs);

#endif
