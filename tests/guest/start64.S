/* Ember test guest: common 64-bit start-up for both entries.
 *
 * In:  %edi = BOOT_KIND_*, %rsi = boot info address (zero page or
 *      hvm_start_info). Long mode, CPL0, interrupts off.
 * Loads the guest's own GDT (so APs and the BSP share one), moves to the
 * guest's own stack, clears .bss and calls guest_main(kind, info). */
#include "layout.h"

	.text
	.code64
	.globl start64
start64:
	mov	%rdi, %r12               /* keep the arguments: rep stosb uses rdi */
	mov	%rsi, %r13

	lgdt	gdt_desc
	mov	$SEL_DATA, %eax
	mov	%eax, %ds
	mov	%eax, %es
	mov	%eax, %ss
	mov	%eax, %fs
	mov	%eax, %gs
	mov	$bsp_stack_top, %rsp
	/* Reload CS from our GDT: a far return is the simple way in 64-bit. */
	pushq	$SEL_CODE64
	pushq	$1f
	lretq
1:
	/* Only .bss needs clearing (stacks live outside it): keep it small,
	 * every byte is an emulated store on kvm-pvm. */
	cld
	mov	$__bss_start, %edi
	mov	$__bss_end, %ecx
	sub	%edi, %ecx
	xor	%eax, %eax
	rep stosb

	mov	%r12, %rdi
	mov	%r13, %rsi
	call	guest_main
2:	cli                              /* guest_main does not return */
	hlt
	jmp	2b

	.section .stack, "aw", @nobits
	.balign 16
	.space	STACK_SIZE
bsp_stack_top:
