/*
 * Shared by the two halves of the vsock device: vsock.c (the virtqueues, the
 * packets and the connection state machine) and vsock_host.c (the host Unix
 * sockets: listener, CONNECT lines, connection table, readiness). Not for
 * other files.
 */
#ifndef EMBER_VIRTIO_VSOCK_INTERNAL_H
#define EMBER_VIRTIO_VSOCK_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "devices/virtio/vsock.h"
#include "devices/virtio/vsock_proto.h"

/* What we grant the guest per connection (its credit): bytes we hold that the host socket has not taken. */
#define VSOCK_CONN_BUF (256 * 1024)
/* Tell the guest about freed space when what it believes it may send falls below this. */
#define VSOCK_CREDIT_LOW (64 * 1024)
/* Connections at once (each holds a host fd), and of those, host clients that have not sent CONNECT yet. */
#define VSOCK_MAX_CONNS 1024
#define VSOCK_MAX_HANDSHAKES 64
/* "CONNECT 4294967295\n" is 19 bytes: anything longer without a newline is not a CONNECT line. */
#define VSOCK_LINE_MAX 24
/*
 * RSTs owed to the guest for connections already gone (host side failed) or
 * packets that have none, waiting for rx buffers. Hostile packets may fill
 * only the part above VSOCK_MAX_CONNS, so closing connections find room.
 */
#define VSOCK_ORPHAN_HOSTILE 256
#define VSOCK_MAX_ORPHAN_RST (VSOCK_MAX_CONNS + VSOCK_ORPHAN_HOSTILE)
#define VSOCK_HASH_BUCKETS 1024
/*
 * One readv fills up to this many rx chains behind the first (Linux posts 4 KiB buffers: 64 of them hold
 * the whole 256 KiB credit), spanning at most IOV_MAX iovecs.
 */
#define VSOCK_RX_BATCH 127
#define VSOCK_RX_IOV 1024
/* The tx side's counterpart: consecutive packets' payloads for one connection, written with one sendmsg. */
#define VSOCK_TX_IOV 1024
/* Host-initiated connections get local ports from here up (Linux's ephemeral range is far below). */
#define VSOCK_HOST_PORT_FIRST (1U << 30)

enum vsock_conn_state {
    CONN_HANDSHAKE,   /* host client accepted, reading its CONNECT line */
    CONN_CONNECTING,  /* REQUEST sent to the guest, waiting for RESPONSE or RST */
    CONN_ESTABLISHED, /* streaming */
    CONN_DEAD,        /* host side closed; freed once off the send list */
};

/* Control packets a connection owes the guest (sent before, or alongside, its data). */
#define PEND_REQUEST 0x01
#define PEND_RESPONSE 0x02
#define PEND_SHUTDOWN 0x08
#define PEND_CREDIT_UPDATE 0x10
#define PEND_CREDIT_REQUEST 0x20

struct vsock_conn {
    int fd;
    enum vsock_conn_state state;
    uint32_t local_port, peer_port; /* host side (CID 2), guest side */
    uint32_t pending;               /* PEND_* */
    /*
     * The host fd may have data or EOF for the guest. The fd is watched edge-triggered, so this stays set
     * until a read comes back short (or EAGAIN): no epoll_ctl when credit runs out or comes back.
     */
    bool readable;
    bool peer_hup;        /* the host peer shut its side: read to EOF even after a short read */
    bool host_eof;        /* the host sends no more: SHUTDOWN(SEND) owed or sent */
    bool guest_shut_send; /* the guest sends no more: shut the host socket's write side once drained */
    bool guest_shut_rcv;  /* the guest takes no more: stop reading the host socket */
    bool host_wr_shut;
    bool credit_requested;
    /* Host → guest: the guest's buffer and what we sent into it. */
    uint32_t peer_buf_alloc, peer_fwd_cnt, rx_cnt;
    /* Guest → host: what the guest sent (recv_cnt), what the host socket took (fwd_cnt), what the guest knows. */
    uint32_t recv_cnt, fwd_cnt, last_fwd_sent;
    uint8_t *txbuf; /* VSOCK_CONN_BUF ring, allocated while the host socket lags */
    uint32_t tx_head, tx_len;
    /* Handshake: the CONNECT line so far; its age decides which handshake goes first when too many wait. */
    char line[VSOCK_LINE_MAX];
    unsigned line_len;
    uint64_t seq;
    uint32_t epoll_events;
    bool registered;
    bool on_send_list;
    struct vsock_conn *send_next, *hash_next;
    struct vsock_conn *prev, *next; /* every connection */
};

/* An rx chain filled by a batched read after the first: where its header goes and what it took. */
struct vsock_rx_slot {
    uint16_t head;
    uint8_t *hdr; /* VSOCK_HDR_LEN bytes of guest memory, checked when the chain was popped */
    uint32_t cap, len;
};

struct vsock_orphan_rst {
    uint32_t local_port, peer_port;
};

struct virtio_vsock {
    uint64_t guest_cid;
    char uds_path[VSOCK_UDS_PATH_MAX + 1];
    int listen_fd;
    int epfd; /* the host sockets, one fd in the VMM thread's event loop */
    bool watching;
    bool listen_paused; /* out of fds: the listener is out of the set until a connection ends */
    struct virtio_dev *vd;
    struct vsock_conn *all;
    struct vsock_conn *hash[VSOCK_HASH_BUCKETS];
    struct vsock_conn *send_head, *send_tail;
    unsigned nr_conns, nr_handshakes, nr_dead;
    uint64_t next_seq;
    uint32_t next_host_port;
    struct vsock_orphan_rst orphans[VSOCK_MAX_ORPHAN_RST];
    unsigned orphan_head, orphan_len;
    bool event_reset_pending; /* TRANSPORT_RESET owed on the event queue */
    uint32_t used_pending;    /* 1 << queue: used entries the driver has not been told of (vsock_signal_used) */
    struct vsock_counters ctr;
    struct virtq_chain chain;
    /* The rx batch: chains popped behind `chain`, the readv's iovecs over all their payload areas. */
    struct virtq_chain chain_more;
    struct vsock_rx_slot rx_slots[VSOCK_RX_BATCH];
    unsigned rx_nslots;
    struct iovec rx_iov[VSOCK_RX_IOV];
    /*
     * The tx batch: payloads of consecutive OP_RW packets for tx_conn, not written yet; their chains go back
     * to the guest once the payload is in the host socket or the connection's buffer.
     */
    struct vsock_conn *tx_conn;
    unsigned tx_niov, tx_nheads;
    uint64_t tx_pending;
    struct iovec tx_iov[VSOCK_TX_IOV];
    uint16_t tx_heads[VIRTQ_MAX_SIZE];
};

/* ---- vsock_host.c ---- */
int vsock_host_listen(struct virtio_vsock *vs, struct errmsg *err);
/* Starts (activate) and stops (reset, free) watching the host sockets. */
int vsock_host_start(struct virtio_vsock *vs);
void vsock_host_stop(struct virtio_vsock *vs);
/* Closes and frees every connection. */
void vsock_host_drop_all(struct virtio_vsock *vs);
/* Frees the connections closed since the last call (never while a caller may still hold one). */
void vsock_host_reap(struct virtio_vsock *vs);
struct vsock_conn *vsock_conn_find(struct virtio_vsock *vs, uint32_t local_port, uint32_t peer_port);
/* A new connection past the handshake (guest-initiated), in the table; NULL if at the cap. */
struct vsock_conn *vsock_conn_new(struct virtio_vsock *vs, int fd, uint32_t local_port, uint32_t peer_port);
/* Gives a host-initiated connection its ports and puts it in the table. */
void vsock_conn_bind(struct virtio_vsock *vs, struct vsock_conn *c, uint32_t local_port, uint32_t peer_port);
/* Closes the host side and forgets the connection (freed now, or once it leaves the send list). */
void vsock_conn_close(struct virtio_vsock *vs, struct vsock_conn *c);
/* The epoll interest follows the state: read while allowed, write while data waits. */
void vsock_conn_update_watch(struct virtio_vsock *vs, struct vsock_conn *c);
/* Connects to <uds_path>_<port>: the fd, or -errno. */
int vsock_host_connect(struct virtio_vsock *vs, uint32_t port);
/* Writes out the connection's buffered guest data; -errno if the host side is gone. */
int vsock_conn_flush(struct virtio_vsock *vs, struct vsock_conn *c);

/* ---- vsock_tx.c ---- */
/* Serves every packet the guest queued on the tx queue (vsock_signal_used tells the driver). */
void vsock_process_tx(struct virtio_vsock *vs);

/* ---- vsock.c ---- */
/* Queues the connection for the rx path (it has control packets or data for the guest). */
void vsock_conn_schedule(struct virtio_vsock *vs, struct vsock_conn *c);
/* Whether host data for the guest is still wanted on c (established, no EOF read, guest still receiving). */
bool vsock_conn_wants_read(const struct vsock_conn *c);
/* Bytes the guest lets us send on c now. */
uint32_t vsock_conn_peer_credit(const struct vsock_conn *c);
/* A host client's CONNECT line named `port`: a REQUEST to the guest. */
void vsock_conn_host_connect(struct virtio_vsock *vs, struct vsock_conn *c, uint32_t port);
/* The host socket took bytes: the guest may have to hear of the space. */
void vsock_conn_forwarded(struct virtio_vsock *vs, struct vsock_conn *c, uint32_t n);
/* The host side failed (or the stream is over): RST to the guest, host socket closed. */
void vsock_conn_reset(struct virtio_vsock *vs, struct vsock_conn *c);
/* Queues an RST for (local_port, peer_port); `hostile`: answering a bad packet, may be dropped first. */
void vsock_queue_rst(struct virtio_vsock *vs, uint32_t local_port, uint32_t peer_port, bool hostile);
/* Sends what is queued for the guest while rx buffers last (vsock_signal_used tells the driver). */
void vsock_deliver(struct virtio_vsock *vs);
/*
 * Interrupts for what the rx and tx paths put in the used rings since the last call: one for both when
 * both want one. virtio-mmio has a single interrupt line and the driver's handler scans every queue on
 * it, so the second queue is served by the first one's interrupt (and counts as signalled).
 */
void vsock_signal_used(struct virtio_vsock *vs);

#endif
