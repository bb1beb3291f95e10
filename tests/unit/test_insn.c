/* insn: decoder for INT3 / FWAIT / POPCNT and the instruction semantics helpers. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "interp/insn.h"

#define DECODE(mode, ...)                          \
    ({                                             \
        static const uint8_t b_[] = {__VA_ARGS__}; \
        insn_decode(b_, sizeof(b_), mode, &in);    \
    })

static struct insn in;

Test(insn, int3_and_fwait)
{
    cr_assert_eq(DECODE(MODE_LONG64, 0xcc), 0);
    cr_assert_eq(in.kind, INSN_INT3);
    cr_assert_eq(in.len, 1);
    cr_assert_eq(DECODE(MODE_REAL16, 0x9b), 0);
    cr_assert_eq(in.kind, INSN_FWAIT);
    cr_assert_eq(in.len, 1);
    cr_assert_eq(DECODE(MODE_PROT32, 0xcc, 0x90, 0x90), 0, "trailing bytes are not consumed");
    cr_assert_eq(in.len, 1);
}

Test(insn, popcnt_register_form)
{
    /* popcnt eax, ecx */
    cr_assert_eq(DECODE(MODE_LONG64, 0xf3, 0x0f, 0xb8, 0xc1), 0);
    cr_assert_eq(in.kind, INSN_POPCNT);
    cr_assert_eq(in.len, 4);
    cr_assert_eq(in.opsize, 4);
    cr_assert(insn_rm_is_reg(&in));
    cr_assert_eq(insn_reg(&in), 0);
    cr_assert_eq(insn_rm(&in), 1);
    cr_assert_eq(in.disp_len, 0);
    cr_assert_eq(in.has_sib, 0);
}

Test(insn, operand_size_prefixes)
{
    cr_assert_eq(DECODE(MODE_LONG64, 0x66, 0xf3, 0x0f, 0xb8, 0xc1), 0);
    cr_assert_eq(in.opsize, 2);
    cr_assert_eq(in.len, 5);
    cr_assert_eq(DECODE(MODE_LONG64, 0xf3, 0x48, 0x0f, 0xb8, 0xc1), 0);
    cr_assert_eq(in.opsize, 8);
    cr_assert_eq(in.len, 5);
    cr_assert_eq(DECODE(MODE_LONG64, 0x66, 0xf3, 0x48, 0x0f, 0xb8, 0xc1), 0);
    cr_assert_eq(in.opsize, 8, "REX.W beats 66");
    cr_assert_eq(DECODE(MODE_PROT32, 0xf3, 0x0f, 0xb8, 0xc1), 0);
    cr_assert_eq(in.opsize, 4);
    cr_assert_eq(DECODE(MODE_REAL16, 0xf3, 0x0f, 0xb8, 0xc1), 0);
    cr_assert_eq(in.opsize, 2);
    cr_assert_eq(DECODE(MODE_REAL16, 0x66, 0xf3, 0x0f, 0xb8, 0xc1), 0);
    cr_assert_eq(in.opsize, 4, "66 in 16-bit code selects 32-bit");
    cr_assert_eq(DECODE(MODE_PROT16, 0xf3, 0x0f, 0xb8, 0xc1), 0);
    cr_assert_eq(in.opsize, 2);
}

Test(insn, rex_register_extensions)
{
    /* popcnt r8, rcx (REX.WR) */
    cr_assert_eq(DECODE(MODE_LONG64, 0xf3, 0x4c, 0x0f, 0xb8, 0xc1), 0);
    cr_assert_eq(insn_reg(&in), 8);
    cr_assert_eq(insn_rm(&in), 1);
    /* popcnt rax, r9 (REX.WB) */
    cr_assert_eq(DECODE(MODE_LONG64, 0xf3, 0x49, 0x0f, 0xb8, 0xc1), 0);
    cr_assert_eq(insn_reg(&in), 0);
    cr_assert_eq(insn_rm(&in), 9);
    /* popcnt r15d, r15d (REX.RB) */
    cr_assert_eq(DECODE(MODE_LONG64, 0xf3, 0x45, 0x0f, 0xb8, 0xff), 0);
    cr_assert_eq(insn_reg(&in), 15);
    cr_assert_eq(insn_rm(&in), 15);
    cr_assert_eq(in.opsize, 4);
    /* popcnt edx, ebx: no REX */
    cr_assert_eq(DECODE(MODE_LONG64, 0xf3, 0x0f, 0xb8, 0xd3), 0);
    cr_assert_eq(insn_reg(&in), 2);
    cr_assert_eq(insn_rm(&in), 3);
}

Test(insn, rex_is_an_opcode_outside_long_mode)
{
    /* 0x48 is DEC EAX in 32-bit code. */
    cr_assert_eq(DECODE(MODE_PROT32, 0xf3, 0x48, 0x0f, 0xb8, 0xc1), -ENOENT);
    /* A REX not directly before the opcode does not count. */
    cr_assert_eq(DECODE(MODE_LONG64, 0x48, 0xf3, 0x0f, 0xb8, 0xc1), -ENOENT);
}

Test(insn, memory_forms_64)
{
    /* popcnt eax, [rbx] */
    cr_assert_eq(DECODE(MODE_LONG64, 0xf3, 0x0f, 0xb8, 0x03), 0);
    cr_assert_eq(in.len, 4);
    cr_assert_not(insn_rm_is_reg(&in));
    cr_assert_eq(insn_rm(&in), 3);
    cr_assert_eq(in.disp_len, 0);

    /* popcnt eax, [rbx-16] */
    cr_assert_eq(DECODE(MODE_LONG64, 0xf3, 0x0f, 0xb8, 0x43, 0xf0), 0);
    cr_assert_eq(in.len, 5);
    cr_assert_eq(in.disp_len, 1);
    cr_assert_eq(in.disp, -16);

    /* popcnt eax, [rbx+0x12345678] */
    cr_assert_eq(DECODE(MODE_LONG64, 0xf3, 0x0f, 0xb8, 0x83, 0x78, 0x56, 0x34, 0x12), 0);
    cr_assert_eq(in.len, 8);
    cr_assert_eq(in.disp_len, 4);
    cr_assert_eq(in.disp, 0x12345678);

    /* popcnt rax, [rbx-0x80000000]: disp32 sign-extends */
    cr_assert_eq(DECODE(MODE_LONG64, 0xf3, 0x48, 0x0f, 0xb8, 0x83, 0x00, 0x00, 0x00, 0x80), 0);
    cr_assert_eq(in.disp, -0x80000000LL);
    cr_assert_eq(in.len, 9);
}

Test(insn, rip_relative)
{
    /* popcnt ecx, [rip-4] */
    cr_assert_eq(DECODE(MODE_LONG64, 0xf3, 0x0f, 0xb8, 0x0d, 0xfc, 0xff, 0xff, 0xff), 0);
    cr_assert_eq(in.len, 8);
    cr_assert_eq(in.modrm >> 6, 0);
    cr_assert_eq(in.modrm & 7, 5);
    cr_assert_eq(in.disp_len, 4);
    cr_assert_eq(in.disp, -4);
    cr_assert_eq(insn_reg(&in), 1);
    cr_assert_eq(in.has_sib, 0);
}

Test(insn, sib_forms)
{
    /* popcnt eax, [rsp] */
    cr_assert_eq(DECODE(MODE_LONG64, 0xf3, 0x0f, 0xb8, 0x04, 0x24), 0);
    cr_assert_eq(in.len, 5);
    cr_assert_eq(in.has_sib, 1);
    cr_assert_eq(in.sib, 0x24);
    cr_assert_eq(in.disp_len, 0);

    /* popcnt eax, [rsp+8] */
    cr_assert_eq(DECODE(MODE_LONG64, 0xf3, 0x0f, 0xb8, 0x44, 0x24, 0x08), 0);
    cr_assert_eq(in.len, 6);
    cr_assert_eq(in.disp, 8);

    /* popcnt eax, [0x1000] via SIB with no base (mod 0, base 5): disp32 */
    cr_assert_eq(DECODE(MODE_LONG64, 0xf3, 0x0f, 0xb8, 0x04, 0x25, 0x00, 0x10, 0x00, 0x00), 0);
    cr_assert_eq(in.len, 9);
    cr_assert_eq(in.disp_len, 4);
    cr_assert_eq(in.disp, 0x1000);

    /* popcnt eax, [rbx+rcx*4+0x100] */
    cr_assert_eq(DECODE(MODE_LONG64, 0xf3, 0x0f, 0xb8, 0x84, 0x8b, 0x00, 0x01, 0x00, 0x00), 0);
    cr_assert_eq(in.len, 9);
    cr_assert_eq(in.sib, 0x8b);
    cr_assert_eq(in.disp, 0x100);

    /* [rbp+rcx*1] with mod 1 base 5: disp8, not disp32 */
    cr_assert_eq(DECODE(MODE_LONG64, 0xf3, 0x0f, 0xb8, 0x44, 0x0d, 0x7f), 0);
    cr_assert_eq(in.len, 6);
    cr_assert_eq(in.disp_len, 1);
}

Test(insn, address_size_16)
{
    /* real mode: popcnt ax, [0x1234] (mod 0, rm 6 = disp16) */
    cr_assert_eq(DECODE(MODE_REAL16, 0xf3, 0x0f, 0xb8, 0x06, 0x34, 0x12), 0);
    cr_assert_eq(in.len, 6);
    cr_assert_eq(in.disp_len, 2);
    cr_assert_eq(in.disp, 0x1234);
    cr_assert_eq(in.has_sib, 0);
    /* real mode [si+disp16], negative */
    cr_assert_eq(DECODE(MODE_REAL16, 0xf3, 0x0f, 0xb8, 0x84, 0xfe, 0xff), 0);
    cr_assert_eq(in.len, 6);
    cr_assert_eq(in.disp, -2);
    cr_assert_eq(in.has_sib, 0, "rm 4 is [si] in 16-bit addressing, no SIB");
    /* 32-bit code with 67: 16-bit addressing */
    cr_assert_eq(DECODE(MODE_PROT32, 0x67, 0xf3, 0x0f, 0xb8, 0x06, 0x34, 0x12), 0);
    cr_assert_eq(in.len, 7);
    cr_assert_eq(in.disp_len, 2);
    /* 16-bit code with 67: 32-bit addressing, SIB */
    cr_assert_eq(DECODE(MODE_REAL16, 0x67, 0xf3, 0x0f, 0xb8, 0x04, 0x24), 0);
    cr_assert_eq(in.len, 6);
    cr_assert_eq(in.has_sib, 1);
    /* 64-bit code with 67: 32-bit addressing, still SIB and disp32 */
    cr_assert_eq(DECODE(MODE_LONG64, 0x67, 0xf3, 0x0f, 0xb8, 0x83, 1, 2, 3, 4), 0);
    cr_assert_eq(in.len, 9);
    cr_assert_eq(in.disp_len, 4);
}

Test(insn, segment_prefix_recorded)
{
    cr_assert_eq(DECODE(MODE_LONG64, 0x64, 0xf3, 0x0f, 0xb8, 0x03), 0);
    cr_assert_eq(in.seg, 0x64);
    cr_assert_eq(in.len, 5);
    cr_assert_eq(DECODE(MODE_PROT32, 0x2e, 0xcc), 0);
    cr_assert_eq(in.seg, 0x2e);
}

Test(insn, unknown_opcodes)
{
    cr_assert_eq(DECODE(MODE_LONG64, 0x90), -ENOENT);
    cr_assert_eq(DECODE(MODE_LONG64, 0x0f, 0x0b), -ENOENT, "ud2");
    cr_assert_eq(DECODE(MODE_LONG64, 0x0f, 0xb8, 0xc1), -ENOENT, "0F B8 without F3 is not POPCNT");
    cr_assert_eq(DECODE(MODE_LONG64, 0xf2, 0x0f, 0xb8, 0xc1), -ENOENT, "F2 0F B8");
    cr_assert_eq(DECODE(MODE_LONG64, 0xf3, 0xf2, 0x0f, 0xb8, 0xc1), -ENOENT, "F2 last");
    cr_assert_eq(DECODE(MODE_LONG64, 0xf3, 0x0f, 0xb9, 0xc1), -ENOENT);
    cr_assert_eq(DECODE(MODE_LONG64, 0xcd, 0x03), -ENOENT, "int 3 (CD 03) is not INT3");
}

Test(insn, lock_prefix_refused)
{
    cr_assert_eq(DECODE(MODE_LONG64, 0xf0, 0xcc), -ENOENT);
    cr_assert_eq(DECODE(MODE_LONG64, 0xf0, 0x9b), -ENOENT);
    cr_assert_eq(DECODE(MODE_LONG64, 0xf0, 0xf3, 0x0f, 0xb8, 0x03), -ENOENT);
    cr_assert_eq(DECODE(MODE_LONG64, 0xf3, 0xf0, 0x0f, 0xb8, 0x03), -ENOENT);
}

Test(insn, truncated)
{
    cr_assert_eq(insn_decode((const uint8_t *)"", 0, MODE_LONG64, &in), -ENOENT);
    cr_assert_eq(DECODE(MODE_LONG64, 0xf3), -ENOENT);
    cr_assert_eq(DECODE(MODE_LONG64, 0xf3, 0x48), -ENOENT, "REX then nothing");
    cr_assert_eq(DECODE(MODE_LONG64, 0xf3, 0x0f), -ENOENT);
    cr_assert_eq(DECODE(MODE_LONG64, 0xf3, 0x0f, 0xb8), -ENOENT, "no ModRM");
    cr_assert_eq(DECODE(MODE_LONG64, 0xf3, 0x0f, 0xb8, 0x04), -ENOENT, "no SIB");
    cr_assert_eq(DECODE(MODE_LONG64, 0xf3, 0x0f, 0xb8, 0x43), -ENOENT, "no disp8");
    cr_assert_eq(DECODE(MODE_LONG64, 0xf3, 0x0f, 0xb8, 0x83, 0x78, 0x56, 0x34), -ENOENT, "disp32 cut");
    cr_assert_eq(DECODE(MODE_LONG64, 0xf3, 0x0f, 0xb8, 0x04, 0x25, 0, 0, 0), -ENOENT, "SIB disp32 cut");
    cr_assert_eq(DECODE(MODE_REAL16, 0xf3, 0x0f, 0xb8, 0x06, 0x34), -ENOENT, "disp16 cut");
    cr_assert_eq(DECODE(MODE_LONG64, 0x66, 0x66, 0x2e), -ENOENT, "only prefixes");
}

Test(insn, fifteen_byte_limit)
{
    uint8_t b[20];
    memset(b, 0x66, sizeof(b));
    b[14] = 0xcc;
    cr_assert_eq(insn_decode(b, 15, MODE_LONG64, &in), 0);
    cr_assert_eq(in.len, 15);
    cr_assert_eq(insn_decode(b, sizeof(b), MODE_LONG64, &in), 0, "bytes after the 15th ignored");
    b[14] = 0x66;
    b[15] = 0xcc;
    cr_assert_eq(insn_decode(b, sizeof(b), MODE_LONG64, &in), -ENOENT, "16-byte instruction");
    /* POPCNT whose disp32 would end at byte 16 */
    memset(b, 0x66, sizeof(b));
    memcpy(b + 8, (const uint8_t[]){0xf3, 0x0f, 0xb8, 0x83, 1, 2, 3, 4}, 8);
    cr_assert_eq(insn_decode(b, sizeof(b), MODE_LONG64, &in), -ENOENT);
    memcpy(b + 7, (const uint8_t[]){0xf3, 0x0f, 0xb8, 0x83, 1, 2, 3, 4}, 8);
    cr_assert_eq(insn_decode(b, sizeof(b), MODE_LONG64, &in), 0, "exactly 15 bytes");
    cr_assert_eq(in.len, 15);
}

#define ARITH (RFLAGS_CF | RFLAGS_PF | RFLAGS_AF | RFLAGS_ZF | RFLAGS_SF | RFLAGS_OF)
#define OTHER (0x2ULL | 0x100ULL /* TF */ | 0x200ULL /* IF */ | 0x400ULL /* DF */ | 0x40000ULL /* AC */)

Test(popcnt, values_by_size)
{
    uint64_t f = ARITH | OTHER;
    cr_assert_eq(popcnt_exec(0xffffffffffffffffULL, 8, &f), 64);
    cr_assert_eq(f, OTHER, "arith flags cleared, others kept: %#llx", (unsigned long long)f);
    f = 0x2;
    cr_assert_eq(popcnt_exec(0x8000000000000001ULL, 8, &f), 2);
    cr_assert_eq(popcnt_exec(0xffffffff00000003ULL, 4, &f), 2, "upper half ignored");
    cr_assert_eq(popcnt_exec(0xffffffffULL, 4, &f), 32);
    cr_assert_eq(popcnt_exec(0xffff0000ffffULL, 2, &f), 16);
    cr_assert_eq(popcnt_exec(0x12345ULL, 2, &f), 6, "0x2345");
    cr_assert_eq(f, 0x2);
}

Test(popcnt, zero_sets_zf_only)
{
    uint64_t f = ARITH | OTHER;
    cr_assert_eq(popcnt_exec(0, 8, &f), 0);
    cr_assert_eq(f, OTHER | RFLAGS_ZF);
    f = OTHER | RFLAGS_CF;
    cr_assert_eq(popcnt_exec(0xffffffff00000000ULL, 4, &f), 0, "zero in the operand size");
    cr_assert_eq(f, OTHER | RFLAGS_ZF);
    f = RFLAGS_SF;
    cr_assert_eq(popcnt_exec(0xffff0000ULL, 2, &f), 0);
    cr_assert_eq(f, RFLAGS_ZF);
    f = RFLAGS_ZF | OTHER;
    cr_assert_eq(popcnt_exec(1, 2, &f), 1);
    cr_assert_eq(f, OTHER, "ZF cleared for a non-zero source");
}

Test(fwait, pending_exception)
{
    cr_assert_eq(fwait_pending_exception(0x0000, 0x0000), 0, "nothing pending");
    cr_assert_eq(fwait_pending_exception(0x0001, 0x037f), 0, "IE masked (default FCW)");
    cr_assert_eq(fwait_pending_exception(0x0001, 0x037e), 1, "IE unmasked");
    cr_assert_eq(fwait_pending_exception(0x0004, 0x037b), 1, "ZE unmasked");
    cr_assert_eq(fwait_pending_exception(0x0020, 0x035f), 1, "PE unmasked");
    cr_assert_eq(fwait_pending_exception(0x0020, 0x037e), 0, "PE masked, IE unmasked but clear");
    cr_assert_eq(fwait_pending_exception(0x3800, 0x0000), 0, "TOP bits are not exceptions");
}

Test(gpr_merge, sizes)
{
    const uint64_t old = 0x1122334455667788ULL;
    cr_assert_eq(gpr_merge(old, 0xfedcba98765432abULL, 1), 0x11223344556677abULL);
    cr_assert_eq(gpr_merge(old, 0xfedcba987654abcdULL, 2), 0x112233445566abcdULL);
    cr_assert_eq(gpr_merge(old, 0xfedcba98abcdef01ULL, 4), 0x00000000abcdef01ULL, "zero-extends");
    cr_assert_eq(gpr_merge(old, 0xfedcba98abcdef01ULL, 8), 0xfedcba98abcdef01ULL);
}
