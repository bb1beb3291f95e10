/*
 * The MMDS HTTP side, as the guest sees it: one request in, one response out
 * (the connection closes after it). Requests are guest input: every length is
 * bounded and anything malformed gets a 400, never more work.
 */
#ifndef EMBER_MMDS_HTTP_H
#define EMBER_MMDS_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "devices/mmds/store.h"

/* The longest request accepted (request line, headers and body together): IMDS requests are a few hundred bytes. */
#define MMDS_HTTP_MAX_REQUEST 8192

/*
 * How much of buf the first request takes: > 0 its complete length (headers and Content-Length body), 0 not
 * complete yet, -EINVAL malformed (no request line, bad Content-Length), -E2BIG longer than MMDS_HTTP_MAX_REQUEST.
 */
long mmds_http_request_length(const char *buf, size_t len);

/*
 * The response to the complete request req[0..len) (as mmds_http_request_length measured it, or a malformed one:
 * then a 400), given the store's data, settings and tokens at now_ns. *out is malloc'd. 0 or -ENOMEM.
 */
int mmds_http_answer(struct mmds_store *s, const char *req, size_t len, uint64_t now_ns, char **out, size_t *out_len);

/* The response for an error found before a request could be parsed (e.g. one too long): status and a reason. */
int mmds_http_error(unsigned status, const char *message, char **out, size_t *out_len);

#endif
