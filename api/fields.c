#include "api/fields.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int field_check_known(json_t *o, const char *const *allowed, struct errmsg *e)
{
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v)
    {
        int ok = 0;
        for (const char *const *a = allowed; *a; a++)
            ok |= strcmp(*a, key) == 0;
        if (!ok) {
            char list[512] = "";
            size_t pos = 0;
            for (const char *const *a = allowed; *a && pos < sizeof(list); a++)
                pos += (size_t)snprintf(list + pos, sizeof(list) - pos, "%s`%s`", a == allowed ? "" : ", ", *a);
            return err_set(e, -EINVAL, "unknown field `%s`, expected one of %s", key, list);
        }
    }
    return 0;
}

int field_str(json_t *o, const char *key, const char **out, struct errmsg *e)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return err_set(e, -EINVAL, "Invalid type for field `%s`: expected a string.", key);
    if (strlen(json_string_value(v)) != json_string_length(v))
        return err_set(e, -EINVAL, "Invalid value for field `%s`: contains a NUL character.", key);
    *out = json_string_value(v);
    return 1;
}

int field_bool(json_t *o, const char *key, bool *out, struct errmsg *e)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_boolean(v))
        return err_set(e, -EINVAL, "Invalid type for field `%s`: expected a boolean.", key);
    *out = json_is_true(v);
    return 1;
}

int field_uint(json_t *o, const char *key, uint64_t min, uint64_t max, uint64_t *out, struct errmsg *e)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v))
        return err_set(e, -EINVAL, "Invalid type for field `%s`: expected an unsigned integer.", key);
    json_int_t n = json_integer_value(v);
    if (n < 0 || (uint64_t)n < min || (uint64_t)n > max)
        return err_set(e, -EINVAL, "Invalid value for field `%s`: must be between %llu and %llu.", key,
                       (unsigned long long)min, (unsigned long long)max);
    *out = (uint64_t)n;
    return 1;
}

int field_require(int got, const char *key, struct errmsg *e)
{
    if (got < 0)
        return got;
    if (got == 0)
        return err_set(e, -EINVAL, "missing field `%s`", key);
    return 0;
}

int field_no_rate_limiter(json_t *o, const char *key, struct errmsg *e)
{
    json_t *v = json_object_get(o, key);
    if (v && !json_is_null(v))
        return err_set(e, -EINVAL, "Invalid value for field `%s`: rate limiting is not implemented by Ember.", key);
    return 0;
}

/* One TokenBucket object: 1 if present, 0 if absent or null, negative with a message. */
static int token_bucket_field(json_t *rl, const char *outer, const char *key, struct token_bucket_config *out,
                              struct errmsg *e)
{
    static const char *const keys[] = {"size", "one_time_burst", "refill_time", NULL};
    json_t *v = json_object_get(rl, key);
    if (!v || json_is_null(v))
        return 0;
    struct errmsg inner;
    int rc = 0;
    if (!json_is_object(v))
        rc = err_set(&inner, -EINVAL, "expected a TokenBucket object {size, refill_time, one_time_burst}.");
    if (!rc)
        rc = field_check_known(v, keys, &inner);
    if (!rc)
        rc = field_require(field_uint(v, "size", 0, INT64_MAX, &out->size, &inner), "size", &inner);
    if (!rc)
        rc = field_require(field_uint(v, "refill_time", 0, INT64_MAX, &out->refill_time_ms, &inner), "refill_time",
                           &inner);
    if (!rc && field_uint(v, "one_time_burst", 0, INT64_MAX, &out->one_time_burst, &inner) < 0)
        rc = -EINVAL;
    return rc ? err_set(e, rc, "Invalid value for field `%s.%s`: %s", outer, key, inner.text) : 1;
}

int field_rate_limiter(json_t *o, const char *key, struct rate_limiter_update *out, struct errmsg *e)
{
    static const char *const keys[] = {"bandwidth", "ops", NULL};
    *out = (struct rate_limiter_update){0};
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_object(v))
        return err_set(e, -EINVAL, "Invalid type for field `%s`: expected a RateLimiter object {bandwidth, ops}.", key);
    struct errmsg inner;
    if (field_check_known(v, keys, &inner))
        return err_set(e, -EINVAL, "Invalid value for field `%s`: %s", key, inner.text);
    int bw = token_bucket_field(v, key, "bandwidth", &out->cfg.bandwidth, e);
    if (bw < 0)
        return bw;
    int ops = token_bucket_field(v, key, "ops", &out->cfg.ops, e);
    if (ops < 0)
        return ops;
    out->bandwidth_set = bw > 0;
    out->ops_set = ops > 0;
    return 1;
}

static void bucket_to_json(json_t *o, const char *key, const struct token_bucket_config *b)
{
    if (b->size && b->refill_time_ms)
        json_object_set_new(o, key,
                            json_pack("{s:I,s:I,s:I}", "size", (json_int_t)b->size, "one_time_burst",
                                      (json_int_t)b->one_time_burst, "refill_time", (json_int_t)b->refill_time_ms));
}

json_t *rate_limiter_to_json(const struct rate_limiter_config *c)
{
    json_t *o = json_object();
    bucket_to_json(o, "bandwidth", &c->bandwidth);
    bucket_to_json(o, "ops", &c->ops);
    if (json_object_size(o) == 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}
