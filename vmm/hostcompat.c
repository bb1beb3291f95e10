#include "hostcompat.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int hostcompat_is_pvm(void)
{
    return access("/sys/module/kvm_pvm", F_OK) == 0;
}

int hostcompat_active(enum host_compat_mode mode, int is_pvm)
{
    return mode == HOST_COMPAT_ON || (mode == HOST_COMPAT_AUTO && is_pvm);
}

/*
 * What is left once Ember's interpreter runs the instructions kvm-pvm's
 * emulator cannot (XSAVE family, POPCNT, CMPXCHG16B, CLAC/STAC, INT3,
 * FWAIT...; see docs/host-compat.md, "The interpreter"):
 * - nopv (SMP only): the guest sees the outer hypervisor's KVM paravirt
 *   leaves (CPUID is not trapped) and, with more than one CPU, turns on PV
 *   IPIs, PV spinlock kicks and PV TLB flushes, whose hypercalls (VMMCALL)
 *   never complete on this host and never reach the monitor either, so
 *   there is nothing to interpret. A single CPU makes none of them.
 */
#define PVM_ARGS_SMP "nopv"

const char *hostcompat_cmdline(unsigned vcpus)
{
    return vcpus > 1 ? PVM_ARGS_SMP : "";
}

int cmdline_build(char *out, size_t max, const char *base, const char *extra)
{
    if (max == 0)
        return -E2BIG;
    int n = snprintf(out, max, "%s%s%s", base, (extra && *extra && *base) ? " " : "", extra ? extra : "");
    if (n < 0 || (size_t)n >= max)
        return -E2BIG;
    return n;
}
