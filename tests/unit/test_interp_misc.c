/* interp: INT3, FWAIT, POPCNT (memory and faults), RDRAND/RDSEED, CLAC/STAC, FS/GS base, RDPID. */
#include "test_interp_fixture.h"

TestSuite(misc, .init = fx_setup, .fini = fx_teardown);

#define ARITH (RFLAGS_CF | RFLAGS_PF | RFLAGS_AF | RFLAGS_ZF | RFLAGS_SF | RFLAGS_OF)

Test(misc, int3_is_a_trap)
{
    cr_assert_eq(FX_RUN(0xcc), 0);
    cr_assert_eq(fx_cpu.regs.rip, FX_CODE + 1, "the handler sees the next instruction");
    cr_assert(fx_cpu.event.pending);
    cr_assert_eq(fx_cpu.event.vector, VEC_BP);
    cr_assert_not(fx_cpu.event.has_error);
}

Test(misc, fwait)
{
    fx_cpu.fcw = 0x37f;
    fx_cpu.fsw = 0x1; /* IE pending but masked */
    cr_assert_eq(FX_RUN(0x9b), 0);
    fx_expect_done(1);
    fx_cpu.regs.rip = FX_CODE;
    fx_cpu.fcw = 0x37e; /* IE unmasked */
    cr_assert_eq(FX_RUN(0x9b), 0);
    fx_expect_fault(VEC_MF, 0, 0);
    cr_assert_eq(interp_needs(INSN_FWAIT), INTERP_NEED_FPU);
}

Test(misc, popcnt_memory_and_faults)
{
    fx_st64(fx_ram + 0x30000, 0xf0f0);
    fx_cpu.regs.rbx = 0x30000;
    fx_cpu.regs.rflags = 0x2 | ARITH;
    fx_cpu.regs.rax = ~0ULL;
    cr_assert_eq(FX_RUN(0xf3, 0x48, 0x0f, 0xb8, 0x03), 0); /* popcnt rax, [rbx] */
    fx_expect_done(5);
    cr_assert_eq(fx_cpu.regs.rax, 8);
    cr_assert_eq(fx_cpu.regs.rflags, 0x2);
    /* An unmapped source is the guest's #PF, not the end of the VM. */
    fx_cpu.regs.rip = FX_CODE;
    fx_cpu.regs.rbx = FX_NOTPRESENT + 8;
    fx_cpu.regs.rax = 5;
    cr_assert_eq(FX_RUN(0xf3, 0x48, 0x0f, 0xb8, 0x03), 0);
    fx_expect_pf(FX_NOTPRESENT + 8, 0);
    cr_assert_eq(fx_cpu.regs.rax, 5, "destination untouched");
    /* Straddling into the missing page: CR2 is where the missing page starts. */
    fx_cpu.regs.rbx = FX_NOTPRESENT - 4;
    cr_assert_eq(FX_RUN(0xf3, 0x48, 0x0f, 0xb8, 0x03), 0);
    fx_expect_pf(FX_NOTPRESENT, 0);
    /* CPL 3 reading a supervisor page. */
    fx_cpu.sregs.cs.selector = 0x33;
    fx_cpu.regs.rbx = 0x30000;
    cr_assert_eq(FX_RUN(0xf3, 0x48, 0x0f, 0xb8, 0x03), 0);
    fx_expect_pf(0x30000, PFEC_P | PFEC_U);
    fx_cpu.regs.rbx = FX_USER_RO;
    cr_assert_eq(FX_RUN(0xf3, 0x48, 0x0f, 0xb8, 0x03), 0);
    fx_expect_done(5);
}

static uint64_t rng_value;
static int rng_ok;
static int rng_seed_seen;
static int fake_rng(int seed, uint64_t *out)
{
    rng_seed_seen = seed;
    *out = rng_value;
    return rng_ok;
}

Test(misc, rdrand_and_rdseed)
{
    fx_cpu.rng = fake_rng;
    rng_value = 0x1122334455667788ULL;
    rng_ok = 1;
    fx_cpu.regs.rflags = 0x2 | ARITH;
    fx_cpu.regs.rcx = ~0ULL;
    cr_assert_eq(FX_RUN(0x48, 0x0f, 0xc7, 0xf1), 0); /* rdrand rcx */
    fx_expect_done(4);
    cr_assert_eq(fx_cpu.regs.rcx, rng_value);
    cr_assert_eq(fx_cpu.regs.rflags, 0x2 | RFLAGS_CF, "CF=1, the other arithmetic flags cleared");
    cr_assert_eq(rng_seed_seen, 0);

    fx_cpu.regs.rip = FX_CODE;
    fx_cpu.regs.rcx = ~0ULL;
    cr_assert_eq(FX_RUN(0x0f, 0xc7, 0xf9), 0); /* rdseed ecx */
    fx_expect_done(3);
    cr_assert_eq(fx_cpu.regs.rcx, 0x55667788, "32-bit result zero-extends");
    cr_assert_eq(rng_seed_seen, 1);

    fx_cpu.regs.rip = FX_CODE;
    fx_cpu.regs.r9 = ~0ULL;
    cr_assert_eq(FX_RUN(0x66, 0x41, 0x0f, 0xc7, 0xf1), 0); /* rdrand r9w */
    fx_expect_done(5);
    cr_assert_eq(fx_cpu.regs.r9, 0xffffffffffff7788ULL, "16-bit result keeps bits 63:16");

    /* No entropy: CF=0 and the destination is zeroed. */
    rng_ok = 0;
    fx_cpu.regs.rip = FX_CODE;
    fx_cpu.regs.rflags = 0x2 | ARITH;
    cr_assert_eq(FX_RUN(0x48, 0x0f, 0xc7, 0xf1), 0);
    fx_expect_done(4);
    cr_assert_eq(fx_cpu.regs.rcx, 0);
    cr_assert_eq(fx_cpu.regs.rflags, 0x2);
}

Test(misc, host_rng_works)
{
    uint64_t a = 0, b = 0;
    int ok = 0;
    for (int i = 0; i < 10 && !ok; i++)
        ok = interp_host_rng(0, &a) && interp_host_rng(0, &b);
    cr_assert(ok, "RDRAND on the host");
    cr_assert_neq(a, b);
}

Test(misc, clac_stac)
{
    fx_cpu.sregs.cr4 |= CR4_SMAP;
    cr_assert_eq(FX_RUN(0x0f, 0x01, 0xcb), 0); /* stac */
    fx_expect_done(3);
    cr_assert(fx_cpu.regs.rflags & RFLAGS_AC);
    fx_cpu.regs.rip = FX_CODE;
    cr_assert_eq(FX_RUN(0x0f, 0x01, 0xca), 0); /* clac */
    fx_expect_done(3);
    cr_assert_not(fx_cpu.regs.rflags & RFLAGS_AC);
    cr_assert_eq(fx_cpu.regs.rflags, 0x2);
    fx_cpu.regs.rip = FX_CODE;
    fx_cpu.sregs.cs.selector = 0x33;
    cr_assert_eq(FX_RUN(0x0f, 0x01, 0xcb), 0);
    fx_expect_fault(VEC_UD, 0, 0);
    fx_cpu.sregs.cs.selector = 0x10;
    fx_cpu.sregs.cr4 &= ~CR4_SMAP;
    cr_assert_eq(FX_RUN(0x0f, 0x01, 0xca), 0);
    fx_expect_fault(VEC_UD, 0, 0);
}

Test(misc, smap_follows_ac)
{
    /* A supervisor read of a user page faults under SMAP unless RFLAGS.AC is set. */
    fx_cpu.sregs.cr4 |= CR4_SMAP;
    fx_cpu.regs.rbx = FX_USER;
    cr_assert_eq(FX_RUN(0xf3, 0x48, 0x0f, 0xb8, 0x03), 0);
    fx_expect_pf(FX_USER, PFEC_P);
    fx_cpu.regs.rflags |= RFLAGS_AC;
    cr_assert_eq(FX_RUN(0xf3, 0x48, 0x0f, 0xb8, 0x03), 0);
    fx_expect_done(5);
}

Test(misc, fsgsbase)
{
    fx_cpu.sregs.cr4 |= CR4_FSGSBASE;
    fx_cpu.sregs.fs.base = 0x7f0012345678ULL;
    fx_cpu.sregs.gs.base = 0xffff888000001000ULL;
    cr_assert_eq(FX_RUN(0xf3, 0x48, 0x0f, 0xae, 0xc0), 0); /* rdfsbase rax */
    fx_expect_done(5);
    cr_assert_eq(fx_cpu.regs.rax, 0x7f0012345678ULL);
    fx_cpu.regs.rip = FX_CODE;
    cr_assert_eq(FX_RUN(0xf3, 0x0f, 0xae, 0xcb), 0); /* rdgsbase ebx */
    fx_expect_done(4);
    cr_assert_eq(fx_cpu.regs.rbx, 0x00001000, "32-bit form zero-extends");
    cr_assert_not(fx_cpu.msr_dirty);

    fx_cpu.regs.rip = FX_CODE;
    fx_cpu.regs.r12 = 0xffff888000002000ULL;
    cr_assert_eq(FX_RUN(0xf3, 0x49, 0x0f, 0xae, 0xdc), 0); /* wrgsbase r12 */
    fx_expect_done(5);
    cr_assert(fx_cpu.msr_dirty);
    cr_assert_eq(fx_cpu.msr_index, MSR_GS_BASE);
    cr_assert_eq(fx_cpu.msr_value, 0xffff888000002000ULL);

    fx_cpu.regs.rip = FX_CODE;
    fx_cpu.regs.rdx = 0x0000800000000000ULL;
    cr_assert_eq(FX_RUN(0xf3, 0x48, 0x0f, 0xae, 0xd2), 0); /* wrfsbase rdx: not canonical */
    fx_expect_fault(VEC_GP, 1, 0);
    cr_assert_not(fx_cpu.msr_dirty);
    fx_cpu.regs.rdx = 0xdeadbeef12345678ULL;
    cr_assert_eq(FX_RUN(0xf3, 0x0f, 0xae, 0xd2), 0); /* wrfsbase edx */
    fx_expect_done(4);
    cr_assert_eq(fx_cpu.msr_index, MSR_FS_BASE);
    cr_assert_eq(fx_cpu.msr_value, 0x12345678);

    fx_cpu.regs.rip = FX_CODE;
    fx_cpu.sregs.cr4 &= ~CR4_FSGSBASE;
    cr_assert_eq(FX_RUN(0xf3, 0x48, 0x0f, 0xae, 0xc0), 0);
    fx_expect_fault(VEC_UD, 0, 0);
}

Test(misc, rdpid)
{
    fx_cpu.tsc_aux = 0x80000003;
    fx_cpu.regs.rsi = ~0ULL;
    cr_assert_eq(FX_RUN(0xf3, 0x0f, 0xc7, 0xfe), 0); /* rdpid rsi */
    fx_expect_done(4);
    cr_assert_eq(fx_cpu.regs.rsi, 0x80000003);
    cr_assert_eq(interp_needs(INSN_RDPID), INTERP_NEED_TSC_AUX);
}

Test(misc, failures_change_nothing)
{
    /* 16-bit addressing is not supported: a clear refusal, no exception, nothing changed. */
    fx_cpu.mode = MODE_REAL16;
    fx_cpu.sregs.cr0 = 0;
    struct kvm_regs before = fx_cpu.regs;
    static const uint8_t b[] = {0xf3, 0x0f, 0xb8, 0x07}; /* popcnt ax, [bx] */
    struct insn in;
    cr_assert_eq(insn_decode(b, sizeof(b), MODE_REAL16, &in), 0);
    cr_assert_lt(interp_exec(&fx_cpu, &in), 0);
    cr_assert(strlen(fx_cpu.why) > 0);
    cr_assert_not(fx_cpu.event.pending);
    cr_assert(memcmp(&before, &fx_cpu.regs, sizeof(before)) == 0);
}
