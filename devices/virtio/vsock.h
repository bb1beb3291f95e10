/*
 * virtio-vsock with Firecracker's host side: guest AF_VSOCK streams become
 * host AF_UNIX streams. Ember listens on `uds_path`; a host client connects
 * there, writes "CONNECT <port>\n" and, once the guest accepts, reads
 * "OK <host_port>\n" followed by the stream. A guest connection to CID 2
 * port P becomes a connection to the Unix socket "<uds_path>_<P>". Credit
 * based flow control both ways (no byte lost, none buffered beyond what the
 * peer granted); every host socket is non-blocking and served on the VMM
 * thread. See docs/vsock.md.
 */
#ifndef EMBER_VIRTIO_VSOCK_H
#define EMBER_VIRTIO_VSOCK_H

#include <stdint.h>

#include "core/errmsg.h"
#include "devices/virtio/virtio_dev.h"

struct vsock_config {
    uint32_t guest_cid;   /* any u32, as Firecracker; normally 3 to 2^32 - 2 */
    const char *uds_path; /* where Ember listens; guest-initiated connections go to <uds_path>_<port> */
};

/* Unix socket paths are at most 107 bytes; "<uds_path>_<port>" needs 11 more. */
#define VSOCK_UDS_PATH_MAX 96

struct virtio_vsock;

/* Creates the device and binds and listens on cfg->uds_path (which must not exist). 0 or -errno with a message. */
int virtio_vsock_create(struct virtio_vsock **out, const struct vsock_config *cfg, struct errmsg *err);
/* Closes every socket (the uds_path file stays, as Firecracker leaves it). */
void virtio_vsock_free(struct virtio_vsock *vs);
extern const struct virtio_dev_ops virtio_vsock_ops;

/*
 * After a snapshot restore (lock not held): host connections are gone and the
 * guest is told so with TRANSPORT_RESET on the event queue, delivered at the
 * next event-queue kick (virtio_dev_resume_restored kicks every queue).
 */
void virtio_vsock_restored(struct virtio_vsock *vs);

struct vsock_counters {
    uint64_t rx_packets, rx_bytes, tx_packets, tx_bytes; /* rx: to the guest; bytes: stream payload */
    uint64_t conns_opened, conns_refused, bad_packets, rst_dropped, host_rejected;
};
struct vsock_counters virtio_vsock_counters(const struct virtio_vsock *vs);

#endif
