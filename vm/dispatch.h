/*
 * The dispatcher: every KVM_RUN exit is routed here to its handler. Port and
 * MMIO accesses go to the device that owns the range; instruction-emulation
 * failures go to the interpreter; anything else ends the VM with a report.
 */
#ifndef EMBER_DISPATCH_H
#define EMBER_DISPATCH_H

struct vcpu;

enum dispatch_result { DISPATCH_CONTINUE, DISPATCH_STOP };

enum dispatch_result dispatch_exit(struct vcpu *v);

#endif
