/*
 * Vector instructions on KVM's XSAVE image: LDMXCSR/STMXCSR, and the
 * VEX/EVEX integer operations insn_vex.c decodes (what Linux's AVX-512
 * BLAKE2s runs). Register i's 512 bits live in up to four places of the
 * standard-format image:
 *   bits 127:0   XMM i in the legacy region (i < 16) or Hi16_ZMM (i >= 16)
 *   bits 255:128 YMM_Hi128 (component 2) for i < 16
 *   bits 511:256 ZMM_Hi256 (component 6) for i < 16
 *   bits 511:0   Hi16_ZMM (component 7) for i >= 16
 * VEX/EVEX writes zero the destination above the vector length, as the CPU
 * does; only components enabled in XCR0 are touched.
 */
#include <errno.h>
#include <string.h>

#include "interp/interp_cpu.h"
#include "core/le.h"

#define LEG_XMM 160
#define LEG_MXCSR 24
#define C_YMM 2
#define C_OPMASK 5
#define C_ZMM_HI256 6
#define C_HI16_ZMM 7
#define VMAX 64

static int enabled(const struct interp_cpu *c, unsigned comp) { return (c->xcr0 >> comp) & 1; }

static void vreg_get(const struct interp_cpu *c, unsigned r, uint8_t v[VMAX])
{
    const struct xstate_layout *xl = c->xl;
    memset(v, 0, VMAX);
    if (r >= 16) {
        if (enabled(c, C_HI16_ZMM))
            memcpy(v, c->xsave + xl->offset[C_HI16_ZMM] + 64 * (r - 16), 64);
        return;
    }
    memcpy(v, c->xsave + LEG_XMM + 16 * r, 16);
    if (enabled(c, C_YMM))
        memcpy(v + 16, c->xsave + xl->offset[C_YMM] + 16 * r, 16);
    if (enabled(c, C_ZMM_HI256))
        memcpy(v + 32, c->xsave + xl->offset[C_ZMM_HI256] + 32 * r, 32);
}

/* Writes all 512 bits (callers have zeroed what lies above the vector length). */
static void vreg_put(struct interp_cpu *c, unsigned r, const uint8_t v[VMAX])
{
    const struct xstate_layout *xl = c->xl;
    uint64_t bv;
    memcpy(&bv, c->xsave + XSAVE_HDR, 8);
    if (r >= 16) {
        memcpy(c->xsave + xl->offset[C_HI16_ZMM] + 64 * (r - 16), v, 64);
        bv |= 1ULL << C_HI16_ZMM;
    } else {
        memcpy(c->xsave + LEG_XMM + 16 * r, v, 16);
        bv |= 1ULL << 1;
        if (enabled(c, C_YMM)) {
            memcpy(c->xsave + xl->offset[C_YMM] + 16 * r, v + 16, 16);
            bv |= 1ULL << C_YMM;
        }
        if (enabled(c, C_ZMM_HI256)) {
            memcpy(c->xsave + xl->offset[C_ZMM_HI256] + 32 * r, v + 32, 32);
            bv |= 1ULL << C_ZMM_HI256;
        }
    }
    memcpy(c->xsave + XSAVE_HDR, &bv, 8);
    c->xsave_dirty = 1;
}

static uint64_t opmask(const struct interp_cpu *c, unsigned k)
{
    uint64_t m = 0;
    if (k && enabled(c, C_OPMASK))
        memcpy(&m, c->xsave + c->xl->offset[C_OPMASK] + 8 * k, 8);
    return m;
}

/* #UD/#NM checks for VEX (XCR0 SSE+AVX) and EVEX (plus the three AVX-512 components). */
static int check_avx(struct interp_cpu *c, const struct insn *in)
{
    uint64_t need = in->vex == 4 ? 0xe6 : 0x6;
    if (!(c->sregs.cr4 & CR4_OSXSAVE) || (c->xcr0 & need) != need || c->mode != MODE_LONG64)
        return interp_raise(c, VEC_UD, 0, 0);
    if (c->sregs.cr0 & CR0_TS)
        return interp_raise(c, VEC_NM, 0, 0);
    return 0;
}

static unsigned vlen(const struct insn *in) { return 16u << in->vex_l; }

/* Reads the r/m source: a register, vl bytes of memory, or (EVEX.b) one element broadcast. */
static int read_src(struct interp_cpu *c, const struct insn *in, unsigned vl, unsigned esize, int aligned,
                    uint8_t v[VMAX])
{
    if (insn_rm_is_reg(in)) {
        vreg_get(c, insn_vrm(in), v);
        return 0;
    }
    uint64_t lin;
    int ss;
    int rc = interp_operand_address(c, in, &lin, &ss);
    if (rc)
        return rc;
    memset(v, 0, VMAX);
    if (in->evex_b) {
        uint8_t e[8];
        if ((rc = interp_read(c, lin, ss, e, esize)))
            return rc;
        for (unsigned i = 0; i < vl; i += esize)
            memcpy(v + i, e, esize);
        return 0;
    }
    if (aligned && (lin & (vl - 1)))
        return interp_raise(c, VEC_GP, 1, 0);
    return interp_read(c, lin, ss, v, vl);
}

/*
 * Writes a result to vector register r: elements the EVEX opmask leaves out
 * keep their value (merging) or become 0 (zeroing); everything above the
 * vector length becomes 0.
 */
static void write_masked(struct interp_cpu *c, const struct insn *in, unsigned r, const uint8_t res[VMAX], unsigned vl,
                         unsigned esize)
{
    uint8_t out[VMAX], old[VMAX];
    memset(out, 0, sizeof(out));
    memcpy(out, res, vl);
    if (in->vex == 4 && in->evex_aaa) {
        uint64_t m = opmask(c, in->evex_aaa);
        vreg_get(c, r, old);
        for (unsigned e = 0; e < vl / esize; e++)
            if (!((m >> e) & 1)) {
                if (in->evex_z)
                    memset(out + e * esize, 0, esize);
                else
                    memcpy(out + e * esize, old + e * esize, esize);
            }
    }
    vreg_put(c, r, out);
}

/* Stores vl bytes of a register to memory, only the opmask's elements for a masked EVEX store. */
static int store_masked(struct interp_cpu *c, const struct insn *in, const uint8_t v[VMAX], unsigned vl, unsigned esize,
                        int aligned)
{
    uint64_t lin;
    int ss;
    int rc = interp_operand_address(c, in, &lin, &ss);
    if (rc)
        return rc;
    if (aligned && (lin & (vl - 1)))
        return interp_raise(c, VEC_GP, 1, 0);
    if (in->vex == 4 && in->evex_aaa) {
        uint8_t mem[VMAX];
        if ((rc = interp_read_for_write(c, lin, ss, mem, vl)))
            return rc;
        uint64_t m = opmask(c, in->evex_aaa);
        for (unsigned e = 0; e < vl / esize; e++)
            if ((m >> e) & 1)
                memcpy(mem + e * esize, v + e * esize, esize);
        return interp_write(c, lin, ss, mem, vl);
    }
    return interp_write(c, lin, ss, v, vl);
}

/* The checks every VEX/EVEX vector instruction makes before its own. */
static int vector_checks(struct interp_cpu *c, const struct insn *in)
{
    int rc = check_avx(c, in);
    if (rc)
        return rc;
    if (in->vex == 4 && in->vex_l == 2 && !(c->xcr0 & 0xe0))
        return interp_raise(c, VEC_UD, 0, 0);
    return 0;
}

static unsigned elem_size(const struct insn *in)
{
    if (in->vex == 4 && in->vex_pp == 3) /* vmovdqu8/16 (F2) */
        return (in->rex & 8) ? 2 : 1;
    return (in->rex & 8) ? 8 : 4;
}

int interp_run_vmovdq(struct interp_cpu *c, const struct insn *in)
{
    int rc = vector_checks(c, in);
    if (rc)
        return rc;
    unsigned vl = vlen(in), es = elem_size(in);
    int aligned = in->vex_pp == 1; /* vmovdqa: 66 */
    if (in->vex_v || in->evex_b)
        return interp_fail(c, -ENOENT, "vvvv or EVEX.b set on a move");
    uint8_t v[VMAX];
    if (in->opcode == 0x6f) { /* load: reg <- r/m */
        if ((rc = read_src(c, in, vl, es, aligned, v)))
            return rc;
        write_masked(c, in, insn_vreg(in), v, vl, es);
        return 0;
    }
    vreg_get(c, insn_vreg(in), v); /* store: r/m <- reg */
    if (insn_rm_is_reg(in)) {
        write_masked(c, in, insn_vrm(in), v, vl, es);
        return 0;
    }
    return store_masked(c, in, v, vl, es, aligned);
}

int interp_run_vmovd(struct interp_cpu *c, const struct insn *in)
{
    int rc = vector_checks(c, in);
    if (rc)
        return rc;
    unsigned size = (in->rex & 8) ? 8 : 4;
    if (in->vex_l || in->vex_v || (in->vex == 4 && in->evex_aaa))
        return interp_fail(c, -ENOENT, "VMOVD/VMOVQ with a vector length, vvvv or a mask");
    uint8_t v[VMAX];
    memset(v, 0, sizeof(v));
    uint64_t lin;
    int ss;
    if (in->opcode == 0xd6) { /* 66 0F D6: vmovq xmm/m64, xmm */
        vreg_get(c, insn_vreg(in), v);
        memset(v + 8, 0, VMAX - 8);
        if (insn_rm_is_reg(in)) {
            vreg_put(c, insn_vrm(in), v);
            return 0;
        }
        if ((rc = interp_operand_address(c, in, &lin, &ss)))
            return rc;
        return interp_write(c, lin, ss, v, 8);
    }
    if (in->vex_pp == 2) { /* F3 0F 7E: vmovq xmm, xmm/m64 */
        uint8_t src[VMAX];
        if ((rc = read_src(c, in, 8, 8, 0, src)))
            return rc;
        memcpy(v, src, 8);
        vreg_put(c, insn_vreg(in), v);
        return 0;
    }
    if (in->opcode == 0x6e) { /* xmm <- r/m32/64 */
        if (insn_rm_is_reg(in)) {
            uint64_t g = *interp_gpr(&c->regs, insn_rm(in));
            memcpy(v, &g, size);
        } else {
            if ((rc = interp_operand_address(c, in, &lin, &ss)) || (rc = interp_read(c, lin, ss, v, size)))
                return rc;
        }
        vreg_put(c, insn_vreg(in), v);
        return 0;
    }
    vreg_get(c, insn_vreg(in), v); /* 7E: r/m32/64 <- xmm */
    if (insn_rm_is_reg(in)) {
        __u64 *g = interp_gpr(&c->regs, insn_rm(in));
        *g = size == 8 ? le_ld64(v) : le_ld32(v); /* a 32-bit GPR write zero-extends */
        return 0;
    }
    if ((rc = interp_operand_address(c, in, &lin, &ss)))
        return rc;
    return interp_write(c, lin, ss, v, size);
}

int interp_run_vpalu(struct interp_cpu *c, const struct insn *in)
{
    int rc = vector_checks(c, in);
    if (rc)
        return rc;
    unsigned vl = vlen(in);
    int q = in->opcode == 0xd4 || in->opcode == 0xfb; /* vpaddq, vpsubq */
    if (in->vex == 4) {
        int w = (in->rex & 8) != 0;
        if ((in->opcode == 0xfe || in->opcode == 0xfa) && w)
            return interp_fail(c, -ENOENT, "EVEX.W1 on VPADDD/VPSUBD");
        if (q && !w)
            return interp_fail(c, -ENOENT, "EVEX.W0 on VPADDQ/VPSUBQ");
        q = w; /* logic ops: D (W0) or Q (W1) elements for masking and broadcast */
    }
    unsigned es = q ? 8 : 4;
    uint8_t a[VMAX], b[VMAX], r[VMAX];
    rc = read_src(c, in, vl, es, 0, b);
    if (rc)
        return rc;
    vreg_get(c, in->vex_v, a);
    memset(r, 0, sizeof(r));
    for (unsigned i = 0; i < vl; i += es) {
        uint64_t x = es == 8 ? le_ld64(a + i) : le_ld32(a + i), y = es == 8 ? le_ld64(b + i) : le_ld32(b + i), z;
        switch (in->opcode) {
        case 0xfe:
        case 0xd4: z = x + y; break;
        case 0xfa:
        case 0xfb: z = x - y; break;
        case 0xef: z = x ^ y; break;
        case 0xdb: z = x & y; break;
        case 0xdf: z = ~x & y; break;
        default: z = x | y; break; /* 0xeb */
        }
        if (es == 8)
            le_st64(r + i, z);
        else
            le_st32(r + i, (uint32_t)z);
    }
    write_masked(c, in, insn_vreg(in), r, vl, es);
    return 0;
}

int interp_run_vpshufd(struct interp_cpu *c, const struct insn *in)
{
    int rc = vector_checks(c, in);
    if (rc)
        return rc;
    unsigned vl = vlen(in);
    if (in->vex_v || (in->vex == 4 && (in->rex & 8)))
        return interp_fail(c, -ENOENT, "vvvv or W1 on VPSHUFD");
    uint8_t s[VMAX], r[VMAX];
    rc = read_src(c, in, vl, 4, 0, s);
    if (rc)
        return rc;
    memset(r, 0, sizeof(r));
    for (unsigned lane = 0; lane < vl; lane += 16)
        for (unsigned k = 0; k < 4; k++)
            memcpy(r + lane + 4 * k, s + lane + 4 * ((in->imm >> (2 * k)) & 3), 4);
    write_masked(c, in, insn_vreg(in), r, vl, 4);
    return 0;
}

int interp_run_vprot(struct interp_cpu *c, const struct insn *in)
{
    int rc = vector_checks(c, in);
    if (rc)
        return rc;
    unsigned vl = vlen(in), es = (in->rex & 8) ? 8 : 4;
    int left = insn_digit(in) == 1;
    uint8_t s[VMAX], r[VMAX];
    rc = read_src(c, in, vl, es, 0, s);
    if (rc)
        return rc;
    memset(r, 0, sizeof(r));
    for (unsigned i = 0; i < vl; i += es) {
        if (es == 8) {
            unsigned n = in->imm & 63;
            uint64_t x = le_ld64(s + i);
            if (n)
                x = left ? (x << n | x >> (64 - n)) : (x >> n | x << (64 - n));
            le_st64(r + i, x);
        } else {
            unsigned n = in->imm & 31;
            uint32_t x = le_ld32(s + i);
            if (n)
                x = left ? (x << n | x >> (32 - n)) : (x >> n | x << (32 - n));
            le_st32(r + i, x);
        }
    }
    write_masked(c, in, in->vex_v, r, vl, es); /* the destination is EVEX.vvvv */
    return 0;
}

int interp_run_vpermi2(struct interp_cpu *c, const struct insn *in)
{
    int rc = vector_checks(c, in);
    if (rc)
        return rc;
    unsigned vl = vlen(in), es = (in->rex & 8) ? 8 : 4, n = vl / es;
    uint8_t idx[VMAX], t1[VMAX], t2[VMAX], r[VMAX];
    rc = read_src(c, in, vl, es, 0, t2);
    if (rc)
        return rc;
    vreg_get(c, in->vex_v, t1);
    vreg_get(c, insn_vreg(in), idx);
    memset(r, 0, sizeof(r));
    for (unsigned j = 0; j < n; j++) {
        uint64_t sel = es == 8 ? le_ld64(idx + j * es) : le_ld32(idx + j * es);
        unsigned e = (unsigned)(sel & (n - 1));
        const uint8_t *table = (sel & n) ? t2 : t1; /* the bit above the index picks the table */
        memcpy(r + j * es, table + e * es, es);
    }
    write_masked(c, in, insn_vreg(in), r, vl, es);
    return 0;
}

int interp_run_vextract(struct interp_cpu *c, const struct insn *in)
{
    int rc = vector_checks(c, in);
    if (rc)
        return rc;
    unsigned vl = vlen(in), es = (in->rex & 8) ? 8 : 4;
    if (in->vex_v || vl < 32 || (in->vex != 4 && (in->rex & 8)))
        return interp_fail(c, -ENOENT, "VEXTRACTI128 form not valid");
    uint8_t s[VMAX], r[VMAX];
    vreg_get(c, insn_vreg(in), s);
    memset(r, 0, sizeof(r));
    unsigned lane = in->imm & (vl / 16 - 1);
    memcpy(r, s + 16 * lane, 16);
    if (insn_rm_is_reg(in)) {
        write_masked(c, in, insn_vrm(in), r, 16, es);
        return 0;
    }
    return store_masked(c, in, r, 16, es, 0);
}

int interp_run_vzeroupper(struct interp_cpu *c, const struct insn *in)
{
    int rc = vector_checks(c, in);
    if (rc)
        return rc;
    uint8_t v[VMAX];
    for (unsigned r = 0; r < 16; r++) {
        vreg_get(c, r, v);
        memset(in->vex_l ? v : v + 16, 0, in->vex_l ? VMAX : VMAX - 16); /* VZEROALL: all of it */
        vreg_put(c, r, v);
    }
    return 0;
}

int interp_run_mxcsr(struct interp_cpu *c, const struct insn *in)
{
    if (in->vex) {
        if (in->vex_l || in->vex_v)
            return interp_raise(c, VEC_UD, 0, 0);
        int rc = check_avx(c, in);
        if (rc)
            return rc;
    } else {
        if ((c->sregs.cr0 & (1ULL << 2)) || !(c->sregs.cr4 & (1ULL << 9))) /* CR0.EM, CR4.OSFXSR */
            return interp_raise(c, VEC_UD, 0, 0);
        if (c->sregs.cr0 & CR0_TS)
            return interp_raise(c, VEC_NM, 0, 0);
    }
    uint64_t lin;
    int ss;
    int rc = interp_operand_address(c, in, &lin, &ss);
    if (rc)
        return rc;
    uint8_t v[4];
    if (in->kind == INSN_STMXCSR) {
        memcpy(v, c->xsave + LEG_MXCSR, 4);
        return interp_write(c, lin, ss, v, 4);
    }
    if ((rc = interp_read(c, lin, ss, v, 4)))
        return rc;
    uint32_t mask = c->xl->mxcsr_mask ? c->xl->mxcsr_mask : 0xffbf;
    if (le_ld32(v) & ~mask)
        return interp_raise(c, VEC_GP, 1, 0);
    memcpy(c->xsave + LEG_MXCSR, v, 4);
    /* KVM takes MXCSR from the image when SSE (or x87, AVX) state is marked in use. */
    uint64_t bv = le_ld64(c->xsave + XSAVE_HDR) | (c->xcr0 & 0x3);
    le_st64(c->xsave + XSAVE_HDR, bv);
    c->xsave_dirty = 1;
    return 0;
}
