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

bool vsock_conn_wants_read(const struct vsock_conn *c)
{
    return c->state == CONN_ESTABLISHED && !c->host_eof && !c->guest_shut_rcv;
}

static void encode_hdr(struct virtio_vsock *vs, uint8_t b[VSOCK_HDR_LEN], uint32_t local, uint32_t peer, uint16_t op,
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
    vsock_hdr_encode(&h, b);
    vs->ctr.rx_packets++;
}

static size_t put_hdr(struct virtio_vsock *vs, const struct virtq_chain *ch, uint32_t local, uint32_t peer, uint16_t op,
                      uint32_t flags, uint32_t len, uint32_t fwd_cnt)
{
    uint8_t b[VSOCK_HDR_LEN];
    encode_hdr(vs, b, local, peer, op, flags, len, fwd_cnt);
    virtq_chain_write(ch, vs->vd->gm, 0, b, VSOCK_HDR_LEN);
    return VSOCK_HDR_LEN + len;
}

/* Appends iovecs for up to `max` payload bytes of rx chain ch (what follows its header): the bytes covered. */
static uint64_t payload_iov(struct virtio_vsock *vs, const struct virtq_chain *ch, uint64_t max, unsigned *n)
{
    uint64_t skip = VSOCK_HDR_LEN, want = max;
    for (unsigned i = 0; i < ch->nbufs && want && *n < VSOCK_RX_IOV; i++) {
        const struct virtq_buf *b = &ch->bufs[i];
        if (!b->device_writes)
            continue;
        if (skip >= b->len) {
            skip -= b->len;
            continue;
        }
        uint64_t len = b->len - skip < want ? b->len - skip : want;
        vs->rx_iov[*n].iov_base = b->host + skip; /* checked when the chain was popped */
        vs->rx_iov[(*n)++].iov_len = len;
        want -= len;
        skip = 0;
    }
    return max - want;
}

/* Where a batched chain's header goes: its first device-writable buffer, if the header fits there. */
static uint8_t *batch_hdr_at(const struct virtq_chain *ch)
{
    for (unsigned i = 0; i < ch->nbufs; i++)
        if (ch->bufs[i].device_writes)
            return ch->bufs[i].len >= VSOCK_HDR_LEN ? ch->bufs[i].host : NULL;
    return NULL;
}

static uint64_t min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }

/*
 * Reads host data for c with one readv into the popped chain vs->chain and, while the guest's credit, its
 * posted rx buffers and the iovecs last, into the chains behind it (a real device's scatter read: with 4 KiB
 * buffers one readiness event costs one system call, not one per buffer). The chains that got data beyond
 * the first are left in vs->rx_slots for the caller to push after the first; the rest go back to the ring.
 * Returns the readv's result (bytes, 0 at EOF, -errno); *first: the bytes in the first chain; *room: what
 * the read could have taken.
 */
static ssize_t read_batch(struct virtio_vsock *vs, struct vsock_conn *c, uint64_t credit, uint32_t *first,
                          uint64_t *room)
{
    struct virtq *q = &vs->vd->queues[RXQ];
    unsigned n = 0, nslots = 0;
    uint64_t cap0 = payload_iov(vs, &vs->chain, min_u64(credit, VSOCK_MAX_PKT_PAYLOAD), &n);
    uint64_t total = cap0;
    while (total < credit && nslots < VSOCK_RX_BATCH && n < VSOCK_RX_IOV) {
        if (virtq_pop(q, vs->vd->gm, &vs->chain_more) != 1)
            break; /* ring empty, or malformed: the deliver loop meets it on its own */
        const struct virtq_chain *ch = &vs->chain_more;
        uint8_t *hdr = batch_hdr_at(ch);
        unsigned n0 = n;
        uint64_t cap = hdr ? payload_iov(vs, ch, min_u64(credit - total, VSOCK_MAX_PKT_PAYLOAD), &n) : 0;
        if (!cap) {
            n = n0; /* an odd buffer (header split, or no room for data): the next turn takes it alone */
            virtq_unpop(q);
            break;
        }
        vs->rx_slots[nslots++] = (struct vsock_rx_slot){.head = ch->head, .hdr = hdr, .cap = (uint32_t)cap};
        total += cap;
    }
    ssize_t got = readv(c->fd, vs->rx_iov, (int)n);
    if (got < 0)
        got = -errno;
    uint64_t left = got > 0 ? (uint64_t)got : 0;
    *first = (uint32_t)min_u64(left, cap0);
    left -= *first;
    unsigned used = 0;
    for (; used < nslots && left; used++) {
        vs->rx_slots[used].len = (uint32_t)min_u64(left, vs->rx_slots[used].cap);
        left -= vs->rx_slots[used].len;
    }
    for (unsigned i = used; i < nslots; i++)
        virtq_unpop(q); /* the last popped first: the ring is as if they had never been taken */
    vs->rx_nslots = used;
    *room = total;
    return got;
}

/* Stream data for c into the chain (and a batch behind it): the op to send, or VSOCK_OP_INVALID. */
static uint16_t read_data(struct virtio_vsock *vs, struct vsock_conn *c, uint32_t *len)
{
    uint64_t credit = vsock_conn_peer_credit(c);
    if (!credit)
        return VSOCK_OP_INVALID; /* the guest's CREDIT_UPDATE brings us back; the fd stays watched */
    if (vs->chain.writable <= VSOCK_HDR_LEN)
        return VSOCK_OP_CREDIT_UPDATE; /* no room for data in this buffer: spend it on our credit instead */
    uint64_t room;
    ssize_t got = read_batch(vs, c, credit, len, &room);
    if (got > 0) {
        c->rx_cnt += (uint32_t)got;
        vs->ctr.rx_bytes += (uint64_t)got;
        if (vs->rx_nslots) {
            /* The batch's headers differ only in their length: encode one, copy it. */
            uint8_t tmpl[VSOCK_HDR_LEN];
            encode_hdr(vs, tmpl, c->local_port, c->peer_port, VSOCK_OP_RW, 0, 0, c->fwd_cnt);
            vs->ctr.rx_packets += vs->rx_nslots - 1;
            for (unsigned i = 0; i < vs->rx_nslots; i++) {
                memcpy(vs->rx_slots[i].hdr, tmpl, VSOCK_HDR_LEN);
                vsock_put_le(vs->rx_slots[i].hdr + VSOCK_HDR_LEN_OFF, vs->rx_slots[i].len, 4);
            }
        }
        /* Short: the socket is drained, and edge-triggered epoll reports what comes next (EOF excepted). */
        if ((uint64_t)got < room && !c->peer_hup)
            c->readable = false;
        if (!vsock_conn_peer_credit(c) && !c->credit_requested)
            c->pending |= PEND_CREDIT_REQUEST;
        return VSOCK_OP_RW;
    }
    if (got == 0) {
        c->host_eof = true; /* the host sends no more; the guest reads to the end first */
        c->readable = false;
        c->pending |= PEND_SHUTDOWN;
    } else if (got == -EAGAIN) {
        c->readable = false;
    } else if (got != -EINTR) {
        vsock_conn_reset(vs, c);
    }
    return VSOCK_OP_INVALID;
}

/* One packet (or a batch of data packets) for connection c from the chain: its length, or 0 if none. */
static size_t fill_from_conn(struct virtio_vsock *vs, struct vsock_conn *c, const struct virtq_chain *ch)
{
    uint16_t op = VSOCK_OP_INVALID;
    uint32_t flags = 0, len = 0;
    vs->rx_nslots = 0;
    if (c->pending & PEND_REQUEST) {
        op = VSOCK_OP_REQUEST;
        c->pending &= ~(uint32_t)PEND_REQUEST;
    } else if (c->pending & PEND_RESPONSE) {
        op = VSOCK_OP_RESPONSE;
        c->pending &= ~(uint32_t)PEND_RESPONSE;
    } else if (c->readable && vsock_conn_wants_read(c)) {
        op = read_data(vs, c, &len);
        if (c->state == CONN_DEAD)
            return 0;
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
    bool more = c->pending || (c->readable && vsock_conn_wants_read(c) && vsock_conn_peer_credit(c));
    if (more)
        vsock_conn_schedule(vs, c); /* to the back: one packet or batch per connection per turn */
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
        vs->rx_nslots = 0;
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
        /* The batch in stream order: the first chain, then those behind it; one interrupt for all. */
        virtq_push(q, vd->gm, vs->chain.head, (uint32_t)len);
        for (unsigned i = 0; i < vs->rx_nslots; i++)
            virtq_push(q, vd->gm, vs->rx_slots[i].head, VSOCK_HDR_LEN + vs->rx_slots[i].len);
        vs->rx_nslots = 0;
        pushed = true;
    }
    if (pushed)
        vs->used_pending |= 1U << RXQ;
}

void vsock_signal_used(struct virtio_vsock *vs)
{
    struct virtio_dev *vd = vs->vd;
    uint32_t pending = vs->used_pending;
    vs->used_pending = 0;
    uint64_t before = vd->interrupts;
    for (uint16_t q = RXQ; q <= TXQ; q++) {
        if (!(pending & (1U << q)))
            continue;
        if (vd->interrupts == before)
            virtio_dev_notify_used(vd, q);
        else
            virtq_should_notify(&vd->queues[q], vd->gm); /* covered by the interrupt just raised: note it */
    }
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
    vsock_signal_used(vs);
    vsock_host_reap(vs);
}

static void vsock_reset(void *dev, struct virtio_dev *vd)
{
    struct virtio_vsock *vs = dev;
    vs->vd = vd;
    vsock_host_stop(vs);
    vsock_host_drop_all(vs); /* the guest's sockets are gone with its driver */
    vs->event_reset_pending = false;
    vs->used_pending = 0;
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
