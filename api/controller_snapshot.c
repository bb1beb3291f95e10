/*
 * The controller's snapshot operations: create on a paused VM, load on a
 * fresh process. Like controller.c, this file calls vm/ and runs on the VMM
 * thread only. A failed load leaves the process as it was before the request
 * (Firecracker ends the process instead): the description is rolled back and
 * whatever the restore built is destroyed.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api/controller.h"
#include "core/log.h"
#include "vm/runner.h"
#include "vm/vm.h"

int ctl_snapshot_create(struct controller *c, enum vm_snapshot_type type, const char *state_path, const char *mem_path,
                        const char *config_json, struct errmsg *err)
{
    uint64_t t0 = now_ns();
    int rc = ctl_check_phase(c, CTL_POST_BOOT, err);
    if (rc)
        return rc;
    if (c->state != CTL_PAUSED)
        return err_set(err, -EINVAL,
                       "Cannot create a snapshot of a running microVM: pause it first (PATCH /vm "
                       "{\"state\": \"Paused\"}).");
    if (strcmp(state_path, mem_path) == 0)
        return err_set(err, -EINVAL, "`snapshot_path` and `mem_file_path` name the same file '%s'.", state_path);
    struct vm_snapshot_create p = {type, state_path, mem_path, config_json};
    struct vm_snapshot_stats st;
    uint64_t t1 = now_ns();
    rc = vm_snapshot_create(c->vm, &p, &st, err);
    if (rc)
        return rc;
    uint64_t vmm_us = ctl_us_since(t1), all_us = ctl_us_since(t0);
    if (type == VM_SNAPSHOT_DIFF)
        c->latencies.vmm_diff_create_snapshot = vmm_us, c->latencies.diff_create_snapshot = all_us;
    else
        c->latencies.vmm_full_create_snapshot = vmm_us, c->latencies.full_create_snapshot = all_us;
    log_info("snapshot created (%s): state '%s' (%llu bytes), memory '%s' (%llu pages written) in %llu us",
             type == VM_SNAPSHOT_DIFF ? "Diff" : "Full", state_path, (unsigned long long)st.state_bytes, mem_path,
             (unsigned long long)st.mem_pages_written, (unsigned long long)vmm_us);
    return 0;
}

/* Frees *slot unless the description before the load already held that very string. */
static void free_if_new(const char **slot, const char *before)
{
    if (*slot != before)
        free((void *)*slot);
    *slot = NULL;
}

/*
 * The description back to what it was before the load: what the load added
 * (the snapshot's machine, drives and NICs) freed, everything else as it was
 * (the serial output, and the command line's settings no request changes).
 */
static void restore_description(struct controller *c, const struct vm_config *before,
                                const struct ctl_reported *reported)
{
    struct vm_config *cfg = &c->cfg;
    free_if_new(&cfg->kernel_path, before->kernel_path);
    free_if_new(&cfg->initrd_path, before->initrd_path);
    free_if_new(&cfg->cmdline, before->cmdline);
    free_if_new(&cfg->serial_out_path, before->serial_out_path);
    for (unsigned i = 0; i < cfg->nr_drives; i++) {
        bool kept = i < before->nr_drives;
        free_if_new(&cfg->drives[i].id, kept ? before->drives[i].id : NULL);
        free_if_new(&cfg->drives[i].path, kept ? before->drives[i].path : NULL);
    }
    for (unsigned i = 0; i < cfg->nr_nets; i++) {
        bool kept = i < before->nr_nets;
        free_if_new(&cfg->nets[i].id, kept ? before->nets[i].id : NULL);
        free_if_new(&cfg->nets[i].tap, kept ? before->nets[i].tap : NULL);
    }
    *cfg = *before;
    c->reported = *reported;
    c->configured = false;
}

int ctl_snapshot_load(struct controller *c, const struct ctl_snapshot_load *p, struct errmsg *err)
{
    uint64_t t0 = now_ns();
    int rc = ctl_check_phase(c, CTL_PRE_BOOT, err);
    if (rc)
        return rc;
    if (c->configured)
        return err_set(err, -EINVAL, CTL_MSG_LOAD_NOT_ALLOWED);
    struct vm_snapshot *s = NULL;
    rc = vm_snapshot_open(p->snapshot_path, &s, err);
    if (rc)
        return rc;
    /*
     * A shallow copy, its strings still c's: a load follows no boot resource
     * (checked above), so applying the snapshot's description adds drives and
     * NICs but frees none of these, and a failure frees only what it added.
     */
    const struct vm_config before = c->cfg;
    const struct ctl_reported reported = c->reported;
    struct errmsg inner;
    rc = p->apply(c, vm_snapshot_config_json(s), p->apply_ctx, &inner);
    if (rc)
        err_set(err, rc, "snapshot file '%s': its configuration: %s", p->snapshot_path, inner.text);
    c->cfg.track_dirty_pages = p->track_dirty_pages;
    uint64_t t1 = now_ns();
    if (!rc)
        rc = vm_restore(c->vm, &c->cfg, &c->runner->loop, s, &p->restore, err);
    vm_snapshot_close(s);
    if (!rc)
        rc = runner_start_vm(c->runner, c->vm, err);
    if (rc) {
        vm_destroy(c->vm);
        restore_description(c, &before, &reported);
        return rc;
    }
    c->latencies.vmm_load_snapshot = ctl_us_since(t1);
    c->latencies.load_snapshot = ctl_us_since(t0);
    c->configured = true;
    c->restored = true;
    c->state = p->restore.resume ? CTL_RUNNING : CTL_PAUSED;
    log_info("snapshot '%s' loaded in %llu us (%s)", p->snapshot_path, (unsigned long long)c->latencies.load_snapshot,
             p->restore.resume ? "running" : "paused");
    return 0;
}
