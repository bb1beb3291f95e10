/*
 * virtio-vsock, the guest half: the rx, tx and event queues, the packets and
 * the connection state machine (virtio 1.2, 5.10.6). Every guest packet is
 * hostile input: a bad one is dropped or answered with RST and touches no
 * other connection. Data travels between guest buffers and host sockets
 * directly; only what a slow host socket has not taken yet is copied, into a
 * per-connection buffer no larger than the credit the guest was granted.
 */
#include "devices/virtio/vsock.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "devices/virtio/virtio.h"
#include "devices/virtio/vsock_internal.h"

#define RXQ VIRTIO_VSOCK_RXQ
#define TXQ VIRTIO_VSOCK_TXQ
#define EVQ VIRTIO_VSOCK_EVENTQ

struct vsock_counters virtio_vsock_counters(const struct virtio_vsock *vs) { return vs->ctr; }

int virtio_vsock_create(struct virtio_vsock **out, const struct vsock_config *cfg, struct errmsg *err)
{
    *out = NULL;
    if (!cfg->uds_path || !*cfg->uds_path || strlen(cfg->uds_path) > VSOCK_UDS_PATH_MAX)
        return err_set(err, -EINVAL, "vsock: uds_path must be 1 to %d bytes long", VSOCK_UDS_PATH_MAX);
    struct virtio_vsock *vs = calloc(1, sizeof(*vs));
    if (!vs)
        return err_set(err, -ENOMEM, "out of memory");
    vs->guest_cid = cfg->guest_cid;
    snprintf(vs->uds_path, sizeof(vs->uds_path), "%s", cfg->uds_path);
    vs->epfd = vs->listen_fd = -1;
    vs->next_host_port = VSOCK_HOST_PORT_FIRST;
    int rc = vsock_host_listen(vs, err);
    if (rc) {
        virtio_vsock_free(vs);
        return rc;
    }
    *out = vs;
    return 0;
}

void virtio_vsock_free(struct virtio_vsock *vs)
{
    if (!vs)
        return;
    if (vs->vd)
        vsock_host_stop(vs);
    vsock_host_drop_all(vs);
    if (vs->listen_fd >= 0)
        close(vs->listen_fd);
    if (vs->epfd >= 0)
        close(vs->epfd);
    free(vs);
}

uint32_t vsock_conn_peer_credit(const struct vsock_conn *c)
{
    uint32_t in_flight = c->rx_cnt - c->peer_fwd_cnt;
    /* A guest claiming to have forwarded more than it got, or a shrunk buffer: no credit. */
    return in_flight >= c->peer_buf_alloc ? 0 : c->peer_buf_alloc - in_flight;
}

void vsock_conn_schedule(struct virtio_vsock *vs, struct vsock_conn *c)
{
    if (c->on_send_list || c->state == CONN_DEAD)
        return;
    c->on_send_list = true;
    c->send_next = NULL;
    if (vs->send_tail)
        vs->send_tail->send_next = c;
    else
        vs->send_head = c;
    vs->send_tail = c;
}

void vsock_queue_rst(struct virtio_vsock *vs, uint32_t local_port, uint32_t peer_port, bool hostile)
{
    unsigned cap = hostile ? VSOCK_ORPHAN_HOSTILE : VSOCK_MAX_ORPHAN_RST;
    if (vs->orphan_len >= cap) {
        vs->ctr.rst_dropped++;
        return;
    }
    unsigned i = (vs->orphan_head + vs->orphan_len++) % VSOCK_MAX_ORPHAN_RST;
    vs->orphans[i] = (struct vsock_orphan_rst){local_port, peer_port};
}

void vsock_conn_reset(struct virtio_vsock *vs, struct vsock_conn *c)
{
    if (c->state == CONN_DEAD)
        return;
    if (c->state != CONN_HANDSHAKE)
        vsock_queue_rst(vs, c->local_port, c->peer_port, false);
    vsock_conn_close(vs, c);
}

void vsock_conn_forwarded(struct virtio_vsock *vs, struct vsock_conn *c, uint32_t n)
{
    c->fwd_cnt += n;
    /* What the guest believes it may still send: tell it of the space before it runs dry. */
    uint32_t known_free = VSOCK_CONN_BUF - (c->recv_cnt - c->last_fwd_sent);
    if (known_free < VSOCK_CREDIT_LOW && c->fwd_cnt != c->last_fwd_sent) {
        c->pending |= PEND_CREDIT_UPDATE;
        vsock_conn_schedule(vs, c);
    }
}

void vsock_conn_host_connect(struct virtio_vsock *vs, struct vsock_conn *c, uint32_t port)
{
    uint32_t local = vs->next_host_port;
    while (vsock_conn_find(vs, local, port))
        local = local == UINT32_MAX - 1 ? VSOCK_HOST_PORT_FIRST : local + 1;
    vs->next_host_port = local == UINT32_MAX - 1 ? VSOCK_HOST_PORT_FIRST : local + 1;
    vsock_conn_bind(vs, c, local, port);
    c->state = CONN_CONNECTING;
    c->pending |= PEND_REQUEST;
    vsock_conn_update_watch(vs, c); /* nothing to read until the guest answers */
    vsock_conn_schedule(vs, c);
}

/* ---- to the guest (rx queue) ---- */

static size_t put_hdr(struct virtio_vsock *vs, const struct virtq_chain *ch, uint32_t local, uint32_t peer, uint16_t op,
                      uint32_t flags, uint32_t len, uint32_t fwd_cnt)
{
    struct vsock_hdr h = {.src_cid = VSOCK_HOST_CID,
                          .dst_cid = vs->guest_cid,
                          .src_port = local,
                          .dst_port = peer,
                          .len = len,
                          .type = VSOCK_TYPE_STREAM,
                          .op = op,
                          .flags = flags,
                          .buf_alloc = VSOCK_CONN_BUF,
                          .fwd_cnt = fwd_cnt};
    uint8_t b[VSOCK_HDR_LEN];
    vsock_hdr_encode(&h, b);
    virtq_chain_write(ch, vs->vd->gm, 0, b, VSOCK_HDR_LEN);
    vs->ctr.rx_packets++;
    return VSOCK_HDR_LEN + len;
}

/* Reads host data straight into the chain after the header: bytes read, 0 at EOF, -errno. */
static ssize_t read_into(struct virtio_vsock *vs, struct vsock_conn *c, const struct virtq_chain *ch, uint64_t max)
{
    int n = 0;
    uint64_t skip = VSOCK_HDR_LEN, want = max;
    for (unsigned i = 0; i < ch->nbufs && want; i++) {
        const struct virtq_buf *b = &ch->bufs[i];
        if (!b->device_writes)
            continue;
        if (skip >= b->len) {
            skip -= b->len;
            continue;
        }
        uint64_t len = b->len - skip < want ? b->len - skip : want;
        vs->iov[n].iov_base = b->host + skip; /* checked when the chain was popped */
        vs->iov[n++].iov_len = len;
        want -= len;
        skip = 0;
    }
    ssize_t got = readv(c->fd, vs->iov, n);
    return got < 0 ? -errno : got;
}

/* One packet for connection c into the chain: its length, or 0 if c had nothing after all. */
static size_t fill_from_conn(struct virtio_vsock *vs, struct vsock_conn *c, const struct virtq_chain *ch)
{
    uint16_t op = VSOCK_OP_INVALID;
    uint32_t flags = 0, len = 0;
    if (c->pending & PEND_REQUEST) {
        op = VSOCK_OP_REQUEST;
        c->pending &= ~(uint32_t)PEND_REQUEST;
    } else if (c->pending & PEND_RESPONSE) {
        op = VSOCK_OP_RESPONSE;
        c->pending &= ~(uint32_t)PEND_RESPONSE;
    } else if (c->state == CONN_ESTABLISHED && c->readable && !c->host_eof && !c->guest_shut_rcv) {
        uint64_t max = vsock_conn_peer_credit(c);
        if (max > ch->writable - VSOCK_HDR_LEN)
            max = ch->writable - VSOCK_HDR_LEN;
        if (max > VSOCK_MAX_PKT_PAYLOAD)
            max = VSOCK_MAX_PKT_PAYLOAD;
        ssize_t got = max ? read_into(vs, c, ch, max) : -EAGAIN;
        if (got > 0) {
            op = VSOCK_OP_RW;
            len = (uint32_t)got;
            c->rx_cnt += len;
            vs->ctr.rx_bytes += len;
            if (!vsock_conn_peer_credit(c) && !c->credit_requested)
                c->pending |= PEND_CREDIT_REQUEST;
        } else if (got == 0) {
            c->host_eof = true; /* the host sends no more; the guest reads to the end first */
            c->readable = false;
            c->pending |= PEND_SHUTDOWN;
        } else if (got == -EAGAIN || got == -EINTR) {
            c->readable = false;
        } else {
            vsock_conn_reset(vs, c);
            return 0;
        }
    }
    if (op == VSOCK_OP_INVALID) {
        if (c->pending & PEND_SHUTDOWN) {
            op = VSOCK_OP_SHUTDOWN;
            flags = VSOCK_SHUTDOWN_SEND;
            c->pending &= ~(uint32_t)PEND_SHUTDOWN;
        } else if (c->pending & PEND_CREDIT_UPDATE) {
            op = VSOCK_OP_CREDIT_UPDATE;
        } else if (c->pending & PEND_CREDIT_REQUEST) {
            op = VSOCK_OP_CREDIT_REQUEST;
            c->pending &= ~(uint32_t)PEND_CREDIT_REQUEST;
            c->credit_requested = true;
        }
    }
    if (op != VSOCK_OP_INVALID) {
        c->pending &= ~(uint32_t)PEND_CREDIT_UPDATE; /* every packet carries our credit */
        c->last_fwd_sent = c->fwd_cnt;
    }
    bool more = c->pending || (c->readable && c->state == CONN_ESTABLISHED && vsock_conn_peer_credit(c));
    if (more)
        vsock_conn_schedule(vs, c); /* to the back: one packet per connection per turn */
    vsock_conn_update_watch(vs, c);
    return op == VSOCK_OP_INVALID ? 0 : put_hdr(vs, ch, c->local_port, c->peer_port, op, flags, len, c->fwd_cnt);
}

void vsock_deliver(struct virtio_vsock *vs)
{
    struct virtio_dev *vd = vs->vd;
    struct virtq *q = &vd->queues[RXQ];
    bool pushed = false;
    while (vs->orphan_len || vs->send_head) {
        int rc = virtq_pop(q, vd->gm, &vs->chain);
        if (rc == 0) {
            if (virtq_rearm(q, vd->gm))
                continue;
            break; /* the rx kick brings us back */
        }
        if (rc < 0 || vs->chain.writable < VSOCK_HDR_LEN) {
            virtio_dev_set_needs_reset(vd, "the guest handed over a malformed or too small rx buffer");
            return;
        }
        size_t len = 0;
        if (vs->orphan_len) {
            struct vsock_orphan_rst o = vs->orphans[vs->orphan_head];
            vs->orphan_head = (vs->orphan_head + 1) % VSOCK_MAX_ORPHAN_RST;
            vs->orphan_len--;
            len = put_hdr(vs, &vs->chain, o.local_port, o.peer_port, VSOCK_OP_RST, 0, 0, 0);
        } else {
            struct vsock_conn *c = vs->send_head;
            vs->send_head = c->send_next;
            if (!vs->send_head)
                vs->send_tail = NULL;
            c->on_send_list = false;
            if (c->state != CONN_DEAD)
                len = fill_from_conn(vs, c, &vs->chain);
        }
        if (!len) {
            virtq_unpop(q);
            continue;
        }
        virtq_push(q, vd->gm, vs->chain.head, (uint32_t)len);
        pushed = true;
    }
    if (pushed)
        virtio_dev_notify_used(vd, RXQ);
}

static void deliver_event(struct virtio_vsock *vs)
{
    struct virtio_dev *vd = vs->vd;
    struct virtq *q = &vd->queues[EVQ];
    if (!vs->event_reset_pending)
        return;
    int rc = virtq_pop(q, vd->gm, &vs->chain);
    if (rc < 0) {
        virtio_dev_set_needs_reset(vd, "the guest handed over a malformed event buffer");
        return;
    }
    if (rc == 0) {
        virtq_rearm(q, vd->gm);
        return; /* the event-queue kick brings us back */
    }
    uint8_t ev[VSOCK_EVENT_LEN];
    vsock_put_le(ev, VSOCK_EVENT_TRANSPORT_RESET, VSOCK_EVENT_LEN);
    bool fits = vs->chain.writable >= VSOCK_EVENT_LEN;
    if (fits)
        virtq_chain_write(&vs->chain, vd->gm, 0, ev, VSOCK_EVENT_LEN);
    virtq_push(q, vd->gm, vs->chain.head, fits ? VSOCK_EVENT_LEN : 0);
    vs->event_reset_pending = !fits;
    virtio_dev_notify_used(vd, EVQ);
}

/* ---- virtio_dev_ops ---- */

static uint64_t vsock_features(void *dev)
{
    (void)dev;
    return BIT64(VIRTIO_F_VERSION_1) | BIT64(VIRTIO_F_EVENT_IDX) | BIT64(VIRTIO_F_INDIRECT_DESC);
}

static void vsock_config_read(void *dev, uint64_t off, uint8_t *data, uint32_t len)
{
    struct virtio_vsock *vs = dev;
    uint8_t cfg[VSOCK_CFG_LEN];
    vsock_put_le(cfg + VSOCK_CFG_GUEST_CID, vs->guest_cid, 8);
    for (uint32_t i = 0; i < len; i++)
        data[i] = off + i < sizeof(cfg) ? cfg[off + i] : 0;
}

static void vsock_attach(void *dev, struct virtio_dev *vd)
{
    struct virtio_vsock *vs = dev;
    vs->vd = vd;
}

static int vsock_activate(void *dev, struct virtio_dev *vd)
{
    struct virtio_vsock *vs = dev;
    vs->vd = vd;
    return vsock_host_start(vs);
}

static void vsock_notify(void *dev, struct virtio_dev *vd, uint16_t q)
{
    struct virtio_vsock *vs = dev;
    vs->vd = vd;
    if (q == TXQ)
        vsock_process_tx(vs);
    if (q == EVQ)
        deliver_event(vs);
    if (virtio_dev_driver_ok(vd))
        vsock_deliver(vs); /* rx buffers, or replies the tx packets asked for */
    vsock_host_reap(vs);
}

static void vsock_reset(void *dev, struct virtio_dev *vd)
{
    struct virtio_vsock *vs = dev;
    vs->vd = vd;
    vsock_host_stop(vs);
    vsock_host_drop_all(vs); /* the guest's sockets are gone with its driver */
    vs->event_reset_pending = false;
}

void virtio_vsock_restored(struct virtio_vsock *vs)
{
    virtio_dev_lock(vs->vd);
    vsock_host_drop_all(vs);
    vs->event_reset_pending = true;
    virtio_dev_unlock(vs->vd);
}

const struct virtio_dev_ops virtio_vsock_ops = {
    .device_id = VIRTIO_ID_VSOCK,
    .num_queues = VIRTIO_VSOCK_NUM_QUEUES,
    .features = vsock_features,
    .config_read = vsock_config_read,
    .config_write = NULL,
    .attach = vsock_attach,
    .activate = vsock_activate,
    .queue_notify = vsock_notify,
    .reset = vsock_reset,
};
