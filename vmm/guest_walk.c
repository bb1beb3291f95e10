#include "guest_walk.h"

#include <errno.h>
#include <string.h>

#define PTE_P 0x1ULL
#define PTE_PS 0x80ULL
#define PTE_ADDR 0x000ffffffffff000ULL

static int read_pte(const struct guest_mem *gm, uint64_t gpa, uint64_t *pte)
{
    return gm_read(gm, gpa, pte, sizeof(*pte));
}

int guest_translate(const struct guest_mem *gm, const struct kvm_sregs *sregs, uint64_t lin,
                    uint64_t *gpa)
{
    if (!(sregs->cr0 & 0x80000000ULL)) {
        *gpa = lin & 0xffffffffULL;
        return 0;
    }
    if (!(sregs->efer & 0x400ULL))
        return -EOPNOTSUPP; /* 32-bit paging: no guest has needed it yet */
    uint64_t table = sregs->cr3 & PTE_ADDR;
    /* 4-level: PML4 (39), PDPT (30, may be 1 GiB page), PD (21, may be 2 MiB), PT (12). */
    static const int shifts[4] = {39, 30, 21, 12};
    for (int level = 0; level < 4; level++) {
        uint64_t pte;
        uint64_t idx = (lin >> shifts[level]) & 0x1ff;
        if (read_pte(gm, table + idx * 8, &pte))
            return -EFAULT;
        if (!(pte & PTE_P))
            return -EFAULT;
        if ((level == 1 || level == 2) && (pte & PTE_PS)) {
            uint64_t page = 1ULL << shifts[level];
            *gpa = (pte & PTE_ADDR & ~(page - 1)) | (lin & (page - 1));
            return 0;
        }
        table = pte & PTE_ADDR;
    }
    *gpa = table | (lin & 0xfff);
    return 0;
}

int guest_read_linear(const struct guest_mem *gm, const struct kvm_sregs *sregs, uint64_t lin,
                      void *dst, unsigned len)
{
    uint8_t *out = dst;
    while (len) {
        unsigned chunk = 0x1000 - (unsigned)(lin & 0xfff);
        if (chunk > len)
            chunk = len;
        uint64_t gpa;
        int rc = guest_translate(gm, sregs, lin, &gpa);
        if (rc)
            return rc;
        if (gm_read(gm, gpa, out, chunk))
            return -EFAULT;
        out += chunk;
        lin += chunk;
        len -= chunk;
    }
    return 0;
}
