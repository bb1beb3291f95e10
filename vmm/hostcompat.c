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
 * - noxsave + clearcpuid: the guest sees the host's CPUID (not trapped) and
 *   would use XSAVE/XRSTOR, POPCNT, CMPXCHG16B etc., which the emulator
 *   cannot run; clearing them makes the kernel pick plain code paths.
 * - nopv (SMP only): the guest sees the outer hypervisor's KVM leaves and
 *   would use PV IPIs, whose hypercalls never complete here.
 */
#define PVM_ARGS "noxsave clearcpuid=popcnt,xsave,avx,avx2,avx512f,rdrand,rdseed,smap,smep,fsgsbase,bmi1,bmi2,pcid,invpcid,cx16"

const char *hostcompat_cmdline(unsigned vcpus)
{
    return vcpus > 1 ? PVM_ARGS " nopv" : PVM_ARGS;
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
