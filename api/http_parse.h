/*
 * A strict HTTP/1.0 and 1.1 request reader for the API socket (docs/api.md,
 * "HTTP"). Pure functions over bytes, so the unit tests and the fuzzer drive
 * them without a socket. Whatever two HTTP parsers could read differently
 * (request smuggling) is refused: bare LF or CR, control bytes, folded or
 * space-padded header names, duplicate framing headers, a Content-Length
 * that is not plain digits, Content-Length with Transfer-Encoding, any
 * transfer coding but "chunked", chunk extensions and trailers.
 */
#ifndef EMBER_API_HTTP_PARSE_H
#define EMBER_API_HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_HEAD_MAX 8192 /* request line and headers; more is a 431 */
#define HTTP_PATH_MAX 1024 /* request target; more is a 414 */
#define HTTP_METHOD_MAX 16
#define HTTP_HEADERS_MAX 64

/* Why a request is refused: the status and the fault_message (quoted input escaped). */
struct http_fault {
    unsigned status;
    char msg[320];
};

struct http_head {
    char method[HTTP_METHOD_MAX + 1];
    char path[HTTP_PATH_MAX + 1]; /* the target without its query string */
    unsigned minor;               /* HTTP/1.minor: 0 or 1 */
    bool has_length;
    uint64_t length;
    bool chunked;
    bool keep_alive; /* HTTP/1.1 unless "Connection: close"; HTTP/1.0 only with "Connection: keep-alive" */
    bool expect_continue;
};

/*
 * Reads the request head at the start of buf. Returns its length (the blank
 * line included) when it is complete and valid; 0 when more bytes are needed
 * and what is there so far is valid; -1 when it is refused, with *f filled.
 * Lines are checked as they complete, so a bad request line is refused
 * before the client sends the rest of its head.
 */
long http_parse_head(const char *buf, size_t len, struct http_head *h, struct http_fault *f);

/* Incremental decoder of a chunked body. Zero-initialise before the first call. */
struct http_chunked {
    int state;
    uint64_t size; /* of the current chunk: digits read, then bytes left */
    unsigned digits;
};

/*
 * Decodes the wire bytes in[0..len), appending data to body (body_len grows; a
 * body over cap bytes is a 413). Returns the bytes consumed (all of them unless
 * the body ended: *done) or -1 with *f filled.
 */
long http_chunked_feed(struct http_chunked *c, const char *in, size_t len, char *body, size_t *body_len, size_t cap,
                       bool *done, struct http_fault *f);

/* The reason phrase of a status this server sends. */
const char *http_reason(unsigned status);

/* Fills *f with status and a {"fault_message"}-ready text, like api_reply_error. */
void http_fault_set(struct http_fault *f, unsigned status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
