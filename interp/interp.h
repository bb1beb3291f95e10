/*
 * The interpreter: runs, in Ember, guest instructions the host's KVM gave up
 * on (KVM_EXIT_INTERNAL_ERROR / emulation failure), then resumes the guest.
 */
#ifndef EMBER_INTERP_H
#define EMBER_INTERP_H

#include "core/errmsg.h"

struct vcpu;

/* 0: emulated, resume the vCPU. Negative: cannot; err says what and where. */
int interp_emulation_failure(struct vcpu *vcpu, struct errmsg *err);

#endif
