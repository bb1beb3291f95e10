/*
 * The API's strict HTTP request reader (api/http_parse.c, issue #16): what is
 * ambiguous between HTTP parsers is refused with the right status, what clients
 * send is read, partial heads wait for more bytes, chunked bodies decode across
 * any split.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "api/http_parse.h"

static long parse(const char *req, struct http_head *h, struct http_fault *f)
{
    return http_parse_head(req, strlen(req), h, f);
}

static void refused(const char *req, size_t len, unsigned status, const char *text)
{
    struct http_head h;
    struct http_fault f = {0};
    cr_assert_eq(http_parse_head(req, len, &h, &f), -1, "accepted: %.60s", req);
    cr_assert_eq(f.status, status, "status %u for %.60s (%s)", f.status, req, f.msg);
    if (text)
        cr_assert(strstr(f.msg, text), "'%s' lacks '%s'", f.msg, text);
    for (const char *p = f.msg; *p; p++)
        cr_assert((unsigned char)*p >= 0x20 && *p != 0x7f, "control byte in '%s'", f.msg);
}
#define REFUSED(req, status, text) refused(req, sizeof(req) - 1, status, text)

Test(http_parse, a_plain_get)
{
    struct http_head h;
    struct http_fault f;
    const char *req = "GET /machine-config HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\nextra";
    cr_assert_eq(parse(req, &h, &f), (long)strlen(req) - 5);
    cr_assert_str_eq(h.method, "GET");
    cr_assert_str_eq(h.path, "/machine-config");
    cr_assert_eq(h.minor, 1);
    cr_assert(h.keep_alive && !h.has_length && !h.chunked && !h.expect_continue);
}

Test(http_parse, framing_and_connection_options)
{
    struct http_head h;
    struct http_fault f;
    cr_assert_gt(parse("PUT /a HTTP/1.1\r\ncontent-length:  12 \r\nConnection: Keep-Alive, close\r\n\r\n", &h, &f), 0);
    cr_assert(h.has_length && h.length == 12 && !h.keep_alive);
    cr_assert_gt(parse("PUT /a HTTP/1.1\r\nTransfer-Encoding: Chunked\r\nExpect: 100-continue\r\n\r\n", &h, &f), 0);
    cr_assert(h.chunked && h.expect_continue && h.keep_alive);
    cr_assert_gt(parse("GET /?a=b HTTP/1.0\r\n\r\n", &h, &f), 0);
    cr_assert_str_eq(h.path, "/");
    cr_assert(!h.keep_alive);
    cr_assert_gt(parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", &h, &f), 0);
    cr_assert(h.keep_alive);
    cr_assert_gt(parse("PUT /a HTTP/1.1\r\nContent-Length: 9999999999999999999\r\n\r\n", &h, &f), 0);
    cr_assert_eq(h.length, 9999999999999999999ull);
}

Test(http_parse, partial_heads_wait_bad_lines_do_not)
{
    struct http_head h;
    struct http_fault f;
    const char *req = "PUT /machine-config HTTP/1.1\r\nContent-Length: 2\r\n\r\n";
    for (size_t n = 0; n < strlen(req); n++)
        cr_assert_eq(http_parse_head(req, n, &h, &f), 0, "refused after %zu bytes: %s", n, f.msg);
    /* HTTP/0.9 clients send one line and wait: refused on that line. */
    REFUSED("GET /\r\n", 400, "HTTP/0.9");
    REFUSED("PUT\0 /machine-config HTTP/1.1\r\n", 400, "PUT\\x00");
}

Test(http_parse, ambiguous_framing_refused)
{
    REFUSED("PUT / HTTP/1.1\r\nContent-Length: abc\r\n\r\n", 400, "'abc'");
    REFUSED("PUT / HTTP/1.1\r\nContent-Length: +2\r\n\r\n", 400, "Content-Length");
    REFUSED("PUT / HTTP/1.1\r\nContent-Length: 2, 2\r\n\r\n", 400, "Content-Length");
    REFUSED("PUT / HTTP/1.1\r\nContent-Length:\r\n\r\n", 400, "Content-Length");
    REFUSED("PUT / HTTP/1.1\r\nContent-Length: 10000000000000000000\r\n\r\n", 400, "Content-Length");
    REFUSED("PUT / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n", 400, "More than one");
    REFUSED("PUT / HTTP/1.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "ambiguous");
    REFUSED("PUT / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501, "gzip, chunked");
    REFUSED("PUT / HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\n", 501, NULL);
    REFUSED("PUT / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "HTTP/1.0");
    REFUSED("PUT / HTTP/1.1\r\nContent-Length : 2\r\n\r\n", 400, "header line");
    REFUSED("PUT / HTTP/1.1\r\nX: 1\r\n Content-Length: 2\r\n\r\n", 400, "Folded");
    REFUSED("PUT / HTTP/1.1\r\nExpect: 100-continue\r\nExpect: 100-continue\r\n\r\n", 400, "Expect");
    REFUSED("PUT / HTTP/1.1\r\nExpect: nothing\r\n\r\n", 417, "nothing");
    REFUSED("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "Host");
}

Test(http_parse, bad_lines_refused)
{
    REFUSED("GET / HTTP/1.1\nHost: a\n\n", 400, "bare LF");
    REFUSED("GET / HTTP/1.1\rHost: a\r\n\r\n", 400, "bare CR");
    REFUSED("GET / HTTP/1.1\r\nX: a\x01z\r\n\r\n", 400, "control");
    REFUSED("GET / HTTP/1.1\r\nX: a\x7fz\r\n\r\n", 400, "control");
    REFUSED("GET / HTTP/2.0\r\n\r\n", 505, "HTTP/2.0");
    REFUSED("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505, NULL);
    REFUSED("GET / HTTP/1.1x\r\n\r\n", 400, NULL);
    REFUSED("GET / http/1.1\r\n\r\n", 400, NULL);
    REFUSED("GET  / HTTP/1.1\r\n\r\n", 400, NULL);
    REFUSED("GET / HTTP/1.1 \r\n\r\n", 400, NULL);
    REFUSED("get / HTTP/1.1\r\n\r\n", 400, "method");
    REFUSED("GETGETGETGETGETGET / HTTP/1.1\r\n\r\n", 400, "method");
    REFUSED("GET * HTTP/1.1\r\n\r\n", 400, "start with '/'");
    REFUSED("GET /a\x80 HTTP/1.1\r\n\r\n", 400, "\\x80");
    REFUSED("\r\n", 400, NULL);
    REFUSED("GARBAGE\r\n", 400, "GARBAGE");
}

Test(http_parse, sizes)
{
    static char buf[HTTP_HEAD_MAX + 4096];
    size_t n = (size_t)snprintf(buf, sizeof(buf), "GET /");
    memset(buf + n, 'a', HTTP_PATH_MAX);
    n += HTTP_PATH_MAX;
    n += (size_t)snprintf(buf + n, sizeof(buf) - n, " HTTP/1.1\r\n\r\n");
    refused(buf, n, 414, NULL);
    /* A long first line that has not ended yet is refused without waiting for its end. */
    refused(buf, HTTP_PATH_MAX + 100, 414, NULL);
    n = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nX: ");
    memset(buf + n, 'b', HTTP_HEAD_MAX);
    refused(buf, HTTP_HEAD_MAX, 431, NULL);
    n = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\n");
    for (int i = 0; i <= HTTP_HEADERS_MAX; i++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "X-%d: y\r\n", i);
    refused(buf, n, 431, "header lines");
}

/* Decodes wire in pieces of `step` bytes; returns the body length, or -1 with *f. */
static long decode(const char *wire, size_t len, size_t step, char *body, size_t cap, struct http_fault *f)
{
    struct http_chunked c = {0};
    size_t blen = 0, off = 0;
    while (off < len) {
        size_t n = len - off < step ? len - off : step;
        bool done;
        long used = http_chunked_feed(&c, wire + off, n, body, &blen, cap, &done, f);
        if (used < 0)
            return -1;
        off += (size_t)used;
        if (done)
            return off == len ? (long)blen : -2;
    }
    return -3; /* not finished */
}

Test(http_parse, chunked_any_split)
{
    static const char wire[] = "3\r\n{\"a\r\nA\r\n\": 1234567\r\n1\r\n}\r\n0\r\n\r\n";
    char body[64];
    struct http_fault f;
    for (size_t step = 1; step <= sizeof(wire); step++) {
        cr_assert_eq(decode(wire, sizeof(wire) - 1, step, body, sizeof(body), &f), 14, "step %zu", step);
        cr_assert_eq(memcmp(body, "{\"a\": 1234567}", 14), 0);
    }
}

Test(http_parse, chunked_refusals)
{
    char body[64];
    struct http_fault f;
    static const struct {
        const char *wire;
        unsigned status;
    } bad[] = {
        {"zz\r\n", 400},
        {"\r\n", 400},
        {"-1\r\n", 400},
        {"100000000\r\n", 400},
        {"2;ext\r\nab\r\n", 400},
        {"2\r\nabc\r\n", 400},
        {"2\nab\r\n", 400},
        {"0\r\nX: y\r\n\r\n", 400},
        {"0\r\n\n", 400},
        {"41\r\n", 413},
        {"20\r\n"
         "0123456789abcdef0123456789abcdef\r\n21\r\n",
         413},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        f.status = 0;
        cr_assert_eq(decode(bad[i].wire, strlen(bad[i].wire), 64, body, sizeof(body), &f), -1, "%s", bad[i].wire);
        cr_assert_eq(f.status, bad[i].status, "%s: %u %s", bad[i].wire, f.status, f.msg);
    }
}
