/* Ember test guest: entry stubs for the 32 exception vectors.
 *
 * Each stub makes the stack look the same (a dummy error code where the
 * CPU pushes none, then the vector), saves the caller-saved registers and
 * calls trap_dispatch(struct trap_frame *) (traps.c). If that returns, the
 * exception was expected and handled: restore and iretq. */

	.text
	.code64

	/* 32 stubs of 16 bytes each: stub N is at trap_stubs + 16 * N. */
	.balign 16
	.globl trap_stubs
trap_stubs:
	.set vec, 0
	.rept 32
	.balign 16
	/* Vectors 8, 10-14, 17, 21, 29, 30 push an error code themselves. */
	.if !(vec == 8 || (vec >= 10 && vec <= 14) || vec == 17 || vec == 21 || vec == 29 || vec == 30)
	pushq	$0
	.endif
	pushq	$vec
	jmp	trap_common
	.set vec, vec + 1
	.endr

trap_common:
	/* Push order is the reverse of struct trap_frame's fields. */
	push	%r11
	push	%r10
	push	%r9
	push	%r8
	push	%rdi
	push	%rsi
	push	%rdx
	push	%rcx
	push	%rax
	cld
	/* The CPU aligned RSP to 16 before its 5-word frame; with error code,
	 * vector and 9 registers (16 words) RSP is 16-byte aligned here. */
	mov	%rsp, %rdi
	call	trap_dispatch
	pop	%rax
	pop	%rcx
	pop	%rdx
	pop	%rsi
	pop	%rdi
	pop	%r8
	pop	%r9
	pop	%r10
	pop	%r11
	add	$16, %rsp                /* vector and error code */
	iretq
