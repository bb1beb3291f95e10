/* gate: the start barrier (go only once every thread is filtered) and pause/resume/release. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "vm/gate.h"

#define NR 3

static struct gate g;
static atomic_int end;
static atomic_int started, stop_threads, parked_rounds, kicks;

static void setup(void)
{
    atomic_init(&end, 0);
    atomic_init(&started, 0);
    atomic_init(&stop_threads, 0);
    atomic_init(&parked_rounds, 0);
    atomic_init(&kicks, 0);
    gate_init(&g, &end);
}

static void teardown(void) { gate_destroy(&g); }

TestSuite(gate, .init = setup, .fini = teardown);

/* A stand-in vCPU: waits for go, then loops "running" and parks when asked. */
static void *vcpu(void *arg)
{
    (void)arg;
    if (gate_vcpu_ready(&g))
        return (void *)(intptr_t)-ECANCELED;
    atomic_fetch_add(&started, 1);
    while (!atomic_load(&stop_threads) && !atomic_load(&end)) {
        gate_park_if_paused(&g);
        atomic_fetch_add(&parked_rounds, 1);
        usleep(100);
    }
    return NULL;
}

static void kick(void *ctx)
{
    (void)ctx;
    atomic_fetch_add(&kicks, 1);
}

Test(gate, no_vcpu_runs_before_the_vmm_is_ready)
{
    pthread_t t[NR];
    gate_arm(&g, NR);
    for (int i = 0; i < NR; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, vcpu, NULL), 0);
    usleep(20000);
    cr_assert_eq(atomic_load(&started), 0, "waiting for the VMM thread's filter");
    gate_vmm_ready(&g);
    for (int i = 0; i < 1000 && atomic_load(&started) < NR; i++)
        usleep(1000);
    cr_assert_eq(atomic_load(&started), NR);

    gate_pause(&g, kick, NULL);
    cr_assert(gate_is_paused(&g));
    cr_assert_geq(atomic_load(&kicks), 1);
    int rounds = atomic_load(&parked_rounds);
    usleep(20000);
    cr_assert_eq(atomic_load(&parked_rounds), rounds, "every vCPU is parked");
    gate_resume(&g);
    cr_assert_not(gate_is_paused(&g));
    for (int i = 0; i < 1000 && atomic_load(&parked_rounds) == rounds; i++)
        usleep(1000);
    cr_assert_gt(atomic_load(&parked_rounds), rounds, "running again");

    atomic_store(&stop_threads, 1);
    for (int i = 0; i < NR; i++)
        pthread_join(t[i], NULL);
}

Test(gate, vmm_last_says_go_and_end_releases_waiters)
{
    pthread_t t[NR];
    gate_arm(&g, NR);
    for (int i = 0; i < NR; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, vcpu, NULL), 0);
    usleep(10000);
    /* The VM ends before go: every vCPU leaves without running, once woken. */
    atomic_store(&end, 1);
    gate_release_all(&g);
    for (int i = 0; i < NR; i++) {
        void *rc;
        pthread_join(t[i], &rc);
        cr_assert_eq((intptr_t)rc, -ECANCELED);
    }
    cr_assert_eq(atomic_load(&started), 0);
    gate_vmm_ready(&g); /* returns at once: the VM ended */
}

Test(gate, pause_rekicks_until_every_vcpu_parks)
{
    pthread_t t[NR];
    gate_arm(&g, NR);
    for (int i = 0; i < NR; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, vcpu, NULL), 0);
    gate_vmm_ready(&g);
    gate_pause(&g, kick, NULL);
    cr_assert_geq(atomic_load(&kicks), 1);
    /* Ending the VM wakes parked vCPUs (vm_stop's gate_release_all). */
    atomic_store(&end, 1);
    gate_release_all(&g);
    for (int i = 0; i < NR; i++)
        pthread_join(t[i], NULL);
    cr_assert_not(gate_is_paused(&g));
}
