/*
 * The API socket's connections (API thread only): each request is read whole
 * and strictly (api/http_parse.c), handed to serve(), and its answer written;
 * refusals, timeouts and evictions answer a JSON fault_message. Limits: see
 * http_conn.c and docs/api.md ("HTTP").
 */
#ifndef EMBER_API_HTTP_CONN_H
#define EMBER_API_HTTP_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "api/server.h"

#define API_MAX_CONNS 128 /* connections at once; also the listen backlog */

struct http_conn;

struct http_conns {
    int ep;        /* the epoll set connections are added to (data.ptr = the struct http_conn) */
    int listen_fd; /* non-blocking listening socket */
    struct http_conn *slot[API_MAX_CONNS];
    unsigned n;
    uint64_t seq; /* orders connections by when they began waiting for a request */
    /* Answers one complete request (fills *r; r->body malloc'd JSON or NULL). */
    void (*serve)(void *ctx, const char *method, const char *path, const char *body, size_t len, struct api_reply *r);
    void *ctx;
};

/* Accepts what is waiting on listen_fd (past API_MAX_CONNS, the longest-waiting connection is closed). */
void http_conns_accept(struct http_conns *cs);
/* An epoll event for connection c: reads, serves, writes as far as it can; c may be freed. */
void http_conns_event(struct http_conns *cs, struct http_conn *c, uint32_t events);
/* Closes overdue connections; returns the milliseconds until the next deadline (at most 1000). */
int http_conns_expire(struct http_conns *cs);
void http_conns_close_all(struct http_conns *cs);

#endif
