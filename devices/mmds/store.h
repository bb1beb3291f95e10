/*
 * The MMDS (microVM metadata service) data store: one JSON document that the
 * API replaces (PUT) or merges into (PATCH, RFC 7396), the guest reads
 * through the virtio-net responder (devices/mmds/net_stack.c), with its size
 * limit, its configuration (version, address, IMDS compatibility) and the V2
 * session tokens. One per process; every access takes its mutex, so the API
 * and the device may run on different threads.
 */
#ifndef EMBER_MMDS_STORE_H
#define EMBER_MMDS_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/errmsg.h"

/* Firecracker's default: its API payload limit, measured on the compact serialized JSON. */
#define MMDS_DEFAULT_SIZE_LIMIT 51200
/* 169.254.169.254 in host byte order. */
#define MMDS_DEFAULT_IPV4 0xA9FEA9FEu
#define MMDS_TOKEN_TTL_MIN 1
#define MMDS_TOKEN_TTL_MAX 21600
/* Live tokens kept; a new one beyond this replaces the one closest to expiry. */
#define MMDS_MAX_TOKENS 256
#define MMDS_TOKEN_BYTES 16
#define MMDS_TOKEN_CHARS (2 * MMDS_TOKEN_BYTES)

enum mmds_version { MMDS_V1, MMDS_V2 };

struct mmds_settings {
    enum mmds_version version;
    uint32_t ipv4;    /* host byte order */
    bool imds_compat; /* always the IMDS text format, whatever Accept says */
};

struct mmds_store;

/* size_limit 0: MMDS_DEFAULT_SIZE_LIMIT. 0 or -ENOMEM. */
int mmds_store_new(struct mmds_store **out, uint64_t size_limit);
void mmds_store_free(struct mmds_store *s);
void mmds_store_set_limit(struct mmds_store *s, uint64_t size_limit);
void mmds_store_configure(struct mmds_store *s, const struct mmds_settings *set);
struct mmds_settings mmds_store_settings(struct mmds_store *s);

/* Replaces the document (takes a reference of its own). -EFBIG over the limit; nothing changes on error. */
int mmds_store_put(struct mmds_store *s, json_t *data, struct errmsg *err);
/* Merges patch in (RFC 7396). -ENODATA before any PUT, -EFBIG over the limit; nothing changes on error. */
int mmds_store_patch(struct mmds_store *s, const json_t *patch, struct errmsg *err);
/* A copy of the document (the caller frees); {} before any PUT. NULL on allocation failure. */
json_t *mmds_store_get(struct mmds_store *s);
/* mmds_render on the document (JSON null before any PUT). */
int mmds_store_render(struct mmds_store *s, const char *path, bool as_json, char **out, size_t *len);

/* A V2 session token valid for ttl_s seconds from now_ns (CLOCK_MONOTONIC), as text in out. 0 or -errno. */
int mmds_store_new_token(struct mmds_store *s, uint64_t ttl_s, uint64_t now_ns, char out[MMDS_TOKEN_CHARS + 1]);
/* Whether token was issued by this store and has not expired at now_ns. */
bool mmds_store_token_valid(struct mmds_store *s, const char *token, uint64_t now_ns);

/*
 * Firecracker's "mmds" metrics group, summed over every NIC's responder (devices/mmds/net_stack.c counts them;
 * docs/mmds.md says what each means here). Counted with relaxed atomics: the device threads add, the metrics
 * flush reads, no lock on the frame path.
 */
enum mmds_metric {
    MMDS_RX_ACCEPTED,         /* frames the MMDS took from the guest (ARP for its address, TCP to it) */
    MMDS_RX_ACCEPTED_ERR,     /* ... of which malformed: checksum, fragment, GSO, bad header fields */
    MMDS_RX_ACCEPTED_UNUSUAL, /* ... of which neither an ARP request nor TCP (an ARP reply to its address) */
    MMDS_RX_BAD_ETH,          /* ... of which cut short: shorter than their ARP or IPv4 + TCP headers say */
    MMDS_RX_COUNT,            /* TCP segments the responder handled */
    MMDS_TX_BYTES,            /* bytes of the frames handed to the guest's rx queue */
    MMDS_TX_COUNT,            /* frames the responder produced */
    MMDS_TX_ERRORS,           /* frames or answers that could not be produced (queue full, no memory) */
    MMDS_TX_FRAMES,           /* frames handed to the guest's rx queue */
    MMDS_CONNECTIONS_CREATED,
    MMDS_CONNECTIONS_DESTROYED,
    MMDS_METRICS_COUNT
};
/* Firecracker's name of each metric, in enum order. */
extern const char *const mmds_metric_names[MMDS_METRICS_COUNT];
void mmds_store_count(struct mmds_store *s, enum mmds_metric which, uint64_t n);
/* The current values, in enum order. */
void mmds_store_metrics(struct mmds_store *s, uint64_t out[MMDS_METRICS_COUNT]);

/* ---- pure functions ---- */

/* RFC 7396: returns the patched document; target's reference is consumed (may be NULL), patch is not. */
json_t *mmds_merge_patch(json_t *target, const json_t *patch);
/*
 * The value at path (slash-separated, "//" collapsed, a trailing '/' ignored, "~0" "~1" as in JSON pointers,
 * array elements by index) as compact JSON with sorted keys, or in the IMDS text format: an object's keys one
 * a line (sorted; an object's with a trailing '/'), a string's value; other types are -ENOTSUP (Firecracker
 * answers 501). -ENOENT when there is no such value. *out is malloc'd, NUL-terminated, *len without the NUL.
 */
int mmds_render(const json_t *root, const char *path, bool as_json, char **out, size_t *len);
/* Length of the compact serialized JSON (what the size limit measures). */
size_t mmds_json_size(const json_t *v);

#endif
