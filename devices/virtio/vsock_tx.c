/*
 * virtio-vsock, packets from the guest (tx queue): each one checked, then
 * the connection state machine. A packet never stalls the queue: the guest
 * may send only what we granted it (credit), so a slow host socket is
 * absorbed by the connection's own buffer, and a guest that sends more than
 * its credit loses that connection.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "devices/virtio/virtio.h"
#include "devices/virtio/vsock_internal.h"

#define TXQ VIRTIO_VSOCK_TXQ

/* Copies what the host socket did not take of the batch (its first `skip` bytes it did) into c's ring buffer. */
static int buffer_rest(struct vsock_conn *c, const struct iovec *iov, unsigned n, uint64_t skip)
{
    if (!c->txbuf && !(c->txbuf = malloc(VSOCK_CONN_BUF)))
        return -ENOMEM;
    for (unsigned i = 0; i < n; i++) {
        if (skip >= iov[i].iov_len) {
            skip -= iov[i].iov_len;
            continue;
        }
        const uint8_t *src = (const uint8_t *)iov[i].iov_base + skip;
        uint32_t len = (uint32_t)(iov[i].iov_len - skip);
        skip = 0;
        uint32_t tail = (c->tx_head + c->tx_len) % VSOCK_CONN_BUF;
        uint32_t first = VSOCK_CONN_BUF - tail < len ? VSOCK_CONN_BUF - tail : len;
        memcpy(c->txbuf + tail, src, first);
        memcpy(c->txbuf, src + first, len - first);
        c->tx_len += len;
    }
    return 0;
}

/*
 * Writes the batch's payloads: one sendmsg for several packets, straight from guest memory, after what
 * the connection's buffer still holds; what the socket does not take goes into that buffer. Then the
 * batch's chains go back to the guest (the caller notifies it once for the whole queue).
 */
static void tx_flush(struct virtio_vsock *vs)
{
    struct vsock_conn *c = vs->tx_conn;
    if (c && c->state == CONN_ESTABLISHED) {
        uint64_t sent = 0;
        int rc = c->tx_len ? vsock_conn_flush(vs, c) : 0;
        if (!rc && !c->tx_len) {
            struct msghdr mh = {.msg_iov = vs->tx_iov, .msg_iovlen = vs->tx_niov};
            ssize_t w = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w < 0 && errno != EAGAIN && errno != EINTR)
                rc = -errno; /* the host reader is gone */
            if (w > 0) {
                sent = (uint64_t)w;
                vsock_conn_forwarded(vs, c, (uint32_t)w);
            }
        }
        if (!rc && sent < vs->tx_pending)
            rc = buffer_rest(c, vs->tx_iov, vs->tx_niov, sent);
        if (rc)
            vsock_conn_reset(vs, c);
        else
            vsock_conn_update_watch(vs, c);
    }
    struct virtq *q = &vs->vd->queues[TXQ];
    for (unsigned i = 0; i < vs->tx_nheads; i++)
        virtq_push(q, vs->vd->gm, vs->tx_heads[i], 0);
    vs->tx_conn = NULL;
    vs->tx_niov = vs->tx_nheads = 0;
    vs->tx_pending = 0;
}

/*
 * Stream payload for c: joins the batch of payloads waiting for c's host socket (true: the chain is held
 * until the batch is written), or resets c if it broke its credit.
 */
static bool take_rw(struct virtio_vsock *vs, struct vsock_conn *c, const struct virtq_chain *ch, uint32_t len)
{
    /* Credit: what the guest sent and the host has not taken must fit what we granted. */
    if ((uint64_t)(c->recv_cnt - c->fwd_cnt) + len > VSOCK_CONN_BUF) {
        vs->ctr.bad_packets++;
        vsock_conn_reset(vs, c);
        return false;
    }
    c->recv_cnt += len;
    vs->ctr.tx_bytes += len;
    if (!len)
        return false;
    unsigned pieces = 0;
    for (unsigned i = 0; i < ch->nbufs; i++)
        pieces += !ch->bufs[i].device_writes;
    if (vs->tx_conn != c || vs->tx_niov + pieces > VSOCK_TX_IOV || vs->tx_nheads == VIRTQ_MAX_SIZE)
        tx_flush(vs);
    vs->tx_conn = c;
    uint64_t skip = VSOCK_HDR_LEN, want = len;
    for (unsigned i = 0; i < ch->nbufs && want; i++) {
        const struct virtq_buf *b = &ch->bufs[i];
        if (b->device_writes)
            continue;
        if (skip >= b->len) {
            skip -= b->len;
            continue;
        }
        uint64_t piece = b->len - skip < want ? b->len - skip : want;
        vs->tx_iov[vs->tx_niov].iov_base = b->host + skip; /* checked when the chain was popped */
        vs->tx_iov[vs->tx_niov++].iov_len = piece;
        want -= piece;
        skip = 0;
    }
    vs->tx_pending += len;
    vs->tx_heads[vs->tx_nheads++] = ch->head;
    return true;
}

/* The guest asked for host port `port` from its port `peer`. */
static void guest_connect(struct virtio_vsock *vs, const struct vsock_hdr *h)
{
    if (vs->nr_conns >= VSOCK_MAX_CONNS) {
        vs->ctr.conns_refused++;
        vsock_queue_rst(vs, h->dst_port, h->src_port, true);
        return;
    }
    int fd = vsock_host_connect(vs, h->dst_port);
    if (fd < 0) {
        vs->ctr.conns_refused++; /* nobody listens on <uds_path>_<port> */
        vsock_queue_rst(vs, h->dst_port, h->src_port, true);
        return;
    }
    struct vsock_conn *c = vsock_conn_new(vs, fd, h->dst_port, h->src_port);
    if (!c) {
        close(fd);
        vs->ctr.conns_refused++;
        vsock_queue_rst(vs, h->dst_port, h->src_port, true);
        return;
    }
    vs->ctr.conns_opened++;
    c->peer_buf_alloc = h->buf_alloc;
    c->peer_fwd_cnt = h->fwd_cnt;
    c->pending |= PEND_RESPONSE;
    vsock_conn_schedule(vs, c);
    vsock_conn_update_watch(vs, c);
}

/* The guest accepted a host client's connection: tell the client, then stream. */
static void guest_accepted(struct virtio_vsock *vs, struct vsock_conn *c)
{
    char ok[32];
    int n = snprintf(ok, sizeof(ok), "OK %u\n", c->local_port);
    /* A fresh socket has room for a line; a client that cannot take it is gone. */
    if (send(c->fd, ok, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) != n) {
        vsock_conn_reset(vs, c);
        return;
    }
    c->state = CONN_ESTABLISHED;
    vs->ctr.conns_opened++;
    vsock_conn_update_watch(vs, c);
}

static void guest_shutdown(struct virtio_vsock *vs, struct vsock_conn *c, uint32_t flags)
{
    if (flags & VSOCK_SHUTDOWN_SEND)
        c->guest_shut_send = true;
    if (flags & VSOCK_SHUTDOWN_RCV)
        c->guest_shut_rcv = true;
    if (c->state != CONN_ESTABLISHED) {
        vsock_conn_reset(vs, c);
        return;
    }
    if (vsock_conn_flush(vs, c)) {
        vsock_conn_reset(vs, c);
        return;
    }
    /* Both ways shut and all delivered: the guest waits for our RST to finish its close. */
    if (c->guest_shut_send && c->guest_shut_rcv && !c->tx_len) {
        vsock_conn_reset(vs, c);
        return;
    }
    vsock_conn_update_watch(vs, c);
}

/* One packet from the guest; true if its chain joined the tx batch (tx_flush gives it back). */
static bool handle_packet(struct virtio_vsock *vs, const struct virtq_chain *ch)
{
    uint8_t raw[VSOCK_HDR_LEN];
    struct vsock_hdr h;
    if (ch->readable < VSOCK_HDR_LEN || virtq_chain_read(ch, vs->vd->gm, 0, raw, VSOCK_HDR_LEN)) {
        vs->ctr.bad_packets++;
        return false;
    }
    vsock_hdr_decode(raw, &h);
    vs->ctr.tx_packets++;
    /* Not from this guest to the host: not ours to answer. */
    if (h.src_cid != vs->guest_cid || h.dst_cid != VSOCK_HOST_CID) {
        vs->ctr.bad_packets++;
        return false;
    }
    struct vsock_conn *c = vsock_conn_find(vs, h.dst_port, h.src_port);
    bool bad_len = h.len > ch->readable - VSOCK_HDR_LEN || h.len > VSOCK_MAX_PKT_PAYLOAD ||
                   (h.len && h.op != VSOCK_OP_RW);
    bool bad = bad_len || h.type != VSOCK_TYPE_STREAM;
    /* Anything but more data for the batch's connection comes after the batch is written. */
    if (vs->tx_conn && (c != vs->tx_conn || h.op != VSOCK_OP_RW || bad))
        tx_flush(vs);
    bool held = false;
    if (bad) {
        vs->ctr.bad_packets++;
        if (c)
            vsock_conn_reset(vs, c);
        else if (h.op != VSOCK_OP_RST)
            vsock_queue_rst(vs, h.dst_port, h.src_port, true);
        return false;
    }
    if (h.op == VSOCK_OP_REQUEST && !c) {
        guest_connect(vs, &h);
        return false;
    }
    if (!c) {
        if (h.op != VSOCK_OP_RST)
            vsock_queue_rst(vs, h.dst_port, h.src_port, true); /* no such connection (any more) */
        return false;
    }
    c->peer_buf_alloc = h.buf_alloc;
    c->peer_fwd_cnt = h.fwd_cnt;
    bool established = c->state == CONN_ESTABLISHED;
    switch (h.op) {
    case VSOCK_OP_RST: vsock_conn_close(vs, c); return false;
    case VSOCK_OP_RESPONSE:
        if (c->state == CONN_CONNECTING)
            guest_accepted(vs, c);
        else
            vsock_conn_reset(vs, c);
        return false;
    case VSOCK_OP_SHUTDOWN: guest_shutdown(vs, c, h.flags); return false;
    case VSOCK_OP_RW:
        if (!established || c->guest_shut_send) {
            vs->ctr.bad_packets++;
            vsock_conn_reset(vs, c);
            return false;
        }
        held = take_rw(vs, c, ch, h.len);
        break;
    case VSOCK_OP_CREDIT_UPDATE: c->credit_requested = false; break;
    case VSOCK_OP_CREDIT_REQUEST:
        c->pending |= PEND_CREDIT_UPDATE;
        vsock_conn_schedule(vs, c);
        break;
    default: /* REQUEST on a live connection, unknown operations */
        vs->ctr.bad_packets++;
        vsock_conn_reset(vs, c);
        return false;
    }
    if (c->state != CONN_ESTABLISHED)
        return held;
    /* New credit may let waiting host data through. */
    if (c->readable && vsock_conn_wants_read(c) && vsock_conn_peer_credit(c))
        vsock_conn_schedule(vs, c);
    vsock_conn_update_watch(vs, c);
    return held;
}

void vsock_process_tx(struct virtio_vsock *vs)
{
    struct virtio_dev *vd = vs->vd;
    struct virtq *q = &vd->queues[TXQ];
    bool pushed = false;
    for (;;) {
        int rc = virtq_pop(q, vd->gm, &vs->chain);
        if (rc == 0) {
            if (!virtq_rearm(q, vd->gm))
                break;
            continue;
        }
        if (rc < 0) {
            tx_flush(vs);
            virtio_dev_set_needs_reset(vd, "the guest handed over a malformed tx descriptor chain");
            return;
        }
        if (!handle_packet(vs, &vs->chain))
            virtq_push(q, vd->gm, vs->chain.head, 0);
        pushed = true;
    }
    tx_flush(vs); /* the queue is empty: write what the batch holds, before the guest hears of the chains */
    if (pushed)
        vs->used_pending |= 1U << TXQ;
}
