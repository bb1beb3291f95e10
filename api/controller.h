/*
 * The control state machine, Firecracker's two phases: before boot the VM
 * description (one struct vm_config, from the command line, a config file
 * or the API) is collected; InstanceStart builds and starts the VM; after
 * boot only runtime operations are allowed. Requests arrive already parsed
 * and checked field by field (api/handlers.c); what depends on the state or
 * on the rest of the configuration is checked here. Runs on the VMM thread only.
 */
#ifndef EMBER_CONTROLLER_H
#define EMBER_CONTROLLER_H

#include <stdbool.h>
#include <stdint.h>

#include "core/errmsg.h"
#include "vm/config.h"
#include "vm/snapshot.h"

struct runner;
struct vm;
struct json_t;
struct mmds_store;

enum ctl_state { CTL_NOT_STARTED, CTL_RUNNING, CTL_PAUSED };

/* When a request is allowed. */
enum ctl_phase { CTL_PRE_BOOT, CTL_POST_BOOT, CTL_ANY_PHASE };

#define CTL_MSG_PRE_BOOT_ONLY "The requested operation is not supported after starting the microVM."
#define CTL_MSG_POST_BOOT_ONLY "The requested operation is not supported before starting the microVM."

/* What Firecracker's API accepts and reports back but the VM is built without (indexes follow cfg's). */
struct ctl_reported {
    bool smt;
    bool drive_writeback[EMBER_MAX_DRIVES]; /* cache_type Writeback, else Unsafe */
    char guest_mac[EMBER_MAX_NETS][18];     /* as the client spelled it; "" when none */
};

/* Firecracker's latencies_us metrics: the last operation of each kind, in microseconds (0: none yet). The vmm_
 * ones time the VM's own work; the others the whole request, checks and files included. */
struct ctl_latencies {
    uint64_t full_create_snapshot, diff_create_snapshot, load_snapshot, pause_vm, resume_vm;
    uint64_t vmm_full_create_snapshot, vmm_diff_create_snapshot, vmm_load_snapshot, vmm_pause_vm, vmm_resume_vm;
};

struct controller {
    struct runner *runner;
    struct vm *vm;
    const char *instance_id;
    enum ctl_state state;
    struct vm_config cfg; /* the VM to build; owns its strings */
    struct ctl_reported reported;
    /* A boot resource (machine, boot source, drive, NIC) was set: a snapshot load is no longer allowed. */
    bool configured;
    bool restored; /* the VM came from a snapshot */
    struct ctl_latencies latencies;
    struct mmds_store *mmds; /* the MMDS data store (api/mmds_api.c), NULL until first used */

    bool logger_set;
    char *log_path;        /* NULL: stderr */
    const char *log_level; /* Firecracker's spelling (a static string) */
    bool show_level, show_log_origin;
    int log_fd;
    char *metrics_path; /* NULL: metrics not configured */
    int metrics_fd;
    bool metrics_emit_id;
    struct json_t *metrics_properties; /* operator key-value pairs put on every metrics line */
    int metrics_timer_fd;
    uint64_t metrics_flushes;
    /* Firecracker's logger.missed_metrics_count (dropped: the output was full) and logger.metrics_fails. */
    uint64_t metrics_missed, metrics_fails;
    /* The unwritten end of a line a full FIFO cut short (only a line over PIPE_BUF can be): it goes out before
     * any later line, so a reader never sees two lines mixed. NULL when none. */
    char *metrics_pending;
    size_t metrics_pending_off, metrics_pending_len;
};

void ctl_init(struct controller *c, struct runner *r, struct vm *vm, const char *instance_id);
/* The end of the process: the last metrics line, then the log back on stderr (where what follows goes). */
void ctl_finish(struct controller *c);
/* ctl_finish if not done, then destroys the VM (if any) and frees everything the controller owns. */
void ctl_destroy(struct controller *c);
/* Takes over a VM description (the command line's): *cfg is left empty, its strings now c's. */
void ctl_take_config(struct controller *c, struct vm_config *cfg);
/* Read-only view of the description (GET bodies, PATCH merging). */
static inline const struct vm_config *ctl_config(const struct controller *c) { return &c->cfg; }

const char *ctl_state_name(const struct controller *c);
/* 0 when a request of that phase is allowed now, else -EINVAL with Firecracker's message. */
int ctl_check_phase(const struct controller *c, enum ctl_phase phase, struct errmsg *err);

/* ---- before boot: each replaces one part of the description; on error nothing changes ---- */
int ctl_set_machine(struct controller *c, unsigned vcpus, uint64_t mem_mib, bool smt, bool track_dirty_pages,
                    struct errmsg *err);
/* initrd and boot_args may be NULL (none; the default command line). */
int ctl_set_boot_source(struct controller *c, const char *kernel, const char *initrd, const char *boot_args,
                        struct errmsg *err);
/* Adds the drive, or replaces the one with its id; at most one root, EMBER_MAX_DRIVES. */
int ctl_put_drive(struct controller *c, const struct blk_config *d, bool writeback, struct errmsg *err);
/* Adds or replaces by id; taps and MACs are unique. mac_text: the MAC as spelled (NULL when n has none). */
int ctl_put_net(struct controller *c, const struct net_config *n, const char *mac_text, struct errmsg *err);
/* path NULL or "": the console stays on stdout. */
/* PUT /vsock: the one vsock device (replaced by a second PUT). */
int ctl_put_vsock(struct controller *c, uint32_t guest_cid, const char *uds_path, struct errmsg *err);
int ctl_set_serial(struct controller *c, const char *path, struct errmsg *err);
/* level: a Firecracker level name (log_parse_api_level); path NULL keeps stderr. */
int ctl_set_logger(struct controller *c, const char *path, const char *level, bool show_level, bool show_origin,
                   struct errmsg *err);
/* properties: a JSON object of strings or NULL (copied). */
int ctl_set_metrics(struct controller *c, const char *path, bool emit_id, struct json_t *properties,
                    struct errmsg *err);

/* ---- the transitions and runtime operations ---- */
/* The kernel image opens (without blocking), is a non-empty regular file and starts like an ELF or a bzImage. */
int ctl_check_kernel_file(const char *path, struct errmsg *err);
/* InstanceStart: build the VM from the description and start it; a failure leaves the API usable. */
int ctl_start(struct controller *c, struct errmsg *err);
int ctl_pause(struct controller *c, struct errmsg *err);
int ctl_resume(struct controller *c, struct errmsg *err);
int ctl_send_ctrl_alt_del(struct controller *c, struct errmsg *err);
/* PATCH /drives: the drive must exist; path NULL changes nothing, else the guest sees the new file. */
int ctl_update_drive(struct controller *c, const char *id, const char *path, struct errmsg *err);
/* PATCH /network-interfaces: the interface must exist (rate limits are all Ember would change). */
int ctl_update_net(struct controller *c, const char *id, struct errmsg *err);
/* ---- rate limiters and the entropy device (api/controller_limits.c) ---- */

/* PUT /entropy (pre-boot): the VM gets a virtio-rng device with this configuration. */
int ctl_set_entropy(struct controller *c, const struct rng_config *cfg, struct errmsg *err);
/* PATCH /drives rate_limiter (post-boot): the buckets u names change on the running drive and in the description. */
int ctl_update_drive_rate_limiter(struct controller *c, const char *id, const struct rate_limiter_update *u,
                                  struct errmsg *err);
/* PATCH /network-interfaces (post-boot): rx and/or tx limiters (NULL: that direction unchanged). */
int ctl_update_net_rate_limiters(struct controller *c, const char *id, const struct rate_limiter_update *rx,
                                 const struct rate_limiter_update *tx, struct errmsg *err);
/* ---- the balloon (api/controller_limits.c) ---- */

/* PUT /balloon (pre-boot): the VM gets a virtio-balloon; the target may not exceed the VM's memory. */
int ctl_set_balloon(struct controller *c, const struct balloon_config *cfg, struct errmsg *err);
/* PATCH /balloon (post-boot): a new target for the running balloon. */
int ctl_update_balloon(struct controller *c, uint32_t amount_mib, struct errmsg *err);
/* PATCH /balloon/statistics (post-boot): a new polling interval (statistics stay on or off as at boot). */
int ctl_update_balloon_stats(struct controller *c, uint32_t secs, struct errmsg *err);
/*
 * Writes one metrics line now (FlushMetrics, the periodic timer, the end). Never waits: on a full FIFO the line
 * is dropped and counted (logger.missed_metrics_count), which is not an error.
 */
int ctl_flush_metrics(struct controller *c, struct errmsg *err);

/* ---- snapshots (api/controller_snapshot.c) ---- */

#define CTL_MSG_LOAD_NOT_ALLOWED "Loading a microVM snapshot not allowed after configuring boot-specific resources."

/* PUT /snapshot/create on a paused VM; config_json is the description stored with it (GET /vm/config's body). */
int ctl_snapshot_create(struct controller *c, enum vm_snapshot_type type, const char *state_path, const char *mem_path,
                        const char *config_json, struct errmsg *err);

/* Applies a snapshot's stored description to c's configuration (the API's handlers do, see api/snapshot_api.c). */
typedef int (*ctl_apply_description_fn)(struct controller *c, const char *json, void *ctx, struct errmsg *err);

struct ctl_snapshot_load {
    const char *snapshot_path;
    struct vm_restore_params restore;
    bool track_dirty_pages;
    ctl_apply_description_fn apply;
    void *apply_ctx;
};

/*
 * PUT /snapshot/load (and --snapshot-load) on a fresh process: only the
 * logger, metrics and serial output may have been configured. The VM is then
 * Running (restore.resume) or Paused. On error the process is as it was.
 */
int ctl_snapshot_load(struct controller *c, const struct ctl_snapshot_load *p, struct errmsg *err);
/* Microseconds since a now_ns() reading (latencies). */
uint64_t ctl_us_since(uint64_t t0_ns);

#endif
