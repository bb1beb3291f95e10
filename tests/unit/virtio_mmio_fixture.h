/*
 * The virtio-mmio transport tests' shared setup, no Test() here: a transport
 * without KVM (vm_fd = -1: no ioeventfd/irqfd) whose interrupt line records
 * pulses (virtio_fixture.h), in front of a tiny fake device model with two
 * queues that counts every call made into it. The test is the driver,
 * speaking to the register file through virtio_mmio_io_ops. TestSuite(vmmio)
 * (virtio_mmio_fixture.c) gives every test a fresh transport and fake device.
 */
#ifndef EMBER_TEST_VIRTIO_MMIO_FIXTURE_H
#define EMBER_TEST_VIRTIO_MMIO_FIXTURE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/event_loop.h"
#include "devices/virtio/mmio.h"
#include "devices/virtio/virtio.h"
#include "tests/unit/virtio_fixture.h"

/* Short names for the registers (mmio_regs.h) in these register-by-register tests. */
enum {
    MAGIC = VIRTIO_MMIO_MAGIC_VALUE,
    VERSION = VIRTIO_MMIO_VERSION,
    DEVICE_ID = VIRTIO_MMIO_DEVICE_ID,
    VENDOR_ID = VIRTIO_MMIO_VENDOR_ID,
    DEV_FEATURES = VIRTIO_MMIO_DEVICE_FEATURES,
    DEV_FEATURES_SEL = VIRTIO_MMIO_DEVICE_FEATURES_SEL,
    DRV_FEATURES = VIRTIO_MMIO_DRIVER_FEATURES,
    DRV_FEATURES_SEL = VIRTIO_MMIO_DRIVER_FEATURES_SEL,
    QUEUE_SEL = VIRTIO_MMIO_QUEUE_SEL,
    QUEUE_NUM_MAX = VIRTIO_MMIO_QUEUE_NUM_MAX,
    QUEUE_NUM = VIRTIO_MMIO_QUEUE_NUM,
    QUEUE_READY = VIRTIO_MMIO_QUEUE_READY,
    QUEUE_NOTIFY = VIRTIO_MMIO_QUEUE_NOTIFY,
    INT_STATUS = VIRTIO_MMIO_INTERRUPT_STATUS,
    INT_ACK = VIRTIO_MMIO_INTERRUPT_ACK,
    STATUS = VIRTIO_MMIO_STATUS,
    CONFIG_GEN = VIRTIO_MMIO_CONFIG_GENERATION,
    CONFIG = VIRTIO_MMIO_CONFIG,
};

#define S_ACK VIRTIO_STATUS_ACKNOWLEDGE
#define S_DRIVER VIRTIO_STATUS_DRIVER
#define S_FEATURES_OK VIRTIO_STATUS_FEATURES_OK
#define S_DRIVER_OK VIRTIO_STATUS_DRIVER_OK
#define S_NEEDS_RESET VIRTIO_STATUS_NEEDS_RESET

#define MEM (1ULL << 20)
#define FAKE_ID 42
#define FAKE_FEATURES (BIT64(VIRTIO_F_VERSION_1) | BIT64(VIRTIO_F_EVENT_IDX) | BIT64(3) | BIT64(40))
#define Q0_DESC 0x1000ULL
#define Q0_AVAIL 0x2000ULL
#define Q0_USED 0x3000ULL
#define Q1_DESC 0x5000ULL
#define Q1_AVAIL 0x6000ULL
#define Q1_USED 0x7000ULL

/* What the fake device model was asked, and how it answers. */
struct fake_dev {
    uint64_t features;
    int activate_calls, activate_rc, reset_calls;
    int notify_calls[4];
    bool push_on_notify; /* complete every available chain when kicked */
    int popped;
    uint8_t cfg[16];
    int cfg_reads, cfg_writes;
    uint64_t cfg_wr_off;
    uint32_t cfg_wr_len;
    uint8_t cfg_wr_data[8];
    bool lock_held_ok;
};

/* The transport and fake device under test, one per test process (like vfx). */
struct mmiofx {
    struct virtio_mmio m;
    struct fake_dev fake;
    struct event_loop loop; /* only if a test serves kicks on an event loop */
    bool loop_used;         /* loop was initialised: teardown destroys it */
};
extern struct mmiofx mmiofx;

/* The fake device's operations: device id FAKE_ID, two queues, FAKE_FEATURES. */
extern const struct virtio_dev_ops fake_ops;

/* A fresh fake device (config bytes 0xa0..0xaf) on a fresh transport at GSI 5, kicks served on `l` if not NULL. */
void fake_mmio_start(struct event_loop *l);
/* The whole driver sequence with both queues valid; returns the final status. */
uint32_t bring_up(void);
/* One single-descriptor chain made available at avail index idx of the 16-entry rings at desc/avail. */
void post_chain(uint64_t desc, uint64_t avail, uint16_t idx);

#endif
