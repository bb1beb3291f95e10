#include "devices/serial.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

/* Register offsets and bits (see the 16550A data sheet / Linux serial_reg.h). */
enum { REG_DATA = 0, REG_IER, REG_IIR_FCR, REG_LCR, REG_MCR, REG_LSR, REG_MSR, REG_SCR };
#define IER_RDI 0x01
#define IER_THRI 0x02
#define IIR_NONE 0x01
#define IIR_THRI 0x02
#define IIR_RDI 0x04
#define IIR_FIFO_ON 0xc0
#define FCR_ENABLE 0x01
#define FCR_CLEAR_RX 0x02
#define LCR_DLAB 0x80
#define MCR_DTR 0x01
#define MCR_RTS 0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10
#define LSR_DR 0x01
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define MSR_CTS 0x10
#define MSR_DSR 0x20
#define MSR_RI 0x40
#define MSR_DCD 0x80

void serial_init(struct serial *s, int out_fd, struct irq_line irq)
{
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->lock, NULL);
    s->out_fd = out_fd;
    s->irq = irq;
    /* A terminal is "connected": carrier and data-set-ready asserted. */
    s->msr = MSR_DCD | MSR_DSR | MSR_CTS;
    s->mcr = MCR_OUT2;
}

void serial_destroy(struct serial *s) { pthread_mutex_destroy(&s->lock); }

static uint8_t current_iir(const struct serial *s)
{
    if ((s->ier & IER_RDI) && s->rx_count)
        return IIR_RDI;
    if ((s->ier & IER_THRI) && s->thri_pending)
        return IIR_THRI;
    return IIR_NONE;
}

/* The line follows the pending state, so the IOAPIC/PIC see one edge per event. */
static void update_irq(struct serial *s)
{
    int level = current_iir(s) != IIR_NONE;
    if (level != s->irq_level) {
        s->irq_level = level;
        irq_line_set(&s->irq, level);
    }
}

static void rx_push(struct serial *s, uint8_t byte)
{
    if (s->rx_count == SERIAL_RX_FIFO)
        return;
    s->rx[(s->rx_head + s->rx_count) % SERIAL_RX_FIFO] = byte;
    s->rx_count++;
}

static uint8_t rx_pop(struct serial *s)
{
    if (!s->rx_count)
        return 0;
    uint8_t b = s->rx[s->rx_head];
    s->rx_head = (s->rx_head + 1) % SERIAL_RX_FIFO;
    s->rx_count--;
    return b;
}

static void transmit(struct serial *s, uint8_t byte)
{
    if (s->mcr & MCR_LOOP) {
        /* Loopback: what the guest sends comes straight back (8250 self-test). */
        rx_push(s, byte);
    } else if (s->out_fd >= 0) {
        ssize_t n;
        do {
            n = write(s->out_fd, &byte, 1);
        } while (n < 0 && errno == EINTR);
        s->tx_bytes++;
    }
    s->thri_pending = 1;
}

static uint8_t read_reg(struct serial *s, uint64_t reg)
{
    switch (reg) {
    case REG_DATA:
        if (s->lcr & LCR_DLAB)
            return s->dll;
        return rx_pop(s);
    case REG_IER:
        return (s->lcr & LCR_DLAB) ? s->dlm : s->ier;
    case REG_IIR_FCR: {
        uint8_t iir = current_iir(s);
        /* Reading IIR acknowledges a transmitter-empty interrupt. */
        if (iir == IIR_THRI)
            s->thri_pending = 0;
        return iir | ((s->fcr & FCR_ENABLE) ? IIR_FIFO_ON : 0);
    }
    case REG_LCR:
        return s->lcr;
    case REG_MCR:
        return s->mcr;
    case REG_LSR:
        /* Output is written synchronously, so the transmitter is always empty. */
        return LSR_THRE | LSR_TEMT | (s->rx_count ? LSR_DR : 0);
    case REG_MSR:
        if (s->mcr & MCR_LOOP) {
            uint8_t m = 0;
            if (s->mcr & MCR_RTS)
                m |= MSR_CTS;
            if (s->mcr & MCR_DTR)
                m |= MSR_DSR;
            if (s->mcr & MCR_OUT1)
                m |= MSR_RI;
            if (s->mcr & MCR_OUT2)
                m |= MSR_DCD;
            return m;
        }
        return s->msr;
    case REG_SCR:
        return s->scr;
    }
    return 0xff;
}

static void write_reg(struct serial *s, uint64_t reg, uint8_t v)
{
    switch (reg) {
    case REG_DATA:
        if (s->lcr & LCR_DLAB)
            s->dll = v;
        else
            transmit(s, v);
        break;
    case REG_IER:
        if (s->lcr & LCR_DLAB) {
            s->dlm = v;
        } else {
            /* Enabling THRI with an empty transmitter interrupts at once (Linux relies on it). */
            if ((v & IER_THRI) && !(s->ier & IER_THRI))
                s->thri_pending = 1;
            s->ier = v & 0x0f;
        }
        break;
    case REG_IIR_FCR:
        s->fcr = v;
        if (v & FCR_CLEAR_RX)
            s->rx_count = 0;
        break;
    case REG_LCR:
        s->lcr = v;
        break;
    case REG_MCR:
        s->mcr = v & 0x1f;
        break;
    case REG_LSR:
    case REG_MSR:
        break; /* read-only */
    case REG_SCR:
        s->scr = v;
        break;
    }
}

static void serial_read(void *opaque, uint64_t offset, uint8_t *data, uint32_t len)
{
    struct serial *s = opaque;
    pthread_mutex_lock(&s->lock);
    /* Wider accesses read consecutive registers, as on a real ISA bus. */
    for (uint32_t i = 0; i < len; i++)
        data[i] = offset + i < SERIAL_NR_REGS ? read_reg(s, offset + i) : 0xff;
    update_irq(s);
    pthread_mutex_unlock(&s->lock);
}

static void serial_write(void *opaque, uint64_t offset, const uint8_t *data, uint32_t len)
{
    struct serial *s = opaque;
    pthread_mutex_lock(&s->lock);
    for (uint32_t i = 0; i < len; i++)
        if (offset + i < SERIAL_NR_REGS)
            write_reg(s, offset + i, data[i]);
    update_irq(s);
    pthread_mutex_unlock(&s->lock);
}

unsigned serial_receive(struct serial *s, const uint8_t *buf, unsigned len)
{
    pthread_mutex_lock(&s->lock);
    unsigned n = 0;
    while (n < len && s->rx_count < SERIAL_RX_FIFO)
        rx_push(s, buf[n++]);
    update_irq(s);
    pthread_mutex_unlock(&s->lock);
    return n;
}

const struct io_ops serial_io_ops = {.read = serial_read, .write = serial_write};
