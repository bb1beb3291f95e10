/*
 * virtio-net through the virtio-mmio transport, without KVM or a tap: the
 * device's fd is one end of a SOCK_SEQPACKET socketpair (is_tap = false), so
 * every frame the device transmits is one message on the other end (with its
 * 12-byte virtio_net_hdr_v1 first) and every message sent there is one frame
 * for the rx queue. The test is the guest driver; an event loop lets the
 * device see rx readiness and tx back-pressure ending.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "devices/virtio/net.h"
#include "devices/virtio/net_proto.h"
#include "devices/virtio/mmio.h"
#include "devices/virtio/virtio.h"
#include "core/event_loop.h"
#include "tests/unit/virtio_fixture.h"

#define HDR VIRTIO_NET_HDR_LEN
#define MEM (4ULL << 20)
#define QSZ 64
#define RXQ VIRTIO_NET_RXQ
#define TXQ VIRTIO_NET_TXQ
#define RX_BUF_GPA(i) (0x100000ULL + 0x1000ULL * (i)) /* 4 KiB apart */
#define TX_BUF_GPA(i) (0x200000ULL + 0x1000ULL * (i))

static struct event_loop loop;
static struct virtio_mmio m;
static struct virtio_net *net;
static int sv[2] = {-1, -1}; /* sv[0] the device's, sv[1] the test's (the "host side") */
static bool started;

static void driver_up(uint64_t features)
{
    vfx_wr(VIRTIO_MMIO_STATUS, 0);
    memset(g_at(0, 0x10000), 0, 0x10000);
    vfx_driver_up(features, 2);
}

static void net_start_cfg(const struct net_config *cfg, uint64_t features)
{
    vfx_ram_init(MEM);
    cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    cr_assert_eq(evloop_init(&loop), 0);
    cr_assert_eq(virtio_net_create_fd(&net, cfg, sv[0], false), 0);
    cr_assert_eq(virtio_mmio_init(&m, "net0", &virtio_net_ops, net, &vfx.gm, &loop, -1, 0xd0001000ULL, 6,
                                  vfx_irq_line(6)),
                 0);
    vfx.m = &m;
    started = true;
    vfx_queue_at(RXQ, QSZ, 0x1000, 0x2000, 0x3000);
    vfx_queue_at(TXQ, QSZ, 0x5000, 0x6000, 0x7000);
    driver_up(features);
}

static void net_start(uint64_t features)
{
    struct net_config cfg = {.id = "eth0", .tap = "unused"};
    net_start_cfg(&cfg, features);
}

static void net_stop(void)
{
    if (!started)
        return;
    started = false;
    vfx_wr(VIRTIO_MMIO_STATUS, 0);
    virtio_mmio_destroy(&m);
    virtio_net_free(net); /* closes sv[0] */
    close(sv[1]);
    evloop_destroy(&loop);
    vfx_ram_free();
}

TestSuite(vnet, .fini = net_stop);

/* Links buffers into queue q's table and makes the chain available (no kick). */
static uint16_t post(int q, const uint64_t *gpa, const uint32_t *len, const bool *wr_flag, int n)
{
    struct vfx_seg s[8];
    cr_assert_leq(n, 8);
    for (int i = 0; i < n; i++)
        s[i] = (struct vfx_seg){gpa[i], len[i], wr_flag[i]};
    return vfx_post(q, s, n, 0);
}

static uint16_t post_rx(uint64_t gpa, uint32_t len)
{
    bool w = true;
    memset(g_at(gpa, len), 0xee, len);
    return post(RXQ, &gpa, &len, &w, 1);
}

static uint16_t used_idx(int q) { return vfx_used_idx(q); }
static uint32_t used_id(int q, uint16_t i) { return vfx_used_id(q, i); }
static uint32_t used_len(int q, uint16_t i) { return vfx_used_len(q, i); }

static void run_until_used(int q, uint16_t want)
{
    for (int i = 0; i < 100 && used_idx(q) != want; i++)
        evloop_run_once(&loop, 20);
}

static uint8_t fpat(int frame, size_t i) { return (uint8_t)(frame * 37 + i * 7 + (i >> 8)); }

/* A frame as it travels on the fd: 12-byte header (zeros), then payload. */
static size_t make_frame(uint8_t *buf, int frame, size_t payload)
{
    memset(buf, 0, HDR);
    for (size_t i = 0; i < payload; i++)
        buf[HDR + i] = fpat(frame, i);
    return HDR + payload;
}

static void send_frame(int frame, size_t payload)
{
    uint8_t buf[9000];
    size_t n = make_frame(buf, frame, payload);
    cr_assert_eq(send(sv[1], buf, n, 0), (ssize_t)n);
}

static ssize_t recv_msg(uint8_t *buf, size_t cap) { return recv(sv[1], buf, cap, MSG_DONTWAIT); }

static void expect_needs_reset(void)
{
    cr_assert(vfx_rd(VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
    cr_assert(vfx_rd(VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_INT_CONFIG);
}

#define BASE_FEATURES BIT64(VIRTIO_F_VERSION_1)

/* ---- config space ---- */

Test(vnet, mac_in_config_space)
{
    struct net_config cfg = {.id = "eth0",
                             .tap = "unused",
                             .mac = {0x02, 0xab, 0xcd, 0xef, 0x01, 0x23},
                             .has_mac = true};
    net_start_cfg(&cfg, BASE_FEATURES | BIT64(VIRTIO_NET_F_MAC));
    cr_assert(vfx_dev_features() & BIT64(VIRTIO_NET_F_MAC));
    uint8_t mac[6];
    for (int i = 0; i < 6; i++)
        virtio_mmio_io_ops.read(&m, VIRTIO_MMIO_CONFIG + (uint64_t)i, &mac[i], 1);
    cr_assert_eq(memcmp(mac, cfg.mac, 6), 0);
    uint8_t w4[4], w2[2];
    virtio_mmio_io_ops.read(&m, VIRTIO_MMIO_CONFIG, w4, 4);
    virtio_mmio_io_ops.read(&m, VIRTIO_MMIO_CONFIG + 4, w2, 2);
    cr_assert_eq(memcmp(w4, cfg.mac, 4), 0);
    cr_assert_eq(memcmp(w2, cfg.mac + 4, 2), 0);
}

Test(vnet, no_mac_feature_without_mac)
{
    net_start(BASE_FEATURES);
    cr_assert_not(vfx_dev_features() & BIT64(VIRTIO_NET_F_MAC));
    cr_assert(vfx_dev_features() & BIT64(VIRTIO_NET_F_MRG_RXBUF));
    cr_assert(vfx_dev_features() & BIT64(VIRTIO_F_VERSION_1));
}

/* ---- tx ---- */

Test(vnet, tx_frame_split_over_two_descriptors)
{
    net_start(BASE_FEATURES);
    uint8_t frame[HDR + 100];
    size_t n = make_frame(frame, 1, 100);
    /* First descriptor: header + 30 payload bytes; second: the other 70. */
    memcpy(g_at(TX_BUF_GPA(0), 42), frame, 42);
    memcpy(g_at(TX_BUF_GPA(1), 70), frame + 42, 70);
    uint64_t g[2] = {TX_BUF_GPA(0), TX_BUF_GPA(1)};
    uint32_t l[2] = {42, 70};
    bool w[2] = {false, false};
    uint16_t head = post(TXQ, g, l, w, 2);
    virtio_mmio_kick(&m, TXQ);

    uint8_t got[2048];
    ssize_t r = recv_msg(got, sizeof(got));
    cr_assert_eq(r, (ssize_t)n, "one message of header + frame, got %zd", r);
    cr_assert_eq(memcmp(got, frame, n), 0);
    cr_assert_eq(recv_msg(got, sizeof(got)), -1, "exactly one message");
    cr_assert_eq(used_idx(TXQ), 1);
    cr_assert_eq(used_id(TXQ, 0), head);
    cr_assert_eq(used_len(TXQ, 0), 0, "tx buffers are only read");
    struct net_counters c = virtio_net_counters(net);
    cr_assert_eq(c.tx_packets, 1);
    cr_assert_eq(c.tx_bytes, 100);
    cr_assert_geq(vfx.pulses, 1);
}

Test(vnet, tx_header_then_frame_many_in_order)
{
    net_start(BASE_FEATURES);
    for (int f = 0; f < 20; f++) {
        uint8_t frame[HDR + 1500];
        make_frame(frame, f, 1500);
        memcpy(g_at(TX_BUF_GPA(2 * f), HDR), frame, HDR);
        memcpy(g_at(TX_BUF_GPA(2 * f + 1), 1500), frame + HDR, 1500);
        uint64_t g[2] = {TX_BUF_GPA(2 * f), TX_BUF_GPA(2 * f + 1)};
        uint32_t l[2] = {HDR, 1500};
        bool w[2] = {false, false};
        post(TXQ, g, l, w, 2);
    }
    virtio_mmio_kick(&m, TXQ);
    cr_assert_eq(used_idx(TXQ), 20);
    for (int f = 0; f < 20; f++) {
        uint8_t got[2048], want[HDR + 1500];
        make_frame(want, f, 1500);
        cr_assert_eq(recv_msg(got, sizeof(got)), HDR + 1500, "frame %d", f);
        cr_assert_eq(memcmp(got, want, sizeof(want)), 0, "frame %d", f);
    }
}

Test(vnet, tx_back_pressure_loses_nothing)
{
    net_start(BASE_FEATURES);
    int small = 4096;
    cr_assert_eq(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
    enum { N = 40 };
    for (int f = 0; f < N; f++) {
        uint8_t frame[HDR + 1400];
        make_frame(frame, f, 1400);
        memcpy(g_at(TX_BUF_GPA(f), sizeof(frame)), frame, sizeof(frame));
        uint64_t g = TX_BUF_GPA(f);
        uint32_t l = sizeof(frame);
        bool w = false;
        post(TXQ, &g, &l, &w, 1);
    }
    virtio_mmio_kick(&m, TXQ);
    cr_assert_lt(used_idx(TXQ), N, "the socket buffer should have filled up");
    cr_assert_gt(virtio_net_counters(net).tx_waits, 0);
    int got_frames = 0;
    for (int spin = 0; spin < 1000 && got_frames < N; spin++) {
        uint8_t got[2048], want[HDR + 1400];
        ssize_t r;
        while ((r = recv_msg(got, sizeof(got))) > 0) {
            make_frame(want, got_frames, 1400);
            cr_assert_eq(r, (ssize_t)sizeof(want));
            cr_assert_eq(memcmp(got, want, sizeof(want)), 0, "frame %d out of order or damaged", got_frames);
            got_frames++;
        }
        evloop_run_once(&loop, 10); /* EPOLLOUT resumes tx */
    }
    cr_assert_eq(got_frames, N);
    cr_assert_eq(used_idx(TXQ), N);
    cr_assert_eq(virtio_net_counters(net).tx_packets, N);
}

Test(vnet, tx_chain_with_writable_descriptor)
{
    net_start(BASE_FEATURES);
    memset(g_at(TX_BUF_GPA(0), 200), 0, 200);
    uint64_t g[2] = {TX_BUF_GPA(0), TX_BUF_GPA(1)};
    uint32_t l[2] = {HDR + 60, 64};
    bool w[2] = {false, true};
    post(TXQ, g, l, w, 2);
    virtio_mmio_kick(&m, TXQ);
    expect_needs_reset();
    uint8_t got[256];
    cr_assert_eq(recv_msg(got, sizeof(got)), -1, "nothing sent");
    cr_assert_eq(used_idx(TXQ), 0);
}

Test(vnet, tx_shorter_than_header)
{
    net_start(BASE_FEATURES);
    uint64_t g = TX_BUF_GPA(0);
    uint32_t l = HDR - 1;
    bool w = false;
    post(TXQ, &g, &l, &w, 1);
    virtio_mmio_kick(&m, TXQ);
    expect_needs_reset();
    uint8_t got[256];
    cr_assert_eq(recv_msg(got, sizeof(got)), -1);
}

Test(vnet, tx_malformed_chain)
{
    net_start(BASE_FEATURES);
    uint64_t g = MEM - 8;
    uint32_t l = 64;
    bool w = false;
    post(TXQ, &g, &l, &w, 1);
    virtio_mmio_kick(&m, TXQ);
    expect_needs_reset();
}

/* ---- rx ---- */

static void check_rx_frame(const uint8_t *got, size_t len, int frame, size_t payload, uint16_t nbufs)
{
    cr_assert_eq(len, HDR + payload);
    uint16_t nb = (uint16_t)(got[VIRTIO_NET_HDR_NUM_BUFFERS] | got[VIRTIO_NET_HDR_NUM_BUFFERS + 1] << 8);
    cr_assert_eq(nb, nbufs, "num_buffers %u, expected %u", nb, nbufs);
    for (size_t i = 0; i < payload; i++)
        if (got[HDR + i] != fpat(frame, i))
            cr_assert_fail("frame %d byte %zu differs", frame, i);
}

Test(vnet, rx_mergeable_splits_over_small_buffers)
{
    net_start(BASE_FEATURES | BIT64(VIRTIO_NET_F_MRG_RXBUF));
    uint16_t heads[4];
    for (int i = 0; i < 4; i++)
        heads[i] = post_rx(RX_BUF_GPA(i), 512);
    send_frame(1, 1400); /* 1412 bytes: 512 + 512 + 388 */
    run_until_used(RXQ, 3);
    cr_assert_eq(used_idx(RXQ), 3);
    uint8_t all[1412];
    const uint32_t want_len[3] = {512, 512, 388};
    size_t off = 0;
    for (uint16_t i = 0; i < 3; i++) {
        cr_assert_eq(used_id(RXQ, i), heads[i]);
        cr_assert_eq(used_len(RXQ, i), want_len[i]);
        memcpy(all + off, g_at(RX_BUF_GPA(i), want_len[i]), want_len[i]);
        off += want_len[i];
    }
    check_rx_frame(all, off, 1, 1400, 3);
    cr_assert_eq(*g_at(RX_BUF_GPA(2) + 388, 1), 0xee, "nothing written past the frame");
    cr_assert_eq(*g_at(RX_BUF_GPA(3), 1), 0xee, "fourth buffer unused");
    struct net_counters c = virtio_net_counters(net);
    cr_assert_eq(c.rx_packets, 1);
    cr_assert_eq(c.rx_bytes, 1400);
    cr_assert_geq(vfx.pulses, 1);
    cr_assert(vfx_rd(VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_INT_USED_RING);

    /* The fourth buffer takes the next small frame whole. */
    send_frame(2, 60);
    run_until_used(RXQ, 4);
    cr_assert_eq(used_len(RXQ, 3), HDR + 60);
    check_rx_frame(g_at(RX_BUF_GPA(3), HDR + 60), HDR + 60, 2, 60, 1);
}

Test(vnet, rx_without_buffers_keeps_the_frame)
{
    net_start(BASE_FEATURES | BIT64(VIRTIO_NET_F_MRG_RXBUF));
    send_frame(1, 1000);
    send_frame(2, 64);
    for (int i = 0; i < 5; i++)
        evloop_run_once(&loop, 10);
    cr_assert_eq(used_idx(RXQ), 0);
    cr_assert_gt(virtio_net_counters(net).rx_waits, 0);
    /* Buffers arrive; the rx kick delivers what waited, then reads on. */
    post_rx(RX_BUF_GPA(0), 2048);
    post_rx(RX_BUF_GPA(1), 2048);
    virtio_mmio_kick(&m, RXQ);
    run_until_used(RXQ, 2);
    cr_assert_eq(used_idx(RXQ), 2);
    cr_assert_eq(used_len(RXQ, 0), HDR + 1000);
    check_rx_frame(g_at(RX_BUF_GPA(0), HDR + 1000), HDR + 1000, 1, 1000, 1);
    cr_assert_eq(used_len(RXQ, 1), HDR + 64);
    check_rx_frame(g_at(RX_BUF_GPA(1), HDR + 64), HDR + 64, 2, 64, 1);
    cr_assert_eq(virtio_net_counters(net).rx_packets, 2);
}

Test(vnet, rx_kick_through_queue_notify_register)
{
    net_start(BASE_FEATURES | BIT64(VIRTIO_NET_F_MRG_RXBUF));
    send_frame(3, 300);
    for (int i = 0; i < 3; i++)
        evloop_run_once(&loop, 10);
    cr_assert_eq(used_idx(RXQ), 0);
    post_rx(RX_BUF_GPA(0), 2048);
    vfx_wr(VIRTIO_MMIO_QUEUE_NOTIFY, RXQ); /* QueueNotify: an eventfd served by the loop */
    run_until_used(RXQ, 1);
    cr_assert_eq(used_idx(RXQ), 1);
    check_rx_frame(g_at(RX_BUF_GPA(0), HDR + 300), HDR + 300, 3, 300, 1);
}

Test(vnet, rx_without_mergeable_needs_one_big_buffer)
{
    net_start(BASE_FEATURES);
    post_rx(RX_BUF_GPA(0), 2048);
    send_frame(1, 1400);
    run_until_used(RXQ, 1);
    cr_assert_eq(used_idx(RXQ), 1);
    cr_assert_eq(used_len(RXQ, 0), HDR + 1400);
    check_rx_frame(g_at(RX_BUF_GPA(0), HDR + 1400), HDR + 1400, 1, 1400, 1);

    /* A buffer too small for the frame is not used (not even partly). */
    post_rx(RX_BUF_GPA(1), 256);
    post_rx(RX_BUF_GPA(2), 256);
    send_frame(2, 1400);
    for (int i = 0; i < 5; i++)
        evloop_run_once(&loop, 10);
    cr_assert_eq(used_idx(RXQ), 1, "without MRG_RXBUF a frame is never split");
    cr_assert_eq(*g_at(RX_BUF_GPA(1), 1), 0xee);
    cr_assert_eq(*g_at(RX_BUF_GPA(2), 1), 0xee);
    cr_assert_eq(virtio_net_counters(net).rx_packets, 1);
}

Test(vnet, rx_runt_messages_skipped)
{
    net_start(BASE_FEATURES | BIT64(VIRTIO_NET_F_MRG_RXBUF));
    post_rx(RX_BUF_GPA(0), 2048);
    uint8_t runt[HDR] = {0};
    cr_assert_eq(send(sv[1], runt, HDR, 0), HDR); /* a header without a frame */
    cr_assert_eq(send(sv[1], runt, 3, 0), 3);
    send_frame(4, 100);
    run_until_used(RXQ, 1);
    cr_assert_eq(used_idx(RXQ), 1);
    check_rx_frame(g_at(RX_BUF_GPA(0), HDR + 100), HDR + 100, 4, 100, 1);
}

Test(vnet, rx_jumbo_frame_over_many_buffers)
{
    net_start(BASE_FEATURES | BIT64(VIRTIO_NET_F_MRG_RXBUF));
    for (int i = 0; i < 10; i++)
        post_rx(RX_BUF_GPA(i), 1024);
    send_frame(5, 8000); /* 8012 bytes: 8 buffers */
    run_until_used(RXQ, 8);
    cr_assert_eq(used_idx(RXQ), 8);
    static uint8_t all[9000];
    size_t off = 0;
    for (uint16_t i = 0; i < 8; i++) {
        uint32_t l = used_len(RXQ, i);
        memcpy(all + off, g_at(RX_BUF_GPA(used_id(RXQ, i)), l), l);
        off += l;
    }
    check_rx_frame(all, off, 5, 8000, 8);
}

/* vring_need_event() as a driver computes it. */
static bool driver_should_kick(uint16_t event, uint16_t new_idx, uint16_t old_idx)
{
    return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old_idx);
}

Test(vnet, BUG_rx_waiting_for_room_asks_for_a_kick_with_event_idx)
{
    /*
     * EVENT_IDX + mergeable buffers. A frame arrives that needs more room
     * than the one small buffer posted: the device takes the chain, finds it
     * too small, puts it back and waits for an rx kick. The avail_event it
     * publishes must make the driver kick when it adds the next buffer;
     * otherwise rx stalls for good (the device stopped watching the fd).
     */
    net_start(BASE_FEATURES | BIT64(VIRTIO_NET_F_MRG_RXBUF) | BIT64(VIRTIO_F_EVENT_IDX));
    post_rx(RX_BUF_GPA(0), 256);
    send_frame(1, 1400);
    for (int i = 0; i < 5; i++)
        evloop_run_once(&loop, 10);
    cr_assert_eq(used_idx(RXQ), 0);

    uint16_t old_idx = vfx.q[RXQ].avail_idx;
    post_rx(RX_BUF_GPA(1), 2048);
    uint16_t avail_event = vfx_avail_event(RXQ);
    bool kick = driver_should_kick(avail_event, vfx.q[RXQ].avail_idx, old_idx);
    cr_expect(kick, "avail_event %u: the driver adding entry %u will not kick; rx stalls", avail_event, old_idx);
    /* The driver kicks only if asked to; the device must then deliver. */
    if (kick)
        virtio_mmio_kick(&m, RXQ);
    for (int i = 0; i < 5 && used_idx(RXQ) != 2; i++)
        evloop_run_once(&loop, 10);
    cr_assert_eq(used_idx(RXQ), 2, "frame delivered over the two buffers");
}

Test(vnet, rx_event_idx_kick_when_ring_was_empty)
{
    /* The common case: the ring ran dry (no chain popped), the driver refills. */
    net_start(BASE_FEATURES | BIT64(VIRTIO_NET_F_MRG_RXBUF) | BIT64(VIRTIO_F_EVENT_IDX));
    send_frame(1, 500);
    for (int i = 0; i < 5; i++)
        evloop_run_once(&loop, 10);
    uint16_t old_idx = vfx.q[RXQ].avail_idx;
    post_rx(RX_BUF_GPA(0), 2048);
    uint16_t avail_event = vfx_avail_event(RXQ);
    cr_assert(driver_should_kick(avail_event, vfx.q[RXQ].avail_idx, old_idx));
    virtio_mmio_kick(&m, RXQ);
    run_until_used(RXQ, 1);
    check_rx_frame(g_at(RX_BUF_GPA(0), HDR + 500), HDR + 500, 1, 500, 1);
}

Test(vnet, rx_chain_malformed)
{
    net_start(BASE_FEATURES | BIT64(VIRTIO_NET_F_MRG_RXBUF));
    uint64_t g = MEM - 100;
    uint32_t l = 2048;
    bool w = true;
    post(RXQ, &g, &l, &w, 1);
    send_frame(1, 100);
    for (int i = 0; i < 5; i++)
        evloop_run_once(&loop, 10);
    expect_needs_reset();
    cr_assert_eq(used_idx(RXQ), 0);
}

Test(vnet, reset_drops_pending_and_restarts)
{
    net_start(BASE_FEATURES | BIT64(VIRTIO_NET_F_MRG_RXBUF));
    send_frame(1, 100);
    for (int i = 0; i < 3; i++)
        evloop_run_once(&loop, 10); /* frame read, waits for buffers */
    driver_up(BASE_FEATURES | BIT64(VIRTIO_NET_F_MRG_RXBUF));
    post_rx(RX_BUF_GPA(0), 2048);
    send_frame(2, 200);
    virtio_mmio_kick(&m, RXQ);
    run_until_used(RXQ, 1);
    cr_assert_eq(used_idx(RXQ), 1);
    check_rx_frame(g_at(RX_BUF_GPA(0), HDR + 200), HDR + 200, 2, 200, 1);
}

/* ---- rate limiters (fake clock): held frames wait in the ring or the device, none is lost ---- */

static uint64_t fake_ns;
static uint64_t fake_clock(void *ctx) { return *(uint64_t *)ctx; }

static void limit_ops(unsigned queue, uint64_t per_second)
{
    struct rate_limiter *rl = virtio_net_rate_limiter(net, queue);
    fake_ns = 1000000000ULL;
    rate_limiter_set_clock(rl, fake_clock, &fake_ns);
    struct rate_limiter_update u = {.ops_set = true, .cfg.ops = {.size = per_second, .refill_time_ms = 1000}};
    virtio_net_update_rate_limiters(net, queue == RXQ ? &u : NULL, queue == TXQ ? &u : NULL);
}

Test(vnet, tx_rate_limit_holds_frames_in_the_ring)
{
    net_start(BASE_FEATURES);
    limit_ops(TXQ, 2);
    for (int f = 0; f < 5; f++) {
        uint8_t frame[HDR + 100];
        make_frame(frame, f, 100);
        memcpy(g_at(TX_BUF_GPA(f), sizeof(frame)), frame, sizeof(frame));
        uint64_t g = TX_BUF_GPA(f);
        uint32_t l = sizeof(frame);
        bool w = false;
        post(TXQ, &g, &l, &w, 1);
    }
    virtio_mmio_kick(&m, TXQ);
    cr_assert_eq(used_idx(TXQ), 2);
    fake_ns += 1000000000ULL;
    virtio_mmio_kick(&m, TXQ);
    cr_assert_eq(used_idx(TXQ), 4);
    fake_ns += 500000000ULL;
    virtio_mmio_kick(&m, TXQ);
    cr_assert_eq(used_idx(TXQ), 5);
    for (int f = 0; f < 5; f++) {
        uint8_t got[256], want[HDR + 100];
        make_frame(want, f, 100);
        cr_assert_eq(recv_msg(got, sizeof(got)), (ssize_t)sizeof(want), "frame %d", f);
        cr_assert_eq(memcmp(got, want, sizeof(want)), 0, "frame %d", f);
    }
    struct net_counters c = virtio_net_counters(net);
    cr_assert_eq(c.tx_packets, 5);
    cr_assert_eq(c.tx_throttled, 2);
}

Test(vnet, rx_rate_limit_keeps_the_frame_until_tokens_are_back)
{
    net_start(BASE_FEATURES | BIT64(VIRTIO_NET_F_MRG_RXBUF));
    limit_ops(RXQ, 1);
    for (int i = 0; i < 3; i++)
        post_rx(RX_BUF_GPA(i), 2048);
    for (int f = 0; f < 3; f++)
        send_frame(f, 200);
    for (int i = 0; i < 5; i++)
        evloop_run_once(&loop, 5);
    cr_assert_eq(used_idx(RXQ), 1);
    for (uint16_t k = 2; k <= 3; k++) {
        fake_ns += 1000000000ULL;
        virtio_mmio_kick(&m, RXQ);
        run_until_used(RXQ, k);
        cr_assert_eq(used_idx(RXQ), k);
    }
    for (int f = 0; f < 3; f++)
        check_rx_frame(g_at(RX_BUF_GPA(f), HDR + 200), HDR + 200, f, 200, 1);
    cr_assert_geq(virtio_net_counters(net).rx_throttled, 2);
}

/*
 * A deleted tap: its fd polls EPOLLERR for ever and every read and write fails. Here the device's fd is the write
 * end of a pipe whose read end is closed, which does the same (reads EBADF, writes EPIPE, EPOLLERR). The device
 * must stop watching it after the first failed read (else the VMM thread spins) and drop what the guest sends.
 */
Test(vnet, tap_gone_stops_watching_and_drops_tx)
{
    signal(SIGPIPE, SIG_IGN); /* as in ember */
    vfx_ram_init(MEM);
    int p[2];
    cr_assert_eq(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    close(p[0]);
    sv[0] = p[1];
    sv[1] = open("/dev/null", O_RDONLY | O_CLOEXEC); /* net_stop closes it */
    cr_assert_eq(evloop_init(&loop), 0);
    struct net_config cfg = {.id = "eth0", .tap = "gone0"};
    cr_assert_eq(virtio_net_create_fd(&net, &cfg, sv[0], false), 0);
    cr_assert_eq(virtio_mmio_init(&m, "net0", &virtio_net_ops, net, &vfx.gm, &loop, -1, 0xd0001000ULL, 6,
                                  vfx_irq_line(6)),
                 0);
    vfx.m = &m;
    started = true;
    vfx_queue_at(RXQ, QSZ, 0x1000, 0x2000, 0x3000);
    vfx_queue_at(TXQ, QSZ, 0x5000, 0x6000, 0x7000);
    driver_up(BASE_FEATURES);
    post_rx(RX_BUF_GPA(0), 2048);
    virtio_mmio_kick(&m, RXQ);
    int ran = 0;
    for (int i = 0; i < 50; i++)
        ran += evloop_run_once(&loop, 1);
    cr_assert_eq(virtio_net_counters(net).tap_read_fails, 1, "one failed read, then the fd is no longer watched");
    cr_assert_leq(ran, 1, "the event loop kept waking up for the dead fd (%d callbacks)", ran);
    cr_assert_eq(used_idx(RXQ), 0);
    /* The guest's frames are dropped (completed, not sent), counted, and the queue keeps working. */
    for (int f = 0; f < 3; f++) {
        uint8_t frame[HDR + 100];
        make_frame(frame, f, 100);
        memcpy(g_at(TX_BUF_GPA(f), sizeof(frame)), frame, sizeof(frame));
        uint64_t g = TX_BUF_GPA(f);
        uint32_t l = sizeof(frame);
        bool w = false;
        post(TXQ, &g, &l, &w, 1);
    }
    virtio_mmio_kick(&m, TXQ);
    cr_assert_eq(used_idx(TXQ), 3);
    cr_assert_eq(virtio_net_counters(net).tap_write_fails, 3);
    cr_assert_eq(virtio_net_counters(net).tx_packets, 0);
    /* A later rx kick reads nothing more. */
    virtio_mmio_kick(&m, RXQ);
    evloop_run_once(&loop, 1);
    cr_assert_eq(virtio_net_counters(net).tap_read_fails, 1);
}
