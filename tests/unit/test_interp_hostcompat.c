/* hostcompat: with the interpreter, what is left of the kvm-pvm kernel arguments. */
#include <criterion/criterion.h>
#include <string.h>

#include "vm/hostcompat.h"

Test(interp_hostcompat, uniprocessor_needs_no_arguments)
{
    /* XSAVE, POPCNT, CMPXCHG16B, SMAP... are interpreted: nothing to steer the guest away from. */
    cr_assert_str_eq(hostcompat_cmdline(1), "");
    cr_assert_str_eq(hostcompat_cmdline(0), "");
}

Test(interp_hostcompat, smp_keeps_only_nopv)
{
    /* PV IPI/kick hypercalls never complete and never exit to the monitor. */
    cr_assert_str_eq(hostcompat_cmdline(2), "nopv");
    cr_assert_str_eq(hostcompat_cmdline(64), "nopv");
    cr_assert_null(strstr(hostcompat_cmdline(2), "clearcpuid"));
    cr_assert_null(strstr(hostcompat_cmdline(2), "noxsave"));
}

Test(interp_hostcompat, empty_extra_leaves_the_line_alone)
{
    char out[64];
    cr_assert_eq(cmdline_build(out, sizeof(out), "console=ttyS0", hostcompat_cmdline(1)), 13);
    cr_assert_str_eq(out, "console=ttyS0", "no trailing space");
}
