/* Guest-virtual to guest-physical translation by walking the guest's own page tables. */
#ifndef EMBER_GUEST_WALK_H
#define EMBER_GUEST_WALK_H

#include <linux/kvm.h>
#include <stdint.h>

#include "guest_mem.h"

/* Linear address → physical, for the paging mode in sregs. -EFAULT if not mapped. */
int guest_translate(const struct guest_mem *gm, const struct kvm_sregs *sregs, uint64_t lin,
                    uint64_t *gpa);
/* Copies len bytes at a linear address, page by page. */
int guest_read_linear(const struct guest_mem *gm, const struct kvm_sregs *sregs, uint64_t lin,
                      void *dst, unsigned len);

#endif
