#include "devices/serial.h"

#include <errno.h>
#include <stdlib.h>
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
    case REG_IER: return (s->lcr & LCR_DLAB) ? s->dlm : s->ier;
    case REG_IIR_FCR: {
        uint8_t iir = current_iir(s);
        /* Reading IIR acknowledges a transmitter-empty interrupt. */
        if (iir == IIR_THRI)
            s->thri_pending = 0;
        return iir | ((s->fcr & FCR_ENABLE) ? IIR_FIFO_ON : 0);
    }
    case REG_LCR: return s->lcr;
    case REG_MCR: return s->mcr;
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
    case REG_SCR: return s->scr;
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
    case REG_LCR: s->lcr = v; break;
    case REG_MCR: s->mcr = v & 0x1f; break;
    case REG_LSR:
    case REG_MSR: break; /* read-only */
    case REG_SCR: s->scr = v; break;
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

#define SERIAL_STATE_VERSION 1

int serial_save(struct serial *s, struct state_writer *w)
{
    pthread_mutex_lock(&s->lock);
    size_t mark = state_begin(w, "serial", SERIAL_STATE_VERSION);
    const uint8_t regs[] = {s->ier, s->lcr, s->mcr, s->msr, s->scr, s->dll, s->dlm, s->fcr};
    state_put_bytes(w, regs, sizeof(regs));
    state_put_u8(w, (uint8_t)s->thri_pending);
    state_put_u8(w, (uint8_t)s->irq_level);
    /* The FIFO in arrival order: the image does not depend on where the ring starts. */
    state_put_u8(w, (uint8_t)s->rx_count);
    for (unsigned i = 0; i < s->rx_count; i++)
        state_put_u8(w, s->rx[(s->rx_head + i) % SERIAL_RX_FIFO]);
    pthread_mutex_unlock(&s->lock);
    return state_end(w, mark);
}

int serial_restore(struct serial *s, struct state_reader *r, struct errmsg *err)
{
    struct state_reader b;
    uint32_t version;
    int rc = state_open(r, "serial", SERIAL_STATE_VERSION, &version, &b, err);
    if (rc)
        return rc;
    uint8_t regs[8], rx[SERIAL_RX_FIFO];
    state_get_bytes(&b, regs, sizeof(regs));
    uint8_t thri = state_get_u8(&b), level = state_get_u8(&b), count = state_get_u8(&b);
    if (count > SERIAL_RX_FIFO)
        return err_set(err, -EINVAL, "serial state: %u bytes in a %u-byte receive FIFO", count, SERIAL_RX_FIFO);
    state_get_bytes(&b, rx, count);
    rc = state_close(&b, "serial", err);
    if (rc)
        return rc;
    if ((regs[0] & ~0x0f) || (regs[2] & ~0x1f) || thri > 1 || level > 1)
        return err_set(err, -EINVAL, "serial state: register values no 16550A can hold (IER %#x, MCR %#x)", regs[0],
                       regs[2]);
    pthread_mutex_lock(&s->lock);
    s->ier = regs[0], s->lcr = regs[1], s->mcr = regs[2], s->msr = regs[3];
    s->scr = regs[4], s->dll = regs[5], s->dlm = regs[6], s->fcr = regs[7];
    s->thri_pending = thri;
    /* The line's level as last driven: the interrupt controller's own state carries it to the guest. */
    s->irq_level = level;
    memcpy(s->rx, rx, count);
    s->rx_head = 0;
    s->rx_count = count;
    pthread_mutex_unlock(&s->lock);
    return 0;
}

static int serial_realize(const struct device_env *env, const void *config, void **dev, struct errmsg *err)
{
    (void)config;
    struct serial *s = malloc(sizeof(*s));
    *dev = s;
    if (!s)
        return err_set(err, -ENOMEM, "out of memory");
    serial_init(s, env->console_fd, device_irq_line(env, SERIAL_COM1_GSI));
    int rc = device_claim_gsi(env, SERIAL_COM1_GSI, "serial", err);
    if (!rc)
        rc = device_claim_pio(env, SERIAL_COM1_BASE, SERIAL_NR_REGS, "serial", &serial_io_ops, s, err);
    return rc;
}

static void serial_metrics(void *dev, device_emit_fn *emit, void *ctx)
{
    const struct serial *s = dev;
    emit(ctx, "write_count", s->tx_bytes);
}

static void serial_teardown(void *dev)
{
    if (!dev)
        return;
    serial_destroy(dev);
    free(dev);
}

static int save_hook(void *dev, struct state_writer *w) { return serial_save(dev, w); }
static int restore_hook(void *dev, struct state_reader *r, struct errmsg *err) { return serial_restore(dev, r, err); }

const struct device_ops serial_device_ops = {
    .name = "serial",
    .realize = serial_realize,
    .save = save_hook,
    .restore = restore_hook,
    .metrics = serial_metrics,
    .teardown = serial_teardown,
};
