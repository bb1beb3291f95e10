/* Ember test guest: the IDT.
 *
 * Every test runs with all 32 exception vectors routed to trap-stubs.S, so an
 * unexpected exception (say a #UD because the monitor did not emulate an
 * instruction) ends the test with a FAIL line naming the vector and RIP,
 * instead of a silent triple fault. A test that expects an exception
 * installs a hook for that vector. */
#include "guest.h"

#define NR_VECTORS 32

struct idt_gate {
	uint16_t offset_lo;
	uint16_t selector;
	uint8_t ist;
	uint8_t type_attr; /* 0x8e: present, DPL 0, 64-bit interrupt gate */
	uint16_t offset_mid;
	uint32_t offset_hi;
	uint32_t reserved;
} __attribute__((packed));

static struct idt_gate idt[NR_VECTORS] __attribute__((aligned(16)));
static trap_hook hooks[NR_VECTORS];

extern const char trap_stubs[]; /* trap-stubs.S: 16 bytes per vector */

/* Loads the IDT traps_init built: the BSP's, and every AP's (an AP leaves
 * INIT with IDTR base 0, where any exception would be a silent triple fault). */
void traps_load(void)
{
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) idtr = { sizeof(idt) - 1, (uintptr_t)idt };

	__asm__ volatile("lidt %0" : : "m"(idtr));
}

void traps_init(void)
{
	for (unsigned v = 0; v < NR_VECTORS; v++) {
		uintptr_t stub = (uintptr_t)trap_stubs + 16 * v;

		idt[v] = (struct idt_gate){
			.offset_lo = stub & 0xffff,
			.selector = SEL_CODE64,
			.type_attr = 0x8e,
			.offset_mid = (stub >> 16) & 0xffff,
			.offset_hi = stub >> 32,
		};
	}
	traps_load();
}

void traps_set_hook(unsigned vector, trap_hook hook)
{
	if (vector < NR_VECTORS)
		hooks[vector] = hook;
}

/* Called from trap-stubs.S. Returning resumes the interrupted code. */
void trap_dispatch(struct trap_frame *f);
void trap_dispatch(struct trap_frame *f)
{
	if (f->vector < NR_VECTORS && hooks[f->vector] && hooks[f->vector](f))
		return;
	fail("unexpected exception %lu (error code %#lx) at rip %#lx",
	     f->vector, f->error, f->rip);
}
