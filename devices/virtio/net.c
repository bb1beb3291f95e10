#include "devices/virtio/net.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "devices/mmds/net_stack.h"
#include "devices/virtio/net_proto.h"
#include "devices/virtio/virtio.h"

#define RXQ VIRTIO_NET_RXQ
#define TXQ VIRTIO_NET_TXQ
#define VNET_HDR_LEN VIRTIO_NET_HDR_LEN
#define MAX_FRAME (65536 + VNET_HDR_LEN)
#define MAX_RX_CHAINS 64

struct virtio_net {
    struct net_config cfg;
    char id[64], tap_name[IFNAMSIZ];
    int fd;
    bool is_tap;
    struct virtio_dev *vd; /* set when a transport attaches */
    bool watching;         /* fd registered in the event loop */
    uint32_t watch_events;
    /* A frame read from the tap that the guest had no room for yet. */
    uint8_t *pending;
    size_t pending_len;
    bool tx_blocked; /* tap was full: wait for EPOLLOUT */
    bool tap_gone;   /* a read failed for good (the tap was deleted): the fd is no longer watched */
    struct net_counters ctr;
    struct rate_limiter limiter[2]; /* indexed by queue: RXQ, TXQ */
    struct virtq_chain chain;
    struct virtq_chain rx_chains[MAX_RX_CHAINS];
    struct iovec iov[VIRTQ_MAX_CHAIN];
    struct mmds_net *mmds; /* this NIC reaches the MMDS (cfg.mmds): its frames are looked at first */
    uint8_t *mmds_frame;   /* a tx frame gathered from its chain for the MMDS */
};

struct net_counters virtio_net_counters(const struct virtio_net *n)
{
    struct net_counters c = n->ctr;
    c.rx_throttled = n->limiter[RXQ].throttled;
    c.tx_throttled = n->limiter[TXQ].throttled;
    c.rx_limiter_wakeups = n->limiter[RXQ].wakeups;
    c.tx_limiter_wakeups = n->limiter[TXQ].wakeups;
    return c;
}
struct rate_limiter *virtio_net_rate_limiter(struct virtio_net *n, unsigned queue) { return &n->limiter[queue & 1]; }

static int alloc_dev(struct virtio_net **out, const struct net_config *cfg)
{
    struct virtio_net *n = calloc(1, sizeof(*n));
    if (!n || !(n->pending = malloc(MAX_FRAME))) {
        free(n);
        return -ENOMEM;
    }
    n->cfg = *cfg;
    snprintf(n->id, sizeof(n->id), "%s", cfg->id);
    snprintf(n->tap_name, sizeof(n->tap_name), "%s", cfg->tap ? cfg->tap : "");
    n->cfg.id = n->id;
    n->cfg.tap = n->tap_name;
    n->fd = -1;
    int rc = rate_limiter_init(&n->limiter[RXQ], &cfg->rx_rate_limiter);
    if (!rc)
        rc = rate_limiter_init(&n->limiter[TXQ], &cfg->tx_rate_limiter);
    else
        n->limiter[TXQ].timer_fd = -1;
    if (rc) {
        virtio_net_free(n);
        return rc;
    }
    if (cfg->mmds) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        if (!(n->mmds_frame = malloc(MAX_FRAME)) ||
            mmds_net_new(&n->mmds, cfg->mmds, (uint64_t)ts.tv_nsec ^ (uint64_t)(uintptr_t)n)) {
            virtio_net_free(n);
            return -ENOMEM;
        }
    }
    *out = n;
    return 0;
}

int virtio_net_create_fd(struct virtio_net **out, const struct net_config *cfg, int fd, bool is_tap)
{
    int rc = alloc_dev(out, cfg);
    if (rc)
        return rc;
    (*out)->fd = fd;
    (*out)->is_tap = is_tap;
    return 0;
}

int virtio_net_create(struct virtio_net **out, const struct net_config *cfg, struct errmsg *err)
{
    if (!cfg->tap || !*cfg->tap || strlen(cfg->tap) >= IFNAMSIZ)
        return err_set(err, -EINVAL, "network interface '%s': tap name must be 1 to %d characters", cfg->id,
                       IFNAMSIZ - 1);
    int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return err_set(err, -errno, "network interface '%s': cannot open /dev/net/tun: %s", cfg->id, strerror(errno));
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", cfg->tap);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    int hdr = VNET_HDR_LEN;
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
        int e = errno;
        close(fd);
        return err_set(err, -e, "network interface '%s': cannot attach to tap '%s': %s%s", cfg->id, cfg->tap,
                       strerror(e), e == EBUSY ? " (another process has it open)" : "");
    }
    if (ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0) {
        int e = errno;
        close(fd);
        return err_set(err, -e, "network interface '%s': TUNSETVNETHDRSZ: %s", cfg->id, strerror(e));
    }
    int rc = virtio_net_create_fd(out, cfg, fd, true);
    if (rc) {
        close(fd);
        return err_set(err, rc, "out of memory");
    }
    return 0;
}

void virtio_net_free(struct virtio_net *n)
{
    if (!n)
        return;
    if (n->fd >= 0)
        close(n->fd);
    rate_limiter_destroy(&n->limiter[RXQ]);
    rate_limiter_destroy(&n->limiter[TXQ]);
    free(n->pending);
    mmds_net_free(n->mmds);
    free(n->mmds_frame);
    free(n);
}

static uint64_t net_features(void *dev)
{
    struct virtio_net *n = dev;
    uint64_t f = BIT64(VIRTIO_F_VERSION_1) | BIT64(VIRTIO_F_EVENT_IDX) | BIT64(VIRTIO_F_INDIRECT_DESC) |
                 BIT64(VIRTIO_NET_F_CSUM) | BIT64(VIRTIO_NET_F_GUEST_CSUM) | BIT64(VIRTIO_NET_F_GUEST_TSO4) |
                 BIT64(VIRTIO_NET_F_GUEST_TSO6) | BIT64(VIRTIO_NET_F_HOST_TSO4) | BIT64(VIRTIO_NET_F_HOST_TSO6) |
                 BIT64(VIRTIO_NET_F_MRG_RXBUF);
    if (n->cfg.has_mac)
        f |= BIT64(VIRTIO_NET_F_MAC);
    return f;
}

static void net_config_read(void *dev, uint64_t off, uint8_t *data, uint32_t len)
{
    struct virtio_net *n = dev;
    uint8_t cfg[8] = {0};
    memcpy(cfg + VIRTIO_NET_CFG_MAC, n->cfg.mac, 6);
    for (uint32_t i = 0; i < len; i++)
        data[i] = off + i < sizeof(cfg) ? cfg[off + i] : 0;
}

static void watch(struct virtio_net *n, uint32_t events);

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* A frame of the MMDS's for the guest, made the pending rx frame (header: no offloads); false when none. */
static bool mmds_pending(struct virtio_net *n)
{
    size_t got = n->mmds ? mmds_net_output(n->mmds, n->pending + VNET_HDR_LEN, MAX_FRAME - VNET_HDR_LEN) : 0;
    if (!got)
        return false;
    memset(n->pending, 0, VNET_HDR_LEN);
    n->pending_len = got + VNET_HDR_LEN;
    return true;
}

/* Whether the MMDS took the popped tx frame (ARP for its address, TCP to it) instead of the tap. */
static bool mmds_took(struct virtio_net *n)
{
    uint8_t head[VNET_HDR_LEN + MMDS_NET_CLASSIFY_LEN];
    uint64_t len = n->chain.readable, h = len < sizeof(head) ? len : sizeof(head);
    if (!n->mmds || virtq_chain_read(&n->chain, n->vd->gm, 0, head, h) ||
        !mmds_net_wants(n->mmds, head + VNET_HDR_LEN, h - VNET_HDR_LEN))
        return false;
    if (virtq_chain_read(&n->chain, n->vd->gm, 0, n->mmds_frame, len))
        return false;
    /* virtio_net_hdr: flags (NEEDS_CSUM = 1: the guest left the TCP checksum to us), gso_type (0: none). */
    return mmds_net_take(n->mmds, n->mmds_frame + VNET_HDR_LEN, len - VNET_HDR_LEN, n->mmds_frame[0] & 1,
                         n->mmds_frame[1] != 0, now_ns());
}

/* Copies the pending frame into as many rx chains as it needs; false if the ring lacks room. */
static bool deliver_pending(struct virtio_net *n)
{
    struct virtio_dev *vd = n->vd;
    struct virtq *q = &vd->queues[RXQ];
    bool mrg = virtio_dev_has_feature(vd, VIRTIO_NET_F_MRG_RXBUF);
    unsigned k = 0;
    uint64_t room = 0;
    while (room < n->pending_len) {
        if (k == MAX_RX_CHAINS || (!mrg && k == 1))
            break;
        int rc = virtq_pop(q, vd->gm, &n->rx_chains[k]);
        if (rc < 0) {
            virtio_dev_set_needs_reset(vd, "the guest handed over a malformed rx descriptor chain");
            return false;
        }
        if (rc == 0) {
            /* Empty: a buffer the driver adds while we set avail_event below would get no kick. */
            if (virtq_rearm(q, vd->gm))
                continue;
            break;
        }
        room += n->rx_chains[k].writable;
        k++;
    }
    if (room < n->pending_len || (k == 0)) {
        /*
         * Not enough: ask for a kick at the first entry not taken yet, then
         * give the chains back; the rx kick resumes delivery.
         */
        virtq_set_avail_event(q, vd->gm);
        q->last_avail -= (uint16_t)k;
        n->ctr.rx_waits++;
        return false;
    }
    uint16_t nbuf = (uint16_t)k;
    memcpy(n->pending + VIRTIO_NET_HDR_NUM_BUFFERS, &nbuf, 2);
    uint64_t off = 0;
    for (unsigned i = 0; i < k; i++) {
        uint64_t chunk = n->pending_len - off;
        if (chunk > n->rx_chains[i].writable)
            chunk = n->rx_chains[i].writable;
        virtq_chain_write(&n->rx_chains[i], vd->gm, 0, n->pending + off, chunk);
        virtq_push(q, vd->gm, n->rx_chains[i].head, (uint32_t)chunk);
        off += chunk;
    }
    n->ctr.rx_packets++;
    n->ctr.rx_bytes += n->pending_len - VNET_HDR_LEN;
    n->pending_len = 0;
    return true;
}

/*
 * A read that fails for good: a deleted tap reads EBADFD and polls EPOLLERR for ever, so the fd leaves the event
 * loop (watching it would spin the VMM thread) and the failure is logged once. The guest's NIC stays; what it sends
 * is dropped (counted in tap_write_fails).
 */
static void tap_failed(struct virtio_net *n, int e)
{
    n->ctr.tap_read_fails++;
    n->tap_gone = true;
    if (n->watching && n->vd->loop)
        evloop_remove(n->vd->loop, n->fd);
    n->watching = false;
    log_warn("net '%s': reading tap '%s' failed: %s (was it deleted?); no more frames reach the guest", n->id,
             n->tap_name, e ? strerror(e) : "end of file");
}

static void process_rx(struct virtio_net *n)
{
    struct virtio_dev *vd = n->vd;
    bool delivered = false;
    for (;;) {
        if (!n->pending_len && !mmds_pending(n)) {
            if (n->tap_gone)
                break;
            ssize_t got = read(n->fd, n->pending, MAX_FRAME);
            if (got < 0 && (errno == EAGAIN || errno == EINTR))
                break;
            if (got <= 0) {
                tap_failed(n, got < 0 ? errno : 0);
                break;
            }
            if (got <= VNET_HDR_LEN)
                continue; /* a runt: nothing to deliver */
            n->pending_len = (size_t)got;
        }
        /* The frame waits in `pending` (the tap unwatched) until the limiter's timer says it may go. */
        uint64_t bytes = n->pending_len - VNET_HDR_LEN;
        if (!rate_limiter_consume(&n->limiter[RXQ], 1, bytes))
            break;
        if (!deliver_pending(n)) {
            rate_limiter_refund(&n->limiter[RXQ], 1, bytes); /* no room: charged again when it goes */
            break;
        }
        delivered = true;
    }
    if (delivered)
        virtio_dev_notify_used(vd, RXQ);
    /* Stop watching the tap while a frame waits for guest buffers: the rx kick resumes us. */
    uint32_t ev = (n->pending_len ? 0 : EPOLLIN) | (n->tx_blocked ? EPOLLOUT : 0);
    watch(n, ev);
}

static void process_tx(struct virtio_net *n)
{
    struct virtio_dev *vd = n->vd;
    struct virtq *q = &vd->queues[TXQ];
    bool pushed = false;
    n->tx_blocked = false;
    for (;;) {
        int rc = virtq_pop(q, vd->gm, &n->chain);
        if (rc == 0) {
            if (!virtq_rearm(q, vd->gm))
                break;
            continue;
        }
        if (rc < 0 || n->chain.writable || n->chain.readable < VNET_HDR_LEN || n->chain.readable > MAX_FRAME) {
            virtio_dev_set_needs_reset(vd, "the guest handed over a malformed tx descriptor chain");
            return;
        }
        uint64_t bytes = n->chain.readable - VNET_HDR_LEN;
        if (!rate_limiter_consume(&n->limiter[TXQ], 1, bytes)) {
            virtq_unpop(q); /* stays in the ring: the limiter's timer resumes tx */
            break;
        }
        ssize_t w;
        if (mmds_took(n)) {
            virtq_push(q, vd->gm, n->chain.head, 0);
            pushed = true;
            continue;
        }
        if (n->chain.nbufs == 1) {
            /* The usual one-buffer frame: plain write(), no iovec for the kernel to import. */
            w = write(n->fd, n->chain.bufs[0].host, n->chain.bufs[0].len);
        } else {
            for (unsigned i = 0; i < n->chain.nbufs; i++) {
                n->iov[i].iov_base = n->chain.bufs[i].host; /* mapping checked by virtq_pop */
                n->iov[i].iov_len = n->chain.bufs[i].len;
            }
            w = writev(n->fd, n->iov, (int)n->chain.nbufs);
        }
        if (w < 0 && (errno == EAGAIN || errno == ENOBUFS)) {
            virtq_unpop(q); /* tap full: keep the frame, resume on EPOLLOUT */
            rate_limiter_refund(&n->limiter[TXQ], 1, bytes);
            n->tx_blocked = true;
            n->ctr.tx_waits++;
            break;
        }
        if (w < 0) {
            /* Logged at the 1st, 2nd, 4th, 8th... failure: a tap gone for good cannot flood the log. */
            uint64_t k = ++n->ctr.tap_write_fails;
            if (!(k & (k - 1)))
                log_warn("net '%s': tap write failed: %s (frame dropped, %llu so far)", n->id, strerror(errno),
                         (unsigned long long)k);
        } else {
            n->ctr.tx_packets++;
            n->ctr.tx_bytes += n->chain.readable - VNET_HDR_LEN;
        }
        virtq_push(q, vd->gm, n->chain.head, 0);
        pushed = true;
    }
    if (pushed)
        virtio_dev_notify_used(vd, TXQ);
    if (n->mmds && mmds_net_has_output(n->mmds))
        process_rx(n); /* the MMDS's answers go straight to the guest */
    watch(n, (n->pending_len ? 0 : EPOLLIN) | (n->tx_blocked ? EPOLLOUT : 0));
}

static void on_tap(void *opaque, uint32_t events)
{
    struct virtio_net *n = opaque;
    struct virtio_dev *vd = n->vd;
    virtio_dev_lock(vd);
    if (virtio_dev_driver_ok(vd)) {
        if (events & EPOLLOUT)
            process_tx(n);
        if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
            process_rx(n);
    }
    virtio_dev_unlock(vd);
}

static void watch(struct virtio_net *n, uint32_t events)
{
    if (!n->vd->loop || n->tap_gone || (n->watching && n->watch_events == events))
        return;
    if (!n->watching) {
        if (evloop_add(n->vd->loop, n->fd, events, on_tap, n) == 0)
            n->watching = true;
    } else {
        evloop_modify(n->vd->loop, n->fd, events);
    }
    n->watch_events = events;
}

/* A limiter's timer: tokens are back for that direction. */
static void limiter_ready(struct virtio_net *n, unsigned queue)
{
    struct virtio_dev *vd = n->vd;
    virtio_dev_lock(vd);
    rate_limiter_timer_event(&n->limiter[queue]);
    if (virtio_dev_driver_ok(vd)) {
        if (queue == TXQ)
            process_tx(n);
        else
            process_rx(n);
    }
    virtio_dev_unlock(vd);
}

static void rx_limiter_ready(void *opaque, uint32_t events)
{
    (void)events;
    limiter_ready(opaque, RXQ);
}

static void tx_limiter_ready(void *opaque, uint32_t events)
{
    (void)events;
    limiter_ready(opaque, TXQ);
}

void virtio_net_update_rate_limiters(struct virtio_net *n, const struct rate_limiter_update *rx,
                                     const struct rate_limiter_update *tx)
{
    struct virtio_dev *vd = n->vd;
    if (vd)
        virtio_dev_lock(vd);
    if (rx)
        rate_limiter_update(&n->limiter[RXQ], rx);
    if (tx)
        rate_limiter_update(&n->limiter[TXQ], tx);
    if (vd && virtio_dev_driver_ok(vd)) {
        process_tx(n);
        process_rx(n);
    }
    if (vd)
        virtio_dev_unlock(vd);
}

static int net_activate(void *dev, struct virtio_dev *vd)
{
    struct virtio_net *n = dev;
    n->vd = vd;
    int rc = rate_limiter_watch(&n->limiter[RXQ], vd->loop, rx_limiter_ready, n);
    if (!rc)
        rc = rate_limiter_watch(&n->limiter[TXQ], vd->loop, tx_limiter_ready, n);
    if (rc)
        return rc;
    n->pending_len = 0;
    n->tx_blocked = false;
    if (n->is_tap) {
        /* Offloads the guest can take (it negotiated them) may be handed to it by the tap. */
        unsigned off = 0;
        if (virtio_dev_has_feature(vd, VIRTIO_NET_F_GUEST_CSUM)) {
            off |= TUN_F_CSUM;
            if (virtio_dev_has_feature(vd, VIRTIO_NET_F_GUEST_TSO4))
                off |= TUN_F_TSO4;
            if (virtio_dev_has_feature(vd, VIRTIO_NET_F_GUEST_TSO6))
                off |= TUN_F_TSO6;
        }
        if (ioctl(n->fd, TUNSETOFFLOAD, off) < 0)
            log_warn("net '%s': TUNSETOFFLOAD %#x: %s", n->id, off, strerror(errno));
    }
    watch(n, EPOLLIN);
    return 0;
}

static void net_notify(void *dev, struct virtio_dev *vd, uint16_t q)
{
    struct virtio_net *n = dev;
    n->vd = vd;
    if (q == TXQ)
        process_tx(n);
    else if (q == RXQ)
        process_rx(n); /* new rx buffers: deliver what waits, read on */
}

static void net_reset(void *dev, struct virtio_dev *vd)
{
    struct virtio_net *n = dev;
    if (n->watching && vd->loop)
        evloop_remove(vd->loop, n->fd);
    n->watching = false;
    n->pending_len = 0;
    n->tx_blocked = false;
}

const struct virtio_dev_ops virtio_net_ops = {
    .device_id = VIRTIO_ID_NET,
    .num_queues = 2,
    .features = net_features,
    .config_read = net_config_read,
    .config_write = NULL,
    .activate = net_activate,
    .queue_notify = net_notify,
    .reset = net_reset,
};
