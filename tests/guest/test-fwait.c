/* Ember test guest: "fwait" - FWAIT does not stop the guest.
 *
 * A Linux guest's FPU code runs FWAIT, which kvm-pvm's emulator cannot do;
 * the monitor must step over it (with no pending x87 exception, FWAIT
 * does nothing). FNINIT first so no x87 exception can be pending. The PASS
 * line itself is the proof that execution continued. */
#include "guest.h"

#define CR0_MP (1UL << 1)
#define CR0_EM (1UL << 2)
#define CR0_TS (1UL << 3)
#define CR0_NE (1UL << 5)

void test_fwait(void)
{
	uint64_t cr0;

	/* x87 on, as any kernel sets it: EM or TS would make these #NM. */
	__asm__ volatile("mov %%cr0, %0" : "=r"(cr0));
	cr0 = (cr0 & ~(CR0_EM | CR0_TS)) | CR0_MP | CR0_NE;
	__asm__ volatile("mov %0, %%cr0" : : "r"(cr0));

	say("fninit; fwait next");
	__asm__ volatile("fninit\n\tfwait" ::: "memory");
	say("execution continued after fwait");
	pass();
}
