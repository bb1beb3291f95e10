#include "devices/mmds/store.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

struct mmds_token {
    uint8_t value[MMDS_TOKEN_BYTES];
    uint64_t expires_ns; /* 0: free slot */
};

struct mmds_store {
    pthread_mutex_t lock;
    json_t *data; /* NULL until the first PUT */
    uint64_t limit;
    struct mmds_settings settings;
    struct mmds_token tokens[MMDS_MAX_TOKENS];
    _Atomic uint64_t metrics[MMDS_METRICS_COUNT];
};

const char *const mmds_metric_names[MMDS_METRICS_COUNT] = {
    "rx_accepted",
    "rx_accepted_err",
    "rx_accepted_unusual",
    "rx_bad_eth",
    "rx_count",
    "tx_bytes",
    "tx_count",
    "tx_errors",
    "tx_frames",
    "connections_created",
    "connections_destroyed",
};

void mmds_store_count(struct mmds_store *s, enum mmds_metric which, uint64_t n)
{
    atomic_fetch_add_explicit(&s->metrics[which], n, memory_order_relaxed);
}

void mmds_store_metrics(struct mmds_store *s, uint64_t out[MMDS_METRICS_COUNT])
{
    for (int i = 0; i < MMDS_METRICS_COUNT; i++)
        out[i] = atomic_load_explicit(&s->metrics[i], memory_order_relaxed);
}

int mmds_store_new(struct mmds_store **out, uint64_t size_limit)
{
    struct mmds_store *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    pthread_mutex_init(&s->lock, NULL);
    s->limit = size_limit ? size_limit : MMDS_DEFAULT_SIZE_LIMIT;
    s->settings = (struct mmds_settings){.version = MMDS_V1, .ipv4 = MMDS_DEFAULT_IPV4};
    *out = s;
    return 0;
}

void mmds_store_free(struct mmds_store *s)
{
    if (!s)
        return;
    json_decref(s->data);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

void mmds_store_set_limit(struct mmds_store *s, uint64_t size_limit)
{
    pthread_mutex_lock(&s->lock);
    s->limit = size_limit ? size_limit : MMDS_DEFAULT_SIZE_LIMIT;
    pthread_mutex_unlock(&s->lock);
}

void mmds_store_configure(struct mmds_store *s, const struct mmds_settings *set)
{
    pthread_mutex_lock(&s->lock);
    s->settings = *set;
    pthread_mutex_unlock(&s->lock);
}

struct mmds_settings mmds_store_settings(struct mmds_store *s)
{
    pthread_mutex_lock(&s->lock);
    struct mmds_settings set = s->settings;
    pthread_mutex_unlock(&s->lock);
    return set;
}

size_t mmds_json_size(const json_t *v) { return json_dumpb(v, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY); }

static int over_limit(struct errmsg *err, size_t size, uint64_t limit)
{
    return err_set(err, -EFBIG, "The MMDS data store would be %zu bytes, over its limit of %llu bytes.", size,
                   (unsigned long long)limit);
}

int mmds_store_put(struct mmds_store *s, json_t *data, struct errmsg *err)
{
    size_t size = mmds_json_size(data);
    pthread_mutex_lock(&s->lock);
    int rc = 0;
    if (size > s->limit) {
        rc = over_limit(err, size, s->limit);
    } else {
        json_decref(s->data);
        s->data = json_incref(data);
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

int mmds_store_patch(struct mmds_store *s, const json_t *patch, struct errmsg *err)
{
    pthread_mutex_lock(&s->lock);
    int rc = 0;
    if (!s->data) {
        rc = err_set(err, -ENODATA, "The MMDS data store is not initialized: PUT /mmds before PATCH /mmds.");
        goto out;
    }
    json_t *copy = json_deep_copy(s->data);
    json_t *patched = copy ? mmds_merge_patch(copy, patch) : NULL;
    if (!patched) {
        rc = err_set(err, -ENOMEM, "out of memory");
        goto out;
    }
    size_t size = mmds_json_size(patched);
    if (size > s->limit) {
        json_decref(patched);
        rc = over_limit(err, size, s->limit);
        goto out;
    }
    json_decref(s->data);
    s->data = patched;
out:
    pthread_mutex_unlock(&s->lock);
    return rc;
}

json_t *mmds_store_get(struct mmds_store *s)
{
    pthread_mutex_lock(&s->lock);
    json_t *copy = s->data ? json_deep_copy(s->data) : json_object();
    pthread_mutex_unlock(&s->lock);
    return copy;
}

int mmds_store_render(struct mmds_store *s, const char *path, bool as_json, char **out, size_t *len)
{
    pthread_mutex_lock(&s->lock);
    json_t *null = json_null();
    int rc = mmds_render(s->data ? s->data : null, path, as_json, out, len);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* ---- tokens ---- */

static void hex(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static int unhex(const char *in, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < 2 * n; i++) {
        char c = in[i];
        int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (v < 0)
            return -EINVAL;
        out[i / 2] = (uint8_t)(i % 2 ? (out[i / 2] << 4) | v : v);
    }
    return in[2 * n] == '\0' ? 0 : -EINVAL;
}

int mmds_store_new_token(struct mmds_store *s, uint64_t ttl_s, uint64_t now_ns, char out[MMDS_TOKEN_CHARS + 1])
{
    if (ttl_s < MMDS_TOKEN_TTL_MIN || ttl_s > MMDS_TOKEN_TTL_MAX)
        return -ERANGE;
    uint8_t value[MMDS_TOKEN_BYTES];
    /* 128 random bits: a token cannot be guessed, only handed out. */
    if (getrandom(value, sizeof(value), 0) != (ssize_t)sizeof(value))
        return -EIO;
    pthread_mutex_lock(&s->lock);
    /* A free or expired slot, else the token closest to its end (the table is bounded whatever the guest asks). */
    struct mmds_token *slot = &s->tokens[0];
    for (unsigned i = 0; i < MMDS_MAX_TOKENS; i++) {
        struct mmds_token *t = &s->tokens[i];
        if (t->expires_ns <= now_ns) {
            slot = t;
            break;
        }
        if (t->expires_ns < slot->expires_ns)
            slot = t;
    }
    memcpy(slot->value, value, sizeof(value));
    slot->expires_ns = now_ns + ttl_s * 1000000000ull;
    pthread_mutex_unlock(&s->lock);
    hex(value, sizeof(value), out);
    return 0;
}

bool mmds_store_token_valid(struct mmds_store *s, const char *token, uint64_t now_ns)
{
    uint8_t value[MMDS_TOKEN_BYTES];
    if (!token || strnlen(token, MMDS_TOKEN_CHARS + 1) != MMDS_TOKEN_CHARS || unhex(token, value, sizeof(value)))
        return false;
    bool valid = false;
    pthread_mutex_lock(&s->lock);
    for (unsigned i = 0; i < MMDS_MAX_TOKENS; i++) {
        const struct mmds_token *t = &s->tokens[i];
        uint8_t diff = 0; /* compare every byte: the time taken says nothing of the value */
        for (unsigned k = 0; k < MMDS_TOKEN_BYTES; k++)
            diff |= (uint8_t)(t->value[k] ^ value[k]);
        if (!diff && t->expires_ns > now_ns)
            valid = true;
    }
    pthread_mutex_unlock(&s->lock);
    return valid;
}

/* ---- pure functions ---- */

json_t *mmds_merge_patch(json_t *target, const json_t *patch)
{
    if (!json_is_object(patch)) {
        json_decref(target);
        return json_deep_copy(patch);
    }
    if (!json_is_object(target)) {
        json_decref(target);
        target = json_object();
        if (!target)
            return NULL;
    }
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)patch, key, value)
    {
        if (json_is_null(value)) {
            json_object_del(target, key);
            continue;
        }
        json_t *old = json_object_get(target, key);
        json_t *merged = mmds_merge_patch(json_incref(old), value);
        if (!merged || json_object_set_new(target, key, merged)) {
            json_decref(target);
            return NULL;
        }
    }
    return target;
}

/* Decodes one pointer segment [seg, seg+n) ("~1" is '/', "~0" is '~') into buf; -ENOENT if malformed. */
static int segment(const char *seg, size_t n, char *buf)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (seg[i] != '~') {
            buf[o++] = seg[i];
            continue;
        }
        if (i + 1 >= n || (seg[i + 1] != '0' && seg[i + 1] != '1'))
            return -ENOENT;
        buf[o++] = seg[++i] == '0' ? '~' : '/';
    }
    buf[o] = '\0';
    return 0;
}

static const json_t *walk(const json_t *v, const char *path)
{
    size_t plen = strlen(path);
    char *buf = malloc(plen + 1);
    if (!buf)
        return NULL;
    const char *p = path;
    while (v && *p) {
        while (*p == '/')
            p++;
        if (!*p)
            break; /* trailing '/' */
        const char *end = strchr(p, '/');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (segment(p, n, buf)) {
            v = NULL;
            break;
        }
        if (json_is_object(v)) {
            v = json_object_get(v, buf);
        } else if (json_is_array(v)) {
            /* Digits only, no leading zero (JSON pointer), within the array. */
            char *e;
            unsigned long idx = strtoul(buf, &e, 10);
            bool ok = buf[0] >= '0' && buf[0] <= '9' && !*e && (buf[0] != '0' || !buf[1]) && n < 10;
            v = ok ? json_array_get(v, idx) : NULL;
        } else {
            v = NULL;
        }
        p += n;
    }
    free(buf);
    return v;
}

static int cmp_keys(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

static int imds_object(const json_t *o, char **out, size_t *len)
{
    size_t n = json_object_size(o), total = 1, i = 0;
    const char **keys = calloc(n ? n : 1, sizeof(*keys));
    if (!keys)
        return -ENOMEM;
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)o, key, value)
    {
        keys[i++] = key;
        total += strlen(key) + 2; /* '/' and '\n' */
    }
    qsort(keys, n, sizeof(*keys), cmp_keys);
    char *text = malloc(total), *w = text;
    if (!text) {
        free(keys);
        return -ENOMEM;
    }
    for (i = 0; i < n; i++) {
        size_t kl = strlen(keys[i]);
        if (i)
            *w++ = '\n';
        memcpy(w, keys[i], kl);
        w += kl;
        if (json_is_object(json_object_get(o, keys[i])))
            *w++ = '/';
    }
    *w = '\0';
    free(keys);
    *out = text;
    *len = (size_t)(w - text);
    return 0;
}

int mmds_render(const json_t *root, const char *path, bool as_json, char **out, size_t *len)
{
    const json_t *v = walk(root, path);
    if (!v)
        return -ENOENT;
    if (as_json) {
        *out = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        if (!*out)
            return -ENOMEM;
        *len = strlen(*out);
        return 0;
    }
    if (json_is_object(v))
        return imds_object(v, out, len);
    if (!json_is_string(v))
        return -ENOTSUP;
    *len = json_string_length(v);
    *out = malloc(*len + 1);
    if (!*out)
        return -ENOMEM;
    memcpy(*out, json_string_value(v), *len);
    (*out)[*len] = '\0';
    return 0;
}
