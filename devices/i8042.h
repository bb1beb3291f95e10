/*
 * i8042 keyboard controller, reduced to what a microVM needs: enough of the
 * controller protocol for Linux's i8042/atkbd drivers to probe, CPU reset
 * (command 0xFE) and Ctrl-Alt-Del injection.
 */
#ifndef EMBER_I8042_H
#define EMBER_I8042_H

#include <pthread.h>
#include <stdint.h>

#include "core/device.h"
#include "core/errmsg.h"
#include "core/io.h"
#include "core/state.h"

#define I8042_DATA_PORT 0x60
#define I8042_CMD_PORT 0x64
#define I8042_GSI 1
#define I8042_BUF 16

struct i8042 {
    pthread_mutex_t lock;
    uint8_t status;
    uint8_t ctr;         /* controller configuration ("command byte") */
    uint8_t pending_cmd; /* controller command awaiting its data byte */
    uint8_t buf[I8042_BUF];
    unsigned head, count;
    struct irq_line irq;
    void (*reset)(void *ctx);
    void *reset_ctx;
};

void i8042_init(struct i8042 *k, struct irq_line irq, void (*reset)(void *), void *ctx);
void i8042_destroy(struct i8042 *k);
/* Queue the Ctrl-Alt-Del make/break sequence and interrupt the guest. */
int i8042_send_ctrl_alt_del(struct i8042 *k);

/*
 * Guest-visible state (status, command byte, pending command, output
 * buffer) as one "i8042" section; restore leaves the device unchanged on error.
 */
int i8042_save(struct i8042 *k, struct state_writer *w);
int i8042_restore(struct i8042 *k, struct state_reader *r, struct errmsg *err);

/* Both ports are one device: the bus range is 0x60..0x64, offsets 0 and 4. */
extern const struct io_ops i8042_io_ops;
/* Ports 0x60-0x64, GSI 1; command 0xFE calls the env's request_reset. */
extern const struct device_ops i8042_device_ops;

#endif
