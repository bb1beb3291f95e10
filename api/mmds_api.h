/*
 * Firecracker's MMDS endpoints: PUT/PATCH/GET /mmds (the data store, before
 * and after boot) and PUT /mmds/config (version, address, the NICs that reach
 * it; before boot), plus its "mmds-config" section in config files and in
 * GET /vm/config. The store itself is devices/mmds/store.c; the controller
 * owns the one store of the process (created on first use).
 */
#ifndef EMBER_API_MMDS_API_H
#define EMBER_API_MMDS_API_H

#include <jansson.h>

#include "api/controller.h"
#include "core/errmsg.h"

/* Route handlers (api_apply_fn / GET body). Over the size limit they fail with -EFBIG (a 413). */
int api_put_mmds(struct controller *c, json_t *body, const char *id, struct errmsg *err);
int api_patch_mmds(struct controller *c, json_t *body, const char *id, struct errmsg *err);
int api_put_mmds_config(struct controller *c, json_t *body, const char *id, struct errmsg *err);
json_t *api_get_mmds(const struct controller *c);
/* --metadata FILE: the file's JSON object becomes the data store (size limit included). */
int api_load_mmds_file(struct controller *c, const char *path, struct errmsg *err);
/* The "mmds-config" object GET /vm/config shows, or NULL when the MMDS is not configured. */
json_t *api_mmds_config_json(const struct controller *c);
/* Firecracker's "mmds" metrics group (zeros while the MMDS is unused), for the metrics line. */
json_t *api_mmds_metrics(const struct controller *c);

#endif
