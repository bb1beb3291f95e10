/*
 * Host compatibility: software KVM (kvm-pvm) runs guest kernels through an
 * instruction emulator that lacks some instructions and does not virtualise
 * CPUID. Ember detects such a host and steers the guest kernel away from
 * what cannot work there. On hardware KVM nothing here changes behaviour.
 */
#ifndef EMBER_HOSTCOMPAT_H
#define EMBER_HOSTCOMPAT_H

#include <stddef.h>

#include "vm/config.h"

/*
 * 1 when the open /dev/kvm `kvm_fd` is kvm-pvm's: kvm_pvm is loaded and no
 * hardware vendor module (kvm_amd, kvm_intel) is. `sys_module` is the sysfs
 * module folder (NULL: /sys/module). 0 when kvm_fd < 0.
 */
int hostcompat_is_pvm(int kvm_fd, const char *sys_module);
/* Whether compat arguments apply, given the mode and the detection result. */
int hostcompat_active(enum host_compat_mode mode, int is_pvm);
/* Kernel arguments to append on such a host (never NULL; may be ""). */
const char *hostcompat_cmdline(unsigned vcpus);

/*
 * Builds the final command line: base (or the default), then compat args
 * when active. -E2BIG when it does not fit in `max` bytes including the NUL.
 */
int cmdline_build(char *out, size_t max, const char *base, const char *extra);

#endif
