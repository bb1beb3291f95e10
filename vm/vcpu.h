/* vCPU creation, architectural setup and the per-vCPU run thread. */
#ifndef EMBER_VCPU_H
#define EMBER_VCPU_H

#include "core/errmsg.h"

struct vm;
struct vcpu;

/* Creates vCPU `id` and sets CPUID, MSRs, FPU and LAPIC; the BSP also gets boot registers. */
/* boot: CPUID, MSRs, FPU, LAPIC and (BSP) entry registers for a fresh boot; else the fd and run area only. */
int vcpu_create(struct vm *vm, struct vcpu *v, int id, int boot, struct errmsg *err);
/* For a boot: the VM's CPU template (vm->cfg) onto its CPUID table, once before its vCPUs are created. */
int vcpu_apply_cpu_template(struct vm *vm, struct errmsg *err);
/* Runs v on its own thread: vCPU 0 on the VM's standby thread if vm_prepare started one. */
int vcpu_start_thread(struct vcpu *v, struct errmsg *err);
/* A thread started ahead that loads the vCPU seccomp filter, then waits to run vCPU 0 (vcpu_start_thread). */
struct vcpu_standby;
int vcpu_standby_start(struct vcpu_standby **out, struct errmsg *err);
/* Ends and joins it if it never got a vCPU; after a hand-over only frees it (vm_stop joined the thread). */
void vcpu_standby_free(struct vcpu_standby *s);
/* Makes a vCPU leave KVM_RUN promptly (used once the VM's end is decided). */
void vcpu_kick(struct vcpu *v);
void vcpu_destroy(struct vcpu *v);

/* The signal used to kick vCPU threads out of KVM_RUN. */
#define VCPU_KICK_SIGNAL SIGUSR1

#endif
