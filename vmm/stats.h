/* Per-vCPU exit counters (summed at exit; each vCPU writes only its own). */
#ifndef EMBER_STATS_H
#define EMBER_STATS_H

#include <stdint.h>

enum exit_kind {
    EXIT_PIO,
    EXIT_MMIO,
    EXIT_HLT,
    EXIT_SHUTDOWN,
    EXIT_INTERNAL,
    EXIT_SYSTEM_EVENT,
    EXIT_INTR,
    EXIT_OTHER,
    EXIT_UNCLAIMED_PIO,
    EXIT_UNCLAIMED_MMIO,
    EXIT_KINDS
};

/* Instructions Ember's interpreter runs (counted per vCPU, printed by --stats). */
enum interp_insn {
    INSN_INT3,
    INSN_FWAIT,
    INSN_POPCNT,
    INSN_XSAVE,
    INSN_XSAVEOPT,
    INSN_XSAVEC,
    INSN_XSAVES,
    INSN_XRSTOR,
    INSN_XRSTORS,
    INSN_XGETBV,
    INSN_XSETBV,
    INSN_CMPXCHG8B,
    INSN_CMPXCHG16B,
    INSN_RDRAND,
    INSN_RDSEED,
    INSN_CLAC,
    INSN_STAC,
    INSN_RDFSBASE,
    INSN_RDGSBASE,
    INSN_WRFSBASE,
    INSN_WRGSBASE,
    INSN_RDPID,
    INSN_LDMXCSR,
    INSN_STMXCSR,
    INSN_VZEROUPPER, /* and VZEROALL */
    INSN_VMOVDQ,     /* VMOVDQU/VMOVDQA (VEX), VMOVDQU32/64, VMOVDQA32/64 (EVEX) */
    INSN_VMOVD,      /* VMOVD/VMOVQ between a GPR or memory and an XMM register */
    INSN_VPALU,      /* VPADDD/Q, VPSUBD/Q, VPXOR, VPAND, VPANDN, VPOR (and the EVEX D/Q forms) */
    INSN_VPSHUFD,
    INSN_VEXTRACT,   /* VEXTRACTI128 */
    INSN_VPERMI2,    /* VPERMI2D/Q */
    INSN_VPROT,      /* VPRORD/Q, VPROLD/Q */
    INSN_RUNAHEAD,   /* plain instructions run after one of the above, in the same exit (see interp.c) */
    INSN_KINDS
};

struct exit_stats {
    uint64_t exits[EXIT_KINDS];
    uint64_t insns[INSN_KINDS];
};

const char *exit_kind_name(enum exit_kind k);
const char *interp_insn_name(enum interp_insn i);
void exit_stats_add(struct exit_stats *sum, const struct exit_stats *s);

#endif
