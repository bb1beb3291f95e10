#include "insn.h"

#include <errno.h>
#include <string.h>

static int is_legacy_prefix(uint8_t b)
{
    switch (b) {
    case 0x66: case 0x67: case 0xf0: case 0xf2: case 0xf3:
    case 0x26: case 0x2e: case 0x36: case 0x3e: case 0x64: case 0x65:
        return 1;
    }
    return 0;
}

/* Parses ModRM/SIB/displacement (addressing per mode); returns bytes used or -EINVAL. */
static int decode_modrm(const uint8_t *p, unsigned n, enum cpu_mode mode, int addr32_override,
                        struct insn *in)
{
    if (n < 1)
        return -EINVAL;
    unsigned used = 1;
    in->has_modrm = 1;
    in->modrm = p[0];
    unsigned mod = p[0] >> 6, rm = p[0] & 7;
    int addr16 = (mode == MODE_REAL16 || mode == MODE_PROT16) ? !addr32_override : addr32_override && mode == MODE_PROT32;
    if (mod == 3)
        return (int)used;
    if (addr16) {
        if (mod == 0 && rm == 6)
            in->disp_len = 2;
        else if (mod == 1)
            in->disp_len = 1;
        else if (mod == 2)
            in->disp_len = 2;
    } else {
        if (rm == 4) {
            if (n < used + 1)
                return -EINVAL;
            in->has_sib = 1;
            in->sib = p[used++];
            if (mod == 0 && (in->sib & 7) == 5)
                in->disp_len = 4;
        }
        if (mod == 0 && rm == 5)
            in->disp_len = 4;
        else if (mod == 1)
            in->disp_len = 1;
        else if (mod == 2)
            in->disp_len = 4;
    }
    if (n < used + in->disp_len)
        return -EINVAL;
    int64_t d = 0;
    if (in->disp_len == 1)
        d = (int8_t)p[used];
    else if (in->disp_len == 2)
        d = (int16_t)(p[used] | p[used + 1] << 8);
    else if (in->disp_len == 4)
        d = (int32_t)((uint32_t)p[used] | (uint32_t)p[used + 1] << 8 | (uint32_t)p[used + 2] << 16 |
                      (uint32_t)p[used + 3] << 24);
    in->disp = d;
    return (int)(used + in->disp_len);
}

int insn_decode(const uint8_t *bytes, unsigned n, enum cpu_mode mode, struct insn *out)
{
    memset(out, 0, sizeof(*out));
    if (n > INSN_MAX_LEN)
        n = INSN_MAX_LEN;
    unsigned i = 0;
    int addr_override = 0;
    while (i < n && is_legacy_prefix(bytes[i])) {
        switch (bytes[i]) {
        case 0x66: out->opsize_prefix = 1; break;
        case 0x67: addr_override = 1; break;
        case 0xf0: out->lock = 1; break;
        case 0xf2: out->repne = 1; out->rep = 0; break;
        case 0xf3: out->rep = 1; out->repne = 0; break;
        default: out->seg = bytes[i]; break;
        }
        i++;
    }
    /* REX only counts as the last prefix in 64-bit mode. */
    if (mode == MODE_LONG64 && i < n && (bytes[i] & 0xf0) == 0x40)
        out->rex = bytes[i++];
    if (i >= n)
        return -ENOENT;
    int def32 = mode == MODE_PROT32 || mode == MODE_LONG64;
    out->opsize = (out->rex & 0x8) ? 8 : (def32 ^ out->opsize_prefix) ? 4 : 2;

    uint8_t op = bytes[i++];
    if (op == 0xcc) {
        out->kind = INSN_INT3;
    } else if (op == 0x9b) {
        out->kind = INSN_FWAIT;
    } else if (op == 0x0f && i + 1 <= n && bytes[i] == 0xb8 && out->rep) {
        i++;
        int used = decode_modrm(bytes + i, n - i, mode, addr_override, out);
        if (used < 0)
            return -ENOENT;
        i += (unsigned)used;
        out->kind = INSN_POPCNT;
    } else {
        return -ENOENT;
    }
    if (out->lock)
        return -ENOENT; /* LOCK on any of these is #UD on hardware: not ours to paper over */
    out->len = (uint8_t)i;
    return 0;
}

unsigned insn_reg(const struct insn *in) { return ((in->rex & 4u) << 1) | ((in->modrm >> 3) & 7u); }
unsigned insn_rm(const struct insn *in) { return ((in->rex & 1u) << 3) | (in->modrm & 7u); }
int insn_rm_is_reg(const struct insn *in) { return (in->modrm >> 6) == 3; }

uint64_t popcnt_exec(uint64_t src, unsigned size, uint64_t *rflags)
{
    if (size < 8)
        src &= (1ULL << (size * 8)) - 1;
    uint64_t count = (uint64_t)__builtin_popcountll(src);
    *rflags &= ~(RFLAGS_CF | RFLAGS_PF | RFLAGS_AF | RFLAGS_ZF | RFLAGS_SF | RFLAGS_OF);
    if (src == 0)
        *rflags |= RFLAGS_ZF;
    return count;
}

int fwait_pending_exception(uint16_t fsw, uint16_t fcw)
{
    /* Exception flags IE..PE are bits 0-5 of FSW, masked by the same bits of FCW. */
    return ((fsw & 0x3f) & ~(fcw & 0x3f)) != 0;
}

uint64_t gpr_merge(uint64_t old, uint64_t val, unsigned size)
{
    switch (size) {
    case 1: return (old & ~0xffULL) | (val & 0xff);
    case 2: return (old & ~0xffffULL) | (val & 0xffff);
    case 4: return val & 0xffffffffULL; /* 32-bit writes zero-extend */
    default: return val;
    }
}
