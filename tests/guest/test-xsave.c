/* Ember test guest: "xsave" - the XSAVE family.
 *
 * The guest sees the host's CPUID (XSAVE, XSAVEOPT, XSAVEC, XSAVES, AVX...)
 * and kvm-pvm's emulator cannot run XSAVE/XRSTOR and friends; the monitor
 * runs them on KVM's copy of the vCPU's extended state. Checks, with XCR0 =
 * x87 | SSE | AVX (what the CPU has of those):
 *  - XGETBV(0) reads back what XSETBV wrote;
 *  - XRSTOR (standard format) loads x87 control, MXCSR, XMM0-15 and the
 *    upper YMM halves; FXSAVE (which kvm-pvm runs itself) sees the same
 *    x87/SSE state, so the state really reached the vCPU;
 *  - XSAVE and XSAVEOPT write it back (standard format, XSTATE_BV);
 *  - XSAVEC writes the compacted format (XCOMP_BV, AVX at byte 576), and
 *    XRSTOR of a compacted area loads it;
 *  - XSAVES/XRSTORS round trip (when the CPU has them);
 *  - XRSTOR with XSTATE_BV = 0 puts components in their initial state;
 *  - a misaligned area and a bad header raise #GP(0); an area outside the
 *    guest's mapped memory raises #PF with CR2 (and the write bit for saves). */
#include "guest.h"

#define CR0_MP (1UL << 1)
#define CR0_EM (1UL << 2)
#define CR0_TS (1UL << 3)
#define CR0_NE (1UL << 5)
#define CR4_OSFXSR (1UL << 9)
#define CR4_OSXMMEXCPT (1UL << 10)
#define CR4_OSXSAVE (1UL << 18)

#define AREA_SIZE 4096
static uint8_t area[5][AREA_SIZE] __attribute__((aligned(64)));
static uint8_t fx[512] __attribute__((aligned(16)));

static volatile uint64_t fault_vector, fault_error, fault_cr2, fault_count;
static volatile uint64_t resume_rip;

static int on_fault(struct trap_frame *f)
{
	uint64_t cr2;

	__asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
	fault_count++;
	fault_vector = f->vector;
	fault_error = f->error;
	fault_cr2 = cr2;
	f->rip = resume_rip;
	return 1;
}

/* One XSAVE-family instruction on (%rdi) with EDX:EAX = mask; a fault resumes after it. */
#define XOP(INSN, p, mask)                                                         \
	__asm__ volatile("lea 1f(%%rip), %%r8\n\tmov %%r8, %[resume]\n\t" INSN " (%[a])\n1:" \
			 : [resume] "=m"(resume_rip)                               \
			 : [a] "D"(p), "a"((uint32_t)(mask)), "d"((uint32_t)((uint64_t)(mask) >> 32)) \
			 : "r8", "memory")

static void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
	__asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(sub));
}

static uint64_t xgetbv(uint32_t n)
{
	uint32_t lo, hi;

	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(n));
	return (uint64_t)hi << 32 | lo;
}

static uint64_t ld64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}
static void st64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static uint32_t ld32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}
static void st32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }

static int differs(const uint8_t *a, const uint8_t *b, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (a[i] != b[i])
			return (int)i + 1;
	return 0;
}

static void fxsave(void)
{
	memset(fx, 0, sizeof(fx));
	__asm__ volatile("fxsave64 %0" : "=m"(fx));
}

static void expect_fault(const char *what, uint64_t vector, uint64_t error_mask,
			 uint64_t error, uint64_t cr2)
{
	/* CR2: the first page of the area. Which byte of an XSAVE area faults
	 * first is the CPU's choice (QEMU's TCG touches the header at +512
	 * first, Ember's interpreter the legacy area at +0). */
	if (fault_count != 1 || fault_vector != vector || (fault_error & error_mask) != error ||
	    (vector == 14 && (fault_cr2 < cr2 || fault_cr2 >= cr2 + 4096)))
		fail("%s: %lu fault(s), vector %lu error %#lx cr2 %#lx; want vector %lu error %#lx",
		     what, fault_count, fault_vector, fault_error, fault_cr2, vector, error);
	fault_count = 0;
}

void test_xsave(void)
{
	uint32_t r[4];
	uint64_t cr, xcr0;

	cpuid(1, 0, r);
	if (!(r[2] & (1u << 26))) {
		say("the CPU has no XSAVE: nothing to test");
		pass();
	}
	cpuid(0xd, 0, r);
	xcr0 = (r[0] & 0x7);
	cpuid(0xd, 1, r);
	unsigned opt = r[0] & 1, compact = (r[0] >> 1) & 1, sup = (r[0] >> 3) & 1;
	unsigned avx_off = 0, avx_size = 0;
	if (xcr0 & 4) {
		cpuid(0xd, 2, r);
		avx_size = r[0], avx_off = r[1];
	}
	say("xcr0 %#lx, xsaveopt %u xsavec %u xsaves %u, avx state %u bytes at %u",
	    xcr0, opt, compact, sup, avx_size, avx_off);

	__asm__ volatile("mov %%cr0, %0" : "=r"(cr));
	cr = (cr & ~(CR0_EM | CR0_TS)) | CR0_MP | CR0_NE;
	__asm__ volatile("mov %0, %%cr0" : : "r"(cr));
	__asm__ volatile("mov %%cr4, %0" : "=r"(cr));
	cr |= CR4_OSFXSR | CR4_OSXMMEXCPT | CR4_OSXSAVE;
	__asm__ volatile("mov %0, %%cr4" : : "r"(cr));
	__asm__ volatile("xsetbv" : : "c"(0), "a"((uint32_t)xcr0), "d"(0));
	if (xgetbv(0) != xcr0)
		fail("xgetbv(0) = %#lx after xsetbv %#lx", xgetbv(0), xcr0);

	/* Area 0: a state to load (standard format). */
	uint8_t *a = area[0];
	memset(a, 0, AREA_SIZE);
	a[0] = 0x7f, a[1] = 0x02; /* FCW 0x027f */
	st32(a + 24, 0x1fa0);      /* MXCSR: FZ-free, DAZ-free, a non-default rounding */
	for (unsigned i = 0; i < 256; i++)
		a[160 + i] = (uint8_t)(i * 13 + 5);
	for (unsigned i = 0; i < avx_size; i++)
		a[avx_off + i] = (uint8_t)(i * 7 + 1);
	st64(a + 512, xcr0); /* XSTATE_BV */
	XOP("xrstor64", a, ~0UL);

	fxsave();
	if (ld32(fx + 24) != 0x1fa0 || (fx[0] | fx[1] << 8) != 0x027f)
		fail("after xrstor, fxsave shows MXCSR %#x FCW %#x", ld32(fx + 24), fx[0] | fx[1] << 8);
	if (differs(fx + 160, a + 160, 256))
		fail("after xrstor, fxsave shows other XMM registers (byte %d)", differs(fx + 160, a + 160, 256) - 1);
	say("xrstor: state reached the vCPU (seen by fxsave)");

	/* XSAVE and XSAVEOPT write it back. */
	uint8_t *b = area[1];
	for (unsigned k = 0; k < 1 + opt; k++) {
		memset(b, 0, AREA_SIZE);
		if (k == 0)
			XOP("xsave64", b, ~0UL);
		else
			XOP("xsaveopt64", b, ~0UL);
		const char *n = k ? "xsaveopt" : "xsave";
		if (ld32(b + 24) != 0x1fa0 || differs(b + 160, a + 160, 256))
			fail("%s: MXCSR %#x or XMM registers differ", n, ld32(b + 24));
		if (avx_size && differs(b + avx_off, a + avx_off, avx_size))
			fail("%s: upper YMM halves differ", n);
		if ((ld64(b + 512) & xcr0 & 6) != (xcr0 & 6) || ld64(b + 520) != 0)
			fail("%s: header XSTATE_BV %#lx XCOMP_BV %#lx", n, ld64(b + 512), ld64(b + 520));
	}
	say("xsave%s: standard format written", opt ? "/xsaveopt" : "");

	if (compact) {
		uint8_t *d = area[2];
		memset(d, 0, AREA_SIZE);
		XOP("xsavec64", d, ~0UL);
		if (ld64(d + 520) != (xcr0 | 1UL << 63))
			fail("xsavec: XCOMP_BV %#lx", ld64(d + 520));
		if (differs(d + 160, a + 160, 256) || (avx_size && differs(d + 576, a + avx_off, avx_size)))
			fail("xsavec: state differs (AVX expected at 576)");
		d[160] ^= 0xff; /* change XMM0 and load the compacted area */
		XOP("xrstor64", d, ~0UL);
		fxsave();
		if (fx[160] != d[160])
			fail("xrstor (compacted): XMM0 byte 0 is %#x, want %#x", fx[160], d[160]);
		say("xsavec: compacted format written and loaded back");
	}
	if (sup) {
		uint8_t *e = area[3];
		memset(e, 0, AREA_SIZE);
		XOP("xsaves64", e, ~0UL);
		if (!(ld64(e + 520) >> 63))
			fail("xsaves: XCOMP_BV %#lx lacks bit 63", ld64(e + 520));
		e[161] ^= 0xff;
		XOP("xrstors64", e, ~0UL);
		fxsave();
		if (fx[161] != e[161])
			fail("xrstors: XMM0 byte 1 is %#x, want %#x", fx[161], e[161]);
		say("xsaves/xrstors: round trip");
	}

	/* XSTATE_BV = 0: every component to its initial state (standard form: MXCSR from memory). */
	uint8_t *z = area[4];
	memset(z, 0, AREA_SIZE);
	st32(z + 24, 0x1f80);
	XOP("xrstor64", z, ~0UL);
	fxsave();
	for (unsigned i = 160; i < 416; i++)
		if (fx[i])
			fail("initial state: XMM byte %u is %#x", i - 160, fx[i]);
	if ((fx[0] | fx[1] << 8) != 0x37f)
		fail("initial state: FCW %#x, want 0x37f", fx[0] | fx[1] << 8);
	say("xrstor with XSTATE_BV 0: initial state");

	/* Faults. */
	traps_set_hook(13, on_fault);
	traps_set_hook(14, on_fault);
	fault_count = 0;
	XOP("xsave64", area[1] + 32, ~0UL);
	expect_fault("xsave to a misaligned area", 13, ~0UL, 0, 0);
	st64(area[1] + 512, 1UL << 8); /* XSTATE_BV bit 8 (PT): a supervisor state, never in XCR0 */
	XOP("xrstor64", area[1], ~0UL);
	expect_fault("xrstor with a bad header", 13, ~0UL, 0, 0);
	XOP("xsave64", (void *)0x100000000UL, ~0UL);
	expect_fault("xsave to unmapped memory", 14, 0x7, 0x2, 0x100000000UL);
	XOP("xrstor64", (void *)0x100000000UL, ~0UL);
	expect_fault("xrstor from unmapped memory", 14, 0x7, 0x0, 0x100000000UL);
	say("faults: #GP(0) for alignment and header, #PF with CR2 for unmapped areas");
	pass();
}
