#include "interp/guest_walk.h"

#include <errno.h>
#include <string.h>

#define PTE_P 0x1ULL
#define PTE_RW 0x2ULL
#define PTE_US 0x4ULL
#define PTE_A 0x20ULL
#define PTE_D 0x40ULL
#define PTE_PS 0x80ULL
#define PTE_NX 0x8000000000000000ULL
#define PTE_ADDR 0x000ffffffffff000ULL

#define CR0_WP (1ULL << 16)
#define CR0_PG (1ULL << 31)
#define CR4_PAE (1ULL << 5)
#define CR4_LA57 (1ULL << 12)
#define CR4_SMEP (1ULL << 20)
#define CR4_SMAP (1ULL << 21)
#define EFER_LMA (1ULL << 10)
#define EFER_NXE (1ULL << 11)

static int read_pte(const struct guest_mem *gm, uint64_t gpa, uint64_t *pte)
{
    return gm_read(gm, gpa, pte, sizeof(*pte));
}

int guest_translate(const struct guest_mem *gm, const struct kvm_sregs *sregs, uint64_t lin, uint64_t *gpa)
{
    if (!(sregs->cr0 & CR0_PG)) {
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

int guest_read_linear(const struct guest_mem *gm, const struct kvm_sregs *sregs, uint64_t lin, void *dst, unsigned len)
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

/* Sets bits in a guest paging entry the way the CPU does: a locked OR. */
static void pte_set_bits(uint64_t *p, uint64_t bits)
{
    if ((__atomic_load_n(p, __ATOMIC_RELAXED) & bits) != bits)
        __atomic_fetch_or(p, bits, __ATOMIC_SEQ_CST);
}

int guest_translate_access(const struct guest_mem *gm, const struct kvm_sregs *sregs, uint64_t lin, unsigned access,
                           uint64_t *gpa, uint32_t *pfec)
{
    *pfec = 0;
    if (!(sregs->cr0 & CR0_PG)) {
        *gpa = lin & 0xffffffffULL;
        return 0;
    }
    if (!(sregs->efer & EFER_LMA) || !(sregs->cr4 & CR4_PAE) || (sregs->cr4 & CR4_LA57))
        return -EOPNOTSUPP;
    int nxe = (sregs->efer & EFER_NXE) != 0;
    /* What the error code says about the access itself. */
    uint32_t code = ((access & GW_WRITE) ? PFEC_W : 0) | ((access & GW_USER) ? PFEC_U : 0) |
                    ((access & GW_FETCH) && (nxe || (sregs->cr4 & CR4_SMEP)) ? PFEC_I : 0);
    static const int shifts[4] = {39, 30, 21, 12};
    uint64_t *entries[4];
    int used = 0;
    uint64_t table = sregs->cr3 & PTE_ADDR;
    int writable = 1, user = 1, nx = 0;
    uint64_t pa = 0;
    for (int level = 0; level < 4; level++) {
        uint64_t *p = gm_ptr(gm, table + ((lin >> shifts[level]) & 0x1ff) * 8, 8);
        if (!p)
            return -EIO;
        uint64_t pte = __atomic_load_n(p, __ATOMIC_RELAXED);
        if (!(pte & PTE_P)) {
            *pfec = code;
            return -EFAULT;
        }
        /* Reserved: NX without EFER.NXE; PS in a PML4 entry. */
        if ((!nxe && (pte & PTE_NX)) || (level == 0 && (pte & PTE_PS))) {
            *pfec = code | PFEC_P | PFEC_RSVD;
            return -EFAULT;
        }
        entries[used++] = p;
        writable &= (pte & PTE_RW) != 0;
        user &= (pte & PTE_US) != 0;
        nx |= nxe && (pte & PTE_NX);
        if (level == 3 || ((level == 1 || level == 2) && (pte & PTE_PS))) {
            uint64_t page = 1ULL << shifts[level];
            pa = (pte & PTE_ADDR & ~(page - 1)) | (lin & (page - 1)); /* drops a large page's PAT bit */
            break;
        }
        table = pte & PTE_ADDR;
    }
    int deny = 0;
    if (access & GW_USER) {
        deny = !user || ((access & GW_WRITE) && !writable);
    } else {
        if ((access & GW_WRITE) && !writable && (sregs->cr0 & CR0_WP))
            deny = 1;
        if (user && (access & GW_FETCH) && (sregs->cr4 & CR4_SMEP))
            deny = 1;
        if (user && !(access & GW_FETCH) && (sregs->cr4 & CR4_SMAP) && !(access & GW_AC))
            deny = 1;
    }
    if ((access & GW_FETCH) && nx)
        deny = 1;
    if (deny) {
        *pfec = code | PFEC_P;
        return -EFAULT;
    }
    for (int k = 0; k < used; k++)
        pte_set_bits(entries[k], PTE_A | (k == used - 1 && (access & GW_WRITE) ? PTE_D : 0));
    *gpa = pa;
    return 0;
}
