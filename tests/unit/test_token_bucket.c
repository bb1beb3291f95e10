/* The token bucket's arithmetic: refill, burst, oversized requests, overflow, disabled buckets. */
#include <criterion/criterion.h>
#include <stdint.h>

#include "core/token_bucket.h"

#define MS 1000000ULL
#define S 1000000000ULL

static struct token_bucket bucket(uint64_t size, uint64_t burst, uint64_t refill_ms)
{
    struct token_bucket b;
    struct token_bucket_config c = {.size = size, .one_time_burst = burst, .refill_time_ms = refill_ms};
    token_bucket_init(&b, &c, 0);
    return b;
}

/* Checks then takes; the wait when it could not. */
static bool take(struct token_bucket *b, uint64_t n, uint64_t now, uint64_t *wait)
{
    uint64_t w = 0;
    bool ok = token_bucket_check(b, n, now, &w);
    if (ok)
        token_bucket_take(b, n);
    if (wait)
        *wait = ok ? 0 : w;
    return ok;
}

Test(token_bucket, starts_full_then_refills_continuously)
{
    struct token_bucket b = bucket(1000, 0, 100); /* 1000 per 100 ms: 10 per ms */
    cr_assert(take(&b, 1000, 0, NULL));
    uint64_t w;
    cr_assert_not(take(&b, 1, 0, &w));
    cr_assert_eq(w, 100000, "one token takes 0.1 ms, got %lu ns", (unsigned long)w);
    cr_assert_not(take(&b, 50, 4 * MS, &w), "40 tokens after 4 ms");
    cr_assert_eq(w, 1 * MS);
    cr_assert(take(&b, 50, 5 * MS, NULL));
    cr_assert_eq(b.budget, 0);
    /* Never above size, however long it waits. */
    cr_assert(take(&b, 0, 1000 * S, NULL));
    cr_assert_eq(b.budget, 1000);
}

Test(token_bucket, fractions_carry_over)
{
    struct token_bucket b = bucket(3, 0, 1000); /* one token every 333.33 ms */
    cr_assert(take(&b, 3, 0, NULL));
    uint64_t got = 0;
    for (uint64_t t = 1; t <= 3000; t++) /* 1 ms steps: each earns 0.003 of a token */
        while (take(&b, 1, t * MS, NULL))
            got++;
    cr_assert_eq(got, 9, "3 per second for 3 s, got %lu", (unsigned long)got);
}

Test(token_bucket, one_time_burst_goes_first_and_never_refills)
{
    struct token_bucket b = bucket(100, 500, 1000);
    cr_assert(take(&b, 550, 0, NULL)); /* 500 burst + 50 budget */
    cr_assert_eq(b.burst, 0);
    cr_assert_eq(b.budget, 50);
    cr_assert(take(&b, 50, 0, NULL));
    cr_assert_not(take(&b, 1, 0, NULL));
    cr_assert(take(&b, 100, 10 * S, NULL));
    cr_assert_eq(b.burst, 0, "the burst does not come back");
}

Test(token_bucket, oversized_request_passes_on_a_full_bucket_and_pays_later)
{
    struct token_bucket b = bucket(100, 0, 1000); /* 100 per second */
    uint64_t w;
    cr_assert(take(&b, 350, 0, NULL), "larger than the bucket: passes when full");
    cr_assert_eq(b.debt, 250);
    cr_assert_not(take(&b, 10, 0, &w));
    cr_assert_eq(w, 2600 * MS, "250 debt + 10 at 100/s: 2.6 s, got %lu", (unsigned long)w);
    cr_assert_not(take(&b, 10, 2500 * MS, NULL));
    cr_assert(take(&b, 10, 2600 * MS, NULL));
    /* A second oversized one waits until the bucket is full again. */
    cr_assert_not(take(&b, 1000, 2600 * MS, &w));
    cr_assert_eq(w, 1000 * MS);
    cr_assert(take(&b, 1000, 3600 * MS, NULL));
}

Test(token_bucket, zero_size_or_zero_refill_is_unlimited)
{
    struct token_bucket a = bucket(0, 0, 100), b = bucket(100, 0, 0);
    cr_assert_not(token_bucket_enabled(&a));
    cr_assert_not(token_bucket_enabled(&b));
    for (int i = 0; i < 10; i++) {
        cr_assert(take(&a, UINT64_MAX, 0, NULL));
        cr_assert(take(&b, UINT64_MAX, 0, NULL));
    }
}

Test(token_bucket, huge_values_do_not_overflow)
{
    /* The largest sizes and times the API takes (int64), and beyond. */
    struct token_bucket b = bucket(INT64_MAX, INT64_MAX, INT64_MAX);
    cr_assert(take(&b, UINT64_MAX, 0, NULL)); /* burst + budget, the rest is debt */
    uint64_t w;
    cr_assert_not(take(&b, 1, 1, &w));
    cr_assert_geq(w, 1);
    struct token_bucket c = bucket(UINT64_MAX, 0, UINT64_MAX);
    cr_assert(take(&c, UINT64_MAX, 0, NULL));
    cr_assert_not(take(&c, UINT64_MAX, 0, &w));
    cr_assert_eq(w, (UINT64_MAX / MS) * MS, "a whole (capped) refill period, got %lu", (unsigned long)w);
    cr_assert(take(&c, UINT64_MAX, UINT64_MAX, NULL), "the longest wait ends");
    /* Fast refill of a huge bucket over a huge time: capped, not wrapped. */
    struct token_bucket d = bucket(UINT64_MAX, 0, 1);
    cr_assert(take(&d, UINT64_MAX, 0, NULL));
    cr_assert(take(&d, 0, UINT64_MAX, NULL));
    cr_assert_eq(d.budget, UINT64_MAX);
    /* Debt near the top: the wait saturates instead of wrapping. */
    struct token_bucket e = bucket(1, 0, UINT64_MAX);
    cr_assert(take(&e, UINT64_MAX, 0, NULL));
    cr_assert_not(take(&e, 1, 0, &w));
    cr_assert_eq(w, UINT64_MAX);
}

Test(token_bucket, clock_going_back_earns_nothing)
{
    struct token_bucket b = bucket(10, 0, 1000);
    cr_assert(take(&b, 10, 5 * S, NULL));
    cr_assert_not(take(&b, 1, 4 * S, NULL));
    cr_assert_eq(b.budget, 0);
}

Test(token_bucket, refund_pays_debt_first_and_caps_at_size)
{
    struct token_bucket b = bucket(100, 0, 1000);
    cr_assert(take(&b, 300, 0, NULL));
    cr_assert_eq(b.debt, 200);
    token_bucket_refund(&b, 250);
    cr_assert_eq(b.debt, 0);
    cr_assert_eq(b.budget, 50);
    token_bucket_refund(&b, 1000);
    cr_assert_eq(b.budget, 100);
}
