/* Per-vCPU exit counters (summed at exit; each vCPU writes only its own). */
#ifndef EMBER_STATS_H
#define EMBER_STATS_H

#include <stdint.h>

#include "interp/insn_kind.h"

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

struct exit_stats {
    uint64_t exits[EXIT_KINDS];
    uint64_t insns[INSN_KINDS];
};

const char *exit_kind_name(enum exit_kind k);
void exit_stats_add(struct exit_stats *sum, const struct exit_stats *s);

#endif
