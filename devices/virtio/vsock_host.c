/*
 * The host half of virtio-vsock: the listening Unix socket, host clients'
 * CONNECT lines, connections to <uds_path>_<port>, the connection table and
 * the readiness of every host socket. The sockets live in a private epoll
 * set that is one fd in the VMM thread's event loop, so a thousand
 * connections cost one event-loop slot. Everything runs with the device lock
 * held.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/log.h"
#include "devices/virtio/virtio.h"
#include "devices/virtio/vsock_internal.h"

static unsigned bucket(uint32_t local_port, uint32_t peer_port)
{
    return ((local_port * 2654435761U) ^ peer_port) % VSOCK_HASH_BUCKETS;
}

struct vsock_conn *vsock_conn_find(struct virtio_vsock *vs, uint32_t local_port, uint32_t peer_port)
{
    for (struct vsock_conn *c = vs->hash[bucket(local_port, peer_port)]; c; c = c->hash_next)
        if (c->local_port == local_port && c->peer_port == peer_port)
            return c;
    return NULL;
}

static void hash_remove(struct virtio_vsock *vs, struct vsock_conn *c)
{
    for (struct vsock_conn **p = &vs->hash[bucket(c->local_port, c->peer_port)]; *p; p = &(*p)->hash_next)
        if (*p == c) {
            *p = c->hash_next;
            c->hash_next = NULL;
            return;
        }
}

void vsock_conn_bind(struct virtio_vsock *vs, struct vsock_conn *c, uint32_t local_port, uint32_t peer_port)
{
    c->local_port = local_port;
    c->peer_port = peer_port;
    unsigned b = bucket(local_port, peer_port);
    c->hash_next = vs->hash[b];
    vs->hash[b] = c;
}

static struct vsock_conn *conn_alloc(struct virtio_vsock *vs, int fd, enum vsock_conn_state state)
{
    struct vsock_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->fd = fd;
    c->state = state;
    c->seq = vs->next_seq++;
    c->next = vs->all;
    if (vs->all)
        vs->all->prev = c;
    vs->all = c;
    vs->nr_conns++;
    return c;
}

struct vsock_conn *vsock_conn_new(struct virtio_vsock *vs, int fd, uint32_t local_port, uint32_t peer_port)
{
    if (vs->nr_conns >= VSOCK_MAX_CONNS)
        return NULL;
    struct vsock_conn *c = conn_alloc(vs, fd, CONN_ESTABLISHED);
    if (c)
        vsock_conn_bind(vs, c, local_port, peer_port);
    return c;
}

static void unwatch(struct virtio_vsock *vs, struct vsock_conn *c)
{
    if (c->registered)
        epoll_ctl(vs->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    c->registered = false;
    c->epoll_events = 0;
}

void vsock_conn_close(struct virtio_vsock *vs, struct vsock_conn *c)
{
    if (c->state == CONN_DEAD)
        return;
    unwatch(vs, c);
    if (c->state == CONN_HANDSHAKE)
        vs->nr_handshakes--;
    else
        hash_remove(vs, c);
    close(c->fd);
    c->fd = -1;
    c->state = CONN_DEAD;
    c->pending = 0;
    free(c->txbuf);
    c->txbuf = NULL;
    c->tx_len = 0;
    vs->nr_conns--;
    vs->nr_dead++; /* freed by vsock_host_reap: an epoll batch or the send list may still name it */
    if (vs->listen_paused) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
        if (epoll_ctl(vs->epfd, EPOLL_CTL_ADD, vs->listen_fd, &ev) == 0)
            vs->listen_paused = false;
    }
}

static void conn_unlink_free(struct virtio_vsock *vs, struct vsock_conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        vs->all = c->next;
    if (c->next)
        c->next->prev = c->prev;
    free(c->txbuf);
    free(c);
}

void vsock_host_reap(struct virtio_vsock *vs)
{
    if (!vs->nr_dead)
        return;
    /* Off the send list first, keeping the others' order. */
    struct vsock_conn **p = &vs->send_head;
    vs->send_tail = NULL;
    while (*p) {
        if ((*p)->state == CONN_DEAD) {
            (*p)->on_send_list = false;
            *p = (*p)->send_next;
        } else {
            vs->send_tail = *p;
            p = &(*p)->send_next;
        }
    }
    for (struct vsock_conn *c = vs->all, *next; c; c = next) {
        next = c->next;
        if (c->state == CONN_DEAD)
            conn_unlink_free(vs, c);
    }
    vs->nr_dead = 0;
}

void vsock_host_drop_all(struct virtio_vsock *vs)
{
    for (struct vsock_conn *c = vs->all; c; c = c->next)
        vsock_conn_close(vs, c);
    vs->send_head = vs->send_tail = NULL;
    for (struct vsock_conn *c = vs->all; c; c = c->next)
        c->on_send_list = false;
    vsock_host_reap(vs);
    vs->orphan_len = vs->orphan_head = 0;
}

void vsock_conn_update_watch(struct virtio_vsock *vs, struct vsock_conn *c)
{
    uint32_t want = 0;
    if (c->state == CONN_HANDSHAKE) {
        want = EPOLLIN;
    } else if (c->state == CONN_ESTABLISHED) {
        /*
         * Edge-triggered and never changed for reading: c->readable remembers readiness across credit
         * stalls, so running out of credit costs no epoll_ctl (level-triggered would wake us until the
         * fd left the set; EPOLLONESHOT would cost an epoll_ctl per wakeup). A hung-up peer wakes us once.
         * EPOLLOUT only while guest data waits: a host reader would otherwise wake us at every read.
         */
        want = EPOLLIN | EPOLLRDHUP | EPOLLET;
        if (c->tx_len)
            want |= EPOLLOUT;
    }
    /* Nothing wanted (connecting, dead): out of the set, since EPOLLHUP cannot be masked. */
    if (!want) {
        unwatch(vs, c);
        return;
    }
    if (c->registered && c->epoll_events == want)
        return;
    /* Adding or modifying polls the fd: data that arrived while it was unwatched is reported now. */
    struct epoll_event ev = {.events = want, .data.ptr = c};
    if (epoll_ctl(vs->epfd, c->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &ev) < 0) {
        log_warn("vsock: watching a host socket: %s (connection reset)", strerror(errno));
        vsock_conn_reset(vs, c);
        return;
    }
    c->registered = true;
    c->epoll_events = want;
}

int vsock_host_listen(struct virtio_vsock *vs, struct errmsg *err)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", vs->uds_path);
    vs->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (vs->listen_fd < 0)
        return err_set(err, -errno, "vsock: cannot create a Unix socket: %s", strerror(errno));
    if (bind(vs->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int e = errno;
        return err_set(err, -e, "vsock: cannot bind uds_path '%s': %s%s", vs->uds_path, strerror(e),
                       e == EADDRINUSE ? " (remove the old socket file first)" : "");
    }
    if (listen(vs->listen_fd, 128) < 0)
        return err_set(err, -errno, "vsock: cannot listen on '%s': %s", vs->uds_path, strerror(errno));
    vs->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (vs->epfd < 0)
        return err_set(err, -errno, "vsock: epoll_create1: %s", strerror(errno));
    return 0;
}

/*
 * Room in the host socket for all the credit the guest holds: what it sends then goes straight into the
 * socket instead of through the connection's buffer (one copy, not two) unless the host reader lags by more
 * than the credit. The kernel doubles the value and caps it at net.core.wmem_max; failing is harmless.
 */
static void size_send_buffer(int fd)
{
    int bytes = VSOCK_CONN_BUF;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof(bytes));
}

int vsock_host_connect(struct virtio_vsock *vs, uint32_t port)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s_%u", vs->uds_path, port);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    /* A Unix stream connect completes at once or fails (EAGAIN: the listener's backlog is full). */
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    size_send_buffer(fd);
    return fd;
}

int vsock_conn_flush(struct virtio_vsock *vs, struct vsock_conn *c)
{
    while (c->tx_len) {
        uint32_t first = VSOCK_CONN_BUF - c->tx_head;
        if (first > c->tx_len)
            first = c->tx_len;
        ssize_t n = send(c->fd, c->txbuf + c->tx_head, first, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                break;
            return -errno;
        }
        c->tx_head = (c->tx_head + (uint32_t)n) % VSOCK_CONN_BUF;
        c->tx_len -= (uint32_t)n;
        vsock_conn_forwarded(vs, c, (uint32_t)n);
    }
    if (c->tx_len)
        return 0;
    /* Drained: the buffer goes until the host lags again. */
    free(c->txbuf);
    c->txbuf = NULL;
    c->tx_head = 0;
    if (c->guest_shut_send && !c->host_wr_shut) {
        shutdown(c->fd, SHUT_WR); /* the host reader sees the end of the stream */
        c->host_wr_shut = true;
    }
    return 0;
}

/* Drops the longest-waiting host client that has not sent its CONNECT line. */
static void evict_oldest_handshake(struct virtio_vsock *vs)
{
    struct vsock_conn *oldest = NULL;
    for (struct vsock_conn *c = vs->all; c; c = c->next)
        if (c->state == CONN_HANDSHAKE && (!oldest || c->seq < oldest->seq))
            oldest = c;
    if (oldest) {
        vs->ctr.host_rejected++;
        vsock_conn_close(vs, oldest);
    }
}

static void accept_clients(struct virtio_vsock *vs)
{
    /* A bounded batch: the listener stays readable if more wait, and the loop comes back. */
    for (int i = 0; i < 64; i++) {
        struct sockaddr_un peer;
        socklen_t plen = sizeof(peer);
        int fd = accept4(vs->listen_fd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE) {
                /* Out of fds: the waiting client would wake us forever; listen again once a connection ends. */
                log_warn("vsock: cannot accept a host client on '%s': %s", vs->uds_path, strerror(errno));
                epoll_ctl(vs->epfd, EPOLL_CTL_DEL, vs->listen_fd, NULL);
                vs->listen_paused = true;
            } else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
                log_warn("vsock: accepting a host client on '%s': %s", vs->uds_path, strerror(errno));
            }
            return;
        }
        if (vs->nr_handshakes >= VSOCK_MAX_HANDSHAKES)
            evict_oldest_handshake(vs);
        struct vsock_conn *c = vs->nr_conns < VSOCK_MAX_CONNS ? conn_alloc(vs, fd, CONN_HANDSHAKE) : NULL;
        if (!c) {
            vs->ctr.host_rejected++;
            close(fd);
            continue;
        }
        vs->nr_handshakes++;
        size_send_buffer(fd);
        vsock_conn_update_watch(vs, c);
    }
}

/* "CONNECT <port>" with a decimal port that fits 32 bits; -1 otherwise. */
static int64_t parse_connect(const char *line, unsigned len)
{
    static const char verb[] = "CONNECT ";
    if (len <= sizeof(verb) - 1 || memcmp(line, verb, sizeof(verb) - 1))
        return -1;
    uint64_t port = 0;
    for (unsigned i = sizeof(verb) - 1; i < len; i++) {
        if (line[i] < '0' || line[i] > '9' || i - (sizeof(verb) - 1) >= 10)
            return -1;
        port = port * 10 + (uint64_t)(line[i] - '0');
    }
    return port > UINT32_MAX ? -1 : (int64_t)port;
}

/*
 * Reads a host client's CONNECT line without taking a byte past its newline
 * (a client may send its first data right behind it): peek, then consume up
 * to the newline, or all of a partial line.
 */
static void read_line(struct virtio_vsock *vs, struct vsock_conn *c)
{
    char buf[VSOCK_LINE_MAX];
    size_t room = sizeof(c->line) - c->line_len;
    ssize_t n = recv(c->fd, buf, room, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        vsock_conn_close(vs, c); /* gone before saying anything */
        return;
    }
    const char *nl = memchr(buf, '\n', (size_t)n);
    size_t take = nl ? (size_t)(nl - buf) + 1 : (size_t)n;
    if (recv(c->fd, c->line + c->line_len, take, MSG_DONTWAIT) != (ssize_t)take) {
        vsock_conn_close(vs, c);
        return;
    }
    c->line_len += (unsigned)take;
    if (!nl) {
        if (c->line_len >= sizeof(c->line)) {
            vs->ctr.host_rejected++; /* no newline where a CONNECT line would have ended */
            vsock_conn_close(vs, c);
        }
        return;
    }
    int64_t port = parse_connect(c->line, c->line_len - 1);
    if (port < 0) {
        vs->ctr.host_rejected++;
        vsock_conn_close(vs, c);
        return;
    }
    vs->nr_handshakes--;
    vsock_conn_host_connect(vs, c, (uint32_t)port);
}

static void conn_event(struct virtio_vsock *vs, struct vsock_conn *c, uint32_t events)
{
    if (c->state == CONN_HANDSHAKE) {
        read_line(vs, c);
        return;
    }
    if (c->state != CONN_ESTABLISHED)
        return;
    const uint32_t any = EPOLLHUP | EPOLLERR;
    if ((events & (EPOLLOUT | any)) && c->tx_len) {
        if (vsock_conn_flush(vs, c)) {
            vsock_conn_reset(vs, c);
            return;
        }
        if (!c->tx_len && c->guest_shut_send && c->guest_shut_rcv) {
            vsock_conn_reset(vs, c); /* the guest closed and all it sent is delivered */
            return;
        }
    }
    if (events & (EPOLLRDHUP | any))
        c->peer_hup = true;
    if (events & (EPOLLIN | EPOLLRDHUP | any)) {
        c->readable = true; /* read on the rx path, straight into guest buffers */
        if (vsock_conn_wants_read(c) && vsock_conn_peer_credit(c))
            vsock_conn_schedule(vs, c);
    }
    vsock_conn_update_watch(vs, c);
}

/* Takes the readiness of the host sockets from the private epoll set (without waiting). */
static void harvest(struct virtio_vsock *vs)
{
    struct epoll_event evs[64];
    int n = epoll_wait(vs->epfd, evs, 64, 0);
    for (int i = 0; i < n; i++) {
        struct vsock_conn *c = evs[i].data.ptr;
        if (!c)
            accept_clients(vs);
        else if (c->state != CONN_DEAD)
            conn_event(vs, c, evs[i].events);
    }
}

static void on_host_events(void *opaque, uint32_t events)
{
    (void)events;
    struct virtio_vsock *vs = opaque;
    struct virtio_dev *vd = vs->vd;
    virtio_dev_lock(vd);
    if (!virtio_dev_driver_ok(vd)) {
        /* Stopped (DEVICE_NEEDS_RESET): ready sockets would wake the loop forever; the reset restarts us. */
        vsock_host_stop(vs);
    } else {
        /*
         * Packets the guest queued without our having served its kick yet (the loop may hand us the
         * host sockets first): their credit updates let this turn's reads take all the guest allows,
         * instead of a read now and another when the kick is served. Only ring reads when there are none.
         */
        if (vd->queues[VIRTIO_VSOCK_TXQ].ready)
            vsock_process_tx(vs);
        harvest(vs);
        vsock_deliver(vs);
        vsock_signal_used(vs);
    }
    vsock_host_reap(vs);
    virtio_dev_unlock(vd);
}

int vsock_host_start(struct virtio_vsock *vs)
{
    if (!vs->vd->loop || vs->watching)
        return 0;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(vs->epfd, EPOLL_CTL_ADD, vs->listen_fd, &ev) < 0 && errno != EEXIST)
        return -errno;
    int rc = evloop_add(vs->vd->loop, vs->epfd, EPOLLIN, on_host_events, vs);
    if (rc)
        return rc;
    vs->watching = true;
    return 0;
}

void vsock_host_stop(struct virtio_vsock *vs)
{
    if (!vs->watching)
        return;
    evloop_remove(vs->vd->loop, vs->epfd);
    epoll_ctl(vs->epfd, EPOLL_CTL_DEL, vs->listen_fd, NULL);
    vs->watching = false;
    vs->listen_paused = false;
}
