/* The rows of INTERP_INSN_TABLE (insn_table.h) as data, and the questions asked of them. */
#include "interp/interp_cpu.h"

#define INSN_ROW(kind, name, group, needs, flags, routine, what) \
    [INSN_##kind] = {name, group, what, needs, flags, routine},
static const struct interp_insn_row rows[INSN_KINDS] = {INTERP_INSN_TABLE(INSN_ROW)};
#undef INSN_ROW

const struct interp_insn_row *interp_insn_row(enum interp_insn kind)
{
    return (unsigned)kind < INSN_KINDS ? &rows[kind] : NULL;
}

const char *interp_insn_name(enum interp_insn i)
{
    const struct interp_insn_row *r = interp_insn_row(i);
    return r ? r->name : "?";
}

unsigned interp_insn_flags(enum interp_insn i)
{
    const struct interp_insn_row *r = interp_insn_row(i);
    return r ? r->flags : 0;
}

unsigned interp_needs(enum interp_insn kind)
{
    const struct interp_insn_row *r = interp_insn_row(kind);
    return r ? r->needs : 0;
}

int interp_starts_runahead(enum interp_insn kind) { return (interp_insn_flags(kind) & INSN_F_STARTS_RUNAHEAD) != 0; }

int interp_runahead_ok(enum interp_insn kind) { return (interp_insn_flags(kind) & INSN_F_IN_RUNAHEAD) != 0; }
