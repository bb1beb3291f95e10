#include "vm/stats.h"

const char *exit_kind_name(enum exit_kind k)
{
    static const char *const names[EXIT_KINDS] = {"pio",          "mmio", "hlt",   "shutdown",      "internal_error",
                                                  "system_event", "intr", "other", "unclaimed_pio", "unclaimed_mmio"};
    return k < EXIT_KINDS ? names[k] : "?";
}

void exit_stats_add(struct exit_stats *sum, const struct exit_stats *s)
{
    for (int i = 0; i < EXIT_KINDS; i++)
        sum->exits[i] += s->exits[i];
    for (int i = 0; i < INSN_KINDS; i++)
        sum->insns[i] += s->insns[i];
}
