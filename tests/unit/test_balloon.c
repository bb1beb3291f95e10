/*
 * virtio-balloon through the virtio-mmio transport, without KVM (the test is
 * the guest driver, virtio_fixture.h). Guest RAM is 3 GiB + 4 MiB, mapped
 * without reserving it, so it is split around the MMIO gap as a VM's is.
 * Page numbers are hostile: outside RAM, in the gap, repeated, huge; none
 * may reach the discard call twice or at all. Statistics buffers of odd
 * sizes; the snapshot section round trip.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "core/event_loop.h"
#include "core/le.h"
#include "devices/virtio/balloon_internal.h"
#include "devices/virtio/mmio.h"
#include "tests/unit/virtio_fixture.h"

#define MEM (3ULL * 1024 * 1024 * 1024 + (4ULL << 20))
#define QSZ 16
#define BUF_GPA 0x100000ULL
#define HIGH_PFN 0x100000U /* the first page above the gap: RAM */

static struct event_loop loop;
static struct virtio_mmio m;
static struct virtio_balloon *bl;
static bool started;

/* What the device asked to discard. */
static struct {
    uint8_t *host[64];
    uint64_t len[64];
    int n;
} discards;

static int record_discard(void *host, uint64_t len, void *ctx)
{
    (void)ctx;
    cr_assert_lt(discards.n, 64);
    discards.host[discards.n] = host;
    discards.len[discards.n++] = len;
    return 0;
}

static void start_with(uint32_t mib, bool oom, uint32_t secs, bool real_discard)
{
    vfx.ram = mmap(NULL, MEM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    cr_assert_neq(vfx.ram, MAP_FAILED);
    cr_assert_eq(guest_mem_init_with(&vfx.gm, MEM, vfx.ram), 0);
    cr_assert_eq(vfx.gm.nr_regions, 2);
    cr_assert_eq(evloop_init(&loop), 0);
    struct balloon_config cfg = {.amount_mib = mib, .deflate_on_oom = oom, .stats_polling_interval_s = secs};
    cr_assert_eq(virtio_balloon_create(&bl, &cfg, NULL), 0);
    if (!real_discard)
        virtio_balloon_set_discard(bl, record_discard, NULL);
    cr_assert_eq(virtio_mmio_init(&m, "balloon", &virtio_balloon_ops, bl, &vfx.gm, &loop, -1, 0xd0002000ULL, 7,
                                  vfx_irq_line(7)),
                 0);
    vfx.m = &m;
    started = true;
    vfx_queue_at(0, QSZ, 0x1000, 0x2000, 0x3000);
    vfx_queue_at(1, QSZ, 0x4000, 0x5000, 0x6000);
    vfx_queue_at(2, QSZ, 0x7000, 0x8000, 0x9000);
    uint64_t f = BIT64(VIRTIO_F_VERSION_1);
    if (secs)
        f |= BIT64(VIRTIO_BALLOON_F_STATS_VQ);
    vfx_driver_up(f, secs ? 3 : 2);
}

static void start(void) { start_with(64, false, 1, false); }

static void stop(void)
{
    if (!started)
        return;
    started = false;
    vfx_wr(VIRTIO_MMIO_STATUS, 0);
    virtio_mmio_destroy(&m);
    virtio_balloon_free(bl);
    evloop_destroy(&loop);
    guest_mem_free(&vfx.gm);
    munmap(vfx.ram, MEM);
    vfx.ram = NULL;
}

TestSuite(balloon, .fini = stop);

/* Posts the page numbers as one readable buffer on queue q (0 inflate, 1 deflate) and kicks. */
static void send_pfns(int q, const uint32_t *pfns, unsigned n, uint64_t gpa)
{
    for (unsigned i = 0; i < n; i++)
        g_w32(gpa + 4 * i, pfns[i]);
    struct vfx_seg s = {gpa, 4 * n, false};
    vfx_post(q, &s, 1, 0);
    virtio_mmio_kick(&m, (uint16_t)q);
}

static uint8_t *host_of(uint32_t pfn) { return gm_ptr(&vfx.gm, (uint64_t)pfn << 12, 4096); }

Test(balloon, device_id_features_and_config_space)
{
    start_with(3, true, 0, false);
    cr_assert_eq(vfx_rd(VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_BALLOON);
    uint64_t f = vfx_dev_features();
    cr_assert(f & BIT64(VIRTIO_BALLOON_F_DEFLATE_ON_OOM));
    cr_assert_not(f & BIT64(VIRTIO_BALLOON_F_STATS_VQ), "no statistics queue with an interval of 0");
    cr_assert_eq(vfx_rd(VIRTIO_MMIO_CONFIG + BALLOON_CFG_NUM_PAGES), 3 * 256);
    cr_assert_eq(vfx_rd(VIRTIO_MMIO_CONFIG + BALLOON_CFG_ACTUAL), 0);
    vfx_wr(VIRTIO_MMIO_CONFIG + BALLOON_CFG_ACTUAL, 500);
    vfx_wr(VIRTIO_MMIO_CONFIG + BALLOON_CFG_NUM_PAGES, 7); /* the target is the host's: ignored */
    cr_assert_eq(vfx_rd(VIRTIO_MMIO_CONFIG + BALLOON_CFG_ACTUAL), 500);
    cr_assert_eq(vfx_rd(VIRTIO_MMIO_CONFIG + BALLOON_CFG_NUM_PAGES), 3 * 256);
    cr_assert_eq(vfx_rd(VIRTIO_MMIO_CONFIG + 64), 0, "beyond the configuration space reads as zero");
    struct balloon_stats s;
    virtio_balloon_stats(bl, &s);
    cr_assert_eq(s.actual_pages, 500);
}

Test(balloon, inflate_discards_valid_pages_in_runs)
{
    start();
    const uint32_t pfns[] = {0x200, 0x201, 0x202, 0x300, HIGH_PFN, HIGH_PFN + 1};
    send_pfns(0, pfns, 6, BUF_GPA);
    cr_assert_eq(vfx_used_idx(0), 1, "the request is returned to the guest");
    cr_assert_eq(discards.n, 3);
    cr_assert_eq(discards.host[0], host_of(0x200));
    cr_assert_eq(discards.len[0], 3 * 4096);
    cr_assert_eq(discards.host[1], host_of(0x300));
    cr_assert_eq(discards.host[2], host_of(HIGH_PFN));
    cr_assert_eq(discards.len[2], 2 * 4096);
    struct balloon_counters c = virtio_balloon_counters(bl);
    cr_assert_eq(c.inflate_count, 1);
    cr_assert_eq(c.pages_inflated, 6);
    cr_assert_eq(c.hostile_pfns, 0);
    cr_assert_eq(virtio_balloon_held_pages(bl), 6);
}

Test(balloon, hostile_pfns_are_skipped_and_counted)
{
    start();
    const uint32_t pfns[] = {
        0xC0000,                         /* the MMIO gap's first page */
        0xFEC00,                         /* the IOAPIC */
        0xFFFFF,                         /* the gap's last page */
        (uint32_t)(MEM >> 12) + 0x40000, /* past the end of RAM */
        HIGH_PFN + 1024,                 /* one page past the high region */
        0xFFFFFFFF,                      /* the largest number there is */
        0x400,
        0x400, /* twice in one request */
    };
    send_pfns(0, pfns, 8, BUF_GPA);
    cr_assert_eq(vfx_used_idx(0), 1);
    cr_assert_eq(discards.n, 1, "only the one valid page");
    cr_assert_eq(discards.host[0], host_of(0x400));
    cr_assert_eq(discards.len[0], 4096);
    const uint32_t again[] = {0x400};
    send_pfns(0, again, 1, BUF_GPA + 0x100);
    cr_assert_eq(discards.n, 1, "already inflated: not discarded again");
    struct balloon_counters c = virtio_balloon_counters(bl);
    cr_assert_eq(c.hostile_pfns, 8);
    cr_assert_eq(c.pages_inflated, 1);
    cr_assert_eq(virtio_balloon_held_pages(bl), 1);
}

Test(balloon, a_request_is_served_for_at_most_256_page_numbers)
{
    start();
    /* 300 adjacent pages over two buffers: the first 256 are inflated (one run), the other 44 ignored. */
    for (uint32_t i = 0; i < 300; i++)
        g_w32(BUF_GPA + 4 * i, 0x800 + i);
    struct vfx_seg two[] = {{BUF_GPA, 4 * 200, false}, {BUF_GPA + 4 * 200, 4 * 100, false}};
    vfx_post(0, two, 2, 0);
    virtio_mmio_kick(&m, 0);
    cr_assert_eq(vfx_used_idx(0), 1);
    cr_assert_eq(discards.n, 1);
    cr_assert_eq(discards.host[0], host_of(0x800));
    cr_assert_eq(discards.len[0], BALLOON_MAX_PFNS_PER_REQUEST * 4096ULL);
    cr_assert_eq(virtio_balloon_held_pages(bl), 256);
    cr_assert_eq(virtio_balloon_counters(bl).hostile_pfns, 44);
    /* A 64 MiB buffer of zeros (16 Mi page numbers): page 0 once, 255 repeats of it, the rest not even read. */
    struct vfx_seg huge = {0x10000000ULL, 64U << 20, false};
    vfx_post(0, &huge, 1, 0);
    virtio_mmio_kick(&m, 0);
    cr_assert_eq(vfx_used_idx(0), 2, "the huge request completes");
    cr_assert_eq(discards.n, 2);
    cr_assert_eq(discards.host[1], host_of(0));
    cr_assert_eq(virtio_balloon_held_pages(bl), 257);
    struct balloon_counters c = virtio_balloon_counters(bl);
    cr_assert_eq(c.hostile_pfns, 44 + 255 + ((64ULL << 20) / 4 - 256));
    cr_assert_eq(c.pages_inflated, 257);
    cr_assert_eq(c.inflate_count, 2);
    /* Deflate is capped the same way. */
    for (uint32_t i = 0; i < 300; i++)
        g_w32(BUF_GPA + 4 * i, 0x800 + i);
    struct vfx_seg one = {BUF_GPA, 4 * 300, false};
    vfx_post(1, &one, 1, 0);
    virtio_mmio_kick(&m, 1);
    cr_assert_eq(vfx_used_idx(1), 1);
    c = virtio_balloon_counters(bl);
    cr_assert_eq(c.pages_deflated, 256);
    cr_assert_eq(c.hostile_pfns, 44 + 255 + ((64ULL << 20) / 4 - 256) + 44);
    cr_assert_eq(virtio_balloon_held_pages(bl), 1);
}

Test(balloon, odd_buffers_and_writable_buffers)
{
    start();
    g_w32(BUF_GPA, 0x500);
    g_w32(BUF_GPA + 4, 0x501);
    struct vfx_seg s[] = {{BUF_GPA, 6, false}, {BUF_GPA + 4, 4, true}}; /* 2 stray bytes, a writable buffer */
    vfx_post(0, s, 2, 0);
    virtio_mmio_kick(&m, 0);
    cr_assert_eq(vfx_used_idx(0), 1);
    cr_assert_eq(vfx_used_len(0, 0), 0);
    cr_assert_eq(virtio_balloon_held_pages(bl), 1, "the whole number in the readable buffer only");
    struct vfx_seg empty = {BUF_GPA, 0, false};
    vfx_post(0, &empty, 1, 0);
    virtio_mmio_kick(&m, 0);
    cr_assert_eq(vfx_used_idx(0), 2, "an empty request completes");
}

Test(balloon, deflate_accounts_only_held_pages)
{
    start();
    const uint32_t in[] = {0x600, 0x601, 0x602};
    send_pfns(0, in, 3, BUF_GPA);
    const uint32_t out[] = {0x601, 0x601, 0x700, 0xC0000, 0xFFFFFFFF};
    send_pfns(1, out, 5, BUF_GPA + 0x100);
    cr_assert_eq(vfx_used_idx(1), 1);
    struct balloon_counters c = virtio_balloon_counters(bl);
    cr_assert_eq(c.deflate_count, 1);
    cr_assert_eq(c.pages_deflated, 1);
    cr_assert_eq(c.hostile_pfns, 4, "the second 0x601, one never inflated, the gap, a huge one");
    cr_assert_eq(virtio_balloon_held_pages(bl), 2);
    const uint32_t back[] = {0x601};
    send_pfns(0, back, 1, BUF_GPA + 0x200);
    cr_assert_eq(virtio_balloon_held_pages(bl), 3, "a deflated page may be inflated again");
}

Test(balloon, real_discard_zeroes_the_page)
{
    start_with(64, false, 0, true);
    uint8_t *p = host_of(0x800);
    memset(p, 0xab, 4096);
    const uint32_t in[] = {0x800};
    send_pfns(0, in, 1, BUF_GPA);
    cr_assert_eq(p[0], 0);
    cr_assert_eq(p[4095], 0);
    cr_assert_eq(virtio_balloon_counters(bl).discard_fails, 0);
}

/* One statistic at p. */
static void put_stat(uint64_t gpa, uint16_t tag, uint64_t v)
{
    uint8_t *p = g_at(gpa, BALLOON_STAT_SIZE);
    le_st16(p, tag);
    le_st64(p + 2, v);
}

static uint16_t send_stats(uint32_t len)
{
    struct vfx_seg s = {BUF_GPA, len, false};
    uint16_t h = vfx_post(2, &s, 1, 0);
    virtio_mmio_kick(&m, 2);
    return h;
}

Test(balloon, stats_buffer_held_and_handed_back)
{
    start();
    put_stat(BUF_GPA, BALLOON_S_MEMFREE, 1000);
    put_stat(BUF_GPA + 10, BALLOON_S_MEMTOT, 2000);
    put_stat(BUF_GPA + 20, 99, 5); /* a tag Ember does not know */
    uint16_t h = send_stats(30);
    cr_assert_eq(vfx_used_idx(2), 0, "the device keeps the buffer until it wants fresh numbers");
    struct balloon_stats s;
    virtio_balloon_stats(bl, &s);
    cr_assert_eq(s.present, 1U << BALLOON_S_MEMFREE | 1U << BALLOON_S_MEMTOT);
    cr_assert_eq(s.values[BALLOON_S_MEMFREE], 1000);
    cr_assert_eq(s.values[BALLOON_S_MEMTOT], 2000);
    cr_assert_eq(s.target_pages, 64 * 256);
    int pulses = vfx.pulses;
    balloon_stats_refresh(bl);
    cr_assert_eq(vfx_used_idx(2), 1);
    cr_assert_eq(vfx_used_id(2, 0), h);
    cr_assert_eq(vfx.pulses, pulses + 1);
    balloon_stats_refresh(bl); /* nothing held: nothing to return */
    cr_assert_eq(vfx_used_idx(2), 1);
    cr_assert_eq(virtio_balloon_counters(bl).stats_updates, 1);
}

Test(balloon, stats_buffer_sent_before_driver_ok_is_taken)
{
    start();
    /* As Linux probes: the statistics queue is primed and kicked before DRIVER_OK (that kick is not served). */
    vfx_wr(VIRTIO_MMIO_STATUS, 0);
    cr_assert(vfx_negotiate(BIT64(VIRTIO_F_VERSION_1) | BIT64(VIRTIO_BALLOON_F_STATS_VQ)) & VIRTIO_STATUS_FEATURES_OK);
    for (int q = 0; q < 3; q++) {
        vfx_queue_at(q, QSZ, 0x1000 + 0x3000 * (uint64_t)q, 0x2000 + 0x3000 * (uint64_t)q,
                     0x3000 + 0x3000 * (uint64_t)q);
        vfx_queue_regs((uint32_t)q, QSZ, vfx.q[q].desc, vfx.q[q].avail, vfx.q[q].used, true);
    }
    put_stat(BUF_GPA, BALLOON_S_MEMTOT, 77);
    uint16_t h = send_stats(10);
    cr_assert_eq(virtio_balloon_counters(bl).stats_updates, 0);
    vfx_wr(VIRTIO_MMIO_STATUS,
           VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
    cr_assert_eq(virtio_balloon_counters(bl).stats_updates, 1, "taken when the driver is up");
    balloon_stats_refresh(bl);
    cr_assert_eq(vfx_used_id(2, 0), h);
}

Test(balloon, short_and_torn_stats_buffers)
{
    start();
    put_stat(BUF_GPA, BALLOON_S_SWAP_IN, 7);
    send_stats(10);
    put_stat(BUF_GPA, BALLOON_S_SWAP_OUT, 8);
    uint16_t h2 = send_stats(5); /* not one whole statistic: the last numbers stay */
    cr_assert_eq(vfx_used_idx(2), 1, "a second buffer gives the first back");
    struct balloon_stats s;
    virtio_balloon_stats(bl, &s);
    cr_assert_eq(s.present, 1U << BALLOON_S_SWAP_IN);
    cr_assert_eq(s.values[BALLOON_S_SWAP_IN], 7);
    put_stat(BUF_GPA + 10, BALLOON_S_OOM_KILL, 3);
    send_stats(25); /* two whole statistics and a torn one */
    virtio_balloon_stats(bl, &s);
    cr_assert_eq(s.present, 1U << BALLOON_S_SWAP_OUT | 1U << BALLOON_S_OOM_KILL);
    struct balloon_counters c = virtio_balloon_counters(bl);
    cr_assert_eq(c.stats_updates, 1);
    cr_assert_eq(c.stats_fails, 2);
    cr_assert_eq(vfx_used_id(2, 1), h2);
}

Test(balloon, parse_stats_directly)
{
    uint8_t buf[BALLOON_STATS_READ_MAX] = {0};
    struct balloon_stats s = {.present = 1, .values = {42}};
    cr_assert_not(balloon_parse_stats(buf, 0, &s));
    cr_assert_not(balloon_parse_stats(buf, 9, &s));
    cr_assert_eq(s.present, 1, "nothing whole: unchanged");
    le_st16(buf, BALLOON_S_DIRECT_RECLAIM);
    le_st64(buf + 2, UINT64_MAX);
    le_st16(buf + 10, BALLOON_S_DIRECT_RECLAIM); /* twice: the later one wins */
    le_st64(buf + 12, 5);
    cr_assert(balloon_parse_stats(buf, 20, &s));
    cr_assert_eq(s.present, 1U << BALLOON_S_DIRECT_RECLAIM);
    cr_assert_eq(s.values[BALLOON_S_DIRECT_RECLAIM], 5);
    memset(buf, 0xff, sizeof(buf)); /* tag 0xffff everywhere */
    cr_assert(balloon_parse_stats(buf, sizeof(buf), &s));
    cr_assert_eq(s.present, 0);
}

Test(balloon, new_target_interrupts_the_guest)
{
    start();
    int pulses = vfx.pulses;
    uint32_t gen = vfx_rd(VIRTIO_MMIO_CONFIG_GENERATION);
    virtio_balloon_set_target(bl, 32);
    cr_assert_eq(vfx_rd(VIRTIO_MMIO_CONFIG + BALLOON_CFG_NUM_PAGES), 32 * 256);
    cr_assert_neq(vfx_rd(VIRTIO_MMIO_CONFIG_GENERATION), gen);
    cr_assert_eq(vfx.pulses, pulses + 1);
    cr_assert(vfx_rd(VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_INT_CONFIG);
}

Test(balloon, stats_cannot_be_switched_after_boot)
{
    start();
    struct errmsg err = {{0}};
    cr_assert_eq(virtio_balloon_set_stats_interval(bl, 0, &err), -EINVAL);
    cr_assert(strstr(err.text, "Cannot enable/disable the statistics"), "%s", err.text);
    cr_assert_eq(virtio_balloon_set_stats_interval(bl, 5, &err), 0);
    stop();
    start_with(64, false, 0, false);
    cr_assert_eq(virtio_balloon_set_stats_interval(bl, 1, &err), -EINVAL);
    cr_assert_eq(virtio_balloon_set_stats_interval(bl, 0, &err), 0);
}

Test(balloon, reset_gives_every_page_back)
{
    start();
    const uint32_t in[] = {0x900, 0x901};
    send_pfns(0, in, 2, BUF_GPA);
    vfx_wr(VIRTIO_MMIO_CONFIG + BALLOON_CFG_ACTUAL, 2);
    vfx_wr(VIRTIO_MMIO_STATUS, 0);
    cr_assert_eq(virtio_balloon_held_pages(bl), 0);
    cr_assert_eq(vfx_rd(VIRTIO_MMIO_CONFIG + BALLOON_CFG_ACTUAL), 0);
}

static void save_image(struct state_writer *w)
{
    state_writer_init(w);
    cr_assert_eq(virtio_mmio_save(&m, w), 0);
    cr_assert_eq(virtio_balloon_save(bl, w), 0);
}

/* A second device, the image restored into it; rc of the balloon section's restore. */
static int restore_into(struct virtio_mmio *m2, struct virtio_balloon **b2, const struct state_writer *w,
                        struct errmsg *err)
{
    struct balloon_config cfg = {.amount_mib = 1, .stats_polling_interval_s = 1};
    cr_assert_eq(virtio_balloon_create(b2, &cfg, NULL), 0);
    cr_assert_eq(virtio_mmio_init(m2, "balloon2", &virtio_balloon_ops, *b2, &vfx.gm, &loop, -1, 0xd0003000ULL, 8,
                                  vfx_irq_line(8)),
                 0);
    struct state_reader r;
    state_reader_init(&r, w->buf, w->len);
    cr_assert_eq(virtio_mmio_restore(m2, &r, err), 0, "%s", err->text);
    return virtio_balloon_restore(*b2, &r, err);
}

static void drop_second(struct virtio_mmio *m2, struct virtio_balloon *b2)
{
    vfx.m = m2;
    vfx_wr(VIRTIO_MMIO_STATUS, 0);
    vfx.m = &m;
    virtio_mmio_destroy(m2);
    virtio_balloon_free(b2);
}

Test(balloon, snapshot_round_trip)
{
    start();
    const uint32_t in[] = {0xa00, 0xa01, 0xa03, HIGH_PFN + 5};
    send_pfns(0, in, 4, BUF_GPA);
    vfx_wr(VIRTIO_MMIO_CONFIG + BALLOON_CFG_ACTUAL, 4);
    put_stat(BUF_GPA + 0x800, BALLOON_S_AVAIL, 12345);
    struct vfx_seg s = {BUF_GPA + 0x800, 10, false};
    uint16_t h = vfx_post(2, &s, 1, 0);
    virtio_mmio_kick(&m, 2);
    virtio_balloon_set_target(bl, 48);
    struct state_writer w;
    save_image(&w);
    struct virtio_mmio m2;
    struct virtio_balloon *b2;
    struct errmsg err = {{0}};
    cr_assert_eq(restore_into(&m2, &b2, &w, &err), 0, "%s", err.text);
    cr_assert_eq(virtio_balloon_held_pages(b2), 4);
    struct balloon_stats st;
    virtio_balloon_stats(b2, &st);
    cr_assert_eq(st.target_pages, 48 * 256);
    cr_assert_eq(st.actual_pages, 4);
    cr_assert_eq(st.values[BALLOON_S_AVAIL], 12345);
    balloon_stats_refresh(b2); /* the held buffer survives the snapshot */
    cr_assert_eq(vfx_used_id(2, 0), h);
    /* Deflating a restored page is accounted, not hostile. */
    vfx.m = &m2;
    const uint32_t out[] = {0xa03};
    for (unsigned i = 0; i < 1; i++)
        g_w32(BUF_GPA + 0x900, out[i]);
    struct vfx_seg d = {BUF_GPA + 0x900, 4, false};
    vfx_post(1, &d, 1, 0);
    virtio_mmio_kick(&m2, 1);
    cr_assert_eq(virtio_balloon_held_pages(b2), 3);
    cr_assert_eq(virtio_balloon_counters(b2).hostile_pfns, 0);
    drop_second(&m2, b2);
    state_writer_free(&w);
}

Test(balloon, snapshot_with_pages_outside_ram_refused)
{
    start();
    const uint32_t in[] = {0xb00};
    send_pfns(0, in, 1, BUF_GPA);
    struct state_writer w;
    save_image(&w);
    /* The run's first page number is the last 16 bytes but 8 of the section: point it into the gap. */
    le_st64(w.buf + w.len - 16, 0xC0000);
    struct virtio_mmio m2;
    struct virtio_balloon *b2;
    struct errmsg err = {{0}};
    cr_assert_eq(restore_into(&m2, &b2, &w, &err), -EINVAL);
    cr_assert(strstr(err.text, "outside guest RAM"), "%s", err.text);
    cr_assert_eq(virtio_balloon_held_pages(b2), 0);
    le_st64(w.buf + w.len - 16, 0xb00);
    le_st64(w.buf + w.len - 8, 1ULL << 40); /* a run longer than RAM */
    drop_second(&m2, b2);
    cr_assert_eq(restore_into(&m2, &b2, &w, &err), -EINVAL);
    drop_second(&m2, b2);
    state_writer_free(&w);
}
