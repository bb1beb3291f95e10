/*
 * The controller's side of the rate limiters and the entropy device: the
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
