/* Ember test guest: constants shared by the assembly and the C files. */
#ifndef GUEST__LAYOUT_H
#define GUEST__LAYOUT_H

/* Our GDT (cpu-tables.S) keeps Ember's selectors so both agree. */
#define SEL_CODE32 0x08
#define SEL_CODE64 0x10
#define SEL_DATA   0x18

/* AP start-up: the SIPI vector names a 4 KiB page below 1 MiB that the
 * guest may use (Ember leaves 0x10000-0x1ffff to the guest). */
#define AP_TRAMPOLINE_ADDR 0x10000
#define AP_SIPI_VECTOR     (AP_TRAMPOLINE_ADDR >> 12)

#define STACK_SIZE 8192 /* BSP stack and each AP's stack */
#define MAX_CPUS   16   /* APs with a local APIC ID >= this have no stack */

/* Values passed from the entry code to guest_main() (bootinfo.c). */
#define BOOT_KIND_LINUX64 1
#define BOOT_KIND_PVH     2

#endif
