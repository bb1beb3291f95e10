/*
 * virtio-net (devices/virtio/net.c) with a guest that wrote every byte of its
 * rx and tx rings and buffers (fuzz_virtio.h: 4 header bytes, then guest RAM).
 * Instead of a tap the device has one end of a SOCK_SEQPACKET socketpair, as
 * in tests/unit/test_virtio_net.c: each frame it transmits is one message on
 * the other end, and each message sent there is one frame for the rx queue.
 * Byte 0 bits 2..7 choose offload features; byte 2 (low 2 bits) how many
 * frames the host side sends towards the guest, byte 3 their length.
 *
 * Invariants: every frame that reaches the "tap" carries its virtio-net header
 * and fits MAX_FRAME; what reached it is exactly what the device counted
 * (tx_packets, tx_bytes); no more frames delivered to the guest than the host
 * sent; the queues return what they take.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "devices/virtio/net.h"
#include "devices/virtio/net_proto.h"
#include "tests/fuzz/fuzz_virtio.h"

#define MAX_FRAME (65536 + VIRTIO_NET_HDR_LEN)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reads every message the device wrote so far; counts them and their payload bytes. */
static void drain(int fd, uint64_t *frames, uint64_t *bytes)
{
    static uint8_t buf[MAX_FRAME + 1];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC);
        if (n < 0)
            return;
        if (n < VIRTIO_NET_HDR_LEN || n > MAX_FRAME)
            fv_abort("a frame on the tap without its header or larger than MAX_FRAME");
        (*frames)++;
        *bytes += (uint64_t)n - VIRTIO_NET_HDR_LEN;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fv_quiet_log();
    struct fuzz_guest g;
    if (fv_ram(&g, data, size))
        return 0;
    int fds = fv_count_fds();
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv))
        abort();
    struct net_config cfg = {.id = "eth0", .tap = "fuzz", .has_mac = data[0] & 4, .mac = {6, 0, 0xac, 0x10, 0, 2}};
    struct virtio_net *net = NULL;
    if (evloop_init(&g.loop) || virtio_net_create_fd(&net, &cfg, sv[0], false))
        abort();
    if (virtio_mmio_init(&g.m, "net", &virtio_net_ops, net, &g.gm, &g.loop, -1, 0xd0001000ULL, 6, fv_irq_line()))
        abort();
    uint64_t dev = (data[0] & 8 ? BIT64(VIRTIO_NET_F_CSUM) | BIT64(VIRTIO_NET_F_HOST_TSO4) : 0) |
                   (data[0] & 16 ? BIT64(VIRTIO_NET_F_GUEST_CSUM) | BIT64(VIRTIO_NET_F_GUEST_TSO4) : 0) |
                   (data[0] & 32 ? BIT64(VIRTIO_NET_F_MRG_RXBUF) : 0) | (data[0] & 4 ? BIT64(VIRTIO_NET_F_MAC) : 0);
    uint64_t frames = 0, bytes = 0;
    int sent = 0;
    if (fv_driver_up(&g, fv_features(data[0], dev), data[1], 2) == 0) {
        static uint8_t frame[VIRTIO_NET_HDR_LEN + 14 + 255 * 16];
        size_t len = VIRTIO_NET_HDR_LEN + 14 + (size_t)data[3] * 16;
        for (size_t i = 0; i < len; i++)
            frame[i] = (uint8_t)(i * 7 + data[3]);
        memset(frame, 0, VIRTIO_NET_HDR_LEN);
        for (int i = 0; i < (data[2] & 3); i++)
            sent += send(sv[1], frame, len, MSG_DONTWAIT) == (ssize_t)len;
        for (int i = 0; i < 2; i++) {
            virtio_mmio_kick(&g.m, VIRTIO_NET_TXQ);
            virtio_mmio_kick(&g.m, VIRTIO_NET_RXQ);
            for (int j = 0; j < 4; j++) {
                drain(sv[1], &frames, &bytes);
                if (evloop_run_once(&g.loop, 0) <= 0)
                    break;
            }
        }
        drain(sv[1], &frames, &bytes);
        struct net_counters c = virtio_net_counters(net);
        if (c.tx_packets != frames || c.tx_bytes != bytes) {
            fprintf(stderr, "tx counted %llu frames / %llu bytes, the tap got %llu / %llu\n",
                    (unsigned long long)c.tx_packets, (unsigned long long)c.tx_bytes, (unsigned long long)frames,
                    (unsigned long long)bytes);
            fv_abort("tx counters");
        }
        if (c.rx_packets > (uint64_t)sent)
            fv_abort("more frames delivered to the guest than the host sent");
        if (!(fv_rd(&g, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET)) {
            fv_check_queue(&g, VIRTIO_NET_TXQ, 0); /* a frame a full "tap" refused goes back */
            fv_check_queue(&g, VIRTIO_NET_RXQ, 0);
        }
    }
    fv_teardown(&g);
    virtio_net_free(net); /* closes sv[0] */
    close(sv[1]);
    evloop_destroy(&g.loop);
    fv_ram_free(&g);
    if (fv_count_fds() != fds)
        fv_abort("a file descriptor outlived the device");
    return 0;
}
