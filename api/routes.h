/*
 * Firecracker's REST API: one table of routes {method, path, phase, handler}
 * recognises a request (an unknown method or path is answered before its
 * body is read), checks the phase with the controller and dispatches it.
 * Runs on the VMM thread: api_handle is the api_handler.
 */
#ifndef EMBER_API_ROUTES_H
#define EMBER_API_ROUTES_H

#include <stddef.h>

#include "api/server.h"

/* The api_handler: ctx is the struct controller. */
void api_handle(void *ctx, const char *method, const char *path, const char *body, size_t len, struct api_reply *reply);

#endif
