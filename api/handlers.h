/*
 * One function per Firecracker request body: it checks the JSON object field
 * by field (Firecracker's error texts) and applies it through the controller.
 * The route table (api/routes.c) and config files (api/config_file.c) both
 * use them, so a setting is checked the same way whichever way it comes.
 */
#ifndef EMBER_API_HANDLERS_H
#define EMBER_API_HANDLERS_H

#include <jansson.h>

#include "api/controller.h"
#include "core/errmsg.h"

/* Applies body; id is the {id} of the request path (NULL from a config file). 0 or -errno with err set. */
typedef int (*api_apply_fn)(struct controller *c, json_t *body, const char *id, struct errmsg *err);

int api_put_machine(struct controller *c, json_t *body, const char *id, struct errmsg *err);
int api_patch_machine(struct controller *c, json_t *body, const char *id, struct errmsg *err);
int api_put_boot_source(struct controller *c, json_t *body, const char *id, struct errmsg *err);
int api_put_drive(struct controller *c, json_t *body, const char *id, struct errmsg *err);
int api_patch_drive(struct controller *c, json_t *body, const char *id, struct errmsg *err);
int api_put_net(struct controller *c, json_t *body, const char *id, struct errmsg *err);
int api_put_vsock(struct controller *c, json_t *body, const char *id, struct errmsg *err);
int api_patch_net(struct controller *c, json_t *body, const char *id, struct errmsg *err);
int api_put_logger(struct controller *c, json_t *body, const char *id, struct errmsg *err);
int api_put_metrics(struct controller *c, json_t *body, const char *id, struct errmsg *err);
int api_put_serial(struct controller *c, json_t *body, const char *id, struct errmsg *err);
int api_put_entropy(struct controller *c, json_t *body, const char *id, struct errmsg *err);
int api_put_action(struct controller *c, json_t *body, const char *id, struct errmsg *err);
int api_patch_vm(struct controller *c, json_t *body, const char *id, struct errmsg *err);

/* GET bodies (the caller frees). */
json_t *api_get_root(const struct controller *c);
json_t *api_get_version(const struct controller *c);
json_t *api_get_machine(const struct controller *c);
/* GET /vm/config: the whole configuration, in the shape a --config-file has. */
json_t *api_full_config(const struct controller *c);

#endif
