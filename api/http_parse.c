#include "api/http_parse.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/errmsg.h"

void http_fault_set(struct http_fault *f, unsigned status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->msg, sizeof(f->msg), fmt, ap);
    va_end(ap);
    f->status = status;
}

const char *http_reason(unsigned status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 408: return "Request Timeout";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 417: return "Expectation Failed";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

/* RFC 9110 token characters (method and header names). */
static bool is_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || strchr("!#$%&'*+-.^_`|~", c);
}

static bool name_is(const char *name, size_t n, const char *want)
{
    return n == strlen(want) && strncasecmp(name, want, n) == 0;
}

static bool value_is(const char *v, size_t n, const char *want)
{
    return n == strlen(want) && strncasecmp(v, want, n) == 0;
}

/* What the header pass remembers across lines. */
struct seen {
    unsigned headers;
    bool length, te, expect, host, conn_close, conn_keep_alive;
};

/* "HTTP/" and digits and dots: a version this server does not speak (505), not garbage (400). */
static bool looks_like_version(const char *v, size_t n)
{
    if (n <= 5 || n > 16 || memcmp(v, "HTTP/", 5) != 0)
        return false;
    for (size_t i = 5; i < n; i++)
        if (!((v[i] >= '0' && v[i] <= '9') || v[i] == '.'))
            return false;
    return true;
}

static int request_line(const char *line, size_t n, struct http_head *h, struct http_fault *f)
{
    char q[ERR_QUOTE_MAX];
    const char *sp1 = memchr(line, ' ', n);
    if (!sp1)
        return http_fault_set(f, 400, "Invalid request line '%s': want METHOD /path HTTP/1.1.",
                              err_quote_n(q, 80, line, n)),
               -1;
    const char *target = sp1 + 1;
    size_t rest = n - (size_t)(target - line);
    const char *sp2 = memchr(target, ' ', rest);
    if (!sp2) {
        if (rest && target[0] == '/')
            return http_fault_set(f, 400, "HTTP/0.9 requests are not supported: use HTTP/1.1."), -1;
        return http_fault_set(f, 400, "Invalid request line '%s': want METHOD /path HTTP/1.1.",
                              err_quote_n(q, 80, line, n)),
               -1;
    }
    size_t tlen = (size_t)(sp2 - target);
    const char *version = sp2 + 1;
    size_t vlen = n - (size_t)(version - line);
    if (vlen == 8 && memcmp(version, "HTTP/1.", 7) == 0 && (version[7] == '0' || version[7] == '1')) {
        h->minor = (unsigned)(version[7] - '0');
    } else if (looks_like_version(version, vlen)) {
        return http_fault_set(f, 505, "HTTP version '%s' is not supported: use HTTP/1.1 (or HTTP/1.0).",
                              err_quote_n(q, 40, version, vlen)),
               -1;
    } else {
        return http_fault_set(f, 400, "Invalid request line '%s': want METHOD /path HTTP/1.1.",
                              err_quote_n(q, 80, line, n)),
               -1;
    }
    size_t mlen = (size_t)(sp1 - line);
    bool method_ok = mlen >= 1 && mlen <= HTTP_METHOD_MAX;
    for (size_t i = 0; method_ok && i < mlen; i++)
        method_ok = line[i] >= 'A' && line[i] <= 'Z';
    if (!method_ok)
        return http_fault_set(f, 400, "Invalid request method '%s'.", err_quote_n(q, 40, line, mlen)), -1;
    if (tlen > HTTP_PATH_MAX)
        return http_fault_set(f, 414, "The request path is longer than %d bytes.", HTTP_PATH_MAX), -1;
    for (size_t i = 0; i < tlen; i++)
        if ((unsigned char)target[i] <= 0x20 || (unsigned char)target[i] >= 0x7f)
            return http_fault_set(f, 400, "Invalid request path '%s': it holds a byte that is not printable ASCII.",
                                  err_quote_n(q, 120, target, tlen)),
                   -1;
    if (!tlen || target[0] != '/')
        return http_fault_set(f, 400, "Invalid request path '%s': it must start with '/'.",
                              err_quote_n(q, 120, target, tlen)),
               -1;
    memcpy(h->method, line, mlen);
    h->method[mlen] = '\0';
    const char *query = memchr(target, '?', tlen);
    if (query)
        tlen = (size_t)(query - target); /* as libmicrohttpd did: routes see the path alone */
    memcpy(h->path, target, tlen);
    h->path[tlen] = '\0';
    return 0;
}

/* Connection: a comma-separated list of options; "close" and "keep-alive" matter. */
static void connection_options(const char *v, size_t n, struct seen *s)
{
    while (n) {
        const char *comma = memchr(v, ',', n);
        size_t len = comma ? (size_t)(comma - v) : n;
        size_t a = 0, b = len;
        while (a < b && (v[a] == ' ' || v[a] == '\t'))
            a++;
        while (b > a && (v[b - 1] == ' ' || v[b - 1] == '\t'))
            b--;
        if (value_is(v + a, b - a, "close"))
            s->conn_close = true;
        else if (value_is(v + a, b - a, "keep-alive"))
            s->conn_keep_alive = true;
        if (!comma)
            break;
        n -= len + 1;
        v += len + 1;
    }
}

static int header_line(const char *line, size_t n, struct http_head *h, struct seen *s, struct http_fault *f)
{
    char q[ERR_QUOTE_MAX];
    if (line[0] == ' ' || line[0] == '\t')
        return http_fault_set(f, 400, "Folded header lines are not accepted."), -1;
    if (++s->headers > HTTP_HEADERS_MAX)
        return http_fault_set(f, 431, "More than %d header lines.", HTTP_HEADERS_MAX), -1;
    const char *colon = memchr(line, ':', n);
    size_t nlen = colon ? (size_t)(colon - line) : 0;
    bool name_ok = nlen > 0;
    for (size_t i = 0; name_ok && i < nlen; i++)
        name_ok = is_tchar((unsigned char)line[i]);
    if (!name_ok)
        return http_fault_set(f, 400, "Invalid header line '%s'.", err_quote_n(q, 80, line, n)), -1;
    const char *v = colon + 1;
    size_t vlen = n - nlen - 1;
    while (vlen && (*v == ' ' || *v == '\t'))
        v++, vlen--;
    while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
        vlen--;
    for (size_t i = 0; i < vlen; i++) {
        unsigned char c = (unsigned char)v[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return http_fault_set(f, 400, "Header '%s' holds a control character.", err_quote_n(q, 64, line, nlen)), -1;
    }
    if (name_is(line, nlen, "Content-Length")) {
        if (s->length)
            return http_fault_set(f, 400, "More than one Content-Length header."), -1;
        s->length = true;
        bool digits = vlen >= 1 && vlen <= 19;
        uint64_t x = 0;
        for (size_t i = 0; digits && i < vlen; i++) {
            digits = v[i] >= '0' && v[i] <= '9';
            x = x * 10 + (uint64_t)(v[i] - '0');
        }
        if (!digits)
            return http_fault_set(f, 400, "Invalid Content-Length '%s': want a decimal number of bytes.",
                                  err_quote_n(q, 48, v, vlen)),
                   -1;
        h->has_length = true;
        h->length = x;
    } else if (name_is(line, nlen, "Transfer-Encoding")) {
        if (s->te)
            return http_fault_set(f, 400, "More than one Transfer-Encoding header."), -1;
        s->te = true;
        if (!value_is(v, vlen, "chunked"))
            return http_fault_set(f, 501, "Transfer-Encoding '%s' is not supported: only 'chunked'.",
                                  err_quote_n(q, 64, v, vlen)),
                   -1;
        h->chunked = true;
    } else if (name_is(line, nlen, "Expect")) {
        if (s->expect)
            return http_fault_set(f, 400, "More than one Expect header."), -1;
        s->expect = true;
        if (!value_is(v, vlen, "100-continue"))
            return http_fault_set(f, 417, "Expect '%s' is not supported: only '100-continue'.",
                                  err_quote_n(q, 64, v, vlen)),
                   -1;
        h->expect_continue = true;
    } else if (name_is(line, nlen, "Host")) {
        if (s->host)
            return http_fault_set(f, 400, "More than one Host header."), -1;
        s->host = true;
    } else if (name_is(line, nlen, "Connection")) {
        connection_options(v, vlen, s);
    }
    return 0;
}

/* The head is complete: the framing it announces must be unambiguous. */
static int head_done(struct http_head *h, const struct seen *s, struct http_fault *f)
{
    if (h->chunked && h->has_length)
        return http_fault_set(f, 400, "Content-Length and Transfer-Encoding together are ambiguous: send one."), -1;
    if (h->chunked && h->minor == 0)
        return http_fault_set(f, 400, "Transfer-Encoding is not allowed in an HTTP/1.0 request."), -1;
    h->keep_alive = !s->conn_close && (h->minor == 1 || s->conn_keep_alive);
    if (h->minor == 0)
        h->expect_continue = false; /* RFC 9110: ignored from HTTP/1.0 clients */
    return 0;
}

long http_parse_head(const char *buf, size_t len, struct http_head *h, struct http_fault *f)
{
    memset(h, 0, sizeof(*h));
    struct seen s = {0};
    size_t pos = 0;
    for (unsigned line_no = 0;; line_no++) {
        size_t i = pos;
        while (i < len && buf[i] != '\r' && buf[i] != '\n')
            i++;
        if (i < len && buf[i] == '\n')
            return http_fault_set(f, 400, "A line of the request ends in a bare LF: lines end with CRLF."), -1;
        if (i + 1 < len && buf[i + 1] != '\n')
            return http_fault_set(f, 400, "A line of the request holds a bare CR: lines end with CRLF."), -1;
        if (i + 1 >= len) { /* no complete line yet */
            if (line_no == 0 && i - pos > HTTP_METHOD_MAX + HTTP_PATH_MAX + 16)
                return http_fault_set(f, 414, "The request path is longer than %d bytes.", HTTP_PATH_MAX), -1;
            if (len >= HTTP_HEAD_MAX)
                return http_fault_set(f, 431, "The request head is larger than %d bytes.", HTTP_HEAD_MAX), -1;
            return 0;
        }
        size_t next = i + 2;
        if (next > HTTP_HEAD_MAX)
            return http_fault_set(f, 431, "The request head is larger than %d bytes.", HTTP_HEAD_MAX), -1;
        const char *line = buf + pos;
        size_t n = i - pos;
        if (line_no == 0) {
            if (request_line(line, n, h, f))
                return -1;
        } else if (n == 0) {
            return head_done(h, &s, f) ? -1 : (long)next;
        } else if (header_line(line, n, h, &s, f)) {
            return -1;
        }
        pos = next;
    }
}

enum { CK_SIZE, CK_SIZE_LF, CK_DATA, CK_DATA_CR, CK_DATA_LF, CK_LAST_CR, CK_LAST_LF };

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

long http_chunked_feed(struct http_chunked *c, const char *in, size_t len, char *body, size_t *body_len, size_t cap,
                       bool *done, struct http_fault *f)
{
    *done = false;
    for (size_t i = 0; i < len; i++) {
        char b = in[i];
        switch (c->state) {
        case CK_SIZE: {
            int v = hex_value(b);
            if (v >= 0) {
                if (c->digits == 8)
                    return http_fault_set(f, 400, "Invalid chunk size: more than 8 hex digits."), -1;
                c->size = c->size * 16 + (uint64_t)v;
                c->digits++;
            } else if (b == '\r' && c->digits) {
                c->state = CK_SIZE_LF;
            } else if (b == ';' && c->digits) {
                return http_fault_set(f, 400, "Chunk extensions are not supported."), -1;
            } else {
                return http_fault_set(f, 400, "Invalid chunk size: want hex digits and CRLF."), -1;
            }
            break;
        }
        case CK_SIZE_LF:
            if (b != '\n')
                return http_fault_set(f, 400, "Invalid chunk size: want hex digits and CRLF."), -1;
            if (c->size > cap - *body_len)
                return http_fault_set(f, 413, "Request payload is larger than the limit of %zu bytes.", cap), -1;
            c->state = c->size ? CK_DATA : CK_LAST_CR;
            break;
        case CK_DATA: {
            size_t n = len - i < c->size ? len - i : (size_t)c->size;
            memcpy(body + *body_len, in + i, n);
            *body_len += n;
            c->size -= n;
            i += n - 1;
            if (!c->size)
                c->state = CK_DATA_CR;
            break;
        }
        case CK_DATA_CR:
        case CK_DATA_LF:
            if (b != (c->state == CK_DATA_CR ? '\r' : '\n'))
                return http_fault_set(f, 400, "Invalid chunk: its data does not end with CRLF where its size says."),
                       -1;
            if (c->state == CK_DATA_LF)
                c->digits = 0;
            c->state = c->state == CK_DATA_CR ? CK_DATA_LF : CK_SIZE;
            break;
        case CK_LAST_CR:
            if (b != '\r')
                return http_fault_set(f, 400, "Chunked trailers are not supported."), -1;
            c->state = CK_LAST_LF;
            break;
        case CK_LAST_LF:
            if (b != '\n')
                return http_fault_set(f, 400, "Invalid end of a chunked body: want CRLF."), -1;
            *done = true;
            return (long)(i + 1);
        }
    }
    return (long)len;
}
