#include "api/routes.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/version.h"
#include "vm/vm.h"

#define MSG_PRE_BOOT_ONLY "The requested operation is not supported after starting the microVM."
#define MSG_POST_BOOT_ONLY "The requested operation is not supported before starting the microVM."

/* ---- JSON field access with Firecracker-style errors ---- */

static int bad(struct errmsg *e, const char *fmt, const char *a, const char *b)
{
    return err_set(e, -EINVAL, fmt, a, b ? b : "");
}

/* Rejects any key not in `allowed` (NULL-terminated), as serde's deny_unknown_fields does. */
static int check_fields(json_t *o, const char *const *allowed, struct errmsg *e)
{
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v) {
        int ok = 0;
        for (const char *const *a = allowed; *a; a++)
            ok |= strcmp(*a, key) == 0;
        if (!ok) {
            char list[512] = "";
            size_t pos = 0;
            for (const char *const *a = allowed; *a && pos < sizeof(list); a++)
                pos += (size_t)snprintf(list + pos, sizeof(list) - pos, "%s`%s`", a == allowed ? "" : ", ", *a);
            return bad(e, "unknown field `%s`, expected one of %s", key, list);
        }
    }
    return 0;
}

/* Each getter: 1 if present, 0 if absent or null, negative on a type/range error. */
static int get_str(json_t *o, const char *key, const char **out, struct errmsg *e)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return bad(e, "Invalid type for field `%s`: expected a string.%s", key, NULL);
    *out = json_string_value(v);
    if (strlen(*out) != json_string_length(v))
        return bad(e, "Invalid value for field `%s`: contains a NUL character.%s", key, NULL);
    return 1;
}

static int get_bool(json_t *o, const char *key, bool *out, struct errmsg *e)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_boolean(v))
        return bad(e, "Invalid type for field `%s`: expected a boolean.%s", key, NULL);
    *out = json_is_true(v);
    return 1;
}

static int get_uint(json_t *o, const char *key, uint64_t min, uint64_t max, uint64_t *out, struct errmsg *e)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v))
        return bad(e, "Invalid type for field `%s`: expected an unsigned integer.%s", key, NULL);
    json_int_t n = json_integer_value(v);
    if (n < 0 || (uint64_t)n < min || (uint64_t)n > max) {
        char range[64];
        snprintf(range, sizeof(range), "%llu and %llu", (unsigned long long)min, (unsigned long long)max);
        return bad(e, "Invalid value for field `%s`: must be between %s.", key, range);
    }
    *out = (uint64_t)n;
    return 1;
}

static int require(int got, const char *key, struct errmsg *e)
{
    if (got < 0)
        return got;
    if (got == 0)
        return bad(e, "missing field `%s`%s", key, NULL);
    return 0;
}

/* A rate limiter Ember does not implement: only absent or null is accepted. */
static int no_rate_limiter(json_t *o, const char *key, struct errmsg *e)
{
    json_t *v = json_object_get(o, key);
    if (v && !json_is_null(v))
        return bad(e, "Invalid value for field `%s`: rate limiting is not implemented by Ember.%s", key, NULL);
    return 0;
}

static int readable_file(const char *what, const char *path, struct errmsg *e)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return err_set(e, -errno, "%s '%s' cannot be opened: %s", what, path, strerror(errno));
    close(fd);
    return 0;
}

static int copy_str(char *dst, size_t size, const char *src, const char *field, struct errmsg *e)
{
    if (strlen(src) >= size)
        return bad(e, "Invalid value for field `%s`: longer than %s bytes.", field, size == CTL_PATH ? "4095" : "the limit");
    memcpy(dst, src, strlen(src) + 1);
    return 0;
}

/* ---- the configuration objects ---- */

static int apply_machine(struct controller *c, json_t *o, bool patch, struct errmsg *e)
{
    static const char *const keys[] = {"vcpu_count", "mem_size_mib", "smt", "track_dirty_pages", "huge_pages",
                                       "cpu_template", NULL};
    int rc = check_fields(o, keys, e);
    if (rc)
        return rc;
    uint64_t vcpus = c->vcpu_count, mem = c->mem_mib;
    bool smt = patch ? c->smt : false, dirty = patch ? c->track_dirty_pages : false;
    const char *huge = NULL, *tmpl = NULL;
    int g;
    if ((g = get_uint(o, "vcpu_count", 1, EMBER_MAX_VCPUS, &vcpus, e)) < 0 || (!patch && (rc = require(g, "vcpu_count", e))))
        return g < 0 ? g : rc;
    if ((g = get_uint(o, "mem_size_mib", 1, 1ULL << 20, &mem, e)) < 0 || (!patch && (rc = require(g, "mem_size_mib", e))))
        return g < 0 ? g : rc;
    if (get_bool(o, "smt", &smt, e) < 0 || get_bool(o, "track_dirty_pages", &dirty, e) < 0 ||
        get_str(o, "huge_pages", &huge, e) < 0 || get_str(o, "cpu_template", &tmpl, e) < 0)
        return -EINVAL;
    if (smt && vcpus > 1 && vcpus % 2)
        return bad(e, "The vCPU number is invalid! The vCPU number can only be 1 or an even number when SMT is enabled.%s%s", "", NULL);
    if (huge && strcmp(huge, "None") != 0)
        return bad(e, "Invalid value for field `huge_pages`: '%s' is not supported by Ember (only None).%s", huge, NULL);
    if (tmpl && strcmp(tmpl, "None") != 0)
        return bad(e, "Invalid value for field `cpu_template`: '%s' is not supported by Ember (only None).%s", tmpl, NULL);
    c->vcpu_count = (unsigned)vcpus;
    c->mem_mib = mem;
    c->smt = smt;
    c->track_dirty_pages = dirty;
    return 0;
}

static int apply_boot_source(struct controller *c, json_t *o, struct errmsg *e)
{
    static const char *const keys[] = {"kernel_image_path", "boot_args", "initrd_path", NULL};
    const char *kernel = NULL, *args = NULL, *initrd = NULL;
    int rc = check_fields(o, keys, e);
    if (!rc)
        rc = require(get_str(o, "kernel_image_path", &kernel, e), "kernel_image_path", e);
    if (!rc && (get_str(o, "boot_args", &args, e) < 0 || get_str(o, "initrd_path", &initrd, e) < 0))
        rc = -EINVAL;
    if (!rc)
        rc = readable_file("Kernel file", kernel, e);
    if (!rc && initrd)
        rc = readable_file("Initrd file", initrd, e);
    if (!rc && args && strlen(args) >= sizeof(c->boot_args))
        rc = bad(e, "Invalid value for field `boot_args`: longer than %s bytes.%s", "4095", NULL);
    if (!rc)
        rc = copy_str(c->kernel, sizeof(c->kernel), kernel, "kernel_image_path", e);
    if (!rc && initrd)
        rc = copy_str(c->initrd, sizeof(c->initrd), initrd, "initrd_path", e);
    if (rc)
        return rc;
    c->has_initrd = initrd != NULL;
    c->has_boot_args = args != NULL;
    if (args)
        snprintf(c->boot_args, sizeof(c->boot_args), "%s", args);
    c->boot_set = true;
    return 0;
}

static int check_id(const char *field, const char *id, const char *path_id, struct errmsg *e)
{
    if (!vm_config_valid_id(id))
        return bad(e, "Invalid value for field `%s`: '%s' must be 1-64 characters of [A-Za-z0-9_].", field, id);
    if (path_id && strcmp(id, path_id) != 0)
        return bad(e, "The id from the path does not match the id from the body!%s%s", "", NULL);
    return 0;
}

static int apply_drive(struct controller *c, json_t *o, const char *path_id, struct errmsg *e)
{
    static const char *const keys[] = {"drive_id", "path_on_host", "is_root_device", "partuuid", "is_read_only",
                                       "cache_type", "io_engine", "rate_limiter", "socket", NULL};
    const char *id = NULL, *path = NULL, *partuuid = NULL, *cache = NULL, *engine = NULL, *sock = NULL;
    bool root = false, ro = false;
    int rc = check_fields(o, keys, e);
    if (!rc)
        rc = require(get_str(o, "drive_id", &id, e), "drive_id", e);
    if (!rc)
        rc = check_id("drive_id", id, path_id, e);
    if (!rc)
        rc = require(get_bool(o, "is_root_device", &root, e), "is_root_device", e);
    if (!rc && (get_bool(o, "is_read_only", &ro, e) < 0 || get_str(o, "partuuid", &partuuid, e) < 0 ||
                get_str(o, "cache_type", &cache, e) < 0 || get_str(o, "io_engine", &engine, e) < 0 ||
                get_str(o, "socket", &sock, e) < 0))
        rc = -EINVAL;
    if (!rc)
        rc = no_rate_limiter(o, "rate_limiter", e);
    if (!rc && sock)
        rc = bad(e, "Invalid value for field `socket`: vhost-user drives are not implemented by Ember.%s%s", "", NULL);
    if (!rc && partuuid)
        rc = bad(e, "Invalid value for field `partuuid`: Ember names the root drive /dev/vda; partuuid is not supported.%s%s", "", NULL);
    if (!rc && cache && strcmp(cache, "Unsafe") && strcmp(cache, "Writeback"))
        rc = bad(e, "Invalid value for field `cache_type`: '%s' must be Unsafe or Writeback.%s", cache, NULL);
    if (!rc && engine && strcmp(engine, "Sync") && strcmp(engine, "Async"))
        rc = bad(e, "Invalid value for field `io_engine`: '%s' must be Sync or Async.%s", engine, NULL);
    if (!rc)
        rc = require(get_str(o, "path_on_host", &path, e), "path_on_host", e);
    if (!rc)
        rc = readable_file("Drive file", path, e);
    if (rc)
        return rc;
    unsigned slot = c->nr_drives;
    for (unsigned i = 0; i < c->nr_drives; i++) {
        if (strcmp(c->drives[i].id, id) == 0)
            slot = i; /* PUT on an existing id replaces it */
        else if (root && c->drives[i].root)
            return bad(e, "A root block device already exists!%s%s", "", NULL);
    }
    if (slot == EMBER_MAX_DRIVES)
        return bad(e, "Too many drives: Ember supports %s.%s", "8", NULL);
    struct ctl_drive d;
    memset(&d, 0, sizeof(d));
    snprintf(d.id, sizeof(d.id), "%s", id);
    if ((rc = copy_str(d.path, sizeof(d.path), path, "path_on_host", e)))
        return rc;
    d.root = root;
    d.read_only = ro;
    d.engine = engine && strcmp(engine, "Async") == 0 ? BLK_ENGINE_ASYNC : BLK_ENGINE_SYNC;
    snprintf(d.cache_type, sizeof(d.cache_type), "%s", cache ? cache : "Unsafe");
    c->drives[slot] = d;
    if (slot == c->nr_drives)
        c->nr_drives++;
    return 0;
}

/* Exactly "xx:xx:xx:xx:xx:xx" in hex digits (sscanf alone would take blanks and 0x). */
static int parse_mac(const char *text, uint8_t mac[6])
{
    if (strlen(text) != 17)
        return -EINVAL;
    for (int i = 0; i < 17; i++)
        if (i % 3 == 2 ? text[i] != ':' : !isxdigit((unsigned char)text[i]))
            return -EINVAL;
    for (int i = 0; i < 6; i++)
        mac[i] = (uint8_t)strtoul((char[]){text[i * 3], text[i * 3 + 1], '\0'}, NULL, 16);
    return 0;
}

static int apply_net(struct controller *c, json_t *o, const char *path_id, struct errmsg *e)
{
    static const char *const keys[] = {"iface_id", "host_dev_name", "guest_mac", "mtu", "rx_rate_limiter",
                                       "tx_rate_limiter", NULL};
    const char *id = NULL, *tap = NULL, *mac = NULL;
    uint64_t mtu;
    int rc = check_fields(o, keys, e);
    if (!rc)
        rc = require(get_str(o, "iface_id", &id, e), "iface_id", e);
    if (!rc)
        rc = check_id("iface_id", id, path_id, e);
    if (!rc)
        rc = require(get_str(o, "host_dev_name", &tap, e), "host_dev_name", e);
    if (!rc && get_str(o, "guest_mac", &mac, e) < 0)
        rc = -EINVAL;
    if (!rc && get_uint(o, "mtu", 68, 65535, &mtu, e) != 0)
        rc = bad(e, "Invalid value for field `mtu`: setting the MTU is not implemented by Ember.%s%s", "", NULL);
    if (!rc)
        rc = no_rate_limiter(o, "rx_rate_limiter", e);
    if (!rc)
        rc = no_rate_limiter(o, "tx_rate_limiter", e);
    if (!rc && (strlen(tap) == 0 || strlen(tap) >= sizeof(c->nets[0].tap)))
        rc = bad(e, "Invalid value for field `host_dev_name`: '%s' must be 1 to 15 characters.%s", tap, NULL);
    struct ctl_net n;
    memset(&n, 0, sizeof(n));
    if (!rc && mac && (parse_mac(mac, n.mac) || (n.mac[0] & 1)))
        rc = bad(e, "Invalid value for field `guest_mac`: '%s' is not a unicast MAC address like 06:00:ac:10:00:02.%s", mac, NULL);
    if (rc)
        return rc;
    unsigned slot = c->nr_nets;
    for (unsigned i = 0; i < c->nr_nets; i++) {
        if (strcmp(c->nets[i].id, id) == 0) {
            slot = i;
            continue;
        }
        if (strcmp(c->nets[i].tap, tap) == 0)
            return bad(e, "The host device name %s is already in use by another network interface.%s", tap, NULL);
        if (mac && c->nets[i].has_mac && memcmp(c->nets[i].mac, n.mac, 6) == 0)
            return bad(e, "The MAC address %s is already in use by another network interface.%s", mac, NULL);
    }
    if (slot == EMBER_MAX_NETS)
        return bad(e, "Too many network interfaces: Ember supports %s.%s", "4", NULL);
    snprintf(n.id, sizeof(n.id), "%s", id);
    snprintf(n.tap, sizeof(n.tap), "%s", tap);
    if ((n.has_mac = mac != NULL))
        snprintf(n.mac_text, sizeof(n.mac_text), "%s", mac);
    c->nets[slot] = n;
    if (slot == c->nr_nets)
        c->nr_nets++;
    return 0;
}

static int apply_logger(struct controller *c, json_t *o, struct errmsg *e)
{
    static const char *const keys[] = {"log_path", "level", "show_level", "show_log_origin", "module", NULL};
    const char *path = NULL, *level = "Info", *module = NULL;
    bool show_level = false, show_origin = false;
    int rc = check_fields(o, keys, e);
    if (!rc && (get_str(o, "log_path", &path, e) < 0 || get_str(o, "level", &level, e) < 0 ||
                get_bool(o, "show_level", &show_level, e) < 0 || get_bool(o, "show_log_origin", &show_origin, e) < 0 ||
                get_str(o, "module", &module, e) < 0))
        rc = -EINVAL;
    if (rc)
        return rc;
    static const char *const levels[] = {"Error", "Warning", "Info", "Debug", "Trace", "Off"};
    int ok = 0;
    for (unsigned i = 0; i < 6 && !ok; i++)
        if (strcasecmp(level, levels[i]) == 0)
            ok = 1, level = levels[i]; /* reported back in Firecracker's spelling */
    if (!ok)
        return bad(e, "Invalid value for field `level`: '%s' must be one of Error, Warning, Info, Debug, Trace, Off.%s", level, NULL);
    return ctl_set_logger(c, path, level, show_level, show_origin, e);
}

static int apply_metrics(struct controller *c, json_t *o, struct errmsg *e)
{
    static const char *const keys[] = {"metrics_path", "emit_id", "properties", NULL};
    const char *path = NULL;
    bool emit = false;
    int rc = check_fields(o, keys, e);
    if (!rc)
        rc = require(get_str(o, "metrics_path", &path, e), "metrics_path", e);
    if (!rc && get_bool(o, "emit_id", &emit, e) < 0)
        rc = -EINVAL;
    json_t *props = json_object_get(o, "properties");
    if (!rc && props && !json_is_null(props)) {
        const char *k;
        json_t *v;
        if (!json_is_object(props))
            rc = bad(e, "Invalid type for field `%s`: expected an object of strings.%s", "properties", NULL);
        else
            json_object_foreach(props, k, v) if (!rc && !json_is_string(v)) rc = bad(
                e, "Invalid type for field `properties`: the value of '%s' must be a string.%s", k, NULL);
    }
    if (rc || (rc = ctl_set_metrics(c, path, e)))
        return rc;
    c->metrics_emit_id = emit;
    json_decref(c->metrics_properties);
    c->metrics_properties = props && json_is_object(props) ? json_deep_copy(props) : NULL;
    return 0;
}

static int apply_serial(struct controller *c, json_t *o, struct errmsg *e)
{
    static const char *const keys[] = {"serial_out_path", "rate_limiter", NULL};
    const char *path = NULL;
    int rc = check_fields(o, keys, e);
    if (!rc && get_str(o, "serial_out_path", &path, e) < 0)
        rc = -EINVAL;
    if (!rc)
        rc = no_rate_limiter(o, "rate_limiter", e);
    if (!rc && path)
        rc = copy_str(c->serial_out, sizeof(c->serial_out), path, "serial_out_path", e);
    if (rc)
        return rc;
    c->serial_set = true;
    if (!path)
        c->serial_out[0] = '\0';
    return 0;
}

/* ---- GET bodies ---- */

static json_t *machine_json(const struct controller *c)
{
    return json_pack("{s:i,s:I,s:b,s:b,s:s}", "vcpu_count", (int)c->vcpu_count, "mem_size_mib", (json_int_t)c->mem_mib,
                     "smt", c->smt, "track_dirty_pages", c->track_dirty_pages, "huge_pages", "None");
}

json_t *api_full_config(const struct controller *c)
{
    json_t *root = json_object();
    json_object_set_new(root, "machine-config", machine_json(c));
    if (c->boot_set) {
        json_t *b = json_pack("{s:s}", "kernel_image_path", c->kernel);
        if (c->has_boot_args)
            json_object_set_new(b, "boot_args", json_string(c->boot_args));
        if (c->has_initrd)
            json_object_set_new(b, "initrd_path", json_string(c->initrd));
        json_object_set_new(root, "boot-source", b);
    }
    json_t *drives = json_array();
    for (unsigned i = 0; i < c->nr_drives; i++) {
        const struct ctl_drive *d = &c->drives[i];
        json_array_append_new(drives, json_pack("{s:s,s:s,s:b,s:b,s:s,s:s}", "drive_id", d->id, "path_on_host", d->path,
                                                "is_root_device", d->root, "is_read_only", d->read_only, "cache_type",
                                                d->cache_type, "io_engine",
                                                d->engine == BLK_ENGINE_ASYNC ? "Async" : "Sync"));
    }
    json_object_set_new(root, "drives", drives);
    json_t *nets = json_array();
    for (unsigned i = 0; i < c->nr_nets; i++) {
        const struct ctl_net *n = &c->nets[i];
        json_t *o = json_pack("{s:s,s:s}", "iface_id", n->id, "host_dev_name", n->tap);
        if (n->has_mac)
            json_object_set_new(o, "guest_mac", json_string(n->mac_text));
        json_array_append_new(nets, o);
    }
    json_object_set_new(root, "network-interfaces", nets);
    if (c->logger_set) {
        json_t *l = json_pack("{s:s,s:b,s:b}", "level", c->log_level, "show_level", c->show_level, "show_log_origin",
                              c->show_log_origin);
        if (c->log_path[0])
            json_object_set_new(l, "log_path", json_string(c->log_path));
        json_object_set_new(root, "logger", l);
    }
    if (c->metrics_set)
        json_object_set_new(root, "metrics", json_pack("{s:s}", "metrics_path", c->metrics_path));
    return root;
}

static void reply_json(struct api_reply *r, json_t *o)
{
    r->status = 200;
    r->body = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!r->body)
        api_reply_error(r, 500, "out of memory");
}

static void reply_result(struct api_reply *r, int rc, const struct errmsg *e)
{
    if (rc)
        api_reply_error(r, 400, "%s", e->text);
    else
        r->status = 204;
}

/* ---- routing ---- */

static const char *const unimplemented[] = {"/snapshot", "/balloon", "/vsock", "/mmds", "/entropy", "/cpu-config",
                                            "/pmem", "/hotplug", NULL};

/* "/drives/ID" → "ID" when path starts with prefix and has a non-empty last segment. */
static const char *path_id(const char *path, const char *prefix)
{
    size_t n = strlen(prefix);
    if (strncmp(path, prefix, n) != 0 || path[n] == '\0' || strchr(path + n, '/'))
        return NULL;
    return path + n;
}

static bool pre_boot(const struct controller *c, struct api_reply *r)
{
    if (c->state == CTL_NOT_STARTED)
        return true;
    api_reply_error(r, 400, MSG_PRE_BOOT_ONLY);
    return false;
}

static bool post_boot(const struct controller *c, struct api_reply *r)
{
    if (c->state != CTL_NOT_STARTED)
        return true;
    api_reply_error(r, 400, MSG_POST_BOOT_ONLY);
    return false;
}

static void do_action(struct controller *c, json_t *o, struct api_reply *r)
{
    static const char *const keys[] = {"action_type", NULL};
    struct errmsg e;
    const char *type = NULL;
    int rc = check_fields(o, keys, &e);
    if (!rc)
        rc = require(get_str(o, "action_type", &type, &e), "action_type", &e);
    if (rc)
        return reply_result(r, rc, &e);
    if (strcmp(type, "InstanceStart") == 0) {
        if (pre_boot(c, r))
            reply_result(r, ctl_start(c, &e), &e);
    } else if (strcmp(type, "SendCtrlAltDel") == 0) {
        if (post_boot(c, r)) {
            rc = vm_ctrl_alt_del(c->vm);
            if (rc)
                err_set(&e, rc, "The keyboard controller's buffer is full; try again.");
            reply_result(r, rc, &e);
        }
    } else if (strcmp(type, "FlushMetrics") == 0) {
        if (post_boot(c, r))
            reply_result(r, ctl_flush_metrics(c, &e), &e);
    } else {
        api_reply_error(r, 400, "Invalid value for field `action_type`: '%s' must be InstanceStart, SendCtrlAltDel or FlushMetrics.", type);
    }
}

static void patch_drive(struct controller *c, json_t *o, const char *id, struct api_reply *r)
{
    static const char *const keys[] = {"drive_id", "path_on_host", "rate_limiter", NULL};
    struct errmsg e;
    const char *body_id = NULL, *path = NULL;
    int rc = check_fields(o, keys, &e);
    if (!rc)
        rc = require(get_str(o, "drive_id", &body_id, &e), "drive_id", &e);
    if (!rc)
        rc = check_id("drive_id", body_id, id, &e);
    if (!rc && get_str(o, "path_on_host", &path, &e) < 0)
        rc = -EINVAL;
    if (!rc)
        rc = no_rate_limiter(o, "rate_limiter", &e);
    struct ctl_drive *d = NULL;
    for (unsigned i = 0; !rc && i < c->nr_drives; i++)
        if (strcmp(c->drives[i].id, id) == 0)
            d = &c->drives[i];
    if (!rc && !d)
        rc = bad(&e, "Invalid value for field `drive_id`: no drive '%s' is attached.%s", id, NULL);
    if (!rc && path) {
        rc = vm_replace_drive(c->vm, id, path, &e);
        if (!rc)
            snprintf(d->path, sizeof(d->path), "%s", path);
    }
    reply_result(r, rc, &e);
}

static void patch_net(struct controller *c, json_t *o, const char *id, struct api_reply *r)
{
    static const char *const keys[] = {"iface_id", "rx_rate_limiter", "tx_rate_limiter", NULL};
    struct errmsg e;
    const char *body_id = NULL;
    int rc = check_fields(o, keys, &e);
    if (!rc)
        rc = require(get_str(o, "iface_id", &body_id, &e), "iface_id", &e);
    if (!rc)
        rc = check_id("iface_id", body_id, id, &e);
    if (!rc)
        rc = no_rate_limiter(o, "rx_rate_limiter", &e);
    if (!rc)
        rc = no_rate_limiter(o, "tx_rate_limiter", &e);
    int found = 0;
    for (unsigned i = 0; !rc && i < c->nr_nets; i++)
        found |= strcmp(c->nets[i].id, id) == 0;
    if (!rc && !found)
        rc = bad(&e, "Invalid value for field `iface_id`: no network interface '%s' is attached.%s", id, NULL);
    reply_result(r, rc, &e);
}

static void patch_vm(struct controller *c, json_t *o, struct api_reply *r)
{
    static const char *const keys[] = {"state", NULL};
    struct errmsg e;
    const char *state = NULL;
    int rc = check_fields(o, keys, &e);
    if (!rc)
        rc = require(get_str(o, "state", &state, &e), "state", &e);
    if (rc)
        return reply_result(r, rc, &e);
    if (strcmp(state, "Paused") == 0) {
        vm_pause(c->vm);
        c->state = CTL_PAUSED;
    } else if (strcmp(state, "Resumed") == 0) {
        vm_resume(c->vm);
        c->state = CTL_RUNNING;
    } else {
        return api_reply_error(r, 400, "Invalid value for field `state`: '%s' must be Paused or Resumed.", state);
    }
    r->status = 204;
}

/* Whether method + path name an endpoint, checked before the body is looked at. */
static bool route_known(const char *method, const char *path)
{
    static const struct { const char *method, *path; bool prefix; } routes[] = {
        {"GET", "/", false}, {"GET", "/version", false}, {"GET", "/machine-config", false},
        {"PUT", "/machine-config", false}, {"PATCH", "/machine-config", false}, {"GET", "/vm/config", false},
        {"PUT", "/boot-source", false}, {"PUT", "/drives/", true}, {"PATCH", "/drives/", true},
        {"PUT", "/network-interfaces/", true}, {"PATCH", "/network-interfaces/", true},
        {"PUT", "/actions", false}, {"PATCH", "/vm", false}, {"PUT", "/logger", false},
        {"PUT", "/metrics", false}, {"PUT", "/serial", false},
    };
    for (unsigned i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (strcmp(method, routes[i].method) != 0)
            continue;
        if (routes[i].prefix ? path_id(path, routes[i].path) != NULL : strcmp(path, routes[i].path) == 0)
            return true;
    }
    return false;
}

void api_handle(void *ctx, const char *method, const char *path, const char *body, size_t len,
                struct api_reply *r)
{
    struct controller *c = ctx;
    bool is_get = strcmp(method, "GET") == 0, is_put = strcmp(method, "PUT") == 0,
         is_patch = strcmp(method, "PATCH") == 0;
    for (const char *const *u = unimplemented; *u; u++) {
        size_t n = strlen(*u);
        if (strncmp(path, *u, n) == 0 && (path[n] == '\0' || path[n] == '/'))
            return api_reply_error(r, 400, "Ember does not implement %s (%s %s).", *u, method, path);
    }
    if (!route_known(method, path))
        return api_reply_error(r, 400, "Invalid request method and/or path: %s %s.", method, path);
    if (is_get && len)
        return api_reply_error(r, 400, "GET requests take no body.");
    json_t *o = NULL;
    if (!is_get) {
        if (!len)
            return api_reply_error(r, 400, "The body of the request is empty: %s %s needs a JSON object.", method, path);
        json_error_t je;
        o = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
        if (!o)
            return api_reply_error(r, 400, "Invalid JSON body: %s (line %d, column %d).", je.text, je.line, je.column);
        if (!json_is_object(o)) {
            json_decref(o);
            return api_reply_error(r, 400, "Invalid JSON body: expected a JSON object.");
        }
    }
    struct errmsg e;
    const char *id;
    if (is_get && strcmp(path, "/") == 0) {
        reply_json(r, json_pack("{s:s,s:s,s:s,s:s}", "app_name", "ember", "id", c->instance_id, "state",
                                ctl_state_name(c), "vmm_version", EMBER_VERSION_STRING));
    } else if (is_get && strcmp(path, "/version") == 0) {
        reply_json(r, json_pack("{s:s}", "firecracker_version", EMBER_VERSION_STRING));
    } else if (strcmp(path, "/machine-config") == 0 && is_get) {
        reply_json(r, machine_json(c));
    } else if (strcmp(path, "/machine-config") == 0) {
        if (pre_boot(c, r))
            reply_result(r, apply_machine(c, o, is_patch, &e), &e);
    } else if (strcmp(path, "/vm/config") == 0 && is_get) {
        reply_json(r, api_full_config(c));
    } else if (strcmp(path, "/boot-source") == 0 && is_put) {
        if (pre_boot(c, r))
            reply_result(r, apply_boot_source(c, o, &e), &e);
    } else if ((id = path_id(path, "/drives/")) && is_put) {
        if (pre_boot(c, r))
            reply_result(r, apply_drive(c, o, id, &e), &e);
    } else if ((id = path_id(path, "/drives/")) && is_patch) {
        if (post_boot(c, r))
            patch_drive(c, o, id, r);
    } else if ((id = path_id(path, "/network-interfaces/")) && is_put) {
        if (pre_boot(c, r))
            reply_result(r, apply_net(c, o, id, &e), &e);
    } else if ((id = path_id(path, "/network-interfaces/")) && is_patch) {
        if (post_boot(c, r))
            patch_net(c, o, id, r);
    } else if (strcmp(path, "/actions") == 0 && is_put) {
        do_action(c, o, r);
    } else if (strcmp(path, "/vm") == 0 && is_patch) {
        if (post_boot(c, r))
            patch_vm(c, o, r);
    } else if (strcmp(path, "/logger") == 0 && is_put) {
        if (pre_boot(c, r))
            reply_result(r, apply_logger(c, o, &e), &e);
    } else if (strcmp(path, "/metrics") == 0 && is_put) {
        if (pre_boot(c, r))
            reply_result(r, apply_metrics(c, o, &e), &e);
    } else if (strcmp(path, "/serial") == 0 && is_put) {
        if (pre_boot(c, r))
            reply_result(r, apply_serial(c, o, &e), &e);
    } else {
        api_reply_error(r, 400, "Invalid request method and/or path: %s %s.", method, path);
    }
    json_decref(o);
}

int api_apply_config(struct controller *c, json_t *root, struct errmsg *err)
{
    static const char *const keys[] = {"boot-source", "drives", "machine-config", "network-interfaces", "logger",
                                       "metrics", "serial", "balloon", "vsock", "mmds-config", "entropy",
                                       "cpu-config", "pmem", "memory-hotplug", NULL};
    if (!json_is_object(root))
        return err_set(err, -EINVAL, "the configuration must be a JSON object");
    int rc = check_fields(root, keys, err);
    if (rc)
        return rc;
    for (unsigned i = 7; keys[i]; i++) {
        json_t *v = json_object_get(root, keys[i]);
        if (v && !json_is_null(v))
            return err_set(err, -EINVAL, "\"%s\": not implemented by Ember", keys[i]);
    }
    /* Logger first, so what follows is logged where the user asked. */
    static const char *const order[] = {"logger", "metrics", "machine-config", "boot-source", "serial", NULL};
    for (const char *const *k = order; *k; k++) {
        json_t *v = json_object_get(root, *k);
        if (!v || json_is_null(v))
            continue;
        if (!json_is_object(v))
            return err_set(err, -EINVAL, "\"%s\" must be a JSON object", *k);
        if (strcmp(*k, "logger") == 0)
            rc = apply_logger(c, v, err);
        else if (strcmp(*k, "metrics") == 0)
            rc = apply_metrics(c, v, err);
        else if (strcmp(*k, "machine-config") == 0)
            rc = apply_machine(c, v, false, err);
        else if (strcmp(*k, "boot-source") == 0)
            rc = apply_boot_source(c, v, err);
        else
            rc = apply_serial(c, v, err);
        if (rc) {
            char inner[sizeof(err->text)];
            snprintf(inner, sizeof(inner), "%s", err->text);
            return err_set(err, rc, "\"%s\": %s", *k, inner);
        }
    }
    static const char *const lists[] = {"drives", "network-interfaces"};
    for (int l = 0; l < 2; l++) {
        json_t *arr = json_object_get(root, lists[l]);
        if (!arr || json_is_null(arr))
            continue;
        if (!json_is_array(arr))
            return err_set(err, -EINVAL, "\"%s\" must be a JSON array", lists[l]);
        size_t i;
        json_t *v;
        json_array_foreach(arr, i, v) {
            if (!json_is_object(v))
                return err_set(err, -EINVAL, "\"%s\"[%zu] must be a JSON object", lists[l], i);
            rc = l == 0 ? apply_drive(c, v, NULL, err) : apply_net(c, v, NULL, err);
            if (rc) {
                char inner[sizeof(err->text)];
                snprintf(inner, sizeof(inner), "%s", err->text);
                return err_set(err, rc, "\"%s\"[%zu]: %s", lists[l], i, inner);
            }
        }
    }
    return 0;
}
