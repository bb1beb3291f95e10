/* Ember test guest: application processor start-up.
 *
 * An AP woken by INIT, SIPI starts in real mode at CS:IP = (vector << 8):0,
 * i.e. at AP_TRAMPOLINE_ADDR. The BSP copies ap_trampoline..ap_trampoline_end
 * there (test-smp.c), so the 16-bit part must only use offsets from its own
 * start. It goes real mode -> 32-bit protected mode -> long mode using the
 * guest's GDT and page tables, then runs ap_main(apic_id) on its own stack. */
#include "layout.h"

#define REL(x) ((x) - ap_trampoline)          /* offset within the page */
#define ABS(x) (AP_TRAMPOLINE_ADDR + REL(x))  /* linear address once copied */

	.text
	.globl ap_trampoline, ap_trampoline_end
	.code16
ap_trampoline:
	cli
	mov	%cs, %ax                 /* CS = AP_TRAMPOLINE_ADDR >> 4 */
	mov	%ax, %ds
	lgdtl	REL(ap_gdt_desc)
	mov	%cr0, %eax
	or	$1, %eax                 /* CR0.PE */
	mov	%eax, %cr0
	ljmpl	$SEL_CODE32, $ABS(ap_pm32)

	.code32
ap_pm32:
	mov	$SEL_DATA, %eax
	mov	%eax, %ds
	mov	%eax, %es
	mov	%eax, %ss
	mov	%cr4, %eax
	or	$0x20, %eax              /* CR4.PAE */
	mov	%eax, %cr4
	mov	$pml4, %eax
	mov	%eax, %cr3
	mov	$0xc0000080, %ecx        /* IA32_EFER.LME */
	rdmsr
	or	$0x100, %eax
	wrmsr
	mov	%cr0, %eax
	or	$0x80000000, %eax        /* CR0.PG */
	mov	%eax, %cr0
	ljmp	$SEL_CODE64, $ap_start64 /* absolute: the main image */

	/* A copy of gdt_desc inside the page: real mode cannot address the
	 * image at 2 MiB. The base (a link-time address) is the same GDT. */
	.balign 8
ap_gdt_desc:
	.word	4 * 8 - 1
	.long	gdt
ap_trampoline_end:

	/* From here on the code runs from the image, not the copy. */
	.code64
ap_start64:
	mov	$SEL_DATA, %eax
	mov	%eax, %fs
	mov	%eax, %gs
	/* Our local APIC ID (xAPIC ID register, bits 31:24) picks the stack. */
	mov	$0xfee00020, %eax        /* (a bare 0xfee00020 would sign-extend) */
	mov	(%rax), %edi
	shr	$24, %edi
	cmp	$MAX_CPUS, %edi
	jae	1f                       /* no stack for it: park (BSP times out) */
	lea	1(%rdi), %rax
	imul	$STACK_SIZE, %rax
	lea	ap_stacks(%rax), %rsp
	call	ap_main                  /* does not return */
1:	cli
	hlt
	jmp	1b

	.section .stack, "aw", @nobits
	.balign 16
ap_stacks:
	.space	STACK_SIZE * MAX_CPUS
