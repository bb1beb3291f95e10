#include "devices/mmds/net_stack.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "devices/mmds/http.h"

#define ETH_LEN 14
#define ETH_ARP 0x0806
#define ETH_IPV4 0x0800
#define ARP_LEN 28
#define IP_LEN 20
#define TCP_LEN 20
#define IPPROTO_TCP_ 6
#define HTTP_PORT 80
#define MAX_CTRL 16
#define CTRL_FRAME 64 /* ARP replies and segments without payload (SYN-ACK with its MSS option: 58 bytes) */

enum { TCP_FIN = 1, TCP_SYN = 2, TCP_RST = 4, TCP_PSH = 8, TCP_ACK = 16 };

enum conn_state { CONN_FREE, CONN_SYN_RCVD, CONN_ESTABLISHED };

struct conn {
    enum conn_state state;
    uint8_t peer_mac[6];
    uint32_t peer_ip;
    uint16_t peer_port;
    uint32_t iss, snd_una, snd_nxt, rcv_irs, rcv_nxt;
    uint32_t peer_wnd;
    uint16_t peer_mss;
    unsigned dup_acks;
    char *req; /* MMDS_HTTP_MAX_REQUEST bytes */
    size_t req_len;
    char *resp; /* the whole response, once the request is complete */
    size_t resp_len;
    bool answered, fin_sent, peer_fin;
    uint64_t last_use;
};

struct ctrl_frame {
    size_t len;
    uint8_t data[CTRL_FRAME];
};

struct mmds_net {
    struct mmds_store *store;
    struct conn conns[MMDS_NET_MAX_CONNS];
    struct ctrl_frame ctrl[MAX_CTRL];
    unsigned ctrl_head, ctrl_count;
    unsigned next_conn; /* round robin over connections with data to send */
    uint64_t rng, clock;
    uint16_t ip_id;
    struct mmds_net_counters ctr;
};

static const uint8_t mmds_mac[6] = MMDS_NET_MAC;

static uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static void put32(uint8_t *p, uint32_t v)
{
    put16(p, (uint16_t)(v >> 16));
    put16(p + 2, (uint16_t)v);
}

/* One's complement sum (RFC 1071), folded later. */
static uint32_t csum_add(uint32_t sum, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i + 1 < n; i += 2)
        sum += be16(p + i);
    if (n & 1)
        sum += (uint32_t)p[n - 1] << 8;
    return sum;
}

static uint16_t csum_fold(uint32_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

/* The TCP checksum over the pseudo header and segment [tcp, tcp+n): 0 when the segment's own checksum is right. */
static uint16_t tcp_csum(uint32_t src, uint32_t dst, const uint8_t *tcp, size_t n)
{
    uint8_t pseudo[12];
    put32(pseudo, src);
    put32(pseudo + 4, dst);
    pseudo[8] = 0;
    pseudo[9] = IPPROTO_TCP_;
    put16(pseudo + 10, (uint16_t)n);
    return csum_fold(csum_add(csum_add(0, pseudo, sizeof(pseudo)), tcp, n));
}

int mmds_net_new(struct mmds_net **out, struct mmds_store *store, uint64_t seed)
{
    struct mmds_net *m = calloc(1, sizeof(*m));
    if (!m)
        return -ENOMEM;
    m->store = store;
    m->rng = seed | 1;
    *out = m;
    return 0;
}

static void conn_free(struct conn *c)
{
    free(c->req);
    free(c->resp);
    memset(c, 0, sizeof(*c));
}

static void count(struct mmds_net *m, enum mmds_metric which) { mmds_store_count(m->store, which, 1); }

/* A connection is over (finished, reset or evicted): freed and counted. */
static void conn_end(struct mmds_net *m, struct conn *c)
{
    if (c->state != CONN_FREE)
        count(m, MMDS_CONNECTIONS_DESTROYED);
    conn_free(c);
}

void mmds_net_free(struct mmds_net *m)
{
    if (!m)
        return;
    for (unsigned i = 0; i < MMDS_NET_MAX_CONNS; i++)
        conn_free(&m->conns[i]);
    free(m);
}

struct mmds_net_counters mmds_net_counters(const struct mmds_net *m) { return m->ctr; }

/* xorshift64: initial sequence numbers need only differ between connections, not be secret. */
static uint32_t next_random(struct mmds_net *m)
{
    m->rng ^= m->rng << 13;
    m->rng ^= m->rng >> 7;
    m->rng ^= m->rng << 17;
    return (uint32_t)(m->rng >> 16);
}

static uint8_t *ctrl_slot(struct mmds_net *m)
{
    if (m->ctrl_count == MAX_CTRL) {
        count(m, MMDS_TX_ERRORS);
        return NULL; /* full: the guest retransmits what asked for it */
    }
    struct ctrl_frame *f = &m->ctrl[(m->ctrl_head + m->ctrl_count++) % MAX_CTRL];
    memset(f->data, 0, sizeof(f->data));
    return f->data;
}

static void ctrl_commit_len(struct mmds_net *m, size_t len)
{
    m->ctrl[(m->ctrl_head + m->ctrl_count - 1) % MAX_CTRL].len = len;
}

/* ---- ARP ---- */

static void take_arp(struct mmds_net *m, const uint8_t *f, size_t len, uint32_t ip)
{
    const uint8_t *a = f + ETH_LEN;
    if (len < ETH_LEN + ARP_LEN || be16(a) != 1 || be16(a + 2) != ETH_IPV4 || a[4] != 6 || a[5] != 4) {
        m->ctr.dropped++;
        count(m, len < ETH_LEN + ARP_LEN ? MMDS_RX_BAD_ETH : MMDS_RX_ACCEPTED_ERR);
        return;
    }
    if (be16(a + 6) != 1) {
        count(m, MMDS_RX_ACCEPTED_UNUSUAL);
        return; /* only requests are answered */
    }
    uint8_t *r = ctrl_slot(m);
    if (!r)
        return;
    memcpy(r, a + 8, 6); /* to the sender's hardware address */
    memcpy(r + 6, mmds_mac, 6);
    put16(r + 12, ETH_ARP);
    uint8_t *ra = r + ETH_LEN;
    put16(ra, 1);
    put16(ra + 2, ETH_IPV4);
    ra[4] = 6;
    ra[5] = 4;
    put16(ra + 6, 2);
    memcpy(ra + 8, mmds_mac, 6);
    put32(ra + 14, ip);
    memcpy(ra + 18, a + 8, 10); /* target: the asker's MAC and IP */
    ctrl_commit_len(m, ETH_LEN + ARP_LEN);
}

/* ---- TCP segments out ---- */

struct seg {
    const uint8_t *peer_mac;
    uint32_t peer_ip, mmds_ip;
    uint16_t peer_port;
    uint32_t seq, ack;
    uint8_t flags;
    uint16_t window;
    bool mss_option;
};

/* Ethernet + IPv4 + TCP headers and payload into buf; the frame's length. */
static size_t build_segment(struct mmds_net *m, const struct seg *s, const uint8_t *payload, size_t plen, uint8_t *buf)
{
    size_t tcp_len = TCP_LEN + (s->mss_option ? 4 : 0);
    memcpy(buf, s->peer_mac, 6);
    memcpy(buf + 6, mmds_mac, 6);
    put16(buf + 12, ETH_IPV4);
    uint8_t *ip = buf + ETH_LEN, *t = ip + IP_LEN;
    memset(ip, 0, IP_LEN + tcp_len);
    ip[0] = 0x45;
    put16(ip + 2, (uint16_t)(IP_LEN + tcp_len + plen));
    put16(ip + 4, m->ip_id++);
    put16(ip + 6, 0x4000); /* DF */
    ip[8] = 64;
    ip[9] = IPPROTO_TCP_;
    put32(ip + 12, s->mmds_ip);
    put32(ip + 16, s->peer_ip);
    put16(ip + 10, csum_fold(csum_add(0, ip, IP_LEN)));
    put16(t, HTTP_PORT);
    put16(t + 2, s->peer_port);
    put32(t + 4, s->seq);
    put32(t + 8, s->ack);
    t[12] = (uint8_t)((tcp_len / 4) << 4);
    t[13] = s->flags;
    put16(t + 14, s->window);
    if (s->mss_option) {
        t[20] = 2;
        t[21] = 4;
        put16(t + 22, MMDS_NET_MSS);
    }
    if (plen)
        memcpy(t + tcp_len, payload, plen);
    put16(t + 16, tcp_csum(s->mmds_ip, s->peer_ip, t, tcp_len + plen));
    return ETH_LEN + IP_LEN + tcp_len + plen;
}

static uint16_t rcv_window(const struct conn *c)
{
    return (uint16_t)(c->answered ? MMDS_HTTP_MAX_REQUEST : MMDS_HTTP_MAX_REQUEST - c->req_len);
}

static void queue_control(struct mmds_net *m, const struct conn *c, uint8_t flags, uint32_t ip)
{
    uint8_t *buf = ctrl_slot(m);
    if (!buf)
        return;
    struct seg s = {.peer_mac = c->peer_mac,
                    .peer_ip = c->peer_ip,
                    .mmds_ip = ip,
                    .peer_port = c->peer_port,
                    .seq = flags & TCP_SYN ? c->iss : c->snd_nxt,
                    .ack = c->rcv_nxt,
                    .flags = flags,
                    .window = rcv_window(c),
                    .mss_option = flags & TCP_SYN};
    ctrl_commit_len(m, build_segment(m, &s, NULL, 0, buf));
}

/* A reset for a segment that belongs to no connection (RFC 793, "reset generation"). */
static void queue_reset(struct mmds_net *m, const uint8_t *f, const uint8_t *ip, const uint8_t *t, size_t seg_len,
                        uint32_t mmds_ip)
{
    uint8_t *buf = ctrl_slot(m);
    if (!buf)
        return;
    uint8_t flags = t[13];
    struct seg s = {.peer_mac = f + 6, .peer_ip = be32(ip + 12), .mmds_ip = mmds_ip, .peer_port = be16(t)};
    if (flags & TCP_ACK) {
        s.seq = be32(t + 8);
        s.flags = TCP_RST;
    } else {
        s.ack = be32(t + 4) + (uint32_t)seg_len + !!(flags & TCP_SYN) + !!(flags & TCP_FIN);
        s.flags = TCP_RST | TCP_ACK;
    }
    ctrl_commit_len(m, build_segment(m, &s, NULL, 0, buf));
}

/* ---- TCP segments in ---- */

static struct conn *find_conn(struct mmds_net *m, uint32_t peer_ip, uint16_t peer_port)
{
    for (unsigned i = 0; i < MMDS_NET_MAX_CONNS; i++) {
        struct conn *c = &m->conns[i];
        if (c->state != CONN_FREE && c->peer_ip == peer_ip && c->peer_port == peer_port)
            return c;
    }
    return NULL;
}

/* A free slot, else the least recently used connection's (dropped without a word: the guest's side times out). */
static struct conn *new_conn(struct mmds_net *m)
{
    struct conn *victim = &m->conns[0];
    for (unsigned i = 0; i < MMDS_NET_MAX_CONNS; i++) {
        if (m->conns[i].state == CONN_FREE)
            return &m->conns[i];
        if (m->conns[i].last_use < victim->last_use)
            victim = &m->conns[i];
    }
    m->ctr.evicted++;
    conn_end(m, victim);
    return victim;
}

static uint16_t parse_mss(const uint8_t *t, size_t doff)
{
    for (size_t i = TCP_LEN; i < doff;) {
        uint8_t kind = t[i];
        if (kind == 0)
            break;
        if (kind == 1) {
            i++;
            continue;
        }
        if (i + 1 >= doff || t[i + 1] < 2 || i + t[i + 1] > doff)
            break;
        if (kind == 2 && t[i + 1] == 4)
            return be16(t + i + 2);
        i += t[i + 1];
    }
    return 536; /* RFC 879's default */
}

static void answer(struct mmds_net *m, struct conn *c, long req_len, uint64_t now_ns)
{
    int rc = req_len == -E2BIG ? mmds_http_error(413, "Request too long.", &c->resp, &c->resp_len)
             : req_len < 0     ? mmds_http_error(400, "Bad request.", &c->resp, &c->resp_len)
                               : mmds_http_answer(m->store, c->req, (size_t)req_len, now_ns, &c->resp, &c->resp_len);
    if (rc) {
        c->resp = NULL;
        c->resp_len = 0;
        count(m, MMDS_TX_ERRORS);
    }
    c->answered = true;
    m->ctr.requests++;
}

static void take_segment(struct mmds_net *m, struct conn *c, const uint8_t *t, const uint8_t *data, size_t dlen,
                         uint32_t ip, uint64_t now_ns)
{
    uint8_t flags = t[13];
    uint32_t seq = be32(t + 4), ack = be32(t + 8);
    if (flags & TCP_RST) {
        if (seq == c->rcv_nxt)
            conn_end(m, c);
        return;
    }
    if (flags & TCP_ACK) {
        uint16_t wnd = be16(t + 14);
        /* Acceptable: snd_una < ack <= snd_nxt, in sequence space. */
        if ((int32_t)(ack - c->snd_una) > 0 && (int32_t)(ack - c->snd_nxt) <= 0) {
            c->snd_una = ack;
            c->dup_acks = 0;
            if (c->state == CONN_SYN_RCVD)
                c->state = CONN_ESTABLISHED;
        } else if (ack == c->snd_una && !dlen && wnd == c->peer_wnd && c->snd_nxt != c->snd_una && ++c->dup_acks == 3) {
            c->snd_nxt = c->snd_una; /* three duplicate ACKs: the guest lost something, send again from there */
            c->dup_acks = 0;
        }
        c->peer_wnd = wnd;
    }
    if (c->state != CONN_ESTABLISHED)
        return;
    if (seq != c->rcv_nxt) {
        if (dlen || (flags & TCP_FIN))
            queue_control(m, c, TCP_ACK, ip); /* out of order or repeated: say what we have */
        return;
    }
    if (dlen && !c->answered) {
        size_t room = MMDS_HTTP_MAX_REQUEST - c->req_len;
        size_t n = dlen < room ? dlen : room;
        memcpy(c->req + c->req_len, data, n);
        c->req_len += n;
        c->rcv_nxt += (uint32_t)n;
        long need = mmds_http_request_length(c->req, c->req_len);
        if (need != 0)
            answer(m, c, need, now_ns);
    } else if (dlen) {
        c->rcv_nxt += (uint32_t)dlen; /* after the one request: read and ignored */
    }
    if ((flags & TCP_FIN) && seq + (uint32_t)dlen == c->rcv_nxt) {
        c->rcv_nxt++;
        c->peer_fin = true;
        if (!c->answered) {
            c->answered = true; /* closed before a whole request: nothing to answer, just close */
            c->resp_len = 0;
        }
    }
    if (dlen || (flags & TCP_FIN))
        queue_control(m, c, TCP_ACK, ip);
    /* Both FINs sent and acknowledged: the connection is over. */
    if (c->peer_fin && c->fin_sent && c->snd_una == c->iss + 1 + (uint32_t)c->resp_len + 1)
        conn_end(m, c);
}

static void take_tcp(struct mmds_net *m, const uint8_t *f, size_t len, bool csum_partial, bool gso, uint32_t ip,
                     uint64_t now_ns)
{
    const uint8_t *iph = f + ETH_LEN;
    size_t ihl = (size_t)(iph[0] & 15) * 4, total = be16(iph + 2);
    /* Every length the guest wrote is checked against the frame before anything is read through it. */
    if ((iph[0] >> 4) != 4 || ihl < IP_LEN || total < ihl + TCP_LEN || total > len - ETH_LEN || gso ||
        csum_fold(csum_add(0, iph, ihl)) != 0 || (be16(iph + 6) & 0x3fff)) {
        m->ctr.dropped++;
        count(m, total > len - ETH_LEN ? MMDS_RX_BAD_ETH : MMDS_RX_ACCEPTED_ERR);
        return;
    }
    const uint8_t *t = iph + ihl;
    size_t seg_len = total - ihl, doff = (size_t)(t[12] >> 4) * 4;
    uint32_t peer_ip = be32(iph + 12);
    if (doff < TCP_LEN || doff > seg_len || (!csum_partial && tcp_csum(peer_ip, ip, t, seg_len) != 0)) {
        m->ctr.dropped++;
        count(m, MMDS_RX_ACCEPTED_ERR);
        return;
    }
    count(m, MMDS_RX_COUNT);
    uint8_t flags = t[13];
    uint16_t peer_port = be16(t);
    size_t dlen = seg_len - doff;
    struct conn *c = find_conn(m, peer_ip, peer_port);
    if (c)
        c->last_use = ++m->clock;
    if (flags & TCP_SYN) {
        if (c && c->state == CONN_SYN_RCVD && be32(t + 4) == c->rcv_irs) {
            queue_control(m, c, TCP_SYN | TCP_ACK, ip); /* a repeated SYN */
            return;
        }
        if (be16(t + 2) != HTTP_PORT || (flags & (TCP_ACK | TCP_RST))) {
            if (!(flags & TCP_RST))
                queue_reset(m, f, iph, t, dlen, ip);
            return;
        }
        if (c)
            conn_end(m, c);
        else
            c = new_conn(m);
        if (!(c->req = malloc(MMDS_HTTP_MAX_REQUEST))) {
            memset(c, 0, sizeof(*c));
            return;
        }
        c->state = CONN_SYN_RCVD;
        count(m, MMDS_CONNECTIONS_CREATED);
        memcpy(c->peer_mac, f + 6, 6);
        c->peer_ip = peer_ip;
        c->peer_port = peer_port;
        c->rcv_irs = be32(t + 4);
        c->rcv_nxt = c->rcv_irs + 1;
        c->iss = next_random(m);
        c->snd_una = c->iss;
        c->snd_nxt = c->iss + 1;
        c->peer_mss = parse_mss(t, doff);
        if (c->peer_mss < 64 || c->peer_mss > MMDS_NET_MSS)
            c->peer_mss = c->peer_mss < 64 ? 64 : MMDS_NET_MSS;
        c->peer_wnd = be16(t + 14);
        c->last_use = ++m->clock;
        queue_control(m, c, TCP_SYN | TCP_ACK, ip);
        return;
    }
    if (!c) {
        if (!(flags & TCP_RST))
            queue_reset(m, f, iph, t, dlen, ip);
        return;
    }
    take_segment(m, c, t, t + doff, dlen, ip, now_ns);
}

/* 1: ARP for the MMDS address, 2: IPv4 TCP to it, 0: neither. */
static int classify(const uint8_t *frame, size_t len, uint32_t ip)
{
    if (len < ETH_LEN)
        return 0;
    uint16_t type = be16(frame + 12);
    const uint8_t *l3 = frame + ETH_LEN;
    if (type == ETH_ARP && len >= ETH_LEN + ARP_LEN && be32(l3 + 24) == ip)
        return 1;
    if (type == ETH_IPV4 && len >= ETH_LEN + IP_LEN && be32(l3 + 16) == ip && l3[9] == IPPROTO_TCP_)
        return 2;
    return 0;
}

bool mmds_net_wants(const struct mmds_net *m, const uint8_t *head, size_t len)
{
    return classify(head, len, mmds_store_settings(m->store).ipv4) != 0;
}

bool mmds_net_take(struct mmds_net *m, const uint8_t *frame, size_t len, bool csum_partial, bool gso, uint64_t now_ns)
{
    uint32_t ip = mmds_store_settings(m->store).ipv4;
    int kind = classify(frame, len, ip);
    if (!kind)
        return false;
    m->ctr.frames_in++;
    count(m, MMDS_RX_ACCEPTED);
    if (kind == 1) {
        take_arp(m, frame, len, ip);
    } else if (len < ETH_LEN + IP_LEN + TCP_LEN) {
        m->ctr.dropped++;
        count(m, MMDS_RX_BAD_ETH);
    } else {
        take_tcp(m, frame, len, csum_partial, gso, ip, now_ns);
    }
    return true;
}

/* ---- frames out ---- */

/* The next data or FIN segment of c, if its window and state allow one; its length or 0. */
static size_t conn_output(struct mmds_net *m, struct conn *c, uint32_t ip, uint8_t *buf)
{
    if (c->state != CONN_ESTABLISHED || !c->answered)
        return 0;
    uint32_t sent = c->snd_nxt - (c->iss + 1); /* response bytes (and FIN) already sent */
    uint32_t in_flight = c->snd_nxt - c->snd_una;
    uint32_t usable = c->peer_wnd > in_flight ? c->peer_wnd - in_flight : 0;
    struct seg s = {.peer_mac = c->peer_mac,
                    .peer_ip = c->peer_ip,
                    .mmds_ip = ip,
                    .peer_port = c->peer_port,
                    .seq = c->snd_nxt,
                    .ack = c->rcv_nxt,
                    .flags = TCP_ACK,
                    .window = rcv_window(c)};
    if (sent < c->resp_len) {
        size_t n = c->resp_len - sent;
        if (n > c->peer_mss)
            n = c->peer_mss;
        if (n > usable)
            n = usable;
        if (!n)
            return 0;
        s.flags |= TCP_PSH;
        c->snd_nxt += (uint32_t)n;
        return build_segment(m, &s, (const uint8_t *)c->resp + sent, n, buf);
    }
    if (sent == c->resp_len) {
        /* Everything sent (perhaps again, after a loss): the FIN follows it. */
        s.flags |= TCP_FIN;
        c->snd_nxt++;
        c->fin_sent = true;
        return build_segment(m, &s, NULL, 0, buf);
    }
    return 0;
}

/* A frame goes to the guest's rx queue (which never drops one: produced and handed over are the same frames). */
static size_t sent_frame(struct mmds_net *m, size_t len)
{
    m->ctr.frames_out++;
    count(m, MMDS_TX_COUNT);
    count(m, MMDS_TX_FRAMES);
    mmds_store_count(m->store, MMDS_TX_BYTES, len);
    return len;
}

size_t mmds_net_output(struct mmds_net *m, uint8_t *buf, size_t cap)
{
    if (cap < MMDS_NET_MAX_FRAME) {
        if (mmds_net_has_output(m))
            count(m, MMDS_TX_ERRORS);
        return 0;
    }
    if (m->ctrl_count) {
        const struct ctrl_frame *f = &m->ctrl[m->ctrl_head];
        memcpy(buf, f->data, f->len);
        m->ctrl_head = (m->ctrl_head + 1) % MAX_CTRL;
        m->ctrl_count--;
        return sent_frame(m, f->len);
    }
    uint32_t ip = mmds_store_settings(m->store).ipv4;
    for (unsigned k = 0; k < MMDS_NET_MAX_CONNS; k++) {
        struct conn *c = &m->conns[(m->next_conn + k) % MMDS_NET_MAX_CONNS];
        size_t n = conn_output(m, c, ip, buf);
        if (n) {
            m->next_conn = (m->next_conn + k + 1) % MMDS_NET_MAX_CONNS;
            return sent_frame(m, n);
        }
    }
    return 0;
}

bool mmds_net_has_output(const struct mmds_net *m)
{
    if (m->ctrl_count)
        return true;
    for (unsigned i = 0; i < MMDS_NET_MAX_CONNS; i++) {
        const struct conn *c = &m->conns[i];
        uint32_t sent = c->snd_nxt - (c->iss + 1), in_flight = c->snd_nxt - c->snd_una;
        if (c->state == CONN_ESTABLISHED && c->answered && sent <= c->resp_len &&
            (sent == c->resp_len || in_flight < c->peer_wnd))
            return true;
    }
    return false;
}
