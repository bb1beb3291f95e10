/* Ember test guest: "int3" - a #BP handler runs and returns.
 *
 * On kvm-pvm the instruction emulator cannot do INT3 and exits to the
 * monitor, which must deliver vector 3 itself (RIP past the INT3). The
 * handler counts its runs and records the return RIP, which must be the
 * instruction right after the INT3. */
#include "guest.h"

static volatile unsigned bp_count;
static volatile uint64_t bp_rip;

static int on_breakpoint(struct trap_frame *f)
{
	bp_count++;
	bp_rip = f->rip;
	/* A second run means iretq landed on the INT3 again (RIP not moved
	 * past it when the monitor injected #BP): stop instead of looping. */
	if (bp_count > 1)
		fail("#BP handler ran again, return rip %#lx", f->rip);
	return 1; /* handled: iretq to f->rip */
}

void test_int3(void)
{
	uint64_t after;

	traps_set_hook(3, on_breakpoint);
	__asm__ volatile("int3\n"
			 "1:\tlea 1b(%%rip), %0"
			 : "=r"(after) : : "memory");
	say("#bp handler ran %u time(s), returned to %#lx (int3 ends at %#lx)",
	    bp_count, bp_rip, after);
	if (bp_count != 1)
		fail("#BP handler ran %u times, want 1", bp_count);
	if (bp_rip != after)
		fail("#BP returned to %#lx, want %#lx", bp_rip, after);
	pass();
}
