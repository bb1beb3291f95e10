/*
 * CMOS RTC and NVRAM (MC146818) at ports 0x70 (index) and 0x71 (data).
 * Linux writes the CMOS shutdown byte (0x0F) during SMP bring-up and reads
 * the wall clock from it when no paravirtual clock gives one; without a
 * device each of those is an unclaimed exit. The clock registers read the
 * host's UTC time in BCD, 24-hour mode; there is no alarm or periodic
 * interrupt (no IRQ 8): status C reads 0. The other bytes are plain NVRAM.
 */
#ifndef EMBER_CMOS_H
#define EMBER_CMOS_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "core/device.h"
#include "core/errmsg.h"
#include "core/io.h"
#include "core/state.h"

#define CMOS_PORT 0x70
#define CMOS_NR_PORTS 2
#define CMOS_SIZE 128

struct cmos {
    pthread_mutex_t lock;
    uint8_t index;          /* last index written to 0x70, bit 7 (NMI mask) dropped */
    uint8_t nmi_disabled;   /* bit 7 of the last index write */
    uint8_t ram[CMOS_SIZE]; /* NVRAM; the clock bytes are computed on read */
    time_t (*now)(void);    /* the clock's source (tests set their own) */
};

void cmos_init(struct cmos *c, time_t (*now)(void));
void cmos_destroy(struct cmos *c);

/*
 * Saved state: everything the guest can observe besides the clock (index,
 * NMI mask, NVRAM) as one "cmos" section; restore leaves the device
 * unchanged on error.
 */
int cmos_save(struct cmos *c, struct state_writer *w);
int cmos_restore(struct cmos *c, struct state_reader *r, struct errmsg *err);

extern const struct io_ops cmos_io_ops;
/* Ports 0x70-0x71, the host's clock. */
extern const struct device_ops cmos_device_ops;

#endif
