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
