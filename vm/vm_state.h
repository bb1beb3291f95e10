/*
 * The VM-wide KVM state for snapshots: the in-kernel interrupt controllers
 * (PIC master, PIC slave, IOAPIC), the PIT and the KVM clock. vm_state_save
 * and vm_state_restore are the ioctls on the VM fd; vm_state_encode and
 * vm_state_decode the section "vm" (version 1): each structure as u32 byte
 * length + its bytes (x86_64 little-endian), in the order of struct vm_kvm_state.
 */
#ifndef EMBER_VM_STATE_H
#define EMBER_VM_STATE_H

#include <linux/kvm.h>
#include <stdbool.h>

#include "core/errmsg.h"
#include "core/state.h"

struct vm_kvm_state {
    struct kvm_irqchip pic_master, pic_slave, ioapic;
    struct kvm_pit_state2 pit;
    struct kvm_clock_data clock;
};

int vm_state_encode(const struct vm_kvm_state *s, struct state_writer *w);
/* Opens the next section, which must be "vm": 0 or -EINVAL with a message (sizes and chip ids checked). */
int vm_state_decode(struct state_reader *r, struct vm_kvm_state *s, struct errmsg *err);

/* Reads the state of a VM whose vCPUs are all stopped. */
int vm_state_save(int vm_fd, struct vm_kvm_state *s, struct errmsg *err);
/*
 * Writes it into a new VM (irqchip and PIT created, before its vCPUs run).
 * clock_realtime: let KVM advance the clock by the wall-clock time since the
 * save (KVM_CLOCK_REALTIME, SnapshotLoadParams.clock_realtime) when the saved
 * clock carries it; otherwise the guest's clock resumes where it stopped.
 */
int vm_state_restore(int vm_fd, const struct vm_kvm_state *s, bool clock_realtime, struct errmsg *err);
/* Logs (debug) the IOAPIC's redirection entries for pins first..last in use (vector, target,
 * trigger, mask, remote IRR, line). */
void vm_state_log_ioapic(int vm_fd, uint32_t first_pin, uint32_t last_pin);

/* The KVM_SET_CLOCK argument vm_state_restore uses (split out for tests). */
struct kvm_clock_data vm_state_clock_to_set(const struct kvm_clock_data *saved, bool clock_realtime);

#endif
