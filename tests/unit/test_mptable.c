/* mptable: Intel MP spec 1.4 floating pointer and configuration table. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "tests/unit/boot_fixture.h"
#include "x86/layout.h"
#include "x86/mptable.h"

TestSuite(mptable, .init = bfx_boot_setup, .fini = bfx_fini);

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p) { return rd16(p) | (uint32_t)rd16(p + 2) << 16; }

static uint8_t sum(const uint8_t *p, size_t len)
{
    uint8_t s = 0;
    for (size_t i = 0; i < len; i++)
        s = (uint8_t)(s + p[i]);
    return s;
}

/* Checks the whole structure for nr_cpus, as a guest would parse it. */
static void check_tables(int nr_cpus)
{
    cr_assert_eq(mptable_write(&bfx.gm, nr_cpus), 0);
    const uint8_t *mpf = bfx.ram + EBDA_GPA;
    cr_assert_eq(memcmp(mpf, "_MP_", 4), 0);
    cr_assert_eq(mpf[8], 1, "length in paragraphs");
    cr_assert_eq(mpf[9], 4, "spec 1.4");
    cr_assert_eq(sum(mpf, 16), 0, "floating pointer checksum");
    cr_assert_eq(mpf[11], 0, "feature byte 1: a configuration table follows");

    uint32_t phys = rd32(mpf + 4);
    cr_assert_geq(phys, EBDA_GPA + 16);
    cr_assert_lt(phys, EBDA_END);
    const uint8_t *mpc = bfx.ram + phys;
    cr_assert_eq(memcmp(mpc, "PCMP", 4), 0);
    uint16_t len = rd16(mpc + 4);
    cr_assert_leq(phys + len, EBDA_END, "table inside the EBDA");
    cr_assert_eq(mpc[6], 4, "spec 1.4");
    cr_assert_eq(sum(mpc, len), 0, "table checksum over %u bytes", len);
    cr_assert_eq(rd32(mpc + 36), LAPIC_BASE);
    uint16_t count = rd16(mpc + 34);

    /* Walk the entries by their type-defined lengths: they must fill the table exactly. */
    const uint8_t *e = mpc + 44, *end = mpc + len;
    int cpus = 0, bsps = 0, buses = 0, ioapics = 0, intsrc = 0, lintsrc = 0;
    uint8_t ioapic_id = 0;
    for (unsigned i = 0; i < count; i++) {
        cr_assert_lt(e, end, "entry %u past the table", i);
        switch (e[0]) {
        case 0:
            cr_assert_eq(e[1], cpus, "APIC ids in order");
            cr_assert(e[3] & 0x01, "cpu %d enabled", cpus);
            if (e[3] & 0x02) {
                bsps++;
                cr_assert_eq(cpus, 0, "only CPU 0 is the BSP");
            }
            cpus++;
            e += 20;
            break;
        case 1:
            cr_assert_eq(memcmp(e + 2, "ISA   ", 6), 0);
            buses++;
            e += 8;
            break;
        case 2:
            ioapic_id = e[1];
            cr_assert(e[3] & 1, "IOAPIC enabled");
            cr_assert_eq(rd32(e + 4), IOAPIC_BASE);
            ioapics++;
            e += 8;
            break;
        case 3:
            cr_assert_eq(e[5], intsrc, "ISA IRQ %d", intsrc);
            cr_assert_eq(e[7], intsrc, "goes to IOAPIC pin %d", intsrc);
            cr_assert_eq(e[6], ioapic_id, "to the IOAPIC declared before");
            intsrc++;
            e += 8;
            break;
        case 4:
            lintsrc++;
            e += 8;
            break;
        default: cr_assert_fail("unknown entry type %u", e[0]);
        }
    }
    cr_assert_eq(e, end, "entries fill the table");
    cr_assert_eq(cpus, nr_cpus);
    cr_assert_eq(bsps, 1);
    cr_assert_eq(buses, 1);
    cr_assert_eq(ioapics, 1);
    cr_assert_geq(ioapic_id, nr_cpus, "IOAPIC id distinct from the CPUs' APIC ids");
    cr_assert_eq(intsrc, 24);
    cr_assert_eq(lintsrc, 2);
    cr_assert_eq(count, nr_cpus + 28);
    cr_assert_eq(bfx.ram[EBDA_GPA - 1], 0xee, "nothing written below the EBDA");
}

Test(mptable, one_cpu) { check_tables(1); }
Test(mptable, two_cpus) { check_tables(2); }
Test(mptable, thirty_two_cpus) { check_tables(32); }

Test(mptable, rewrite_with_fewer_cpus)
{
    check_tables(32);
    check_tables(3);
}

Test(mptable, bad_cpu_counts)
{
    cr_assert_eq(mptable_write(&bfx.gm, 0), -EINVAL);
    cr_assert_eq(mptable_write(&bfx.gm, 33), -EINVAL);
    cr_assert_eq(mptable_write(&bfx.gm, -1), -EINVAL);
    cr_assert_eq(bfx.ram[EBDA_GPA], 0xee, "nothing written");
}

Test(mptable, memory_without_ebda)
{
    struct guest_mem small;
    static uint8_t tiny[0x9f000];
    cr_assert_eq(guest_mem_init_with(&small, sizeof(tiny), tiny), 0);
    cr_assert_eq(mptable_write(&small, 1), -EFAULT);
}

Test(mptable, checksum_helper)
{
    const uint8_t b[] = {1, 2, 3, 250};
    cr_assert_eq(mptable_checksum(b, 4), 0);
    cr_assert_eq(mptable_checksum(b, 3), 6);
    cr_assert_eq(mptable_checksum(b, 0), 0);
}
