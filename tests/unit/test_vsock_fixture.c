/* The simulated vsock driver and host side for the vsock tests (test_vsock_fixture.h); no tests of its own. */
#include "tests/unit/test_vsock_fixture.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/event_loop.h"
#include "devices/virtio/mmio.h"
#include "tests/unit/virtio_fixture.h"

#define MEM (8ULL << 20)
#define QSZ 64
#define RXQ VIRTIO_VSOCK_RXQ
#define TXQ VIRTIO_VSOCK_TXQ
#define EVQ VIRTIO_VSOCK_EVENTQ
#define RX_BUF(i) (0x100000ULL + 0x2000ULL * (i))
#define TX_BUF(i) (0x200000ULL + 0x11000ULL * (i))
#define EV_BUF(i) (0xf0000ULL + 0x10ULL * (i))

struct vsk vsk = {.guest_cid = 3};
static struct event_loop loop;
static struct virtio_mmio m;
static bool started;

uint8_t vsk_pat(uint64_t i) { return (uint8_t)(i * 131 + (i >> 9) * 7 + 1); }

static void post_rx(void)
{
    /* One rx chain per descriptor, reused in ring order: the buffer follows the descriptor. */
    uint16_t head = vfx.q[RXQ].next_desc;
    struct vfx_seg s = {RX_BUF(head), RX_BUF_LEN, true};
    vfx_post(RXQ, &s, 1, 0);
}

void vsk_start(int nrx, int nev)
{
    vfx_ram_init(MEM);
    snprintf(vsk.dir, sizeof(vsk.dir), "/tmp/ember-vsock-XXXXXX");
    cr_assert_not_null(mkdtemp(vsk.dir));
    snprintf(vsk.uds, sizeof(vsk.uds), "%s/v.sock", vsk.dir);
    cr_assert_eq(evloop_init(&loop), 0);
    struct vsock_config cfg = {.guest_cid = GUEST_CID, .uds_path = vsk.uds};
    struct errmsg err = {{0}};
    cr_assert_eq(virtio_vsock_create(&vsk.vs, &cfg, &err), 0, "%s", err.text);
    cr_assert_eq(virtio_mmio_init(&m, "vsock", &virtio_vsock_ops, vsk.vs, &vfx.gm, &loop, -1, 0xd0001000ULL, 7,
                                  vfx_irq_line(7)),
                 0);
    vfx.m = &m;
    started = true;
    vfx_queue_at(RXQ, QSZ, 0x1000, 0x2000, 0x3000);
    vfx_queue_at(TXQ, QSZ, 0x5000, 0x6000, 0x7000);
    vfx_queue_at(EVQ, QSZ, 0x9000, 0xa000, 0xb000);
    vfx_driver_up(BIT64(VIRTIO_F_VERSION_1), 3);
    vsk.rx_seen = 0;
    for (int i = 0; i < nrx; i++)
        post_rx();
    for (int i = 0; i < nev; i++) {
        struct vfx_seg s = {EV_BUF(i), VSOCK_EVENT_LEN, true};
        vfx_post(EVQ, &s, 1, 0);
    }
    virtio_mmio_kick(&m, RXQ);
}

/* The temporary directory holds only sockets the test made: remove them, then it. */
static void rm_tree(void)
{
    DIR *d = opendir(vsk.dir);
    cr_assert_not_null(d);
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.')
            unlinkat(dirfd(d), e->d_name, 0);
    closedir(d);
    cr_assert_eq(rmdir(vsk.dir), 0, "rmdir %s: %s", vsk.dir, strerror(errno));
}

void vsk_stop(void)
{
    if (!started)
        return;
    started = false;
    vfx_wr(VIRTIO_MMIO_STATUS, 0);
    virtio_mmio_destroy(&m);
    virtio_vsock_free(vsk.vs);
    evloop_destroy(&loop);
    vfx_ram_free();
    rm_tree();
}

void vsk_snapshot_roundtrip(void)
{
    struct state_writer w;
    state_writer_init(&w);
    cr_assert_eq(virtio_mmio_save(&m, &w), 0);
    struct state_reader r;
    state_reader_init(&r, w.buf, w.len);
    struct errmsg err = {{0}};
    cr_assert_eq(virtio_mmio_restore(&m, &r, &err), 0, "%s", err.text);
    state_writer_free(&w);
    virtio_vsock_restored(vsk.vs);
    virtio_dev_resume_restored(virtio_mmio_device(&m));
}

void vsk_pump(int ms)
{
    for (int i = 0; i < ms; i++)
        if (evloop_run_once(&loop, 1) == 0 && i > 2)
            break;
}

bool vsk_recv(struct vsk_pkt *p)
{
    if (vfx_used_idx(RXQ) == vsk.rx_seen)
        vsk_pump(20);
    if (vfx_used_idx(RXQ) == vsk.rx_seen)
        return false;
    uint32_t head = vfx_used_id(RXQ, vsk.rx_seen);
    uint32_t len = vfx_used_len(RXQ, vsk.rx_seen);
    vsk.rx_seen++;
    cr_assert_geq(len, VSOCK_HDR_LEN);
    static uint8_t copy[RX_BUF_LEN];
    memcpy(copy, g_at(RX_BUF(head), len), len);
    vsock_hdr_decode(copy, &p->h);
    cr_assert_eq(p->h.len, len - VSOCK_HDR_LEN, "used length is header + payload");
    cr_assert_eq(p->h.src_cid, VSOCK_HOST_CID);
    cr_assert_eq(p->h.dst_cid, GUEST_CID);
    cr_assert_eq(p->h.type, VSOCK_TYPE_STREAM);
    p->data = copy + VSOCK_HDR_LEN;
    post_rx();
    virtio_mmio_kick(&m, RXQ);
    return true;
}

static void post_tx(const struct vsock_hdr *h, const void *data, uint32_t len, int nseg)
{
    uint16_t slot = vfx.q[TXQ].next_desc;
    uint64_t gpa = TX_BUF(slot % 60);
    uint8_t *b = g_at(gpa, VSOCK_HDR_LEN + (uint64_t)len);
    vsock_hdr_encode(h, b);
    if (len)
        memcpy(b + VSOCK_HDR_LEN, data, len);
    struct vfx_seg s[2] = {{gpa, VSOCK_HDR_LEN + len, false}};
    if (nseg == 2) {
        s[0].len = VSOCK_HDR_LEN;
        s[1] = (struct vfx_seg){gpa + VSOCK_HDR_LEN, len, false};
    }
    vfx_post(TXQ, s, nseg == 2 && len ? 2 : 1, 0);
}

void vsk_send_raw(const struct vsock_hdr *h, const void *data, uint32_t len, int nseg)
{
    post_tx(h, data, len, nseg);
    virtio_mmio_kick(&m, TXQ);
}

void vsk_kick_tx(void) { virtio_mmio_kick(&m, TXQ); }

struct vsock_hdr vsk_hdr(uint16_t op, uint32_t src_port, uint32_t dst_port, uint32_t flags, uint32_t len,
                         uint32_t buf_alloc, uint32_t fwd_cnt)
{
    return (struct vsock_hdr){.src_cid = GUEST_CID,
                              .dst_cid = VSOCK_HOST_CID,
                              .src_port = src_port,
                              .dst_port = dst_port,
                              .len = len,
                              .type = VSOCK_TYPE_STREAM,
                              .op = op,
                              .flags = flags,
                              .buf_alloc = buf_alloc,
                              .fwd_cnt = fwd_cnt};
}

void vsk_post(uint16_t op, uint32_t src_port, uint32_t dst_port, uint32_t flags, const void *data, uint32_t len,
              uint32_t buf_alloc, uint32_t fwd_cnt)
{
    struct vsock_hdr h = vsk_hdr(op, src_port, dst_port, flags, len, buf_alloc, fwd_cnt);
    post_tx(&h, data, len, 2);
}

uint64_t vsk_interrupts(void) { return virtio_mmio_device(&m)->interrupts; }

void vsk_send(uint16_t op, uint32_t src_port, uint32_t dst_port, uint32_t flags, const void *data, uint32_t len,
              uint32_t buf_alloc, uint32_t fwd_cnt)
{
    vsk_post(op, src_port, dst_port, flags, data, len, buf_alloc, fwd_cnt);
    vsk_kick_tx();
}

static int unix_socket(const char *path, bool do_listen)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    if (do_listen) {
        cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        cr_assert_eq(listen(fd, 128), 0);
    } else {
        cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "connect %s: %s", path, strerror(errno));
    }
    return fd;
}

int vsk_host_client(void) { return unix_socket(vsk.uds, false); }

int vsk_host_listener(uint32_t port)
{
    char path[160];
    snprintf(path, sizeof(path), "%s_%u", vsk.uds, port);
    return unix_socket(path, true);
}

size_t vsk_host_read(int fd, void *buf, size_t len)
{
    size_t got = 0;
    for (int idle = 0; got < len && idle < 200;) {
        ssize_t n = read(fd, (uint8_t *)buf + got, len - got);
        if (n == 0)
            break;
        if (n > 0) {
            got += (size_t)n;
            idle = 0;
            continue;
        }
        cr_assert_eq(errno, EAGAIN, "host read: %s", strerror(errno));
        vsk_pump(5);
        idle++;
    }
    return got;
}

int vsk_connect_from_host(uint32_t port, uint32_t guest_port, uint32_t buf_alloc, uint32_t *host_port)
{
    int fd = vsk_host_client();
    char line[32];
    int n = snprintf(line, sizeof(line), "CONNECT %u\n", port);
    cr_assert_eq(write(fd, line, (size_t)n), n);
    struct vsk_pkt p;
    cr_assert(vsk_recv(&p), "the guest gets a REQUEST");
    cr_assert_eq(p.h.op, VSOCK_OP_REQUEST);
    cr_assert_eq(p.h.dst_port, port);
    cr_assert_geq(p.h.src_port, 1U << 30);
    (void)guest_port;
    vsk_send(VSOCK_OP_RESPONSE, port, p.h.src_port, 0, NULL, 0, buf_alloc, 0);
    char ok[32] = {0};
    char want[32];
    int wn = snprintf(want, sizeof(want), "OK %u\n", p.h.src_port);
    cr_assert_eq(vsk_host_read(fd, ok, (size_t)wn), (size_t)wn);
    cr_assert_str_eq(ok, want);
    *host_port = p.h.src_port;
    return fd;
}

int vsk_connect_from_guest(int listener, uint32_t gp, uint32_t hp, uint32_t buf_alloc)
{
    vsk_send(VSOCK_OP_REQUEST, gp, hp, 0, NULL, 0, buf_alloc, 0);
    struct vsk_pkt p;
    cr_assert(vsk_recv(&p), "the guest gets an answer");
    cr_assert_eq(p.h.op, VSOCK_OP_RESPONSE, "op %u", p.h.op);
    cr_assert_eq(p.h.src_port, hp);
    cr_assert_eq(p.h.dst_port, gp);
    struct sockaddr_un peer;
    socklen_t plen = sizeof(peer);
    int fd = accept4(listener, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
    cr_assert_geq(fd, 0);
    return fd;
}
