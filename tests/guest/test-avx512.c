/* Ember test guest: "avx512" - the VEX/EVEX vector instructions.
 *
 * Linux's x86 BLAKE2s (the random pool; built into Debian's kernels) runs
 * AVX-512 code under kernel_fpu_begin() when CPUID offers AVX-512, and
 * kvm-pvm's emulator knows no VEX/EVEX instruction. The monitor runs them
 * on KVM's copy of the vector registers. Each check loads inputs from
 * memory, runs the instruction forms BLAKE2s uses, stores the result and
 * compares it with the same computation in plain C:
 *  - LDMXCSR/STMXCSR (kernel_fpu_begin's first instruction);
 *  - VMOVDQU/VMOVDQA loads and stores, VMOVD from a GPR;
 *  - VPADDD, VPADDQ, VPXOR, VPSHUFD (VEX, 128 bits);
 *  - VPERMI2D (EVEX, 256 bits), VPRORD (EVEX, 128 bits);
 *  - VEXTRACTI128; VZEROUPPER clears bits 255:128;
 *  - a VEX.128 write clears the destination's upper bits. */
#include "guest.h"

#define CR0_EM (1UL << 2)
#define CR0_TS (1UL << 3)
#define CR0_MP (1UL << 1)
#define CR4_OSFXSR (1UL << 9)
#define CR4_OSXMMEXCPT (1UL << 10)
#define CR4_OSXSAVE (1UL << 18)

static uint32_t a[16] __attribute__((aligned(64)));
static uint32_t b[16] __attribute__((aligned(64)));
static uint32_t idx[16] __attribute__((aligned(64)));
static uint32_t out[16] __attribute__((aligned(64)));
static uint32_t want[16];

static void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
	__asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(sub));
}

static uint32_t ror32(uint32_t x, unsigned n) { return x >> n | x << (32 - n); }

static void expect(const char *what, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (out[i] != want[i])
			fail("%s: dword %u is %#x, want %#x", what, i, out[i], want[i]);
}

void test_avx512(void)
{
	uint32_t r[4];
	uint64_t cr;

	cpuid(1, 0, r);
	unsigned avx = (r[2] >> 28) & 1, xsave = (r[2] >> 26) & 1;
	cpuid(7, 0, r);
	unsigned avx512f = (r[1] >> 16) & 1, avx512vl = (r[1] >> 31) & 1;
	cpuid(0xd, 0, r);
	unsigned xcr0_ok = (r[0] & 0xe7) == 0xe7;
	say("cpuid: xsave %u avx %u avx512f %u avx512vl %u xcr0 avx-512 %u", xsave, avx, avx512f, avx512vl, xcr0_ok);
	if (!xsave || !avx || !avx512f || !avx512vl || !xcr0_ok) {
		say("the CPU lacks AVX-512: nothing to test");
		pass();
	}
	__asm__ volatile("mov %%cr0, %0" : "=r"(cr));
	__asm__ volatile("mov %0, %%cr0" : : "r"((cr & ~(CR0_EM | CR0_TS)) | CR0_MP));
	__asm__ volatile("mov %%cr4, %0" : "=r"(cr));
	__asm__ volatile("mov %0, %%cr4" : : "r"(cr | CR4_OSFXSR | CR4_OSXMMEXCPT | CR4_OSXSAVE));
	__asm__ volatile("xsetbv" : : "c"(0), "a"(0xe7), "d"(0));

	for (unsigned i = 0; i < 16; i++) {
		a[i] = 0x01234567u * (i + 1) ^ 0x9e3779b9u;
		b[i] = 0x89abcdefu * (i + 3) + 0x7f4a7c15u;
		idx[i] = (i * 5 + 3) & 15; /* 8 dwords per table: bit 3 picks the table */
	}

	/* kernel_fpu_begin: LDMXCSR of the default; STMXCSR reads it back. */
	uint32_t mx = 0x1f80, mx_out = 0;
	__asm__ volatile("ldmxcsr %1\n\tstmxcsr %0" : "=m"(mx_out) : "m"(mx));
	if (mx_out != 0x1f80)
		fail("stmxcsr after ldmxcsr 0x1f80 gave %#x", mx_out);

	/* VEX.128: (a + b) ^ b, then vpshufd $0x93. */
	__asm__ volatile("vmovdqu %[a], %%xmm0\n\t"
			 "vmovdqa %[b], %%xmm1\n\t"
			 "vpaddd %%xmm1, %%xmm0, %%xmm2\n\t"
			 "vpxor %%xmm1, %%xmm2, %%xmm3\n\t"
			 "vpshufd $0x93, %%xmm3, %%xmm4\n\t"
			 "vmovdqu %%xmm4, %[o]"
			 : [o] "=m"(*(uint32_t(*)[4])out)
			 : [a] "m"(*(uint32_t(*)[4])a), [b] "m"(*(uint32_t(*)[4])b));
	uint32_t t[4];
	for (unsigned i = 0; i < 4; i++)
		t[i] = (a[i] + b[i]) ^ b[i];
	for (unsigned k = 0; k < 4; k++)
		want[k] = t[(0x93 >> (2 * k)) & 3];
	expect("vpaddd/vpxor/vpshufd", 4);

	/* VPADDQ and VMOVD from a GPR. */
	uint32_t ecx = 0xcafe1234;
	__asm__ volatile("vmovd %[c], %%xmm5\n\t"
			 "vmovdqu %[a], %%xmm4\n\t"
			 "vpaddq %%xmm5, %%xmm4, %%xmm4\n\t"
			 "vmovdqu %%xmm4, %[o]"
			 : [o] "=m"(*(uint32_t(*)[4])out)
			 : [a] "m"(*(uint32_t(*)[4])a), [c] "r"(ecx));
	uint64_t q0 = ((uint64_t)a[1] << 32 | a[0]) + ecx;
	want[0] = (uint32_t)q0, want[1] = (uint32_t)(q0 >> 32), want[2] = a[2], want[3] = a[3];
	expect("vmovd/vpaddq", 4);

	/* EVEX: vpermi2d over two 8-dword tables (ymm6 = a, ymm7 = b), indexes in ymm8. */
	__asm__ volatile("vmovdqu %[a], %%ymm6\n\t"
			 "vmovdqu %[b], %%ymm7\n\t"
			 "vmovdqa %[i], %%ymm8\n\t"
			 "vpermi2d %%ymm7, %%ymm6, %%ymm8\n\t"
			 "vmovdqu %%ymm8, %[o]"
			 : [o] "=m"(*(uint32_t(*)[8])out)
			 : [a] "m"(*(uint32_t(*)[8])a), [b] "m"(*(uint32_t(*)[8])b), [i] "m"(*(uint32_t(*)[8])idx));
	for (unsigned j = 0; j < 8; j++)
		want[j] = (idx[j] & 8) ? b[idx[j] & 7] : a[idx[j] & 7];
	expect("vpermi2d", 8);

	/* EVEX: vprord $7 and $16. */
	__asm__ volatile("vmovdqu %[a], %%xmm1\n\t"
			 "vprord $7, %%xmm1, %%xmm2\n\t"
			 "vprord $16, %%xmm2, %%xmm3\n\t"
			 "vmovdqu %%xmm3, %[o]"
			 : [o] "=m"(*(uint32_t(*)[4])out)
			 : [a] "m"(*(uint32_t(*)[4])a));
	for (unsigned i = 0; i < 4; i++)
		want[i] = ror32(ror32(a[i], 7), 16);
	expect("vprord", 4);

	/* VEXTRACTI128 of the upper half; a VEX.128 write clears bits 255:128 (seen through a ymm store). */
	__asm__ volatile("vmovdqu %[a], %%ymm6\n\t"
			 "vextracti128 $1, %%ymm6, %%xmm9\n\t"
			 "vmovdqu %%ymm9, %[o]"
			 : [o] "=m"(*(uint32_t(*)[8])out)
			 : [a] "m"(*(uint32_t(*)[8])a));
	for (unsigned i = 0; i < 4; i++)
		want[i] = a[4 + i], want[4 + i] = 0;
	expect("vextracti128", 8);

	/* VZEROUPPER clears bits 255:128 of every register, keeps 127:0. */
	__asm__ volatile("vmovdqu %[b], %%ymm10\n\t"
			 "vzeroupper\n\t"
			 "vmovdqu %%ymm10, %[o]"
			 : [o] "=m"(*(uint32_t(*)[8])out)
			 : [b] "m"(*(uint32_t(*)[8])b));
	for (unsigned i = 0; i < 4; i++)
		want[i] = b[i], want[4 + i] = 0;
	expect("vzeroupper", 8);
	say("avx512: vmovdqu/a, vmovd, vpaddd/q, vpxor, vpshufd, vpermi2d, vprord, vextracti128, vzeroupper, ldmxcsr ok");
	pass();
}
