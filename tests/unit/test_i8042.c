/* i8042: controller commands, keyboard ACKs, output buffer, CPU reset, Ctrl-Alt-Del. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "devices/i8042.h"
#include "tests/unit/device_fixture.h"
#include "tests/unit/state_check.h"

#define DATA 0
#define CMD 4
#define ST_OBF 0x01
#define ST_CMD 0x08

static int resets;
static void *reset_ctx_seen;
static void on_reset(void *ctx)
{
    resets++;
    reset_ctx_seen = ctx;
}

static struct irq_rec irq;
static struct i8042 k;
static int reset_token;

static void setup(void)
{
    memset(&irq, 0, sizeof(irq));
    resets = 0;
    reset_ctx_seen = NULL;
    i8042_init(&k, (struct irq_line){irq_rec_set, &irq, I8042_GSI}, on_reset, &reset_token);
}

static void teardown(void) { i8042_destroy(&k); }

TestSuite(i8042, .init = setup, .fini = teardown);

static uint8_t rd(uint64_t off) { return port_rd8(&i8042_io_ops, &k, off); }
static void wr(uint64_t off, uint8_t v) { port_wr8(&i8042_io_ops, &k, off, v); }
static uint8_t status(void) { return rd(CMD); }

/* Number of complete 1-then-0 pulses recorded. */
static int pulses(void)
{
    int p = 0;
    for (int i = 0; i + 1 < irq.n; i++)
        if (irq.levels[i] == 1 && irq.levels[i + 1] == 0)
            p++;
    return p;
}

static void expect_bytes(const uint8_t *want, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        cr_assert(status() & ST_OBF, "byte %u: OBF set", i);
        uint8_t got = rd(DATA);
        cr_assert_eq(got, want[i], "byte %u: got %#x want %#x", i, got, want[i]);
    }
    cr_assert_eq(status() & ST_OBF, 0, "buffer drained");
}

Test(i8042, initial_status)
{
    cr_assert_eq(status() & ST_OBF, 0);
    cr_assert(status() & 0x04, "system flag");
    cr_assert_eq(rd(DATA), 0, "empty buffer");
    cr_assert_eq(irq.n, 0);
}

Test(i8042, self_test)
{
    wr(CMD, 0xaa);
    cr_assert(status() & ST_CMD, "last write was a command");
    expect_bytes((const uint8_t[]){0x55}, 1);
    cr_assert_eq(irq.n, 0, "controller replies do not interrupt");
}

Test(i8042, port_tests_and_output_port)
{
    wr(CMD, 0xab);
    wr(CMD, 0xa9);
    wr(CMD, 0xd0);
    expect_bytes((const uint8_t[]){0x00, 0x00, 0x01}, 3);
}

Test(i8042, read_and_write_ctr)
{
    wr(CMD, 0x20);
    expect_bytes((const uint8_t[]){0x45}, 1); /* KBD_INT | SYS | XLATE */
    wr(CMD, 0x60);
    wr(DATA, 0x07);
    cr_assert_eq(status() & ST_CMD, 0, "last write was data");
    cr_assert_eq(status() & ST_OBF, 0, "CTR write is not ACKed");
    wr(CMD, 0x20);
    expect_bytes((const uint8_t[]){0x07}, 1);
    cr_assert_eq(k.ctr, 0x07);
}

Test(i8042, port_enable_disable_visible_in_ctr)
{
    wr(CMD, 0xad);
    wr(CMD, 0xa7);
    wr(CMD, 0x20);
    expect_bytes((const uint8_t[]){0x45 | 0x10 | 0x20}, 1);
    wr(CMD, 0xae);
    wr(CMD, 0xa8);
    wr(CMD, 0x20);
    expect_bytes((const uint8_t[]){0x45}, 1);
}

Test(i8042, reset_command_calls_back)
{
    wr(CMD, 0xfe);
    cr_assert_eq(resets, 1);
    cr_assert_eq(reset_ctx_seen, &reset_token);
    wr(DATA, 0xfe); /* on the data port it is a keyboard byte (resend), not a reset */
    cr_assert_eq(resets, 1);
}

Test(i8042, reset_without_callback)
{
    struct i8042 bare;
    i8042_init(&bare, (struct irq_line){0}, NULL, NULL);
    uint8_t v = 0xfe;
    i8042_io_ops.write(&bare, CMD, &v, 1);
    v = 0xff;
    i8042_io_ops.write(&bare, DATA, &v, 1); /* ACK with no irq callback */
    i8042_io_ops.read(&bare, DATA, &v, 1);
    cr_assert_eq(v, 0xfa);
    i8042_destroy(&bare);
}

Test(i8042, keyboard_reset_acked)
{
    wr(DATA, 0xff);
    cr_assert_eq(irq.last_gsi, I8042_GSI);
    cr_assert_geq(pulses(), 1, "keyboard bytes interrupt");
    expect_bytes((const uint8_t[]){0xfa, 0xaa}, 2);
}

Test(i8042, keyboard_identify_echo_and_others)
{
    wr(DATA, 0xf2);
    expect_bytes((const uint8_t[]){0xfa, 0xab, 0x83}, 3);
    wr(DATA, 0xee);
    expect_bytes((const uint8_t[]){0xee}, 1);
    wr(DATA, 0xf4); /* enable scanning */
    wr(DATA, 0xed); /* set LEDs ... */
    wr(DATA, 0x00); /* ... its argument */
    expect_bytes((const uint8_t[]){0xfa, 0xfa, 0xfa}, 3);
}

Test(i8042, more_queued_bytes_pulse_again)
{
    wr(DATA, 0xf2);
    int before = pulses();
    cr_assert_eq(rd(DATA), 0xfa);
    cr_assert_eq(pulses(), before + 1, "next byte signalled");
    cr_assert_eq(rd(DATA), 0xab);
    cr_assert_eq(pulses(), before + 2);
    cr_assert_eq(rd(DATA), 0x83);
    cr_assert_eq(pulses(), before + 2, "nothing left: no pulse");
}

Test(i8042, no_interrupt_when_disabled_in_ctr)
{
    wr(CMD, 0x60);
    wr(DATA, 0x44); /* XLATE | SYS, no KBD_INT */
    wr(DATA, 0xff);
    cr_assert_eq(irq.n, 0);
    expect_bytes((const uint8_t[]){0xfa, 0xaa}, 2);
    cr_assert_eq(irq.n, 0);
}

Test(i8042, write_kbd_obuf_and_swallowed_bytes)
{
    wr(CMD, 0xd2);
    wr(DATA, 0x1c);
    cr_assert_geq(pulses(), 1);
    expect_bytes((const uint8_t[]){0x1c}, 1);
    wr(CMD, 0xd1); /* output port: the data byte is consumed */
    wr(DATA, 0xdf);
    wr(CMD, 0xd3); /* aux loopback: no mouse, consumed */
    wr(DATA, 0x12);
    cr_assert_eq(status() & ST_OBF, 0);
    wr(DATA, 0xf4); /* the next data byte goes to the keyboard again */
    expect_bytes((const uint8_t[]){0xfa}, 1);
}

Test(i8042, other_offsets)
{
    uint8_t v[4];
    i8042_io_ops.read(&k, 1, v, 4);
    cr_assert_eq(v[0], 0xff);
    cr_assert_eq(v[3], 0xff);
    i8042_io_ops.read(&k, CMD, v, 2);
    cr_assert_eq(v[0], status());
    cr_assert_eq(v[1], 0xff, "wide read pads with 0xff");
    wr(2, 0xfe);
    cr_assert_eq(resets, 0);
    cr_assert_eq(status() & ST_OBF, 0);
}

Test(i8042, buffer_overflow_drops)
{
    for (int i = 0; i < I8042_BUF + 4; i++)
        wr(CMD, 0xaa);
    for (int i = 0; i < I8042_BUF; i++)
        cr_assert_eq(rd(DATA), 0x55);
    cr_assert_eq(status() & ST_OBF, 0);
}

static const uint8_t set1[] = {0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d};
static const uint8_t set2[] = {0x14, 0x11, 0xe0, 0x71, 0xe0, 0xf0, 0x71, 0xf0, 0x11, 0xf0, 0x14};

Test(i8042, ctrl_alt_del_set1_with_translation)
{
    cr_assert_eq(i8042_send_ctrl_alt_del(&k), 0);
    cr_assert_eq(pulses(), 1);
    cr_assert_eq(irq.levels[irq.n - 1], 0, "pulse ends low");
    expect_bytes(set1, sizeof(set1));
}

Test(i8042, ctrl_alt_del_set2_without_translation)
{
    wr(CMD, 0x60);
    wr(DATA, 0x05); /* KBD_INT | SYS */
    cr_assert_eq(i8042_send_ctrl_alt_del(&k), 0);
    cr_assert_eq(pulses(), 1);
    expect_bytes(set2, sizeof(set2));
}

Test(i8042, ctrl_alt_del_no_irq_when_disabled)
{
    wr(CMD, 0x60);
    wr(DATA, 0x44);
    cr_assert_eq(i8042_send_ctrl_alt_del(&k), 0);
    cr_assert_eq(irq.n, 0);
    cr_assert(status() & ST_OBF);
}

Test(i8042, ctrl_alt_del_eagain_when_full)
{
    cr_assert_eq(i8042_send_ctrl_alt_del(&k), 0);
    cr_assert_eq(i8042_send_ctrl_alt_del(&k), 0, "8 + 8 fits in 16");
    cr_assert_eq(i8042_send_ctrl_alt_del(&k), -EAGAIN);
    cr_assert_eq(k.count, 16, "nothing partial queued");
    uint8_t both[16];
    memcpy(both, set1, 8);
    memcpy(both + 8, set1, 8);
    expect_bytes(both, sizeof(both));
}

Test(i8042, ctrl_alt_del_eagain_set2)
{
    wr(CMD, 0x60);
    wr(DATA, 0x05);
    wr(CMD, 0xaa); /* one byte queued: 15 free >= 11 */
    cr_assert_eq(i8042_send_ctrl_alt_del(&k), 0);
    cr_assert_eq(i8042_send_ctrl_alt_del(&k), -EAGAIN);
    cr_assert_eq(rd(DATA), 0x55);
    expect_bytes(set2, sizeof(set2));
}

static int save_hook(void *dev, struct state_writer *w) { return i8042_save(dev, w); }
static int restore_hook(void *dev, struct state_reader *r, struct errmsg *err) { return i8042_restore(dev, r, err); }
static const struct state_hooks hooks = {save_hook, restore_hook};

/* Port 2 disabled in the CTR, bytes queued (ring wrapped), a command awaiting its data byte. */
static void drive_into_busy_state(void)
{
    wr(CMD, 0xa7);
    for (int i = 0; i < 4; i++)
        wr(DATA, 0xf2); /* identify: 3 bytes each */
    for (int i = 0; i < 10; i++)
        rd(DATA);
    for (int i = 0; i < 3; i++)
        wr(DATA, 0xf2);
    wr(CMD, 0x60);
    cr_assert(status() & ST_OBF);
}

static void same_reads(struct i8042 *a, struct i8042 *b)
{
    for (int i = 0; i < 2 * I8042_BUF; i++) {
        for (uint64_t off = 0; off <= 4; off += 4) {
            uint8_t va = 0, vb = 0;
            i8042_io_ops.read(a, off, &va, 1);
            i8042_io_ops.read(b, off, &vb, 1);
            cr_assert_eq(va, vb, "read %d offset %u: %#x vs %#x", i, (unsigned)off, va, vb);
        }
    }
}

Test(i8042, save_restore_round_trip_is_identical)
{
    drive_into_busy_state();
    struct irq_rec other_irq = {0};
    struct i8042 b;
    i8042_init(&b, (struct irq_line){irq_rec_set, &other_irq, I8042_GSI}, NULL, NULL);
    state_check_round_trip(&hooks, &k, &b);
    same_reads(&k, &b);
    /* The pending "write CTR" takes the next data byte in both. */
    uint8_t ctr = 0x45;
    i8042_io_ops.write(&k, DATA, &ctr, 1);
    i8042_io_ops.write(&b, DATA, &ctr, 1);
    uint8_t cmd = 0x20;
    i8042_io_ops.write(&k, CMD, &cmd, 1);
    i8042_io_ops.write(&b, CMD, &cmd, 1);
    same_reads(&k, &b);
    i8042_destroy(&b);
}

Test(i8042, restore_refuses_bad_images)
{
    drive_into_busy_state();
    size_t len;
    uint8_t *good = state_check_save(&hooks, &k, &len);
    struct i8042 b;
    i8042_init(&b, (struct irq_line){0}, NULL, NULL);
    const size_t body = 1 + 5 + 4 + 4; /* header of "i8042" */
    const size_t at[] = {body + 0, body + 3};
    const uint8_t val[] = {0x14, I8042_BUF + 1}; /* OBF clear with bytes queued, buffer count */
    state_check_bad_images(&hooks, &b, good, len, at, val, 2);
    uint8_t v = 0xaa;
    i8042_io_ops.write(&b, CMD, &v, 1);
    i8042_io_ops.read(&b, DATA, &v, 1);
    cr_assert_eq(v, 0x55, "still usable");
    struct state_reader r;
    struct errmsg err;
    state_reader_init(&r, good, len);
    cr_assert_eq(i8042_restore(&b, &r, &err), 0, "%s", err.text);
    i8042_destroy(&b);
    free(good);
}
