/*
 * The MMDS end of a guest NIC: a minimal, strictly bounds-checked ARP +
 * IPv4 + TCP responder in front of the HTTP side (devices/mmds/http.c).
 * virtio-net hands it each frame the guest sends on an MMDS-enabled NIC;
 * it takes ARP for the MMDS address and TCP to it, and leaves every other
 * frame to the tap. What it answers, the device puts into the guest's rx
 * queue (mmds_net_output). One HTTP request per connection, then FIN; no
 * timers (the virtio rx path never drops a frame; idle connections are
 * evicted, oldest first, when the table is full). docs/mmds.md says why
 * this is not lwIP.
 */
#ifndef EMBER_MMDS_NET_STACK_H
#define EMBER_MMDS_NET_STACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "devices/mmds/store.h"

#define MMDS_NET_MAX_CONNS 16
#define MMDS_NET_MSS 1460
/* The largest frame mmds_net_output produces (Ethernet header and payload, no FCS). */
#define MMDS_NET_MAX_FRAME (14 + 20 + 20 + MMDS_NET_MSS)
/* The MMDS's own MAC address in its ARP replies and frames (locally administered). */
#define MMDS_NET_MAC                       \
    {                                      \
        0x06, 0x01, 0x23, 0x45, 0x67, 0x01 \
    }

struct mmds_net_counters {
    uint64_t frames_in;  /* frames taken from the guest */
    uint64_t frames_out; /* frames produced for the guest */
    uint64_t dropped;    /* taken but malformed: bad length, checksum, fragment, GSO, ... */
    uint64_t requests;   /* HTTP requests answered */
    uint64_t evicted;    /* connections dropped to make room */
};

struct mmds_net;

/* seed varies the initial sequence numbers. 0 or -ENOMEM. */
int mmds_net_new(struct mmds_net **out, struct mmds_store *store, uint64_t seed);
void mmds_net_free(struct mmds_net *m);

/*
 * A frame the guest sent (Ethernet, after the virtio-net header). csum_partial: the header said
 * VIRTIO_NET_HDR_F_NEEDS_CSUM (the TCP checksum is not filled in yet); gso: a segmentation offload frame.
 * Returns false when the frame is not for the MMDS (the caller sends it to the tap as it is); true when the
 * MMDS took it (answered or, when malformed, dropped).
 */
bool mmds_net_take(struct mmds_net *m, const uint8_t *frame, size_t len, bool csum_partial, bool gso, uint64_t now_ns);
/* Whether a frame starting with head[0..len) (at least MMDS_NET_CLASSIFY_LEN bytes when the frame has them) is for
 * the MMDS: the cheap test before the whole frame is gathered for mmds_net_take. */
#define MMDS_NET_CLASSIFY_LEN (14 + 28)
bool mmds_net_wants(const struct mmds_net *m, const uint8_t *head, size_t len);
/* Writes the next frame for the guest into buf (cap >= MMDS_NET_MAX_FRAME); its length, or 0 when none. */
size_t mmds_net_output(struct mmds_net *m, uint8_t *buf, size_t cap);
bool mmds_net_has_output(const struct mmds_net *m);
struct mmds_net_counters mmds_net_counters(const struct mmds_net *m);

#endif
