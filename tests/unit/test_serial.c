/* serial: 16550A registers, interrupts, receive FIFO and loopback. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "devices/serial.h"
#include "tests/unit/device_fixture.h"
#include "tests/unit/state_check.h"

enum { RBR = 0, IER = 1, IIR = 2, FCR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7 };

static struct irq_rec irq;
static struct serial s;
static int pipefd[2];

static void setup(void)
{
    memset(&irq, 0, sizeof(irq));
    cr_assert_eq(pipe(pipefd), 0);
    cr_assert_eq(fcntl(pipefd[0], F_SETFL, O_NONBLOCK), 0);
    serial_init(&s, pipefd[1], (struct irq_line){irq_rec_set, &irq, SERIAL_COM1_GSI});
}

static void teardown(void)
{
    serial_destroy(&s);
    close(pipefd[0]);
    close(pipefd[1]);
}

TestSuite(serial, .init = setup, .fini = teardown);

static uint8_t rd(uint64_t reg) { return port_rd8(&serial_io_ops, &s, reg); }
static void wr(uint64_t reg, uint8_t v) { port_wr8(&serial_io_ops, &s, reg, v); }

/* Current line level as the fake saw it (0 if never set). */
static int line(void) { return irq.n ? irq.levels[irq.n - 1] : 0; }

static ssize_t drain(char *buf, size_t max)
{
    ssize_t n = read(pipefd[0], buf, max);
    return n < 0 ? 0 : n;
}

Test(serial, thr_write_goes_to_fd)
{
    wr(RBR, 'h');
    wr(RBR, 'i');
    wr(RBR, '\n');
    char buf[16];
    cr_assert_eq(drain(buf, sizeof(buf)), 3);
    cr_assert_eq(memcmp(buf, "hi\n", 3), 0);
    cr_assert_eq(s.tx_bytes, 3);
    cr_assert_eq(irq.n, 0, "no interrupt while IER is 0");
}

Test(serial, lsr_transmitter_empty)
{
    cr_assert_eq(rd(LSR), 0x60, "THRE | TEMT, no data");
    wr(RBR, 'x');
    cr_assert_eq(rd(LSR), 0x60);
    wr(LSR, 0x00); /* read-only */
    cr_assert_eq(rd(LSR), 0x60);
}

Test(serial, dlab_selects_divisor_latch)
{
    wr(IER, 0x05);
    wr(LCR, 0x83); /* DLAB, 8N1 */
    wr(RBR, 0x01); /* DLL: 115200 baud */
    wr(IER, 0x00); /* DLM */
    cr_assert_eq(rd(RBR), 0x01);
    cr_assert_eq(rd(IER), 0x00);
    wr(IER, 0x12);
    cr_assert_eq(rd(IER), 0x12);
    cr_assert_eq(rd(LCR), 0x83);
    char buf[4];
    cr_assert_eq(drain(buf, sizeof(buf)), 0, "divisor writes are not output");
    wr(LCR, 0x03);
    cr_assert_eq(rd(IER), 0x05, "IER untouched by DLM writes");
    cr_assert_eq(s.dll, 0x01);
    cr_assert_eq(s.dlm, 0x12);
    wr(RBR, 'z');
    cr_assert_eq(drain(buf, sizeof(buf)), 1, "DLAB clear: THR again");
    cr_assert_eq(buf[0], 'z');
}

Test(serial, scratch_register)
{
    wr(SCR, 0x5a);
    cr_assert_eq(rd(SCR), 0x5a);
    wr(SCR, 0xa5);
    cr_assert_eq(rd(SCR), 0xa5);
}

Test(serial, thri_enable_raises_and_iir_read_acknowledges)
{
    cr_assert_eq(rd(IIR), 0x01, "nothing pending");
    wr(IER, 0x02);
    cr_assert_eq(line(), 1, "THRI enable with an empty transmitter interrupts");
    cr_assert_eq(irq.last_gsi, SERIAL_COM1_GSI);
    cr_assert_eq(rd(IIR), 0x02);
    cr_assert_eq(line(), 0, "IIR read acknowledged THRI");
    cr_assert_eq(rd(IIR), 0x01);
    int n = irq.n;
    wr(IER, 0x02); /* already enabled: no new interrupt */
    cr_assert_eq(irq.n, n);
    wr(RBR, 'a');
    cr_assert_eq(line(), 1, "transmitting re-arms THRI");
    cr_assert_eq(rd(IIR), 0x02);
    cr_assert_eq(line(), 0);
    /* Edges only: one raise and one lower per event. */
    cr_assert_eq(irq.n, 4);
    cr_assert_eq(irq.levels[0], 1);
    cr_assert_eq(irq.levels[1], 0);
    cr_assert_eq(irq.levels[2], 1);
    cr_assert_eq(irq.levels[3], 0);
}

Test(serial, disabling_ier_lowers_line)
{
    wr(IER, 0x02);
    cr_assert_eq(line(), 1);
    wr(IER, 0x00);
    cr_assert_eq(line(), 0);
    cr_assert_eq(rd(IIR), 0x01);
}

Test(serial, receive_sets_dr_and_interrupts)
{
    wr(IER, 0x01);
    cr_assert_eq(irq.n, 0);
    cr_assert_eq(serial_receive(&s, (const uint8_t *)"abc", 3), 3);
    cr_assert_eq(line(), 1);
    cr_assert_eq(rd(LSR), 0x61);
    cr_assert_eq(rd(IIR), 0x04);
    cr_assert_eq(rd(RBR), 'a');
    cr_assert_eq(rd(RBR), 'b');
    cr_assert_eq(line(), 1, "still data");
    cr_assert_eq(rd(RBR), 'c');
    cr_assert_eq(line(), 0, "FIFO drained");
    cr_assert_eq(rd(LSR), 0x60);
    cr_assert_eq(rd(IIR), 0x01);
    cr_assert_eq(rd(RBR), 0, "empty FIFO reads 0");
}

Test(serial, receive_without_rdi_only_sets_dr)
{
    cr_assert_eq(serial_receive(&s, (const uint8_t *)"q", 1), 1);
    cr_assert_eq(irq.n, 0);
    cr_assert_eq(rd(LSR) & 0x01, 0x01);
    cr_assert_eq(rd(IIR), 0x01);
    wr(IER, 0x01);
    cr_assert_eq(line(), 1, "enabling RDI with data pending interrupts");
    cr_assert_eq(rd(RBR), 'q');
    cr_assert_eq(line(), 0);
}

Test(serial, rdi_has_priority_over_thri)
{
    wr(IER, 0x03);
    serial_receive(&s, (const uint8_t *)"x", 1);
    cr_assert_eq(rd(IIR), 0x04);
    cr_assert_eq(rd(IIR), 0x04, "RDI is not acknowledged by IIR");
    cr_assert_eq(rd(RBR), 'x');
    cr_assert_eq(rd(IIR), 0x02, "THRI still pending underneath");
    cr_assert_eq(rd(IIR), 0x01);
    cr_assert_eq(line(), 0);
}

Test(serial, fifo_full_accepts_fewer)
{
    uint8_t in[100];
    for (int i = 0; i < 100; i++)
        in[i] = (uint8_t)(i + 1);
    cr_assert_eq(serial_receive(&s, in, 100), SERIAL_RX_FIFO);
    cr_assert_eq(serial_receive(&s, in, 1), 0);
    for (int i = 0; i < 10; i++)
        cr_assert_eq(rd(RBR), i + 1);
    cr_assert_eq(serial_receive(&s, in + 64, 36), 10, "room for 10 again");
    for (int i = 10; i < 74; i++)
        cr_assert_eq(rd(RBR), i + 1, "byte %d in order across the ring's wrap", i);
    cr_assert_eq(rd(LSR) & 1, 0);
}

Test(serial, fcr_clears_rx_and_fifo_bits_in_iir)
{
    serial_receive(&s, (const uint8_t *)"abc", 3);
    wr(FCR, 0x01);
    cr_assert_eq(rd(IIR), 0xc1, "FIFOs enabled");
    cr_assert_eq(rd(LSR) & 1, 1, "enable alone keeps data");
    wr(FCR, 0x03);
    cr_assert_eq(rd(LSR) & 1, 0, "clear RX");
    cr_assert_eq(rd(IIR), 0xc1);
    wr(IER, 0x02);
    cr_assert_eq(rd(IIR), 0xc2);
    wr(FCR, 0x00);
    cr_assert_eq(rd(IIR) & 0xc0, 0, "FIFOs off");
}

Test(serial, loopback_echoes_and_maps_msr)
{
    cr_assert_eq(rd(MSR), 0xb0, "DCD | DSR | CTS out of loopback");
    wr(MCR, 0x10);
    cr_assert_eq(rd(MSR), 0x00);
    wr(MCR, 0x10 | 0x01);
    cr_assert_eq(rd(MSR), 0x20, "DTR -> DSR");
    wr(MCR, 0x10 | 0x02);
    cr_assert_eq(rd(MSR), 0x10, "RTS -> CTS");
    wr(MCR, 0x10 | 0x04);
    cr_assert_eq(rd(MSR), 0x40, "OUT1 -> RI");
    wr(MCR, 0x10 | 0x08);
    cr_assert_eq(rd(MSR), 0x80, "OUT2 -> DCD");
    wr(MCR, 0x1f);
    cr_assert_eq(rd(MSR), 0xf0);

    wr(RBR, 0x5a);
    wr(RBR, 0xa5);
    char buf[4];
    cr_assert_eq(drain(buf, sizeof(buf)), 0, "loopback output stays inside");
    cr_assert_eq(s.tx_bytes, 0);
    cr_assert_eq(rd(LSR) & 1, 1);
    cr_assert_eq(rd(RBR), 0x5a);
    cr_assert_eq(rd(RBR), 0xa5);

    wr(MCR, 0x08);
    cr_assert_eq(rd(MSR), 0xb0, "back to the modem lines");
    wr(RBR, 'o');
    cr_assert_eq(drain(buf, sizeof(buf)), 1);
}

Test(serial, mcr_keeps_five_bits)
{
    wr(MCR, 0xff);
    cr_assert_eq(rd(MCR), 0x1f);
}

Test(serial, offsets_past_registers_harmless)
{
    wr(SCR, 0x33);
    wr(8, 0x44);
    wr(100, 0x44);
    cr_assert_eq(rd(8), 0xff);
    cr_assert_eq(rd(UINT64_MAX), 0xff);
    cr_assert_eq(rd(SCR), 0x33);
    char buf[4];
    cr_assert_eq(drain(buf, sizeof(buf)), 0);

    /* A wide access crossing the end reads the registers it covers, then 0xff. */
    uint8_t v[4];
    serial_io_ops.read(&s, 6, v, 4);
    cr_assert_eq(v[0], 0xb0);
    cr_assert_eq(v[1], 0x33);
    cr_assert_eq(v[2], 0xff);
    cr_assert_eq(v[3], 0xff);
    const uint8_t w[4] = {0x77, 0x88, 0x99, 0xaa};
    serial_io_ops.write(&s, 6, w, 4);
    cr_assert_eq(rd(SCR), 0x88);
    cr_assert_eq(irq.n, 0);
}

Test(serial, no_output_fd)
{
    struct serial quiet;
    serial_init(&quiet, -1, (struct irq_line){0});
    uint8_t v = 'x';
    serial_io_ops.write(&quiet, 0, &v, 1);
    v = 0x02;
    serial_io_ops.write(&quiet, 1, &v, 1); /* no irq callback: must not crash */
    serial_io_ops.read(&quiet, 2, &v, 1);
    cr_assert_eq(v, 0x02);
    serial_destroy(&quiet);
}

static int save_hook(void *dev, struct state_writer *w) { return serial_save(dev, w); }
static int restore_hook(void *dev, struct state_reader *r, struct errmsg *err) { return serial_restore(dev, r, err); }
static const struct state_hooks hooks = {save_hook, restore_hook};

/* Divisor, line settings, scratch, FIFO bytes (ring wrapped), RDI pending with the line up. */
static void drive_into_busy_state(void)
{
    wr(LCR, 0x80);
    wr(RBR, 0x0c);
    wr(IER, 0x01);
    wr(LCR, 0x1b);
    wr(SCR, 0x5a);
    wr(FCR, 0x01);
    wr(MCR, 0x0b);
    uint8_t in[SERIAL_RX_FIFO];
    for (unsigned i = 0; i < sizeof(in); i++)
        in[i] = (uint8_t)('a' + i % 26);
    cr_assert_eq(serial_receive(&s, in, 60), 60);
    for (int i = 0; i < 50; i++)
        rd(RBR);
    cr_assert_eq(serial_receive(&s, in, 20), 20);
    wr(IER, 0x03);
    cr_assert_eq(line(), 1, "receive interrupt pending");
}

Test(serial, save_restore_round_trip_is_identical)
{
    drive_into_busy_state();
    struct irq_rec other_irq = {0};
    struct serial b;
    serial_init(&b, -1, (struct irq_line){irq_rec_set, &other_irq, SERIAL_COM1_GSI});
    state_check_round_trip(&hooks, &s, &b);
    /* From here on the guest sees the same device in both. */
    for (int round = 0; round < 40; round++) {
        for (uint64_t reg = 0; reg < SERIAL_NR_REGS; reg++) {
            uint8_t va = 0, vb = 0;
            serial_io_ops.read(&s, reg, &va, 1);
            serial_io_ops.read(&b, reg, &vb, 1);
            cr_assert_eq(va, vb, "round %d register %u: %#x vs %#x", round, (unsigned)reg, va, vb);
        }
    }
    cr_assert_eq(rd(LSR) & 0x01, 0, "FIFO drained in both");
    serial_destroy(&b);
}

Test(serial, restore_refuses_bad_images)
{
    drive_into_busy_state();
    size_t len;
    uint8_t *good = state_check_save(&hooks, &s, &len);
    struct serial b;
    serial_init(&b, -1, (struct irq_line){0});
    const size_t body = 1 + 6 + 4 + 4; /* header of "serial" */
    const size_t at[] = {body + 0, body + 2, body + 8, body + 9, body + 10};
    const uint8_t val[] = {0xff, 0xe0, 2, 7, SERIAL_RX_FIFO + 1}; /* IER, MCR, THRI flag, IRQ level, FIFO count */
    state_check_bad_images(&hooks, &b, good, len, at, val, 5);
    /* Still usable, and a good image still restores. */
    uint8_t v = 0x42;
    serial_io_ops.write(&b, SCR, &v, 1);
    serial_io_ops.read(&b, SCR, &v, 1);
    cr_assert_eq(v, 0x42);
    struct state_reader r;
    struct errmsg err;
    state_reader_init(&r, good, len);
    cr_assert_eq(serial_restore(&b, &r, &err), 0, "%s", err.text);
    serial_destroy(&b);
    free(good);
}
