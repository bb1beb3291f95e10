#include "vm/hostcompat.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int module_present(const char *sys_module, const char *name)
{
    char path[512];
    int n = snprintf(path, sizeof(path), "%s/%s", sys_module, name);
    return n > 0 && (size_t)n < sizeof(path) && access(path, F_OK) == 0;
}

/*
 * A machine can carry a kvm_pvm module that did not bind (no /dev/kvm at
 * all), and a KVM host may have kvm_pvm beside a hardware vendor module:
 * only an open /dev/kvm with kvm_pvm as the one vendor module present is
 * kvm-pvm's.
 */
int hostcompat_is_pvm(int kvm_fd, const char *sys_module)
{
    if (kvm_fd < 0)
        return 0;
    if (!sys_module)
        sys_module = "/sys/module";
    return module_present(sys_module, "kvm_pvm") && !module_present(sys_module, "kvm_amd") &&
           !module_present(sys_module, "kvm_intel");
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

const char *hostcompat_cmdline(unsigned vcpus) { return vcpus > 1 ? PVM_ARGS_SMP : ""; }

int cmdline_build(char *out, size_t max, const char *base, const char *extra)
{
    if (max == 0)
        return -E2BIG;
    int n = snprintf(out, max, "%s%s%s", base, (extra && *extra && *base) ? " " : "", extra ? extra : "");
    if (n < 0 || (size_t)n >= max)
        return -E2BIG;
    return n;
}
