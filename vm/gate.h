/*
 * The start and pause barrier between the VMM thread and the vCPU threads.
 *
 * Start: no guest instruction runs before every thread (VMM and each vCPU)
 * has its seccomp filter. Each vCPU thread reports ready and waits; the
 * VMM thread reports its filter and waits until every vCPU is ready;
 * whichever comes last says go.
 * Pause: the VMM thread asks, kicks the vCPUs out of KVM_RUN (again every
 * 10 ms, as a kick can land just before KVM_RUN) and waits until all are
 * parked; resume releases them. Every wait also ends once the VM's end is
 * decided (`*end` != 0) and gate_release_all wakes the waiters.
 */
#ifndef EMBER_GATE_H
#define EMBER_GATE_H

#include <pthread.h>
#include <stdatomic.h>

struct gate {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    const atomic_int *end; /* the VM's end decision: 0 while it runs */
    int nr_vcpus;
    int nr_ready;     /* vCPU threads filtered and waiting to start */
    int vmm_filtered; /* the VMM thread's filter is in place */
    int go;           /* the guest may run */
    int pause_requested;
    int nr_paused;
};

void gate_init(struct gate *g, const atomic_int *end);
void gate_destroy(struct gate *g);
/* Before starting nr_vcpus threads. */
void gate_arm(struct gate *g, int nr_vcpus);
/* vCPU thread, filtered (or failed to be): 0 once the guest may run, -ECANCELED if the VM ended. */
int gate_vcpu_ready(struct gate *g);
/* VMM thread, filtered: says go if every vCPU is ready, then waits until they are (or the VM ended). */
void gate_vmm_ready(struct gate *g);
/* vCPU thread after a kick: parks while a pause is requested. */
void gate_park_if_paused(struct gate *g);
/* VMM thread: returns once every vCPU is parked (or the VM ended); kick(ctx) makes them leave KVM_RUN. */
void gate_pause(struct gate *g, void (*kick)(void *ctx), void *ctx);
void gate_resume(struct gate *g);
/* Before the vCPU threads start: each parks before its first KVM_RUN until gate_resume. */
void gate_request_pause(struct gate *g);
int gate_is_paused(struct gate *g);
/* Wakes every waiter (they re-check the end decision): cancels a pause. */
void gate_release_all(struct gate *g);

#endif
