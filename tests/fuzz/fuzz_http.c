/*
 * The API's HTTP request reader (api/http_parse.c), as api/http_conn.c drives it:
 * heads fed in growing prefixes, then a chunked body in pieces. Refusals must
 * carry a status and a one-line message; accepted heads must be self-consistent.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/http_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_fault(const struct http_fault *f)
{
    if (f->status < 400 || f->status > 599 || !f->msg[0])
        abort();
    for (const char *p = f->msg; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = 1 + data[0] % 64;
    const char *in = (const char *)data + 1;
    size_t len = size - 1;
    struct http_head h;
    struct http_fault f;
    long head = 0;
    /* Growing prefixes, as bytes arrive: once a prefix is refused or complete, the answer must not change. */
    for (size_t n = step < len ? step : len;; n = n + step < len ? n + step : len) {
        head = http_parse_head(in, n, &h, &f);
        if (head != 0 || n == len)
            break;
    }
    if (head < 0) {
        check_fault(&f);
        return 0;
    }
    if (head == 0)
        return 0;
    if ((size_t)head > len || h.path[0] != '/' || !h.method[0] || (h.chunked && h.has_length) || h.minor > 1)
        abort();
    if (!h.chunked)
        return 0;
    static char body[4096];
    struct http_chunked c = {0};
    size_t blen = 0, off = (size_t)head;
    while (off < len) {
        size_t n = len - off < step ? len - off : step;
        bool done;
        long used = http_chunked_feed(&c, in + off, n, body, &blen, sizeof(body), &done, &f);
        if (used < 0) {
            check_fault(&f);
            break;
        }
        if ((size_t)used > n || blen > sizeof(body))
            abort();
        off += (size_t)used;
        if (done)
            break;
    }
    return 0;
}
