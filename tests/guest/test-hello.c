/* Ember test guest: "hello" - the boot hand-over itself.
 *
 * Prints what the monitor passed (protocol, command line, memory map) so a
 * host-side test can compare it with what it configured. Fails when the
 * hand-over is malformed or lists no usable RAM. */
#include "guest.h"

#define E820_RAM 1

void test_hello(void)
{
	struct mem_range r;
	uint64_t usable = 0;
	unsigned n;

	say("hello from the test guest");
	say("boot protocol: %s", boot_kind_name());
	if (bootinfo_error())
		fail("%s", bootinfo_error());
	say("cmdline: %s", boot_cmdline());

	n = boot_mem_count();
	say("e820 entries: %u", n);
	for (unsigned i = 0; boot_mem_entry(i, &r) == 0; i++) {
		say("e820: %#lx-%#lx type %u", r.addr, r.addr + r.size - 1, r.type);
		if (r.type == E820_RAM)
			usable += r.size;
	}
	say("usable RAM: %lu KiB", usable >> 10);
	if (!usable)
		fail("no usable RAM in the memory map");
	pass();
}
