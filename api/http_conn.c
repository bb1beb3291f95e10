#include "api/http_conn.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "api/http_parse.h"
#include "core/log.h"

/*
 * Connection limits (docs/api.md, "HTTP"). The socket has one real client;
 * anything else holding connections must not lock it out:
 * - at most API_MAX_CONNS (http_conn.h) at once; a new connection past that closes the one
 *   waiting longest for its request (idle, or trickling a request in);
 * - a request must arrive whole within API_REQUEST_MS of its first byte, and
 *   its answer be taken within API_REQUEST_MS;
 * - a connection with no request under way has no deadline: Firecracker keeps
 *   idle keep-alive connections, and a client's PUT sent as the server closes
 *   one fails (Go retries only idempotent requests). The cap's eviction is what
 *   keeps idle connections from piling up.
 */
#define API_REQUEST_MS 10000
#define API_NO_DEADLINE INT64_MAX
/* A body announced over API_MAX_BODY is read and dropped up to this size so the client sees the 413. */
#define API_DISCARD_MAX (4u << 20)

enum conn_state { C_HEAD, C_BODY, C_CHUNKED, C_DISCARD, C_WRITE };

struct http_conn {
    int fd;
    enum conn_state state;
    struct http_head head;
    struct http_chunked chunked;
    char *body;
    size_t body_len;
    uint64_t discard_left;
    char *out;
    size_t out_len, out_off;
    bool close_after_write;
    bool peer_done; /* the client shut down its side: no more requests */
    bool polling_out;
    int64_t deadline_ms;
    unsigned slot;          /* in http_conns.slot */
    uint64_t waiting_since; /* eviction order: when it began waiting for its request */
    size_t in_len;
    char in[]; /* HTTP_HEAD_MAX bytes */
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Now waiting for a request: the last in line to be evicted. */
static void conn_to_back(struct http_conns *s, struct http_conn *c) { c->waiting_since = ++s->seq; }

static void conn_close(struct http_conns *s, struct http_conn *c)
{
    s->slot[c->slot] = NULL;
    close(c->fd); /* also leaves the epoll set */
    free(c->body);
    free(c->out);
    free(c);
    s->n--;
}

static void conn_poll(struct http_conns *s, struct http_conn *c, bool out)
{
    if (c->polling_out == out)
        return;
    struct epoll_event ev = {.events = out ? EPOLLOUT : EPOLLIN, .data.ptr = c};
    epoll_ctl(s->ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->polling_out = out;
}

/* Queues the answer; the connection writes it next (C_WRITE). */
static void conn_answer(struct http_conn *c, const struct api_reply *r, bool keep_alive)
{
    const char *body = r->body ? r->body : "";
    size_t blen = strlen(body);
    char head[256];
    int n = snprintf(head, sizeof(head), "HTTP/1.1 %u %s\r\nServer: Ember API\r\n%s", r->status, http_reason(r->status),
                     r->body ? "Content-Type: application/json\r\n" : "");
    if (r->status != 204)
        n += snprintf(head + n, sizeof(head) - (size_t)n, "Content-Length: %zu\r\n", blen);
    n += snprintf(head + n, sizeof(head) - (size_t)n, "%s\r\n",
                  !keep_alive          ? "Connection: close\r\n"
                  : c->head.minor == 0 ? "Connection: keep-alive\r\n"
                                       : "");
    free(c->body);
    c->body = NULL;
    free(c->out);
    c->out = malloc((size_t)n + blen);
    c->out_off = 0;
    c->out_len = c->out ? (size_t)n + blen : 0;
    if (c->out) {
        memcpy(c->out, head, (size_t)n);
        memcpy(c->out + n, body, blen);
    }
    c->close_after_write = !keep_alive || !c->out;
    c->state = C_WRITE;
    c->deadline_ms = now_ms() + API_REQUEST_MS;
}

/* A refused request: its JSON fault, then the connection is closed (what follows cannot be framed). */
static void conn_fault(struct http_conn *c, const struct http_fault *f)
{
    struct api_reply r = {0, NULL};
    api_reply_error(&r, f->status, "%s", f->msg);
    log_debug("API: refused a request: %u %s", f->status, f->msg);
    conn_answer(c, &r, false);
    free(r.body);
}

static void conn_dispatch(struct http_conns *s, struct http_conn *c)
{
    struct api_reply r = {500, NULL};
    if (c->body)
        c->body[c->body_len] = '\0';
    s->serve(s->ctx, c->head.method, c->head.path, c->body ? c->body : "", c->body ? c->body_len : 0, &r);
    conn_answer(c, &r, c->head.keep_alive);
    free(r.body);
}

static void conn_consume(struct http_conn *c, size_t n)
{
    memmove(c->in, c->in + n, c->in_len - n);
    c->in_len -= n;
}

/* "100 Continue" for a client that waits for it before sending its body (curl does for large ones). */
static bool conn_continue(struct http_conn *c)
{
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    if (!c->head.expect_continue || c->in_len)
        return true;
    return send(c->fd, cont, sizeof(cont) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) == (ssize_t)sizeof(cont) - 1;
}

/* A head was read: set up for its body, or answer at once. */
static void conn_head_done(struct http_conns *s, struct http_conn *c)
{
    struct http_fault f;
    const struct http_head *h = &c->head;
    c->body_len = 0;
    if (h->chunked) {
        memset(&c->chunked, 0, sizeof(c->chunked));
        c->body = malloc(API_MAX_BODY + 1);
        c->state = C_CHUNKED;
    } else if (h->has_length && h->length > API_MAX_BODY) {
        http_fault_set(&f, 413, "Request payload is larger than the limit of %d bytes.", API_MAX_BODY);
        if (h->expect_continue || h->length > API_DISCARD_MAX)
            return conn_fault(c, &f); /* the client waits, or the body is not worth reading */
        c->discard_left = h->length;
        c->state = C_DISCARD;
        return;
    } else if (h->has_length && h->length) {
        c->body = malloc(h->length + 1);
        c->state = C_BODY;
    } else {
        return conn_dispatch(s, c);
    }
    if (!c->body) {
        http_fault_set(&f, 500, "out of memory");
        return conn_fault(c, &f);
    }
    if (!conn_continue(c)) {
        http_fault_set(&f, 400, "The client does not take the 100 Continue answer.");
        conn_fault(c, &f);
    }
}

/* Sends what is queued. Returns 1 to wait for the socket, 0 when done, -1 when the connection is closed. */
static int conn_flush(struct http_conns *s, struct http_conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            conn_poll(s, c, true);
            return 1;
        }
        if (n <= 0) {
            conn_close(s, c);
            return -1;
        }
        c->out_off += (size_t)n;
    }
    free(c->out);
    c->out = NULL;
    c->out_len = c->out_off = 0;
    if (c->close_after_write || c->peer_done) {
        conn_close(s, c);
        return -1;
    }
    conn_poll(s, c, false);
    c->state = C_HEAD;
    c->deadline_ms = c->in_len ? now_ms() + API_REQUEST_MS : API_NO_DEADLINE;
    conn_to_back(s, c);
    return 0;
}

/* Moves the connection on as far as the bytes it has allow. Returns false once it is closed. */
static bool conn_run(struct http_conns *s, struct http_conn *c)
{
    struct http_fault f;
    for (;;) {
        if (c->state == C_WRITE) {
            int rc = conn_flush(s, c);
            if (rc)
                return rc > 0;
            continue;
        }
        if (!c->in_len)
            return true;
        if (c->state == C_HEAD) {
            long n = http_parse_head(c->in, c->in_len, &c->head, &f);
            if (n == 0)
                return true;
            if (n < 0) {
                conn_fault(c, &f);
                continue;
            }
            conn_consume(c, (size_t)n);
            conn_head_done(s, c);
        } else if (c->state == C_BODY) {
            size_t want = c->head.length - c->body_len, take = c->in_len < want ? c->in_len : want;
            memcpy(c->body + c->body_len, c->in, take);
            c->body_len += take;
            conn_consume(c, take);
            if (c->body_len == c->head.length)
                conn_dispatch(s, c);
        } else if (c->state == C_CHUNKED) {
            bool done;
            long n = http_chunked_feed(&c->chunked, c->in, c->in_len, c->body, &c->body_len, API_MAX_BODY, &done, &f);
            if (n < 0) {
                conn_fault(c, &f);
                continue;
            }
            conn_consume(c, (size_t)n);
            if (done)
                conn_dispatch(s, c);
        } else if (c->state == C_DISCARD) {
            size_t take = c->in_len < c->discard_left ? c->in_len : (size_t)c->discard_left;
            c->discard_left -= take;
            conn_consume(c, take);
            if (!c->discard_left) {
                http_fault_set(&f, 413, "Request payload is larger than the limit of %d bytes.", API_MAX_BODY);
                conn_fault(c, &f);
            }
        }
    }
}

static void conn_readable(struct http_conns *s, struct http_conn *c)
{
    if (c->state == C_WRITE || c->in_len == HTTP_HEAD_MAX)
        return;
    ssize_t n = recv(c->fd, c->in + c->in_len, HTTP_HEAD_MAX - c->in_len, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {
        /* The client is done sending: answer what it sent whole, then close. */
        c->peer_done = true;
        if (conn_run(s, c) && c->state != C_WRITE)
            conn_close(s, c);
        return;
    }
    if (c->state == C_HEAD && c->in_len == 0)
        c->deadline_ms = now_ms() + API_REQUEST_MS; /* the first byte of a request starts its clock */
    c->in_len += (size_t)n;
    conn_run(s, c);
}

/* A timed-out or evicted connection: a request under way gets its JSON fault (best effort), then close. */
static void conn_expire(struct http_conns *s, struct http_conn *c, unsigned status, const char *why)
{
    bool mid_request = c->state != C_WRITE && (c->state != C_HEAD || c->in_len);
    if (mid_request) {
        struct http_fault f;
        http_fault_set(&f, status, "%s", why);
        conn_fault(c, &f);
        if (c->out)
            (void)send(c->fd, c->out, c->out_len, MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    conn_close(s, c);
}

/* A free slot, making one if need be: the connection that has waited longest for its request is closed. */
static unsigned free_slot(struct http_conns *s)
{
    unsigned oldest = 0;
    for (unsigned i = 0; i < API_MAX_CONNS; i++) {
        if (!s->slot[i])
            return i;
        if (s->slot[i]->waiting_since < s->slot[oldest]->waiting_since)
            oldest = i;
    }
    conn_expire(s, s->slot[oldest], 503, "Too many connections: this one waited longest and is closed.");
    return oldest;
}

void http_conns_accept(struct http_conns *s)
{
    for (int i = 0; i < 64; i++) {
        struct sockaddr_un peer;
        socklen_t peer_len = sizeof(peer);
        int fd = accept4(s->listen_fd, (struct sockaddr *)&peer, &peer_len, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0)
            return;
        struct http_conn *c = calloc(1, offsetof(struct http_conn, in) + HTTP_HEAD_MAX);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (!c || epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
            free(c);
            close(fd);
            continue;
        }
        c->fd = fd;
        c->slot = free_slot(s);
        s->slot[c->slot] = c;
        s->n++;
        conn_to_back(s, c);
        c->deadline_ms = API_NO_DEADLINE;
    }
}

/* Closes what is overdue; returns the milliseconds until the next deadline (at most 1 s). */
int http_conns_expire(struct http_conns *s)
{
    int64_t now = now_ms(), next = now + 1000;
    for (unsigned i = 0; i < API_MAX_CONNS; i++) {
        struct http_conn *c = s->slot[i];
        if (!c)
            continue;
        if (c->deadline_ms <= now)
            conn_expire(s, c, 408, "The request was not complete within 10 seconds.");
        else if (c->deadline_ms < next)
            next = c->deadline_ms;
    }
    return (int)(next - now);
}

void http_conns_event(struct http_conns *s, struct http_conn *c, uint32_t events)
{
    (void)events;
    /* Writing, any event (EPOLLOUT, or HUP/ERR of a client gone: send fails and closes) goes on writing. */
    if (c->state == C_WRITE)
        conn_run(s, c);
    else
        conn_readable(s, c);
}

void http_conns_close_all(struct http_conns *s)
{
    for (unsigned i = 0; i < API_MAX_CONNS; i++)
        if (s->slot[i])
            conn_close(s, s->slot[i]);
}
