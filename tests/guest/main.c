/* Ember test guest: picking the test from the command line, and ending it.
 *
 * "ember-test=NAME" on the kernel command line selects a test (default
 * hello). Every test ends with pass() or fail(), which print the verdict
 * and reset the machine through the i8042, which makes Ember exit 0. */
#include "guest.h"

/* Prints one line and parks the CPU: a booted microVM that costs no host
 * CPU (HLT with interrupts off blocks the vCPU inside KVM until ember stops
 * it). The launch-rate benchmark starts many of these. */
static void test_idle(void)
{
	say("idle: up");
	for (;;)
		__asm__ volatile("cli; hlt");
}

static const struct {
	const char *name;
	void (*run)(void);
} tests[] = {
	{ "hello", test_hello },       { "unclaimed", test_unclaimed },
	{ "smp", test_smp },           { "triple", test_triple },
	{ "int3", test_int3 },         { "popcnt", test_popcnt },
	{ "fwait", test_fwait },       { "cmpxchg16b", test_cmpxchg16b },
	{ "xsave", test_xsave },       { "rdrand", test_rdrand },
	{ "smap-fsgs", test_smap_fsgs }, { "avx512", test_avx512 },
	{ "idle", test_idle },         { "counter", test_counter },
};

#define TEST_NAME_MAX 32
static char current[TEST_NAME_MAX + 1] = "?";

void machine_reset(void)
{
	outb(0x64, 0xfe); /* i8042 "pulse reset line" */
	/* Reset did not happen: stop here; the host side times out. */
	for (;;)
		__asm__ volatile("cli; hlt");
}

void pass(void)
{
	say("PASS %s", current);
	machine_reset();
}

void fail(const char *fmt, ...)
{
	va_list ap;

	console_printf("EMBER-TEST: FAIL %s: ", current);
	va_start(ap, fmt);
	console_vprintf(fmt, ap);
	va_end(ap);
	console_putc('\n');
	machine_reset();
}

/* Copies NAME of the first "ember-test=NAME" token into current[]. */
static void pick_test(const char *cmdline)
{
	static const char key[] = "ember-test=";
	const char *p = cmdline;
	unsigned n = 0;

	for (; *p; p++) {
		if ((p == cmdline || p[-1] == ' ') &&
		    !strncmp(p, key, sizeof(key) - 1))
			break;
	}
	if (!*p) {
		memcpy(current, "hello", sizeof("hello"));
		return;
	}
	for (p += sizeof(key) - 1; *p && *p != ' ' && n < TEST_NAME_MAX; p++)
		current[n++] = *p;
	current[n] = '\0';
}

void guest_main(unsigned kind, uintptr_t info);
void guest_main(unsigned kind, uintptr_t info)
{
	bootinfo_init(kind, info);
	traps_init();
	pick_test(boot_cmdline());

	for (unsigned i = 0; i < sizeof(tests) / sizeof(tests[0]); i++)
		if (!strncmp(current, tests[i].name, TEST_NAME_MAX + 1))
			tests[i].run();
	fail("unknown test (known: hello unclaimed smp triple int3 popcnt fwait cmpxchg16b xsave rdrand smap-fsgs avx512 idle)");
}
