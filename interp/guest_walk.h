/* Guest-virtual to guest-physical translation by walking the guest's own page tables. */
#ifndef EMBER_GUEST_WALK_H
#define EMBER_GUEST_WALK_H

#include <linux/kvm.h>
#include <stdint.h>

#include "core/guest_mem.h"

/* Linear address → physical, for the paging mode in sregs. -EFAULT if not mapped. */
int guest_translate(const struct guest_mem *gm, const struct kvm_sregs *sregs, uint64_t lin, uint64_t *gpa);
/* Copies len bytes at a linear address, page by page. */
int guest_read_linear(const struct guest_mem *gm, const struct kvm_sregs *sregs, uint64_t lin, void *dst, unsigned len);

/* What an access is, for the permission checks of guest_translate_access(). */
#define GW_WRITE 0x1u /* a write (or a read-modify-write) */
#define GW_USER 0x2u  /* made at CPL 3 */
#define GW_FETCH 0x4u /* an instruction fetch */
#define GW_AC 0x8u    /* RFLAGS.AC is set (SMAP lets explicit supervisor accesses reach user pages) */

/* Page-fault error code bits (what the CPU pushes for #PF). */
#define PFEC_P 0x1u
#define PFEC_W 0x2u
#define PFEC_U 0x4u
#define PFEC_RSVD 0x8u
#define PFEC_I 0x10u

/*
 * Translates like the CPU does for an access of kind `access` (GW_*): checks
 * presence, reserved bits, R/W (for supervisor writes only when CR0.WP),
 * U/S, NX, SMEP and SMAP, and sets the Accessed bits of the entries used (and
 * Dirty of the last one for a write) atomically, as the CPU would.
 * 0: *gpa is set. -EFAULT: the CPU would raise #PF; *pfec holds the error
 * code. -EIO: a paging structure lies outside guest RAM. -EOPNOTSUPP: a paging
 * mode the walker does not know (32-bit, PAE without long mode, 5-level).
 */
int guest_translate_access(const struct guest_mem *gm, const struct kvm_sregs *sregs, uint64_t lin, unsigned access,
                           uint64_t *gpa, uint32_t *pfec);

#endif
