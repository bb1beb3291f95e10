/* Ember test guest: "rdrand" - RDRAND and RDSEED.
 *
 * Linux uses RDRAND early (random pool, KASLR, stack canaries) when CPUID
 * says so. Whether kvm-pvm's emulator runs it or the monitor does, the
 * guest must see CF=1 with a value (RDRAND retried a few times, as the SDM
 * advises), OF/SF/ZF/AF/PF cleared, and successive values that differ; a
 * 16-bit destination keeps bits 63:16, a 32-bit one is zero-extended.
 * RDSEED may legitimately say CF=0 ("no entropy now"); it is retried. */
#include "guest.h"

#define FL_CF 0x001UL
#define FL_OTHERS (0x004UL | 0x010UL | 0x040UL | 0x080UL | 0x800UL)

#define RD(INSN, DST, FL)                                                   \
	__asm__ volatile("push %[fl]\n\tpopfq\n\t" INSN "\n\tpushfq\n\tpop %[fl]" \
			 : [dst] "+r"(DST), [fl] "+r"(FL) : : "cc")

static uint64_t rd64(int seed)
{
	for (int tries = 0; tries < 100; tries++) {
		uint64_t v = 0, fl = 0x2 | FL_OTHERS;

		if (seed)
			RD("rdseed %[dst]", v, fl);
		else
			RD("rdrand %[dst]", v, fl);
		if (fl & FL_OTHERS)
			fail("%s left flags %#lx", seed ? "rdseed" : "rdrand", fl);
		if (fl & FL_CF)
			return v;
		if (v)
			fail("%s with CF=0 gave %#lx, want 0", seed ? "rdseed" : "rdrand", v);
	}
	fail("%s never succeeded in 100 tries", seed ? "rdseed" : "rdrand");
}

void test_rdrand(void)
{
	uint32_t eax = 1, ebx, ecx, edx;

	__asm__ volatile("cpuid" : "+a"(eax), "=b"(ebx), "=c"(ecx), "=d"(edx));
	unsigned has_rdrand = (ecx >> 30) & 1;
	eax = 7, ecx = 0;
	__asm__ volatile("cpuid" : "+a"(eax), "=b"(ebx), "+c"(ecx), "=d"(edx));
	unsigned has_rdseed = (ebx >> 18) & 1;
	say("cpuid: rdrand %u rdseed %u", has_rdrand, has_rdseed);
	if (has_rdrand) {
		uint64_t a = rd64(0), b = rd64(0), c = rd64(0);

		if (a == b && b == c)
			fail("rdrand gave %#lx three times", a);
		uint64_t d = 0xdeadbeefcafef00dUL, fl = 0x2;
		for (int i = 0; i < 100 && !(fl & FL_CF); i++) {
			d = 0xdeadbeefcafef00dUL, fl = 0x2;
			RD("rdrand %w[dst]", d, fl);
		}
		if ((d >> 16) != 0xdeadbeefcafeUL)
			fail("rdrand r16 changed bits 63:16: %#lx", d);
		d = ~0UL, fl = 0x2;
		for (int i = 0; i < 100 && !(fl & FL_CF); i++) {
			d = ~0UL, fl = 0x2;
			RD("rdrand %k[dst]", d, fl);
		}
		if (d >> 32)
			fail("rdrand r32 did not zero-extend: %#lx", d);
		say("rdrand: values differ, operand sizes ok");
	}
	if (has_rdseed) {
		uint64_t a = rd64(1), b = rd64(1);

		if (a == b)
			fail("rdseed gave %#lx twice", a);
		say("rdseed: values differ");
	}
	pass();
}
