/*
 * A rate limiter (Firecracker's model): two token buckets, bandwidth (bytes)
 * and ops (requests), either of which may be off. A device asks before each
 * request; when a bucket is empty it leaves the request where it is (in the
 * guest's ring) and watches the limiter's timerfd, which becomes readable
 * once enough tokens are back. Nothing is ever refused for good: a request
 * larger than a bucket passes when the bucket is full and its excess is
 * paid back before the next one (see token_bucket.h).
 */
#ifndef EMBER_RATE_LIMITER_H
#define EMBER_RATE_LIMITER_H

#include <stdbool.h>
#include <stdint.h>

#include "core/event_loop.h"
#include "core/token_bucket.h"

struct rate_limiter_config {
    struct token_bucket_config bandwidth; /* tokens are bytes */
    struct token_bucket_config ops;       /* tokens are requests */
};

/* What a PATCH changes: only the buckets it names (a named bucket of size 0 or refill_time 0 turns it off). */
struct rate_limiter_update {
    bool bandwidth_set, ops_set;
    struct rate_limiter_config cfg;
};

typedef uint64_t (*rate_limiter_clock_fn)(void *ctx);

struct rate_limiter {
    struct token_bucket bandwidth, ops;
    int timer_fd;            /* readable when the limiter may let requests through again; -1 before init */
    struct event_loop *loop; /* where timer_fd is watched (rate_limiter_watch), or NULL */
    bool timer_armed;
    rate_limiter_clock_fn now_ns;
    void *clock_ctx;
    uint64_t throttled; /* requests held back because a bucket was empty */
    uint64_t wakeups;   /* timer expiries (Firecracker's rate_limiter_event_count) */
};

/* Both buckets full, the timerfd made (non-blocking); 0 or -errno. */
int rate_limiter_init(struct rate_limiter *rl, const struct rate_limiter_config *cfg);
/* Stops watching and closes the timerfd. */
void rate_limiter_destroy(struct rate_limiter *rl);
/* Tests: the time the buckets see (ns); the buckets restart full at that clock's now. */
void rate_limiter_set_clock(struct rate_limiter *rl, rate_limiter_clock_fn fn, void *ctx);
bool rate_limiter_enabled(const struct rate_limiter *rl);
/*
 * Takes `ops` operations and `bytes` bytes from both buckets, or from none:
 * false when either lacks them (counted as throttled), with the timer armed
 * for when they will be there.
 */
bool rate_limiter_consume(struct rate_limiter *rl, uint64_t ops, uint64_t bytes);
/* Gives back what a consume took for a request that did not go ahead after all. */
void rate_limiter_refund(struct rate_limiter *rl, uint64_t ops, uint64_t bytes);
/* Replaces the buckets an update names with new full ones, and disarms the timer (the caller retries at once). */
void rate_limiter_update(struct rate_limiter *rl, const struct rate_limiter_update *u);
/* The same update on a stored configuration (what GET /vm/config shows). */
void rate_limiter_config_update(struct rate_limiter_config *c, const struct rate_limiter_update *u);
/* The device's timerfd callback: reads the expiry and disarms; the caller then serves its queue again. */
void rate_limiter_timer_event(struct rate_limiter *rl);
/* Watches the timerfd on loop with cb (once; again is a no-op); 0 or -errno. */
int rate_limiter_watch(struct rate_limiter *rl, struct event_loop *loop, evloop_cb cb, void *opaque);
static inline int rate_limiter_fd(const struct rate_limiter *rl) { return rl->timer_fd; }

#endif
