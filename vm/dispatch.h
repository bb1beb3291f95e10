/*
 * The dispatcher: every KVM_RUN exit is routed here to its handler. Port and
 * MMIO accesses go to the device that owns the range (the allocator's
 * entry); instruction-emulation failures go to the interpreter; anything else
 * ends the VM with a report. The first accesses to unclaimed addresses are
 * logged once each, up to a limit.
 */
#ifndef EMBER_DISPATCH_H
#define EMBER_DISPATCH_H

#include <pthread.h>
#include <stdint.h>

#include "core/alloc.h"

/* Enough to show what a guest probes without flooding the log. */
#define UNCLAIMED_REPORT_LIMIT 16

struct vcpu;

struct dispatcher {
    const struct allocator *alloc; /* read-only once vCPUs run */
    pthread_mutex_t report_lock;
    uint64_t reported[UNCLAIMED_REPORT_LIMIT]; /* unclaimed addresses already logged */
    unsigned nr_reported;
};

enum dispatch_result { DISPATCH_CONTINUE, DISPATCH_STOP };

void dispatcher_init(struct dispatcher *d, const struct allocator *alloc);
void dispatcher_destroy(struct dispatcher *d);
enum dispatch_result dispatch_exit(struct dispatcher *d, struct vcpu *v);

#endif
