/*
 * virtio-vsock against hostile guests and host clients: packets with bad
 * lengths, unknown operations, wrong CIDs or types, absurd credit, floods;
 * host clients sending garbage, no newline, huge ports, slow lines, or
 * connecting by the hundred. Each hits only its own packet or connection.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "devices/virtio/mmio.h"
#include "devices/virtio/virtio.h"
#include "tests/unit/test_vsock_fixture.h"
#include "tests/unit/virtio_fixture.h"

TestSuite(vsock_hostile, .fini = vsk_stop);

static struct vsock_hdr hdr(uint16_t op, uint32_t src_port, uint32_t dst_port, uint32_t len)
{
    return vsk_hdr(op, src_port, dst_port, 0, len, 1 << 20, 0);
}

/* A live guest-initiated connection used to show the others are untouched. */
static int bystander(int *listener)
{
    *listener = vsk_host_listener(6000);
    return vsk_connect_from_guest(*listener, 30000, 6000, 1 << 20);
}

static void bystander_still_works(int fd)
{
    vsk_send(VSOCK_OP_RW, 30000, 6000, 0, "alive", 5, 1 << 20, 0);
    char b[5];
    cr_assert_eq(vsk_host_read(fd, b, 5), 5);
    cr_assert_eq(memcmp(b, "alive", 5), 0);
    cr_assert_eq(write(fd, "back", 4), 4);
    struct vsk_pkt p;
    bool got = false;
    while (vsk_recv(&p))
        if (p.h.op == VSOCK_OP_RW && p.h.dst_port == 30000 && p.h.len == 4 && !memcmp(p.data, "back", 4))
            got = true;
    cr_assert(got);
    cr_assert_eq(vfx_rd(VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET, 0);
}

static int count_rst(void)
{
    int n = 0;
    struct vsk_pkt p;
    while (vsk_recv(&p))
        n += p.h.op == VSOCK_OP_RST;
    return n;
}

Test(vsock_hostile, bad_packets_hit_only_themselves)
{
    vsk_start(64, 1);
    int l, fd = bystander(&l);
    uint64_t bad0 = virtio_vsock_counters(vsk.vs).bad_packets;
    /* Shorter than a header. */
    struct vsock_hdr h = hdr(VSOCK_OP_RW, 30000, 6000, 0);
    uint8_t raw[VSOCK_HDR_LEN];
    vsock_hdr_encode(&h, raw);
    struct vfx_seg s = {0x700000, 20, false};
    memcpy(g_at(0x700000, 20), raw, 20);
    vfx_post(VIRTIO_VSOCK_TXQ, &s, 1, 0);
    virtio_mmio_kick(vfx.m, VIRTIO_VSOCK_TXQ);
    /* A length beyond the buffer, on an unknown connection: RST. */
    h = hdr(VSOCK_OP_RW, 31000, 6000, 5000);
    vsk_send_raw(&h, "x", 1, 2);
    /* A length beyond the largest packet. */
    h = hdr(VSOCK_OP_RW, 31001, 6000, 70000);
    vsk_send_raw(&h, "x", 1, 2);
    /* Wrong CIDs: dropped without an answer. */
    h = hdr(VSOCK_OP_REQUEST, 31002, 6000, 0);
    h.src_cid = 7;
    vsk_send_raw(&h, NULL, 0, 1);
    h = hdr(VSOCK_OP_REQUEST, 31003, 6000, 0);
    h.dst_cid = 5;
    vsk_send_raw(&h, NULL, 0, 1);
    h = hdr(VSOCK_OP_REQUEST, 31004, 6000, 0);
    h.src_cid = (uint64_t)GUEST_CID << 32 | GUEST_CID;
    vsk_send_raw(&h, NULL, 0, 1);
    /* A type other than stream; an unknown op; a payload on a control op. */
    h = hdr(VSOCK_OP_REQUEST, 31005, 6000, 0);
    h.type = 2;
    vsk_send_raw(&h, NULL, 0, 1);
    h = hdr(99, 31006, 6000, 0);
    vsk_send_raw(&h, NULL, 0, 1);
    h = hdr(VSOCK_OP_CREDIT_REQUEST, 31007, 6000, 3);
    vsk_send_raw(&h, "abc", 3, 2);
    /* Data for a connection that does not exist; an RST for one that does not exist (no answer). */
    vsk_send(VSOCK_OP_RW, 31008, 6000, 0, "zz", 2, 1 << 20, 0);
    vsk_send(VSOCK_OP_RST, 31009, 6000, 0, NULL, 0, 1 << 20, 0);
    int rst = count_rst();
    cr_assert_eq(rst, 6, "RSTs for the bad packets with an address (got %d)", rst);
    cr_assert_geq(virtio_vsock_counters(vsk.vs).bad_packets - bad0, 8);
    bystander_still_works(fd);
    close(fd);
    close(l);
}

Test(vsock_hostile, unknown_op_resets_its_connection_only)
{
    vsk_start(64, 1);
    int l, fd = bystander(&l);
    int fd2 = vsk_connect_from_guest(l, 30001, 6000, 1 << 20);
    vsk_send(42, 30001, 6000, 0, NULL, 0, 1 << 20, 0);
    struct vsk_pkt p;
    cr_assert(vsk_recv(&p));
    cr_assert_eq(p.h.op, VSOCK_OP_RST);
    cr_assert_eq(p.h.dst_port, 30001);
    char c;
    cr_assert_eq(vsk_host_read(fd2, &c, 1), 0, "its host side is closed");
    /* A second REQUEST on a live connection is a protocol error too. */
    int fd3 = vsk_connect_from_guest(l, 30002, 6000, 1 << 20);
    vsk_send(VSOCK_OP_REQUEST, 30002, 6000, 0, NULL, 0, 1 << 20, 0);
    cr_assert(vsk_recv(&p));
    cr_assert_eq(p.h.op, VSOCK_OP_RST);
    bystander_still_works(fd);
    close(fd);
    close(fd2);
    close(fd3);
    close(l);
}

Test(vsock_hostile, absurd_credit_sends_nothing_and_breaks_nothing)
{
    vsk_start(64, 1);
    int l, fd = bystander(&l);
    uint32_t hp;
    int h = vsk_connect_from_host(70, 70, 4096, &hp);
    /* The guest claims to have forwarded bytes it never got. */
    vsk_send(VSOCK_OP_CREDIT_UPDATE, 70, hp, 0, NULL, 0, 4096, 0xfffff000u);
    cr_assert_eq(write(h, "data", 4), 4);
    struct vsk_pkt p;
    while (vsk_recv(&p))
        cr_assert_neq(p.h.op, VSOCK_OP_RW, "no credit: no data");
    /* A sane update lets it through. */
    vsk_send(VSOCK_OP_CREDIT_UPDATE, 70, hp, 0, NULL, 0, 4096, 0);
    bool got = false;
    while (vsk_recv(&p))
        got |= p.h.op == VSOCK_OP_RW && p.h.len == 4;
    cr_assert(got);
    bystander_still_works(fd);
    close(h);
    close(fd);
    close(l);
}

Test(vsock_hostile, request_flood_is_bounded)
{
    vsk_start(64, 1);
    int l, fd = bystander(&l);
    /* 2000 requests to a port nobody listens on, without the guest taking rx buffers back. */
    for (uint32_t i = 0; i < 2000; i++)
        vsk_send(VSOCK_OP_REQUEST, 20000 + i, 999, 0, NULL, 0, 1 << 20, 0);
    struct vsock_counters c = virtio_vsock_counters(vsk.vs);
    cr_assert_eq(c.conns_refused, 2000);
    cr_assert_gt(c.rst_dropped, 0, "answers beyond the queue are dropped, not queued forever");
    int rst = count_rst();
    cr_assert_gt(rst, 0);
    bystander_still_works(fd);
    close(fd);
    close(l);
}

Test(vsock_hostile, tiny_rx_buffer_needs_reset)
{
    vsk_start(0, 1);
    struct vfx_seg s = {0x100000, 16, true};
    vfx_post(VIRTIO_VSOCK_RXQ, &s, 1, 0);
    vsk_send(VSOCK_OP_REQUEST, 1, 999, 0, NULL, 0, 1 << 20, 0); /* an RST to deliver */
    cr_assert(vfx_rd(VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
}

static void expect_closed(int fd, const char *why)
{
    /* End of stream, or a reset when Ember closed with the client's bytes unread. */
    char b[8];
    for (int i = 0; i < 200; i++) {
        ssize_t n = read(fd, b, sizeof(b));
        if (n == 0 || (n < 0 && errno == ECONNRESET))
            return;
        cr_assert(n < 0 && errno == EAGAIN, "%s: got %zd bytes", why, n);
        vsk_pump(5);
    }
    cr_assert_fail("%s: the client is still connected", why);
}

Test(vsock_hostile, bad_connect_lines_are_dropped)
{
    vsk_start(64, 1);
    static const char *const lines[] = {
        "HELLO\n",
        "CONNECT\n",
        "CONNECT \n",
        "CONNECT abc\n",
        "CONNECT 4294967296\n",
        "CONNECT 99999999999999\n",
        "CONNECT -1\n",
        "connect 5\n",
        "CONNECT 5 \n",
        "CONNECTXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
        "\n",
    };
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        int fd = vsk_host_client();
        cr_assert_eq(write(fd, lines[i], strlen(lines[i])), (ssize_t)strlen(lines[i]));
        expect_closed(fd, lines[i]);
        close(fd);
    }
    struct vsk_pkt p;
    cr_assert_not(vsk_recv(&p), "the guest heard of none of them");
    cr_assert_eq(virtio_vsock_counters(vsk.vs).host_rejected, sizeof(lines) / sizeof(lines[0]));
    /* A good client is still served. */
    uint32_t hp;
    int fd = vsk_connect_from_host(5, 5, 1 << 20, &hp);
    close(fd);
}

Test(vsock_hostile, slow_connect_line_and_silent_clients)
{
    vsk_start(64, 1);
    /* A line arriving a byte at a time still works. */
    int slow = vsk_host_client();
    const char *line = "CONNECT 11\n";
    for (size_t i = 0; i < strlen(line); i++) {
        cr_assert_eq(write(slow, line + i, 1), 1);
        vsk_pump(2);
    }
    struct vsk_pkt p;
    cr_assert(vsk_recv(&p));
    cr_assert_eq(p.h.op, VSOCK_OP_REQUEST);
    cr_assert_eq(p.h.dst_port, 11);
    /* 300 clients that never speak: only the newest 64 are kept waiting. */
    enum { N = 300 };
    int fds[N];
    for (int i = 0; i < N; i++) {
        fds[i] = vsk_host_client();
        if (i % 50 == 49)
            vsk_pump(5);
    }
    vsk_pump(50);
    cr_assert_geq(virtio_vsock_counters(vsk.vs).host_rejected, N - 64);
    char b;
    cr_assert_eq(read(fds[0], &b, 1), 0, "the oldest silent client was dropped");
    cr_assert_eq(read(fds[N - 1], &b, 1), -1, "the newest is still waiting");
    for (int i = 0; i < N; i++)
        close(fds[i]);
    uint32_t hp;
    int fd = vsk_connect_from_host(12, 12, 1 << 20, &hp);
    close(fd);
    close(slow);
}
