/* CMOS RTC/NVRAM: the clock in BCD, NVRAM bytes, the index port, save/restore. */
#include <criterion/criterion.h>
#include <string.h>

#include "devices/cmos.h"

/* 2026-12-05 21:46:43 UTC, a Saturday. */
static time_t fixed_now(void) { return 1796507203; }

static uint8_t rd(struct cmos *c, uint8_t reg)
{
    uint8_t v = reg;
    cmos_io_ops.write(c, 0, &v, 1);
    cmos_io_ops.read(c, 1, &v, 1);
    return v;
}

static void wr(struct cmos *c, uint8_t reg, uint8_t val)
{
    cmos_io_ops.write(c, 0, &reg, 1);
    cmos_io_ops.write(c, 1, &val, 1);
}

Test(cmos, clock_reads_host_utc_in_bcd)
{
    struct cmos c;
    cmos_init(&c, fixed_now);
    cr_assert_eq(rd(&c, 0x00), 0x43);
    cr_assert_eq(rd(&c, 0x02), 0x46);
    cr_assert_eq(rd(&c, 0x04), 0x21);
    cr_assert_eq(rd(&c, 0x06), 0x07, "Saturday is day 7");
    cr_assert_eq(rd(&c, 0x07), 0x05);
    cr_assert_eq(rd(&c, 0x08), 0x12);
    cr_assert_eq(rd(&c, 0x09), 0x26);
    cr_assert_eq(rd(&c, 0x32), 0x20);
    cr_assert_eq(rd(&c, 0x0a) & 0x80, 0, "update-in-progress never set");
    cr_assert_eq(rd(&c, 0x0b), 0x02, "24-hour BCD");
    cr_assert_eq(rd(&c, 0x0d), 0x80, "valid RAM and time");
    /* Bit 7 of the index is the NMI mask, not part of the register number. */
    cr_assert_eq(rd(&c, 0x80 | 0x09), 0x26);
    cmos_destroy(&c);
}

Test(cmos, nvram_keeps_bytes_and_clock_ignores_writes)
{
    struct cmos c;
    cmos_init(&c, fixed_now);
    wr(&c, 0x0f, 0x0a); /* Linux's SMP warm-reset shutdown code */
    cr_assert_eq(rd(&c, 0x0f), 0x0a);
    wr(&c, 0x7f, 0x5a);
    cr_assert_eq(rd(&c, 0x7f), 0x5a);
    wr(&c, 0x00, 0x11);
    cr_assert_eq(rd(&c, 0x00), 0x43, "setting the clock is ignored");
    uint8_t v;
    cmos_io_ops.read(&c, 0, &v, 1);
    cr_assert_eq(v, 0xff, "the index port reads as open bus");
    cmos_destroy(&c);
}

Test(cmos, save_restore_round_trip_is_identical)
{
    struct cmos a, b;
    struct cmos_state s1, s2;
    cmos_init(&a, fixed_now);
    cmos_init(&b, fixed_now);
    for (unsigned i = 0x0e; i < CMOS_SIZE; i++)
        if (i != 0x32)
            wr(&a, (uint8_t)i, (uint8_t)(i * 7));
    uint8_t idx = 0x80 | 0x21;
    cmos_io_ops.write(&a, 0, &idx, 1);
    cmos_save(&a, &s1);
    cmos_restore(&b, &s1);
    cmos_save(&b, &s2);
    cr_assert_eq(memcmp(&s1, &s2, sizeof(s1)), 0);
    cr_assert_eq(b.index, 0x21);
    cr_assert_eq(b.nmi_disabled, 1);
    cr_assert_eq(rd(&b, 0x20), (uint8_t)(0x20 * 7));
    cmos_destroy(&a);
    cmos_destroy(&b);
}
