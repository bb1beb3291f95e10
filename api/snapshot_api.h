/*
 * The snapshot requests' handlers (api/routes.c's table): PUT /snapshot/create
 * (post-boot, paused VM) and PUT /snapshot/load (a fresh process).
 */
#ifndef EMBER_API_SNAPSHOT_API_H
#define EMBER_API_SNAPSHOT_API_H

#include <jansson.h>

#include "api/controller.h"
#include "core/errmsg.h"

int api_put_snapshot_create(struct controller *c, json_t *body, const char *id, struct errmsg *err);
int api_put_snapshot_load(struct controller *c, json_t *body, const char *id, struct errmsg *err);

#endif
