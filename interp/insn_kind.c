#include "interp/insn_kind.h"

const char *interp_insn_name(enum interp_insn i)
{
    static const char *const names[INSN_KINDS] = {
        [INSN_INT3] = "int3",         [INSN_FWAIT] = "fwait",         [INSN_POPCNT] = "popcnt",
        [INSN_XSAVE] = "xsave",       [INSN_XSAVEOPT] = "xsaveopt",   [INSN_XSAVEC] = "xsavec",
        [INSN_XSAVES] = "xsaves",     [INSN_XRSTOR] = "xrstor",       [INSN_XRSTORS] = "xrstors",
        [INSN_XGETBV] = "xgetbv",     [INSN_XSETBV] = "xsetbv",       [INSN_CMPXCHG8B] = "cmpxchg8b",
        [INSN_CMPXCHG16B] = "cmpxchg16b", [INSN_RDRAND] = "rdrand",   [INSN_RDSEED] = "rdseed",
        [INSN_CLAC] = "clac",         [INSN_STAC] = "stac",           [INSN_RDFSBASE] = "rdfsbase",
        [INSN_RDGSBASE] = "rdgsbase", [INSN_WRFSBASE] = "wrfsbase",   [INSN_WRGSBASE] = "wrgsbase",
        [INSN_RDPID] = "rdpid",       [INSN_LDMXCSR] = "ldmxcsr",     [INSN_STMXCSR] = "stmxcsr",
        [INSN_VZEROUPPER] = "vzeroupper", [INSN_VMOVDQ] = "vmovdq",   [INSN_VMOVD] = "vmovd",
        [INSN_VPALU] = "vpalu",       [INSN_VPSHUFD] = "vpshufd",     [INSN_VEXTRACT] = "vextract",
        [INSN_VPERMI2] = "vpermi2",   [INSN_VPROT] = "vprot",         [INSN_RUNAHEAD] = "runahead",
    };
    return i < INSN_KINDS && names[i] ? names[i] : "?";
}
