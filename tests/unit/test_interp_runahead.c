/*
 * interp: the run-ahead (plain instructions run after a vector one in the
 * same exit). The ALU/MOV/LEA forms are checked against the host CPU (same
 * instruction text assembled into data for the decoder and into a function
 * that runs it), Jcc conditions against SETcc for every flag combination,
 * and a BLAKE2s-shaped loop is run ahead from guest memory.
 */
#include <errno.h>

#include "test_interp_fixture.h"

TestSuite(runahead, .init = fx_setup, .fini = fx_teardown);

/* rax rcx rdx rbx rbp rsi rdi r8..r15 (no rsp), then rflags. */
struct gstate {
    uint64_t r[15];
    uint64_t flags;
};
static const unsigned gpr_num[15] = {0, 1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};

#define SAVE_REGS                                                                              \
    "mov %rax, 0(%rdi)\n\tmov %rcx, 8(%rdi)\n\tmov %rdx, 16(%rdi)\n\tmov %rbx, 24(%rdi)\n\t"   \
    "mov %rbp, 32(%rdi)\n\tmov %rsi, 40(%rdi)\n\tmov %r8, 56(%rdi)\n\tmov %r9, 64(%rdi)\n\t"   \
    "mov %r10, 72(%rdi)\n\tmov %r11, 80(%rdi)\n\tmov %r12, 88(%rdi)\n\tmov %r13, 96(%rdi)\n\t" \
    "mov %r14, 104(%rdi)\n\tmov %r15, 112(%rdi)\n\tpushfq\n\tpopq 120(%rdi)\n\t"
#define LOAD_REGS                                                                              \
    "mov 0(%rdi), %rax\n\tmov 8(%rdi), %rcx\n\tmov 16(%rdi), %rdx\n\tmov 24(%rdi), %rbx\n\t"   \
    "mov 32(%rdi), %rbp\n\tmov 40(%rdi), %rsi\n\tmov 56(%rdi), %r8\n\tmov 64(%rdi), %r9\n\t"   \
    "mov 72(%rdi), %r10\n\tmov 80(%rdi), %r11\n\tmov 88(%rdi), %r12\n\tmov 96(%rdi), %r13\n\t" \
    "mov 104(%rdi), %r14\n\tmov 112(%rdi), %r15\n\tpushq 120(%rdi)\n\tpopfq\n\t"

/*
 * CASE(name, "instruction"): ra_<name>_bytes/_end hold its encoding,
 * ra_<name>_native(state) runs it on the state's registers and flags (RDI
 * itself is the state pointer, so cases do not use RDI; callee-saved
 * registers are pushed and popped around).
 */
#define CASE(name, INSN)                                                                            \
    __asm__(".pushsection .rodata\n\t.balign 16\nra_" #name "_bytes:\n\t" INSN "\nra_" #name        \
            "_end:\n\t.popsection\n\t.text\n\t.balign 16\n\t.type ra_" #name "_native, @function\n" \
            "ra_" #name "_native:\n\tpush %rbx\n\tpush %rbp\n\tpush %r12\n\tpush %r13\n\t"          \
            "push %r14\n\tpush %r15\n\t" LOAD_REGS INSN "\n\t" SAVE_REGS                            \
            "pop %r15\n\tpop %r14\n\tpop %r13\n\tpop %r12\n\tpop %rbp\n\tpop %rbx\n\tret\n\t"       \
            ".size ra_" #name "_native, .-ra_" #name "_native\n\t");                                \
    extern const uint8_t ra_##name##_bytes[], ra_##name##_end[];                                    \
    void ra_##name##_native(struct gstate *s);

CASE(add_imm8_q, "addq $0x40,%rsi")
CASE(add_imm32_q, "addq $0x12345678,%r9")
CASE(sub_imm8_l, "subl $0x7f,%ecx")
CASE(add_rr_b, "addb %bl,%ah")
CASE(add_rr_w, "addw %r10w,%r11w")
CASE(sub_rr_l, "subl %edx,%eax")
CASE(sub_rev_q, "subq %r8,%r12")
CASE(cmp_rr_q, "cmpq %rbx,%rcx")
CASE(cmp_imm8_b, "cmpb $0x80,%cl")
CASE(add_al_imm, "addb $0x7f,%al")
CASE(sub_eax_imm, "subl $0x80000000,%eax")
CASE(cmp_rax_imm, "cmpq $-1,%rax")
CASE(dec_b, "decb %cl")
CASE(dec_q, "decq %rdx")
CASE(inc_l, "incl %r13d")
CASE(inc_b_sil, "incb %sil")
CASE(mov_imm8, "movb $0xa,%cl")
CASE(mov_imm8_bh, "movb $0x5a,%bh")
CASE(mov_imm32, "movl $0x89abcdef,%r14d")
CASE(mov_imm64, "movabsq $0x123456789abcdef0,%r15")
CASE(mov_imm32_sx, "movq $-5,%rbx")
CASE(mov_rr_q, "movq %r9,%rax")
CASE(mov_rr_l, "movl %r9d,%eax")
CASE(mov_rr_w, "movw %cx,%dx")
CASE(mov_rr_b, "movb %dh,%bl")
CASE(lea_sib, "leaq 0x40(%rax,%rcx,8),%rdx")
CASE(lea_l, "leal -8(%rsi),%ebx")
CASE(nop_long, "nopw 0x0(%rax,%rax,1)")

static uint64_t seed = 0x243f6a8885a308d3ULL;
static uint64_t rnd(void)
{
    seed ^= seed << 13;
    seed ^= seed >> 7;
    seed ^= seed << 17;
    return seed;
}

static void compare(const char *name, void (*native)(struct gstate *), const uint8_t *bytes, const uint8_t *end)
{
    for (int round = 0; round < 64; round++) {
        struct gstate init, want;
        for (unsigned i = 0; i < 15; i++) {
            init.r[i] = rnd();
            if (round & 1) /* small values too: carries, zero results, sign changes */
                init.r[i] &= 0x1ff;
            if (round % 8 == 2)
                init.r[i] = 0x80000000ULL | (init.r[i] & 1);
        }
        init.flags = 0x202 | (rnd() & 0x8d5); /* IF, and some of CF PF AF ZF SF OF */
        want = init;
        native(&want);

        struct insn in;
        cr_assert_eq(insn_decode_runahead(bytes, (unsigned)(end - bytes), MODE_LONG64, &in), 0, "%s: decode", name);
        cr_assert_eq(in.len, (unsigned)(end - bytes), "%s: length", name);
        cr_assert_eq(in.kind, INSN_RUNAHEAD, "%s: kind", name);
        for (unsigned i = 0; i < 15; i++)
            *interp_gpr(&fx_cpu.regs, gpr_num[i]) = init.r[i];
        fx_cpu.regs.rflags = init.flags;
        fx_cpu.regs.rip = FX_CODE;
        cr_assert_eq(interp_exec(&fx_cpu, &in), 0, "%s: %s", name, fx_cpu.why);
        fx_expect_done(in.len);
        for (unsigned i = 0; i < 15; i++)
            cr_assert_eq(*interp_gpr(&fx_cpu.regs, gpr_num[i]), want.r[i],
                         "%s round %d: register %u is %#llx, the CPU says %#llx", name, round, gpr_num[i],
                         (unsigned long long)*interp_gpr(&fx_cpu.regs, gpr_num[i]), (unsigned long long)want.r[i]);
        cr_assert_eq(fx_cpu.regs.rflags & 0x8d5, want.flags & 0x8d5, "%s round %d: flags %#llx, the CPU says %#llx",
                     name, round, (unsigned long long)fx_cpu.regs.rflags, (unsigned long long)want.flags);
    }
}

#define RUN(name) compare(#name, ra_##name##_native, ra_##name##_bytes, ra_##name##_end)

Test(runahead, alu_mov_lea_match_the_cpu)
{
    RUN(add_imm8_q);
    RUN(add_imm32_q);
    RUN(sub_imm8_l);
    RUN(add_rr_b);
    RUN(add_rr_w);
    RUN(sub_rr_l);
    RUN(sub_rev_q);
    RUN(cmp_rr_q);
    RUN(cmp_imm8_b);
    RUN(add_al_imm);
    RUN(sub_eax_imm);
    RUN(cmp_rax_imm);
    RUN(dec_b);
    RUN(dec_q);
    RUN(inc_l);
    RUN(inc_b_sil);
    RUN(mov_imm8);
    RUN(mov_imm8_bh);
    RUN(mov_imm32);
    RUN(mov_imm64);
    RUN(mov_imm32_sx);
    RUN(mov_rr_q);
    RUN(mov_rr_l);
    RUN(mov_rr_w);
    RUN(mov_rr_b);
    RUN(lea_sib);
    RUN(lea_l);
    RUN(nop_long);
}

/* SETcc on the host for every condition and every combination of CF PF AF ZF SF OF. */
#define SETCC(cc)                                                                         \
    static int host_##cc(uint64_t fl)                                                     \
    {                                                                                     \
        uint8_t r;                                                                        \
        __asm__ volatile("push %1\n\tpopfq\n\tset" #cc " %0" : "=q"(r) : "r"(fl) : "cc"); \
        return r;                                                                         \
    }
/* The 16 condition codes in their encoding order. */
/* clang-format off */
SETCC(o) SETCC(no) SETCC(b) SETCC(ae) SETCC(e) SETCC(ne) SETCC(be) SETCC(a)
SETCC(s) SETCC(ns) SETCC(p) SETCC(np) SETCC(l) SETCC(ge) SETCC(le) SETCC(g)
    /* clang-format on */

    Test(runahead, jcc_conditions_match_setcc)
{
    int (*const host[16])(uint64_t) = {host_o, host_no, host_b, host_ae, host_e, host_ne, host_be, host_a,
                                       host_s, host_ns, host_p, host_np, host_l, host_ge, host_le, host_g};
    static const uint64_t bits[6] = {RFLAGS_CF, RFLAGS_PF, RFLAGS_AF, RFLAGS_ZF, RFLAGS_SF, RFLAGS_OF};
    for (unsigned m = 0; m < 64; m++) {
        uint64_t fl = 0x202;
        for (unsigned k = 0; k < 6; k++)
            if ((m >> k) & 1)
                fl |= bits[k];
        for (unsigned cc = 0; cc < 16; cc++)
            cr_assert_eq(jcc_taken(cc, fl), host[cc](fl), "cc %u flags %#llx", cc, (unsigned long long)fl);
    }
}

Test(runahead, branches)
{
    static const uint8_t jne8[] = {0x75, 0xf0};                          /* jne .-14 */
    static const uint8_t jne32[] = {0x0f, 0x85, 0x10, 0xfe, 0xff, 0xff}; /* jne .-0x1ea */
    static const uint8_t jmp8[] = {0xeb, 0x0c};
    static const uint8_t jmp32[] = {0xe9, 0x00, 0x01, 0x00, 0x00};
    struct insn in;
    cr_assert_eq(insn_decode_runahead(jne8, 2, MODE_LONG64, &in), 0);
    fx_cpu.regs.rflags = 0x2;
    cr_assert_eq(interp_exec(&fx_cpu, &in), 0);
    cr_assert_eq(fx_cpu.regs.rip, FX_CODE + 2 - 16, "taken");
    fx_cpu.regs.rip = FX_CODE;
    fx_cpu.regs.rflags = 0x2 | RFLAGS_ZF;
    cr_assert_eq(interp_exec(&fx_cpu, &in), 0);
    cr_assert_eq(fx_cpu.regs.rip, FX_CODE + 2, "not taken");
    fx_cpu.regs.rip = FX_CODE;
    fx_cpu.regs.rflags = 0x2;
    cr_assert_eq(insn_decode_runahead(jne32, 6, MODE_LONG64, &in), 0);
    cr_assert_eq(interp_exec(&fx_cpu, &in), 0);
    cr_assert_eq(fx_cpu.regs.rip, FX_CODE + 6 - 0x1f0);
    fx_cpu.regs.rip = FX_CODE;
    cr_assert_eq(insn_decode_runahead(jmp8, 2, MODE_LONG64, &in), 0);
    cr_assert_eq(interp_exec(&fx_cpu, &in), 0);
    cr_assert_eq(fx_cpu.regs.rip, FX_CODE + 2 + 12);
    fx_cpu.regs.rip = FX_CODE;
    cr_assert_eq(insn_decode_runahead(jmp32, 5, MODE_LONG64, &in), 0);
    cr_assert_eq(interp_exec(&fx_cpu, &in), 0);
    cr_assert_eq(fx_cpu.regs.rip, FX_CODE + 5 + 0x100);
}

Test(runahead, decode_refuses_the_rest)
{
    struct insn in;
#define NO(...)                                                                                      \
    do {                                                                                             \
        static const uint8_t b_[] = {__VA_ARGS__};                                                   \
        cr_assert_eq(insn_decode_runahead(b_, sizeof(b_), MODE_LONG64, &in), -ENOENT, #__VA_ARGS__); \
    } while (0)
    NO(0x48, 0x01, 0x07);                                  /* add [rdi], rax: memory */
    NO(0x48, 0x83, 0x07, 0x01);                            /* add qword [rdi], 1 */
    NO(0x48, 0x83, 0xe0, 0x01);                            /* and rax, 1 (/4) */
    NO(0xff, 0xd0);                                        /* call rax (/2) */
    NO(0xff, 0x07);                                        /* inc dword [rdi] */
    NO(0x48, 0x8d, 0xc0);                                  /* lea rax, rax: #UD */
    NO(0xc3);                                              /* ret */
    NO(0xf3, 0x90);                                        /* pause */
    NO(0x41, 0x90);                                        /* xchg r8, rax */
    NO(0x66, 0x75, 0x00);                                  /* jne with 16-bit operand size */
    NO(0x48, 0x89, 0x07);                                  /* mov [rdi], rax */
    NO(0xf0, 0x48, 0x01, 0xc0);                            /* lock add */
    NO(0x0f, 0x0b);                                        /* ud2 */
    NO(0x48, 0x83, 0xc6);                                  /* cut short */
    static const uint8_t vec[] = {0xc5, 0xd9, 0xd4, 0xe5}; /* vpaddq: the normal decoder's */
    cr_assert_eq(insn_decode_runahead(vec, sizeof(vec), MODE_LONG64, &in), 0);
    cr_assert_eq(in.kind, INSN_VPALU);
    static const uint8_t add32[] = {0x83, 0xc1, 0x01};
    cr_assert_eq(insn_decode_runahead(add32, sizeof(add32), MODE_PROT32, &in), -ENOENT, "64-bit mode only");
}

/*
 * A BLAKE2s-shaped loop in guest memory at FX_CODE:
 *   loop: vpaddd %xmm1,%xmm0,%xmm0 ; vprord $7,%xmm0,%xmm0 ; addq $0x40,%rsi ; decb %cl ; jne loop
 *   then: hlt (not ours: the run-ahead stops there)
 */
Test(runahead, runs_a_loop_from_guest_memory)
{
    static const uint8_t code[] = {
        0xc5, 0xf9, 0xfe, 0xc1,                   /* vpaddd %xmm1,%xmm0,%xmm0 */
        0x62, 0xf1, 0x7d, 0x08, 0x72, 0xc0, 0x07, /* vprord $7,%xmm0,%xmm0 */
        0x48, 0x83, 0xc6, 0x40,                   /* addq $0x40,%rsi */
        0xfe, 0xc9,                               /* decb %cl */
        0x75, 0xed,                               /* jne loop (-19) */
        0xf4,                                     /* hlt */
    };
    memcpy(fx_ram + FX_CODE, code, sizeof(code));
    fx_cpu.xcr0 = 0xe7;
    uint32_t x = 1, y = 0x01010101;
    fx_st32(fx_img + 160, x);      /* xmm0 dword 0 */
    fx_st32(fx_img + 160 + 16, y); /* xmm1 dword 0 */
    fx_cpu.regs.rcx = 10;
    fx_cpu.regs.rsi = 0;
    uint64_t counts[INSN_KINDS] = {0};
    /* The first vpaddd is what KVM gave up on; the rest runs ahead. */
    struct insn in;
    cr_assert_eq(insn_decode(code, sizeof(code), MODE_LONG64, &in), 0);
    cr_assert_eq(interp_exec(&fx_cpu, &in), 0);
    cr_assert(interp_starts_runahead(in.kind));
    unsigned ran = interp_run_ahead(&fx_cpu, 1000, counts);
    cr_assert_eq(ran, 49, "10 iterations of 5 instructions, minus the first vpaddd: %u", ran);
    cr_assert_eq(fx_cpu.regs.rip, FX_CODE + sizeof(code) - 1, "stopped at the hlt");
    cr_assert_eq(fx_cpu.regs.rcx & 0xff, 0);
    cr_assert_eq(fx_cpu.regs.rsi, 10 * 0x40);
    cr_assert_eq(counts[INSN_VPALU], 9);
    cr_assert_eq(counts[INSN_VPROT], 10);
    cr_assert_eq(counts[INSN_RUNAHEAD], 30);
    cr_assert(fx_cpu.xsave_dirty);
    for (int i = 0; i < 10; i++) {
        x += y;
        x = x >> 7 | x << 25;
    }
    cr_assert_eq(fx_ld32(fx_img + 160), x, "xmm0 after 10 rounds");

    /* A budget stops it early; TF stops it at once. */
    fx_cpu.regs.rip = FX_CODE;
    fx_cpu.regs.rcx = 10;
    cr_assert_eq(interp_run_ahead(&fx_cpu, 7, counts), 7);
    fx_cpu.regs.rflags |= 0x100;
    cr_assert_eq(interp_run_ahead(&fx_cpu, 1000, counts), 0);
    fx_cpu.regs.rflags &= ~0x100ULL;
    /* Code in a not-present page: nothing to fetch, nothing run. */
    fx_cpu.regs.rip = FX_NOTPRESENT;
    cr_assert_eq(interp_run_ahead(&fx_cpu, 1000, counts), 0);
}

Test(runahead, stops_at_a_fault)
{
    static const uint8_t code[] = {
        0xc5, 0xfa, 0x6f, 0x06, /* vmovdqu (%rsi),%xmm0 */
        0xc5, 0xfa, 0x6f, 0x06, /* vmovdqu (%rsi),%xmm0 */
    };
    memcpy(fx_ram + FX_CODE, code, sizeof(code));
    fx_cpu.xcr0 = 0x7;
    fx_cpu.regs.rsi = 0x30000;
    uint64_t counts[INSN_KINDS] = {0};
    struct insn in;
    cr_assert_eq(insn_decode(code, sizeof(code), MODE_LONG64, &in), 0);
    cr_assert_eq(interp_exec(&fx_cpu, &in), 0);
    fx_cpu.regs.rsi = FX_NOTPRESENT; /* (as if the first instruction had changed RSI) */
    cr_assert_eq(interp_run_ahead(&fx_cpu, 1000, counts), 1, "the faulting instruction counts");
    cr_assert(fx_cpu.event.pending);
    cr_assert_eq(fx_cpu.event.vector, VEC_PF);
    cr_assert_eq(fx_cpu.event.cr2, FX_NOTPRESENT);
    cr_assert_eq(fx_cpu.regs.rip, FX_CODE + 4, "RIP on the faulting instruction");
}
