/*
 * Reading a JSON request object field by field, with Firecracker's (serde's)
 * error texts: unknown fields, wrong types, ranges, missing fields.
 */
#ifndef EMBER_API_FIELDS_H
#define EMBER_API_FIELDS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/errmsg.h"
#include "core/rate_limiter.h"

/* Rejects any key not in `allowed` (NULL-terminated), as serde's deny_unknown_fields does. */
int field_check_known(json_t *o, const char *const *allowed, struct errmsg *e);
/* Each getter: 1 if present, 0 if absent or null (*out untouched), negative on a type/range error. */
int field_str(json_t *o, const char *key, const char **out, struct errmsg *e);
int field_bool(json_t *o, const char *key, bool *out, struct errmsg *e);
int field_uint(json_t *o, const char *key, uint64_t min, uint64_t max, uint64_t *out, struct errmsg *e);
/* For a getter's result: a required field that is absent is "missing field `key`". */
int field_require(int got, const char *key, struct errmsg *e);
/* A rate limiter Ember does not implement: only absent or null is accepted. */
int field_no_rate_limiter(json_t *o, const char *key, struct errmsg *e);
/*
 * A RateLimiter object {bandwidth, ops}, each a TokenBucket {size, refill_time, one_time_burst} (int64 >= 0, the
 * first two required). *out says which buckets were named (a PUT takes out->cfg as is: unnamed buckets are off).
 * 1 if present, 0 if absent or null (*out zeroed), negative with a message naming the field otherwise.
 */
int field_rate_limiter(json_t *o, const char *key, struct rate_limiter_update *out, struct errmsg *e);
/* A configured limiter as GET /vm/config shows it (only its enabled buckets), or NULL when it limits nothing. */
json_t *rate_limiter_to_json(const struct rate_limiter_config *c);

#endif
