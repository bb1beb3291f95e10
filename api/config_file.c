#include "api/config_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/balloon_api.h"
#include "api/cpu_config.h"
#include "api/fields.h"
#include "api/handlers.h"
#include "api/mmds_api.h"
#include "core/path_open.h"

/* The sections that are one object, in the order they apply: the logger first, so what follows is logged where asked.
 */
static const struct {
    const char *key;
    api_apply_fn apply;
} objects[] = {
    {"logger", api_put_logger},
    {"metrics", api_put_metrics},
    {"machine-config", api_put_machine},
    {"boot-source", api_put_boot_source},
    {"serial", api_put_serial},
    {"entropy", api_put_entropy},
    {"vsock", api_put_vsock},
    {"balloon", api_put_balloon}, /* after machine-config: its size is checked against the VM's */
};

/* The sections that are a list of objects, applied after those. */
static const struct {
    const char *key;
    api_apply_fn apply;
} lists[] = {
    {"drives", api_put_drive},
    {"network-interfaces", api_put_net},
};

/* Firecracker sections Ember does not implement: only absent or null is accepted. */
static const char *const unimplemented[] = {"pmem", "memory-hotplug"};

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* Prefixes err's text with where in the file it happened. */
static int in_section(struct errmsg *err, int rc, const char *key, long index)
{
    char inner[sizeof(err->text)];
    snprintf(inner, sizeof(inner), "%s", err->text);
    if (index < 0)
        return err_set(err, rc, "\"%s\": %s", key, inner);
    return err_set(err, rc, "\"%s\"[%ld]: %s", key, index, inner);
}

int api_apply_config(struct controller *c, json_t *root, struct errmsg *err)
{
    /* Every section, in the order the "unknown field" message lists them. */
    static const char *const keys[] = {"boot-source",
                                       "drives",
                                       "machine-config",
                                       "network-interfaces",
                                       "logger",
                                       "metrics",
                                       "serial",
                                       "balloon",
                                       "vsock",
                                       "mmds-config",
                                       "entropy",
                                       "cpu-config",
                                       "pmem",
                                       "memory-hotplug",
                                       NULL};
    if (!json_is_object(root))
        return err_set(err, -EINVAL, "the configuration must be a JSON object");
    int rc = field_check_known(root, keys, err);
    if (rc)
        return rc;
    for (unsigned i = 0; i < N(unimplemented); i++) {
        json_t *v = json_object_get(root, unimplemented[i]);
        if (v && !json_is_null(v))
            return err_set(err, -EINVAL, "\"%s\": not implemented by Ember", unimplemented[i]);
    }
    for (unsigned i = 0; i < N(objects); i++) {
        json_t *v = json_object_get(root, objects[i].key);
        if (!v || json_is_null(v))
            continue;
        if (!json_is_object(v))
            return err_set(err, -EINVAL, "\"%s\" must be a JSON object", objects[i].key);
        if ((rc = objects[i].apply(c, v, NULL, err)))
            return in_section(err, rc, objects[i].key, -1);
    }
    /* After machine-config: a custom template replaces a static one, as in Firecracker. */
    json_t *cpu = json_object_get(root, "cpu-config");
    if (cpu && !json_is_null(cpu) && (rc = api_config_cpu_config(c, cpu, err)))
        return in_section(err, rc, "cpu-config", -1);
    for (unsigned l = 0; l < N(lists); l++) {
        json_t *arr = json_object_get(root, lists[l].key);
        if (!arr || json_is_null(arr))
            continue;
        if (!json_is_array(arr))
            return err_set(err, -EINVAL, "\"%s\" must be a JSON array", lists[l].key);
        size_t i;
        json_t *v;
        json_array_foreach(arr, i, v)
        {
            if (!json_is_object(v))
                return err_set(err, -EINVAL, "\"%s\"[%zu] must be a JSON object", lists[l].key, i);
            if ((rc = lists[l].apply(c, v, NULL, err)))
                return in_section(err, rc, lists[l].key, (long)i);
        }
    }
    /* After the NICs it names. */
    json_t *mmds = json_object_get(root, "mmds-config");
    if (mmds && !json_is_null(mmds) && !json_is_object(mmds))
        return err_set(err, -EINVAL, "\"mmds-config\" must be a JSON object");
    if (mmds && !json_is_null(mmds) && (rc = api_put_mmds_config(c, mmds, NULL, err)))
        return in_section(err, rc, "mmds-config", -1);
    return 0;
}

int api_load_config_file(struct controller *c, const char *path, struct errmsg *err)
{
    /*
     * Opened without waiting for a writer: a FIFO nobody writes then reads as
     * empty (a parse error) instead of holding ember. Pipes (--config-file <(...)) work.
     */
    struct stat st;
    int fd = path_open_noblock(path, O_RDONLY | O_CLOEXEC, &st);
    if (fd < 0)
        return err_set(err, fd, "config file '%s': %s", path, strerror(-fd));
    if (!S_ISREG(st.st_mode) && !S_ISFIFO(st.st_mode)) {
        close(fd);
        return err_set(err, -EINVAL, "config file '%s' is %s: it must be a regular file or a pipe", path,
                       path_kind(st.st_mode));
    }
    json_error_t je;
    json_t *root = json_loadfd(fd, JSON_REJECT_DUPLICATES, &je);
    close(fd);
    if (!root)
        return err_set(err, -EINVAL, "config file '%s': %s (line %d, column %d)", path, je.text, je.line, je.column);
    struct errmsg inner;
    int rc = api_apply_config(c, root, &inner);
    json_decref(root);
    if (!rc && !ctl_config(c)->kernel_path)
        rc = err_set(&inner, -EINVAL, "\"boot-source\" is missing");
    return rc ? err_set(err, rc, "config file '%s': %s", path, inner.text) : 0;
}
