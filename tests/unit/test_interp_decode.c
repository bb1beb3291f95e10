/* interp: decoding of the instructions added for the interpreter (XSAVE family, CMPXCHG8B/16B, ...). */
#include <criterion/criterion.h>
#include <errno.h>

#include "interp/insn.h"

static struct insn in;

#define DECODE(mode, ...)                          \
    ({                                             \
        static const uint8_t b_[] = {__VA_ARGS__}; \
        insn_decode(b_, sizeof(b_), mode, &in);    \
    })
#define EXPECT(kind_, len_, mode, ...)                                      \
    do {                                                                    \
        cr_assert_eq(DECODE(mode, __VA_ARGS__), 0, "decode " #__VA_ARGS__); \
        cr_assert_eq(in.kind, kind_, "kind of " #__VA_ARGS__);              \
        cr_assert_eq(in.len, len_, "length of " #__VA_ARGS__);              \
    } while (0)

Test(decode, xsave_family)
{
    /* The encodings Linux uses (arch/x86/kernel/fpu/xstate.h), REX.W and [rdi]. */
    EXPECT(INSN_XSAVE, 4, MODE_LONG64, 0x48, 0x0f, 0xae, 0x27);
    EXPECT(INSN_XSAVEOPT, 4, MODE_LONG64, 0x48, 0x0f, 0xae, 0x37);
    EXPECT(INSN_XSAVEC, 4, MODE_LONG64, 0x48, 0x0f, 0xc7, 0x27);
    EXPECT(INSN_XSAVES, 4, MODE_LONG64, 0x48, 0x0f, 0xc7, 0x2f);
    EXPECT(INSN_XRSTOR, 4, MODE_LONG64, 0x48, 0x0f, 0xae, 0x2f);
    EXPECT(INSN_XRSTORS, 4, MODE_LONG64, 0x48, 0x0f, 0xc7, 0x1f);
    cr_assert_eq(in.rex, 0x48);
    EXPECT(INSN_XRSTOR, 3, MODE_PROT32, 0x0f, 0xae, 0x2f);
    EXPECT(INSN_XSAVE, 8, MODE_LONG64, 0x0f, 0xae, 0xa4, 0x24, 0x00, 0x01, 0x00, 0x00); /* [rsp+0x100] */
    cr_assert_eq(in.disp, 0x100);
    /* Not these: register forms (fences), 66/F3 forms, other digits, LOCK. */
    cr_assert_eq(DECODE(MODE_LONG64, 0x0f, 0xae, 0xe8), -ENOENT, "lfence");
    cr_assert_eq(DECODE(MODE_LONG64, 0x0f, 0xae, 0xf0), -ENOENT, "mfence");
    cr_assert_eq(DECODE(MODE_LONG64, 0x66, 0x0f, 0xae, 0x37), -ENOENT, "clwb");
    cr_assert_eq(DECODE(MODE_LONG64, 0x66, 0x0f, 0xae, 0x3f), -ENOENT, "clflushopt");
    cr_assert_eq(DECODE(MODE_LONG64, 0x0f, 0xae, 0x07), -ENOENT, "fxsave");
    cr_assert_eq(DECODE(MODE_LONG64, 0x0f, 0xae, 0x3f), -ENOENT, "clflush");
    cr_assert_eq(DECODE(MODE_LONG64, 0xf0, 0x0f, 0xae, 0x27), -ENOENT, "lock xsave");
    cr_assert_eq(DECODE(MODE_LONG64, 0x66, 0x0f, 0xc7, 0x27), -ENOENT, "66 xsavec");
    cr_assert_eq(DECODE(MODE_LONG64, 0x0f, 0xc7, 0x37), -ENOENT, "vmptrld");
    cr_assert_eq(DECODE(MODE_LONG64, 0x48, 0x0f, 0xae), -ENOENT, "no ModRM");
}

Test(decode, cmpxchg8b_16b)
{
    EXPECT(INSN_CMPXCHG16B, 5, MODE_LONG64, 0xf0, 0x48, 0x0f, 0xc7, 0x0f);
    cr_assert(in.lock);
    EXPECT(INSN_CMPXCHG8B, 4, MODE_LONG64, 0xf0, 0x0f, 0xc7, 0x0f);
    EXPECT(INSN_CMPXCHG8B, 3, MODE_PROT32, 0x0f, 0xc7, 0x0e);
    cr_assert_eq(in.addr_size, 4);
    EXPECT(INSN_CMPXCHG16B, 9, MODE_LONG64, 0x65, 0x48, 0x0f, 0xc7, 0x0d, 1, 2, 3, 4); /* gs:[rip+x] */
    cr_assert_eq(in.seg, 0x65);
    cr_assert_eq(DECODE(MODE_LONG64, 0x48, 0x0f, 0xc7, 0xc8), -ENOENT, "register operand: #UD");
    cr_assert_eq(DECODE(MODE_LONG64, 0xf3, 0x0f, 0xc7, 0x0f), -ENOENT, "F3");
    cr_assert_eq(DECODE(MODE_PROT32, 0x48, 0x0f, 0xc7, 0x0f), -ENOENT, "48 is DEC EAX outside long mode");
}

Test(decode, rdrand_rdseed_rdpid)
{
    EXPECT(INSN_RDRAND, 4, MODE_LONG64, 0x48, 0x0f, 0xc7, 0xf0);
    cr_assert_eq(in.opsize, 8);
    EXPECT(INSN_RDRAND, 4, MODE_LONG64, 0x66, 0x0f, 0xc7, 0xf0);
    cr_assert_eq(in.opsize, 2);
    EXPECT(INSN_RDSEED, 3, MODE_LONG64, 0x0f, 0xc7, 0xf8);
    cr_assert_eq(in.opsize, 4);
    EXPECT(INSN_RDPID, 4, MODE_LONG64, 0xf3, 0x0f, 0xc7, 0xf8);
    cr_assert_eq(DECODE(MODE_LONG64, 0xf3, 0x0f, 0xc7, 0xf0), -ENOENT, "F3 /6: not RDRAND");
    cr_assert_eq(DECODE(MODE_LONG64, 0xf2, 0x0f, 0xc7, 0xf8), -ENOENT);
}

Test(decode, group7_and_fsgsbase)
{
    EXPECT(INSN_XGETBV, 3, MODE_LONG64, 0x0f, 0x01, 0xd0);
    EXPECT(INSN_XSETBV, 3, MODE_PROT32, 0x0f, 0x01, 0xd1);
    EXPECT(INSN_CLAC, 3, MODE_LONG64, 0x0f, 0x01, 0xca);
    EXPECT(INSN_STAC, 3, MODE_LONG64, 0x0f, 0x01, 0xcb);
    cr_assert_eq(DECODE(MODE_LONG64, 0x0f, 0x01, 0xf8), -ENOENT, "swapgs");
    cr_assert_eq(DECODE(MODE_LONG64, 0x0f, 0x01, 0xc1), -ENOENT, "vmcall");
    cr_assert_eq(DECODE(MODE_LONG64, 0x66, 0x0f, 0x01, 0xd0), -ENOENT);
    cr_assert_eq(DECODE(MODE_LONG64, 0x0f, 0x01), -ENOENT, "cut");

    EXPECT(INSN_RDFSBASE, 5, MODE_LONG64, 0xf3, 0x48, 0x0f, 0xae, 0xc0);
    EXPECT(INSN_RDGSBASE, 5, MODE_LONG64, 0xf3, 0x48, 0x0f, 0xae, 0xc8);
    EXPECT(INSN_WRFSBASE, 5, MODE_LONG64, 0xf3, 0x48, 0x0f, 0xae, 0xd0);
    EXPECT(INSN_WRGSBASE, 5, MODE_LONG64, 0xf3, 0x49, 0x0f, 0xae, 0xd8);
    cr_assert_eq(DECODE(MODE_PROT32, 0xf3, 0x0f, 0xae, 0xc0), -ENOENT, "64-bit mode only");
    cr_assert_eq(DECODE(MODE_LONG64, 0xf3, 0x0f, 0xae, 0xe0), -ENOENT, "F3 /4 (ptwrite)");
}

Test(decode, old_forms_unchanged)
{
    EXPECT(INSN_INT3, 1, MODE_LONG64, 0xcc);
    EXPECT(INSN_POPCNT, 4, MODE_LONG64, 0xf3, 0x0f, 0xb8, 0xc1);
    cr_assert_eq(DECODE(MODE_LONG64, 0xf0, 0xf3, 0x0f, 0xb8, 0x03), -ENOENT, "lock popcnt");
    cr_assert_eq(DECODE(MODE_LONG64, 0x0f, 0x0b), -ENOENT, "ud2");
}
