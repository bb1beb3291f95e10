/*
 * interp: the VEX/EVEX vector routines, checked against the host CPU.
 *
 * Each case is one instruction, assembled twice from the same text: into
 * .rodata (the bytes the interpreter decodes) and into a function that runs
 * it natively between loading and storing all 32 ZMM registers, k1, RAX,
 * RCX and a 128-byte memory buffer at RSI. Both start from the same
 * pseudo-random state; every register and memory byte must match. Skipped
 * on a host without AVX-512 (F, VL, BW).
 */
#include <cpuid.h>
#include <errno.h>

#include "test_interp_fixture.h"

#define MEM_GPA 0x40000ULL /* the memory operand buffer in the fixture (128 bytes, 64-aligned) */

struct vstate {
    uint8_t z[32][64];
    uint64_t k1;
    uint64_t rax, rcx;
    uint8_t mem[128] __attribute__((aligned(64)));
} __attribute__((aligned(64)));

#define Z8(n) "vmovdqu64 " #n "*64(%rdi), %zmm" #n "\n\t"
#define S8(n) "vmovdqu64 %zmm" #n ", " #n "*64(%rdi)\n\t"
/* One register per macro, 16 to a line. */
/* clang-format off */
#define LOAD_ALL \
    Z8(0) Z8(1) Z8(2) Z8(3) Z8(4) Z8(5) Z8(6) Z8(7) Z8(8) Z8(9) Z8(10) Z8(11) Z8(12) Z8(13) Z8(14) Z8(15) \
    Z8(16) Z8(17) Z8(18) Z8(19) Z8(20) Z8(21) Z8(22) Z8(23) Z8(24) Z8(25) Z8(26) Z8(27) Z8(28) Z8(29) Z8(30) Z8(31)
#define STORE_ALL \
    S8(0) S8(1) S8(2) S8(3) S8(4) S8(5) S8(6) S8(7) S8(8) S8(9) S8(10) S8(11) S8(12) S8(13) S8(14) S8(15) \
    S8(16) S8(17) S8(18) S8(19) S8(20) S8(21) S8(22) S8(23) S8(24) S8(25) S8(26) S8(27) S8(28) S8(29) S8(30) S8(31)
/* clang-format on */

/*
 * CASE(name, "instruction"): simd_<name>_bytes/_end hold its encoding, and
 * simd_<name>_native(state) (a plain assembly function: RDI = state; RAX,
 * RCX, RSI, vector and mask registers are all caller-saved) runs it with RSI
 * pointing at state->mem; k1, RAX and RCX come from and go back to the state.
 */
#define CASE(name, INSN)                                                                                         \
    __asm__(".pushsection .rodata\n\t.balign 16\nsimd_" #name "_bytes:\n\t" INSN "\nsimd_" #name                 \
            "_end:\n\t.popsection\n\t"                                                                           \
            ".text\n\t.balign 16\n\t.type simd_" #name "_native, @function\nsimd_" #name "_native:\n\t" LOAD_ALL \
            "kmovq 2048(%rdi), %k1\n\t"                                                                          \
            "mov 2056(%rdi), %rax\n\tmov 2064(%rdi), %rcx\n\tlea 2112(%rdi), %rsi\n\t" INSN "\n\t" STORE_ALL     \
            "kmovq %k1, 2048(%rdi)\n\tmov %rax, 2056(%rdi)\n\t"                                                  \
            "mov %rcx, 2064(%rdi)\n\tvzeroupper\n\tret\n\t"                                                      \
            ".size simd_" #name "_native, .-simd_" #name "_native\n\t");                                         \
    extern const uint8_t simd_##name##_bytes[], simd_##name##_end[];                                             \
    void simd_##name##_native(struct vstate *s);

_Static_assert(__builtin_offsetof(struct vstate, k1) == 2048, "layout");
_Static_assert(__builtin_offsetof(struct vstate, mem) == 2112, "layout");

/* What BLAKE2s-AVX512 (arch/x86/crypto/blake2s-core.S) runs, then more forms. */
CASE(movdqu_load, "vmovdqu (%rsi),%xmm0")
CASE(movdqu_load_ymm, "vmovdqu 0x20(%rsi),%ymm7")
CASE(movdqu_store, "vmovdqu %xmm1,0x10(%rsi)")
CASE(movdqa_rr, "vmovdqa %xmm0,%xmm10")
CASE(movdqa_rr_ymm, "vmovdqa %ymm8,%ymm6")
CASE(movd_gpr, "vmovd %ecx,%xmm5")
CASE(paddq, "vpaddq %xmm5,%xmm4,%xmm4")
CASE(pxor, "vpxor %xmm15,%xmm4,%xmm3")
CASE(paddd, "vpaddd %xmm8,%xmm0,%xmm0")
CASE(permi2d, "vpermi2d %ymm7,%ymm6,%ymm8")
CASE(prord, "vprord $0x10,%xmm3,%xmm3")
CASE(prord7, "vprord $0x7,%xmm1,%xmm1")
CASE(extracti128, "vextracti128 $0x1,%ymm8,%xmm8")
CASE(pshufd, "vpshufd $0x93,%xmm0,%xmm0")
CASE(zeroupper, "vzeroupper")
CASE(paddd_zmm_hi, "vpaddd %zmm17,%zmm18,%zmm19")
CASE(pxorq_masked, "vpxorq %zmm1,%zmm2,%zmm3{%k1}")
CASE(paddd_zeroing, "vpaddd %zmm1,%zmm2,%zmm3{%k1}{z}")
CASE(prolq, "vprolq $5,%zmm20,%zmm21")
CASE(permi2q, "vpermi2q %zmm1,%zmm2,%zmm3")
CASE(permi2d_mem, "vpermi2d (%rsi),%zmm2,%zmm3")
CASE(paddd_bcst, "vpaddd 0x8(%rsi){1to16},%zmm2,%zmm3")
CASE(movdqu64_store_disp8, "vmovdqu64 %zmm1,0x40(%rsi)")
CASE(movdqu32_load_masked, "vmovdqu32 0x40(%rsi),%zmm5{%k1}{z}")
CASE(movdqu32_store_masked, "vmovdqu32 %zmm6,(%rsi){%k1}")
CASE(movdqa64_rr, "vmovdqa64 %zmm30,%zmm2")
CASE(extracti32x4, "vextracti32x4 $2,%zmm3,%xmm4")
CASE(extracti64x2_mem, "vextracti64x2 $3,%zmm9,0x30(%rsi)")
CASE(psubq_ymm, "vpsubq %ymm1,%ymm2,%ymm3")
CASE(psubd, "vpsubd %xmm1,%xmm2,%xmm13")
CASE(pand, "vpand %ymm11,%ymm12,%ymm13")
CASE(pandn, "vpandn %xmm1,%xmm2,%xmm3")
CASE(por, "vpor %ymm1,%ymm9,%ymm14")
CASE(pandd_evex, "vpandd %zmm24,%zmm25,%zmm26")
CASE(pord_masked, "vpord %ymm1,%ymm2,%ymm3{%k1}")
CASE(movq_to_gpr, "vmovq %xmm3,%rax")
CASE(movd_to_gpr, "vmovd %xmm3,%ecx")
CASE(movq_xmm_mem, "vmovq 0x18(%rsi),%xmm2")
CASE(movq_xmm_xmm, "vmovq %xmm9,%xmm2")
CASE(movd_mem, "vmovd 0x4(%rsi),%xmm12")
CASE(movd_store, "vmovd %xmm12,0x4(%rsi)")
CASE(pshufd_ymm, "vpshufd $0x4e,%ymm1,%ymm2")
CASE(pshufd_zmm_masked, "vpshufd $0x1b,%zmm1,%zmm2{%k1}")
CASE(zeroall, "vzeroall")
CASE(movdqu8_masked, "vmovdqu8 (%rsi),%zmm1{%k1}")
CASE(paddq_mem_vex, "vpaddq 0x20(%rsi),%ymm1,%ymm2")

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t next_rand(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static int host_has_avx512(void)
{
    unsigned a, b, c, d;
    if (__get_cpuid_max(0, NULL) < 7)
        return 0;
    __cpuid_count(1, 0, a, b, c, d);
    if (!(c & (1u << 27))) /* OSXSAVE */
        return 0;
    __cpuid_count(7, 0, a, b, c, d);
    int f = (b >> 16) & 1, bw = (b >> 30) & 1, vl = (b >> 31) & 1;
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return f && bw && vl && (lo & 0xe6) == 0xe6;
}

TestSuite(simd, .init = fx_setup, .fini = fx_teardown);

/* The fixture's XSAVE image from a state (the layout of fx_layout: as on the host). */
static void image_from_state(const struct vstate *s)
{
    memset(fx_img, 0, sizeof(fx_img));
    for (unsigned r = 0; r < 16; r++) {
        memcpy(fx_img + 160 + 16 * r, s->z[r], 16);
        memcpy(fx_img + 576 + 16 * r, s->z[r] + 16, 16);
        memcpy(fx_img + 896 + 32 * r, s->z[r] + 32, 32);
    }
    for (unsigned r = 16; r < 32; r++)
        memcpy(fx_img + 1408 + 64 * (r - 16), s->z[r], 64);
    memcpy(fx_img + 832 + 8, &s->k1, 8);
    fx_st32(fx_img + 24, 0x1f80);
    fx_st64(fx_img + 512, 0xe7);
}

static void state_from_image(struct vstate *s)
{
    for (unsigned r = 0; r < 16; r++) {
        memcpy(s->z[r], fx_img + 160 + 16 * r, 16);
        memcpy(s->z[r] + 16, fx_img + 576 + 16 * r, 16);
        memcpy(s->z[r] + 32, fx_img + 896 + 32 * r, 32);
    }
    for (unsigned r = 16; r < 32; r++)
        memcpy(s->z[r], fx_img + 1408 + 64 * (r - 16), 64);
    memcpy(&s->k1, fx_img + 832 + 8, 8);
}

static void compare(const char *name, void (*native)(struct vstate *), const uint8_t *bytes, const uint8_t *end)
{
    for (int round = 0; round < 8; round++) {
        static struct vstate init, want, got;
        for (unsigned i = 0; i < sizeof(init) / 8; i++)
            ((uint64_t *)&init)[i] = next_rand();
        if (round == 0)
            init.k1 = 0x5a5a5a5a5a5a5a5aULL;
        /* Some permute indexes and rotate sources with small values too. */
        init.z[8][0] = (uint8_t)round;

        want = init;
        native(&want);

        image_from_state(&init);
        fx_cpu.xcr0 = 0xe7;
        fx_cpu.regs.rax = init.rax;
        fx_cpu.regs.rcx = init.rcx;
        fx_cpu.regs.rsi = MEM_GPA;
        fx_cpu.regs.rip = FX_CODE;
        memcpy(fx_ram + MEM_GPA, init.mem, sizeof(init.mem));
        struct insn in;
        cr_assert_eq(insn_decode(bytes, (unsigned)(end - bytes), MODE_LONG64, &in), 0, "%s: decode", name);
        cr_assert_eq(in.len, (unsigned)(end - bytes), "%s: length %u, want %u", name, in.len, (unsigned)(end - bytes));
        cr_assert_eq(interp_exec(&fx_cpu, &in), 0, "%s: %s", name, fx_cpu.why);
        fx_expect_done(in.len);
        got = init;
        state_from_image(&got);
        got.rax = fx_cpu.regs.rax;
        got.rcx = fx_cpu.regs.rcx;
        memcpy(got.mem, fx_ram + MEM_GPA, sizeof(got.mem));
        for (unsigned r = 0; r < 32; r++)
            cr_assert(memcmp(got.z[r], want.z[r], 64) == 0, "%s round %d: zmm%u differs from the CPU's", name, round,
                      r);
        cr_assert_eq(got.rax, want.rax, "%s: rax", name);
        cr_assert_eq(got.rcx, want.rcx, "%s: rcx", name);
        cr_assert(memcmp(got.mem, want.mem, sizeof(got.mem)) == 0, "%s: memory differs", name);
        cr_assert_eq(got.k1, want.k1);
    }
}

#define RUN(name) compare(#name, simd_##name##_native, simd_##name##_bytes, simd_##name##_end)

Test(simd, blake2s_forms_match_the_cpu)
{
    if (!host_has_avx512())
        cr_skip_test("host has no AVX-512 (F, BW, VL) enabled");
    RUN(movdqu_load);
    RUN(movdqu_load_ymm);
    RUN(movdqu_store);
    RUN(movdqa_rr);
    RUN(movdqa_rr_ymm);
    RUN(movd_gpr);
    RUN(paddq);
    RUN(pxor);
    RUN(paddd);
    RUN(permi2d);
    RUN(prord);
    RUN(prord7);
    RUN(extracti128);
    RUN(pshufd);
    RUN(zeroupper);
}

Test(simd, more_forms_match_the_cpu)
{
    if (!host_has_avx512())
        cr_skip_test("host has no AVX-512 (F, BW, VL) enabled");
    RUN(paddd_zmm_hi);
    RUN(pxorq_masked);
    RUN(paddd_zeroing);
    RUN(prolq);
    RUN(permi2q);
    RUN(permi2d_mem);
    RUN(paddd_bcst);
    RUN(movdqu64_store_disp8);
    RUN(movdqu32_load_masked);
    RUN(movdqu32_store_masked);
    RUN(movdqa64_rr);
    RUN(extracti32x4);
    RUN(extracti64x2_mem);
    RUN(psubq_ymm);
    RUN(psubd);
    RUN(pand);
    RUN(pandn);
    RUN(por);
    RUN(pandd_evex);
    RUN(pord_masked);
    RUN(movq_to_gpr);
    RUN(movd_to_gpr);
    RUN(movq_xmm_mem);
    RUN(movq_xmm_xmm);
    RUN(movd_mem);
    RUN(movd_store);
    RUN(pshufd_ymm);
    RUN(pshufd_zmm_masked);
    RUN(zeroall);
    RUN(movdqu8_masked);
    RUN(paddq_mem_vex);
}

static const uint8_t vmovdqa_load[] = {0xc5, 0xf9, 0x6f, 0x06}; /* vmovdqa (%rsi),%xmm0 */

Test(simd, faults)
{
    fx_cpu.xcr0 = 0xe7;
    struct insn in;
    cr_assert_eq(insn_decode(vmovdqa_load, sizeof(vmovdqa_load), MODE_LONG64, &in), 0);
    fx_cpu.regs.rsi = MEM_GPA + 8; /* vmovdqa needs 16-byte alignment */
    cr_assert_eq(interp_exec(&fx_cpu, &in), 0);
    fx_expect_fault(VEC_GP, 1, 0);
    fx_cpu.regs.rsi = FX_NOTPRESENT;
    cr_assert_eq(interp_exec(&fx_cpu, &in), 0);
    fx_expect_pf(FX_NOTPRESENT, 0);
    fx_cpu.regs.rsi = MEM_GPA;
    fx_cpu.xcr0 = 0x3; /* AVX not enabled: #UD */
    cr_assert_eq(interp_exec(&fx_cpu, &in), 0);
    fx_expect_fault(VEC_UD, 0, 0);
    fx_cpu.xcr0 = 0x7;
    fx_cpu.sregs.cr0 |= CR0_TS;
    cr_assert_eq(interp_exec(&fx_cpu, &in), 0);
    fx_expect_fault(VEC_NM, 0, 0);
    fx_cpu.sregs.cr0 &= ~CR0_TS;
    cr_assert_eq(interp_exec(&fx_cpu, &in), 0);
    fx_expect_done(4);
    /* EVEX with AVX-512 state off in XCR0: #UD. */
    cr_assert_eq(insn_decode(simd_paddd_zmm_hi_bytes, (unsigned)(simd_paddd_zmm_hi_end - simd_paddd_zmm_hi_bytes),
                             MODE_LONG64, &in),
                 0);
    fx_cpu.regs.rip = FX_CODE;
    cr_assert_eq(interp_exec(&fx_cpu, &in), 0);
    fx_expect_fault(VEC_UD, 0, 0);
}

Test(simd, ldmxcsr_stmxcsr)
{
    static const uint8_t ld[] = {0x0f, 0xae, 0x54, 0x24, 0x04}; /* ldmxcsr 0x4(%rsp), as in kernel_fpu_begin */
    static const uint8_t st[] = {0x0f, 0xae, 0x1e};             /* stmxcsr (%rsi) */
    static const uint8_t vst[] = {0xc5, 0xf8, 0xae, 0x1e};      /* vstmxcsr (%rsi) */
    struct insn in;
    fx_st32(fx_img + 24, 0x1f80);
    fx_st64(fx_img + 512, 0);
    fx_cpu.regs.rsp = MEM_GPA;
    fx_st32(fx_ram + MEM_GPA + 4, 0x1fa0);
    cr_assert_eq(insn_decode(ld, sizeof(ld), MODE_LONG64, &in), 0);
    cr_assert_eq(in.kind, INSN_LDMXCSR);
    cr_assert_eq(interp_exec(&fx_cpu, &in), 0);
    fx_expect_done(5);
    cr_assert_eq(fx_ld32(fx_img + 24), 0x1fa0);
    cr_assert_eq(fx_ld64(fx_img + 512) & 0x3, 0x3, "x87/SSE marked in use so KVM takes MXCSR");
    cr_assert(fx_cpu.xsave_dirty);
    /* Reserved bits: #GP(0), MXCSR unchanged. */
    fx_cpu.regs.rip = FX_CODE;
    fx_st32(fx_ram + MEM_GPA + 4, 0x10000);
    cr_assert_eq(interp_exec(&fx_cpu, &in), 0);
    fx_expect_fault(VEC_GP, 1, 0);
    cr_assert_eq(fx_ld32(fx_img + 24), 0x1fa0);
    /* CR4.OSFXSR clear: #UD. */
    fx_cpu.sregs.cr4 &= ~(1ULL << 9);
    cr_assert_eq(interp_exec(&fx_cpu, &in), 0);
    fx_expect_fault(VEC_UD, 0, 0);
    fx_cpu.sregs.cr4 |= 1ULL << 9;

    fx_cpu.regs.rsi = MEM_GPA + 0x20;
    cr_assert_eq(insn_decode(st, sizeof(st), MODE_LONG64, &in), 0);
    cr_assert_eq(in.kind, INSN_STMXCSR);
    cr_assert_eq(interp_exec(&fx_cpu, &in), 0);
    fx_expect_done(3);
    cr_assert_eq(fx_ld32(fx_ram + MEM_GPA + 0x20), 0x1fa0);
    fx_cpu.regs.rip = FX_CODE;
    fx_cpu.regs.rsi = MEM_GPA + 0x30;
    cr_assert_eq(insn_decode(vst, sizeof(vst), MODE_LONG64, &in), 0);
    cr_assert_eq(in.kind, INSN_STMXCSR);
    cr_assert_eq(interp_exec(&fx_cpu, &in), 0);
    fx_expect_done(4);
    cr_assert_eq(fx_ld32(fx_ram + MEM_GPA + 0x30), 0x1fa0);
}

Test(simd, decode_rejects)
{
    struct insn in;
    static const uint8_t rex_vex[] = {0x48, 0xc5, 0xf9, 0x6f, 0x06};
    cr_assert_eq(insn_decode(rex_vex, sizeof(rex_vex), MODE_LONG64, &in), -ENOENT, "REX before VEX");
    static const uint8_t p66_vex[] = {0x66, 0xc5, 0xf9, 0x6f, 0x06};
    cr_assert_eq(insn_decode(p66_vex, sizeof(p66_vex), MODE_LONG64, &in), -ENOENT, "66 before VEX");
    static const uint8_t vex_32[] = {0xc5, 0xf9, 0x6f, 0x06};
    cr_assert_eq(insn_decode(vex_32, sizeof(vex_32), MODE_PROT32, &in), -ENOENT, "VEX outside 64-bit mode");
    static const uint8_t cut[] = {0x62, 0xf1, 0x6d};
    cr_assert_eq(insn_decode(cut, sizeof(cut), MODE_LONG64, &in), -ENOENT, "EVEX cut short");
    static const uint8_t vfma[] = {0xc4, 0xe2, 0x71, 0xa8, 0xc2}; /* vfmadd213ps: not ours */
    cr_assert_eq(insn_decode(vfma, sizeof(vfma), MODE_LONG64, &in), -ENOENT);
    cr_assert_eq(insn_decode(simd_prord_bytes, 6, MODE_LONG64, &in), -ENOENT, "immediate cut off");
}
