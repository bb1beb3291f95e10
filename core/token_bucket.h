/*
 * A token bucket (Firecracker's model): `size` tokens that refill
 * continuously, `size` per `refill_time_ms`, starting full, plus a
 * `one_time_burst` of extra tokens that never refill and go first. A bucket
 * with size 0 or refill_time 0 limits nothing. Pure arithmetic: every call
 * takes the time (ns, any monotonic origin), so tests choose it.
 */
#ifndef EMBER_TOKEN_BUCKET_H
#define EMBER_TOKEN_BUCKET_H

#include <stdbool.h>
#include <stdint.h>

struct token_bucket_config {
    uint64_t size;
    uint64_t one_time_burst;
    uint64_t refill_time_ms;
};

struct token_bucket {
    struct token_bucket_config cfg;
    uint64_t budget;    /* refilling tokens available, <= size */
    uint64_t burst;     /* one-time burst tokens left */
    uint64_t debt;      /* tokens an oversized request took beyond the budget: repaid before budget grows */
    uint64_t last_ns;   /* refill computed up to here */
    uint64_t remainder; /* fraction of a token carried between refills, in units of 1/period_ns */
};

/* A full bucket as of now_ns. */
void token_bucket_init(struct token_bucket *b, const struct token_bucket_config *cfg, uint64_t now_ns);
bool token_bucket_enabled(const struct token_bucket *b);
/*
 * Whether n tokens can be taken now (refills first). If not, *wait_ns is how
 * long until they can (at least 1). A request larger than `size` passes once
 * the bucket is full, and leaves the excess as debt that refill pays first:
 * over time the rate is kept and nothing is refused for ever.
 */
bool token_bucket_check(struct token_bucket *b, uint64_t n, uint64_t now_ns, uint64_t *wait_ns);
/* Takes n tokens that token_bucket_check just allowed. */
void token_bucket_take(struct token_bucket *b, uint64_t n);
/* Gives back n tokens taken for work that did not happen (debt first, capped at size). */
void token_bucket_refund(struct token_bucket *b, uint64_t n);

#endif
