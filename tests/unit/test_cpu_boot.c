/* cpu_boot: identity-map page tables, boot GDT, and BSP registers for both protocols. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "x86/cpu_boot.h"
#include "interp/guest_walk.h"
#include "tests/unit/boot_fixture.h"
#include "x86/layout.h"

TestSuite(boot_tables, .init = bfx_boot_setup, .fini = bfx_fini);

static uint64_t q(uint64_t gpa)
{
    uint64_t v;
    memcpy(&v, bfx.ram + gpa, 8);
    return v;
}

Test(boot_tables, pml4_pdpt_pd_chain)
{
    cr_assert_eq(boot_tables_write(&bfx.gm), 0);
    cr_assert_eq(q(PML4_GPA), PDPT_GPA | 0x3);
    for (uint64_t i = 1; i < 512; i++)
        cr_assert_eq(q(PML4_GPA + 8 * i), 0, "PML4[%llu] not present", (unsigned long long)i);
    for (uint64_t i = 0; i < 4; i++)
        cr_assert_eq(q(PDPT_GPA + 8 * i), (PD_GPA + 0x1000 * i) | 0x3, "PDPT[%llu]", (unsigned long long)i);
    for (uint64_t i = 4; i < 512; i++)
        cr_assert_eq(q(PDPT_GPA + 8 * i), 0);
}

Test(boot_tables, two_mib_pages_cover_4g)
{
    cr_assert_eq(boot_tables_write(&bfx.gm), 0);
    for (uint64_t n = 0; n < 2048; n++) {
        uint64_t pde = q(PD_GPA + 8 * n);
        cr_assert_eq(pde, (n << 21) | 0x83, "PDE %llu = %#llx", (unsigned long long)n, (unsigned long long)pde);
    }
    /* The LAPIC page: PD 3, entry 0x1f7. */
    cr_assert_eq(q(PD_GPA + 3 * 0x1000 + 0x1f7 * 8), 0xFEE00000ULL | 0x83);
}

Test(boot_tables, translate_through_the_tables)
{
    cr_assert_eq(boot_tables_write(&bfx.gm), 0);
    struct kvm_sregs s = {0};
    struct kernel_image k = {.proto = BOOT_LINUX64};
    boot_sregs(&k, &s);
    static const uint64_t addrs[] = {0, 0x1234, 0x1000000, 0xFEE00300ULL, 0xFFFFFFFFULL};
    for (size_t i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
        uint64_t gpa = 0;
        cr_assert_eq(guest_translate(&bfx.gm, &s, addrs[i], &gpa), 0);
        cr_assert_eq(gpa, addrs[i], "identity for %#llx", (unsigned long long)addrs[i]);
    }
    uint64_t gpa;
    cr_assert_neq(guest_translate(&bfx.gm, &s, 0x100000000ULL, &gpa), 0, "nothing mapped above 4 GiB");
}

static uint64_t desc_base(uint64_t d) { return ((d >> 16) & 0xffffff) | ((d >> 32) & 0xff000000); }
static uint32_t desc_limit(uint64_t d) { return (uint32_t)((d & 0xffff) | ((d >> 32) & 0xf0000)); }
static unsigned desc_type(uint64_t d) { return (unsigned)(d >> 40) & 0xf; }
static unsigned desc_s(uint64_t d) { return (unsigned)(d >> 44) & 1; }
static unsigned desc_p(uint64_t d) { return (unsigned)(d >> 47) & 1; }
static unsigned desc_l(uint64_t d) { return (unsigned)(d >> 53) & 1; }
static unsigned desc_db(uint64_t d) { return (unsigned)(d >> 54) & 1; }
static unsigned desc_g(uint64_t d) { return (unsigned)(d >> 55) & 1; }

Test(boot_tables, gdt_matches_segment_registers)
{
    cr_assert_eq(boot_tables_write(&bfx.gm), 0);
    struct kvm_sregs s = {0};
    struct kernel_image k = {.proto = BOOT_LINUX64};
    boot_sregs(&k, &s);
    cr_assert_eq(s.gdt.base, BOOT_GDT_GPA);
    cr_assert_eq(q(BOOT_GDT_GPA), 0, "null descriptor");

    uint64_t cs = q(BOOT_GDT_GPA + s.cs.selector);
    cr_assert_eq(desc_p(cs), 1);
    cr_assert_eq(desc_s(cs), s.cs.s);
    cr_assert_eq(desc_type(cs), s.cs.type);
    cr_assert_eq(desc_l(cs), s.cs.l);
    cr_assert_eq(desc_db(cs), s.cs.db);
    cr_assert_eq(desc_g(cs), s.cs.g);
    cr_assert_eq(desc_base(cs), 0);
    cr_assert_eq(desc_limit(cs), 0xfffff);

    uint64_t ds = q(BOOT_GDT_GPA + s.ds.selector);
    cr_assert_eq(desc_p(ds), 1);
    cr_assert_eq(desc_type(ds), s.ds.type);
    cr_assert_eq(desc_db(ds), 1);
    cr_assert_eq(desc_s(ds), 1);
}

Test(boot_tables, BUG_idt_does_not_overlap_gdt)
{
    /*
     * BUG (x86/layout.h BOOT_IDT_GPA 0x520 vs cpu_boot.c GDT_ENTRIES 5): the GDT is
     * 5 descriptors (0x500..0x527, limit 39), so the IDT at 0x520 is the TSS
     * descriptor's slot and boot_tables_write's `*idt = 0` wipes the TSS entry.
     * Fix: move BOOT_IDT_GPA past the GDT (e.g. 0x528 or 0x530).
     */
    cr_assert_eq(boot_tables_write(&bfx.gm), 0);
    struct kvm_sregs s = {0};
    struct kernel_image k = {.proto = BOOT_LINUX64};
    boot_sregs(&k, &s);
    uint64_t gdt_end = s.gdt.base + s.gdt.limit + 1;
    uint64_t idt_end = s.idt.base + s.idt.limit + 1;
    cr_assert(s.idt.base >= gdt_end || idt_end <= s.gdt.base, "GDT [%#llx,%#llx) and IDT [%#llx,%#llx) overlap",
              (unsigned long long)s.gdt.base, (unsigned long long)gdt_end, (unsigned long long)s.idt.base,
              (unsigned long long)idt_end);
    uint64_t tss = q(BOOT_GDT_GPA + s.tr.selector);
    cr_assert_eq(desc_p(tss), 1, "TSS descriptor present (got %#llx)", (unsigned long long)tss);
    cr_assert_eq(desc_type(tss), s.tr.type);
}

Test(boot_tables, memory_too_small)
{
    struct guest_mem small;
    static uint8_t tiny[0xc000]; /* PDs at 0xb000 need 16 KiB */
    cr_assert_eq(guest_mem_init_with(&small, sizeof(tiny), tiny), 0);
    cr_assert_lt(boot_tables_write(&small), 0);
}

Test(boot_regs, linux64)
{
    struct kernel_image k = {.proto = BOOT_LINUX64, .entry = 0x1000200};
    struct kvm_sregs s;
    memset(&s, 0xff, sizeof(s));
    boot_sregs(&k, &s);
    cr_assert(s.cr0 & 0x1, "CR0.PE");
    cr_assert(s.cr0 & 0x80000000ULL, "CR0.PG");
    cr_assert(s.cr4 & 0x20, "CR4.PAE");
    cr_assert_eq(s.efer & 0x500, 0x500, "EFER.LME|LMA");
    cr_assert_eq(s.cr3, PML4_GPA);
    cr_assert_eq(s.cs.l, 1);
    cr_assert_eq(s.cs.db, 0, "L=1 requires D=0");
    cr_assert_eq(s.cs.present, 1);
    cr_assert_eq(s.cs.s, 1);
    cr_assert(s.cs.type & 0x8, "code segment");
    cr_assert_eq(s.ss.selector, s.ds.selector);
    cr_assert_eq(s.ds.present, 1);
    cr_assert_eq(s.tr.present, 1);
    cr_assert_eq(s.tr.s, 0, "TSS is a system segment");

    struct kvm_regs r;
    memset(&r, 0xff, sizeof(r));
    boot_regs(&k, &r);
    cr_assert_eq(r.rip, 0x1000200);
    cr_assert_eq(r.rsi, ZERO_PAGE_GPA);
    cr_assert_eq(r.rbx, 0);
    cr_assert_eq(r.rflags, 0x2);
    cr_assert_eq(r.rsp, BOOT_STACK_GPA);
    cr_assert_eq(r.rax, 0);
}

Test(boot_regs, pvh)
{
    struct kernel_image k = {.proto = BOOT_PVH, .entry = 0x1000040};
    struct kvm_sregs s;
    memset(&s, 0xff, sizeof(s));
    boot_sregs(&k, &s);
    cr_assert(s.cr0 & 0x1, "CR0.PE");
    cr_assert_eq(s.cr0 & 0x80000000ULL, 0, "paging off");
    cr_assert_eq(s.cr4, 0);
    cr_assert_eq(s.efer, 0);
    cr_assert_eq(s.cs.l, 0);
    cr_assert_eq(s.cs.db, 1, "32-bit code");
    cr_assert_eq(s.cs.base, 0);
    cr_assert_eq(s.cs.limit, 0xffffffff);
    cr_assert_eq(s.cs.g, 1);
    cr_assert_eq(s.ds.db, 1);

    struct kvm_regs r;
    memset(&r, 0xff, sizeof(r));
    boot_regs(&k, &r);
    cr_assert_eq(r.rip, 0x1000040);
    cr_assert_eq(r.rbx, PVH_INFO_GPA, "start info in RBX");
    cr_assert_eq(r.rsi, 0);
    cr_assert_eq(r.rflags, 0x2);
}
