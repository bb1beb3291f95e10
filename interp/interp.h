/*
 * The interpreter: runs, in Ember, guest instructions the host's KVM gave up
 * on (KVM_EXIT_INTERNAL_ERROR / emulation failure), then resumes the guest.
 */
#ifndef EMBER_INTERP_H
#define EMBER_INTERP_H

#include <stdint.h>

#include "core/errmsg.h"

struct guest_mem;
struct kvm_run;

/* What the interpreter needs of the vCPU that failed (the VM layer fills it in). */
struct interp_vcpu {
    int fd;                      /* the vCPU's KVM file descriptor */
    int id;                      /* its number, for messages */
    struct kvm_run *run;         /* its kvm_run area: the instruction bytes KVM saw */
    const struct guest_mem *mem; /* guest RAM: instruction fetch, memory operands, page walks */
    uint64_t *insn_counts;       /* INSN_KINDS counters (insn_kind.h): one more per instruction run */
};

/* 0: emulated, resume the vCPU. Negative: cannot; err says what and where. */
int interp_emulation_failure(const struct interp_vcpu *vcpu, struct errmsg *err);

#endif
