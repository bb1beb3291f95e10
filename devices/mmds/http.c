#include "devices/mmds/http.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_METHOD 16
#define TOKEN_PATH "/latest/api/token"

/* The end of the header block: offset just past the blank line, or 0 when not there yet. */
static size_t headers_end(const char *buf, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++) {
        if (buf[i] != '\n')
            continue;
        if (buf[i + 1] == '\n')
            return i + 2;
        if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n')
            return i + 3;
    }
    return 0;
}

/* Walks the header lines of [buf, buf+end): the value of header `name` (case-insensitive), trimmed. */
static bool header(const char *buf, size_t end, const char *name, const char **val, size_t *vlen)
{
    size_t nlen = strlen(name);
    const char *p = memchr(buf, '\n', end); /* skip the request line */
    const char *stop = buf + end;
    while (p && ++p < stop) {
        const char *eol = memchr(p, '\n', (size_t)(stop - p));
        if (!eol)
            break;
        size_t llen = (size_t)(eol - p);
        if (llen > nlen && p[nlen] == ':' && strncasecmp(p, name, nlen) == 0) {
            const char *v = p + nlen + 1, *e = eol;
            while (v < e && (*v == ' ' || *v == '\t'))
                v++;
            while (e > v && (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
                e--;
            *val = v;
            *vlen = (size_t)(e - v);
            return true;
        }
        p = eol;
    }
    return false;
}

/* A decimal number of at most 9 digits, nothing else; -1 otherwise. */
static long small_number(const char *v, size_t n)
{
    if (n == 0 || n > 9)
        return -1;
    long x = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        x = x * 10 + (v[i] - '0');
    }
    return x;
}

long mmds_http_request_length(const char *buf, size_t len)
{
    size_t end = headers_end(buf, len < MMDS_HTTP_MAX_REQUEST ? len : MMDS_HTTP_MAX_REQUEST);
    if (!end)
        return len >= MMDS_HTTP_MAX_REQUEST ? -E2BIG : 0;
    const char *v;
    size_t vlen;
    long body = 0;
    if (header(buf, end, "Content-Length", &v, &vlen) && (body = small_number(v, vlen)) < 0)
        return -EINVAL;
    if ((size_t)body > MMDS_HTTP_MAX_REQUEST - end)
        return -E2BIG;
    return end + (size_t)body <= len ? (long)(end + (size_t)body) : 0;
}

static const char *reason(unsigned status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Payload Too Large";
    case 501: return "Not Implemented";
    default: return "Internal Server Error";
    }
}

struct response {
    unsigned status;
    bool json;         /* Content-Type application/json, else text/plain */
    bool http10;       /* answer in the request's version */
    const char *allow; /* the Allow header of a 405, or NULL */
    char *body;        /* malloc'd, or NULL with text */
    const char *text;  /* a static body */
    size_t body_len;
};

static int build(const struct response *r, char **out, size_t *out_len)
{
    const char *body = r->body ? r->body : r->text ? r->text : "";
    size_t blen = r->body ? r->body_len : strlen(body);
    char head[256];
    int h = snprintf(head, sizeof(head),
                     "HTTP/1.%d %u %s\r\nServer: Ember MMDS\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n%s%s%s\r\n",
                     r->http10 ? 0 : 1, r->status, reason(r->status), r->json ? "application/json" : "text/plain", blen,
                     r->allow ? "Allow: " : "", r->allow ? r->allow : "", r->allow ? "\r\n" : "");
    char *buf = malloc((size_t)h + blen);
    if (!buf)
        return -ENOMEM;
    memcpy(buf, head, (size_t)h);
    memcpy(buf + h, body, blen);
    *out = buf;
    *out_len = (size_t)h + blen;
    return 0;
}

int mmds_http_error(unsigned status, const char *message, char **out, size_t *out_len)
{
    struct response r = {.status = status, .text = message};
    return build(&r, out, out_len);
}

/* "http://host/path?q" or "/path?q" into "/path" with "//" collapsed; false when it is neither. */
static bool request_path(const char *target, size_t n, char *path, size_t cap)
{
    if (n >= 7 && strncasecmp(target, "http://", 7) == 0) {
        const char *slash = memchr(target + 7, '/', n - 7);
        if (!slash)
            return false;
        n -= (size_t)(slash - target);
        target = slash;
    }
    if (n == 0 || target[0] != '/' || n >= cap)
        return false;
    size_t o = 0;
    for (size_t i = 0; i < n && target[i] != '?' && target[i] != '#'; i++)
        if (target[i] != '/' || o == 0 || path[o - 1] != '/')
            path[o++] = target[i];
    path[o] = '\0';
    return true;
}

static void answer_get(struct mmds_store *s, const char *path, bool json, struct response *r)
{
    int rc = mmds_store_render(s, path, json, &r->body, &r->body_len);
    if (rc == 0) {
        r->status = 200;
        r->json = json;
    } else if (rc == -ENOENT) {
        r->status = 404;
        r->text = "Resource not found.";
    } else if (rc == -ENOTSUP) {
        r->status = 501;
        r->text = "Cannot retrieve value. The value has an unsupported type.";
    } else {
        r->status = 500;
        r->text = "out of memory";
    }
}

static void answer_token(struct mmds_store *s, const char *req, size_t end, const char *path, uint64_t now_ns,
                         struct response *r)
{
    const char *v;
    size_t vlen;
    r->status = 400;
    if (header(req, end, "X-Forwarded-For", &v, &vlen)) {
        r->text = "Invalid header: X-Forwarded-For is not accepted on a token request.";
        return;
    }
    if (strcmp(path, TOKEN_PATH) != 0) {
        r->status = 404;
        r->text = "Resource not found.";
        return;
    }
    if (!header(req, end, "X-metadata-token-ttl-seconds", &v, &vlen) &&
        !header(req, end, "X-aws-ec2-metadata-token-ttl-seconds", &v, &vlen)) {
        r->text = "Token time to live value not found. Use `X-metadata-token-ttl-seconds` header to specify the "
                  "token's lifetime.";
        return;
    }
    long ttl = small_number(v, vlen);
    if (ttl < MMDS_TOKEN_TTL_MIN || ttl > MMDS_TOKEN_TTL_MAX) {
        r->text = "Invalid time to live value provided for token: it must be a whole number of seconds from 1 to "
                  "21600.";
        return;
    }
    char token[MMDS_TOKEN_CHARS + 1];
    if (mmds_store_new_token(s, (uint64_t)ttl, now_ns, token)) {
        r->status = 500;
        r->text = "Cannot generate a token.";
        return;
    }
    r->body = strdup(token);
    r->body_len = MMDS_TOKEN_CHARS;
    r->status = r->body ? 200 : 500;
    r->text = "out of memory";
}

/* The session token of a GET (either spelling), NUL-terminated in buf; false when there is none. */
static bool get_token(const char *req, size_t end, char *buf, size_t cap)
{
    const char *v;
    size_t vlen;
    if (!header(req, end, "X-metadata-token", &v, &vlen) && !header(req, end, "X-aws-ec2-metadata-token", &v, &vlen))
        return false;
    snprintf(buf, cap, "%.*s", (int)(vlen < cap ? vlen : cap - 1), v);
    return true;
}

int mmds_http_answer(struct mmds_store *s, const char *req, size_t len, uint64_t now_ns, char **out, size_t *out_len)
{
    struct response r = {.status = 400, .text = "Bad request."};
    size_t end = headers_end(req, len);
    const char *sp1 = end ? memchr(req, ' ', end) : NULL;
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', end - (size_t)(sp1 + 1 - req)) : NULL;
    const char *eol = memchr(req, '\n', end);
    char method[MAX_METHOD + 1], path[MMDS_HTTP_MAX_REQUEST];
    if (!sp1 || !sp2 || !eol || sp2 > eol || sp1 == req || (size_t)(sp1 - req) > MAX_METHOD)
        return build(&r, out, out_len);
    size_t vlen = (size_t)(eol - sp2 - 1);
    if (vlen && sp2[vlen] == '\r')
        vlen--;
    if (vlen != 8 || strncmp(sp2 + 1, "HTTP/1.", 7) != 0 || (sp2[8] != '0' && sp2[8] != '1')) {
        r.text = "Unsupported HTTP version: HTTP/1.0 and HTTP/1.1 only.";
        return build(&r, out, out_len);
    }
    r.http10 = sp2[8] == '0';
    memcpy(method, req, (size_t)(sp1 - req));
    method[sp1 - req] = '\0';
    if (!request_path(sp1 + 1, (size_t)(sp2 - sp1 - 1), path, sizeof(path))) {
        r.text = "Invalid URI.";
        return build(&r, out, out_len);
    }
    struct mmds_settings set = mmds_store_settings(s);
    if (strcmp(method, "PUT") == 0) {
        answer_token(s, req, end, path, now_ns, &r);
    } else if (strcmp(method, "GET") == 0) {
        char token[MMDS_TOKEN_CHARS + 2];
        bool has_token = get_token(req, end, token, sizeof(token));
        /* V1 answers whatever the token (IMDSv1 clients send none); V2 needs a live one. */
        if (set.version == MMDS_V2 && !has_token) {
            r.status = 401;
            r.text = "No MMDS token provided. Use `X-metadata-token` header to specify the session token.";
        } else if (set.version == MMDS_V2 && !mmds_store_token_valid(s, token, now_ns)) {
            r.status = 401;
            r.text = "MMDS token not valid.";
        } else {
            const char *accept;
            size_t alen;
            bool json = !set.imds_compat && header(req, end, "Accept", &accept, &alen) && alen >= 16 &&
                        memmem(accept, alen, "application/json", 16);
            answer_get(s, path, json, &r);
        }
    } else {
        r.status = 405;
        r.text = "Not allowed HTTP method.";
        r.allow = "GET, PUT";
    }
    int rc = build(&r, out, out_len);
    free(r.body);
    return rc;
}
