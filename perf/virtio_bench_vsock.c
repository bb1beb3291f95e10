/*
 * virtio-bench, vsock figures: a stream through the vsock device model, and raw.
 *
 *   vsock rx: a host client (Firecracker's CONNECT on uds_path) writes 64 KiB
 *             at a time; the device moves it into the guest's rx buffers
 *             (64 KiB each, or 4 KiB as Linux 6.1 posts them); the driver
 *             returns credit as a guest reading its socket would.
 *   vsock tx: the driver sends 64 KiB OP_RW packets within the device's
 *             credit; the device writes them to the host's Unix socket
 *             (<uds_path>_<port>), which the host side reads.
 *   raw:      the same 64 KiB writes and reads over an AF_UNIX stream
 *             socketpair, no device.
 * Everything runs on one thread, as the other figures: the host ends are
 * non-blocking and served between event-loop turns.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/event_loop.h"
#include "devices/virtio/mmio.h"
#include "devices/virtio/mmio_regs.h"
#include "devices/virtio/virtio.h"
#include "devices/virtio/vsock.h"
#include "devices/virtio/vsock_proto.h"
#include "perf/virtio_bench.h"

#define VS_RX_RING_GPA 0x20000ULL
#define VS_TX_RING_GPA 0x24000ULL
#define VS_EV_RING_GPA 0x28000ULL
#define VS_TX_BUF_GPA 0x1000000ULL /* 16 MiB up: tx slots of header + 64 KiB */
#define VS_RX_BUF_GPA 0x2000000ULL /* 32 MiB up: rx buffers */
#define VS_SLOT (VSOCK_HDR_LEN + VSOCK_MAX_PKT_PAYLOAD)
#define VS_TX_SLOTS 64
#define VS_RX_BUFS 64
#define VS_CHUNK (64 * 1024)
#define VS_GUEST_BUF (256 * 1024) /* the guest socket's buffer: Linux's default buffer_size */
#define VS_GUEST_CID 3
#define VS_GUEST_PORT 5000U
#define VS_HOST_PORT 6000U

struct vs_bench {
    struct event_loop loop;
    struct virtio_mmio m;
    struct virtio_vsock *vs;
    struct drv q[3];
    char dir[64], uds[128];
    uint32_t rx_buf_len; /* payload bytes per rx buffer */
    uint16_t tx_next, tx_free;
    uint32_t local_port, peer_port; /* guest side, host side */
    /* Guest -> host credit: what the device granted and has forwarded; what we sent. */
    uint32_t peer_buf_alloc, peer_fwd_cnt, tx_cnt;
    /* Host -> guest: what the guest consumed, and told the device. */
    uint32_t fwd_cnt, fwd_told;
    bool established;
    uint64_t rx_payload, errors;
    /* Time the simulated driver ran (ring work and kicks): the guest's CPU in a VM, not the device's. */
    double drv_secs;
};

static int unix_client(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path))
        die(path, ENAMETOOLONG);
    memcpy(sa.sun_path, path, strlen(path));
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        die("connecting to the vsock uds_path", errno);
    return fd;
}

static int unix_listener(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path))
        die(path, ENAMETOOLONG);
    memcpy(sa.sun_path, path, strlen(path));
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 4) < 0)
        die("listening on <uds_path>_<port>", errno);
    return fd;
}

/*
 * The device's interrupts: in a VM each one is an irqfd write by the VMM (mmio.c's
 * signal_guest), a device cost, where the harness's interrupt line is a function call. The vsock figures
 * pay for it as a VM would: one eventfd write per interrupt raised.
 */
static int irqfd = -1;

static void irq_to_eventfd(void *ctx, uint32_t gsi, int level)
{
    irq_set(ctx, gsi, level);
    uint64_t one = 1;
    if (level && irqfd >= 0 && write(irqfd, &one, sizeof(one)) != sizeof(one))
        die("irqfd write", errno);
}

static void post_rx(struct vs_bench *b, uint16_t i)
{
    drv_desc(&b->q[0], i, VS_RX_BUF_GPA + (uint64_t)VS_SLOT * i, VSOCK_HDR_LEN + b->rx_buf_len, VIRTQ_DESC_F_WRITE, 0);
    drv_add(&b->q[0], i);
}

/* One packet from the guest on the tx queue (false: no free slot). */
static bool send_pkt(struct vs_bench *b, uint16_t op, uint32_t len)
{
    struct drv *d = &b->q[1];
    uint32_t id, ulen;
    while (drv_used(d, &id, &ulen))
        b->tx_free++;
    if (!b->tx_free)
        return false;
    b->tx_free--;
    uint16_t slot = b->tx_next;
    b->tx_next = (uint16_t)((b->tx_next + 1) % VS_TX_SLOTS);
    struct vsock_hdr h = {.src_cid = VS_GUEST_CID,
                          .dst_cid = VSOCK_HOST_CID,
                          .src_port = b->local_port,
                          .dst_port = b->peer_port,
                          .len = len,
                          .type = VSOCK_TYPE_STREAM,
                          .op = op,
                          .buf_alloc = VS_GUEST_BUF,
                          .fwd_cnt = b->fwd_cnt};
    uint64_t gpa = VS_TX_BUF_GPA + (uint64_t)VS_SLOT * slot;
    vsock_hdr_encode(&h, gpa_ptr(gpa, VSOCK_HDR_LEN));
    drv_desc(d, slot, gpa, VSOCK_HDR_LEN + len, 0, 0);
    drv_add(d, slot);
    drv_kick(d);
    if (op == VSOCK_OP_RW)
        b->tx_cnt += len;
    b->fwd_told = b->fwd_cnt;
    return true;
}

/* Reaps the rx queue: counts stream bytes, notes the device's credit, reposts every buffer. */
static void reap_rx(struct vs_bench *b)
{
    double t0 = now();
    struct drv *d = &b->q[0];
    uint32_t id, len;
    bool any = false;
    while (drv_used(d, &id, &len)) {
        struct vsock_hdr h;
        vsock_hdr_decode(gpa_ptr(VS_RX_BUF_GPA + (uint64_t)VS_SLOT * id, VSOCK_HDR_LEN), &h);
        if (len < VSOCK_HDR_LEN || h.len != len - VSOCK_HDR_LEN)
            b->errors++;
        b->peer_buf_alloc = h.buf_alloc;
        b->peer_fwd_cnt = h.fwd_cnt;
        switch (h.op) {
        case VSOCK_OP_REQUEST: /* the host's CONNECT: accept it */
            b->local_port = h.dst_port;
            b->peer_port = h.src_port;
            send_pkt(b, VSOCK_OP_RESPONSE, 0);
            b->established = true;
            break;
        case VSOCK_OP_RESPONSE: b->established = true; break;
        case VSOCK_OP_RW:
            b->rx_payload += h.len;
            b->fwd_cnt += h.len; /* the guest application read it at once */
            break;
        case VSOCK_OP_CREDIT_UPDATE: break;
        case VSOCK_OP_CREDIT_REQUEST: send_pkt(b, VSOCK_OP_CREDIT_UPDATE, 0); break;
        default: b->errors++; break;
        }
        post_rx(b, (uint16_t)id);
        any = true;
    }
    /*
     * As Linux 6.1 (virtio_transport_stream_do_dequeue): a CREDIT_UPDATE once what the device believes is
     * free falls below one full packet (64 KiB), besides the answer to the device's CREDIT_REQUEST.
     */
    if (VS_GUEST_BUF - (b->fwd_cnt - b->fwd_told) < VSOCK_MAX_PKT_PAYLOAD)
        send_pkt(b, VSOCK_OP_CREDIT_UPDATE, 0);
    if (any)
        drv_kick(d);
    drv_enable_cb(d);
    drv_enable_cb(&b->q[1]);
    b->drv_secs += now() - t0;
    /* The interrupt acknowledgement is an MMIO exit the device model serves: its time counts. */
    mmio_w(&b->m, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_INT_USED_RING | VIRTIO_INT_CONFIG);
}

static void vs_up(struct vs_bench *b, uint32_t rx_buf_len)
{
    memset(b, 0, sizeof(*b));
    b->rx_buf_len = rx_buf_len;
    b->tx_free = VS_TX_SLOTS;
    snprintf(b->dir, sizeof(b->dir), "/tmp/ember-vsock-bench-XXXXXX");
    if (!mkdtemp(b->dir))
        die("mkdtemp", errno);
    snprintf(b->uds, sizeof(b->uds), "%s/v.sock", b->dir);
    if (evloop_init(&b->loop))
        die("epoll", errno);
    struct vsock_config cfg = {.guest_cid = VS_GUEST_CID, .uds_path = b->uds};
    struct errmsg err = {{0}};
    if (virtio_vsock_create(&b->vs, &cfg, &err))
        die(err.text, EINVAL);
    virtio_mmio_init(&b->m, "bench-vsock", &virtio_vsock_ops, b->vs, &gm, &b->loop, -1, 0xd0002000ULL, 7,
                     (struct irq_line){irq_to_eventfd, NULL, 7});
    drv_init(&b->q[0], &b->m, 0, VS_RX_RING_GPA);
    drv_init(&b->q[1], &b->m, 1, VS_TX_RING_GPA);
    drv_init(&b->q[2], &b->m, 2, VS_EV_RING_GPA);
    transport_up(&b->m, BIT64(VIRTIO_F_VERSION_1) | BIT64(VIRTIO_F_EVENT_IDX), b->q, 3);
    for (uint16_t i = 0; i < VS_RX_BUFS; i++)
        post_rx(b, i);
    drv_kick(&b->q[0]);
}

static void vs_down(struct vs_bench *b)
{
    mmio_w(&b->m, VIRTIO_MMIO_STATUS, 0);
    virtio_mmio_destroy(&b->m);
    virtio_vsock_free(b->vs);
    evloop_destroy(&b->loop);
    char p[160];
    snprintf(p, sizeof(p), "%s_%u", b->uds, VS_HOST_PORT);
    unlink(p);
    unlink(b->uds);
    rmdir(b->dir);
}

/* Turns the loop until `done` holds or 5 s pass. */
static void vs_until(struct vs_bench *b, bool (*done)(struct vs_bench *, int), int fd, const char *what)
{
    double end = now() + 5;
    while (!done(b, fd)) {
        if (now() > end)
            die(what, ETIMEDOUT);
        evloop_run_once(&b->loop, 1);
        reap_rx(b);
    }
}

static bool got_ok(struct vs_bench *b, int fd)
{
    static char line[32];
    static size_t n;
    if (!b->established)
        return false;
    ssize_t r = read(fd, line + n, sizeof(line) - 1 - n);
    if (r > 0)
        n += (size_t)r;
    bool ok = n && line[n - 1] == '\n';
    if (ok)
        n = 0;
    return ok;
}

static bool is_established(struct vs_bench *b, int fd)
{
    (void)fd;
    return b->established;
}

/*
 * Each device figure and its raw counterpart run in alternating slices of this length, so that both see the
 * same load on a shared machine (run one after the other, their ratio followed the neighbours' load).
 */
#define VS_SLICE_SECS 0.1

/* One side of a figure pair: runs for `secs` from where its last slice stopped. */
struct vs_side {
    void (*run)(void *ctx, double secs);
    void *ctx;
    double secs, cpu;
};

static void run_slice(struct vs_side *s)
{
    double t0 = now(), c0 = cpu_now();
    s->run(s->ctx, VS_SLICE_SECS);
    s->secs += now() - t0;
    s->cpu += cpu_now() - c0;
}

/* opt.secs of each side, alternating; the device side first in one slice of two, the raw side in the other. */
static void run_pair(struct vs_side *dev, struct vs_side *raw)
{
    int slices = (int)(opt.secs / VS_SLICE_SECS + 0.5);
    for (int i = 0; i < (slices > 0 ? slices : 1); i++) {
        run_slice(i % 2 ? raw : dev);
        run_slice(i % 2 ? dev : raw);
    }
}

/*
 * A device figure's time and CPU time leave out the simulated driver's. In a VM the driver's work (reading used
 * entries and headers, reposting buffers, encoding its packets, the QueueNotify write that KVM turns into
 * an ioeventfd signal) runs on the guest's vCPU, not in the device model; here it runs on the measured
 * thread, so its time (wall clock around each driver step, on this one thread) is taken off. The device's
 * side of a kick (the event loop waking, the eventfd read), its interrupts (an eventfd write each, as an
 * irqfd costs) and the interrupt acknowledgement's MMIO write stay counted.
 */
static void end_device(struct result *r, const struct vs_side *side, const struct vs_bench *b)
{
    r->secs = side->secs - b->drv_secs; /* in a VM the driver runs beside the device, on the vCPU */
    r->cpu = side->cpu - b->drv_secs;
    r->kicks = b->q[0].kicks + b->q[1].kicks;
    r->irqs = irq_count;
}

/*
 * The same 64 KiB writes and reads over an AF_UNIX stream socketpair. The guest's side of the copy goes through
 * the same guest memory the device figure uses: `slots` buffers of `buf_len` bytes, `stride` apart from `gpa`
 * (behind each one's header space), in turn. rx reads each 64 KiB with one readv into as many of the rx
 * buffers as it fills (16 for 4 KiB buffers, as the device's batched read does); tx writes from the tx slots.
 * Both figures touch the same addresses.
 */
struct vs_raw {
    int sv[2];
    bool tx;
    uint64_t gpa, stride;
    uint32_t buf_len;
    unsigned slots, wslot, rslot;
    size_t part, rpart;
    uint64_t got;
};

static void raw_up(struct vs_raw *x, bool tx, uint64_t gpa, uint64_t stride, uint32_t buf_len, unsigned slots)
{
    memset(x, 0, sizeof(*x));
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, x->sv) < 0)
        die("socketpair", errno);
    x->tx = tx;
    x->gpa = gpa;
    x->stride = stride;
    x->buf_len = buf_len;
    x->slots = slots;
}

/* Reads the rest of the current 64 KiB into the buffers it spans (from buffer x->rslot on). */
static ssize_t raw_read(struct vs_raw *x)
{
    struct iovec iov[VS_CHUNK / 4096];
    unsigned n = 0;
    for (size_t pos = 0; pos < VS_CHUNK && n < sizeof(iov) / sizeof(iov[0]); pos += x->buf_len) {
        if (pos + x->buf_len <= x->rpart)
            continue;
        size_t skip = x->rpart > pos ? x->rpart - pos : 0;
        unsigned slot = (unsigned)((x->rslot + pos / x->buf_len) % x->slots);
        iov[n].iov_base = gpa_ptr(x->gpa + x->stride * slot + VSOCK_HDR_LEN + skip, x->buf_len - skip);
        iov[n++].iov_len = x->buf_len - skip;
    }
    return readv(x->sv[1], iov, (int)n);
}

static void raw_run(void *ctx, double secs)
{
    struct vs_raw *x = ctx;
    static uint8_t host[VS_CHUNK];
    double end = now() + secs;
    do {
        ssize_t w;
        for (;;) {
            uint8_t *src = x->tx ? gpa_ptr(x->gpa + x->stride * x->wslot + VSOCK_HDR_LEN, VS_CHUNK) : host;
            if ((w = write(x->sv[0], src + x->part, VS_CHUNK - x->part)) <= 0)
                break;
            x->part += (size_t)w;
            if (x->part == VS_CHUNK) {
                x->part = 0;
                x->wslot = (x->wslot + 1) % x->slots;
            }
        }
        ssize_t n;
        for (;;) {
            if ((n = x->tx ? read(x->sv[1], host + x->rpart, VS_CHUNK - x->rpart) : raw_read(x)) <= 0)
                break;
            x->got += (uint64_t)n;
            x->rpart += (size_t)n;
            if (x->rpart == VS_CHUNK) {
                x->rpart = 0;
                x->rslot = (x->rslot + VS_CHUNK / (x->tx ? VS_CHUNK : x->buf_len)) % x->slots;
            }
        }
    } while (now() < end);
}

static void raw_down(struct vs_raw *x, struct result *r, const struct vs_side *side)
{
    r->secs = side->secs;
    r->cpu = side->cpu;
    r->bytes = x->got;
    r->ops = x->got / VS_CHUNK;
    close(x->sv[0]);
    close(x->sv[1]);
}

/* Host -> guest: the host client writes 64 KiB chunks, the guest's rx buffers take them. */
struct vs_rx {
    struct vs_bench b;
    int fd;
    uint64_t written, base;
    size_t part; /* of the current chunk, already written */
};

static void rx_run(void *ctx, double secs)
{
    struct vs_rx *x = ctx;
    static uint8_t chunk[VS_CHUNK];
    static bool filled;
    for (size_t i = 0; !filled && i < sizeof(chunk); i++)
        chunk[i] = (uint8_t)rnd();
    filled = true;
    double end = now() + secs;
    do {
        for (;;) {
            ssize_t w = write(x->fd, chunk + x->part, VS_CHUNK - x->part);
            if (w <= 0)
                break;
            x->written += (uint64_t)w;
            x->part = (x->part + (size_t)w) % VS_CHUNK;
        }
        evloop_run_once(&x->b.loop, 0);
        reap_rx(&x->b);
        check_device(&x->b.m);
    } while (now() < end);
}

static void bench_vsock_rx(uint32_t rx_buf_len)
{
    static struct vs_rx x;
    struct vs_bench *b = &x.b;
    vs_up(b, rx_buf_len);
    x.fd = unix_client(b->uds);
    x.written = 0;
    x.part = 0;
    char line[32];
    int n = snprintf(line, sizeof(line), "CONNECT %u\n", VS_GUEST_PORT);
    if (write(x.fd, line, (size_t)n) != n)
        die("writing CONNECT", errno);
    vs_until(b, got_ok, x.fd, "the CONNECT handshake");
    char fig[40];
    snprintf(fig, sizeof(fig), "vsock rx 64KiB writes, %uK bufs", rx_buf_len / 1024);
    struct result *r = add_result(fig, "virtio", 0);
    struct result *rr = add_result(fig, "raw unix", 0);
    struct vs_raw raw;
    raw_up(&raw, false, VS_RX_BUF_GPA, VS_SLOT, rx_buf_len, VS_RX_BUFS);
    irq_count = 0;
    b->q[0].kicks = b->q[1].kicks = 0;
    b->drv_secs = 0;
    x.base = b->rx_payload;
    struct vs_side dev = {rx_run, &x, 0, 0}, side = {raw_run, &raw, 0, 0};
    run_pair(&dev, &side);
    end_device(r, &dev, b);
    r->bytes = b->rx_payload - x.base;
    r->ops = r->bytes / VS_CHUNK;
    r->errors = b->errors + (r->bytes > x.written ? 1 : 0);
    raw_down(&raw, rr, &side);
    close(x.fd);
    vs_down(b);
}

/* Guest -> host: 64 KiB packets within the device's credit, read by the host side. */
struct vs_tx {
    struct vs_bench b;
    int fd;
    uint64_t got;
};

static void tx_run(void *ctx, double secs)
{
    struct vs_tx *x = ctx;
    struct vs_bench *b = &x->b;
    static uint8_t buf[VS_CHUNK];
    double end = now() + secs;
    do {
        /* Send while the device's credit allows a whole packet. */
        double d0 = now();
        while (b->peer_buf_alloc - (b->tx_cnt - b->peer_fwd_cnt) >= VS_CHUNK && send_pkt(b, VSOCK_OP_RW, VS_CHUNK))
            ;
        b->drv_secs += now() - d0;
        evloop_run_once(&b->loop, 0);
        ssize_t n;
        while ((n = read(x->fd, buf, sizeof(buf))) > 0)
            x->got += (uint64_t)n;
        reap_rx(b);
        check_device(&b->m);
    } while (now() < end);
}

static void bench_vsock_tx(void)
{
    static struct vs_tx x;
    struct vs_bench *b = &x.b;
    vs_up(b, VSOCK_MAX_PKT_PAYLOAD);
    char path[160];
    snprintf(path, sizeof(path), "%s_%u", b->uds, VS_HOST_PORT);
    int lfd = unix_listener(path);
    b->local_port = 40000;
    b->peer_port = VS_HOST_PORT;
    send_pkt(b, VSOCK_OP_REQUEST, 0);
    vs_until(b, is_established, -1, "the guest's connect");
    struct sockaddr_un peer;
    socklen_t plen = sizeof(peer);
    x.fd = accept4(lfd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (x.fd < 0)
        die("accepting the device's connection", errno);
    x.got = 0;
    for (int s = 0; s < VS_TX_SLOTS; s++)
        memset(gpa_ptr(VS_TX_BUF_GPA + (uint64_t)VS_SLOT * s + VSOCK_HDR_LEN, VS_CHUNK), (uint8_t)s, VS_CHUNK);
    struct result *r = add_result("vsock tx 64KiB writes", "virtio", 0);
    struct result *rr = add_result("vsock tx 64KiB writes", "raw unix", 0);
    struct vs_raw raw;
    raw_up(&raw, true, VS_TX_BUF_GPA, VS_SLOT, VS_CHUNK, VS_TX_SLOTS);
    irq_count = 0;
    b->q[0].kicks = b->q[1].kicks = 0;
    b->drv_secs = 0;
    struct vs_side dev = {tx_run, &x, 0, 0}, side = {raw_run, &raw, 0, 0};
    run_pair(&dev, &side);
    end_device(r, &dev, b);
    r->bytes = x.got;
    r->ops = x.got / VS_CHUNK;
    r->errors = b->errors;
    raw_down(&raw, rr, &side);
    close(x.fd);
    close(lfd);
    vs_down(b);
}

void run_vsock(void)
{
    if (!opt.json_only)
        fprintf(stderr,
                "vsock: 64 KiB writes, AF_UNIX host side, %.1f s per figure in %.1f s slices alternating "
                "with its raw counterpart; the simulated driver's time is not counted\n",
                opt.secs, VS_SLICE_SECS);
    if ((irqfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
        die("eventfd", errno);
    bench_vsock_rx(VSOCK_MAX_PKT_PAYLOAD);
    bench_vsock_rx(4096);
    bench_vsock_tx();
    close(irqfd);
    irqfd = -1;
}
