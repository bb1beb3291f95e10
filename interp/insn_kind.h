/* The instruction kinds Ember's interpreter runs (counted per vCPU). */
#ifndef EMBER_INSN_KIND_H
#define EMBER_INSN_KIND_H

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

const char *interp_insn_name(enum interp_insn i);

#endif
