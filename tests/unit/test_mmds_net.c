/*
 * The MMDS responder fed frames as a guest would send them: ARP, a whole HTTP exchange over TCP, windows and
 * segment sizes, and hostile frames (truncated, oversize, bad checksums, fragments, GSO, random mutations).
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "devices/mmds/net_stack.h"

#define GUEST_IP 0xC0A80002u /* 192.168.0.2 */
#define MMDS_IP MMDS_DEFAULT_IPV4
#define GPORT 40000

static const uint8_t guest_mac[6] = {0x06, 0, 0xac, 0x10, 0, 2};
static struct mmds_store *store;
static struct mmds_net *mn;

static void setup(void)
{
    cr_assert_eq(mmds_store_new(&store, 0), 0);
    json_t *d = json_loads("{\"latest\":{\"meta-data\":{\"ami-id\":\"ami-1\"}}}", 0, NULL);
    struct errmsg e;
    cr_assert_eq(mmds_store_put(store, d, &e), 0);
    json_decref(d);
    cr_assert_eq(mmds_net_new(&mn, store, 42), 0);
}

static void teardown(void)
{
    mmds_net_free(mn);
    mmds_store_free(store);
}

TestSuite(mmds_net, .init = setup, .fini = teardown);

static void p16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static void p32(uint8_t *p, uint32_t v)
{
    p16(p, (uint16_t)(v >> 16));
    p16(p + 2, (uint16_t)v);
}
static uint16_t g16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t g32(const uint8_t *p) { return (uint32_t)g16(p) << 16 | g16(p + 2); }

static uint16_t csum(uint32_t sum, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i + 1 < n; i += 2)
        sum += g16(p + i);
    if (n & 1)
        sum += (uint32_t)p[n - 1] << 8;
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

static uint16_t tcp_sum(uint32_t src, uint32_t dst, const uint8_t *t, size_t n)
{
    uint8_t ph[12];
    p32(ph, src);
    p32(ph + 4, dst);
    ph[8] = 0;
    ph[9] = 6;
    p16(ph + 10, (uint16_t)n);
    uint32_t s = (uint16_t)~csum(0, ph, 12);
    return csum(s, t, n);
}

/* A guest TCP segment to the MMDS; its frame length. */
static size_t seg(uint8_t *f, uint16_t sport, uint16_t dport, uint32_t seq, uint32_t ack, uint8_t flags, uint16_t wnd,
                  uint16_t mss, const char *data)
{
    size_t dlen = data ? strlen(data) : 0, tl = 20 + (mss ? 4 : 0);
    memset(f, 0, 14 + 20 + tl);
    memset(f, 0xff, 6);
    memcpy(f + 6, guest_mac, 6);
    p16(f + 12, 0x0800);
    uint8_t *ip = f + 14, *t = ip + 20;
    ip[0] = 0x45;
    p16(ip + 2, (uint16_t)(20 + tl + dlen));
    ip[8] = 64;
    ip[9] = 6;
    p32(ip + 12, GUEST_IP);
    p32(ip + 16, MMDS_IP);
    p16(ip + 10, csum(0, ip, 20));
    p16(t, sport);
    p16(t + 2, dport);
    p32(t + 4, seq);
    p32(t + 8, ack);
    t[12] = (uint8_t)((tl / 4) << 4);
    t[13] = flags;
    p16(t + 14, wnd);
    if (mss) {
        t[20] = 2;
        t[21] = 4;
        p16(t + 22, mss);
    }
    if (dlen)
        memcpy(t + tl, data, dlen);
    p16(t + 16, tcp_sum(GUEST_IP, MMDS_IP, t, tl + dlen));
    return 14 + 20 + tl + dlen;
}

struct out {
    uint8_t f[MMDS_NET_MAX_FRAME];
    size_t len;
    uint32_t seq, ack;
    uint8_t flags;
    const uint8_t *data;
    size_t dlen;
};

/* The next frame out, checked (addresses, checksums) and parsed as TCP; false when none. */
static bool next_tcp(struct out *o)
{
    o->len = mmds_net_output(mn, o->f, sizeof(o->f));
    if (!o->len)
        return false;
    const uint8_t mmds_mac[6] = MMDS_NET_MAC;
    cr_assert(memcmp(o->f, guest_mac, 6) == 0 && memcmp(o->f + 6, mmds_mac, 6) == 0);
    cr_assert_eq(g16(o->f + 12), 0x0800);
    const uint8_t *ip = o->f + 14, *t = ip + 20;
    cr_assert_eq(csum(0, ip, 20), 0, "IP header checksum");
    cr_assert_eq(g32(ip + 12), MMDS_IP);
    cr_assert_eq(g32(ip + 16), GUEST_IP);
    size_t total = g16(ip + 2);
    cr_assert_eq(total + 14, o->len);
    cr_assert_eq(tcp_sum(MMDS_IP, GUEST_IP, t, total - 20), 0, "TCP checksum");
    cr_assert_eq(g16(t), 80);
    size_t doff = (size_t)(t[12] >> 4) * 4;
    o->seq = g32(t + 4);
    o->ack = g32(t + 8);
    o->flags = t[13];
    o->data = t + doff;
    o->dlen = total - 20 - doff;
    return true;
}

static void send_frame(const uint8_t *f, size_t len) { cr_assert(mmds_net_take(mn, f, len, false, false, 0)); }

Test(mmds_net, arp_reply_and_other_frames_pass)
{
    uint8_t f[64] = {0};
    memset(f, 0xff, 6);
    memcpy(f + 6, guest_mac, 6);
    p16(f + 12, 0x0806);
    uint8_t *a = f + 14;
    p16(a, 1);
    p16(a + 2, 0x0800);
    a[4] = 6;
    a[5] = 4;
    p16(a + 6, 1);
    memcpy(a + 8, guest_mac, 6);
    p32(a + 14, GUEST_IP);
    p32(a + 24, MMDS_IP);
    cr_assert(mmds_net_take(mn, f, 42, false, false, 0));
    uint8_t r[MMDS_NET_MAX_FRAME];
    size_t n = mmds_net_output(mn, r, sizeof(r));
    cr_assert_eq(n, 42);
    const uint8_t mmds_mac[6] = MMDS_NET_MAC;
    cr_expect(memcmp(r, guest_mac, 6) == 0);
    cr_expect_eq(g16(r + 14 + 6), 2, "a reply");
    cr_expect(memcmp(r + 14 + 8, mmds_mac, 6) == 0);
    cr_expect_eq(g32(r + 14 + 14), MMDS_IP);
    cr_expect_eq(g32(r + 14 + 24), GUEST_IP);
    cr_expect_eq(mmds_net_output(mn, r, sizeof(r)), 0);
    /* ARP for another address, a truncated ARP, ICMP to the MMDS, TCP elsewhere, IPv6: all go to the tap. */
    p32(a + 24, 0x0A000001);
    cr_expect(!mmds_net_take(mn, f, 42, false, false, 0));
    p32(a + 24, MMDS_IP);
    cr_expect(!mmds_net_take(mn, f, 41, false, false, 0));
    uint8_t t[128];
    size_t len = seg(t, GPORT, 80, 1, 0, 2, 1000, 0, NULL);
    t[14 + 9] = 1;
    cr_expect(!mmds_net_take(mn, t, len, false, false, 0));
    t[14 + 9] = 6;
    p32(t + 14 + 16, 0x0A000001);
    cr_expect(!mmds_net_take(mn, t, len, false, false, 0));
    p16(t + 12, 0x86dd);
    cr_expect(!mmds_net_take(mn, t, len, false, false, 0));
    cr_expect(!mmds_net_take(mn, t, 5, false, false, 0));
    cr_expect(!mmds_net_has_output(mn));
}

/* Handshake from port sport with the given MSS and window; returns our ISS + 1 (the first response byte). */
static uint32_t connect(uint16_t sport, uint16_t mss, uint16_t wnd)
{
    uint8_t f[128];
    struct out o;
    send_frame(f, seg(f, sport, 80, 1000, 0, 2, wnd, mss, NULL));
    cr_assert(next_tcp(&o));
    cr_assert_eq(o.flags, 0x12, "SYN-ACK");
    cr_assert_eq(o.ack, 1001);
    const uint8_t *t = o.f + 34;
    cr_assert_eq(t[12] >> 4, 6, "with an MSS option");
    cr_assert_eq(g16(t + 22), MMDS_NET_MSS);
    send_frame(f, seg(f, sport, 80, 1001, o.seq + 1, 16, wnd, 0, NULL));
    cr_expect(!next_tcp(&o), "a bare ACK is not answered");
    return o.seq + 1;
}

/* Reads data segments (acking each as a guest would) into buf until the FIN; returns the length. */
static size_t read_response(uint16_t sport, uint32_t first, uint32_t guest_seq, uint16_t wnd, char *buf, size_t cap)
{
    size_t got = 0;
    uint8_t f[128];
    struct out o;
    for (int rounds = 0; rounds < 1000; rounds++) {
        size_t in_flight = 0;
        bool fin = false;
        while (next_tcp(&o)) {
            if (o.flags & 1) {
                fin = true;
                cr_assert_eq(o.seq, first + got);
                break;
            }
            if (!o.dlen)
                continue; /* the ACK of our request */
            cr_assert_eq(o.seq, first + got, "in order");
            cr_assert_leq(got + o.dlen, cap);
            memcpy(buf + got, o.data, o.dlen);
            got += o.dlen;
            in_flight += o.dlen;
            cr_assert_leq(in_flight, wnd, "within the guest's window");
        }
        if (fin) {
            send_frame(f, seg(f, sport, 80, guest_seq, first + got + 1, 0x11, wnd, 0, NULL)); /* ACK + FIN */
            cr_assert(next_tcp(&o));
            cr_expect_eq(o.flags, 0x10);
            cr_expect_eq(o.ack, guest_seq + 1);
            return got;
        }
        send_frame(f, seg(f, sport, 80, guest_seq, first + (uint32_t)got, 16, wnd, 0, NULL));
    }
    cr_assert_fail("no FIN");
    return 0;
}

Test(mmds_net, http_get_over_tcp)
{
    uint32_t first = connect(GPORT, 1460, 65535);
    const char *req = "GET /latest/meta-data/ami-id HTTP/1.1\r\nHost: 169.254.169.254\r\n\r\n";
    uint8_t f[256];
    send_frame(f, seg(f, GPORT, 80, 1001, first, 0x18, 65535, 0, req));
    char resp[4096];
    size_t n = read_response(GPORT, first, 1001 + (uint32_t)strlen(req), 65535, resp, sizeof(resp) - 1);
    resp[n] = '\0';
    cr_expect(strncmp(resp, "HTTP/1.1 200 OK\r\n", 17) == 0, "%s", resp);
    cr_expect(strstr(resp, "\r\n\r\nami-1") != NULL, "%s", resp);
    /* The connection is gone: a late ACK gets a reset. */
    struct out o;
    send_frame(f, seg(f, GPORT, 80, 1001, first, 16, 65535, 0, NULL));
    cr_assert(next_tcp(&o));
    cr_expect(o.flags & 4, "RST");
    cr_expect_eq(mmds_net_counters(mn).requests, 1);
}

Test(mmds_net, request_in_pieces_large_answer_small_window)
{
    char big[6001];
    memset(big, 'x', 6000);
    big[6000] = '\0';
    json_t *d = json_pack("{s:{s:s}}", "latest", "big", big);
    struct errmsg e;
    cr_assert_eq(mmds_store_put(store, d, &e), 0);
    json_decref(d);
    uint32_t first = connect(GPORT + 1, 536, 1000);
    uint8_t f[256];
    send_frame(f, seg(f, GPORT + 1, 80, 1001, first, 0x10, 1000, 0, "GET /latest/big HT"));
    struct out o;
    cr_assert(next_tcp(&o));
    cr_expect_eq(o.ack, 1001 + 18, "partial request acked");
    cr_expect(!next_tcp(&o), "nothing to answer yet");
    /* A repeated old piece is only acknowledged. */
    send_frame(f, seg(f, GPORT + 1, 80, 1001, first, 0x10, 1000, 0, "GET /latest/big HT"));
    cr_assert(next_tcp(&o));
    cr_expect_eq(o.ack, 1001 + 18);
    send_frame(f, seg(f, GPORT + 1, 80, 1019, first, 0x18, 1000, 0, "TP/1.0\r\n\r\n"));
    static char resp[8192];
    size_t n = read_response(GPORT + 1, first, 1019 + 10, 1000, resp, sizeof(resp) - 1);
    resp[n] = '\0';
    cr_expect(strncmp(resp, "HTTP/1.0 200 OK\r\n", 17) == 0);
    cr_expect(strstr(resp, "Content-Length: 6000\r\n") != NULL);
    cr_expect_eq(strlen(strstr(resp, "\r\n\r\n") + 4), 6000);
}

Test(mmds_net, oversize_request_gets_413)
{
    uint32_t first = connect(GPORT + 2, 1460, 65535);
    static char chunk[1001];
    memset(chunk, 'a', 1000);
    memcpy(chunk, "GET /", 5);
    uint8_t f[1200];
    uint32_t seq = 1001;
    struct out o;
    for (int i = 0; i < 9; i++, seq += 1000) {
        send_frame(f, seg(f, GPORT + 2, 80, seq, first, 0x10, 65535, 0, chunk));
        while (next_tcp(&o) && !o.dlen)
            ;
        if (o.len && o.dlen)
            break;
    }
    cr_assert(o.len && o.dlen, "an answer before the 9th KiB");
    cr_expect(strncmp((const char *)o.data, "HTTP/1.1 413 ", 13) == 0);
}

Test(mmds_net, resets_and_refusals)
{
    uint8_t f[128];
    struct out o;
    send_frame(f, seg(f, GPORT, 81, 5, 0, 2, 1000, 0, NULL));
    cr_assert(next_tcp(&o));
    cr_expect_eq(o.flags, 0x14, "RST+ACK for another port");
    cr_expect_eq(o.ack, 6);
    send_frame(f, seg(f, GPORT, 80, 5, 77, 16, 1000, 0, NULL));
    cr_assert(next_tcp(&o));
    cr_expect_eq(o.flags, 0x04, "RST for a stray ACK");
    cr_expect_eq(o.seq, 77);
    send_frame(f, seg(f, GPORT, 80, 5, 77, 4, 1000, 0, NULL));
    cr_expect(!next_tcp(&o), "no reset for a reset");
    /* A guest reset ends a connection. */
    uint32_t first = connect(GPORT + 3, 1460, 1000);
    send_frame(f, seg(f, GPORT + 3, 80, 1001, first, 4, 1000, 0, NULL));
    send_frame(f, seg(f, GPORT + 3, 80, 1001, first, 16, 1000, 0, "GET / HTTP/1.1\r\n\r\n"));
    cr_assert(next_tcp(&o));
    cr_expect(o.flags & 4);
    /* More connections than the table holds: the oldest go. */
    for (uint16_t p = 0; p < MMDS_NET_MAX_CONNS + 4; p++) {
        send_frame(f, seg(f, 50000 + p, 80, 1, 0, 2, 1000, 0, NULL));
        while (next_tcp(&o))
            ;
    }
    cr_expect_eq(mmds_net_counters(mn).evicted, 4);
}

static void expect_dropped(const uint8_t *f, size_t len, bool csum_partial, bool gso, const char *what)
{
    uint64_t before = mmds_net_counters(mn).dropped;
    cr_expect(mmds_net_take(mn, f, len, csum_partial, gso, 0), "%s: taken", what);
    cr_expect_eq(mmds_net_counters(mn).dropped, before + 1, "%s: dropped", what);
    uint8_t out[MMDS_NET_MAX_FRAME];
    cr_expect_eq(mmds_net_output(mn, out, sizeof(out)), 0, "%s: no answer", what);
}

Test(mmds_net, hostile_frames)
{
    uint8_t f[256], g[256];
    size_t len = seg(f, GPORT, 80, 1, 0, 2, 1000, 1460, NULL);
    memcpy(g, f, len);
    g[14 + 10] ^= 1;
    expect_dropped(g, len, false, false, "bad IP checksum");
    memcpy(g, f, len);
    g[14 + 20 + 16] ^= 1;
    expect_dropped(g, len, false, false, "bad TCP checksum");
    expect_dropped(f, len, false, true, "GSO");
    memcpy(g, f, len);
    p16(g + 14 + 6, 0x2000); /* MF */
    p16(g + 14 + 10, 0);
    p16(g + 14 + 10, csum(0, g + 14, 20));
    expect_dropped(g, len, false, false, "first fragment");
    memcpy(g, f, len);
    p16(g + 14 + 2, (uint16_t)(len - 14 + 1));
    p16(g + 14 + 10, 0);
    p16(g + 14 + 10, csum(0, g + 14, 20));
    expect_dropped(g, len, false, false, "IP length past the frame");
    memcpy(g, f, len);
    g[14] = 0x44;
    expect_dropped(g, len, false, false, "IHL 4");
    memcpy(g, f, len);
    g[14 + 20 + 12] = 0xf0;
    expect_dropped(g, len, false, false, "TCP header past the segment");
    memcpy(g, f, len);
    g[14 + 20 + 12] = 0x40;
    expect_dropped(g, len, false, false, "TCP header shorter than 20");
    expect_dropped(f, 14 + 20 + 10, false, false, "truncated TCP header");
    /* Every truncation of a valid SYN: taken (dropped) or not ours, never read past its end. */
    for (size_t l = 0; l < len; l++) {
        uint8_t *copy = malloc(l ? l : 1);
        memcpy(copy, f, l);
        mmds_net_take(mn, copy, l, false, false, 0);
        free(copy);
    }
    uint8_t out[MMDS_NET_MAX_FRAME];
    cr_expect_eq(mmds_net_output(mn, out, sizeof(out)), 0);
    /* A partial checksum (NEEDS_CSUM) is not checked: the guest left it to the device. */
    memcpy(g, f, len);
    g[14 + 20 + 16] ^= 0x55;
    cr_assert(mmds_net_take(mn, g, len, true, false, 0));
    cr_expect_gt(mmds_net_output(mn, out, sizeof(out)), 0, "SYN-ACK");
    /* Options that run past the header end. */
    memcpy(g, f, len);
    g[14 + 20 + 21] = 40;
    cr_assert(mmds_net_take(mn, g, len, true, false, 0));
}

Test(mmds_net, random_mutations)
{
    uint8_t f[256], g[300];
    const char *req = "GET /latest/meta-data HTTP/1.1\r\nX-metadata-token: x\r\nAccept: application/json\r\n\r\n";
    uint32_t first = connect(GPORT, 1460, 65535);
    size_t len = seg(f, GPORT, 80, 1001, first, 0x18, 65535, 0, req);
    unsigned seed = 7;
    uint8_t out[MMDS_NET_MAX_FRAME];
    for (int i = 0; i < 20000; i++) {
        memcpy(g, f, len);
        size_t l = len;
        int flips = 1 + rand_r(&seed) % 4;
        for (int k = 0; k < flips; k++)
            g[14 + (size_t)rand_r(&seed) % (len - 14)] = (uint8_t)rand_r(&seed);
        if (rand_r(&seed) % 4 == 0)
            l = 14 + (size_t)rand_r(&seed) % (len - 14);
        mmds_net_take(mn, g, l, rand_r(&seed) % 2, false, 0);
        while (mmds_net_output(mn, out, sizeof(out)))
            ;
    }
    cr_expect_gt(mmds_net_counters(mn).dropped, 0);
}

/* Firecracker's "mmds" metrics group, as the store sums it over every NIC's responder. */
static void metrics(uint64_t v[MMDS_METRICS_COUNT]) { mmds_store_metrics(store, v); }

Test(mmds_net, metrics_count_a_whole_exchange)
{
    uint64_t v[MMDS_METRICS_COUNT];
    metrics(v);
    for (int i = 0; i < MMDS_METRICS_COUNT; i++)
        cr_expect_eq(v[i], 0, "%s starts at 0", mmds_metric_names[i]);
    cr_expect_str_eq(mmds_metric_names[MMDS_RX_ACCEPTED], "rx_accepted");
    cr_expect_str_eq(mmds_metric_names[MMDS_CONNECTIONS_DESTROYED], "connections_destroyed");

    uint32_t first = connect(GPORT, 1460, 65535); /* SYN, SYN-ACK, ACK */
    const char *req = "GET /latest/meta-data/ami-id HTTP/1.1\r\n\r\n";
    uint8_t f[256];
    send_frame(f, seg(f, GPORT, 80, 1001, first, 0x18, 65535, 0, req));
    char resp[4096];
    size_t n = read_response(GPORT, first, 1001 + (uint32_t)strlen(req), 65535, resp, sizeof(resp));
    cr_assert_gt(n, 0);
    /* In: SYN, ACK, the request, ACK + FIN (the answer and our FIN came in one round); out: SYN-ACK, the request's
     * ACK, the answer (one segment), FIN, the ACK of the guest's FIN. */
    metrics(v);
    cr_expect_eq(v[MMDS_RX_ACCEPTED], 4);
    cr_expect_eq(v[MMDS_RX_COUNT], 4);
    cr_expect_eq(v[MMDS_TX_COUNT], 5);
    cr_expect_eq(v[MMDS_TX_FRAMES], 5);
    cr_expect_eq(v[MMDS_TX_BYTES], 4 * 54 + 4 + (54 + n), "four bare segments, the SYN-ACK's MSS option, the data");
    cr_expect_eq(v[MMDS_CONNECTIONS_CREATED], 1);
    cr_expect_eq(v[MMDS_CONNECTIONS_DESTROYED], 1, "both FINs acknowledged: over");
    cr_expect_eq(v[MMDS_RX_ACCEPTED_ERR] + v[MMDS_RX_BAD_ETH] + v[MMDS_RX_ACCEPTED_UNUSUAL] + v[MMDS_TX_ERRORS], 0);
}

Test(mmds_net, metrics_count_bad_frames_by_kind)
{
    uint8_t f[256], g[256];
    size_t len = seg(f, GPORT, 80, 1, 0, 2, 1000, 1460, NULL);
    uint64_t v[MMDS_METRICS_COUNT];
    memcpy(g, f, len);
    g[14 + 20 + 16] ^= 1;
    expect_dropped(g, len, false, false, "bad TCP checksum");
    expect_dropped(f, len, false, true, "GSO");
    expect_dropped(f, 14 + 20 + 10, false, false, "truncated TCP header");
    memcpy(g, f, len);
    p16(g + 14 + 2, (uint16_t)(len - 14 + 1));
    p16(g + 14 + 10, 0);
    p16(g + 14 + 10, csum(0, g + 14, 20));
    expect_dropped(g, len, false, false, "IP length past the frame");
    metrics(v);
    cr_expect_eq(v[MMDS_RX_ACCEPTED], 4);
    cr_expect_eq(v[MMDS_RX_ACCEPTED_ERR], 2, "checksum, GSO");
    cr_expect_eq(v[MMDS_RX_BAD_ETH], 2, "cut short");
    cr_expect_eq(v[MMDS_RX_COUNT], 0);
    /* An ARP reply to the MMDS address: taken, unusual, unanswered. */
    uint8_t a[64] = {0};
    memset(a, 0xff, 6);
    memcpy(a + 6, guest_mac, 6);
    p16(a + 12, 0x0806);
    p16(a + 14, 1);
    p16(a + 16, 0x0800);
    a[18] = 6;
    a[19] = 4;
    p16(a + 20, 2);
    p32(a + 14 + 24, MMDS_IP);
    cr_assert(mmds_net_take(mn, a, 42, false, false, 0));
    metrics(v);
    cr_expect_eq(v[MMDS_RX_ACCEPTED_UNUSUAL], 1);
    cr_expect(!mmds_net_has_output(mn));
    /* Frames for the tap are not the MMDS's: not counted. */
    p32(f + 14 + 16, 0x0A000001);
    cr_expect(!mmds_net_take(mn, f, len, false, false, 0));
    uint64_t w[MMDS_METRICS_COUNT];
    metrics(w);
    cr_expect_eq(w[MMDS_RX_ACCEPTED], v[MMDS_RX_ACCEPTED]);
}

Test(mmds_net, metrics_count_evictions_and_resets)
{
    uint8_t f[128];
    for (uint16_t i = 0; i < MMDS_NET_MAX_CONNS + 3; i++)
        send_frame(f, seg(f, (uint16_t)(GPORT + i), 80, 1000, 0, 2, 1000, 0, NULL));
    uint64_t v[MMDS_METRICS_COUNT];
    metrics(v);
    cr_expect_eq(v[MMDS_CONNECTIONS_CREATED], MMDS_NET_MAX_CONNS + 3);
    cr_expect_eq(v[MMDS_CONNECTIONS_DESTROYED], 3, "the three oldest evicted");
    /* The SYN-ACKs fill the control queue; a reply that finds no room is a tx error. */
    cr_expect_gt(v[MMDS_TX_ERRORS], 0);
    uint8_t out[MMDS_NET_MAX_FRAME];
    while (mmds_net_output(mn, out, sizeof(out)))
        ;
    /* A RST at the expected sequence ends a connection. */
    send_frame(f, seg(f, (uint16_t)(GPORT + MMDS_NET_MAX_CONNS + 2), 80, 1001, 0, 4, 1000, 0, NULL));
    metrics(v);
    cr_expect_eq(v[MMDS_CONNECTIONS_DESTROYED], 4);
}
