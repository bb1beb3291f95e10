/*
 * 8250/16550A UART (COM1). Output goes to a host fd byte by byte; input is
 * queued by the event loop and raised to the guest as receive interrupts.
 */
#ifndef EMBER_SERIAL_H
#define EMBER_SERIAL_H

#include <pthread.h>
#include <stdint.h>

#include "core/device.h"
#include "core/errmsg.h"
#include "core/io.h"
#include "core/state.h"

#define SERIAL_COM1_BASE 0x3f8
#define SERIAL_COM1_GSI 4
#define SERIAL_NR_REGS 8
#define SERIAL_RX_FIFO 64

struct serial {
    pthread_mutex_t lock;
    uint8_t ier, lcr, mcr, lsr_extra, msr, scr, dll, dlm, fcr;
    int thri_pending;
    int irq_level;
    uint8_t rx[SERIAL_RX_FIFO];
    unsigned rx_head, rx_count;
    int out_fd;
    uint64_t tx_bytes;
    struct irq_line irq;
};

void serial_init(struct serial *s, int out_fd, struct irq_line irq);
void serial_destroy(struct serial *s);
/* Queue host input for the guest; returns bytes accepted (FIFO may be full). */
unsigned serial_receive(struct serial *s, const uint8_t *buf, unsigned len);
extern const struct io_ops serial_io_ops;
/* COM1 at 0x3f8, GSI 4, writing to the env's console fd; metrics: write_count. */
extern const struct device_ops serial_device_ops;

/*
 * Guest-visible state (registers, receive FIFO, interrupt state; not the host
 * fd or counters) as one "serial" section. Restore validates the whole image
 * first: on error the device is unchanged and err says why.
 */
int serial_save(struct serial *s, struct state_writer *w);
int serial_restore(struct serial *s, struct state_reader *r, struct errmsg *err);

#endif
