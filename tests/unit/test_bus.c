/* bus: range registration and lookup. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>

#include "core/bus.h"

static void nop_read(void *o, uint64_t off, uint8_t *d, uint32_t len) { (void)o, (void)off, (void)d, (void)len; }
static void nop_write(void *o, uint64_t off, const uint8_t *d, uint32_t len) { (void)o, (void)off, (void)d, (void)len; }
static const struct io_ops ops = {nop_read, nop_write};
static int dev_a, dev_b;

Test(bus, add_and_find)
{
    struct bus b = {0};
    cr_assert_eq(bus_add(&b, 0x3f8, 8, "serial", &ops, &dev_a), 0);
    cr_assert_eq(bus_add(&b, 0x60, 5, "i8042", &ops, &dev_b), 0);
    cr_assert_eq(b.nr, 2);

    const struct bus_entry *e = bus_find(&b, 0x3f8, 1);
    cr_assert_not_null(e);
    cr_assert_str_eq(e->name, "serial");
    cr_assert_eq(e->opaque, &dev_a);
    cr_assert_eq(e->ops, &ops);
    cr_assert_eq(e->base, 0x3f8);

    e = bus_find(&b, 0x64, 1);
    cr_assert_not_null(e);
    cr_assert_str_eq(e->name, "i8042");
    cr_assert_eq(e->opaque, &dev_b);

    cr_assert_null(bus_find(&b, 0x3f7, 1));
    cr_assert_null(bus_find(&b, 0x400, 1));
    cr_assert_null(bus_find(&b, 0x65, 1));
    cr_assert_null(bus_find(&b, 0x80, 1));
}

Test(bus, access_straddling_end_not_found)
{
    struct bus b = {0};
    cr_assert_eq(bus_add(&b, 0x1000, 0x10, "dev", &ops, NULL), 0);
    cr_assert_not_null(bus_find(&b, 0x100c, 4), "last dword");
    cr_assert_not_null(bus_find(&b, 0x1008, 8), "last qword");
    cr_assert_null(bus_find(&b, 0x100d, 4), "straddles the end");
    cr_assert_null(bus_find(&b, 0x100f, 2));
    cr_assert_null(bus_find(&b, 0xffe, 4), "straddles the start");
    cr_assert_null(bus_find(&b, 0x1000, 0x11), "longer than the range");
    cr_assert_null(bus_find(&b, UINT64_MAX, 8), "wrapping access");
}

Test(bus, overlap_refused)
{
    struct bus b = {0};
    cr_assert_eq(bus_add(&b, 0x1000, 0x100, "a", &ops, NULL), 0);
    cr_assert_eq(bus_add(&b, 0x1000, 0x100, "b", &ops, NULL), -EBUSY);
    cr_assert_eq(bus_add(&b, 0x10ff, 1, "b", &ops, NULL), -EBUSY);
    cr_assert_eq(bus_add(&b, 0xf00, 0x101, "b", &ops, NULL), -EBUSY);
    cr_assert_eq(bus_add(&b, 0x800, 0x1000, "b", &ops, NULL), -EBUSY, "encloses");
    cr_assert_eq(bus_add(&b, 0x1010, 0x10, "b", &ops, NULL), -EBUSY, "inside");
    cr_assert_eq(b.nr, 1);
    cr_assert_eq(bus_add(&b, 0xf00, 0x100, "below", &ops, NULL), 0);
    cr_assert_eq(bus_add(&b, 0x1100, 0x100, "above", &ops, NULL), 0);
    cr_assert_str_eq(bus_find(&b, 0xfff, 1)->name, "below");
    cr_assert_str_eq(bus_find(&b, 0x1000, 1)->name, "a");
    cr_assert_str_eq(bus_find(&b, 0x1100, 1)->name, "above");
}

Test(bus, bad_args_and_full)
{
    struct bus b = {0};
    cr_assert_eq(bus_add(&b, 0x10, 0, "x", &ops, NULL), -EINVAL);
    cr_assert_eq(bus_add(&b, 0x10, 4, "x", NULL, NULL), -EINVAL);
    cr_assert_eq(bus_add(&b, UINT64_MAX - 1, 4, "x", &ops, NULL), -EINVAL);
    cr_assert_eq(b.nr, 0);
    for (int i = 0; i < BUS_MAX_DEVICES; i++)
        cr_assert_eq(bus_add(&b, 0x100 * (uint64_t)i, 0x10, "d", &ops, NULL), 0);
    cr_assert_eq(bus_add(&b, 0x100000, 0x10, "d", &ops, NULL), -ENOSPC);
    cr_assert_eq(b.nr, BUS_MAX_DEVICES);
}
