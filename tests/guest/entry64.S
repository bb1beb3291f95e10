/* Ember test guest: entry through the Linux x86-64 64-bit boot protocol.
 *
 * Ember enters here (e_entry) in long mode at CPL0 with interrupts off,
 * paging on with its own identity map, and RSI = the boot_params zero page.
 * Its stack (0x8000-0x8fff) is small and belongs to Ember's layout, so the
 * common start-up moves to the guest's own stack. */
#include "layout.h"

	.section .text.entry, "ax"
	.code64
	.globl _start
_start:
	cli
	mov	$BOOT_KIND_LINUX64, %edi
	/* %rsi already holds the zero page address: the second argument. */
	jmp	start64
