/*
 * virtio-vsock batching against the simulated driver (test_vsock_fixture.h): one host read spread over
 * several 4 KiB rx buffers with one interrupt, a batch cut by the end of the data, by the guest's credit,
 * by the posted buffers and by the host peer closing; odd rx buffers the batch leaves for a turn of their
 * own; several tx packets per kick written together, in order, and kept apart per connection.
 */
#include <criterion/criterion.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "devices/virtio/mmio.h"
#include "tests/unit/test_vsock_fixture.h"
#include "tests/unit/virtio_fixture.h"

TestSuite(vsock_batch, .fini = vsk_stop);

#define PAYLOAD (RX_BUF_LEN - VSOCK_HDR_LEN)

static void fill(uint8_t *b, size_t n, uint64_t from)
{
    for (size_t i = 0; i < n; i++)
        b[i] = vsk_pat(from + i);
}

/* Receives what is queued: RW payload checked against the pattern from *got; returns the packets seen. */
static int take_all(uint32_t hp, uint64_t *got, uint32_t *lens, int max, bool *shutdown, bool *credit_req)
{
    struct vsk_pkt p;
    int n = 0;
    while (vsk_recv(&p)) {
        cr_assert_eq(p.h.src_port, hp);
        if (p.h.op == VSOCK_OP_SHUTDOWN && shutdown)
            *shutdown = true;
        if (p.h.op == VSOCK_OP_CREDIT_REQUEST && credit_req)
            *credit_req = true;
        if (p.h.op != VSOCK_OP_RW)
            continue;
        for (uint32_t i = 0; i < p.h.len; i++)
            cr_assert_eq(p.data[i], vsk_pat(*got + i), "byte %llu", (unsigned long long)(*got + i));
        *got += p.h.len;
        if (n < max)
            lens[n] = p.h.len;
        n++;
    }
    return n;
}

Test(vsock_batch, one_read_fills_several_buffers_and_ends_mid_buffer)
{
    vsk_start(32, 1);
    uint32_t hp;
    int fd = vsk_connect_from_host(70, 70, 1 << 20, &hp);
    static uint8_t buf[2 * PAYLOAD + 1808];
    fill(buf, sizeof(buf), 0);
    cr_assert_eq(write(fd, buf, sizeof(buf)), (ssize_t)sizeof(buf));
    uint16_t used0 = vfx_used_idx(VIRTIO_VSOCK_RXQ);
    uint64_t irq0 = vsk_interrupts(), pkts0 = virtio_vsock_counters(vsk.vs).rx_packets;
    vsk_pump(20);
    /* One batch: three packets in ring order, the last one partly filled, one interrupt for all. */
    cr_assert_eq((uint16_t)(vfx_used_idx(VIRTIO_VSOCK_RXQ) - used0), 3);
    cr_assert_eq(vsk_interrupts() - irq0, 1, "one interrupt per batch, not per packet");
    cr_assert_eq(virtio_vsock_counters(vsk.vs).rx_packets - pkts0, 3);
    uint64_t got = 0;
    uint32_t lens[4];
    cr_assert_eq(take_all(hp, &got, lens, 4, NULL, NULL), 3);
    cr_assert_eq(lens[0], PAYLOAD);
    cr_assert_eq(lens[1], PAYLOAD);
    cr_assert_eq(lens[2], 1808);
    cr_assert_eq(got, sizeof(buf));
    close(fd);
}

Test(vsock_batch, credit_running_out_mid_batch)
{
    vsk_start(32, 1);
    uint32_t hp;
    /* The guest grants 6000 bytes: the batch stops inside its second buffer. */
    int fd = vsk_connect_from_host(71, 71, 6000, &hp);
    static uint8_t buf[3 * PAYLOAD];
    fill(buf, sizeof(buf), 0);
    cr_assert_eq(write(fd, buf, sizeof(buf)), (ssize_t)sizeof(buf));
    uint64_t got = 0;
    uint32_t lens[4];
    bool asked = false;
    cr_assert_eq(take_all(hp, &got, lens, 4, NULL, &asked), 2);
    cr_assert_eq(lens[0], PAYLOAD);
    cr_assert_eq(lens[1], 6000 - PAYLOAD);
    cr_assert_eq(got, 6000, "exactly the credit");
    cr_assert(asked, "out of credit mid-batch, the device asks for an update");
    struct vsock_counters c = virtio_vsock_counters(vsk.vs);
    cr_assert_eq(c.rx_bytes, 6000);
    /* The guest read it all: the rest comes, still in order, never beyond the credit. */
    while (got < sizeof(buf)) {
        uint64_t before = got;
        vsk_send(VSOCK_OP_CREDIT_UPDATE, 71, hp, 0, NULL, 0, 6000, (uint32_t)got);
        take_all(hp, &got, lens, 4, NULL, NULL);
        cr_assert_gt(got, before);
        cr_assert_leq(got - before, 6000);
    }
    cr_assert_eq(got, sizeof(buf));
    close(fd);
}

Test(vsock_batch, peer_closing_mid_batch_keeps_every_byte_then_shuts_down)
{
    vsk_start(32, 1);
    uint32_t hp;
    int fd = vsk_connect_from_host(72, 72, 1 << 20, &hp);
    static uint8_t buf[5 * PAYLOAD + 100];
    fill(buf, sizeof(buf), 0);
    cr_assert_eq(write(fd, buf, sizeof(buf)), (ssize_t)sizeof(buf));
    close(fd); /* gone before the device read a byte: the data, then the end of the stream */
    uint64_t got = 0;
    uint32_t lens[8];
    bool shut = false;
    cr_assert_eq(take_all(hp, &got, lens, 8, &shut, NULL), 6);
    cr_assert_eq(got, sizeof(buf));
    cr_assert(shut, "SHUTDOWN after the last byte");
}

Test(vsock_batch, batch_limited_by_posted_buffers_resumes_when_more_come)
{
    vsk_start(2, 1);
    uint32_t hp;
    int fd = vsk_connect_from_host(73, 73, 1 << 20, &hp);
    static uint8_t buf[6 * PAYLOAD];
    fill(buf, sizeof(buf), 0);
    cr_assert_eq(write(fd, buf, sizeof(buf)), (ssize_t)sizeof(buf));
    vsk_pump(20);
    /* Two buffers posted: two packets, the rest stays in the host socket. */
    cr_assert_eq((uint16_t)(vfx_used_idx(VIRTIO_VSOCK_RXQ) - vsk.rx_seen), 2);
    shutdown(fd, SHUT_WR);
    /* Each buffer the guest gives back brings more, in order, then the end of the stream. */
    uint64_t got = 0;
    uint32_t lens[8];
    bool shut = false;
    take_all(hp, &got, lens, 8, &shut, NULL);
    cr_assert_eq(got, sizeof(buf));
    cr_assert(shut);
    close(fd);
}

Test(vsock_batch, odd_rx_buffer_behind_the_first_waits_for_its_own_turn)
{
    vsk_start(1, 1);
    uint32_t hp;
    int fd = vsk_connect_from_host(74, 74, 1 << 20, &hp);
    /* The fixture reposted one plain buffer; behind it a chain whose header spans two descriptors. */
    const uint64_t split = 0x700000;
    struct vfx_seg s[2] = {{split, 20, true}, {split + 0x100, 4096, true}};
    vfx_post(VIRTIO_VSOCK_RXQ, s, 2, 0);
    static uint8_t buf[3 * PAYLOAD];
    fill(buf, sizeof(buf), 0);
    cr_assert_eq(write(fd, buf, sizeof(buf)), (ssize_t)sizeof(buf));
    uint16_t used0 = vfx_used_idx(VIRTIO_VSOCK_RXQ);
    vsk_pump(20);
    /* Both filled, the plain one by the batch, the split one on its own; in ring order. */
    cr_assert_eq((uint16_t)(vfx_used_idx(VIRTIO_VSOCK_RXQ) - used0), 2);
    struct vsk_pkt p;
    cr_assert(vsk_recv(&p));
    cr_assert_eq(p.h.op, VSOCK_OP_RW);
    cr_assert_eq(p.h.len, PAYLOAD);
    cr_assert_eq(memcmp(p.data, buf, PAYLOAD), 0);
    /* The split chain: header over 20 + 24 bytes, then 4072 bytes of payload. */
    uint16_t i = vsk.rx_seen++;
    cr_assert_eq(vfx_used_len(VIRTIO_VSOCK_RXQ, i), 20 + 4096);
    uint8_t hdr[VSOCK_HDR_LEN];
    memcpy(hdr, g_at(split, 20), 20);
    memcpy(hdr + 20, g_at(split + 0x100, 24), 24);
    struct vsock_hdr h;
    vsock_hdr_decode(hdr, &h);
    cr_assert_eq(h.op, VSOCK_OP_RW);
    cr_assert_eq(h.len, 4096 - 24);
    cr_assert_eq(memcmp(g_at(split + 0x100 + 24, h.len), buf + PAYLOAD, h.len), 0);
    uint64_t got = PAYLOAD + h.len;
    uint32_t lens[4];
    take_all(hp, &got, lens, 4, NULL, NULL);
    cr_assert_eq(got, sizeof(buf));
    close(fd);
}

Test(vsock_batch, tx_packets_of_one_kick_written_together_in_order)
{
    vsk_start(32, 1);
    int l = vsk_host_listener(7100);
    int fa = vsk_connect_from_guest(l, 43001, 7100, 1 << 20);
    int fb = vsk_connect_from_guest(l, 43002, 7100, 1 << 20);
    static uint8_t a[6000], b[1500];
    fill(a, sizeof(a), 0);
    fill(b, sizeof(b), 1000000);
    /* A A B A, then A shuts its sending side: one kick for all of it. */
    vsk_post(VSOCK_OP_RW, 43001, 7100, 0, a, 1000, 1 << 20, 0);
    vsk_post(VSOCK_OP_RW, 43001, 7100, 0, a + 1000, 2000, 1 << 20, 0);
    vsk_post(VSOCK_OP_RW, 43002, 7100, 0, b, sizeof(b), 1 << 20, 0);
    vsk_post(VSOCK_OP_RW, 43001, 7100, 0, a + 3000, 3000, 1 << 20, 0);
    vsk_post(VSOCK_OP_SHUTDOWN, 43001, 7100, VSOCK_SHUTDOWN_SEND, NULL, 0, 1 << 20, 0);
    uint16_t used0 = vfx_used_idx(VIRTIO_VSOCK_TXQ);
    vsk_kick_tx();
    cr_assert_eq((uint16_t)(vfx_used_idx(VIRTIO_VSOCK_TXQ) - used0), 5, "every chain given back");
    static uint8_t back[7000];
    cr_assert_eq(vsk_host_read(fa, back, sizeof(back)), sizeof(a), "A's data, then the end of its stream");
    cr_assert_eq(memcmp(back, a, sizeof(a)), 0);
    cr_assert_eq(vsk_host_read(fb, back, sizeof(b)), sizeof(b));
    cr_assert_eq(memcmp(back, b, sizeof(b)), 0);
    struct vsock_counters c = virtio_vsock_counters(vsk.vs);
    cr_assert_eq(c.tx_bytes, sizeof(a) + sizeof(b));
    cr_assert_eq(c.bad_packets, 0);
    close(fa);
    close(fb);
    close(l);
}

Test(vsock_batch, tx_batch_over_credit_resets_only_that_connection)
{
    vsk_start(32, 1);
    int l = vsk_host_listener(7101);
    int fa = vsk_connect_from_guest(l, 43011, 7101, 1 << 20);
    int fb = vsk_connect_from_guest(l, 43012, 7101, 1 << 20);
    static uint8_t d[65536];
    fill(d, sizeof(d), 0);
    /* A host that does not read, and a guest that sends A far beyond its 256 KiB credit in one kick. */
    for (int k = 0; k < 24; k++)
        vsk_post(VSOCK_OP_RW, 43011, 7101, 0, d, sizeof(d), 1 << 20, 0);
    vsk_post(VSOCK_OP_RW, 43012, 7101, 0, d, 100, 1 << 20, 0);
    vsk_kick_tx();
    struct vsk_pkt p;
    bool rst_a = false, rst_b = false;
    while (vsk_recv(&p)) {
        rst_a |= p.h.op == VSOCK_OP_RST && p.h.dst_port == 43011;
        rst_b |= p.h.op == VSOCK_OP_RST && p.h.dst_port == 43012;
    }
    cr_assert(rst_a);
    cr_assert_not(rst_b);
    uint8_t back[100];
    cr_assert_eq(vsk_host_read(fb, back, sizeof(back)), sizeof(back));
    cr_assert_eq(memcmp(back, d, sizeof(back)), 0);
    close(fa);
    close(fb);
    close(l);
}

Test(vsock_batch, one_interrupt_when_a_kick_fills_both_queues)
{
    vsk_start(32, 1);
    uint32_t hp;
    int fd = vsk_connect_from_host(75, 75, PAYLOAD, &hp);
    static uint8_t buf[2 * PAYLOAD];
    fill(buf, sizeof(buf), 0);
    cr_assert_eq(write(fd, buf, sizeof(buf)), (ssize_t)sizeof(buf));
    uint64_t got = 0;
    uint32_t lens[4];
    take_all(hp, &got, lens, 4, NULL, NULL);
    cr_assert_eq(got, PAYLOAD, "held at the credit");
    /* The guest's credit update (a tx buffer to give back) lets data through (rx): one interrupt for both. */
    uint16_t tx0 = vfx_used_idx(VIRTIO_VSOCK_TXQ), rx0 = vfx_used_idx(VIRTIO_VSOCK_RXQ);
    uint64_t irq0 = vsk_interrupts();
    vsk_send(VSOCK_OP_CREDIT_UPDATE, 75, hp, 0, NULL, 0, PAYLOAD, (uint32_t)got);
    cr_assert_eq((uint16_t)(vfx_used_idx(VIRTIO_VSOCK_TXQ) - tx0), 1);
    cr_assert_geq((uint16_t)(vfx_used_idx(VIRTIO_VSOCK_RXQ) - rx0), 1);
    cr_assert_eq(vsk_interrupts() - irq0, 1);
    take_all(hp, &got, lens, 4, NULL, NULL);
    cr_assert_eq(got, sizeof(buf));
    close(fd);
}
