/* CMOS RTC/NVRAM: the clock in BCD, NVRAM bytes, the index port, save/restore. */
#include <criterion/criterion.h>
#include <string.h>

#include "devices/cmos.h"
#include "tests/unit/state_check.h"

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

static int save_hook(void *dev, struct state_writer *w) { return cmos_save(dev, w); }
static int restore_hook(void *dev, struct state_reader *r, struct errmsg *err) { return cmos_restore(dev, r, err); }
static const struct state_hooks hooks = {save_hook, restore_hook};

static void fill(struct cmos *c)
{
    for (unsigned i = 0x0e; i < CMOS_SIZE; i++)
        if (i != 0x32)
            wr(c, (uint8_t)i, (uint8_t)(i * 7));
    uint8_t idx = 0x80 | 0x21;
    cmos_io_ops.write(c, 0, &idx, 1);
}

Test(cmos, save_restore_round_trip_is_identical)
{
    struct cmos a, b;
    cmos_init(&a, fixed_now);
    cmos_init(&b, fixed_now);
    fill(&a);
    state_check_round_trip(&hooks, &a, &b);
    cr_assert_eq(b.index, 0x21);
    cr_assert_eq(b.nmi_disabled, 1);
    /* The data port reads the restored index first, then whatever the guest selects. */
    uint8_t va, vb;
    cmos_io_ops.read(&a, 1, &va, 1);
    cmos_io_ops.read(&b, 1, &vb, 1);
    cr_assert_eq(va, vb);
    cr_assert_eq(vb, (uint8_t)(0x21 * 7));
    for (unsigned i = 0; i < CMOS_SIZE; i++)
        cr_assert_eq(rd(&a, (uint8_t)i), rd(&b, (uint8_t)i), "register %#x", i);
    cr_assert_eq(rd(&b, 0x20), (uint8_t)(0x20 * 7));
    cmos_destroy(&a);
    cmos_destroy(&b);
}

Test(cmos, restore_refuses_bad_images)
{
    struct cmos a, b;
    cmos_init(&a, fixed_now);
    cmos_init(&b, fixed_now);
    fill(&a);
    size_t len;
    uint8_t *good = state_check_save(&hooks, &a, &len);
    const size_t body = 1 + 4 + 4 + 4; /* header of "cmos" */
    const size_t at[] = {body + 0, body + 1};
    const uint8_t val[] = {0x80, 2}; /* index with the NMI bit, NMI mask */
    state_check_bad_images(&hooks, &b, good, len, at, val, 2);
    wr(&b, 0x30, 0x99);
    cr_assert_eq(rd(&b, 0x30), 0x99, "still usable");
    struct state_reader r;
    struct errmsg err;
    state_reader_init(&r, good, len);
    cr_assert_eq(cmos_restore(&b, &r, &err), 0, "%s", err.text);
    cr_assert_eq(rd(&b, 0x30), (uint8_t)(0x30 * 7));
    free(good);
    cmos_destroy(&a);
    cmos_destroy(&b);
}
