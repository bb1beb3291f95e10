/* The instruction kinds Ember's interpreter runs (counted per vCPU), from the table in insn_table.h. */
#ifndef EMBER_INSN_KIND_H
#define EMBER_INSN_KIND_H

#include "interp/insn_table.h"

/* INSN_<KIND> for each row of INTERP_INSN_TABLE, in its order; INSN_KINDS counts them. */
#define INSN_KIND_ENUM(kind, name, group, needs, flags, routine, what) INSN_##kind,
enum interp_insn { INTERP_INSN_TABLE(INSN_KIND_ENUM) INSN_KINDS };
#undef INSN_KIND_ENUM

/* The counter name of a kind (--stats, API metrics); "?" for none. */
const char *interp_insn_name(enum interp_insn i);
/* Its INSN_F_* flags (0 for none). */
unsigned interp_insn_flags(enum interp_insn i);

#endif
