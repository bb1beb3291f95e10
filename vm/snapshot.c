/*
 * Snapshot create and restore for a struct vm. The state file's sections, in
 * order: "config" (the API's description of the VM, JSON text), "vm" (PIC,
 * IOAPIC, PIT, clock: vm/vm_state.h), one "vcpu" per vCPU (vm/vcpu_state.h),
 * one "device" per realized device, in realize order (type, id, and the
 * device's own sections when it has state).
 *
 * Create saves the devices first: quiescing them completes block requests in
 * flight, which writes guest memory and raises interrupts that the interrupt
 * controllers' saved state must then include. Restore goes the other way:
 * the VM-wide state, then the vCPUs, then the devices, which may raise
 * interrupts of their own once the controllers hold their saved state.
 */
#include "vm/snapshot.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/snapshot_file.h"
#include "vm/snapshot_mem.h"
#include "vm/vcpu_state.h"
#include "vm/virtio_devices.h"
#include "vm/vm_internal.h"
#include "vm/vm_state.h"

#define CONFIG_SECTION "config"
#define CONFIG_VERSION 1
#define CONFIG_MAX (1u << 20)

struct vm_snapshot {
    char *path;
    struct snapshot_header hdr;
    uint8_t *image;
    struct state_reader rest; /* after the config section */
    char *config_json;
};

int vm_snapshot_prepare(struct vm *vm, struct errmsg *err)
{
    (void)err;
    vm->snap_msrs = calloc(VCPU_STATE_MAX_MSRS, sizeof(*vm->snap_msrs));
    if (!vm->snap_msrs)
        return err_set(err, -ENOMEM, "out of memory");
    struct errmsg why;
    if (vcpu_state_msr_list(vm->kvm_fd, vm->snap_msrs, VCPU_STATE_MAX_MSRS, &vm->nr_snap_msrs, &why)) {
        /* The VM runs all the same; only a snapshot of it would be incomplete, so create refuses. */
        log_warn("snapshots of this VM are not possible: %s", why.text);
        free(vm->snap_msrs);
        vm->snap_msrs = NULL;
        vm->nr_snap_msrs = 0;
    }
    vm->xsave_size = vcpu_state_host_xsave_size(vm->kvm_fd, vm->vm_fd);
    return 0;
}

void vm_snapshot_release(struct vm *vm)
{
    free(vm->snap_msrs);
    vm->snap_msrs = NULL;
    if (vm->uffd_sock >= 0)
        close(vm->uffd_sock);
    if (vm->uffd >= 0)
        close(vm->uffd);
    vm->uffd_sock = vm->uffd = -1;
}

/* ---- create ---- */

static int save_devices(struct vm *vm, struct state_writer *w, struct errmsg *err)
{
    for (unsigned i = 0; i < vm->nr_devices; i++) {
        const struct device_instance *d = &vm->devices[i];
        size_t mark = snapshot_device_begin(w, d->ops->name, d->id);
        int rc = d->ops->save ? d->ops->save(d->dev, w) : 0;
        if (!rc)
            rc = state_end(w, mark);
        if (rc)
            return err_set(err, rc, "device %s '%s': cannot save its state: %s", d->ops->name, d->id, strerror(-rc));
    }
    return 0;
}

static int save_vcpus(struct vm *vm, struct state_writer *w, struct errmsg *err)
{
    struct vcpu_state *s = malloc(sizeof(*s));
    if (!s)
        return err_set(err, -ENOMEM, "out of memory");
    int rc = 0;
    for (int i = 0; i < vm->nr_vcpus && !rc; i++) {
        rc = vcpu_state_save(vm->vcpus[i].fd, (uint32_t)i, vm->snap_msrs, vm->nr_snap_msrs, vm->xsave_size, s, err);
        if (!rc && (rc = vcpu_state_encode(s, (uint32_t)i, w)))
            err_set(err, rc, "out of memory");
        vcpu_state_free(s);
    }
    free(s);
    return rc;
}

/* The sections: config, vm, vcpus, then the devices saved (quiesced) first. */
static int save_state(struct vm *vm, const char *config_json, struct state_writer *w, struct errmsg *err)
{
    struct state_writer dev;
    state_writer_init(&dev);
    int rc = save_devices(vm, &dev, err);
    size_t mark = state_begin(w, CONFIG_SECTION, CONFIG_VERSION);
    size_t len = strlen(config_json);
    state_put_u32(w, (uint32_t)len);
    state_put_bytes(w, config_json, len);
    if (!rc && (rc = state_end(w, mark)))
        err_set(err, rc, "out of memory");
    struct vm_kvm_state vs;
    if (!rc)
        rc = vm_state_save(vm->vm_fd, &vs, err);
    if (!rc && (rc = vm_state_encode(&vs, w)))
        err_set(err, rc, "out of memory");
    if (!rc)
        rc = save_vcpus(vm, w, err);
    if (!rc) {
        state_put_bytes(w, dev.buf, dev.len);
        if (w->err)
            rc = err_set(err, w->err, "out of memory");
    }
    state_writer_free(&dev);
    return rc;
}

int vm_snapshot_create(struct vm *vm, const struct vm_snapshot_create *p, struct vm_snapshot_stats *stats,
                       struct errmsg *err)
{
    if (!vm->running || !gate_is_paused(&vm->gate))
        return err_set(err, -EINVAL, "Cannot create a snapshot of a microVM that is not paused.");
    if (!vm->snap_msrs)
        return err_set(err, -ENOTSUP,
                       "this host's KVM did not list the vCPU MSRs (KVM_GET_MSR_INDEX_LIST): "
                       "a snapshot would be incomplete");
    if (p->type == VM_SNAPSHOT_DIFF && !vm->cfg.track_dirty_pages)
        return err_set(err, -EINVAL,
                       "Diff snapshots need dirty page tracking: set `track_dirty_pages` in "
                       "PUT /machine-config (or in the load that made this microVM).");
    if (strlen(p->config_json) > CONFIG_MAX)
        return err_set(err, -E2BIG, "the microVM's description is over %u bytes", CONFIG_MAX);
    struct state_writer w;
    state_writer_init(&w);
    int rc = save_state(vm, p->config_json, &w, err);
    struct snapshot_mem_stats ms = {0};
    /* Memory first: a state file that exists names a memory file that is complete. */
    if (!rc)
        rc = snapshot_mem_write(&vm->alloc.mem, vm->vm_fd, p->type == VM_SNAPSHOT_DIFF, vm->cfg.track_dirty_pages,
                                p->mem_path, &ms, err);
    if (!rc) {
        struct snapshot_header h;
        snapshot_header_init(&h, vm->alloc.mem.total, (uint32_t)vm->nr_vcpus);
        rc = snapshot_file_write(p->state_path, &h, w.buf, w.len, err);
        if (rc)
            unlink(p->mem_path); /* half a snapshot is none */
        snapshot_mem_settle(&vm->alloc.mem, &ms, rc != 0);
    }
    if (!rc && stats) {
        stats->state_bytes = w.len;
        stats->mem_pages_written = ms.pages_written;
    }
    state_writer_free(&w);
    return rc;
}

/* ---- load ---- */

void vm_snapshot_close(struct vm_snapshot *s)
{
    if (!s)
        return;
    free(s->path);
    free(s->image);
    free(s->config_json);
    free(s);
}

int vm_snapshot_open(const char *path, struct vm_snapshot **out, struct errmsg *err)
{
    *out = NULL;
    struct vm_snapshot *s = calloc(1, sizeof(*s));
    if (!s || !(s->path = strdup(path))) {
        free(s);
        return err_set(err, -ENOMEM, "out of memory");
    }
    int rc = snapshot_file_read(path, &s->hdr, &s->image, &s->rest, err);
    struct state_reader body;
    uint32_t version;
    if (!rc && (rc = state_open(&s->rest, CONFIG_SECTION, CONFIG_VERSION, &version, &body, err))) {
        char why[sizeof(err->text)];
        snprintf(why, sizeof(why), "%s", err->text); /* it names the section, not the file */
        err_set(err, rc, "snapshot file '%s': %s", path, why);
    }
    if (!rc) {
        uint32_t len = state_get_u32(&body);
        if (body.err || len > CONFIG_MAX || len != body.len - body.pos)
            rc = err_set(err, -EINVAL, "snapshot file '%s': its configuration section is malformed", path);
        else if (!(s->config_json = malloc((size_t)len + 1)))
            rc = err_set(err, -ENOMEM, "out of memory");
        else {
            state_get_bytes(&body, s->config_json, len);
            s->config_json[len] = '\0';
            if (strlen(s->config_json) != len)
                rc = err_set(err, -EINVAL, "snapshot file '%s': its configuration holds a NUL byte", path);
        }
    }
    if (rc) {
        vm_snapshot_close(s);
        return rc;
    }
    *out = s;
    return 0;
}

const char *vm_snapshot_config_json(const struct vm_snapshot *s) { return s->config_json; }
uint64_t vm_snapshot_mem_bytes(const struct vm_snapshot *s) { return s->hdr.mem_size; }
uint32_t vm_snapshot_vcpus(const struct vm_snapshot *s) { return s->hdr.nr_vcpus; }

static int restore_vcpus(struct vm *vm, struct state_reader *r, struct errmsg *err)
{
    struct vcpu_state *s = malloc(sizeof(*s));
    if (!s)
        return err_set(err, -ENOMEM, "out of memory");
    int rc = 0;
    for (int i = 0; i < vm->nr_vcpus && !rc; i++) {
        rc = vcpu_state_decode(r, (uint32_t)i, s, err);
        if (!rc)
            rc = vcpu_state_restore(vm->vcpus[i].fd, (uint32_t)i, s, vm->xsave_size, err);
        vcpu_state_free(s);
    }
    free(s);
    return rc;
}

static int restore_devices(struct vm *vm, struct state_reader *r, struct errmsg *err)
{
    char type[256], id[256];
    for (unsigned i = 0; i < vm->nr_devices; i++) {
        const struct device_instance *d = &vm->devices[i];
        struct state_reader body;
        int rc = snapshot_device_open(r, type, id, &body, err);
        if (rc)
            return rc;
        if (strcmp(type, d->ops->name) || strcmp(id, d->id))
            return err_set(err, -EINVAL,
                           "the snapshot's device %u is %s '%s', this microVM's is %s '%s': the configuration "
                           "does not match the state",
                           i, type, id, d->ops->name, d->id);
        if (d->ops->restore && (rc = d->ops->restore(d->dev, &body, err)))
            return rc;
        if (body.pos != body.len)
            return err_set(err, -EINVAL, "device %s '%s': %zu bytes of state this Ember does not know", type, id,
                           body.len - body.pos);
    }
    if (r->pos != r->len)
        return err_set(err, -EINVAL, "the snapshot holds %zu bytes after the last device's state", r->len - r->pos);
    /* Only now may devices raise interrupts: the controllers hold their saved state. */
    for (unsigned i = 0; i < vm->nr_devices; i++)
        if (vm->devices[i].ops == &vm_virtio_blk_device_ops || vm->devices[i].ops == &vm_virtio_net_device_ops ||
            vm->devices[i].ops == &vm_virtio_vsock_device_ops)
            vm_virtio_resume_restored(vm->devices[i].dev);
    return 0;
}

int vm_restore(struct vm *vm, const struct vm_config *cfg, struct event_loop *loop, const struct vm_snapshot *s,
               const struct vm_restore_params *p, struct errmsg *err)
{
    if (s->hdr.nr_vcpus != cfg->vcpus || s->hdr.mem_size != cfg->mem_mib << 20)
        return err_set(err, -EINVAL,
                       "snapshot file '%s': its header says %u vCPU(s) and %" PRIu64 " MiB, its configuration %u "
                       "and %" PRIu64 " MiB",
                       s->path, s->hdr.nr_vcpus, s->hdr.mem_size >> 20, cfg->vcpus, cfg->mem_mib);
    int mem_fd = -1;
    if (p->backend == VM_MEM_BACKEND_FILE) {
        mem_fd = snapshot_mem_open(p->backend_path, s->hdr.mem_size, err);
        if (mem_fd < 0)
            return mem_fd;
    }
    int rc = vm_build_machine(vm, cfg, loop, mem_fd, err);
    if (mem_fd >= 0)
        close(mem_fd); /* the mappings keep the file */
    if (!rc && p->backend == VM_MEM_BACKEND_UFFD)
        rc = snapshot_mem_uffd(&vm->alloc.mem, p->backend_path, &vm->uffd, &vm->uffd_sock, err);
    if (!rc)
        rc = vm_create_vcpus(vm, 0, err);
    struct state_reader r = s->rest;
    struct vm_kvm_state vs;
    if (!rc)
        rc = vm_state_decode(&r, &vs, err);
    if (!rc)
        rc = vm_state_restore(vm->vm_fd, &vs, p->clock_realtime, err);
    if (!rc)
        rc = restore_vcpus(vm, &r, err);
    if (!rc)
        rc = restore_devices(vm, &r, err);
    if (rc)
        return rc;
    vm->start_paused = !p->resume;
    return 0;
}
