/* The interpreter's instruction table (interp/insn_table.h): what other layers and tools rely on. */
#include <criterion/criterion.h>
#include <string.h>

#include "interp/interp_cpu.h"

/*
 * The counter names are an interface (--stats lines, the API's "interpreter" metrics): these stay, in this
 * order (a new row may come anywhere).
 */
Test(interp_table, counter_names_and_order)
{
    static const char *const names[] = {
        "int3",     "fwait",    "popcnt",    "xsave",      "xsaveopt", "xsavec",   "xsaves",     "xrstor", "xrstors",
        "xgetbv",   "xsetbv",   "cmpxchg8b", "cmpxchg16b", "rdrand",   "rdseed",   "clac",       "stac",   "rdfsbase",
        "rdgsbase", "wrfsbase", "wrgsbase",  "rdpid",      "ldmxcsr",  "stmxcsr",  "vzeroupper", "vmovdq", "vmovd",
        "vpalu",    "vpshufd",  "vextract",  "vpermi2",    "vprot",    "runahead",
    };
    int k = 0;
    for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++, k++) {
        while (k < INSN_KINDS && strcmp(interp_insn_name((enum interp_insn)k), names[i]))
            k++;
        cr_assert_lt(k, INSN_KINDS, "counter %s is missing or out of order", names[i]);
    }
    cr_assert_str_eq(interp_insn_name(INSN_KINDS), "?");
    cr_assert_null(interp_insn_row(INSN_KINDS));
}

Test(interp_table, every_row_is_complete)
{
    for (int k = 0; k < INSN_KINDS; k++) {
        const struct interp_insn_row *r = interp_insn_row((enum interp_insn)k);
        cr_assert_not_null(r);
        cr_assert(r->name && *r->name, "kind %d has no name", k);
        cr_assert_not_null(r->run, "%s has no routine", r->name);
        cr_assert(r->group && *r->group && r->what && *r->what, "%s: group and what are for the docs", r->name);
        for (int j = 0; j < k; j++)
            cr_assert_str_neq(interp_insn_name((enum interp_insn)j), r->name, "two rows named %s", r->name);
    }
}

/*
 * What the KVM side loads before each routine (interp.c), and the flags: vector instructions start a
 * run-ahead, which may also run the plain ones, POPCNT and LDMXCSR/STMXCSR; LOCK only on CMPXCHG8B/16B.
 */
Test(interp_table, needs_and_flags)
{
    enum { XS = INTERP_NEED_XSAVE | INTERP_NEED_XCR0, VEC = 1, IN_RA = 2, LOCK = 4 };
    static const struct {
        enum interp_insn kind;
        unsigned needs, flags;
    } want[] = {
        {INSN_INT3, 0, 0},
        {INSN_FWAIT, INTERP_NEED_FPU, 0},
        {INSN_POPCNT, 0, IN_RA},
        {INSN_XSAVE, XS, 0},
        {INSN_XSAVEOPT, XS, 0},
        {INSN_XSAVEC, XS, 0},
        {INSN_XSAVES, XS | INTERP_NEED_XSS, 0},
        {INSN_XRSTOR, XS, 0},
        {INSN_XRSTORS, XS | INTERP_NEED_XSS, 0},
        {INSN_XGETBV, XS, 0},
        {INSN_XSETBV, INTERP_NEED_XCR0, 0},
        {INSN_CMPXCHG8B, 0, LOCK},
        {INSN_CMPXCHG16B, 0, LOCK},
        {INSN_RDRAND, 0, 0},
        {INSN_RDSEED, 0, 0},
        {INSN_CLAC, 0, 0},
        {INSN_STAC, 0, 0},
        {INSN_RDFSBASE, 0, 0},
        {INSN_RDGSBASE, 0, 0},
        {INSN_WRFSBASE, 0, 0},
        {INSN_WRGSBASE, 0, 0},
        {INSN_RDPID, INTERP_NEED_TSC_AUX, 0},
        {INSN_LDMXCSR, XS, IN_RA},
        {INSN_STMXCSR, XS, IN_RA},
        {INSN_VZEROUPPER, XS, VEC | IN_RA},
        {INSN_VMOVDQ, XS, VEC | IN_RA},
        {INSN_VMOVD, XS, VEC | IN_RA},
        {INSN_VPALU, XS, VEC | IN_RA},
        {INSN_VPSHUFD, XS, VEC | IN_RA},
        {INSN_VEXTRACT, XS, VEC | IN_RA},
        {INSN_VPERMI2, XS, VEC | IN_RA},
        {INSN_VPROT, XS, VEC | IN_RA},
        {INSN_RUNAHEAD, 0, IN_RA},
    };
    for (unsigned i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        enum interp_insn k = want[i].kind;
        const char *n = interp_insn_name(k);
        cr_assert_eq(interp_needs(k), want[i].needs, "%s", n);
        cr_assert_eq(interp_starts_runahead(k), (want[i].flags & VEC) != 0, "%s", n);
        cr_assert_eq(interp_runahead_ok(k), (want[i].flags & IN_RA) != 0, "%s", n);
        cr_assert_eq((interp_insn_flags(k) & INSN_F_LOCK_OK) != 0, (want[i].flags & LOCK) != 0, "%s", n);
    }
}
