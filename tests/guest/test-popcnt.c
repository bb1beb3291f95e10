/* Ember test guest: "popcnt" - POPCNT gives the right result and flags.
 *
 * kvm-pvm's emulator cannot do POPCNT and exits to the monitor, which must
 * emulate it for every operand form: 64/32/16-bit, register or memory
 * source (so ModRM decoding and a guest memory read), REX registers.
 * Checks against a software count:
 *  - the result; a 32-bit destination's upper half is zeroed, a 16-bit
 *    destination's upper 48 bits are kept (plain x86 register rules);
 *  - ZF = (source == 0); CF, OF, SF, AF, PF cleared. Flags are preloaded
 *    with the opposite of what POPCNT must leave, so a no-op fails. */
#include "guest.h"

#define FL_CF 0x001UL
#define FL_PF 0x004UL
#define FL_AF 0x010UL
#define FL_ZF 0x040UL
#define FL_SF 0x080UL
#define FL_OF 0x800UL
#define FL_ARITH (FL_CF | FL_PF | FL_AF | FL_ZF | FL_SF | FL_OF)
#define FL_FIXED 0x002UL /* reserved bit 1 always reads 1 */

/* Software count (SWAR): gcc does not turn this into popcnt or a libgcc
 * call, unlike a simple loop. */
static unsigned soft_popcount(uint64_t v)
{
	v = v - ((v >> 1) & 0x5555555555555555UL);
	v = (v & 0x3333333333333333UL) + ((v >> 2) & 0x3333333333333333UL);
	v = (v + (v >> 4)) & 0x0f0f0f0f0f0f0f0fUL;
	return (unsigned)((v * 0x0101010101010101UL) >> 56);
}

/* One POPCNT form: load RFLAGS, run it, read RFLAGS back. INSN is the
 * instruction with %[src] and %[dst] operands; SRC_C the source's
 * constraint ("r" or "m"). */
#define POPCNT_FORM(INSN, SRC_C, SRC, DST, FL)                              \
	__asm__ volatile("push %[fl]\n\tpopfq\n\t" INSN "\n\tpushfq\n\tpop %[fl]" \
			 : [dst] "+r"(DST), [fl] "+r"(FL)                      \
			 : [src] SRC_C(SRC)                                    \
			 : "cc", "memory")

static unsigned checked;

static void check(const char *form, uint64_t src, uint64_t got,
		  uint64_t want, uint64_t flags)
{
	uint64_t want_flags = src ? 0 : FL_ZF;

	checked++;
	if (got != want)
		fail("%s of %#lx gave %#lx, want %#lx", form, src, got, want);
	if ((flags & FL_ARITH) != want_flags)
		fail("%s of %#lx left flags %#lx, want %#lx (of mask %#lx)",
		     form, src, flags & FL_ARITH, want_flags, FL_ARITH);
}

static void check_value(uint64_t v)
{
	/* Preload the opposite: ZF clear when it must be set, and vice versa;
	 * the other arithmetic flags set (they must end up clear). */
	const uint64_t fl0 = FL_FIXED | (v ? FL_ARITH : FL_ARITH & ~FL_ZF);
	const uint64_t junk = 0xdeadbeefcafef00dUL; /* destination preload */
	uint32_t v32 = (uint32_t)v;
	uint16_t v16 = (uint16_t)v;
	uint64_t d, fl;

	d = junk, fl = fl0;
	POPCNT_FORM("popcntq %[src], %[dst]", "r", v, d, fl);
	check("popcnt r64, r64", v, d, soft_popcount(v), fl);
	d = junk, fl = fl0;
	POPCNT_FORM("popcntq %[src], %[dst]", "m", v, d, fl);
	check("popcnt r64, m64", v, d, soft_popcount(v), fl);
	d = junk, fl = fl0; /* REX.R and REX.B registers */
	__asm__ volatile("mov %[v], %%r9\n\tmov %[d], %%r10\n\t"
			 "push %[fl]\n\tpopfq\n\tpopcntq %%r9, %%r10\n\t"
			 "pushfq\n\tpop %[fl]\n\tmov %%r10, %[d]"
			 : [d] "+r"(d), [fl] "+r"(fl) : [v] "r"(v)
			 : "r9", "r10", "cc");
	check("popcnt r10, r9", v, d, soft_popcount(v), fl);

	d = junk, fl = fl0; /* 32-bit result zero-extends into the register */
	POPCNT_FORM("popcntl %k[src], %k[dst]", "r", v32, d, fl);
	check("popcnt r32, r32", v32, d, soft_popcount(v32), fl);
	d = junk, fl = fl0;
	POPCNT_FORM("popcntl %[src], %k[dst]", "m", v32, d, fl);
	check("popcnt r32, m32", v32, d, soft_popcount(v32), fl);

	d = junk, fl = fl0; /* 16-bit result keeps bits 63:16 */
	POPCNT_FORM("popcntw %w[src], %w[dst]", "r", v16, d, fl);
	check("popcnt r16, r16", v16, d,
	      (junk & ~0xffffUL) | soft_popcount(v16), fl);
	d = junk, fl = fl0;
	POPCNT_FORM("popcntw %[src], %w[dst]", "m", v16, d, fl);
	check("popcnt r16, m16", v16, d,
	      (junk & ~0xffffUL) | soft_popcount(v16), fl);
}

void test_popcnt(void)
{
	static const uint64_t values[] = {
		0, 1, 0x8000000000000001UL, 0xffffffffffffffffUL,
		0x123456789abcdef0UL, 0xffff0000ffff0000UL, 0x00000000ffff8000UL,
	};
	uint32_t eax = 1, ecx = 0;

	__asm__ volatile("cpuid" : "+a"(eax), "+c"(ecx) : : "ebx", "edx");
	say("cpuid.1:ecx.popcnt = %u", (ecx >> 23) & 1);
	for (unsigned i = 0; i < sizeof(values) / sizeof(values[0]); i++)
		check_value(values[i]);
	say("%u popcnt forms checked", checked);
	pass();
}
