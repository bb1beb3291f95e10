/*
 * PUT /snapshot/create and PUT /snapshot/load: their bodies checked field by
 * field (SnapshotCreateParams, SnapshotLoadParams), and the snapshot's stored
 * description applied through the same handlers as a config file, with the
 * load's network overrides laid over it.
 */
#include "api/snapshot_api.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api/config_file.h"
#include "api/fields.h"
#include "api/handlers.h"
#include "core/log.h"

#define MAX_PATH_TEXT 4095

static int path_field(json_t *o, const char *key, bool required, const char **out, struct errmsg *e)
{
    int got = field_str(o, key, out, e);
    if (got < 0)
        return got;
    if (required && (got = field_require(got, key, e)))
        return got;
    if (*out && (**out == '\0' || strlen(*out) > MAX_PATH_TEXT))
        return err_set(e, -EINVAL, "Invalid value for field `%s`: a path of 1 to %d bytes is needed.", key,
                       MAX_PATH_TEXT);
    return 0;
}

int api_put_snapshot_create(struct controller *c, json_t *o, const char *id, struct errmsg *e)
{
    (void)id;
    static const char *const keys[] = {"snapshot_path", "mem_file_path", "snapshot_type", "version", NULL};
    const char *state = NULL, *mem = NULL, *type = "Full", *version = NULL;
    int rc = field_check_known(o, keys, e);
    if (!rc)
        rc = path_field(o, "snapshot_path", true, &state, e);
    if (!rc)
        rc = path_field(o, "mem_file_path", true, &mem, e);
    if (!rc && (field_str(o, "snapshot_type", &type, e) < 0 || field_str(o, "version", &version, e) < 0))
        rc = -EINVAL;
    if (rc)
        return rc;
    enum vm_snapshot_type t;
    if (strcmp(type, "Full") == 0)
        t = VM_SNAPSHOT_FULL;
    else if (strcmp(type, "Diff") == 0)
        t = VM_SNAPSHOT_DIFF;
    else
        return err_set(e, -EINVAL, "Invalid value for field `snapshot_type`: '%s' must be Full or Diff.", type);
    if (version) /* Firecracker before 1.4 took a target version; there is one format here */
        log_info("snapshot create: `version` %s ignored (Ember writes one snapshot format)", version);
    json_t *desc = api_full_config(c);
    char *text = desc ? json_dumps(desc, JSON_COMPACT) : NULL;
    json_decref(desc);
    if (!text)
        return err_set(e, -ENOMEM, "out of memory");
    rc = ctl_snapshot_create(c, t, state, mem, text, e);
    free(text);
    return rc;
}

/* ---- load ---- */

struct overrides {
    json_t *list;      /* network_overrides, checked: [{iface_id, host_dev_name}] */
    json_t *vsock_uds; /* vsock_override's uds_path (a JSON string), or NULL */
};

/* The sections of a stored description a load applies: the boot source stays empty, as Firecracker's does. */
static const char *const restored_sections[] = {"machine-config", "drives", "network-interfaces",
                                                "entropy",        "vsock",  "balloon"};

static int apply_overrides(json_t *nets, json_t *list, struct errmsg *e)
{
    size_t i;
    json_t *ov;
    json_array_foreach(list, i, ov)
    {
        const char *iface = json_string_value(json_object_get(ov, "iface_id"));
        json_t *host = json_object_get(ov, "host_dev_name");
        bool found = false;
        size_t k;
        json_t *n;
        json_array_foreach(nets, k, n)
        {
            const char *nid = json_string_value(json_object_get(n, "iface_id"));
            if (json_is_object(n) && nid && strcmp(nid, iface) == 0) {
                const char *old = json_string_value(json_object_get(n, "host_dev_name"));
                log_info("snapshot load: network interface '%s' on host tap '%s' (the snapshot's: '%s')", iface,
                         json_string_value(host), old ? old : "none");
                json_object_set(n, "host_dev_name", host);
                found = true;
            }
        }
        if (!found)
            return err_set(e, -EINVAL,
                           "Invalid value for field `network_overrides`: the snapshot has no network interface '%s'.",
                           iface);
    }
    return 0;
}

static int apply_description(struct controller *c, const char *json, void *ctx, struct errmsg *e)
{
    const struct overrides *ov = ctx;
    json_error_t je;
    json_t *all = json_loads(json, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(all)) {
        json_decref(all);
        return err_set(e, -EINVAL, "not a JSON object (%s)", je.text);
    }
    json_t *kept = json_object();
    for (size_t i = 0; i < sizeof(restored_sections) / sizeof(restored_sections[0]); i++) {
        json_t *v = json_object_get(all, restored_sections[i]);
        if (v)
            json_object_set(kept, restored_sections[i], v);
    }
    json_decref(all);
    int rc = 0;
    json_t *nets = json_object_get(kept, "network-interfaces");
    if (ov->list && json_array_size(ov->list)) {
        if (!json_is_array(nets))
            rc = err_set(e, -EINVAL,
                         "Invalid value for field `network_overrides`: the snapshot has no network "
                         "interfaces.");
        else
            rc = apply_overrides(nets, ov->list, e);
    }
    json_t *vsock = json_object_get(kept, "vsock");
    if (!rc && ov->vsock_uds) {
        if (!json_is_object(vsock))
            rc = err_set(e, -EINVAL, "Invalid value for field `vsock_override`: the snapshot has no vsock device.");
        else
            json_object_set(vsock, "uds_path", ov->vsock_uds);
    }
    if (!rc)
        rc = api_apply_config(c, kept, e);
    json_decref(kept);
    return rc;
}

/* network_overrides: an array of {iface_id, host_dev_name}, each checked. */
static int check_overrides(json_t *list, struct errmsg *e)
{
    if (!list || json_is_null(list))
        return 0;
    if (!json_is_array(list))
        return err_set(e, -EINVAL, "Invalid type for field `network_overrides`: expected an array.");
    static const char *const keys[] = {"iface_id", "host_dev_name", NULL};
    size_t i;
    json_t *ov;
    json_array_foreach(list, i, ov)
    {
        const char *iface = NULL, *host = NULL;
        if (!json_is_object(ov))
            return err_set(e, -EINVAL, "Invalid type for field `network_overrides`: expected objects.");
        int rc = field_check_known(ov, keys, e);
        if (!rc)
            rc = field_require(field_str(ov, "iface_id", &iface, e), "iface_id", e);
        if (!rc)
            rc = field_require(field_str(ov, "host_dev_name", &host, e), "host_dev_name", e);
        if (rc)
            return rc;
        /* Checked here, not by the handlers that apply it: a bad one is the request's fault, not the snapshot's. */
        if (strlen(host) == 0 || strlen(host) > 15) /* IFNAMSIZ less the NUL */
            return err_set(e, -EINVAL,
                           "Invalid value for field `host_dev_name` in `network_overrides`: '%s' must be 1 to 15 "
                           "characters.",
                           host);
    }
    return 0;
}

/* mem_backend or the deprecated mem_file_path: exactly one. */
static int read_backend(json_t *o, struct vm_restore_params *r, struct errmsg *e)
{
    const char *mem_file = NULL;
    int rc = path_field(o, "mem_file_path", false, &mem_file, e);
    if (rc)
        return rc;
    json_t *b = json_object_get(o, "mem_backend");
    if (json_is_null(b)) /* json_is_null(NULL) is false */
        b = NULL;
    bool has_backend = b != NULL, has_file = mem_file != NULL;
    if (has_backend == has_file)
        return err_set(e, -EINVAL, "Exactly one of `mem_backend` and `mem_file_path` must be given.");
    if (mem_file) {
        r->backend = VM_MEM_BACKEND_FILE;
        r->backend_path = mem_file;
        return 0;
    }
    if (!json_is_object(b))
        return err_set(e, -EINVAL, "Invalid type for field `mem_backend`: expected an object.");
    static const char *const keys[] = {"backend_type", "backend_path", NULL};
    const char *type = NULL;
    rc = field_check_known(b, keys, e);
    if (!rc)
        rc = field_require(field_str(b, "backend_type", &type, e), "backend_type", e);
    if (!rc)
        rc = path_field(b, "backend_path", true, &r->backend_path, e);
    if (rc)
        return rc;
    if (strcmp(type, "File") == 0)
        r->backend = VM_MEM_BACKEND_FILE;
    else if (strcmp(type, "Uffd") == 0)
        r->backend = VM_MEM_BACKEND_UFFD;
    else
        return err_set(e, -EINVAL, "Invalid value for field `backend_type`: '%s' must be File or Uffd.", type);
    return 0;
}

int api_put_snapshot_load(struct controller *c, json_t *o, const char *id, struct errmsg *e)
{
    (void)id;
    static const char *const keys[] = {"snapshot_path",
                                       "mem_file_path",
                                       "mem_backend",
                                       "track_dirty_pages",
                                       "enable_diff_snapshots",
                                       "resume_vm",
                                       "network_overrides",
                                       "vsock_override",
                                       "clock_realtime",
                                       "huge_pages",
                                       NULL};
    struct ctl_snapshot_load p = {.apply = apply_description};
    bool dirty = false, diff_old = false;
    const char *huge = NULL;
    int rc = field_check_known(o, keys, e);
    if (!rc)
        rc = path_field(o, "snapshot_path", true, &p.snapshot_path, e);
    if (!rc)
        rc = read_backend(o, &p.restore, e);
    if (!rc &&
        (field_bool(o, "track_dirty_pages", &dirty, e) < 0 ||
         field_bool(o, "enable_diff_snapshots", &diff_old, e) < 0 ||
         field_bool(o, "resume_vm", &p.restore.resume, e) < 0 ||
         field_bool(o, "clock_realtime", &p.restore.clock_realtime, e) < 0 || field_str(o, "huge_pages", &huge, e) < 0))
        rc = -EINVAL;
    json_t *list = json_object_get(o, "network_overrides");
    if (!rc)
        rc = check_overrides(list, e);
    json_t *vsock = json_object_get(o, "vsock_override"), *vsock_uds = NULL;
    if (!rc && vsock && !json_is_null(vsock)) {
        static const char *const vkeys[] = {"uds_path", NULL};
        const char *uds = NULL;
        if (!json_is_object(vsock))
            rc = err_set(e, -EINVAL, "Invalid type for field `vsock_override`: expected an object.");
        if (!rc)
            rc = field_check_known(vsock, vkeys, e);
        if (!rc)
            rc = field_require(field_str(vsock, "uds_path", &uds, e), "uds_path", e);
        if (!rc)
            vsock_uds = json_object_get(vsock, "uds_path");
    }
    if (!rc && huge && strcmp(huge, "None") && strcmp(huge, "Snapshot"))
        rc = err_set(e, -EINVAL,
                     "Invalid value for field `huge_pages`: '%s': Ember maps guest memory with the "
                     "host's default pages only (None).",
                     huge);
    if (rc)
        return rc;
    p.track_dirty_pages = dirty || diff_old;
    struct overrides ov = {json_is_array(list) ? list : NULL, vsock_uds};
    p.apply_ctx = &ov;
    return ctl_snapshot_load(c, &p, e);
}
