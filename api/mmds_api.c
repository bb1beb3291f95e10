#include "api/mmds_api.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/fields.h"
#include "core/path_open.h"
#include "devices/mmds/store.h"

/* The process's store, made on first use with the --mmds-size-limit of the command line. */
static int store_of(struct controller *c, struct mmds_store **out, struct errmsg *e)
{
    if (!c->mmds && mmds_store_new(&c->mmds, c->cfg.mmds_size_limit))
        return err_set(e, -ENOMEM, "out of memory");
    *out = c->mmds;
    return 0;
}

int api_put_mmds(struct controller *c, json_t *body, const char *id, struct errmsg *err)
{
    (void)id;
    struct mmds_store *s = NULL;
    int rc = store_of(c, &s, err);
    return rc ? rc : mmds_store_put(s, body, err);
}

int api_patch_mmds(struct controller *c, json_t *body, const char *id, struct errmsg *err)
{
    (void)id;
    struct mmds_store *s = NULL;
    int rc = store_of(c, &s, err);
    return rc ? rc : mmds_store_patch(s, body, err);
}

int api_load_mmds_file(struct controller *c, const char *path, struct errmsg *err)
{
    struct stat st;
    int fd = path_open_noblock(path, O_RDONLY | O_CLOEXEC, &st); /* a FIFO with no writer must not hold ember */
    if (fd < 0)
        return err_set(err, fd, "--metadata '%s': %s", path, strerror(-fd));
    if (!S_ISREG(st.st_mode) && !S_ISFIFO(st.st_mode)) {
        close(fd);
        return err_set(err, -EINVAL, "--metadata '%s' is %s: it must be a regular file or a pipe", path,
                       path_kind(st.st_mode));
    }
    json_error_t je;
    json_t *data = json_loadfd(fd, JSON_REJECT_DUPLICATES, &je);
    close(fd);
    if (!data)
        return err_set(err, -EINVAL, "--metadata '%s': %s (line %d, column %d)", path, je.text, je.line, je.column);
    struct errmsg inner;
    int rc = json_is_object(data) ? api_put_mmds(c, data, NULL, &inner)
                                  : err_set(&inner, -EINVAL, "the content must be a JSON object");
    json_decref(data);
    return rc ? err_set(err, rc, "--metadata '%s': %s", path, inner.text) : 0;
}

json_t *api_get_mmds(const struct controller *c) { return c->mmds ? mmds_store_get(c->mmds) : json_object(); }

/* 169.254.[1-254].[0-255], the link-local range Firecracker's API allows. */
static int parse_address(const char *text, uint32_t *ip, struct errmsg *e)
{
    struct in_addr a;
    if (inet_pton(AF_INET, text, &a) != 1)
        return err_set(e, -EINVAL, "Invalid value for field `ipv4_address`: '%s' is not an IPv4 address.", text);
    uint32_t h = ntohl(a.s_addr);
    unsigned third = (h >> 8) & 0xff;
    if ((h >> 16) != 0xA9FE || third == 0 || third == 255)
        return err_set(e, -EINVAL,
                       "Invalid value for field `ipv4_address`: '%s' is not a link-local address 169.254.1.0 to "
                       "169.254.254.255.",
                       text);
    *ip = h;
    return 0;
}

int api_put_mmds_config(struct controller *c, json_t *o, const char *id, struct errmsg *e)
{
    (void)id;
    static const char *const keys[] = {"version", "network_interfaces", "ipv4_address", "imds_compat", NULL};
    const char *version = "V1", *address = NULL;
    struct mmds_settings set = {.version = MMDS_V1, .ipv4 = MMDS_DEFAULT_IPV4};
    int rc = field_check_known(o, keys, e);
    if (!rc && (field_str(o, "version", &version, e) < 0 || field_str(o, "ipv4_address", &address, e) < 0 ||
                field_bool(o, "imds_compat", &set.imds_compat, e) < 0))
        rc = -EINVAL;
    json_t *ifaces = json_object_get(o, "network_interfaces");
    if (!rc && (!ifaces || json_is_null(ifaces)))
        rc = err_set(e, -EINVAL, "missing field `network_interfaces`");
    if (!rc && !json_is_array(ifaces))
        rc = err_set(e, -EINVAL, "Invalid type for field `network_interfaces`: expected an array of strings.");
    if (!rc && json_array_size(ifaces) == 0)
        rc = err_set(e, -EINVAL, "The list of network interface IDs that allow forwarding MMDS requests is empty.");
    if (rc)
        return rc;
    if (strcmp(version, "V2") == 0)
        set.version = MMDS_V2;
    else if (strcmp(version, "V1") != 0)
        return err_set(e, -EINVAL, "Invalid value for field `version`: '%s' must be V1 or V2.", version);
    if (address && (rc = parse_address(address, &set.ipv4, e)))
        return rc;
    /* Every id must name a configured NIC; nothing changes unless all do. */
    bool listed[EMBER_MAX_NETS] = {false};
    size_t i;
    json_t *v;
    json_array_foreach(ifaces, i, v)
    {
        if (!json_is_string(v))
            return err_set(e, -EINVAL, "Invalid type for field `network_interfaces`: expected an array of strings.");
        unsigned n = 0;
        while (n < c->cfg.nr_nets && strcmp(c->cfg.nets[n].id, json_string_value(v)) != 0)
            n++;
        if (n == c->cfg.nr_nets)
            return err_set(e, -EINVAL,
                           "The list of network interface IDs provided contains '%s', which is not an existing "
                           "network interface.",
                           json_string_value(v));
        listed[n] = true;
    }
    struct mmds_store *s = NULL;
    if ((rc = store_of(c, &s, e)))
        return rc;
    mmds_store_configure(s, &set);
    for (unsigned n = 0; n < c->cfg.nr_nets; n++)
        c->cfg.nets[n].mmds = listed[n] ? s : NULL;
    return 0;
}

json_t *api_mmds_config_json(const struct controller *c)
{
    json_t *ifaces = json_array();
    for (unsigned n = 0; n < c->cfg.nr_nets; n++)
        if (c->cfg.nets[n].mmds)
            json_array_append_new(ifaces, json_string(c->cfg.nets[n].id));
    if (!c->mmds || json_array_size(ifaces) == 0) {
        json_decref(ifaces);
        return NULL;
    }
    struct mmds_settings set = mmds_store_settings(c->mmds);
    struct in_addr a = {.s_addr = htonl(set.ipv4)};
    char text[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &a, text, sizeof(text));
    return json_pack("{s:s,s:o,s:s,s:b}", "version", set.version == MMDS_V2 ? "V2" : "V1", "network_interfaces", ifaces,
                     "ipv4_address", text, "imds_compat", set.imds_compat);
}

json_t *api_mmds_metrics(const struct controller *c)
{
    uint64_t v[MMDS_METRICS_COUNT] = {0};
    if (c->mmds)
        mmds_store_metrics(c->mmds, v);
    json_t *o = json_object();
    for (int i = 0; i < MMDS_METRICS_COUNT; i++)
        json_object_set_new(o, mmds_metric_names[i], json_integer((json_int_t)v[i]));
    return o;
}
