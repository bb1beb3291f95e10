/*
 * Shared checks of a device's save/restore hooks (core/state.h): a round trip
 * into a fresh instance gives the identical image, and truncated, garbled or
 * wrong-version images are refused with a message, the device unchanged.
 */
#ifndef EMBER_TEST_STATE_CHECK_H
#define EMBER_TEST_STATE_CHECK_H

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "core/state.h"

struct state_hooks {
    int (*save)(void *dev, struct state_writer *w);
    int (*restore)(void *dev, struct state_reader *r, struct errmsg *err);
};

/* The device's image (caller frees). */
static inline uint8_t *state_check_save(const struct state_hooks *h, void *dev, size_t *len)
{
    struct state_writer w;
    state_writer_init(&w);
    cr_assert_eq(h->save(dev, &w), 0);
    cr_assert_gt(w.len, 0);
    *len = w.len;
    return w.buf;
}

/* Saves `from`, restores into `to`, saves `to`: the images must be byte-identical. */
static inline void state_check_round_trip(const struct state_hooks *h, void *from, void *to)
{
    size_t n1, n2;
    uint8_t *b1 = state_check_save(h, from, &n1);
    struct state_reader r;
    struct errmsg err = {{0}};
    state_reader_init(&r, b1, n1);
    cr_assert_eq(h->restore(to, &r, &err), 0, "restore: %s", err.text);
    cr_assert_eq(r.pos, n1, "the whole image was consumed");
    uint8_t *b2 = state_check_save(h, to, &n2);
    cr_assert_eq(n1, n2);
    cr_assert_eq(memcmp(b1, b2, n1), 0, "save -> restore -> save is byte-identical");
    free(b1);
    free(b2);
}

static inline void state_check_refused(const struct state_hooks *h, void *dev, const uint8_t *img, size_t len,
                                       const char *what)
{
    size_t before_len, after_len;
    uint8_t *before = state_check_save(h, dev, &before_len);
    struct state_reader r;
    struct errmsg err = {{0}};
    state_reader_init(&r, img, len);
    int rc = h->restore(dev, &r, &err);
    cr_assert_lt(rc, 0, "%s: refused", what);
    cr_assert_neq(err.text[0], '\0', "%s: with a message", what);
    uint8_t *after = state_check_save(h, dev, &after_len);
    cr_assert(before_len == after_len && memcmp(before, after, before_len) == 0, "%s: device unchanged", what);
    free(before);
    free(after);
}

/*
 * Every truncation of `good`, a wrong name, a wrong and a zero version, a
 * longer body, and the caller's garbled bytes (offset, value) are refused.
 */
static inline void state_check_bad_images(const struct state_hooks *h, void *dev, const uint8_t *good, size_t len,
                                          const size_t *garble_at, const uint8_t *garble_val, unsigned nr_garble)
{
    for (size_t cut = 0; cut < len; cut++)
        state_check_refused(h, dev, good, cut, "truncated");
    uint8_t *bad = malloc(len + 1);
    cr_assert_not_null(bad);
    size_t name_len = good[0];
    size_t version_at = 1 + name_len, body_len_at = version_at + 4;

    memcpy(bad, good, len);
    bad[1] ^= 0x20; /* another name */
    state_check_refused(h, dev, bad, len, "wrong name");

    memcpy(bad, good, len);
    bad[version_at] = 2;
    state_check_refused(h, dev, bad, len, "newer version");
    bad[version_at] = 0;
    state_check_refused(h, dev, bad, len, "version 0");

    memcpy(bad, good, len);
    bad[len] = 0;
    bad[body_len_at]++; /* one byte more in the body than the device reads */
    state_check_refused(h, dev, bad, len + 1, "longer body");

    for (unsigned i = 0; i < nr_garble; i++) {
        memcpy(bad, good, len);
        cr_assert_lt(garble_at[i], len);
        bad[garble_at[i]] = garble_val[i];
        state_check_refused(h, dev, bad, len, "garbled field");
    }
    free(bad);
}

#endif
