#include "api/routes.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "api/balloon_api.h"
#include "api/controller.h"
#include "api/cpu_config.h"
#include "api/handlers.h"
#include "api/mmds_api.h"
#include "api/snapshot_api.h"

/* A GET answers a JSON body; PUT and PATCH apply one (204, or 400 with the reason). */
struct route {
    const char *method;
    const char *path; /* a trailing "{id}" matches one non-empty path segment */
    enum ctl_phase phase;
    json_t *(*get)(const struct controller *c);
    api_apply_fn apply;
    json_t *(*query)(const struct controller *c, struct errmsg *e); /* a GET that may answer 400 (NULL, e set) */
};

static const struct route routes[] = {
    {"GET", "/", CTL_ANY_PHASE, api_get_root, NULL},
    {"GET", "/version", CTL_ANY_PHASE, api_get_version, NULL},
    {"GET", "/machine-config", CTL_ANY_PHASE, api_get_machine, NULL},
    {"PUT", "/machine-config", CTL_PRE_BOOT, NULL, api_put_machine},
    {"PATCH", "/machine-config", CTL_PRE_BOOT, NULL, api_patch_machine},
    {"GET", "/vm/config", CTL_ANY_PHASE, api_full_config, NULL},
    {"PUT", "/boot-source", CTL_PRE_BOOT, NULL, api_put_boot_source},
    {"PUT", "/drives/{id}", CTL_PRE_BOOT, NULL, api_put_drive},
    {"PATCH", "/drives/{id}", CTL_POST_BOOT, NULL, api_patch_drive},
    {"PUT", "/network-interfaces/{id}", CTL_PRE_BOOT, NULL, api_put_net},
    {"PATCH", "/network-interfaces/{id}", CTL_POST_BOOT, NULL, api_patch_net},
    {"PUT", "/vsock", CTL_PRE_BOOT, NULL, api_put_vsock},
    {"PUT", "/actions", CTL_ANY_PHASE, NULL, api_put_action}, /* each action has its own phase */
    {"PATCH", "/vm", CTL_POST_BOOT, NULL, api_patch_vm},
    {"PUT", "/logger", CTL_PRE_BOOT, NULL, api_put_logger},
    {"PUT", "/metrics", CTL_PRE_BOOT, NULL, api_put_metrics},
    {"PUT", "/serial", CTL_PRE_BOOT, NULL, api_put_serial},
    {"PUT", "/entropy", CTL_PRE_BOOT, NULL, api_put_entropy},
    {"PUT", "/snapshot/create", CTL_POST_BOOT, NULL, api_put_snapshot_create},
    {"PUT", "/snapshot/load", CTL_PRE_BOOT, NULL, api_put_snapshot_load},
    {"GET", "/mmds", CTL_ANY_PHASE, api_get_mmds, NULL},
    {"PUT", "/mmds", CTL_ANY_PHASE, NULL, api_put_mmds},
    {"PATCH", "/mmds", CTL_ANY_PHASE, NULL, api_patch_mmds},
    {"PUT", "/mmds/config", CTL_PRE_BOOT, NULL, api_put_mmds_config},
    {"PUT", "/cpu-config", CTL_PRE_BOOT, NULL, api_put_cpu_config},
    {"PUT", "/balloon", CTL_PRE_BOOT, NULL, api_put_balloon},
    {"PATCH", "/balloon", CTL_POST_BOOT, NULL, api_patch_balloon},
    {"GET", "/balloon", CTL_ANY_PHASE, NULL, NULL, api_get_balloon},
    {"GET", "/balloon/statistics", CTL_POST_BOOT, NULL, NULL, api_get_balloon_stats},
    {"PATCH", "/balloon/statistics", CTL_POST_BOOT, NULL, api_patch_balloon_stats},
};

/* Firecracker endpoints Ember does not have: any method, any path below them. */
static const char *const unimplemented[] = {"/balloon/hinting", "/pmem", "/hotplug", NULL};

/* Whether path fits pattern; *id is the "{id}" segment (NULL when the pattern has none). */
static bool path_matches(const char *pattern, const char *path, const char **id)
{
    static const char id_mark[] = "{id}";
    size_t n = strlen(pattern), mark = sizeof(id_mark) - 1;
    *id = NULL;
    if (n < mark || strcmp(pattern + n - mark, id_mark) != 0)
        return strcmp(pattern, path) == 0;
    n -= mark;
    if (strncmp(path, pattern, n) != 0 || path[n] == '\0' || strchr(path + n, '/'))
        return false;
    *id = path + n;
    return true;
}

static const struct route *find_route(const char *method, const char *path, const char **id)
{
    for (unsigned i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        if (strcmp(method, routes[i].method) == 0 && path_matches(routes[i].path, path, id))
            return &routes[i];
    return NULL;
}

static void reply_json(struct api_reply *r, json_t *o)
{
    r->status = 200;
    r->body = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!r->body)
        api_reply_error(r, 500, "out of memory");
}

/* The body of a PUT or PATCH: a JSON object, or NULL with the 400 answered. */
static json_t *parse_body(const char *method, const char *path, const char *body, size_t len, struct api_reply *r)
{
    if (!len) {
        api_reply_error(r, 400, "The body of the request is empty: %s %s needs a JSON object.", method, path);
        return NULL;
    }
    json_error_t je;
    json_t *o = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!o) {
        api_reply_error(r, 400, "Invalid JSON body: %s (line %d, column %d).", je.text, je.line, je.column);
        return NULL;
    }
    if (!json_is_object(o)) {
        json_decref(o);
        api_reply_error(r, 400, "Invalid JSON body: expected a JSON object.");
        return NULL;
    }
    return o;
}

void api_handle(void *ctx, const char *method, const char *path, const char *body, size_t len, struct api_reply *r)
{
    struct controller *c = ctx;
    for (const char *const *u = unimplemented; *u; u++) {
        size_t n = strlen(*u);
        if (strncmp(path, *u, n) == 0 && (path[n] == '\0' || path[n] == '/'))
            return api_reply_error(r, 400, "Ember does not implement %s (%s %s).", *u, method, path);
    }
    const char *id;
    const struct route *rt = find_route(method, path, &id);
    if (!rt)
        return api_reply_error(r, 400, "Invalid request method and/or path: %s %s.", method, path);
    if ((rt->get || rt->query) && len)
        return api_reply_error(r, 400, "GET requests take no body.");
    json_t *o = NULL;
    if (rt->apply && !(o = parse_body(method, path, body, len, r)))
        return;
    struct errmsg e;
    int rc = ctl_check_phase(c, rt->phase, &e);
    if (!rc && rt->get)
        return reply_json(r, rt->get(c));
    if (!rc && rt->query) {
        json_t *answer = rt->query(c, &e);
        if (answer)
            return reply_json(r, answer);
        rc = -EINVAL;
    }
    if (!rc)
        rc = rt->apply(c, o, id, &e);
    json_decref(o);
    if (rc) {
        api_reply_error(r, rc == -EFBIG ? 413 : 400, "%s", e.text); /* 413: over the MMDS data store's limit */
    } else {
        free(r->body);
        r->body = NULL;
        r->status = 204;
    }
}
