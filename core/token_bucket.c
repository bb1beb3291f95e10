#include "core/token_bucket.h"

__extension__ typedef unsigned __int128 u128;

#define NS_PER_MS 1000000ULL
/* A refill time is taken as at most this (584 years): the period in ns then fits 64 bits, and so does the math. */
#define MAX_REFILL_MS (UINT64_MAX / NS_PER_MS)

static const u128 U128_MAX = ~(u128)0;

static u128 mul_sat(u128 a, u128 b) { return a && b > U128_MAX / a ? U128_MAX : a * b; }

static uint64_t period_ns(const struct token_bucket *b)
{
    uint64_t ms = b->cfg.refill_time_ms < MAX_REFILL_MS ? b->cfg.refill_time_ms : MAX_REFILL_MS;
    return ms * NS_PER_MS;
}

bool token_bucket_enabled(const struct token_bucket *b) { return b->cfg.size && b->cfg.refill_time_ms; }

void token_bucket_init(struct token_bucket *b, const struct token_bucket_config *cfg, uint64_t now_ns)
{
    *b = (struct token_bucket){.cfg = *cfg, .budget = cfg->size, .burst = cfg->one_time_burst, .last_ns = now_ns};
}

/* Adds the tokens earned since last_ns: debt is repaid first, the budget stops at size. */
static void refill(struct token_bucket *b, uint64_t now_ns)
{
    if (now_ns <= b->last_ns)
        return; /* a clock that did not move (or went back) earns nothing */
    uint64_t elapsed = now_ns - b->last_ns, period = period_ns(b);
    b->last_ns = now_ns;
    /* elapsed * size / period without overflow: whole periods (saturating: then far more than needed), then the rest.
     */
    u128 tokens = mul_sat(elapsed / period, b->cfg.size);
    u128 acc = (u128)(elapsed % period) * b->cfg.size + b->remainder; /* < 2^128: both factors < 2^64 */
    tokens = tokens + acc / period < tokens ? U128_MAX : tokens + acc / period;
    b->remainder = (uint64_t)(acc % period);
    if (tokens >= b->debt) {
        tokens -= b->debt;
        b->debt = 0;
    } else {
        b->debt -= (uint64_t)tokens;
        return;
    }
    if (tokens >= b->cfg.size - b->budget) {
        b->budget = b->cfg.size;
        b->remainder = 0; /* full: nothing carries over */
    } else {
        b->budget += (uint64_t)tokens;
    }
}

/* The budget a request of n needs: what the burst does not cover, at most a whole bucket. */
static uint64_t budget_needed(const struct token_bucket *b, uint64_t n)
{
    uint64_t need = n > b->burst ? n - b->burst : 0;
    return need < b->cfg.size ? need : b->cfg.size;
}

bool token_bucket_check(struct token_bucket *b, uint64_t n, uint64_t now_ns, uint64_t *wait_ns)
{
    if (!token_bucket_enabled(b))
        return true;
    refill(b, now_ns);
    uint64_t need = budget_needed(b, n);
    if (!b->debt && b->budget >= need)
        return true;
    /* Tokens missing (debt first; with debt the budget is 0), at size per period. */
    u128 missing = (u128)b->debt + need - b->budget, size = b->cfg.size, period = period_ns(b);
    u128 whole = mul_sat(missing / size, period);
    u128 part = (missing % size) * period; /* < 2^128: both < 2^64 */
    part = part > b->remainder ? (part - b->remainder + size - 1) / size : 0;
    u128 wait = whole + part < whole ? U128_MAX : whole + part;
    *wait_ns = wait == 0 ? 1 : wait > UINT64_MAX ? UINT64_MAX : (uint64_t)wait;
    return false;
}

void token_bucket_take(struct token_bucket *b, uint64_t n)
{
    if (!token_bucket_enabled(b))
        return;
    uint64_t from_burst = n < b->burst ? n : b->burst;
    b->burst -= from_burst;
    n -= from_burst;
    if (n <= b->budget) {
        b->budget -= n;
    } else {
        /* Only an oversized request gets here (check allowed it on a full bucket): the rest is debt. */
        uint64_t over = n - b->budget;
        b->debt = over > UINT64_MAX - b->debt ? UINT64_MAX : b->debt + over;
        b->budget = 0;
    }
}

void token_bucket_refund(struct token_bucket *b, uint64_t n)
{
    if (!token_bucket_enabled(b))
        return;
    uint64_t d = n < b->debt ? n : b->debt;
    b->debt -= d;
    n -= d;
    b->budget = n >= b->cfg.size - b->budget ? b->cfg.size : b->budget + n;
}
