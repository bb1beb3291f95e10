/* The interpreter's instruction table (interp/insn_table.h): what other layers and tools rely on. */
#include <criterion/criterion.h>
#include <string.h>

#include "interp/interp_cpu.h"

/* The counter names are an interface (--stats lines, the API's "interpreter" metrics), in this order. */
Test(interp_table, counter_names_and_order)
{
    static const char *const names[] = {
        "int3", "fwait", "popcnt", "xsave", "xsaveopt", "xsavec", "xsaves", "xrstor",
        "xrstors", "xgetbv", "xsetbv", "cmpxchg8b", "cmpxchg16b", "rdrand", "rdseed", "clac",
        "stac", "rdfsbase", "rdgsbase", "wrfsbase", "wrgsbase", "rdpid", "ldmxcsr", "stmxcsr",
        "vzeroupper", "vmovdq", "vmovd", "vpalu", "vpshufd", "vextract", "vpermi2", "vprot",
        "runahead",
    };
    cr_assert_eq(INSN_KINDS, sizeof(names) / sizeof(names[0]));
    for (int k = 0; k < INSN_KINDS; k++)
        cr_assert_str_eq(interp_insn_name((enum interp_insn)k), names[k], "kind %d", k);
    cr_assert_str_eq(interp_insn_name(INSN_KINDS), "?");
    cr_assert_null(interp_insn_row(INSN_KINDS));
}

Test(interp_table, every_row_is_complete)
{
    for (int k = 0; k < INSN_KINDS; k++) {
        const struct interp_insn_row *r = interp_insn_row((enum interp_insn)k);
        cr_assert_not_null(r);
        cr_assert_not_null(r->run, "%s has no routine", r->name);
        cr_assert(r->group && *r->group && r->what && *r->what, "%s: group and what are for the docs", r->name);
        for (int j = 0; j < k; j++)
            cr_assert_str_neq(interp_insn_name((enum interp_insn)j), r->name, "two rows named %s", r->name);
    }
}

/* What the KVM side loads before each routine (interp.c). */
Test(interp_table, needs)
{
    const unsigned xs = INTERP_NEED_XSAVE | INTERP_NEED_XCR0;
    for (int k = 0; k < INSN_KINDS; k++) {
        unsigned want = 0;
        switch (k) {
        case INSN_FWAIT: want = INTERP_NEED_FPU; break;
        case INSN_XSAVE: case INSN_XSAVEOPT: case INSN_XSAVEC: case INSN_XRSTOR: case INSN_XGETBV:
            want = xs;
            break;
        case INSN_XSAVES: case INSN_XRSTORS: want = xs | INTERP_NEED_XSS; break;
        case INSN_XSETBV: want = INTERP_NEED_XCR0; break;
        case INSN_LDMXCSR: case INSN_STMXCSR: case INSN_VZEROUPPER: case INSN_VMOVDQ: case INSN_VMOVD:
        case INSN_VPALU: case INSN_VPSHUFD: case INSN_VEXTRACT: case INSN_VPERMI2: case INSN_VPROT:
            want = xs;
            break;
        case INSN_RDPID: want = INTERP_NEED_TSC_AUX; break;
        }
        cr_assert_eq(interp_needs((enum interp_insn)k), want, "%s", interp_insn_name((enum interp_insn)k));
    }
}

/* Vector instructions start a run-ahead; it may also run the plain ones, POPCNT and LDMXCSR/STMXCSR. */
Test(interp_table, runahead_and_lock_flags)
{
    for (int k = 0; k < INSN_KINDS; k++) {
        enum interp_insn i = (enum interp_insn)k;
        int vector = k >= INSN_VZEROUPPER && k <= INSN_VPROT;
        int in_runahead = vector || k == INSN_RUNAHEAD || k == INSN_POPCNT || k == INSN_LDMXCSR || k == INSN_STMXCSR;
        cr_assert_eq(interp_starts_runahead(i), vector, "%s", interp_insn_name(i));
        cr_assert_eq(interp_runahead_ok(i), in_runahead, "%s", interp_insn_name(i));
        cr_assert_eq((interp_insn_flags(i) & INSN_F_LOCK_OK) != 0, k == INSN_CMPXCHG8B || k == INSN_CMPXCHG16B,
                     "%s", interp_insn_name(i));
    }
}
