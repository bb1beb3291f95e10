/*
 * The MMDS inside virtio-net (through virtio-mmio, a socketpair as the tap, as test_virtio_net.c does): on an
 * MMDS-enabled NIC an ARP request for the MMDS address, split over two descriptors, is answered in the rx queue
 * and never reaches the tap; other frames go to the tap unchanged; a NIC without the MMDS passes everything.
 */
#include <criterion/criterion.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/event_loop.h"
#include "devices/mmds/net_stack.h"
#include "devices/virtio/mmio.h"
#include "devices/virtio/net.h"
#include "devices/virtio/net_proto.h"
#include "devices/virtio/virtio.h"
#include "tests/unit/virtio_fixture.h"

#define HDR VIRTIO_NET_HDR_LEN
#define RXQ VIRTIO_NET_RXQ
#define TXQ VIRTIO_NET_TXQ
#define RX_GPA(i) (0x100000ULL + 0x1000ULL * (i))
#define TX_GPA(i) (0x200000ULL + 0x1000ULL * (i))

static struct event_loop loop;
static struct virtio_mmio m;
static struct virtio_net *net;
static struct mmds_store *store;
static int sv[2] = {-1, -1};
static bool started;

static void start(bool with_mmds)
{
    vfx_ram_init(4ULL << 20);
    cr_assert_eq(mmds_store_new(&store, 0), 0);
    cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    cr_assert_eq(evloop_init(&loop), 0);
    struct net_config cfg = {.id = "eth0", .tap = "unused", .mmds = with_mmds ? store : NULL};
    cr_assert_eq(virtio_net_create_fd(&net, &cfg, sv[0], false), 0);
    cr_assert_eq(virtio_mmio_init(&m, "net0", &virtio_net_ops, net, &vfx.gm, &loop, -1, 0xd0001000ULL, 6,
                                  vfx_irq_line(6)),
                 0);
    vfx.m = &m;
    started = true;
    vfx_queue_at(RXQ, 64, 0x1000, 0x2000, 0x3000);
    vfx_queue_at(TXQ, 64, 0x5000, 0x6000, 0x7000);
    vfx_wr(VIRTIO_MMIO_STATUS, 0);
    memset(g_at(0, 0x10000), 0, 0x10000);
    vfx_driver_up(BIT64(VIRTIO_F_VERSION_1) | BIT64(VIRTIO_NET_F_MRG_RXBUF), 2);
}

static void stop(void)
{
    if (!started)
        return;
    started = false;
    vfx_wr(VIRTIO_MMIO_STATUS, 0);
    virtio_mmio_destroy(&m);
    virtio_net_free(net);
    close(sv[1]);
    evloop_destroy(&loop);
    vfx_ram_free();
    mmds_store_free(store);
}

TestSuite(mmds_virtio, .fini = stop);

/* An ARP request for target (host order) from 192.168.0.2, after a zero virtio-net header. */
static size_t arp_request(uint8_t *f, uint32_t target)
{
    memset(f, 0, HDR + 42);
    uint8_t *e = f + HDR, *a = e + 14;
    memset(e, 0xff, 6);
    const uint8_t mac[6] = {6, 0, 0xac, 0x10, 0, 2};
    memcpy(e + 6, mac, 6);
    e[12] = 8;
    e[13] = 6;
    a[1] = 1;
    a[2] = 8;
    a[4] = 6;
    a[5] = 4;
    a[7] = 1;
    memcpy(a + 8, mac, 6);
    a[14] = 192, a[15] = 168, a[16] = 0, a[17] = 2;
    for (int i = 0; i < 4; i++)
        a[24 + i] = (uint8_t)(target >> (24 - 8 * i));
    return HDR + 42;
}

/* Posts f as a tx chain of two descriptors and kicks. */
static void transmit(const uint8_t *f, size_t n)
{
    memcpy(g_at(TX_GPA(0), 20), f, 20);
    memcpy(g_at(TX_GPA(1), n - 20), f + 20, n - 20);
    struct vfx_seg s[2] = {{TX_GPA(0), 20, false}, {TX_GPA(1), (uint32_t)(n - 20), false}};
    vfx_post(TXQ, s, 2, 0);
    virtio_mmio_kick(&m, TXQ);
}

static void post_rx(int i)
{
    struct vfx_seg s = {RX_GPA(i), 2048, true};
    vfx_post(RXQ, &s, 1, 0);
}

Test(mmds_virtio, arp_for_the_mmds_is_answered_in_rx)
{
    start(true);
    post_rx(0);
    virtio_mmio_kick(&m, RXQ);
    uint8_t f[128], got[256];
    size_t n = arp_request(f, MMDS_DEFAULT_IPV4);
    transmit(f, n);
    for (int i = 0; i < 50 && vfx_used_idx(RXQ) == 0; i++)
        evloop_run_once(&loop, 20);
    cr_assert_eq(vfx_used_idx(TXQ), 1, "the tx chain went back");
    cr_assert_eq(recv(sv[1], got, sizeof(got), MSG_DONTWAIT), -1, "nothing reached the tap");
    cr_assert_eq(vfx_used_idx(RXQ), 1, "the answer is in rx");
    cr_assert_eq(vfx_used_len(RXQ, 0), HDR + 42);
    const uint8_t *r = g_at(RX_GPA(0), HDR + 42);
    cr_expect_eq(r[HDR + 14 + 7], 2, "an ARP reply");
    const uint8_t mmds_mac[6] = MMDS_NET_MAC;
    cr_expect(memcmp(r + HDR + 14 + 8, mmds_mac, 6) == 0);
    /* ARP for another address goes to the tap as it was. */
    n = arp_request(f, 0xC0A80001);
    transmit(f, n);
    cr_assert_eq(recv(sv[1], got, sizeof(got), MSG_DONTWAIT), (ssize_t)n);
    cr_expect(memcmp(got, f, n) == 0);
}

Test(mmds_virtio, a_nic_without_the_mmds_passes_everything)
{
    start(false);
    uint8_t f[128], got[256];
    size_t n = arp_request(f, MMDS_DEFAULT_IPV4);
    transmit(f, n);
    cr_assert_eq(recv(sv[1], got, sizeof(got), MSG_DONTWAIT), (ssize_t)n);
    cr_expect(memcmp(got, f, n) == 0);
}
