#include "core/rate_limiter.h"

#include <errno.h>
#include <string.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

/* Shorter waits are rounded up: tokens gather meanwhile, so one wake-up serves several requests. */
#define MIN_WAIT_NS 1000000ULL

static uint64_t monotonic_ns(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static uint64_t now(const struct rate_limiter *rl) { return rl->now_ns(rl->clock_ctx); }

int rate_limiter_init(struct rate_limiter *rl, const struct rate_limiter_config *cfg)
{
    memset(rl, 0, sizeof(*rl));
    rl->now_ns = monotonic_ns;
    uint64_t t = now(rl);
    token_bucket_init(&rl->bandwidth, &cfg->bandwidth, t);
    token_bucket_init(&rl->ops, &cfg->ops, t);
    rl->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    return rl->timer_fd < 0 ? -errno : 0;
}

int rate_limiter_watch(struct rate_limiter *rl, struct event_loop *loop, evloop_cb cb, void *opaque)
{
    if (rl->loop || !loop || rl->timer_fd < 0)
        return 0;
    int rc = evloop_add(loop, rl->timer_fd, EPOLLIN, cb, opaque);
    if (!rc)
        rl->loop = loop;
    return rc;
}

void rate_limiter_destroy(struct rate_limiter *rl)
{
    if (rl->loop && rl->timer_fd >= 0)
        evloop_remove(rl->loop, rl->timer_fd);
    rl->loop = NULL;
    if (rl->timer_fd >= 0)
        close(rl->timer_fd);
    rl->timer_fd = -1;
}

void rate_limiter_set_clock(struct rate_limiter *rl, rate_limiter_clock_fn fn, void *ctx)
{
    rl->now_ns = fn;
    rl->clock_ctx = ctx;
    uint64_t t = now(rl);
    token_bucket_init(&rl->bandwidth, &rl->bandwidth.cfg, t);
    token_bucket_init(&rl->ops, &rl->ops.cfg, t);
}

bool rate_limiter_enabled(const struct rate_limiter *rl)
{
    return token_bucket_enabled(&rl->bandwidth) || token_bucket_enabled(&rl->ops);
}

static void arm(struct rate_limiter *rl, uint64_t wait_ns)
{
    if (wait_ns < MIN_WAIT_NS)
        wait_ns = MIN_WAIT_NS;
    struct itimerspec its = {
        .it_value = {.tv_sec = (time_t)(wait_ns / 1000000000ULL), .tv_nsec = (long)(wait_ns % 1000000000ULL)}};
    if (rl->timer_fd >= 0 && timerfd_settime(rl->timer_fd, 0, &its, NULL) == 0)
        rl->timer_armed = true;
}

bool rate_limiter_consume(struct rate_limiter *rl, uint64_t ops, uint64_t bytes)
{
    if (!rate_limiter_enabled(rl))
        return true;
    uint64_t t = now(rl), wait_bw = 0, wait_ops = 0;
    bool ok_bw = token_bucket_check(&rl->bandwidth, bytes, t, &wait_bw);
    bool ok_ops = token_bucket_check(&rl->ops, ops, t, &wait_ops);
    if (ok_bw && ok_ops) {
        token_bucket_take(&rl->bandwidth, bytes);
        token_bucket_take(&rl->ops, ops);
        return true;
    }
    rl->throttled++;
    arm(rl, wait_bw > wait_ops ? wait_bw : wait_ops);
    return false;
}

void rate_limiter_refund(struct rate_limiter *rl, uint64_t ops, uint64_t bytes)
{
    token_bucket_refund(&rl->bandwidth, bytes);
    token_bucket_refund(&rl->ops, ops);
}

void rate_limiter_config_update(struct rate_limiter_config *c, const struct rate_limiter_update *u)
{
    if (u->bandwidth_set)
        c->bandwidth = u->cfg.bandwidth;
    if (u->ops_set)
        c->ops = u->cfg.ops;
}

void rate_limiter_update(struct rate_limiter *rl, const struct rate_limiter_update *u)
{
    uint64_t t = now(rl);
    if (u->bandwidth_set)
        token_bucket_init(&rl->bandwidth, &u->cfg.bandwidth, t);
    if (u->ops_set)
        token_bucket_init(&rl->ops, &u->cfg.ops, t);
    struct itimerspec off = {0};
    if (rl->timer_fd >= 0)
        timerfd_settime(rl->timer_fd, 0, &off, NULL);
    rl->timer_armed = false;
}

void rate_limiter_timer_event(struct rate_limiter *rl)
{
    uint64_t expiries;
    if (rl->timer_fd >= 0 && read(rl->timer_fd, &expiries, sizeof(expiries)) == (ssize_t)sizeof(expiries))
        rl->wakeups++;
    rl->timer_armed = false;
}
