/* virtio-bench, net figures: frames through virtio-net tx and rx, and raw. */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/event_loop.h"
#include "devices/virtio/mmio.h"
#include "devices/virtio/mmio_regs.h"
#include "devices/virtio/net.h"
#include "devices/virtio/net_proto.h"
#include "devices/virtio/virtio.h"
#include "perf/virtio_bench.h"

#define NET_RX_RING_GPA 0x10000ULL
#define NET_TX_RING_GPA 0x14000ULL
#define NET_RX_BUF_GPA 0x100000ULL
#define NET_TX_BUF_GPA 0x200000ULL
#define NET_BUF 2048

/* The "host side" of the link: a socketpair end, or a packet socket on the tap. */
struct link {
    int dev_fd;  /* handed to the device (or read/written raw) */
    int peer_fd; /* socketpair: the other end; tap: AF_PACKET socket bound to it */
    bool tap;
    int ifindex;
};

static int tap_open(const char *name)
{
    int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        die("/dev/net/tun", errno);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    if (ioctl(fd, TUNSETIFF, &ifr) < 0)
        die("TUNSETIFF", errno);
    int hdr = VNET_HDR;
    if (ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0)
        die("TUNSETVNETHDRSZ", errno);
    return fd;
}

/* Brings the tap up (no IPv6 chatter) and binds a packet socket to it. */
static void tap_link(struct link *l, const char *name)
{
    char p[128];
    snprintf(p, sizeof(p), "/proc/sys/net/ipv6/conf/%s/disable_ipv6", name);
    int f = open(p, O_WRONLY | O_CLOEXEC);
    if (f >= 0) {
        if (write(f, "1", 1) < 0) { /* best effort */
        }
        close(f);
    }
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
    if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
        die("SIOCGIFFLAGS", errno);
    ifr.ifr_flags |= IFF_UP;
    if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
        die("SIOCSIFFLAGS", errno);
    close(s);
    l->ifindex = (int)if_nametoindex(name);
    l->peer_fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (l->peer_fd < 0)
        die("AF_PACKET socket", errno);
    struct sockaddr_ll sll = {.sll_family = AF_PACKET, .sll_ifindex = l->ifindex};
    if (bind(l->peer_fd, (struct sockaddr *)&sll, sizeof(sll)) < 0)
        die("binding the packet socket", errno);
}

static void link_open(struct link *l)
{
    memset(l, 0, sizeof(*l));
    if (opt.tap) {
        l->tap = true;
        l->dev_fd = tap_open(opt.tap);
        tap_link(l, opt.tap);
        return;
    }
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
        die("socketpair", errno);
    l->dev_fd = sv[0];
    l->peer_fd = sv[1];
}

static void link_close(struct link *l, bool dev_fd_too)
{
    if (dev_fd_too)
        close(l->dev_fd);
    close(l->peer_fd);
}

/* A frame of `len` bytes (Ethernet header included) after a zero vnet header. */
static void make_frame(uint8_t *p, size_t len)
{
    static const uint8_t eth[14] = {0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x88, 0xb5};
    memset(p, 0, VNET_HDR);
    memcpy(p + VNET_HDR, eth, sizeof(eth));
    for (size_t i = sizeof(eth); i < len; i++)
        p[VNET_HDR + i] = (uint8_t)i;
}

/* Host side sends up to n frames (the link's own framing); returns how many went. */
static unsigned peer_send(struct link *l, const uint8_t *frame, size_t len, unsigned n)
{
    unsigned sent = 0;
    for (; sent < n; sent++) {
        ssize_t w = l->tap ? send(l->peer_fd, frame + VNET_HDR, len, MSG_DONTWAIT)
                           : send(l->peer_fd, frame, VNET_HDR + len, MSG_DONTWAIT);
        if (w < 0)
            break;
    }
    return sent;
}

/* Host side drains what arrived (socketpair only; a tap hands frames to the kernel). */
static uint64_t peer_drain(struct link *l, size_t expect)
{
    static uint8_t buf[65536];
    uint64_t n = 0;
    ssize_t r;
    if (l->tap)
        return 0;
    while ((r = recv(l->peer_fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
        if ((size_t)r == expect)
            n++;
    return n;
}

void bench_net(bool tx, size_t len, const struct rate_limiter_config *limit, const char *label)
{
    struct event_loop loop;
    struct virtio_mmio m;
    struct virtio_net *n;
    struct link l;
    link_open(&l);
    if (evloop_init(&loop))
        die("epoll", errno);
    struct net_config cfg = {.id = "bench", .tap = opt.tap ? opt.tap : "socketpair"};
    if (limit) {
        cfg.rx_rate_limiter = *limit;
        cfg.tx_rate_limiter = *limit;
    }
    if (virtio_net_create_fd(&n, &cfg, l.dev_fd, l.tap))
        die("virtio_net_create_fd", ENOMEM);
    virtio_mmio_init(&m, "bench-net", &virtio_net_ops, n, &gm, &loop, -1, 0xd0001000ULL, 6,
                     (struct irq_line){irq_set, NULL, 6});
    struct drv q[2];
    drv_init(&q[0], &m, 0, NET_RX_RING_GPA);
    drv_init(&q[1], &m, 1, NET_TX_RING_GPA);
    uint8_t frame[VNET_HDR + 1514];
    make_frame(frame, len);
    for (uint16_t i = 0; i < QSIZE; i++) {
        drv_desc(&q[0], i, NET_RX_BUF_GPA + (uint64_t)NET_BUF * i, NET_BUF, VIRTQ_DESC_F_WRITE, 0);
        drv_desc(&q[1], i, NET_TX_BUF_GPA + (uint64_t)NET_BUF * i, (uint32_t)(VNET_HDR + len), 0, 0);
        memcpy(gpa_ptr(NET_TX_BUF_GPA + (uint64_t)NET_BUF * i, VNET_HDR + len), frame, VNET_HDR + len);
    }
    transport_up(&m, BIT64(VIRTIO_F_VERSION_1) | BIT64(VIRTIO_F_EVENT_IDX) | BIT64(VIRTIO_NET_F_MRG_RXBUF), q, 2);

    char fig[40];
    snprintf(fig, sizeof(fig), "net %s %zuB frames", tx ? "tx" : "rx", len);
    struct result *r = add_result(fig, label ? label : l.tap ? "virtio tap" : "virtio", 0);
    struct drv *d = &q[tx ? 1 : 0];
    irq_count = 0;
    uint64_t frames = 0, errors = 0;
    struct net_counters c0 = virtio_net_counters(n);
    /* Every buffer in the ring from the start; each reaped one goes straight back. */
    for (uint16_t i = 0; i < QSIZE; i++)
        drv_add(d, i);
    drv_kick(d);
    double t0 = now(), end = t0 + opt.secs;
    unsigned iter = 0;
    do {
        if (!tx)
            peer_send(&l, frame, len, QSIZE);
        evloop_run_once(&loop, 0); /* kicks, fd readiness */
        if (tx)
            frames += peer_drain(&l, VNET_HDR + len);
        uint32_t id, ulen;
        while (drv_used(d, &id, &ulen)) {
            if (!tx) {
                uint16_t nb;
                memcpy(&nb, gpa_ptr(NET_RX_BUF_GPA + (uint64_t)NET_BUF * id + VIRTIO_NET_HDR_NUM_BUFFERS, 2), 2);
                if (ulen == VNET_HDR + len && nb == 1)
                    frames++;
                else
                    errors++;
            }
            drv_add(d, (uint16_t)id);
        }
        drv_kick(d);
        drv_enable_cb(d);
        mmio_w(&m, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_INT_USED_RING | VIRTIO_INT_CONFIG);
        if ((++iter & 63) == 0)
            check_device(&m);
    } while (now() < end);
    r->secs = now() - t0;
    r->cpu += cpu_now();
    if (tx && l.tap)
        frames = virtio_net_counters(n).tx_packets - c0.tx_packets;
    r->ops = frames;
    r->bytes = frames * len;
    r->errors = errors;
    r->kicks = d->kicks;
    r->irqs = irq_count;

    mmio_w(&m, VIRTIO_MMIO_STATUS, 0);
    virtio_mmio_destroy(&m);
    virtio_net_free(n); /* closes dev_fd */
    link_close(&l, false);
    evloop_destroy(&loop);
}

/* The same frames written to / read from the same kind of fd, no device. */
static void bench_net_raw(bool tx, size_t len)
{
    struct link l;
    link_open(&l);
    uint8_t frame[VNET_HDR + 1514], buf[65536];
    make_frame(frame, len);
    char fig[40];
    snprintf(fig, sizeof(fig), "net %s %zuB frames", tx ? "tx" : "rx", len);
    struct result *r = add_result(fig,
                                  l.tap ? (tx ? "raw write tap" : "raw read tap") : (tx ? "raw write" : "raw read"), 0);
    uint64_t frames = 0, errors = 0;
    double t0 = now(), end = t0 + opt.secs;
    do {
        if (tx) {
            for (unsigned i = 0; i < QSIZE; i++) {
                ssize_t w = write(l.dev_fd, frame, VNET_HDR + len);
                if (w < 0)
                    break;
                if (l.tap)
                    frames++;
            }
            frames += peer_drain(&l, VNET_HDR + len);
        } else {
            peer_send(&l, frame, len, QSIZE);
            ssize_t got;
            while ((got = read(l.dev_fd, buf, sizeof(buf))) > 0) {
                if ((size_t)got == VNET_HDR + len)
                    frames++;
                else
                    errors++;
            }
        }
    } while (now() < end);
    r->secs = now() - t0;
    r->cpu += cpu_now();
    r->ops = frames;
    r->bytes = frames * len;
    r->errors = errors;
    link_close(&l, true);
}

void run_net(void)
{
    if (!opt.json_only)
        fprintf(stderr, "net: %s, %.1f s per figure\n", opt.tap ? opt.tap : "SOCK_SEQPACKET socketpair", opt.secs);
    static const size_t sizes[] = {64, 1500};
    for (int t = 1; t >= 0; t--)
        for (int s = 0; s < 2; s++) {
            bench_net(t == 1, sizes[s], NULL, NULL);
            bench_net_raw(t == 1, sizes[s]);
        }
}
