/*
 * The instructions Ember's interpreter runs: one row each. Everything about
 * an instruction kind comes from its row: the enum (insn_kind.h), the counter
 * name printed by `ember --stats` and the API metrics, what the KVM side must
 * load before the routine runs, the run-ahead and LOCK rules, and the routine
 * itself (interp_exec() calls it). Adding an instruction is its decoder
 * pattern (insn.c or insn_vex.c), one row here and its routine.
 *
 * Rows stay in this order: it is the order of the counters in --stats and
 * of the enum.
 *
 * Columns:
 *   KIND     the enum value is INSN_<KIND>
 *   name     counter name (--stats, API "interpreter" metrics); never renamed
 *   group    heading for the list in docs/architecture.md
 *   needs    state the KVM side loads besides regs/sregs (INTERP_NEED_*)
 *   flags    INSN_F_*
 *   routine  int routine(struct interp_cpu *, const struct insn *) (interp_cpu.h)
 *   what     the mnemonics the row covers, for the docs
 */
#ifndef EMBER_INSN_TABLE_H
#define EMBER_INSN_TABLE_H

/* What an instruction needs loaded besides regs and sregs. */
#define INTERP_NEED_FPU 0x1u   /* fcw, fsw */
#define INTERP_NEED_XSAVE 0x2u /* the XSAVE image */
#define INTERP_NEED_XCR0 0x4u
#define INTERP_NEED_XSS 0x8u
#define INTERP_NEED_TSC_AUX 0x10u
#define INTERP_NEED_XSTATE (INTERP_NEED_XSAVE | INTERP_NEED_XCR0)

/* How an instruction takes part in decoding and run-ahead. */
#define INSN_F_LOCK_OK 0x1u         /* a LOCK prefix is valid (hardware: #UD on the others) */
#define INSN_F_STARTS_RUNAHEAD 0x2u /* after it, the caller runs ahead (interp_run_ahead) */
#define INSN_F_IN_RUNAHEAD 0x4u     /* a run-ahead may run it: needs nothing a vector op did not load */
#define INSN_F_VECTOR (INSN_F_STARTS_RUNAHEAD | INSN_F_IN_RUNAHEAD)

/* One row per instruction, in columns. */
/* clang-format off */
#define INTERP_INSN_TABLE(X)                                                                                           \
  /* KIND        name          group        needs                                 flags                                \
         routine, what */                                                                                              \
    X(INT3,       "int3",       "system",    0,                                    0,                                  \
      interp_run_int3, "INT3 (#BP trap)")                                                                              \
    X(FWAIT,      "fwait",      "x87/SSE",   INTERP_NEED_FPU,                      0,                                  \
      interp_run_fwait, "FWAIT (#MF when an unmasked x87 exception is pending)")                                       \
    X(POPCNT,     "popcnt",     "integer",   0,                                    INSN_F_IN_RUNAHEAD,                 \
      interp_run_popcnt, "POPCNT")                                                                                     \
    X(XSAVE,      "xsave",      "XSAVE",     INTERP_NEED_XSTATE,                   0,                                  \
      interp_run_xsave, "XSAVE")                                                                                       \
    X(XSAVEOPT,   "xsaveopt",   "XSAVE",     INTERP_NEED_XSTATE,                   0,                                  \
      interp_run_xsave, "XSAVEOPT")                                                                                    \
    X(XSAVEC,     "xsavec",     "XSAVE",     INTERP_NEED_XSTATE,                   0,                                  \
      interp_run_xsave, "XSAVEC")                                                                                      \
    X(XSAVES,     "xsaves",     "XSAVE",     INTERP_NEED_XSTATE | INTERP_NEED_XSS, 0,                                  \
      interp_run_xsave, "XSAVES")                                                                                      \
    X(XRSTOR,     "xrstor",     "XSAVE",     INTERP_NEED_XSTATE,                   0,                                  \
      interp_run_xsave, "XRSTOR")                                                                                      \
    X(XRSTORS,    "xrstors",    "XSAVE",     INTERP_NEED_XSTATE | INTERP_NEED_XSS, 0,                                  \
      interp_run_xsave, "XRSTORS")                                                                                     \
    X(XGETBV,     "xgetbv",     "XSAVE",     INTERP_NEED_XSTATE,                   0,                                  \
      interp_run_xgetbv, "XGETBV")                                                                                     \
    X(XSETBV,     "xsetbv",     "XSAVE",     INTERP_NEED_XCR0,                     0,                                  \
      interp_run_xsetbv, "XSETBV")                                                                                     \
    X(CMPXCHG8B,  "cmpxchg8b",  "integer",   0,                                    INSN_F_LOCK_OK,                     \
      interp_run_cmpxchg, "CMPXCHG8B")                                                                                 \
    X(CMPXCHG16B, "cmpxchg16b", "integer",   0,                                    INSN_F_LOCK_OK,                     \
      interp_run_cmpxchg, "CMPXCHG16B")                                                                                \
    X(RDRAND,     "rdrand",     "integer",   0,                                    0,                                  \
      interp_run_rdrand, "RDRAND")                                                                                     \
    X(RDSEED,     "rdseed",     "integer",   0,                                    0,                                  \
      interp_run_rdrand, "RDSEED")                                                                                     \
    X(CLAC,       "clac",       "system",    0,                                    0,                                  \
      interp_run_clac_stac, "CLAC")                                                                                    \
    X(STAC,       "stac",       "system",    0,                                    0,                                  \
      interp_run_clac_stac, "STAC")                                                                                    \
    X(RDFSBASE,   "rdfsbase",   "system",    0,                                    0,                                  \
      interp_run_fsgsbase, "RDFSBASE")                                                                                 \
    X(RDGSBASE,   "rdgsbase",   "system",    0,                                    0,                                  \
      interp_run_fsgsbase, "RDGSBASE")                                                                                 \
    X(WRFSBASE,   "wrfsbase",   "system",    0,                                    0,                                  \
      interp_run_fsgsbase, "WRFSBASE")                                                                                 \
    X(WRGSBASE,   "wrgsbase",   "system",    0,                                    0,                                  \
      interp_run_fsgsbase, "WRGSBASE")                                                                                 \
    X(RDPID,      "rdpid",      "system",    INTERP_NEED_TSC_AUX,                  0,                                  \
      interp_run_rdpid, "RDPID")                                                                                       \
    X(LDMXCSR,    "ldmxcsr",    "x87/SSE",   INTERP_NEED_XSTATE,                   INSN_F_IN_RUNAHEAD,                 \
      interp_run_mxcsr, "LDMXCSR, VLDMXCSR")                                                                           \
    X(STMXCSR,    "stmxcsr",    "x87/SSE",   INTERP_NEED_XSTATE,                   INSN_F_IN_RUNAHEAD,                 \
      interp_run_mxcsr, "STMXCSR, VSTMXCSR")                                                                           \
    X(VZEROUPPER, "vzeroupper", "vector",    INTERP_NEED_XSTATE,                   INSN_F_VECTOR,                      \
      interp_run_vzeroupper, "VZEROUPPER, VZEROALL")                                                                   \
    X(VMOVDQ,     "vmovdq",     "vector",    INTERP_NEED_XSTATE,                   INSN_F_VECTOR,                      \
      interp_run_vmovdq, "VMOVDQU/VMOVDQA (VEX); VMOVDQU8/16/32/64, VMOVDQA32/64 (EVEX)")                              \
    X(VMOVD,      "vmovd",      "vector",    INTERP_NEED_XSTATE,                   INSN_F_VECTOR,                      \
      interp_run_vmovd, "VMOVD/VMOVQ between a GPR or memory and an XMM register")                                     \
    X(VPALU,      "vpalu",      "vector",    INTERP_NEED_XSTATE,                   INSN_F_VECTOR,                      \
      interp_run_vpalu, "VPADDD/Q, VPSUBD/Q, VPXOR[D/Q], VPAND[D/Q], VPANDN[D/Q], VPOR[D/Q]")                          \
    X(VPSHUFD,    "vpshufd",    "vector",    INTERP_NEED_XSTATE,                   INSN_F_VECTOR,                      \
      interp_run_vpshufd, "VPSHUFD")                                                                                   \
    X(VEXTRACT,   "vextract",   "vector",    INTERP_NEED_XSTATE,                   INSN_F_VECTOR,                      \
      interp_run_vextract, "VEXTRACTI128; VEXTRACTI32X4/64X2 (EVEX)")                                                  \
    X(VPERMI2,    "vpermi2",    "vector",    INTERP_NEED_XSTATE,                   INSN_F_VECTOR,                      \
      interp_run_vpermi2, "VPERMI2D/Q")                                                                                \
    X(VPROT,      "vprot",      "vector",    INTERP_NEED_XSTATE,                   INSN_F_VECTOR,                      \
      interp_run_vprot, "VPRORD/Q, VPROLD/Q")                                                                          \
    X(RUNAHEAD,   "runahead",   "run-ahead", 0,                                    INSN_F_IN_RUNAHEAD,                 \
      interp_run_plain, "ADD/SUB/CMP, INC/DEC, MOV, LEA, Jcc, JMP, NOP (no memory access), in a run-ahead")
/* clang-format on */

#endif
