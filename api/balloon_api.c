#include "api/balloon_api.h"

#include <errno.h>
#include <stdbool.h>

#include "api/fields.h"
#include "vm/vm.h"

#define MSG_NO_BALLOON "No balloon device found: configure one with PUT /balloon before boot."

/* Fields of Firecracker's current Balloon that Ember does not implement: absent, null or false means off. */
static int unsupported_off(json_t *o, const char *key, const char *what, struct errmsg *e)
{
    bool on = false;
    int got = field_bool(o, key, &on, e);
    if (got < 0)
        return got;
    if (on)
        return err_set(e, -EINVAL, "Ember does not implement %s (`%s`): leave it out or set it to false.", what, key);
    return 0;
}

int api_put_balloon(struct controller *c, json_t *o, const char *id, struct errmsg *e)
{
    (void)id;
    static const char *const keys[] = {"amount_mib",        "deflate_on_oom",      "stats_polling_interval_s",
                                       "free_page_hinting", "free_page_reporting", NULL};
    uint64_t mib = 0, secs = 0;
    bool oom = false;
    int rc = field_check_known(o, keys, e);
    if (!rc)
        rc = field_require(field_uint(o, "amount_mib", 0, UINT32_MAX, &mib, e), "amount_mib", e);
    if (!rc)
        rc = field_require(field_bool(o, "deflate_on_oom", &oom, e), "deflate_on_oom", e);
    if (!rc && field_uint(o, "stats_polling_interval_s", 0, BALLOON_MAX_STATS_INTERVAL_S, &secs, e) < 0)
        rc = -EINVAL;
    if (!rc)
        rc = unsupported_off(o, "free_page_hinting", "free page hinting", e);
    if (!rc)
        rc = unsupported_off(o, "free_page_reporting", "free page reporting", e);
    struct balloon_config cfg = {.amount_mib = (uint32_t)mib,
                                 .deflate_on_oom = oom,
                                 .stats_polling_interval_s = (uint32_t)secs};
    return rc ? rc : ctl_set_balloon(c, &cfg, e);
}

int api_patch_balloon(struct controller *c, json_t *o, const char *id, struct errmsg *e)
{
    (void)id;
    static const char *const keys[] = {"amount_mib", NULL};
    uint64_t mib = 0;
    int rc = field_check_known(o, keys, e);
    if (!rc)
        rc = field_require(field_uint(o, "amount_mib", 0, UINT32_MAX, &mib, e), "amount_mib", e);
    return rc ? rc : ctl_update_balloon(c, (uint32_t)mib, e);
}

int api_patch_balloon_stats(struct controller *c, json_t *o, const char *id, struct errmsg *e)
{
    (void)id;
    static const char *const keys[] = {"stats_polling_interval_s", NULL};
    uint64_t secs = 0;
    int rc = field_check_known(o, keys, e);
    if (!rc)
        rc = field_require(field_uint(o, "stats_polling_interval_s", 0, BALLOON_MAX_STATS_INTERVAL_S, &secs, e),
                           "stats_polling_interval_s", e);
    return rc ? rc : ctl_update_balloon_stats(c, (uint32_t)secs, e);
}

json_t *api_balloon_config_json(const struct controller *c)
{
    const struct vm_config *cfg = ctl_config(c);
    if (!cfg->has_balloon)
        return NULL;
    return json_pack("{s:I,s:b,s:I}", "amount_mib", (json_int_t)cfg->balloon.amount_mib, "deflate_on_oom",
                     cfg->balloon.deflate_on_oom, "stats_polling_interval_s",
                     (json_int_t)cfg->balloon.stats_polling_interval_s);
}

json_t *api_get_balloon(const struct controller *c, struct errmsg *e)
{
    json_t *o = api_balloon_config_json(c);
    if (!o)
        err_set(e, -EINVAL, MSG_NO_BALLOON);
    return o;
}

/* Firecracker's BalloonStats names, in tag order (virtio_balloon.h's VIRTIO_BALLOON_S_*). */
static const char *const stat_names[BALLOON_S_NR] = {
    "swap_in",          "swap_out",    "major_faults",        "minor_faults",     "free_memory", "total_memory",
    "available_memory", "disk_caches", "hugetlb_allocations", "hugetlb_failures", "oom_kill",    "alloc_stall",
    "async_scan",       "direct_scan", "async_reclaim",       "sync_reclaim",
};

json_t *api_get_balloon_stats(const struct controller *c, struct errmsg *e)
{
    const struct vm_config *cfg = ctl_config(c);
    if (ctl_check_phase(c, CTL_POST_BOOT, e))
        return NULL;
    if (!cfg->has_balloon) {
        err_set(e, -EINVAL, MSG_NO_BALLOON);
        return NULL;
    }
    struct balloon_stats s;
    if (cfg->balloon.stats_polling_interval_s == 0 || vm_balloon_stats(c->vm, &s)) {
        err_set(e, -EINVAL,
                "Statistics for the balloon device are not enabled: set stats_polling_interval_s in "
                "PUT /balloon before boot.");
        return NULL;
    }
    json_t *o = json_pack("{s:I,s:I,s:I,s:I}", "target_pages", (json_int_t)s.target_pages, "actual_pages",
                          (json_int_t)s.actual_pages, "target_mib",
                          (json_int_t)(s.target_pages / BALLOON_PAGES_PER_MIB), "actual_mib",
                          (json_int_t)(s.actual_pages / BALLOON_PAGES_PER_MIB));
    for (int t = 0; t < BALLOON_S_NR && o; t++)
        if (s.present & (1U << t)) /* only what the guest reported */
            json_object_set_new(o, stat_names[t], json_integer((json_int_t)s.values[t]));
    return o;
}

/* Firecracker's balloon group, then Ember's page counters. */
json_t *api_balloon_metrics(const struct balloon_counters *m)
{
    return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "activate_fails", (json_int_t)m->activate_fails,
                     "inflate_count", (json_int_t)m->inflate_count, "deflate_count", (json_int_t)m->deflate_count,
                     "stats_updates_count", (json_int_t)m->stats_updates, "stats_update_fails",
                     (json_int_t)m->stats_fails, "event_fails", (json_int_t)m->event_fails, "pages_inflated",
                     (json_int_t)m->pages_inflated, "pages_deflated", (json_int_t)m->pages_deflated, "hostile_pfns",
                     (json_int_t)m->hostile_pfns, "discard_fails", (json_int_t)m->discard_fails);
}
