/* Ember test guest: the GDT and the identity page tables.
 *
 * The guest's own, so that the PVH entry and the APs (which start in real
 * mode with nothing set up) can reach long mode without depending on the
 * tables Ember built for the 64-bit boot protocol. Built at assembly time,
 * so no guest instructions (all emulated on kvm-pvm) are spent filling them. */
#include "layout.h"

	.section .rodata
	.balign 16
	.globl gdt, gdt_desc
gdt:
	.quad 0                          /* 0x00 null */
	.quad 0x00cf9a000000ffff         /* 0x08 32-bit code, flat (AP trampoline) */
	.quad 0x00af9a000000ffff         /* 0x10 64-bit code */
	.quad 0x00cf92000000ffff         /* 0x18 data, flat, writable */
gdt_end:

	/* lgdt operand. In 32-bit and 16-bit (lgdtl) modes only the low 4
	 * bytes of the base are read; the GDT is below 4 GiB so that works. */
	.balign 8
gdt_desc:
	.word gdt_end - gdt - 1
	.quad gdt

	/* Identity map of the first 4 GiB with 2 MiB pages, like Ember's,
	 * so the LAPIC (0xfee00000) and the 32-bit MMIO hole are reachable. */
	.section .data.pagetables, "aw"
	.balign 4096
	.globl pml4
pml4:
	.quad pdpt + 0x003               /* present, writable */
	.fill 511, 8, 0
pdpt:
	.quad pd + 0x0000 + 0x003
	.quad pd + 0x1000 + 0x003
	.quad pd + 0x2000 + 0x003
	.quad pd + 0x3000 + 0x003
	.fill 508, 8, 0
pd:
	.set page, 0
	.rept 2048
	.quad (page << 21) | 0x083       /* present, writable, 2 MiB page */
	.set page, page + 1
	.endr
