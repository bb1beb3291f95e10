/* interp: CMPXCHG8B and CMPXCHG16B (atomic on guest memory, alignment, faults, flags). */
#include <pthread.h>

#include "test_interp_fixture.h"

TestSuite(cmpxchg, .init = fx_setup, .fini = fx_teardown);

#define SLOT 0x20000ULL
#define OTHER_FLAGS (RFLAGS_CF | RFLAGS_PF | RFLAGS_AF | RFLAGS_SF | RFLAGS_OF | 0x2ULL)

static void mem128(uint64_t at, uint64_t lo, uint64_t hi)
{
    fx_st64(fx_ram + at, lo);
    fx_st64(fx_ram + at + 8, hi);
}

static void regs(uint64_t rax, uint64_t rdx, uint64_t rbx, uint64_t rcx)
{
    fx_cpu.regs.rax = rax, fx_cpu.regs.rdx = rdx, fx_cpu.regs.rbx = rbx, fx_cpu.regs.rcx = rcx;
}

Test(cmpxchg, exec_helper)
{
    uint64_t lo = 1, hi = 2, fl = OTHER_FLAGS;
    cr_assert_eq(cmpxchg_exec(16, &lo, &hi, 1, 2, &fl), 1);
    cr_assert_eq(fl, OTHER_FLAGS | RFLAGS_ZF, "ZF set, others kept");
    cr_assert_eq(lo, 1);
    cr_assert_eq(cmpxchg_exec(16, &lo, &hi, 1, 3, &fl), 0);
    cr_assert_eq(fl, OTHER_FLAGS, "ZF cleared, others kept");
    cr_assert_eq(lo, 1);
    cr_assert_eq(hi, 3);
    /* 8 bytes: EDX:EAX against m64; upper register halves ignored; results zero-extended. */
    lo = 0xffffffff00000004ULL, hi = 0xffffffff00000003ULL;
    cr_assert_eq(cmpxchg_exec(8, &lo, &hi, 0x0000000300000004ULL, 0, &fl), 1);
    cr_assert_eq(lo, 0xffffffff00000004ULL, "registers untouched on success");
    cr_assert_eq(cmpxchg_exec(8, &lo, &hi, 0x8000000112345678ULL, 0, &fl), 0);
    cr_assert_eq(lo, 0x12345678);
    cr_assert_eq(hi, 0x80000001);
}

Test(cmpxchg, sixteen_equal_stores)
{
    mem128(SLOT, 0x1111, 0x2222);
    regs(0x1111, 0x2222, 0xaaaa, 0xbbbb);
    fx_cpu.regs.rdi = SLOT;
    fx_cpu.regs.rflags = OTHER_FLAGS;
    cr_assert_eq(FX_RUN(0xf0, 0x48, 0x0f, 0xc7, 0x0f), 0); /* lock cmpxchg16b [rdi] */
    fx_expect_done(5);
    cr_assert_eq(fx_ld64(fx_ram + SLOT), 0xaaaa);
    cr_assert_eq(fx_ld64(fx_ram + SLOT + 8), 0xbbbb);
    cr_assert_eq(fx_cpu.regs.rflags, OTHER_FLAGS | RFLAGS_ZF);
    cr_assert_eq(fx_cpu.regs.rax, 0x1111);
    cr_assert_eq(fx_cpu.regs.rdx, 0x2222);
}

Test(cmpxchg, sixteen_unequal_loads)
{
    mem128(SLOT, 0x1111, 0x2223);
    regs(0x1111, 0x2222, 0xaaaa, 0xbbbb);
    fx_cpu.regs.rdi = SLOT;
    fx_cpu.regs.rflags = RFLAGS_ZF | 0x2;
    cr_assert_eq(FX_RUN(0xf0, 0x48, 0x0f, 0xc7, 0x0f), 0);
    fx_expect_done(5);
    cr_assert_eq(fx_ld64(fx_ram + SLOT), 0x1111, "memory unchanged");
    cr_assert_eq(fx_ld64(fx_ram + SLOT + 8), 0x2223);
    cr_assert_eq(fx_cpu.regs.rflags, 0x2, "ZF cleared");
    cr_assert_eq(fx_cpu.regs.rax, 0x1111);
    cr_assert_eq(fx_cpu.regs.rdx, 0x2223, "RDX:RAX loaded from memory");
}

Test(cmpxchg, sixteen_addressing_forms)
{
    /* cmpxchg16b [rsi+rcx*8+0x10] with RCX part of the new value. */
    mem128(SLOT + 0x40, 5, 6);
    regs(5, 6, 7, 4);
    fx_cpu.regs.rsi = SLOT;
    cr_assert_eq(FX_RUN(0x48, 0x0f, 0xc7, 0x4c, 0xce, 0x20), 0); /* [rsi+rcx*8+0x20] = SLOT+0x40 */
    fx_expect_done(6);
    cr_assert_eq(fx_ld64(fx_ram + SLOT + 0x40), 7);
    cr_assert_eq(fx_ld64(fx_ram + SLOT + 0x48), 4);
    /* RIP-relative: [rip+disp32] from the end of the instruction. */
    fx_cpu.regs.rip = FX_CODE;
    uint64_t target = FX_CODE + 8 + 0xff8; /* the instruction is 8 bytes: 0x9000 */
    mem128(target, 1, 2);
    regs(1, 2, 3, 4);
    cr_assert_eq(FX_RUN(0x48, 0x0f, 0xc7, 0x0d, 0xf8, 0x0f, 0x00, 0x00), 0);
    fx_expect_done(8);
    cr_assert_eq(fx_ld64(fx_ram + target), 3);
    /* 32-bit addressing (67): the address wraps to 32 bits. */
    fx_cpu.regs.rip = FX_CODE;
    fx_cpu.regs.rdi = 0xffffffff00000000ULL | SLOT;
    mem128(SLOT, 3, 4);
    regs(3, 4, 9, 9);
    cr_assert_eq(FX_RUN(0x67, 0x48, 0x0f, 0xc7, 0x0f), 0);
    fx_expect_done(5);
    cr_assert_eq(fx_ld64(fx_ram + SLOT), 9);
}

Test(cmpxchg, sixteen_needs_alignment)
{
    mem128(SLOT + 8, 1, 2);
    regs(1, 2, 3, 4);
    fx_cpu.regs.rdi = SLOT + 8;
    cr_assert_eq(FX_RUN(0xf0, 0x48, 0x0f, 0xc7, 0x0f), 0);
    fx_expect_fault(VEC_GP, 1, 0);
    cr_assert_eq(fx_ld64(fx_ram + SLOT + 8), 1, "memory unchanged");
    cr_assert_eq(fx_cpu.regs.rax, 1);
}

Test(cmpxchg, faults)
{
    regs(1, 2, 3, 4);
    fx_cpu.regs.rdi = FX_NOTPRESENT + 0x10;
    cr_assert_eq(FX_RUN(0xf0, 0x48, 0x0f, 0xc7, 0x0f), 0);
    fx_expect_pf(FX_NOTPRESENT + 0x10, PFEC_W);
    /* Read-only: a write access even when the comparison would fail. */
    fx_cpu.regs.rdi = FX_READONLY;
    cr_assert_eq(FX_RUN(0xf0, 0x48, 0x0f, 0xc7, 0x0f), 0);
    fx_expect_pf(FX_READONLY, PFEC_P | PFEC_W);
    /* Read-only is writable at CPL 0 when CR0.WP is clear. */
    fx_cpu.sregs.cr0 &= ~(1ULL << 16);
    cr_assert_eq(FX_RUN(0xf0, 0x48, 0x0f, 0xc7, 0x0f), 0);
    fx_expect_done(5);
    fx_cpu.regs.rip = FX_CODE;
    /* Non-canonical: #GP(0); through RSP: #SS(0). */
    fx_cpu.regs.rdi = 0x0000800000000000ULL;
    cr_assert_eq(FX_RUN(0xf0, 0x48, 0x0f, 0xc7, 0x0f), 0);
    fx_expect_fault(VEC_GP, 1, 0);
    fx_cpu.regs.rsp = 0x0000800000000000ULL;
    cr_assert_eq(FX_RUN(0xf0, 0x48, 0x0f, 0xc7, 0x0c, 0x24), 0); /* [rsp] */
    fx_expect_fault(VEC_SS, 1, 0);
    /* Memory outside guest RAM (the 2 MiB page maps 2-4 MiB; the PD has nothing above). */
    fx_set_entry(FX_PD, 2, 0x40000000ULL | P_ | RW_ | PS_);
    fx_cpu.regs.rdi = 0x400000;
    cr_assert_lt(FX_RUN(0xf0, 0x48, 0x0f, 0xc7, 0x0f), 0);
    cr_assert(strstr(fx_cpu.why, "not RAM") != NULL, "%s", fx_cpu.why);
    cr_assert_not(fx_cpu.event.pending);
}

Test(cmpxchg, sets_dirty_bit)
{
    uint64_t pte = fx_pte(SLOT);
    cr_assert_eq(pte & (A_ | D_), 0);
    regs(0, 0, 0, 0);
    fx_cpu.regs.rdi = SLOT;
    mem128(SLOT, 9, 9); /* comparison fails: still a write access */
    cr_assert_eq(FX_RUN(0xf0, 0x48, 0x0f, 0xc7, 0x0f), 0);
    fx_expect_done(5);
    cr_assert_eq(fx_pte(SLOT) & (A_ | D_), A_ | D_);
    cr_assert_eq(fx_entry(FX_PD, 0) & (A_ | D_), A_, "upper levels: accessed only");
}

Test(cmpxchg, eight_bytes)
{
    fx_st64(fx_ram + SLOT + 4, 0x0000000200000001ULL); /* any alignment */
    regs(0xffffffff00000001ULL, 0xffffffff00000002ULL, 0x33, 0x44);
    fx_cpu.regs.rdi = SLOT + 4;
    cr_assert_eq(FX_RUN(0xf0, 0x0f, 0xc7, 0x0f), 0); /* lock cmpxchg8b [rdi] */
    fx_expect_done(4);
    cr_assert_eq(fx_ld64(fx_ram + SLOT + 4), 0x0000004400000033ULL);
    cr_assert(fx_cpu.regs.rflags & RFLAGS_ZF);
    cr_assert_eq(fx_cpu.regs.rax, 0xffffffff00000001ULL, "registers untouched on success");
    fx_cpu.regs.rip = FX_CODE;
    cr_assert_eq(FX_RUN(0xf0, 0x0f, 0xc7, 0x0f), 0);
    fx_expect_done(4);
    cr_assert_not(fx_cpu.regs.rflags & RFLAGS_ZF);
    cr_assert_eq(fx_cpu.regs.rax, 0x33, "EAX loaded, upper half cleared");
    cr_assert_eq(fx_cpu.regs.rdx, 0x44);
}

Test(cmpxchg, eight_bytes_across_pages)
{
    /* 0x53ffc..0x54003: the second half is at physical 0x60000. */
    fx_set_entry(FX_PT, FX_USER_RO >> 12, FX_USER_RO | P_ | RW_);
    fx_st32(fx_ram + FX_REMAPPED - 4, 0x11);
    fx_st32(fx_ram + FX_REMAP_TARGET, 0x22);
    regs(0x11, 0x22, 0x55, 0x66);
    fx_cpu.regs.rdi = FX_REMAPPED - 4;
    cr_assert_eq(FX_RUN(0x0f, 0xc7, 0x0f), 0);
    fx_expect_done(3);
    cr_assert(fx_cpu.regs.rflags & RFLAGS_ZF);
    cr_assert_eq(fx_ld32(fx_ram + FX_REMAPPED - 4), 0x55);
    cr_assert_eq(fx_ld32(fx_ram + FX_REMAP_TARGET), 0x66);
}

/* Two threads increment one 128-bit counter with CMPXCHG16B retry loops through the interpreter. */
#define ROUNDS 20000
static void *hammer(void *arg)
{
    struct interp_cpu c = fx_cpu;
    (void)arg;
    static const uint8_t code[] = {0xf0, 0x48, 0x0f, 0xc7, 0x0f};
    struct insn in;
    if (insn_decode(code, sizeof(code), MODE_LONG64, &in))
        abort(); /* (criterion asserts belong to the test's own thread) */
    c.regs.rdi = SLOT;
    for (int i = 0; i < ROUNDS; i++) {
        c.regs.rax = fx_ld64(fx_ram + SLOT); /* a possibly stale guess: the loop corrects it */
        c.regs.rdx = fx_ld64(fx_ram + SLOT + 8);
        for (;;) {
            uint64_t lo = c.regs.rax, hi = c.regs.rdx;
            c.regs.rbx = lo + 1;
            c.regs.rcx = hi + (lo + 1 == 0);
            interp_exec(&c, &in);
            if (c.regs.rflags & RFLAGS_ZF)
                break;
        }
    }
    return NULL;
}

Test(cmpxchg, sixteen_is_atomic)
{
    mem128(SLOT, 0xffffffffffffff00ULL, 7);
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, hammer, NULL);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    uint64_t lo = fx_ld64(fx_ram + SLOT), hi = fx_ld64(fx_ram + SLOT + 8);
    uint64_t want_lo = 0xffffffffffffff00ULL + 2 * ROUNDS; /* wraps after 256 */
    cr_assert_eq(lo, want_lo, "lo %#llx", (unsigned long long)lo);
    cr_assert_eq(hi, 8, "carry into the upper half");
}
