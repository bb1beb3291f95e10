/*
 * The VMM thread's control loop, the same for every way a VM is described
 * (command line, config file, API): one event loop serving device events,
 * SIGINT/SIGTERM, console input and, when present, API requests; it runs
 * before boot (API configuration) and while the guest runs.
 */
#ifndef EMBER_RUNNER_H
#define EMBER_RUNNER_H

#include <stdbool.h>

#include "core/errmsg.h"
#include "core/event_loop.h"

struct vm;

struct runner {
    struct event_loop loop;
    int signal_fd;
    bool stop_requested; /* a signal arrived with no VM running */
    bool console_raw;
    struct vm *vm;           /* NULL until a VM is started */
    uint8_t console_in[256]; /* stdin bytes the UART FIFO has not taken yet */
    unsigned console_in_len;
};

/* Event loop, signal handling (signalfd + vCPU kick signal). */
int runner_init(struct runner *r, struct errmsg *err);
/* Starts the VM's vCPUs and attaches its console and stop event to the loop. */
int runner_start_vm(struct runner *r, struct vm *vm, struct errmsg *err);
/* Serves events until the VM ends or a stop was requested. */
int runner_loop(struct runner *r);
/* Stops the VM's vCPUs (if any), restores the terminal, closes the loop. */
void runner_finish(struct runner *r);

#endif
