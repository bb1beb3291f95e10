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

/* Copies `len` payload bytes from the chain (after the header) into c's ring buffer at its tail. */
static int buffer_rest(struct virtio_vsock *vs, struct vsock_conn *c, const struct virtq_chain *ch, uint64_t off,
                       uint32_t len)
{
    if (!c->txbuf && !(c->txbuf = malloc(VSOCK_CONN_BUF)))
        return -ENOMEM;
    uint32_t tail = (c->tx_head + c->tx_len) % VSOCK_CONN_BUF;
    uint32_t first = VSOCK_CONN_BUF - tail < len ? VSOCK_CONN_BUF - tail : len;
    virtq_chain_read(ch, vs->vd->gm, off, c->txbuf + tail, first);
    if (len > first)
        virtq_chain_read(ch, vs->vd->gm, off + first, c->txbuf, len - first);
    c->tx_len += len;
    return 0;
}

/* Stream payload for c: straight to the host socket while nothing waits before it, the rest buffered. */
static void take_rw(struct virtio_vsock *vs, struct vsock_conn *c, const struct virtq_chain *ch, uint32_t len)
{
    /* Credit: what the guest sent and the host has not taken must fit what we granted. */
    if ((uint64_t)(c->recv_cnt - c->fwd_cnt) + len > VSOCK_CONN_BUF) {
        vs->ctr.bad_packets++;
        vsock_conn_reset(vs, c);
        return;
    }
    c->recv_cnt += len;
    vs->ctr.tx_bytes += len;
    uint32_t sent = 0;
    if (!c->tx_len && len) {
        int n = 0;
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
            vs->iov[n].iov_base = b->host + skip; /* checked when the chain was popped */
            vs->iov[n++].iov_len = piece;
            want -= piece;
            skip = 0;
        }
        struct msghdr mh = {.msg_iov = vs->iov, .msg_iovlen = (size_t)n};
        ssize_t w = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && errno != EAGAIN && errno != EINTR) {
            vsock_conn_reset(vs, c); /* the host reader is gone */
            return;
        }
        if (w > 0) {
            sent = (uint32_t)w;
            vsock_conn_forwarded(vs, c, sent);
        }
    }
    if (sent < len && buffer_rest(vs, c, ch, VSOCK_HDR_LEN + sent, len - sent)) {
        vsock_conn_reset(vs, c);
        return;
    }
    vsock_conn_update_watch(vs, c);
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

static void handle_packet(struct virtio_vsock *vs, const struct virtq_chain *ch)
{
    uint8_t raw[VSOCK_HDR_LEN];
    struct vsock_hdr h;
    if (ch->readable < VSOCK_HDR_LEN || virtq_chain_read(ch, vs->vd->gm, 0, raw, VSOCK_HDR_LEN)) {
        vs->ctr.bad_packets++;
        return;
    }
    vsock_hdr_decode(raw, &h);
    vs->ctr.tx_packets++;
    /* Not from this guest to the host: not ours to answer. */
    if (h.src_cid != vs->guest_cid || h.dst_cid != VSOCK_HOST_CID) {
        vs->ctr.bad_packets++;
        return;
    }
    struct vsock_conn *c = vsock_conn_find(vs, h.dst_port, h.src_port);
    bool bad_len = h.len > ch->readable - VSOCK_HDR_LEN || h.len > VSOCK_MAX_PKT_PAYLOAD ||
                   (h.len && h.op != VSOCK_OP_RW);
    if (bad_len || h.type != VSOCK_TYPE_STREAM) {
        vs->ctr.bad_packets++;
        if (c)
            vsock_conn_reset(vs, c);
        else if (h.op != VSOCK_OP_RST)
            vsock_queue_rst(vs, h.dst_port, h.src_port, true);
        return;
    }
    if (h.op == VSOCK_OP_REQUEST && !c) {
        guest_connect(vs, &h);
        return;
    }
    if (!c) {
        if (h.op != VSOCK_OP_RST)
            vsock_queue_rst(vs, h.dst_port, h.src_port, true); /* no such connection (any more) */
        return;
    }
    c->peer_buf_alloc = h.buf_alloc;
    c->peer_fwd_cnt = h.fwd_cnt;
    bool established = c->state == CONN_ESTABLISHED;
    switch (h.op) {
    case VSOCK_OP_RST: vsock_conn_close(vs, c); return;
    case VSOCK_OP_RESPONSE:
        if (c->state == CONN_CONNECTING)
            guest_accepted(vs, c);
        else
            vsock_conn_reset(vs, c);
        return;
    case VSOCK_OP_SHUTDOWN: guest_shutdown(vs, c, h.flags); return;
    case VSOCK_OP_RW:
        if (!established || c->guest_shut_send) {
            vs->ctr.bad_packets++;
            vsock_conn_reset(vs, c);
            return;
        }
        take_rw(vs, c, ch, h.len);
        break;
    case VSOCK_OP_CREDIT_UPDATE: c->credit_requested = false; break;
    case VSOCK_OP_CREDIT_REQUEST:
        c->pending |= PEND_CREDIT_UPDATE;
        vsock_conn_schedule(vs, c);
        break;
    default: /* REQUEST on a live connection, unknown operations */
        vs->ctr.bad_packets++;
        vsock_conn_reset(vs, c);
        return;
    }
    if (c->state != CONN_ESTABLISHED)
        return;
    /* New credit may let waiting host data through. */
    if (c->readable && vsock_conn_peer_credit(c))
        vsock_conn_schedule(vs, c);
    vsock_conn_update_watch(vs, c);
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
            virtio_dev_set_needs_reset(vd, "the guest handed over a malformed tx descriptor chain");
            return;
        }
        handle_packet(vs, &vs->chain);
        virtq_push(q, vd->gm, vs->chain.head, 0);
        pushed = true;
    }
    if (pushed)
        virtio_dev_notify_used(vd, TXQ);
}
