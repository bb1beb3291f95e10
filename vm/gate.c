#include "vm/gate.h"

#include <errno.h>
#include <time.h>

static int ended(const struct gate *g) { return atomic_load(g->end) != 0; }

void gate_init(struct gate *g, const atomic_int *end)
{
    pthread_mutex_init(&g->lock, NULL);
    pthread_cond_init(&g->cond, NULL);
    g->end = end;
    g->nr_vcpus = g->nr_ready = g->vmm_filtered = g->go = g->pause_requested = g->nr_paused = 0;
}

void gate_destroy(struct gate *g)
{
    pthread_mutex_destroy(&g->lock);
    pthread_cond_destroy(&g->cond);
}

void gate_arm(struct gate *g, int nr_vcpus)
{
    pthread_mutex_lock(&g->lock);
    g->nr_vcpus = nr_vcpus;
    g->nr_ready = g->vmm_filtered = g->go = 0;
    pthread_mutex_unlock(&g->lock);
}

/*
 * Whichever comes last, the VMM thread or a vCPU thread, says go: the common
 * single-vCPU start then needs no wake-up of the vCPU thread between its
 * filter and its first KVM_RUN.
 */
int gate_vcpu_ready(struct gate *g)
{
    pthread_mutex_lock(&g->lock);
    g->nr_ready++;
    if (g->nr_ready == g->nr_vcpus && g->vmm_filtered)
        g->go = 1;
    pthread_cond_broadcast(&g->cond);
    while (!g->go && !ended(g))
        pthread_cond_wait(&g->cond, &g->lock);
    pthread_mutex_unlock(&g->lock);
    return ended(g) ? -ECANCELED : 0;
}

void gate_vmm_ready(struct gate *g)
{
    pthread_mutex_lock(&g->lock);
    g->vmm_filtered = 1;
    if (g->nr_ready == g->nr_vcpus)
        g->go = 1;
    pthread_cond_broadcast(&g->cond);
    /* Answer only once every vCPU thread has its filter (or failed to). */
    while (g->nr_ready < g->nr_vcpus && !ended(g))
        pthread_cond_wait(&g->cond, &g->lock);
    pthread_mutex_unlock(&g->lock);
}

void gate_park_if_paused(struct gate *g)
{
    pthread_mutex_lock(&g->lock);
    if (g->pause_requested) {
        g->nr_paused++;
        pthread_cond_broadcast(&g->cond);
        while (g->pause_requested && !ended(g))
            pthread_cond_wait(&g->cond, &g->lock);
        g->nr_paused--;
    }
    pthread_mutex_unlock(&g->lock);
}

void gate_pause(struct gate *g, void (*kick)(void *ctx), void *ctx)
{
    pthread_mutex_lock(&g->lock);
    g->pause_requested = 1;
    pthread_mutex_unlock(&g->lock);
    kick(ctx);
    pthread_mutex_lock(&g->lock);
    while (g->nr_paused < g->nr_vcpus && !ended(g)) {
        /* A kick can land just before a vCPU re-enters KVM_RUN: repeat it. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 10 * 1000 * 1000;
        if (ts.tv_nsec >= 1000000000L)
            ts.tv_sec++, ts.tv_nsec -= 1000000000L;
        if (pthread_cond_timedwait(&g->cond, &g->lock, &ts) == ETIMEDOUT)
            kick(ctx);
    }
    pthread_mutex_unlock(&g->lock);
}

void gate_resume(struct gate *g) { gate_release_all(g); }

void gate_request_pause(struct gate *g)
{
    pthread_mutex_lock(&g->lock);
    g->pause_requested = 1;
    pthread_mutex_unlock(&g->lock);
}

int gate_is_paused(struct gate *g)
{
    pthread_mutex_lock(&g->lock);
    int paused = g->pause_requested;
    pthread_mutex_unlock(&g->lock);
    return paused;
}

void gate_release_all(struct gate *g)
{
    pthread_mutex_lock(&g->lock);
    g->pause_requested = 0;
    pthread_cond_broadcast(&g->cond);
    pthread_mutex_unlock(&g->lock);
}
