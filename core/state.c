#include "core/state.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/le.h"

void state_writer_init(struct state_writer *w) { memset(w, 0, sizeof(*w)); }

void state_writer_free(struct state_writer *w)
{
    free(w->buf);
    memset(w, 0, sizeof(*w));
}

/* Room for n more bytes; NULL (and the sticky error) when there is none. */
static uint8_t *reserve(struct state_writer *w, size_t n)
{
    if (w->err)
        return NULL;
    if (n > w->cap - w->len) {
        size_t cap = w->cap ? w->cap : 256;
        while (cap - w->len < n) {
            if (cap > SIZE_MAX / 2) {
                w->err = -ENOMEM;
                return NULL;
            }
            cap *= 2;
        }
        uint8_t *p = realloc(w->buf, cap);
        if (!p) {
            w->err = -ENOMEM;
            return NULL;
        }
        w->buf = p, w->cap = cap;
    }
    uint8_t *at = w->buf + w->len;
    w->len += n;
    return at;
}

void state_put_u8(struct state_writer *w, uint8_t v)
{
    uint8_t *p = reserve(w, 1);
    if (p)
        *p = v;
}

void state_put_u16(struct state_writer *w, uint16_t v)
{
    uint8_t *p = reserve(w, 2);
    if (p)
        le_st16(p, v);
}

void state_put_u32(struct state_writer *w, uint32_t v)
{
    uint8_t *p = reserve(w, 4);
    if (p)
        le_st32(p, v);
}

void state_put_u64(struct state_writer *w, uint64_t v)
{
    uint8_t *p = reserve(w, 8);
    if (p)
        le_st64(p, v);
}

void state_put_bytes(struct state_writer *w, const void *src, size_t n)
{
    uint8_t *p = reserve(w, n);
    if (p && n)
        memcpy(p, src, n);
}

/* Section layout: u8 name length, name, u32 version, u32 body length, body. */
size_t state_begin(struct state_writer *w, const char *name, uint32_t version)
{
    size_t n = strlen(name);
    if (n > 255)
        n = 255;
    state_put_u8(w, (uint8_t)n);
    state_put_bytes(w, name, n);
    state_put_u32(w, version);
    state_put_u32(w, 0); /* body length, patched by state_end */
    return w->len;
}

int state_end(struct state_writer *w, size_t mark)
{
    if (w->err)
        return w->err;
    if (mark < 4 || mark > w->len || w->len - mark > UINT32_MAX)
        return w->err = -EINVAL;
    le_st32(w->buf + mark - 4, (uint32_t)(w->len - mark));
    return 0;
}

void state_reader_init(struct state_reader *r, const void *buf, size_t len)
{
    r->buf = buf;
    r->len = buf ? len : 0;
    r->pos = 0;
    r->err = 0;
}

/* The next n bytes, or NULL (and the sticky error) when the image is shorter. */
static const uint8_t *take(struct state_reader *r, size_t n)
{
    if (r->err || n > r->len - r->pos) {
        r->err = -EINVAL;
        return NULL;
    }
    const uint8_t *p = r->buf + r->pos;
    r->pos += n;
    return p;
}

uint8_t state_get_u8(struct state_reader *r)
{
    const uint8_t *p = take(r, 1);
    return p ? *p : 0;
}

uint16_t state_get_u16(struct state_reader *r)
{
    const uint8_t *p = take(r, 2);
    return p ? le_ld16(p) : 0;
}

uint32_t state_get_u32(struct state_reader *r)
{
    const uint8_t *p = take(r, 4);
    return p ? le_ld32(p) : 0;
}

uint64_t state_get_u64(struct state_reader *r)
{
    const uint8_t *p = take(r, 8);
    return p ? le_ld64(p) : 0;
}

void state_get_bytes(struct state_reader *r, void *dst, size_t n)
{
    const uint8_t *p = take(r, n);
    if (p && n)
        memcpy(dst, p, n);
    else if (n)
        memset(dst, 0, n);
}

int state_open(struct state_reader *r, const char *name, uint32_t max_version, uint32_t *version,
               struct state_reader *body, struct errmsg *err)
{
    state_reader_init(body, NULL, 0);
    size_t n = state_get_u8(r);
    const uint8_t *got = take(r, n);
    uint32_t v = state_get_u32(r);
    uint32_t len = state_get_u32(r);
    if (r->err)
        return err_set(err, -EINVAL, "%s state: the image is truncated (no complete section header)", name);
    if (n != strlen(name) || memcmp(got, name, n) != 0)
        return err_set(err, -EINVAL, "%s state: the image holds the state of '%.*s' instead", name, (int)n,
                       (const char *)got);
    if (v < 1 || v > max_version)
        return err_set(err, -EINVAL, "%s state: format version %u is not one this Ember reads (1 to %u)", name, v,
                       max_version);
    const uint8_t *p = take(r, len);
    if (!p)
        return err_set(err, -EINVAL, "%s state: the image is truncated (%u body bytes announced, %zu present)", name,
                       len, r->len - r->pos);
    *version = v;
    state_reader_init(body, p, len);
    return 0;
}

int state_close(const struct state_reader *body, const char *name, struct errmsg *err)
{
    if (body->err)
        return err_set(err, -EINVAL, "%s state: the image is truncated", name);
    if (body->pos != body->len)
        return err_set(err, -EINVAL, "%s state: %zu unexpected bytes after its fields", name, body->len - body->pos);
    return 0;
}
