#include "stats.h"

const char *exit_kind_name(enum exit_kind k)
{
    static const char *const names[EXIT_KINDS] = {
        "pio", "mmio", "hlt", "shutdown", "internal_error", "system_event", "intr", "other",
        "unclaimed_pio", "unclaimed_mmio"};
    return k < EXIT_KINDS ? names[k] : "?";
}

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

void exit_stats_add(struct exit_stats *sum, const struct exit_stats *s)
{
    for (int i = 0; i < EXIT_KINDS; i++)
        sum->exits[i] += s->exits[i];
    for (int i = 0; i < INSN_KINDS; i++)
        sum->insns[i] += s->insns[i];
}
