/*
 * Instruction decoding and semantics for the interpreter: pure functions
 * over bytes and register values, so each routine is unit-testable without KVM.
 */
#ifndef EMBER_INSN_H
#define EMBER_INSN_H

#include <stdint.h>

#include "stats.h"

#define INSN_MAX_LEN 15

enum cpu_mode { MODE_REAL16, MODE_PROT16, MODE_PROT32, MODE_LONG64 };

struct insn {
    enum interp_insn kind;
    uint8_t len;
    uint8_t opsize;   /* operand size in bytes: 2, 4 or 8 */
    uint8_t rex;
    uint8_t modrm;
    uint8_t has_modrm;
    uint8_t rep;      /* F3 */
    uint8_t repne;    /* F2 */
    uint8_t opsize_prefix; /* 66 */
    uint8_t lock;
    uint8_t seg;      /* segment override prefix byte, 0 if none */
    uint8_t disp_len;
    uint8_t has_sib;
    uint8_t sib;
    int64_t disp;
};

/* Decodes one instruction Ember can interpret; -ENOENT if it is none of them. */
int insn_decode(const uint8_t *bytes, unsigned n, enum cpu_mode mode, struct insn *out);

/* ModRM register operand / r/m operand numbers in x86 encoding order (0=rax,1=rcx,...). */
unsigned insn_reg(const struct insn *in);
unsigned insn_rm(const struct insn *in);
int insn_rm_is_reg(const struct insn *in);

/* POPCNT: returns the count; updates rflags (ZF if src==0; CF OF SF AF PF cleared). */
uint64_t popcnt_exec(uint64_t src, unsigned size, uint64_t *rflags);

/* FWAIT: 1 when an unmasked x87 exception is pending (so #MF must be raised). */
int fwait_pending_exception(uint16_t fsw, uint16_t fcw);

/* Merge a result into a GPR the way x86 does for each operand size. */
uint64_t gpr_merge(uint64_t old, uint64_t val, unsigned size);

#define RFLAGS_CF 0x0001ULL
#define RFLAGS_PF 0x0004ULL
#define RFLAGS_AF 0x0010ULL
#define RFLAGS_ZF 0x0040ULL
#define RFLAGS_SF 0x0080ULL
#define RFLAGS_OF 0x0800ULL

#endif
