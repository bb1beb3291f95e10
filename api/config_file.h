/*
 * --config-file: Firecracker's JSON configuration (what GET /vm/config
 * returns), applied with the same functions as the API's requests.
 */
#ifndef EMBER_API_CONFIG_FILE_H
#define EMBER_API_CONFIG_FILE_H

#include <jansson.h>

#include "api/controller.h"
#include "core/errmsg.h"

/*
 * Applies a configuration object to a controller that has not started.
 * 0, or -EINVAL with the reason (prefixed by the section) in err.
 */
int api_apply_config(struct controller *c, json_t *root, struct errmsg *err);
/* Reads, parses and applies the file; a boot source is required. Errors name the file. */
int api_load_config_file(struct controller *c, const char *path, struct errmsg *err);

#endif
