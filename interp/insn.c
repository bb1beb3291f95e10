#include "interp/insn.h"

#include <errno.h>
#include <string.h>

static int is_legacy_prefix(uint8_t b)
{
    switch (b) {
    case 0x66:
    case 0x67:
    case 0xf0:
    case 0xf2:
    case 0xf3:
    case 0x26:
    case 0x2e:
    case 0x36:
    case 0x3e:
    case 0x64:
    case 0x65: return 1;
    }
    return 0;
}

/* Parses ModRM/SIB/displacement (addressing per mode); returns bytes used or -EINVAL. */
int insn_decode_modrm(const uint8_t *p, unsigned n, enum cpu_mode mode, int addr32_override, struct insn *in)
{
    if (n < 1)
        return -EINVAL;
    unsigned used = 1;
    in->has_modrm = 1;
    in->modrm = p[0];
    unsigned mod = p[0] >> 6, rm = p[0] & 7;
    int addr16 = (mode == MODE_REAL16 || mode == MODE_PROT16) ? !addr32_override
                                                              : addr32_override && mode == MODE_PROT32;
    if (mod == 3)
        return (int)used;
    if (addr16) {
        if ((mod == 0 && rm == 6) || mod == 2)
            in->disp_len = 2;
        else if (mod == 1)
            in->disp_len = 1;
    } else {
        if (rm == 4) {
            if (n < used + 1)
                return -EINVAL;
            in->has_sib = 1;
            in->sib = p[used++];
            if (mod == 0 && (in->sib & 7) == 5)
                in->disp_len = 4;
        }
        if ((mod == 0 && rm == 5) || mod == 2)
            in->disp_len = 4;
        else if (mod == 1)
            in->disp_len = 1;
    }
    if (n < used + in->disp_len)
        return -EINVAL;
    int64_t d = 0;
    if (in->disp_len == 1)
        d = (int8_t)p[used]; // NOLINT(bugprone-signed-char-misuse,cert-str34-c): disp8 is sign-extended by definition
    else if (in->disp_len == 2)
        d = (int16_t)(p[used] | p[used + 1] << 8);
    else if (in->disp_len == 4)
        d = (int32_t)((uint32_t)p[used] | (uint32_t)p[used + 1] << 8 | (uint32_t)p[used + 2] << 16 |
                      (uint32_t)p[used + 3] << 24);
    in->disp = d;
    return (int)(used + in->disp_len);
}

/* Decodes the ModRM operand at bytes[*i]; -ENOENT when it is cut short. */
static int take_modrm(const uint8_t *bytes, unsigned n, unsigned *i, enum cpu_mode mode, int addr_override,
                      struct insn *out)
{
    int used = insn_decode_modrm(bytes + *i, n - *i, mode, addr_override, out);
    if (used < 0)
        return -ENOENT;
    *i += (unsigned)used;
    return 0;
}

/* 0F AE group: the XSAVE/XRSTOR forms (memory), RD/WR FS/GS base (F3, register). */
static int decode_0fae(const struct insn *in, unsigned digit, enum cpu_mode mode)
{
    if ((in->modrm >> 6) == 3) {
        if (!in->rep || in->repne || in->opsize_prefix || mode != MODE_LONG64 || digit > 3)
            return -ENOENT; /* LFENCE/MFENCE/SFENCE and the rest: not ours */
        static const int fsgs[4] = {INSN_RDFSBASE, INSN_RDGSBASE, INSN_WRFSBASE, INSN_WRGSBASE};
        return fsgs[digit];
    }
    if (in->opsize_prefix || in->rep || in->repne)
        return -ENOENT; /* 66/F3 forms are CLWB, CLFLUSHOPT, PTWRITE...: not ours */
    switch (digit) {
    case 2: return INSN_LDMXCSR;
    case 3: return INSN_STMXCSR;
    case 4: return INSN_XSAVE;
    case 5: return INSN_XRSTOR;
    case 6: return INSN_XSAVEOPT;
    }
    return -ENOENT;
}

/* 0F C7 group: CMPXCHG8B/16B and the compacted XSAVE forms (memory), RDRAND/RDSEED (register). */
static int decode_0fc7(const struct insn *in, unsigned digit)
{
    int mem = (in->modrm >> 6) != 3;
    if (in->rep && !in->opsize_prefix && !mem && digit == 7)
        return INSN_RDPID;
    if (in->rep || in->repne)
        return -ENOENT; /* F3 /6 (mod 3) SENDUIPI, F3 /6 (memory) VMXON...: not ours */
    if (mem && digit == 1)
        return (in->rex & 8) ? INSN_CMPXCHG16B : INSN_CMPXCHG8B;
    if (mem && !in->opsize_prefix) {
        switch (digit) {
        case 3: return INSN_XRSTORS;
        case 4: return INSN_XSAVEC;
        case 5: return INSN_XSAVES;
        }
    }
    if (!mem && digit == 6)
        return INSN_RDRAND;
    if (!mem && digit == 7)
        return INSN_RDSEED;
    return -ENOENT;
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
        case 0xf2:
            out->repne = 1;
            out->rep = 0;
            break;
        case 0xf3:
            out->rep = 1;
            out->repne = 0;
            break;
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
    if (mode == MODE_LONG64)
        out->addr_size = addr_override ? 4 : 8;
    else
        out->addr_size = ((mode == MODE_PROT32) ^ addr_override) ? 4 : 2;

    /* VEX/EVEX (64-bit mode only here): no 66/F2/F3/LOCK/REX may come before them. */
    if (mode == MODE_LONG64 && (bytes[i] == 0xc4 || bytes[i] == 0xc5 || bytes[i] == 0x62)) {
        if (out->rex || out->opsize_prefix || out->rep || out->repne || out->lock)
            return -ENOENT;
        return insn_decode_vex(bytes, n, i, addr_override, out);
    }
    int kind = -ENOENT;
    uint8_t op = bytes[i++];
    if (op == 0xcc) {
        kind = INSN_INT3;
    } else if (op == 0x9b) {
        kind = INSN_FWAIT;
    } else if (op == 0x0f && i < n) {
        uint8_t op2 = bytes[i++];
        if (op2 == 0xb8 && out->rep) {
            if (take_modrm(bytes, n, &i, mode, addr_override, out))
                return -ENOENT;
            kind = INSN_POPCNT;
        } else if (op2 == 0xae || op2 == 0xc7) {
            if (take_modrm(bytes, n, &i, mode, addr_override, out))
                return -ENOENT;
            kind = op2 == 0xae ? decode_0fae(out, insn_digit(out), mode) : decode_0fc7(out, insn_digit(out));
        } else if (op2 == 0x01 && i < n) {
            static const struct {
                uint8_t modrm;
                enum interp_insn kind;
            } grp7[] = {{0xd0, INSN_XGETBV}, {0xd1, INSN_XSETBV}, {0xca, INSN_CLAC}, {0xcb, INSN_STAC}};
            for (unsigned k = 0; k < sizeof(grp7) / sizeof(grp7[0]); k++)
                if (bytes[i] == grp7[k].modrm && !out->opsize_prefix && !out->rep && !out->repne)
                    kind = (int)grp7[k].kind;
            if (kind >= 0) {
                out->has_modrm = 1;
                out->modrm = bytes[i++];
            }
        }
    }
    if (kind < 0)
        return -ENOENT;
    out->kind = (enum interp_insn)kind;
    /* LOCK is #UD on hardware except where the table allows it: not ours to paper over. */
    if (out->lock && !(interp_insn_flags(out->kind) & INSN_F_LOCK_OK))
        return -ENOENT;
    out->len = (uint8_t)i;
    return 0;
}

unsigned insn_reg(const struct insn *in) { return ((in->rex & 4u) << 1) | ((in->modrm >> 3) & 7u); }
unsigned insn_rm(const struct insn *in) { return ((in->rex & 1u) << 3) | (in->modrm & 7u); }
unsigned insn_vreg(const struct insn *in) { return insn_reg(in) | (in->evex_rr ? 16u : 0u); }
unsigned insn_vrm(const struct insn *in) { return insn_rm(in) | (in->evex_x ? 16u : 0u); }
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

int cmpxchg_exec(unsigned size, uint64_t *lo, uint64_t *hi, uint64_t m_lo, uint64_t m_hi, uint64_t *rflags)
{
    int equal;
    if (size == 16) {
        equal = *lo == m_lo && *hi == m_hi;
    } else {
        /* CMPXCHG8B: EDX:EAX against the 64-bit memory value. */
        uint64_t pair = (*lo & 0xffffffffULL) | (*hi << 32);
        equal = pair == m_lo;
        m_hi = m_lo >> 32;
        m_lo &= 0xffffffffULL;
    }
    if (equal) {
        *rflags |= RFLAGS_ZF;
        return 1;
    }
    *rflags &= ~RFLAGS_ZF;
    *lo = m_lo; /* for CMPXCHG8B these are 32-bit writes: zero-extended */
    *hi = m_hi;
    return 0;
}

uint64_t rdrand_exec(int ok, uint64_t value, unsigned size, uint64_t *rflags)
{
    *rflags &= ~(RFLAGS_CF | RFLAGS_PF | RFLAGS_AF | RFLAGS_ZF | RFLAGS_SF | RFLAGS_OF);
    if (!ok)
        return 0;
    *rflags |= RFLAGS_CF;
    return size < 8 ? value & ((1ULL << (size * 8)) - 1) : value;
}
