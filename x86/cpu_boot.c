#include "x86/cpu_boot.h"

#include <errno.h>
#include <string.h>

#include "x86/bootparams.h"
#include "x86/layout.h"

#define SEL_CODE 0x10
#define SEL_DATA 0x18
#define SEL_TSS 0x20
#define GDT_ENTRIES 5

#define CR0_PE 0x1ULL
#define CR0_MP 0x2ULL
#define CR0_ET 0x10ULL
#define CR0_NE 0x20ULL
#define CR0_PG 0x80000000ULL
#define CR4_PAE 0x20ULL
#define EFER_LME 0x100ULL
#define EFER_LMA 0x400ULL

/* Packs a GDT descriptor from base, limit and the flags/access word (as in Linux's GDT_ENTRY). */
static uint64_t gdt_entry(uint16_t flags, uint32_t base, uint32_t limit)
{
    return ((uint64_t)(base & 0xff000000) << 32) | ((uint64_t)(flags & 0xf0ff) << 40) |
           ((uint64_t)(limit & 0x000f0000) << 32) | ((uint64_t)(base & 0x00ffffff) << 16) |
           (uint64_t)(limit & 0x0000ffff);
}

int boot_tables_write(struct guest_mem *gm)
{
    uint64_t *pml4 = gm_ptr(gm, PML4_GPA, 0x1000);
    uint64_t *pdpt = gm_ptr(gm, PDPT_GPA, 0x1000);
    uint64_t *pd = gm_ptr(gm, PD_GPA, 4 * 0x1000);
    uint64_t *gdt = gm_ptr(gm, BOOT_GDT_GPA, GDT_ENTRIES * 8);
    uint64_t *idt = gm_ptr(gm, BOOT_IDT_GPA, 8);
    if (!pml4 || !pdpt || !pd || !gdt || !idt)
        return -EFAULT;
    memset(pml4, 0, 0x1000);
    memset(pdpt, 0, 0x1000);
    pml4[0] = PDPT_GPA | 0x3; /* present, writable */
    for (uint64_t i = 0; i < 4; i++) {
        pdpt[i] = (PD_GPA + i * 0x1000) | 0x3;
        for (uint64_t j = 0; j < 512; j++)
            pd[i * 512 + j] = ((i * 512 + j) << 21) | 0x83; /* present, writable, 2 MiB */
    }
    gdt[0] = 0;
    gdt[1] = 0;
    gdt[2] = gdt_entry(0xa09b, 0, 0xfffff); /* 64-bit code; for PVH, CS is loaded 32-bit through sregs */
    gdt[3] = gdt_entry(0xc093, 0, 0xfffff); /* flat data */
    gdt[4] = gdt_entry(0x808b, 0, 0xfffff); /* TSS */
    *idt = 0;
    return 0;
}

static struct kvm_segment segment(uint16_t sel, uint8_t type, uint8_t s, uint8_t l, uint8_t db)
{
    return (struct kvm_segment){.base = 0,
                                .limit = 0xffffffff,
                                .selector = sel,
                                .type = type,
                                .present = 1,
                                .dpl = 0,
                                .db = db,
                                .s = s,
                                .l = l,
                                .g = 1};
}

void boot_sregs(const struct kernel_image *k, struct kvm_sregs *sregs)
{
    int pvh = k->proto == BOOT_PVH;
    struct kvm_segment code = segment(SEL_CODE, 0xb, 1, pvh ? 0 : 1, pvh ? 1 : 0);
    struct kvm_segment data = segment(SEL_DATA, 0x3, 1, 0, 1);
    struct kvm_segment tss = segment(SEL_TSS, 0xb, 0, 0, 0);
    sregs->cs = code;
    sregs->ds = sregs->es = sregs->fs = sregs->gs = sregs->ss = data;
    sregs->tr = tss;
    sregs->gdt.base = BOOT_GDT_GPA;
    sregs->gdt.limit = GDT_ENTRIES * 8 - 1;
    sregs->idt.base = BOOT_IDT_GPA;
    sregs->idt.limit = 7;
    if (pvh) {
        /* PVH: 32-bit protected mode, paging off (Xen's HVM direct boot ABI). */
        sregs->cr0 = CR0_PE | CR0_ET;
        sregs->cr4 = 0;
        sregs->efer = 0;
        sregs->cr3 = 0;
    } else {
        sregs->cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_PG;
        sregs->cr4 = CR4_PAE;
        sregs->efer = EFER_LME | EFER_LMA;
        sregs->cr3 = PML4_GPA;
    }
}

void boot_regs(const struct kernel_image *k, struct kvm_regs *regs)
{
    memset(regs, 0, sizeof(*regs));
    regs->rflags = 0x2;
    regs->rip = k->entry;
    regs->rsp = regs->rbp = BOOT_STACK_GPA;
    if (k->proto == BOOT_PVH)
        regs->rbx = PVH_INFO_GPA;
    else
        regs->rsi = ZERO_PAGE_GPA;
}
