/* Ember test guest: entry through PVH (only linked into test-guest-pvh.elf).
 *
 * The Xen ELF note XEN_ELFNOTE_PHYS32_ENTRY tells the monitor to enter at
 * pvh_start32 in 32-bit protected mode, paging off, flat segments, with
 * EBX = the physical address of struct hvm_start_info. From there the guest
 * turns on long mode itself with its own GDT and page tables (cpu-tables.S)
 * and joins the same code as the 64-bit entry. */
#include "layout.h"

#define XEN_ELFNOTE_PHYS32_ENTRY 18

	.section .note.Xen, "a", @note
	.balign 4
	.long	4                        /* namesz: "Xen\0" */
	.long	4                        /* descsz: one u32 */
	.long	XEN_ELFNOTE_PHYS32_ENTRY
	.asciz	"Xen"
	.long	pvh_start32

	.text
	.code32
	.globl pvh_start32
pvh_start32:
	cli
	/* No stack yet and none needed: EBX (start info) stays untouched. */
	lgdt	gdt_desc
	mov	%cr4, %eax
	or	$0x20, %eax              /* CR4.PAE: long mode needs PAE paging */
	mov	%eax, %cr4
	mov	$pml4, %eax
	mov	%eax, %cr3
	mov	$0xc0000080, %ecx        /* IA32_EFER */
	rdmsr
	or	$0x100, %eax             /* EFER.LME */
	wrmsr
	mov	%cr0, %eax
	or	$0x80000001, %eax        /* CR0.PG (and PE, already on) */
	mov	%eax, %cr0
	/* Now in compatibility mode; the far jump loads our 64-bit CS. */
	ljmp	$SEL_CODE64, $pvh_start64

	.code64
pvh_start64:
	mov	$BOOT_KIND_PVH, %edi
	mov	%ebx, %esi               /* zero-extends: start info is below 4 GiB */
	jmp	start64
