/*
 * The plain instructions the interpreter runs only *after* one it had to
 * run, within the same exit (see interp.c): the loop control around vector
 * code (Linux's BLAKE2s runs ~470 VEX/EVEX instructions per 64-byte block,
 * with ADD/DEC/LEA/MOV/Jcc between them). kvm-pvm runs these itself; doing
 * them here saves an exit and a re-entry per vector instruction.
 */
#include <errno.h>
#include <string.h>

#include "interp/insn.h"

static int take_imm(const uint8_t *b, unsigned n, unsigned *i, unsigned size, struct insn *out)
{
    if (*i + size > n)
        return -ENOENT;
    uint64_t v = 0;
    for (unsigned k = 0; k < size; k++)
        v |= (uint64_t)b[*i + k] << (8 * k);
    if (size < 8) {
        unsigned shift = 64 - 8 * size;
        v = (uint64_t)((int64_t)(v << shift) >> shift); /* sign-extend */
    }
    out->imm64 = (int64_t)v;
    out->has_imm = 1;
    *i += size;
    return 0;
}

static int take_modrm(const uint8_t *b, unsigned n, unsigned *i, int addr_override, struct insn *out)
{
    int used = insn_decode_modrm(b + *i, n - *i, MODE_LONG64, addr_override, out);
    if (used < 0)
        return -ENOENT;
    *i += (unsigned)used;
    return 0;
}

int insn_decode_runahead(const uint8_t *b, unsigned n, enum cpu_mode mode, struct insn *out)
{
    int rc = insn_decode(b, n, mode, out);
    if (rc != -ENOENT || mode != MODE_LONG64)
        return rc;
    memset(out, 0, sizeof(*out));
    if (n > INSN_MAX_LEN)
        n = INSN_MAX_LEN;
    unsigned i = 0;
    int addr_override = 0;
    /* 66 (operand size), 67 (address size), and CS/DS (branch hints, NOP padding). */
    for (; i < n; i++) {
        if (b[i] == 0x66)
            out->opsize_prefix = 1;
        else if (b[i] == 0x67)
            addr_override = 1;
        else if (b[i] == 0x2e || b[i] == 0x3e)
            out->seg = b[i];
        else
            break;
    }
    if (i < n && (b[i] & 0xf0) == 0x40)
        out->rex = b[i++];
    if (i >= n)
        return -ENOENT;
    out->opsize = (out->rex & 8) ? 8 : out->opsize_prefix ? 2 : 4;
    out->addr_size = addr_override ? 4 : 8;
    uint8_t op = b[i++];
    out->opcode = op;
    int branch = 0, mem_ok = 0, modrm = 0;
    unsigned imm = 0;
    switch (op) {
    case 0x00:
    case 0x28:
    case 0x38: /* add/sub/cmp r/m8, r8 */
    case 0x02:
    case 0x2a:
    case 0x3a: /* r8, r/m8 */
        out->opsize = 1;
        /* fall through */
    case 0x01:
    case 0x29:
    case 0x39:
    case 0x03:
    case 0x2b:
    case 0x3b: modrm = 1; break;
    case 0x04:
    case 0x2c:
    case 0x3c: /* al, imm8 */ out->opsize = 1, imm = 1; break;
    case 0x05:
    case 0x2d:
    case 0x3d: /* eax, imm32 */ imm = out->opsize == 2 ? 2 : 4; break;
    case 0x80: out->opsize = 1, modrm = 1, imm = 1; break;
    case 0x81: modrm = 1, imm = out->opsize == 2 ? 2 : 4; break;
    case 0x83: modrm = 1, imm = 1; break;
    case 0xfe: out->opsize = 1;  /* fall through */
    case 0xff: modrm = 1; break; /* inc/dec */
    case 0x88:
    case 0x8a: out->opsize = 1; /* fall through */
    case 0x89:
    case 0x8b: modrm = 1; break;             /* mov, register forms */
    case 0x8d: modrm = 1, mem_ok = 1; break; /* lea */
    case 0xc7: modrm = 1, imm = out->opsize == 2 ? 2 : 4; break;
    case 0x90:
        if (out->rex & 1)
            return -ENOENT;
        break; /* nop (REX.B 90 is xchg r8, rax) */
    case 0xeb: branch = 1, imm = 1; break;
    case 0xe9: branch = 1, imm = 4; break;
    case 0x0f:
        if (i >= n)
            return -ENOENT;
        op = b[i++];
        out->opcode = op;
        out->map0f = 1;
        if (op == 0x1f)
            modrm = 1, mem_ok = 1; /* nop r/m */
        else if ((op & 0xf0) == 0x80)
            branch = 1, imm = 4; /* jcc rel32 */
        else
            return -ENOENT;
        break;
    default:
        if (op >= 0xb0 && op <= 0xb7) {
            out->opsize = 1, imm = 1; /* mov r8, imm8 */
        } else if (op >= 0xb8 && op <= 0xbf) {
            imm = out->opsize; /* mov r, imm16/32/64 */
        } else if (op >= 0x70 && op <= 0x7f) {
            branch = 1, imm = 1; /* jcc rel8 */
        } else {
            return -ENOENT;
        }
    }
    if (branch && out->opsize_prefix)
        return -ENOENT; /* 16-bit branch targets: vendors disagree, not ours */
    if (modrm) {
        if (take_modrm(b, n, &i, addr_override, out))
            return -ENOENT;
        unsigned digit = insn_digit(out);
        int reg_form = (out->modrm >> 6) == 3;
        if (!reg_form && !mem_ok)
            return -ENOENT; /* no memory operands here */
        if (reg_form && mem_ok && op == 0x8d)
            return -ENOENT; /* lea with a register operand is #UD */
        if ((op == 0x80 || op == 0x81 || op == 0x83) && !out->map0f && digit != 0 && digit != 5 && digit != 7)
            return -ENOENT; /* only add, sub, cmp */
        if ((op == 0xfe || op == 0xff) && digit > 1)
            return -ENOENT; /* only inc, dec */
        if (op == 0xc7 && digit != 0)
            return -ENOENT;
        if (out->map0f && op == 0x1f && digit != 0)
            return -ENOENT;
    }
    if (imm && take_imm(b, n, &i, imm, out))
        return -ENOENT;
    out->kind = INSN_RUNAHEAD;
    out->len = (uint8_t)i;
    return 0;
}

uint64_t alu_exec(unsigned op, uint64_t a, uint64_t b, unsigned size, uint64_t *rflags)
{
    unsigned bits = size * 8;
    uint64_t mask = bits == 64 ? ~0ULL : (1ULL << bits) - 1, sign = 1ULL << (bits - 1);
    a &= mask, b &= mask;
    int sub = op == 5 || op == 7 || op == 9;
    uint64_t res = (sub ? a - b : a + b) & mask;
    uint64_t f = *rflags & ~(RFLAGS_PF | RFLAGS_AF | RFLAGS_ZF | RFLAGS_SF | RFLAGS_OF);
    if (op != 8 && op != 9) { /* INC and DEC leave CF alone */
        f &= ~RFLAGS_CF;
        if (sub ? a < b : res < a)
            f |= RFLAGS_CF;
    }
    if (sub ? ((a ^ b) & (a ^ res) & sign) : ((a ^ res) & (b ^ res) & sign))
        f |= RFLAGS_OF;
    if (res & sign)
        f |= RFLAGS_SF;
    if (!res)
        f |= RFLAGS_ZF;
    if ((a ^ b ^ res) & 0x10)
        f |= RFLAGS_AF;
    if (!(__builtin_popcount((unsigned)(res & 0xff)) & 1))
        f |= RFLAGS_PF;
    *rflags = f;
    return res;
}

int jcc_taken(unsigned cc, uint64_t f)
{
    int cf = !!(f & RFLAGS_CF), zf = !!(f & RFLAGS_ZF), sf = !!(f & RFLAGS_SF), of = !!(f & RFLAGS_OF),
        pf = !!(f & RFLAGS_PF);
    int t;
    switch (cc >> 1) {
    case 0: t = of; break;
    case 1: t = cf; break;
    case 2: t = zf; break;
    case 3: t = cf || zf; break;
    case 4: t = sf; break;
    case 5: t = pf; break;
    case 6: t = sf != of; break;
    default: t = zf || sf != of; break;
    }
    return (cc & 1) ? !t : t;
}
