/*
 * One vCPU's architectural state for snapshots: read and written through KVM
 * ioctls on the vCPU fd (vcpu_state_save / vcpu_state_restore), and encoded as
 * one core/state.h section "vcpu" (vcpu_state_encode / vcpu_state_decode),
 * which is what the unit tests exercise without /dev/kvm.
 *
 * Section "vcpu", version 1: u32 vCPU index; then each KVM structure as
 * u32 byte length + its bytes (the structures are x86_64 little-endian, the
 * file's architecture field pins that): regs, sregs, fpu, xcrs, lapic,
 * vcpu_events, mp_state, debugregs; then u32 XSAVE size (0: none) + the XSAVE
 * area; u32 CPUID entry count + kvm_cpuid_entry2 entries; u32 MSR count +
 * (u32 index, u64 value) pairs. Every length is checked against the structure
 * and the limits below before anything is copied.
 */
#ifndef EMBER_VCPU_STATE_H
#define EMBER_VCPU_STATE_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/errmsg.h"
#include "core/state.h"

#define VCPU_STATE_MAX_CPUID 256 /* KVM_MAX_CPUID_ENTRIES */
#define VCPU_STATE_MAX_MSRS 512
/* sizeof(struct kvm_xsave) is the legacy size; KVM_CAP_XSAVE2 may report more (AMX: ~11 KiB). */
#define VCPU_STATE_MIN_XSAVE 4096u
#define VCPU_STATE_MAX_XSAVE (64u << 10)

struct vcpu_state {
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    struct kvm_fpu fpu; /* saved even with XSAVE: cheap, and a host without XSAVE restores from it */
    struct kvm_xcrs xcrs;
    struct kvm_lapic_state lapic;
    struct kvm_vcpu_events events;
    struct kvm_mp_state mp_state;
    struct kvm_debugregs debugregs;
    uint32_t xsave_size; /* 0: the host had no XSAVE */
    uint8_t *xsave;      /* xsave_size bytes, malloc'd */
    uint32_t nr_cpuid;
    struct kvm_cpuid_entry2 cpuid[VCPU_STATE_MAX_CPUID];
    uint32_t nr_msrs;
    struct kvm_msr_entry msrs[VCPU_STATE_MAX_MSRS];
};

void vcpu_state_free(struct vcpu_state *s);

/* The section for vCPU `index`: 0 or the writer's error. */
int vcpu_state_encode(const struct vcpu_state *s, uint32_t index, struct state_writer *w);
/* Opens the next section, which must be vCPU `index`, into *s (zeroed first; free with vcpu_state_free). */
int vcpu_state_decode(struct state_reader *r, uint32_t index, struct vcpu_state *s, struct errmsg *err);

/* Whether an MSR KVM lists is one a snapshot carries (Firecracker's serializable ranges). */
bool vcpu_state_msr_wanted(uint32_t index);
/* Keeps the wanted ones of indices[0..n) in place; returns how many. */
uint32_t vcpu_state_filter_msrs(uint32_t *indices, uint32_t n);
/*
 * The XSAVE area this host's KVM takes: KVM_CHECK_EXTENSION(KVM_CAP_XSAVE2) on
 * the VM fd when available, else the legacy 4096 bytes; 0 without KVM_CAP_XSAVE.
 */
uint32_t vcpu_state_host_xsave_size(int kvm_fd, int vm_fd);
/*
 * Fits a saved XSAVE area to the host's size: a smaller one is zero-padded
 * (the extra features read as in their initial state, XSTATE_BV says so);
 * a larger one is refused, its features unknown to this host.
 */
int vcpu_state_fit_xsave(struct vcpu_state *s, uint32_t host_size, struct errmsg *err);

/* The MSR indices to save, from KVM_GET_MSR_INDEX_LIST on kvm_fd, filtered: 0 or -errno with a message. */
int vcpu_state_msr_list(int kvm_fd, uint32_t *indices, uint32_t max, uint32_t *nr, struct errmsg *err);
/*
 * Reads vCPU state (the vCPU must not be running): every structure, the XSAVE
 * area of xsave_size bytes (0: KVM_GET_FPU only), the CPUID, and the MSRs of
 * msr_indices the vCPU can read (the others are dropped: the guest cannot use them).
 */
int vcpu_state_save(int vcpu_fd, uint32_t index, const uint32_t *msr_indices, uint32_t nr_msrs, uint32_t xsave_size,
                    struct vcpu_state *s, struct errmsg *err);
/* Writes it into a new vCPU, in the order KVM needs (see vcpu_state.c); host_xsave_size as above. */
int vcpu_state_restore(int vcpu_fd, uint32_t index, struct vcpu_state *s, uint32_t host_xsave_size, struct errmsg *err);
/* Logs (debug) where the vCPU is and its LAPIC's in-service and requested vectors: what a halted guest waits on. */
void vcpu_state_log_interrupts(int vcpu_fd, uint32_t index);

#endif
