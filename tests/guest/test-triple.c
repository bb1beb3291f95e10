/* Ember test guest: "triple" - a triple fault.
 *
 * With an IDT of limit 0 the #UD from ud2 cannot be delivered (#GP), nor
 * can that (#DF), so the CPU shuts down. Ember must report a guest crash
 * and exit non-zero; nothing after "triple fault next" may be printed. */
#include "guest.h"

void test_triple(void)
{
	static const struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) empty_idt = { 0, 0 };

	say("triple fault next");
	__asm__ volatile("lidt %0\n\tud2" : : "m"(empty_idt));
	fail("still running after a triple fault");
}
