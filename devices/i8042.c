#include "devices/i8042.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define ST_OBF 0x01
#define ST_SYS 0x04
#define ST_CMD 0x08
#define ST_UNLOCKED 0x10
#define CTR_KBD_INT 0x01
#define CTR_SYS 0x04
#define CTR_KBD_DIS 0x10
#define CTR_AUX_DIS 0x20
#define CTR_XLATE 0x40

#define CMD_READ_CTR 0x20
#define CMD_WRITE_CTR 0x60
#define CMD_AUX_DISABLE 0xa7
#define CMD_AUX_ENABLE 0xa8
#define CMD_AUX_TEST 0xa9
#define CMD_AUX_LOOP 0xd3
#define CMD_SELF_TEST 0xaa
#define CMD_KBD_TEST 0xab
#define CMD_KBD_DISABLE 0xad
#define CMD_KBD_ENABLE 0xae
#define CMD_READ_OUTPORT 0xd0
#define CMD_WRITE_OUTPORT 0xd1
#define CMD_WRITE_KBD_OBUF 0xd2
#define CMD_RESET_CPU 0xfe

#define KBD_ACK 0xfa

void i8042_init(struct i8042 *k, struct irq_line irq, void (*reset)(void *), void *ctx)
{
    memset(k, 0, sizeof(*k));
    pthread_mutex_init(&k->lock, NULL);
    k->irq = irq;
    k->reset = reset;
    k->reset_ctx = ctx;
    k->status = ST_SYS | ST_UNLOCKED;
    k->ctr = CTR_KBD_INT | CTR_SYS | CTR_XLATE;
}

void i8042_destroy(struct i8042 *k) { pthread_mutex_destroy(&k->lock); }

static void push(struct i8042 *k, uint8_t b)
{
    if (k->count == I8042_BUF)
        return;
    k->buf[(k->head + k->count) % I8042_BUF] = b;
    k->count++;
    k->status |= ST_OBF;
}

/* Keyboard-originated bytes interrupt the guest if it enabled that. */
static void push_kbd(struct i8042 *k, uint8_t b)
{
    push(k, b);
    if (k->ctr & CTR_KBD_INT)
        irq_line_pulse(&k->irq);
}

static uint8_t pop(struct i8042 *k)
{
    if (!k->count)
        return 0;
    uint8_t b = k->buf[k->head];
    k->head = (k->head + 1) % I8042_BUF;
    if (--k->count == 0)
        k->status &= ~ST_OBF;
    else if (k->ctr & CTR_KBD_INT)
        irq_line_pulse(&k->irq); /* more queued: signal the next byte */
    return b;
}

/* Returns 1 when the guest asked for a CPU reset. */
static int command(struct i8042 *k, uint8_t cmd)
{
    switch (cmd) {
    case CMD_READ_CTR: push(k, k->ctr); break;
    case CMD_WRITE_CTR:
    case CMD_WRITE_OUTPORT:
    case CMD_WRITE_KBD_OBUF: k->pending_cmd = cmd; break;
    case CMD_SELF_TEST: push(k, 0x55); break;
    case CMD_KBD_TEST:
    case CMD_AUX_TEST: push(k, 0x00); break;
    case CMD_READ_OUTPORT:
        push(k, 0x01); /* A20 gate on, CPU not held in reset */
        break;
    case CMD_RESET_CPU: return 1;
    /* Port enable/disable is visible in the CTR: Linux reads it back to check. */
    case CMD_KBD_DISABLE: k->ctr |= CTR_KBD_DIS; break;
    case CMD_KBD_ENABLE: k->ctr &= ~CTR_KBD_DIS; break;
    case CMD_AUX_DISABLE: k->ctr |= CTR_AUX_DIS; break;
    case CMD_AUX_ENABLE: k->ctr &= ~CTR_AUX_DIS; break;
    case CMD_AUX_LOOP:
        k->pending_cmd = cmd; /* its data byte goes to a mouse we do not have */
        break;
    default: break; /* accepted and ignored: nothing to model */
    }
    return 0;
}

static void data_write(struct i8042 *k, uint8_t v)
{
    uint8_t cmd = k->pending_cmd;
    k->pending_cmd = 0;
    switch (cmd) {
    case CMD_WRITE_CTR: k->ctr = v; return;
    case CMD_WRITE_OUTPORT:
    case CMD_AUX_LOOP: return;
    case CMD_WRITE_KBD_OBUF: push_kbd(k, v); return;
    }
    /* A byte for the keyboard itself: acknowledge like an AT keyboard. */
    switch (v) {
    case 0xff: /* reset */
        push_kbd(k, KBD_ACK);
        push_kbd(k, 0xaa); /* self-test passed */
        break;
    case 0xf2: /* identify */
        push_kbd(k, KBD_ACK);
        push_kbd(k, 0xab);
        push_kbd(k, 0x83);
        break;
    case 0xee: /* echo */ push_kbd(k, 0xee); break;
    default: push_kbd(k, KBD_ACK); break;
    }
}

static void i8042_read(void *opaque, uint64_t offset, uint8_t *data, uint32_t len)
{
    struct i8042 *k = opaque;
    pthread_mutex_lock(&k->lock);
    uint8_t v = 0xff;
    if (offset == 0)
        v = pop(k);
    else if (offset == 4)
        v = k->status;
    pthread_mutex_unlock(&k->lock);
    memset(data, 0xff, len);
    data[0] = v;
}

static void i8042_write(void *opaque, uint64_t offset, const uint8_t *data, uint32_t len)
{
    struct i8042 *k = opaque;
    (void)len;
    int reset = 0;
    pthread_mutex_lock(&k->lock);
    if (offset == 0) {
        k->status &= ~ST_CMD;
        data_write(k, data[0]);
    } else if (offset == 4) {
        k->status |= ST_CMD;
        reset = command(k, data[0]);
    }
    pthread_mutex_unlock(&k->lock);
    /* Outside the lock: the reset callback stops the whole VM. */
    if (reset && k->reset)
        k->reset(k->reset_ctx);
}

int i8042_send_ctrl_alt_del(struct i8042 *k)
{
    /*
     * Ctrl, Alt, Del pressed, then released. With translation on (the PC
     * default, CTR bit 6) the controller hands the guest scan code set 1,
     * otherwise the keyboard's own set 2.
     */
    static const uint8_t set1[] = {0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d};
    static const uint8_t set2[] = {0x14, 0x11, 0xe0, 0x71, 0xe0, 0xf0, 0x71, 0xf0, 0x11, 0xf0, 0x14};
    pthread_mutex_lock(&k->lock);
    const uint8_t *seq = (k->ctr & CTR_XLATE) ? set1 : set2;
    unsigned n = (k->ctr & CTR_XLATE) ? sizeof(set1) : sizeof(set2);
    int rc = 0;
    if (I8042_BUF - k->count < n) {
        rc = -EAGAIN;
    } else {
        for (unsigned i = 0; i < n; i++)
            push(k, seq[i]);
        if (k->ctr & CTR_KBD_INT)
            irq_line_pulse(&k->irq);
    }
    pthread_mutex_unlock(&k->lock);
    return rc;
}

#define I8042_STATE_VERSION 1

int i8042_save(struct i8042 *k, struct state_writer *w)
{
    pthread_mutex_lock(&k->lock);
    size_t mark = state_begin(w, "i8042", I8042_STATE_VERSION);
    state_put_u8(w, k->status);
    state_put_u8(w, k->ctr);
    state_put_u8(w, k->pending_cmd);
    state_put_u8(w, (uint8_t)k->count);
    for (unsigned i = 0; i < k->count; i++)
        state_put_u8(w, k->buf[(k->head + i) % I8042_BUF]);
    pthread_mutex_unlock(&k->lock);
    return state_end(w, mark);
}

int i8042_restore(struct i8042 *k, struct state_reader *r, struct errmsg *err)
{
    struct state_reader b;
    uint32_t version;
    int rc = state_open(r, "i8042", I8042_STATE_VERSION, &version, &b, err);
    if (rc)
        return rc;
    uint8_t status = state_get_u8(&b), ctr = state_get_u8(&b), pending = state_get_u8(&b);
    uint8_t count = state_get_u8(&b), buf[I8042_BUF];
    if (count > I8042_BUF)
        return err_set(err, -EINVAL, "i8042 state: %u bytes in a %u-byte output buffer", count, I8042_BUF);
    state_get_bytes(&b, buf, count);
    rc = state_close(&b, "i8042", err);
    if (rc)
        return rc;
    if (!(status & ST_OBF) != !count)
        return err_set(err, -EINVAL, "i8042 state: the output-buffer-full bit disagrees with %u queued bytes", count);
    pthread_mutex_lock(&k->lock);
    k->status = status;
    k->ctr = ctr;
    k->pending_cmd = pending;
    memcpy(k->buf, buf, count);
    k->head = 0;
    k->count = count;
    pthread_mutex_unlock(&k->lock);
    return 0;
}

const struct io_ops i8042_io_ops = {.read = i8042_read, .write = i8042_write};

static int i8042_realize(const struct device_env *env, const void *config, void **dev, struct errmsg *err)
{
    (void)config;
    struct i8042 *k = malloc(sizeof(*k));
    *dev = k;
    if (!k)
        return err_set(err, -ENOMEM, "out of memory");
    i8042_init(k, device_irq_line(env, I8042_GSI), env->request_reset, env->ctx);
    int rc = device_claim_gsi(env, I8042_GSI, "i8042", err);
    if (!rc)
        rc = device_claim_pio(env, I8042_DATA_PORT, I8042_CMD_PORT - I8042_DATA_PORT + 1, "i8042", &i8042_io_ops, k,
                              err);
    return rc;
}

static void i8042_teardown(void *dev)
{
    if (!dev)
        return;
    i8042_destroy(dev);
    free(dev);
}

static int save_hook(void *dev, struct state_writer *w) { return i8042_save(dev, w); }
static int restore_hook(void *dev, struct state_reader *r, struct errmsg *err) { return i8042_restore(dev, r, err); }

const struct device_ops i8042_device_ops = {
    .name = "i8042",
    .realize = i8042_realize,
    .save = save_hook,
    .restore = restore_hook,
    .teardown = i8042_teardown,
};
