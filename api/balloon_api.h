/*
 * Firecracker's balloon endpoints: PUT /balloon (before boot), PATCH /balloon
 * (the target, after boot), GET /balloon, GET and PATCH /balloon/statistics
 * (after boot), the "balloon" section of config files and GET /vm/config, and
 * the "balloon" metrics group. Free page hinting and reporting are not
 * implemented: those fields are accepted only as false.
 */
#ifndef EMBER_API_BALLOON_API_H
#define EMBER_API_BALLOON_API_H

#include <jansson.h>

#include "api/controller.h"
#include "core/errmsg.h"
#include "devices/virtio/balloon.h"

int api_put_balloon(struct controller *c, json_t *body, const char *id, struct errmsg *err);
int api_patch_balloon(struct controller *c, json_t *body, const char *id, struct errmsg *err);
int api_patch_balloon_stats(struct controller *c, json_t *body, const char *id, struct errmsg *err);
/* GET bodies, or NULL with err set (a 400): no balloon, statistics off. */
json_t *api_get_balloon(const struct controller *c, struct errmsg *err);
json_t *api_get_balloon_stats(const struct controller *c, struct errmsg *err);
/* The "balloon" object of GET /vm/config, or NULL when there is no balloon. */
json_t *api_balloon_config_json(const struct controller *c);
/* The "balloon" metrics group. */
json_t *api_balloon_metrics(const struct balloon_counters *sum);

#endif
