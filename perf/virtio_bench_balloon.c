/*
 * virtio-bench --balloon: how fast the balloon gives guest memory back to the host.
 *
 * Touches BALLOON_MIB of the (anonymous) guest memory so it is resident, then
 * plays Linux's balloon driver: one inflate buffer of 256 page numbers at a
 * time, kick, wait for it to be used (virtballoon's tell_host). The figure is
 * MiB/s of guest memory discarded; beside it the process's RSS after the
 * touch and after the inflate, so a discard that did not free anything shows.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/event_loop.h"
#include "devices/virtio/balloon.h"
#include "devices/virtio/mmio.h"
#include "devices/virtio/mmio_regs.h"
#include "devices/virtio/virtio.h"
#include "perf/virtio_bench.h"

#define INFLATE_RING_GPA 0x10000ULL
#define DEFLATE_RING_GPA 0x14000ULL
#define PFN_ARRAY_GPA 0x100000ULL
#define BALLOON_FIRST_GPA (8ULL << 20)
#define BALLOON_MIB 48ULL

/* Resident set of this process in MiB (/proc/self/statm, second field). */
static double rss_mib(void)
{
    char line[128] = "";
    FILE *f = fopen("/proc/self/statm", "r");
    int why = f ? EIO : errno;
    if (f) {
        if (!fgets(line, sizeof(line), f))
            line[0] = 0;
        fclose(f);
    }
    if (!line[0])
        die("/proc/self/statm", why);
    char *end;
    strtoul(line, &end, 10); /* total size: skipped */
    unsigned long resident = strtoul(end, NULL, 10);
    return (double)resident * (double)sysconf(_SC_PAGESIZE) / (1 << 20);
}

static void touch_guest(void)
{
    uint8_t *p = gpa_ptr(BALLOON_FIRST_GPA, BALLOON_MIB << 20);
    for (uint64_t off = 0; off < BALLOON_MIB << 20; off += GUEST_PAGE_SIZE)
        p[off] = (uint8_t)(off >> 12 | 1);
}

/* One round on a fresh device: returns the seconds the inflate took; RSS before/after through the pointers. */
static double inflate_round(struct result *r, double *rss_touched, double *rss_after)
{
    struct event_loop loop;
    struct virtio_mmio m;
    struct virtio_balloon *b;
    struct errmsg err = {{0}};
    struct balloon_config cfg = {.amount_mib = (uint32_t)BALLOON_MIB};
    if (evloop_init(&loop))
        die("epoll", errno);
    if (virtio_balloon_create(&b, &cfg, &err)) {
        fprintf(stderr, "virtio-bench: %s\n", err.text);
        exit(1);
    }
    virtio_mmio_init(&m, "bench-balloon", &virtio_balloon_ops, b, &gm, &loop, -1, 0xd0000000ULL, 5,
                     (struct irq_line){irq_set, NULL, 5});
    struct drv q[2];
    drv_init(&q[0], &m, BALLOON_Q_INFLATE, INFLATE_RING_GPA);
    drv_init(&q[1], &m, BALLOON_Q_DEFLATE, DEFLATE_RING_GPA);
    transport_up(&m, BIT64(VIRTIO_F_VERSION_1), q, 2);

    uint64_t pages = (BALLOON_MIB << 20) / GUEST_PAGE_SIZE;
    uint32_t *pfns = gpa_ptr(PFN_ARRAY_GPA, pages * 4);
    for (uint64_t i = 0; i < pages; i++)
        pfns[i] = (uint32_t)((BALLOON_FIRST_GPA >> 12) + i);
    touch_guest();
    *rss_touched = rss_mib();
    double c0 = cpu_now(), t0 = now();
    for (uint64_t first = 0; first < pages; first += BALLOON_MAX_PFNS_PER_REQUEST) {
        uint64_t n = pages - first < BALLOON_MAX_PFNS_PER_REQUEST ? pages - first : BALLOON_MAX_PFNS_PER_REQUEST;
        drv_desc(&q[0], 0, PFN_ARRAY_GPA + 4 * first, (uint32_t)(4 * n), 0, 0);
        drv_add(&q[0], 0);
        drv_kick(&q[0]);
        uint32_t id, len;
        while (!drv_used(&q[0], &id, &len)) {
            drv_enable_cb(&q[0]);
            evloop_run_once(&loop, 1000);
            check_device(&m);
            mmio_w(&m, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_INT_USED_RING | VIRTIO_INT_CONFIG);
        }
        r->ops++;
    }
    double secs = now() - t0;
    r->cpu += cpu_now() - c0;
    *rss_after = rss_mib();
    struct balloon_counters c = virtio_balloon_counters(b);
    r->bytes += c.pages_inflated * GUEST_PAGE_SIZE;
    r->errors += c.discard_fails + c.hostile_pfns + (c.pages_inflated != pages);
    r->kicks += q[0].kicks;

    mmio_w(&m, VIRTIO_MMIO_STATUS, 0);
    virtio_mmio_destroy(&m);
    virtio_balloon_free(b);
    evloop_destroy(&loop);
    return secs;
}

void run_balloon(void)
{
    struct result *r = add_result("balloon inflate", "virtio", 0);
    r->cpu = 0; /* the rounds add their inflate's CPU time only, not the touching */
    int rounds = opt.secs < 1 ? 3 : 10;
    double rss_touched = 0, rss_after = 0, worst_drop = 1e9;
    irq_count = 0;
    for (int i = 0; i < rounds; i++) {
        r->secs += inflate_round(r, &rss_touched, &rss_after);
        if (rss_touched - rss_after < worst_drop)
            worst_drop = rss_touched - rss_after;
    }
    r->irqs = irq_count;
    if (!opt.json_only)
        fprintf(stderr, "balloon: %d rounds of %llu MiB; last round RSS %.1f -> %.1f MiB (smallest drop %.1f MiB)\n",
                rounds, BALLOON_MIB, rss_touched, rss_after, worst_drop);
    printf("{\"figure\":\"balloon rss\",\"inflated_mib_per_round\":%llu,\"rss_touched_mib\":%.1f,"
           "\"rss_after_mib\":%.1f,\"smallest_drop_mib\":%.1f}\n",
           BALLOON_MIB, rss_touched, rss_after, worst_drop);
}
