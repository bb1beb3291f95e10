/*
 * Firecracker-compatible request handling: paths, methods, JSON bodies,
 * validation and the phase rules, applied to the controller. Runs on the
 * VMM thread (it is the api_handler) and also applies config files.
 */
#ifndef EMBER_API_ROUTES_H
#define EMBER_API_ROUTES_H

#include <jansson.h>

#include "api/controller.h"
#include "api/server.h"


/* The api_handler: ctx is the struct controller. */
void api_handle(void *ctx, const char *method, const char *path, const char *body, size_t len,
                struct api_reply *reply);

/*
 * Applies a Firecracker-shaped configuration object (what --config-file
 * holds and GET /vm/config returns) to a controller that has not started.
 * 0, or -EINVAL with the reason in err.
 */
int api_apply_config(struct controller *c, json_t *root, struct errmsg *err);
/* GET /vm/config's body (caller frees). */
json_t *api_full_config(const struct controller *c);

#endif
