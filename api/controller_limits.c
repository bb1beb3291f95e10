/*
 * The controller's side of the rate limiters, the entropy device and the balloon: the
 * description the VM is built from (pre-boot) and the running devices'
 * limiters (PATCH, post-boot), kept in step so GET /vm/config and a
 * snapshot's stored description show what the devices do.
 */
#include <errno.h>
#include <string.h>

#include "api/controller.h"
#include "vm/vm.h"

int ctl_set_entropy(struct controller *c, const struct rng_config *cfg, struct errmsg *err)
{
    int rc = ctl_check_phase(c, CTL_PRE_BOOT, err);
    if (rc)
        return rc;
    c->cfg.entropy = *cfg;
    c->cfg.has_entropy = 1;
    c->configured = true;
    return 0;
}

int ctl_update_drive_rate_limiter(struct controller *c, const char *id, const struct rate_limiter_update *u,
                                  struct errmsg *err)
{
    int rc = ctl_check_phase(c, CTL_POST_BOOT, err);
    if (rc)
        return rc;
    for (unsigned i = 0; i < c->cfg.nr_drives; i++) {
        struct blk_config *d = &c->cfg.drives[i];
        if (strcmp(d->id, id) != 0)
            continue;
        rc = vm_update_drive_rate_limiter(c->vm, id, u, err);
        if (!rc)
            rate_limiter_config_update(&d->rate_limiter, u);
        return rc;
    }
    return err_set(err, -EINVAL, "Invalid value for field `drive_id`: no drive '%s' is attached.", id);
}

int ctl_update_net_rate_limiters(struct controller *c, const char *id, const struct rate_limiter_update *rx,
                                 const struct rate_limiter_update *tx, struct errmsg *err)
{
    int rc = ctl_check_phase(c, CTL_POST_BOOT, err);
    if (rc)
        return rc;
    for (unsigned i = 0; i < c->cfg.nr_nets; i++) {
        struct net_config *n = &c->cfg.nets[i];
        if (strcmp(n->id, id) != 0)
            continue;
        rc = vm_update_net_rate_limiters(c->vm, id, rx, tx, err);
        if (!rc && rx)
            rate_limiter_config_update(&n->rx_rate_limiter, rx);
        if (!rc && tx)
            rate_limiter_config_update(&n->tx_rate_limiter, tx);
        return rc;
    }
    return err_set(err, -EINVAL, "Invalid value for field `iface_id`: no network interface '%s' is attached.", id);
}

#define MSG_NO_BALLOON "No balloon device found: configure one with PUT /balloon before boot."

/* Firecracker's rule: the balloon cannot be asked for more than the guest has. */
static int check_balloon_size(const struct controller *c, uint32_t amount_mib, struct errmsg *err)
{
    if (amount_mib > c->cfg.mem_mib)
        return err_set(err, -EINVAL,
                       "Amount of pages requested is too large: amount_mib %u is more than the VM's %llu MiB.",
                       amount_mib, (unsigned long long)c->cfg.mem_mib);
    return 0;
}

int ctl_set_balloon(struct controller *c, const struct balloon_config *cfg, struct errmsg *err)
{
    int rc = ctl_check_phase(c, CTL_PRE_BOOT, err);
    if (!rc)
        rc = check_balloon_size(c, cfg->amount_mib, err);
    if (rc)
        return rc;
    c->cfg.balloon = *cfg;
    c->cfg.has_balloon = 1;
    c->configured = true;
    return 0;
}

int ctl_update_balloon(struct controller *c, uint32_t amount_mib, struct errmsg *err)
{
    int rc = ctl_check_phase(c, CTL_POST_BOOT, err);
    if (rc)
        return rc;
    if (!c->cfg.has_balloon)
        return err_set(err, -EINVAL, MSG_NO_BALLOON);
    rc = check_balloon_size(c, amount_mib, err);
    if (!rc && vm_balloon_set_target(c->vm, amount_mib))
        rc = err_set(err, -EINVAL, MSG_NO_BALLOON);
    if (!rc)
        c->cfg.balloon.amount_mib = amount_mib;
    return rc;
}

int ctl_update_balloon_stats(struct controller *c, uint32_t secs, struct errmsg *err)
{
    int rc = ctl_check_phase(c, CTL_POST_BOOT, err);
    if (rc)
        return rc;
    if (!c->cfg.has_balloon)
        return err_set(err, -EINVAL, MSG_NO_BALLOON);
    rc = vm_balloon_set_stats_interval(c->vm, secs, err);
    if (!rc)
        c->cfg.balloon.stats_polling_interval_s = secs;
    return rc;
}
