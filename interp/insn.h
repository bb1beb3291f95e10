/*
 * Instruction decoding and semantics for the interpreter: pure functions
 * over bytes and register values, so each routine is unit-testable without KVM.
 */
#ifndef EMBER_INSN_H
#define EMBER_INSN_H

#include <stdint.h>

#include "interp/insn_kind.h"

#define INSN_MAX_LEN 15

enum cpu_mode { MODE_REAL16, MODE_PROT16, MODE_PROT32, MODE_LONG64 };

struct insn {
    enum interp_insn kind;
    uint8_t len;
    uint8_t opsize; /* operand size in bytes: 2, 4 or 8 */
    uint8_t rex;
    uint8_t modrm;
    uint8_t has_modrm;
    uint8_t rep;           /* F3 */
    uint8_t repne;         /* F2 */
    uint8_t opsize_prefix; /* 66 */
    uint8_t lock;
    uint8_t seg; /* segment override prefix byte, 0 if none */
    uint8_t disp_len;
    uint8_t has_sib;
    uint8_t sib;
    uint8_t addr_size; /* address size in bytes: 2, 4 or 8 */
    int64_t disp;
    uint8_t has_imm;
    uint8_t imm;
    /* VEX and EVEX encodings (vex == 0 for the others). rex then holds the
     * equivalent REX.W/R/X/B, so insn_reg/insn_rm/addresses work unchanged. */
    uint8_t vex;      /* 0, 2 (C5 xx), 3 (C4 xx xx), 4 (EVEX: 62 xx xx xx) */
    uint8_t vex_map;  /* 1: 0F, 2: 0F38, 3: 0F3A */
    uint8_t vex_pp;   /* implied prefix: 0 none, 1 66, 2 F3, 3 F2 */
    uint8_t vex_l;    /* vector length: 0 = 128, 1 = 256, 2 = 512 bits */
    uint8_t vex_v;    /* the VEX.vvvv / EVEX.V'vvvv register, un-inverted */
    uint8_t evex_rr;  /* EVEX.R': bit 4 of the ModRM.reg register */
    uint8_t evex_x;   /* EVEX.X: bit 4 of a ModRM.rm register */
    uint8_t evex_z;   /* zeroing (1) or merging (0) masking */
    uint8_t evex_b;   /* embedded broadcast (memory operand) */
    uint8_t evex_aaa; /* opmask register, 0 for none */
    uint8_t opcode;   /* last opcode byte */
    uint8_t map0f;    /* INSN_RUNAHEAD: the opcode follows 0F */
    int64_t imm64;    /* INSN_RUNAHEAD: immediate or branch displacement, sign-extended */
};

/*
 * Decodes one instruction Ember can interpret; -ENOENT if it is none of them
 * (or a form of one that hardware would refuse, e.g. a LOCK prefix on a kind
 * without INSN_F_LOCK_OK in insn_table.h). Recognised:
 *   CC INT3 | 9B FWAIT | F3 [REX] 0F B8 /r POPCNT
 *   [REX.W] 0F AE /4 XSAVE, /5 XRSTOR, /6 XSAVEOPT (memory operand, no 66/F2/F3)
 *   [REX.W] 0F C7 /3 XRSTORS, /4 XSAVEC, /5 XSAVES (memory operand, no 66/F2/F3)
 *   [F0] [REX.W] 0F C7 /1 CMPXCHG8B (CMPXCHG16B with REX.W; memory operand)
 *   [66] [REX.W] 0F C7 /6 RDRAND, /7 RDSEED (register operand, no F2/F3)
 *   0F 01 D0 XGETBV, 0F 01 D1 XSETBV, 0F 01 CA CLAC, 0F 01 CB STAC
 *   F3 [REX.W] 0F AE /0 RDFSBASE, /1 RDGSBASE, /2 WRFSBASE, /3 WRGSBASE (register operand)
 *   F3 0F C7 /7 RDPID (register operand)
 *   0F AE /2 LDMXCSR, /3 STMXCSR (memory operand; also their VEX forms)
 * and in 64-bit mode these VEX/EVEX-encoded ones (insn_vex.c): VMOVDQU/A
 * (VEX and EVEX 32/64/8/16), VMOVD/VMOVQ, VPADDD/Q, VPSUBD/Q, VPXOR[D/Q],
 * VPAND[D/Q], VPANDN[D/Q], VPOR[D/Q], VPSHUFD, VEXTRACTI128 (and EVEX
 * VEXTRACTI32X4/64X2), VPERMI2D/Q, VPRORD/Q, VPROLD/Q, VZEROUPPER/VZEROALL.
 */
int insn_decode(const uint8_t *bytes, unsigned n, enum cpu_mode mode, struct insn *out);

/* ModRM register operand / r/m operand numbers in x86 encoding order (0=rax,1=rcx,...). */
unsigned insn_reg(const struct insn *in);
unsigned insn_rm(const struct insn *in);
/* The same for vector registers, with EVEX's fifth bit (0..31). */
unsigned insn_vreg(const struct insn *in);
unsigned insn_vrm(const struct insn *in);

/* VEX/EVEX decoding from bytes[i] (a C4, C5 or 62 byte in 64-bit mode), after legacy prefixes. */
int insn_decode_vex(const uint8_t *bytes, unsigned n, unsigned i, int addr_override, struct insn *out);
/*
 * For running ahead within one exit (64-bit mode): insn_decode(), or else
 * one of the plain instructions the run-ahead executes, as INSN_RUNAHEAD:
 * ADD/SUB/CMP (register and immediate forms, no memory), INC/DEC (register),
 * MOV (register, immediate), LEA, Jcc, JMP (relative), NOP (90, 0F 1F).
 */
int insn_decode_runahead(const uint8_t *bytes, unsigned n, enum cpu_mode mode, struct insn *out);
/* ADD/SUB/CMP/INC/DEC results and flags (size in bytes); op: 0 add, 5 sub, 7 cmp, 8 inc, 9 dec. */
uint64_t alu_exec(unsigned op, uint64_t a, uint64_t b, unsigned size, uint64_t *rflags);
/* Whether Jcc condition cc (0..15, the low nibble of the opcode) holds for these flags. */
int jcc_taken(unsigned cc, uint64_t rflags);

/* ModRM/SIB/displacement at p (used by both decoders); bytes used, or -EINVAL. */
int insn_decode_modrm(const uint8_t *p, unsigned n, enum cpu_mode mode, int addr32_override, struct insn *in);
int insn_rm_is_reg(const struct insn *in);

/* POPCNT: returns the count; updates rflags (ZF if src==0; CF OF SF AF PF cleared). */
uint64_t popcnt_exec(uint64_t src, unsigned size, uint64_t *rflags);

/* FWAIT: 1 when an unmasked x87 exception is pending (so #MF must be raised). */
int fwait_pending_exception(uint16_t fsw, uint16_t fcw);

/* Merge a result into a GPR the way x86 does for each operand size. */
uint64_t gpr_merge(uint64_t old, uint64_t val, unsigned size);

/* ModRM.reg as an opcode extension (/digit). */
static inline unsigned insn_digit(const struct insn *in) { return (in->modrm >> 3) & 7u; }

/*
 * CMPXCHG8B/16B on values already read: compares the accumulator pair
 * (EDX:EAX or RDX:RAX, passed as lo and hi) with the memory value m_lo, m_hi
 * (size 8: the 64-bit memory value is m_lo; m_hi is unused). Returns 1 when
 * equal (the caller stores ECX:EBX or RCX:RBX); otherwise 0, and lo and hi
 * receive the memory value (32-bit halves for size 8, zero-extended). ZF
 * tells which; the other flags are unchanged.
 */
int cmpxchg_exec(unsigned size, uint64_t *lo, uint64_t *hi, uint64_t m_lo, uint64_t m_hi, uint64_t *rflags);

/*
 * RDRAND/RDSEED result: ok=1 gives the value (truncated to size) and CF=1,
 * ok=0 gives 0 and CF=0; OF SF ZF AF PF are cleared either way.
 */
uint64_t rdrand_exec(int ok, uint64_t value, unsigned size, uint64_t *rflags);

#define RFLAGS_CF 0x0001ULL
#define RFLAGS_PF 0x0004ULL
#define RFLAGS_AF 0x0010ULL
#define RFLAGS_ZF 0x0040ULL
#define RFLAGS_SF 0x0080ULL
#define RFLAGS_OF 0x0800ULL

#endif
