/* interp: checked linear accesses (guest_translate_access) and operand addresses. */
#include <errno.h>

#include "test_interp_fixture.h"

TestSuite(access, .init = fx_setup, .fini = fx_teardown);

static int walk(uint64_t lin, unsigned access, uint64_t *gpa, uint32_t *pfec)
{
    return guest_translate_access(&fx_gm, &fx_cpu.sregs, lin, access, gpa, pfec);
}

Test(access, translation_and_accessed_dirty_bits)
{
    uint64_t gpa;
    uint32_t pfec;
    cr_assert_eq(walk(0x30123, 0, &gpa, &pfec), 0);
    cr_assert_eq(gpa, 0x30123);
    cr_assert_eq(fx_pte(0x30000) & (A_ | D_), A_, "a read sets Accessed only");
    cr_assert_eq(walk(0x30123, GW_WRITE, &gpa, &pfec), 0);
    cr_assert_eq(fx_pte(0x30000) & (A_ | D_), A_ | D_, "a write sets Dirty");
    cr_assert(fx_entry(FX_PML4, 0) & A_);
    cr_assert(fx_entry(FX_PDPT, 0) & A_);
    cr_assert_eq(walk(FX_REMAPPED + 5, 0, &gpa, &pfec), 0);
    cr_assert_eq(gpa, FX_REMAP_TARGET + 5);
    cr_assert_eq(walk(0x234567, GW_WRITE, &gpa, &pfec), 0, "2 MiB page");
    cr_assert_eq(gpa, 0x234567);
    cr_assert_eq(fx_entry(FX_PD, 1) & (A_ | D_), A_ | D_, "Dirty on the large page's entry");
}

Test(access, not_present)
{
    uint64_t gpa;
    uint32_t pfec;
    cr_assert_eq(walk(FX_NOTPRESENT, GW_WRITE, &gpa, &pfec), -EFAULT);
    cr_assert_eq(pfec, PFEC_W);
    cr_assert_eq(walk(0x40000000, GW_USER, &gpa, &pfec), -EFAULT, "PDPT entry absent");
    cr_assert_eq(pfec, PFEC_U);
    cr_assert_eq(fx_pte(FX_NOTPRESENT) & A_, 0, "no Accessed bit on a fault");
}

Test(access, write_protection)
{
    uint64_t gpa;
    uint32_t pfec;
    cr_assert_eq(walk(FX_READONLY, 0, &gpa, &pfec), 0);
    cr_assert_eq(walk(FX_READONLY, GW_WRITE, &gpa, &pfec), -EFAULT);
    cr_assert_eq(pfec, PFEC_P | PFEC_W);
    fx_cpu.sregs.cr0 &= ~(1ULL << 16); /* WP off: supervisor writes ignore R/W */
    cr_assert_eq(walk(FX_READONLY, GW_WRITE, &gpa, &pfec), 0);
    cr_assert_eq(walk(FX_USER_RO, GW_WRITE | GW_USER, &gpa, &pfec), -EFAULT, "but user writes do not");
    cr_assert_eq(pfec, PFEC_P | PFEC_W | PFEC_U);
    /* R/W clear at an upper level protects everything below it. */
    fx_cpu.sregs.cr0 |= 1ULL << 16;
    fx_set_entry(FX_PD, 0, FX_PT | P_ | US_);
    cr_assert_eq(walk(0x30000, GW_WRITE, &gpa, &pfec), -EFAULT);
}

Test(access, user_supervisor_smap_smep_nx)
{
    uint64_t gpa;
    uint32_t pfec;
    cr_assert_eq(walk(0x30000, GW_USER, &gpa, &pfec), -EFAULT);
    cr_assert_eq(pfec, PFEC_P | PFEC_U);
    cr_assert_eq(walk(FX_USER, GW_USER | GW_WRITE, &gpa, &pfec), 0);
    /* US clear at an upper level makes the leaf supervisor-only. */
    fx_set_entry(FX_PD, 0, FX_PT | P_ | RW_);
    cr_assert_eq(walk(FX_USER, GW_USER, &gpa, &pfec), -EFAULT);
    fx_set_entry(FX_PD, 0, FX_PT | P_ | RW_ | US_);

    fx_cpu.sregs.cr4 |= 1ULL << 21; /* SMAP */
    cr_assert_eq(walk(FX_USER, 0, &gpa, &pfec), -EFAULT);
    cr_assert_eq(pfec, PFEC_P);
    cr_assert_eq(walk(FX_USER, GW_AC, &gpa, &pfec), 0, "RFLAGS.AC lifts SMAP");
    fx_cpu.sregs.cr4 |= 1ULL << 20; /* SMEP */
    cr_assert_eq(walk(FX_USER, GW_FETCH, &gpa, &pfec), -EFAULT);
    cr_assert_eq(pfec, PFEC_P | PFEC_I);
    cr_assert_eq(walk(0x30000, GW_FETCH, &gpa, &pfec), 0);
    fx_set_entry(FX_PT, 0x30, 0x30000 | P_ | RW_ | 0x8000000000000000ULL);
    cr_assert_eq(walk(0x30000, GW_FETCH, &gpa, &pfec), -EFAULT, "NX");
    cr_assert_eq(pfec, PFEC_P | PFEC_I);
    cr_assert_eq(walk(0x30000, 0, &gpa, &pfec), 0, "NX does not stop data reads");
    fx_cpu.sregs.efer &= ~(1ULL << 11); /* NXE off: bit 63 is reserved */
    cr_assert_eq(walk(0x30000, 0, &gpa, &pfec), -EFAULT);
    cr_assert_eq(pfec, PFEC_P | PFEC_RSVD);
}

Test(access, unsupported_and_outside_ram)
{
    uint64_t gpa;
    uint32_t pfec;
    fx_set_entry(FX_PD, 3, 0x10000000ULL | P_ | RW_); /* page table beyond 4 MiB of RAM */
    cr_assert_eq(walk(0x600000, 0, &gpa, &pfec), -EIO);
    fx_cpu.sregs.cr4 |= 1ULL << 12; /* LA57 */
    cr_assert_eq(walk(0x30000, 0, &gpa, &pfec), -EOPNOTSUPP);
    fx_cpu.sregs.cr4 &= ~(1ULL << 12);
    fx_cpu.sregs.efer = 0;
    cr_assert_eq(walk(0x30000, 0, &gpa, &pfec), -EOPNOTSUPP, "32-bit paging");
    fx_cpu.sregs.cr0 = 1;
    cr_assert_eq(walk(0x100030000ULL, GW_WRITE, &gpa, &pfec), 0, "paging off");
    cr_assert_eq(gpa, 0x30000);
}

static uint64_t address_of(enum cpu_mode mode, int *ss, const uint8_t *b, unsigned n)
{
    struct insn in;
    cr_assert_eq(insn_decode(b, n, mode, &in), 0);
    uint64_t lin = 0;
    cr_assert_eq(interp_operand_address(&fx_cpu, &in, &lin, ss), 0, "%s", fx_cpu.why);
    return lin;
}
#define ADDR(mode, ss, ...)                        \
    ({                                             \
        static const uint8_t b_[] = {__VA_ARGS__}; \
        address_of(mode, ss, b_, sizeof(b_));      \
    })

Test(access, operand_addresses)
{
    int ss;
    struct kvm_regs *r = &fx_cpu.regs;
    r->rbx = 0x1000, r->rcx = 3, r->rsp = 0x7000, r->rbp = 0x9000, r->r13 = 0x5000, r->r12 = 0x4000;
    cr_assert_eq(ADDR(MODE_LONG64, &ss, 0x0f, 0xc7, 0x0b), 0x1000); /* [rbx] */
    cr_assert_eq(ss, 0);
    cr_assert_eq(ADDR(MODE_LONG64, &ss, 0x0f, 0xc7, 0x4c, 0x8b, 0xf0), 0x1000 + 12 - 16); /* [rbx+rcx*4-16] */
    cr_assert_eq(ADDR(MODE_LONG64, &ss, 0x0f, 0xc7, 0x0c, 0x24), 0x7000);                 /* [rsp] */
    cr_assert_eq(ss, 1, "RSP-based: SS");
    cr_assert_eq(ADDR(MODE_LONG64, &ss, 0x0f, 0xc7, 0x4d, 0x08), 0x9008); /* [rbp+8] */
    cr_assert_eq(ss, 1, "RBP-based: SS");
    cr_assert_eq(ADDR(MODE_LONG64, &ss, 0x41, 0x0f, 0xc7, 0x4d, 0x08), 0x5008); /* [r13+8] */
    cr_assert_eq(ss, 0, "R13 is not a stack register");
    cr_assert_eq(ADDR(MODE_LONG64, &ss, 0x41, 0x0f, 0xc7, 0x0c, 0x24), 0x4000); /* [r12] */
    cr_assert_eq(ss, 0);
    cr_assert_eq(ADDR(MODE_LONG64, &ss, 0x0f, 0xc7, 0x0c, 0x25, 0x00, 0x20, 0, 0), 0x2000); /* [disp32] */
    cr_assert_eq(ADDR(MODE_LONG64, &ss, 0x0f, 0xc7, 0x0d, 0x10, 0, 0, 0), FX_CODE + 7 + 0x10, "RIP-relative");
    /* FS/GS carry bases in long mode; DS/ES/SS do not. */
    fx_cpu.sregs.gs.base = 0xffff888000000000ULL;
    fx_cpu.sregs.ds.base = 0x123;
    cr_assert_eq(ADDR(MODE_LONG64, &ss, 0x65, 0x0f, 0xc7, 0x0b), 0xffff888000001000ULL);
    cr_assert_eq(ADDR(MODE_LONG64, &ss, 0x3e, 0x0f, 0xc7, 0x0b), 0x1000);
    /* 32-bit mode: segment bases count and addresses wrap at 4 GiB. */
    fx_cpu.mode = MODE_PROT32;
    fx_cpu.sregs.ds.base = 0x10000;
    r->rbx = 0xfffffff0;
    cr_assert_eq(ADDR(MODE_PROT32, &ss, 0x0f, 0xc7, 0x4b, 0x20), 0x10010);
    fx_cpu.mode = MODE_LONG64;
    /* 67 in long mode: 32-bit address. */
    r->rbx = 0x100001000ULL;
    cr_assert_eq(ADDR(MODE_LONG64, &ss, 0x67, 0x0f, 0xc7, 0x0b), 0x1000);
}

Test(access, write_checks_every_page_first)
{
    uint8_t buf[64];
    memset(buf, 0x5a, sizeof(buf));
    memset(fx_ram + FX_NOTPRESENT - 32, 0, 32);
    cr_assert_eq(interp_write(&fx_cpu, FX_NOTPRESENT - 32, 0, buf, sizeof(buf)), 1);
    cr_assert_eq(fx_cpu.event.vector, VEC_PF);
    cr_assert_eq(fx_cpu.event.cr2, FX_NOTPRESENT);
    cr_assert_eq(fx_ram[FX_NOTPRESENT - 32], 0, "first page untouched");
    memset(&fx_cpu.event, 0, sizeof(fx_cpu.event));
    cr_assert_eq(interp_write(&fx_cpu, 0xffff800000000000ULL - 8, 0, buf, 16), 1, "non-canonical end");
    cr_assert_eq(fx_cpu.event.vector, VEC_GP);
}
