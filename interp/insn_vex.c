/*
 * VEX and EVEX decoding for the vector instructions the interpreter runs
 * (64-bit mode). Linux's x86 BLAKE2s (random pool) runs these under
 * kernel_fpu_begin() when the CPU has AVX-512, and kvm-pvm's emulator knows
 * no VEX/EVEX instruction at all.
 */
#include <errno.h>
#include <string.h>

#include "interp/insn.h"

enum { PP_NONE, PP_66, PP_F3, PP_F2 };
enum { ENC_VEX = 1, ENC_EVEX = 2, ENC_BOTH = 3 };
/* EVEX disp8*N: how N follows from the instruction. */
enum { TUPLE_FULL, TUPLE_FULL_MEM, TUPLE_SCALAR, TUPLE_T4 };

struct vex_op {
    uint8_t map, pp, opcode;
    int8_t digit; /* ModRM.reg as opcode extension, or -1 */
    uint8_t enc;
    uint8_t modrm, imm;
    uint8_t tuple;
    enum interp_insn kind;
};

static const struct vex_op ops[] = {
    /* map 0F */
    {1, PP_F3, 0x6f, -1, ENC_BOTH, 1, 0, TUPLE_FULL_MEM, INSN_VMOVDQ}, /* vmovdqu / vmovdqu32/64 load */
    {1, PP_F3, 0x7f, -1, ENC_BOTH, 1, 0, TUPLE_FULL_MEM, INSN_VMOVDQ}, /* store */
    {1, PP_66, 0x6f, -1, ENC_BOTH, 1, 0, TUPLE_FULL_MEM, INSN_VMOVDQ}, /* vmovdqa / vmovdqa32/64 */
    {1, PP_66, 0x7f, -1, ENC_BOTH, 1, 0, TUPLE_FULL_MEM, INSN_VMOVDQ},
    {1, PP_F2, 0x6f, -1, ENC_EVEX, 1, 0, TUPLE_FULL_MEM, INSN_VMOVDQ}, /* vmovdqu8/16 */
    {1, PP_F2, 0x7f, -1, ENC_EVEX, 1, 0, TUPLE_FULL_MEM, INSN_VMOVDQ},
    {1, PP_66, 0x6e, -1, ENC_BOTH, 1, 0, TUPLE_SCALAR, INSN_VMOVD}, /* vmovd/q xmm, r/m */
    {1, PP_66, 0x7e, -1, ENC_BOTH, 1, 0, TUPLE_SCALAR, INSN_VMOVD}, /* vmovd/q r/m, xmm */
    {1, PP_F3, 0x7e, -1, ENC_VEX, 1, 0, TUPLE_SCALAR, INSN_VMOVD},  /* vmovq xmm, xmm/m64 */
    {1, PP_66, 0xd6, -1, ENC_BOTH, 1, 0, TUPLE_SCALAR, INSN_VMOVD}, /* vmovq xmm/m64, xmm */
    {1, PP_66, 0xfe, -1, ENC_BOTH, 1, 0, TUPLE_FULL, INSN_VPALU},   /* vpaddd */
    {1, PP_66, 0xd4, -1, ENC_BOTH, 1, 0, TUPLE_FULL, INSN_VPALU},   /* vpaddq */
    {1, PP_66, 0xfa, -1, ENC_BOTH, 1, 0, TUPLE_FULL, INSN_VPALU},   /* vpsubd */
    {1, PP_66, 0xfb, -1, ENC_BOTH, 1, 0, TUPLE_FULL, INSN_VPALU},   /* vpsubq */
    {1, PP_66, 0xef, -1, ENC_BOTH, 1, 0, TUPLE_FULL, INSN_VPALU},   /* vpxor[d/q] */
    {1, PP_66, 0xdb, -1, ENC_BOTH, 1, 0, TUPLE_FULL, INSN_VPALU},   /* vpand[d/q] */
    {1, PP_66, 0xdf, -1, ENC_BOTH, 1, 0, TUPLE_FULL, INSN_VPALU},   /* vpandn[d/q] */
    {1, PP_66, 0xeb, -1, ENC_BOTH, 1, 0, TUPLE_FULL, INSN_VPALU},   /* vpor[d/q] */
    {1, PP_66, 0x70, -1, ENC_BOTH, 1, 1, TUPLE_FULL, INSN_VPSHUFD},
    {1, PP_66, 0x72, 0, ENC_EVEX, 1, 1, TUPLE_FULL, INSN_VPROT}, /* vprord/q */
    {1, PP_66, 0x72, 1, ENC_EVEX, 1, 1, TUPLE_FULL, INSN_VPROT}, /* vprold/q */
    {1, PP_NONE, 0x77, -1, ENC_VEX, 0, 0, TUPLE_FULL, INSN_VZEROUPPER},
    {1, PP_NONE, 0xae, 2, ENC_VEX, 1, 0, TUPLE_SCALAR, INSN_LDMXCSR}, /* vldmxcsr */
    {1, PP_NONE, 0xae, 3, ENC_VEX, 1, 0, TUPLE_SCALAR, INSN_STMXCSR}, /* vstmxcsr */
    /* map 0F38 */
    {2, PP_66, 0x76, -1, ENC_EVEX, 1, 0, TUPLE_FULL, INSN_VPERMI2}, /* vpermi2d/q */
    /* map 0F3A */
    {3, PP_66, 0x39, -1, ENC_BOTH, 1, 1, TUPLE_T4, INSN_VEXTRACT}, /* vextracti128 / i32x4 / i64x2 */
};

int insn_decode_vex(const uint8_t *bytes, unsigned n, unsigned i, int addr_override, struct insn *out)
{
    uint8_t lead = bytes[i];
    unsigned need = lead == 0xc5 ? 2 : lead == 0xc4 ? 3 : 4;
    if (i + need >= n)
        return -ENOENT; /* the prefix and at least the opcode */
    unsigned r, x, b, w = 0;
    const uint8_t *p = bytes + i + 1;
    if (lead == 0xc5) {
        r = !(p[0] >> 7), x = 0, b = 0;
        out->vex_map = 1;
        out->vex_v = (~p[0] >> 3) & 15;
        out->vex_l = (p[0] >> 2) & 1;
        out->vex_pp = p[0] & 3;
        out->vex = 2;
    } else if (lead == 0xc4) {
        r = !(p[0] >> 7), x = !((p[0] >> 6) & 1), b = !((p[0] >> 5) & 1);
        out->vex_map = p[0] & 0x1f;
        w = p[1] >> 7;
        out->vex_v = (~p[1] >> 3) & 15;
        out->vex_l = (p[1] >> 2) & 1;
        out->vex_pp = p[1] & 3;
        out->vex = 3;
    } else {
        /* P0: R X B R' 0 m m m; P1: W v v v v 1 p p; P2: z L' L b V' a a a */
        if ((p[0] & 0x08) || !(p[1] & 0x04))
            return -ENOENT;
        r = !(p[0] >> 7), x = !((p[0] >> 6) & 1), b = !((p[0] >> 5) & 1);
        out->evex_rr = !((p[0] >> 4) & 1);
        out->vex_map = p[0] & 7;
        w = p[1] >> 7;
        out->vex_pp = p[1] & 3;
        out->evex_z = p[2] >> 7;
        out->vex_l = (p[2] >> 5) & 3;
        out->evex_b = (p[2] >> 4) & 1;
        out->vex_v = (uint8_t)(((~p[1] >> 3) & 15) | (((p[2] >> 3) & 1) ? 0 : 16));
        out->evex_aaa = p[2] & 7;
        out->vex = 4;
        if (out->vex_l == 3 || (out->evex_z && !out->evex_aaa))
            return -ENOENT; /* #UD on hardware */
    }
    out->rex = (uint8_t)(0x40 | w << 3 | r << 2 | x << 1 | b);
    out->opsize = w ? 8 : 4;
    i += need;
    out->opcode = bytes[i++];

    const struct vex_op *op = NULL;
    int enc = out->vex == 4 ? ENC_EVEX : ENC_VEX;
    for (unsigned k = 0; k < sizeof(ops) / sizeof(ops[0]) && !op; k++) {
        const struct vex_op *o = &ops[k];
        if (o->map != out->vex_map || o->pp != out->vex_pp || o->opcode != out->opcode || !(o->enc & enc))
            continue;
        if (o->digit >= 0 && (i >= n || ((bytes[i] >> 3) & 7) != (unsigned)o->digit))
            continue;
        op = o;
    }
    if (!op)
        return -ENOENT;
    if (op->modrm) {
        int used = insn_decode_modrm(bytes + i, n - i, MODE_LONG64, addr_override, out);
        if (used < 0)
            return -ENOENT;
        i += (unsigned)used;
        if ((out->modrm >> 6) == 3) {
            out->evex_x = (uint8_t)(out->vex == 4 && x); /* EVEX.X extends an r/m register to 32 */
            if (out->evex_b)
                return -ENOENT; /* rounding control: only for floating-point ops */
        }
    }
    if (op->imm) {
        if (i >= n)
            return -ENOENT;
        out->has_imm = 1;
        out->imm = bytes[i++];
    }
    if (out->vex == 4 && out->disp_len == 1) {
        /* EVEX compresses an 8-bit displacement: it counts in units of N bytes. */
        unsigned vl = 16u << out->vex_l, esize = w ? 8 : 4, nscale;
        switch (op->tuple) {
        case TUPLE_FULL: nscale = out->evex_b ? esize : vl; break;
        case TUPLE_SCALAR: nscale = esize; break;
        case TUPLE_T4: nscale = 16; break; /* 128 bits: T4 (32x4) or T2 (64x2) */
        default: nscale = vl; break;
        }
        out->disp *= nscale;
    }
    out->kind = op->kind;
    out->len = (uint8_t)i;
    return 0;
}
