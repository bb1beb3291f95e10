#include "devices/cmos.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum {
    REG_SECONDS = 0x00,
    REG_MINUTES = 0x02,
    REG_HOURS = 0x04,
    REG_WEEKDAY = 0x06,
    REG_DAY = 0x07,
    REG_MONTH = 0x08,
    REG_YEAR = 0x09,
    REG_STATUS_A = 0x0a,
    REG_STATUS_B = 0x0b,
    REG_STATUS_D = 0x0d,
    REG_CENTURY = 0x32,
};
#define STATUS_A_DEFAULT 0x26 /* 32.768 kHz time base, 1024 Hz rate; UIP never set */
#define STATUS_B_24H 0x02     /* 24-hour mode, BCD, no interrupts enabled */
#define STATUS_D_VRT 0x80     /* valid RAM and time */

static uint8_t bcd(int v) { return (uint8_t)(((v / 10) << 4) | (v % 10)); }

/* The registers computed from the clock rather than kept in NVRAM. */
static int is_clock_reg(uint8_t reg) { return reg <= REG_STATUS_D || reg == REG_CENTURY; }

static uint8_t clock_byte(const struct cmos *c, uint8_t reg)
{
    time_t t = c->now();
    struct tm tm;
    if (!gmtime_r(&t, &tm))
        memset(&tm, 0, sizeof(tm));
    switch (reg) {
    case REG_SECONDS: return bcd(tm.tm_sec > 59 ? 59 : tm.tm_sec);
    case REG_MINUTES: return bcd(tm.tm_min);
    case REG_HOURS: return bcd(tm.tm_hour);
    case REG_WEEKDAY: return bcd(tm.tm_wday + 1);
    case REG_DAY: return bcd(tm.tm_mday);
    case REG_MONTH: return bcd(tm.tm_mon + 1);
    case REG_YEAR: return bcd((tm.tm_year + 1900) % 100);
    case REG_CENTURY: return bcd((tm.tm_year + 1900) / 100);
    case REG_STATUS_A: return STATUS_A_DEFAULT;
    case REG_STATUS_B: return STATUS_B_24H;
    case REG_STATUS_D: return STATUS_D_VRT;
    }
    return 0; /* status C (no interrupt pending) and the alarm registers (no alarm) */
}

static void cmos_read(void *opaque, uint64_t offset, uint8_t *data, uint32_t len)
{
    struct cmos *c = opaque;
    memset(data, 0xff, len);
    pthread_mutex_lock(&c->lock);
    if (offset == 0) {
        data[0] = 0xff; /* the index port is write-only */
    } else {
        data[0] = is_clock_reg(c->index) ? clock_byte(c, c->index) : c->ram[c->index];
    }
    pthread_mutex_unlock(&c->lock);
}

static void cmos_write(void *opaque, uint64_t offset, const uint8_t *data, uint32_t len)
{
    struct cmos *c = opaque;
    (void)len;
    pthread_mutex_lock(&c->lock);
    if (offset == 0) {
        c->index = data[0] & 0x7f;
        c->nmi_disabled = data[0] >> 7;
    } else {
        /* Writes to the clock (setting the time) are ignored: the guest's clock is the host's. */
        if (!is_clock_reg(c->index))
            c->ram[c->index] = data[0];
    }
    pthread_mutex_unlock(&c->lock);
}

const struct io_ops cmos_io_ops = {.read = cmos_read, .write = cmos_write};

void cmos_init(struct cmos *c, time_t (*now)(void))
{
    memset(c, 0, sizeof(*c));
    pthread_mutex_init(&c->lock, NULL);
    c->now = now;
}

void cmos_destroy(struct cmos *c) { pthread_mutex_destroy(&c->lock); }

#define CMOS_STATE_VERSION 1

int cmos_save(struct cmos *c, struct state_writer *w)
{
    pthread_mutex_lock(&c->lock);
    size_t mark = state_begin(w, "cmos", CMOS_STATE_VERSION);
    state_put_u8(w, c->index);
    state_put_u8(w, c->nmi_disabled);
    state_put_bytes(w, c->ram, sizeof(c->ram));
    pthread_mutex_unlock(&c->lock);
    return state_end(w, mark);
}

int cmos_restore(struct cmos *c, struct state_reader *r, struct errmsg *err)
{
    struct state_reader b;
    uint32_t version;
    int rc = state_open(r, "cmos", CMOS_STATE_VERSION, &version, &b, err);
    if (rc)
        return rc;
    uint8_t index = state_get_u8(&b), nmi = state_get_u8(&b), ram[CMOS_SIZE];
    state_get_bytes(&b, ram, sizeof(ram));
    rc = state_close(&b, "cmos", err);
    if (rc)
        return rc;
    if (index > 0x7f || nmi > 1)
        return err_set(err, -EINVAL, "cmos state: index %#x / NMI mask %u out of range", index, nmi);
    pthread_mutex_lock(&c->lock);
    c->index = index;
    c->nmi_disabled = nmi;
    memcpy(c->ram, ram, sizeof(c->ram));
    pthread_mutex_unlock(&c->lock);
    return 0;
}

static time_t wall_clock(void) { return time(NULL); }

static int cmos_realize(const struct device_env *env, const void *config, void **dev, struct errmsg *err)
{
    (void)config;
    struct cmos *c = malloc(sizeof(*c));
    *dev = c;
    if (!c)
        return err_set(err, -ENOMEM, "out of memory");
    cmos_init(c, wall_clock);
    return device_claim_pio(env, CMOS_PORT, CMOS_NR_PORTS, "cmos", &cmos_io_ops, c, err);
}

static void cmos_teardown(void *dev)
{
    if (!dev)
        return;
    cmos_destroy(dev);
    free(dev);
}

static int save_hook(void *dev, struct state_writer *w) { return cmos_save(dev, w); }
static int restore_hook(void *dev, struct state_reader *r, struct errmsg *err) { return cmos_restore(dev, r, err); }

const struct device_ops cmos_device_ops = {
    .name = "cmos",
    .realize = cmos_realize,
    .save = save_hook,
    .restore = restore_hook,
    .teardown = cmos_teardown,
};
