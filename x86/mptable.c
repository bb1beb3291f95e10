#include "x86/mptable.h"

#include <errno.h>
#include <string.h>

#include "core/alloc.h"
#include "x86/layout.h"
#include "core/le.h"

#define MPC_HDR_LEN 44
#define MP_PROC_LEN 20
#define MP_SMALL_LEN 8
#define MP_IRQS 24
#define APIC_VERSION 0x14
#define IOAPIC_VERSION 0x11

uint8_t mptable_checksum(const uint8_t *p, uint64_t len)
{
    uint8_t sum = 0;
    for (uint64_t i = 0; i < len; i++)
        sum += p[i];
    return sum;
}

int mptable_write(struct guest_mem *gm, int nr_cpus)
{
    if (nr_cpus < 1 || nr_cpus > MPTABLE_MAX_CPUS)
        return -EINVAL;
    uint64_t table_len = MPC_HDR_LEN + (uint64_t)nr_cpus * MP_PROC_LEN + MP_SMALL_LEN /* bus */ +
                         MP_SMALL_LEN /* ioapic */ + MP_IRQS * MP_SMALL_LEN + 2 * MP_SMALL_LEN;
    uint64_t total = 16 + table_len;
    if (EBDA_GPA + total > EBDA_END)
        return -ENOSPC;
    uint8_t *base = gm_ptr(gm, EBDA_GPA, total);
    if (!base)
        return -EFAULT;
    memset(base, 0, total);
    uint8_t ioapic_id = (uint8_t)nr_cpus;

    /* Floating pointer: the structure the guest scans for. */
    uint8_t *mpf = base;
    memcpy(mpf, "_MP_", 4);
    le_st32(mpf + 4, (uint32_t)(EBDA_GPA + 16));
    mpf[8] = 1; /* length in 16-byte units */
    mpf[9] = 4; /* spec revision 1.4 */
    mpf[10] = (uint8_t)-mptable_checksum(mpf, 16);

    uint8_t *mpc = base + 16;
    uint8_t *e = mpc + MPC_HDR_LEN;
    uint16_t count = 0;
    for (int cpu = 0; cpu < nr_cpus; cpu++, e += MP_PROC_LEN, count++) {
        e[0] = 0; /* processor */
        e[1] = (uint8_t)cpu;
        e[2] = APIC_VERSION;
        e[3] = 0x01 | (cpu == 0 ? 0x02 : 0); /* enabled, BSP */
        le_st32(e + 4, 0x600);               /* family 6 signature */
        le_st32(e + 8, 0x201);               /* FPU | APIC feature flags */
    }
    e[0] = 1; /* bus 0: ISA */
    memcpy(e + 2, "ISA   ", 6);
    e += MP_SMALL_LEN, count++;
    e[0] = 2; /* IOAPIC */
    e[1] = ioapic_id;
    e[2] = IOAPIC_VERSION;
    e[3] = 1; /* enabled */
    le_st32(e + 4, (uint32_t)IOAPIC_BASE);
    e += MP_SMALL_LEN, count++;
    /* ISA IRQ n is IOAPIC pin n: KVM's default GSI routing does the same. */
    for (int irq = 0; irq < MP_IRQS; irq++, e += MP_SMALL_LEN, count++) {
        e[0] = 3; /* I/O interrupt */
        e[1] = 0; /* INT */
        e[4] = 0; /* source bus */
        e[5] = (uint8_t)irq;
        e[6] = ioapic_id;
        e[7] = (uint8_t)irq;
    }
    /* LINT0 is the PIC's ExtINT, LINT1 is NMI, as on a PC. */
    e[0] = 4, e[1] = 3, e[5] = 0, e[6] = 0xff, e[7] = 0;
    e += MP_SMALL_LEN, count++;
    e[0] = 4, e[1] = 1, e[5] = 0, e[6] = 0xff, e[7] = 1;
    count++;

    memcpy(mpc, "PCMP", 4);
    le_st16(mpc + 4, (uint16_t)table_len);
    mpc[6] = 4;
    memcpy(mpc + 8, "EMBER   ", 8);
    memcpy(mpc + 16, "MICROVM     ", 12);
    le_st16(mpc + 34, count);
    le_st32(mpc + 36, (uint32_t)LAPIC_BASE);
    mpc[7] = (uint8_t)-mptable_checksum(mpc, table_len);
    return 0;
}
