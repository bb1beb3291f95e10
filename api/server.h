/*
 * The API thread: HTTP/1.x over a Unix socket, read strictly by api/http_parse.c and api/http_conn.c. It parses
 * nothing about the VM and touches no VM state: each complete request is
 * handed to the VMM thread (queue + eventfd on the runner's event loop),
 * and the API thread waits for the answer, as Firecracker's does.
 */
#ifndef EMBER_API_SERVER_H
#define EMBER_API_SERVER_H

#include <stddef.h>

#include "core/errmsg.h"
#include "core/event_loop.h"

#define API_MAX_BODY 51200 /* Firecracker's --http-api-max-payload-size default */

struct api_reply {
    unsigned status;
    char *body; /* malloc'd JSON, or NULL for no body */
};

/* Runs on the VMM thread for each request; fills *reply. */
typedef void (*api_handler)(void *ctx, const char *method, const char *path, const char *body, size_t len,
                            struct api_reply *reply);

struct api_server;

/*
 * Creates the socket (mode 0600; a stale socket file is replaced, a live one
 * is an error), registers the hand-over eventfd on `loop`, starts the API
 * thread, which first runs thread_init (if not NULL; e.g. its seccomp filter).
 */
int api_server_start(struct api_server **out, const char *path, struct event_loop *loop, api_handler h, void *ctx,
                     int (*thread_init)(void), struct errmsg *err);
/* Stops the thread, answers nothing more, removes the socket file. */
void api_server_stop(struct api_server *s);
/* Requests handed over so far (for metrics). */
unsigned long api_server_requests(const struct api_server *s);

/* Builds {"fault_message": "..."} with status 400 (or the given status). */
void api_reply_error(struct api_reply *r, unsigned status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
