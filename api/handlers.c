#include "api/handlers.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "api/balloon_api.h"
#include "api/cpu_config.h"
#include "api/fields.h"
#include "api/mmds_api.h"
#include "core/log.h"
#include "core/path_open.h"
#include "core/version.h"
#include "devices/virtio/vsock_proto.h"

#define MAX_PATH_TEXT 4095 /* the longest path a system call takes (PATH_MAX less the NUL) */

/*
 * The file must open for reading and be a regular file (or, with allow_blk, a block device). Opened without
 * blocking: a FIFO would otherwise hold the VMM thread, and with it the API, until someone opened its other end.
 */
static int readable_file(const char *what, const char *path, bool allow_blk, struct errmsg *e)
{
    struct stat st;
    int fd = path_open_noblock(path, O_RDONLY | O_CLOEXEC, &st);
    if (fd < 0)
        return err_set(e, fd, "%s '%s' cannot be opened: %s", what, path, strerror(-fd));
    close(fd);
    if (S_ISREG(st.st_mode) || (allow_blk && S_ISBLK(st.st_mode)))
        return 0;
    return err_set(e, -EINVAL, "%s '%s' is %s: it must be a regular file%s.", what, path, path_kind(st.st_mode),
                   allow_blk ? " or a block device" : "");
}

static int path_length(const char *field, const char *path, struct errmsg *e)
{
    if (strlen(path) > MAX_PATH_TEXT)
        return err_set(e, -EINVAL, "Invalid value for field `%s`: longer than %d bytes.", field, MAX_PATH_TEXT);
    return 0;
}

/* Device ids: the allowed characters, and the same id in the path as in the body. */
static int check_id(const char *field, const char *id, const char *path_id, struct errmsg *e)
{
    if (!vm_config_valid_id(id))
        return err_set(e, -EINVAL, "Invalid value for field `%s`: '%s' must be 1-64 characters of [A-Za-z0-9_].", field,
                       id);
    if (path_id && strcmp(id, path_id) != 0)
        return err_set(e, -EINVAL, "The id from the path does not match the id from the body!");
    return 0;
}

/* ---- machine-config ---- */

/* PUT sets every field (optional ones back to their defaults); PATCH only those it names. */
static int apply_machine(struct controller *c, json_t *o, bool patch, struct errmsg *e)
{
    static const char *const keys[] = {"vcpu_count", "mem_size_mib", "smt", "track_dirty_pages",
                                       "huge_pages", "cpu_template", NULL};
    int rc = field_check_known(o, keys, e);
    if (rc)
        return rc;
    const struct vm_config *cfg = ctl_config(c);
    uint64_t vcpus = cfg->vcpus, mem = cfg->mem_mib;
    bool smt = patch ? c->reported.smt : false, dirty = patch ? c->cfg.track_dirty_pages : false;
    const char *huge = NULL, *tmpl = NULL;
    int g;
    if ((g = field_uint(o, "vcpu_count", 1, EMBER_MAX_VCPUS, &vcpus, e)) < 0 ||
        (!patch && (rc = field_require(g, "vcpu_count", e))))
        return g < 0 ? g : rc;
    if ((g = field_uint(o, "mem_size_mib", 1, EMBER_MAX_MEM_MIB, &mem, e)) < 0 ||
        (!patch && (rc = field_require(g, "mem_size_mib", e))))
        return g < 0 ? g : rc;
    if (field_bool(o, "smt", &smt, e) < 0 || field_bool(o, "track_dirty_pages", &dirty, e) < 0 ||
        field_str(o, "huge_pages", &huge, e) < 0 || field_str(o, "cpu_template", &tmpl, e) < 0)
        return -EINVAL;
    if (smt && vcpus > 1 && vcpus % 2)
        return err_set(e, -EINVAL,
                       "The vCPU number is invalid! The vCPU number can only be 1 or an even number "
                       "when SMT is enabled.");
    if (huge && strcmp(huge, "None") != 0)
        return err_set(e, -EINVAL, "Invalid value for field `huge_pages`: '%s' is not supported by Ember (only None).",
                       huge);
    /* Absent, the template set before stays (a custom one too), as in Firecracker: only "None" removes it. */
    enum cpu_template_id tmpl_id;
    if (tmpl && (rc = cpu_template_check_request(tmpl, NULL, &tmpl_id, e)))
        return rc;
    rc = ctl_set_machine(c, (unsigned)vcpus, mem, smt, dirty, e);
    return rc || !tmpl ? rc : ctl_set_cpu_template(c, tmpl_id, e);
}

int api_put_machine(struct controller *c, json_t *body, const char *id, struct errmsg *err)
{
    (void)id;
    return apply_machine(c, body, false, err);
}

int api_patch_machine(struct controller *c, json_t *body, const char *id, struct errmsg *err)
{
    (void)id;
    return apply_machine(c, body, true, err);
}

/* ---- boot-source ---- */

int api_put_boot_source(struct controller *c, json_t *o, const char *id, struct errmsg *e)
{
    (void)id;
    static const char *const keys[] = {"kernel_image_path", "boot_args", "initrd_path", NULL};
    const char *kernel = NULL, *args = NULL, *initrd = NULL;
    int rc = field_check_known(o, keys, e);
    if (!rc)
        rc = field_require(field_str(o, "kernel_image_path", &kernel, e), "kernel_image_path", e);
    if (!rc && (field_str(o, "boot_args", &args, e) < 0 || field_str(o, "initrd_path", &initrd, e) < 0))
        rc = -EINVAL;
    if (!rc)
        rc = readable_file("Kernel file", kernel, false, e);
    if (!rc && initrd)
        rc = readable_file("Initrd file", initrd, false, e);
    if (!rc && args && strlen(args) > MAX_PATH_TEXT) /* the kernel's own limit is lower still */
        rc = err_set(e, -EINVAL, "Invalid value for field `boot_args`: longer than %d bytes.", MAX_PATH_TEXT);
    if (!rc)
        rc = path_length("kernel_image_path", kernel, e);
    if (!rc && initrd)
        rc = path_length("initrd_path", initrd, e);
    return rc ? rc : ctl_set_boot_source(c, kernel, initrd, args, e);
}

/* ---- drives ---- */

int api_put_drive(struct controller *c, json_t *o, const char *path_id, struct errmsg *e)
{
    static const char *const keys[] = {"drive_id",   "path_on_host", "is_root_device", "partuuid", "is_read_only",
                                       "cache_type", "io_engine",    "rate_limiter",   "socket",   NULL};
    const char *partuuid = NULL, *cache = NULL, *engine = NULL, *sock = NULL;
    struct blk_config d = {.engine = BLK_ENGINE_SYNC};
    int rc = field_check_known(o, keys, e);
    if (!rc)
        rc = field_require(field_str(o, "drive_id", &d.id, e), "drive_id", e);
    if (!rc)
        rc = check_id("drive_id", d.id, path_id, e);
    if (!rc)
        rc = field_require(field_bool(o, "is_root_device", &d.root, e), "is_root_device", e);
    if (!rc && (field_bool(o, "is_read_only", &d.read_only, e) < 0 || field_str(o, "partuuid", &partuuid, e) < 0 ||
                field_str(o, "cache_type", &cache, e) < 0 || field_str(o, "io_engine", &engine, e) < 0 ||
                field_str(o, "socket", &sock, e) < 0))
        rc = -EINVAL;
    struct rate_limiter_update limiter;
    if (!rc && field_rate_limiter(o, "rate_limiter", &limiter, e) < 0)
        rc = -EINVAL;
    d.rate_limiter = limiter.cfg;
    if (!rc && sock)
        rc = err_set(e, -EINVAL, "Invalid value for field `socket`: vhost-user drives are not implemented by Ember.");
    if (!rc && partuuid)
        rc = err_set(e, -EINVAL,
                     "Invalid value for field `partuuid`: Ember names the root drive /dev/vda; "
                     "partuuid is not supported.");
    if (!rc && cache && strcmp(cache, "Unsafe") && strcmp(cache, "Writeback"))
        rc = err_set(e, -EINVAL, "Invalid value for field `cache_type`: '%s' must be Unsafe or Writeback.", cache);
    if (!rc && engine && strcmp(engine, "Sync") && strcmp(engine, "Async"))
        rc = err_set(e, -EINVAL, "Invalid value for field `io_engine`: '%s' must be Sync or Async.", engine);
    if (!rc)
        rc = field_require(field_str(o, "path_on_host", &d.path, e), "path_on_host", e);
    if (!rc)
        rc = readable_file("Drive file", d.path, true, e);
    if (!rc)
        rc = path_length("path_on_host", d.path, e);
    if (rc)
        return rc;
    if (engine && strcmp(engine, "Async") == 0)
        d.engine = BLK_ENGINE_ASYNC;
    return ctl_put_drive(c, &d, cache && strcmp(cache, "Writeback") == 0, e);
}

int api_patch_drive(struct controller *c, json_t *o, const char *id, struct errmsg *e)
{
    static const char *const keys[] = {"drive_id", "path_on_host", "rate_limiter", NULL};
    const char *body_id = NULL, *path = NULL;
    int rc = field_check_known(o, keys, e);
    if (!rc)
        rc = field_require(field_str(o, "drive_id", &body_id, e), "drive_id", e);
    if (!rc)
        rc = check_id("drive_id", body_id, id, e);
    if (!rc && field_str(o, "path_on_host", &path, e) < 0)
        rc = -EINVAL;
    struct rate_limiter_update limiter;
    int has_limiter = rc ? 0 : field_rate_limiter(o, "rate_limiter", &limiter, e);
    if (!rc && has_limiter < 0)
        rc = has_limiter;
    has_limiter = has_limiter > 0 && (limiter.bandwidth_set || limiter.ops_set); /* `{}` changes nothing */
    if (!rc)
        rc = ctl_update_drive(c, body_id, path, e);
    return rc || !has_limiter ? rc : ctl_update_drive_rate_limiter(c, body_id, &limiter, e);
}

/* ---- network-interfaces ---- */

int api_put_net(struct controller *c, json_t *o, const char *path_id, struct errmsg *e)
{
    static const char *const keys[] = {"iface_id",        "host_dev_name",   "guest_mac", "mtu",
                                       "rx_rate_limiter", "tx_rate_limiter", NULL};
    const char *mac = NULL;
    struct net_config n = {0};
    uint64_t mtu;
    int rc = field_check_known(o, keys, e);
    if (!rc)
        rc = field_require(field_str(o, "iface_id", &n.id, e), "iface_id", e);
    if (!rc)
        rc = check_id("iface_id", n.id, path_id, e);
    if (!rc)
        rc = field_require(field_str(o, "host_dev_name", &n.tap, e), "host_dev_name", e);
    if (!rc && field_str(o, "guest_mac", &mac, e) < 0)
        rc = -EINVAL;
    if (!rc && field_uint(o, "mtu", 68, 65535, &mtu, e) != 0)
        rc = err_set(e, -EINVAL, "Invalid value for field `mtu`: setting the MTU is not implemented by Ember.");
    struct rate_limiter_update rx, tx;
    if (!rc &&
        (field_rate_limiter(o, "rx_rate_limiter", &rx, e) < 0 || field_rate_limiter(o, "tx_rate_limiter", &tx, e) < 0))
        rc = -EINVAL;
    n.rx_rate_limiter = rx.cfg;
    n.tx_rate_limiter = tx.cfg;
    if (!rc && (strlen(n.tap) == 0 || strlen(n.tap) > 15)) /* IFNAMSIZ less the NUL */
        rc = err_set(e, -EINVAL, "Invalid value for field `host_dev_name`: '%s' must be 1 to 15 characters.", n.tap);
    if (!rc && mac && (vm_config_parse_mac(mac, n.mac) || (n.mac[0] & 1)))
        rc = err_set(e, -EINVAL,
                     "Invalid value for field `guest_mac`: '%s' is not a unicast MAC address like 06:00:ac:10:00:02.",
                     mac);
    if (rc)
        return rc;
    n.has_mac = mac != NULL;
    return ctl_put_net(c, &n, mac, e);
}

int api_patch_net(struct controller *c, json_t *o, const char *id, struct errmsg *e)
{
    static const char *const keys[] = {"iface_id", "rx_rate_limiter", "tx_rate_limiter", NULL};
    const char *body_id = NULL;
    int rc = field_check_known(o, keys, e);
    if (!rc)
        rc = field_require(field_str(o, "iface_id", &body_id, e), "iface_id", e);
    if (!rc)
        rc = check_id("iface_id", body_id, id, e);
    struct rate_limiter_update rx, tx;
    int has_rx = rc ? 0 : field_rate_limiter(o, "rx_rate_limiter", &rx, e);
    int has_tx = rc || has_rx < 0 ? 0 : field_rate_limiter(o, "tx_rate_limiter", &tx, e);
    if (!rc && (has_rx < 0 || has_tx < 0))
        rc = -EINVAL;
    has_rx = has_rx > 0 && (rx.bandwidth_set || rx.ops_set); /* `{}` changes nothing */
    has_tx = has_tx > 0 && (tx.bandwidth_set || tx.ops_set);
    if (!rc)
        rc = ctl_update_net(c, body_id, e);
    if (rc || (!has_rx && !has_tx))
        return rc;
    return ctl_update_net_rate_limiters(c, body_id, has_rx ? &rx : NULL, has_tx ? &tx : NULL, e);
}

/* ---- vsock ---- */

int api_put_vsock(struct controller *c, json_t *o, const char *id, struct errmsg *e)
{
    (void)id;
    static const char *const keys[] = {"guest_cid", "uds_path", "vsock_id", NULL};
    uint64_t cid = 0;
    const char *uds = NULL, *vsock_id = NULL;
    int rc = field_check_known(o, keys, e);
    if (!rc)
        rc = field_require(field_uint(o, "guest_cid", 0, UINT32_MAX, &cid, e), "guest_cid", e);
    if (!rc)
        rc = field_require(field_str(o, "uds_path", &uds, e), "uds_path", e);
    if (!rc && field_str(o, "vsock_id", &vsock_id, e) < 0) /* deprecated: accepted, unused */
        rc = -EINVAL;
    if (!rc && (!*uds || strlen(uds) > VSOCK_UDS_PATH_MAX))
        rc = err_set(e, -EINVAL, "Invalid value for field `uds_path`: '%s' must be 1 to %d bytes long.", uds,
                     VSOCK_UDS_PATH_MAX);
    if (rc)
        return rc;
    /* Firecracker takes any u32 (firecracker-containerd sends 0), so Ember does too; vsock(7) reserves these. */
    if (!vsock_guest_cid_usual(cid))
        log_warn("vsock: guest_cid %" PRIu64 " is reserved by vsock(7) (guests normally use 3 to 4294967294); "
                 "accepted, as Firecracker accepts it",
                 cid);
    return ctl_put_vsock(c, (uint32_t)cid, uds, e);
}

/* ---- logger, metrics, serial ---- */

int api_put_logger(struct controller *c, json_t *o, const char *id, struct errmsg *e)
{
    (void)id;
    static const char *const keys[] = {"log_path", "level", "show_level", "show_log_origin", "module", NULL};
    const char *path = NULL, *level = "Info", *module = NULL;
    bool show_level = false, show_origin = false;
    int rc = field_check_known(o, keys, e);
    if (!rc && (field_str(o, "log_path", &path, e) < 0 || field_str(o, "level", &level, e) < 0 ||
                field_bool(o, "show_level", &show_level, e) < 0 ||
                field_bool(o, "show_log_origin", &show_origin, e) < 0 || field_str(o, "module", &module, e) < 0))
        rc = -EINVAL;
    if (rc)
        return rc;
    enum log_level lv;
    const char *spelling;
    if (log_parse_api_level(level, &lv, &spelling))
        return err_set(e, -EINVAL, "Invalid value for field `level`: '%s' must be one of " LOG_API_LEVEL_NAMES ".",
                       level);
    return ctl_set_logger(c, path, spelling, show_level, show_origin, e);
}

int api_put_metrics(struct controller *c, json_t *o, const char *id, struct errmsg *e)
{
    (void)id;
    static const char *const keys[] = {"metrics_path", "emit_id", "properties", NULL};
    const char *path = NULL;
    bool emit = false;
    int rc = field_check_known(o, keys, e);
    if (!rc)
        rc = field_require(field_str(o, "metrics_path", &path, e), "metrics_path", e);
    if (!rc && field_bool(o, "emit_id", &emit, e) < 0)
        rc = -EINVAL;
    json_t *props = json_object_get(o, "properties");
    if (json_is_null(props))
        props = NULL;
    if (!rc && props && !json_is_object(props))
        rc = err_set(e, -EINVAL, "Invalid type for field `properties`: expected an object of strings.");
    const char *k;
    json_t *v;
    if (!rc && props) {
        json_object_foreach(props, k, v)
        {
            if (!json_is_string(v))
                return err_set(e, -EINVAL, "Invalid type for field `properties`: the value of '%s' must be a string.",
                               k);
        }
    }
    return rc ? rc : ctl_set_metrics(c, path, emit, props, e);
}

int api_put_serial(struct controller *c, json_t *o, const char *id, struct errmsg *e)
{
    (void)id;
    static const char *const keys[] = {"serial_out_path", "rate_limiter", NULL};
    const char *path = NULL;
    int rc = field_check_known(o, keys, e);
    if (!rc && field_str(o, "serial_out_path", &path, e) < 0)
        rc = -EINVAL;
    if (!rc)
        rc = field_no_rate_limiter(o, "rate_limiter", e);
    if (!rc && path)
        rc = path_length("serial_out_path", path, e);
    return rc ? rc : ctl_set_serial(c, path, e);
}

int api_put_entropy(struct controller *c, json_t *o, const char *id, struct errmsg *e)
{
    (void)id;
    static const char *const keys[] = {"rate_limiter", NULL};
    struct rate_limiter_update limiter;
    int rc = field_check_known(o, keys, e);
    if (!rc && field_rate_limiter(o, "rate_limiter", &limiter, e) < 0)
        rc = -EINVAL;
    struct rng_config cfg = {.rate_limiter = limiter.cfg};
    return rc ? rc : ctl_set_entropy(c, &cfg, e);
}

/* ---- actions and the VM state ---- */

int api_put_action(struct controller *c, json_t *o, const char *id, struct errmsg *e)
{
    (void)id;
    static const struct {
        const char *type;
        enum ctl_phase phase;
        int (*run)(struct controller *c, struct errmsg *err);
    } actions[] = {
        {"InstanceStart", CTL_PRE_BOOT, ctl_start},
        {"SendCtrlAltDel", CTL_POST_BOOT, ctl_send_ctrl_alt_del},
        {"FlushMetrics", CTL_POST_BOOT, ctl_flush_metrics},
    };
    static const char *const keys[] = {"action_type", NULL};
    const char *type = NULL;
    int rc = field_check_known(o, keys, e);
    if (!rc)
        rc = field_require(field_str(o, "action_type", &type, e), "action_type", e);
    if (rc)
        return rc;
    for (unsigned i = 0; i < sizeof(actions) / sizeof(actions[0]); i++) {
        if (strcmp(type, actions[i].type) != 0)
            continue;
        rc = ctl_check_phase(c, actions[i].phase, e);
        return rc ? rc : actions[i].run(c, e);
    }
    return err_set(e, -EINVAL,
                   "Invalid value for field `action_type`: '%s' must be InstanceStart, SendCtrlAltDel or FlushMetrics.",
                   type);
}

int api_patch_vm(struct controller *c, json_t *o, const char *id, struct errmsg *e)
{
    (void)id;
    static const char *const keys[] = {"state", NULL};
    const char *state = NULL;
    int rc = field_check_known(o, keys, e);
    if (!rc)
        rc = field_require(field_str(o, "state", &state, e), "state", e);
    if (rc)
        return rc;
    if (strcmp(state, "Paused") == 0)
        return ctl_pause(c, e);
    if (strcmp(state, "Resumed") == 0)
        return ctl_resume(c, e);
    return err_set(e, -EINVAL, "Invalid value for field `state`: '%s' must be Paused or Resumed.", state);
}

/* ---- GET bodies ---- */

json_t *api_get_root(const struct controller *c)
{
    return json_pack("{s:s,s:s,s:s,s:s}", "app_name", "ember", "id", c->instance_id, "state", ctl_state_name(c),
                     "vmm_version", EMBER_VERSION_STRING);
}

json_t *api_get_version(const struct controller *c)
{
    (void)c;
    return json_pack("{s:s}", "firecracker_version", EMBER_FIRECRACKER_API_VERSION);
}

json_t *api_get_machine(const struct controller *c)
{
    const struct vm_config *cfg = ctl_config(c);
    json_t *o = json_pack("{s:i,s:I,s:b,s:b,s:s}", "vcpu_count", (int)cfg->vcpus, "mem_size_mib",
                          (json_int_t)cfg->mem_mib, "smt", c->reported.smt, "track_dirty_pages",
                          (bool)c->cfg.track_dirty_pages, "huge_pages", "None");
    /* Only a static template is shown (a custom one is not, as in Firecracker). */
    if (o && cpu_template_static(cfg->cpu_template))
        json_object_set_new(o, "cpu_template", json_string(cpu_template_name(cfg->cpu_template)));
    return o;
}

/* A limiter that limits something, under key. */
static void set_limiter(json_t *o, const char *key, const struct rate_limiter_config *rl)
{
    json_t *v = rate_limiter_to_json(rl);
    if (v)
        json_object_set_new(o, key, v);
}

json_t *api_full_config(const struct controller *c)
{
    const struct vm_config *cfg = ctl_config(c);
    json_t *root = json_object();
    json_object_set_new(root, "machine-config", api_get_machine(c));
    if (cfg->kernel_path) {
        json_t *b = json_pack("{s:s}", "kernel_image_path", cfg->kernel_path);
        if (cfg->cmdline)
            json_object_set_new(b, "boot_args", json_string(cfg->cmdline));
        if (cfg->initrd_path)
            json_object_set_new(b, "initrd_path", json_string(cfg->initrd_path));
        json_object_set_new(root, "boot-source", b);
    }
    json_t *drives = json_array();
    for (unsigned i = 0; i < cfg->nr_drives; i++) {
        const struct blk_config *d = &cfg->drives[i];
        json_t *o = json_pack("{s:s,s:s,s:b,s:b,s:s,s:s}", "drive_id", d->id, "path_on_host", d->path, "is_root_device",
                              d->root, "is_read_only", d->read_only, "cache_type",
                              c->reported.drive_writeback[i] ? "Writeback" : "Unsafe", "io_engine",
                              d->engine == BLK_ENGINE_ASYNC ? "Async" : "Sync");
        set_limiter(o, "rate_limiter", &d->rate_limiter);
        json_array_append_new(drives, o);
    }
    json_object_set_new(root, "drives", drives);
    json_t *nets = json_array();
    for (unsigned i = 0; i < cfg->nr_nets; i++) {
        const struct net_config *n = &cfg->nets[i];
        json_t *o = json_pack("{s:s,s:s}", "iface_id", n->id, "host_dev_name", n->tap);
        if (n->has_mac)
            json_object_set_new(o, "guest_mac", json_string(c->reported.guest_mac[i]));
        set_limiter(o, "rx_rate_limiter", &n->rx_rate_limiter);
        set_limiter(o, "tx_rate_limiter", &n->tx_rate_limiter);
        json_array_append_new(nets, o);
    }
    json_object_set_new(root, "network-interfaces", nets);
    if (cfg->has_entropy) {
        json_t *o = json_object();
        set_limiter(o, "rate_limiter", &cfg->entropy.rate_limiter);
        json_object_set_new(root, "entropy", o);
    }
    if (cfg->vsock.uds_path)
        json_object_set_new(root, "vsock",
                            json_pack("{s:I,s:s}", "guest_cid", (json_int_t)cfg->vsock.guest_cid, "uds_path",
                                      cfg->vsock.uds_path));
    json_t *balloon = api_balloon_config_json(c);
    if (balloon)
        json_object_set_new(root, "balloon", balloon);
    if (c->logger_set) {
        json_t *l = json_pack("{s:s,s:b,s:b}", "level", c->log_level, "show_level", c->show_level, "show_log_origin",
                              c->show_log_origin);
        if (c->log_path)
            json_object_set_new(l, "log_path", json_string(c->log_path));
        json_object_set_new(root, "logger", l);
    }
    if (c->metrics_path)
        json_object_set_new(root, "metrics", json_pack("{s:s}", "metrics_path", c->metrics_path));
    json_t *mmds = api_mmds_config_json(c);
    if (mmds)
        json_object_set_new(root, "mmds-config", mmds);
    return root;
}
