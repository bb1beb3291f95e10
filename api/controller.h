/*
 * The control state machine, Firecracker's two phases: before boot the
 * configuration is collected (from the API, a config file or the command
 * line); InstanceStart builds and starts the VM; after boot only runtime
 * operations are allowed. Runs on the VMM thread only.
 */
#ifndef EMBER_CONTROLLER_H
#define EMBER_CONTROLLER_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "vm/config.h"
#include "core/errmsg.h"

struct runner;
struct vm;
struct api_server;

#define CTL_PATH 4096

struct ctl_drive {
    char id[65];
    char path[CTL_PATH];
    bool root, read_only;
    enum blk_engine engine;
    char partuuid[64];
    char cache_type[16];
};

struct ctl_net {
    char id[65];
    char tap[16];
    char mac_text[18];
    uint8_t mac[6];
    bool has_mac;
};

enum ctl_state { CTL_NOT_STARTED, CTL_RUNNING, CTL_PAUSED };

struct controller {
    struct runner *runner;
    struct vm *vm;
    const char *instance_id;
    enum ctl_state state;

    unsigned vcpu_count;
    uint64_t mem_mib;
    bool smt, track_dirty_pages;

    bool boot_set, has_initrd, has_boot_args;
    char kernel[CTL_PATH], initrd[CTL_PATH];
    char boot_args[4096];

    struct ctl_drive drives[EMBER_MAX_DRIVES];
    unsigned nr_drives;
    struct ctl_net nets[EMBER_MAX_NETS];
    unsigned nr_nets;

    bool logger_set, metrics_set, serial_set;
    char log_path[CTL_PATH], log_level[16];
    bool show_level, show_log_origin;
    char metrics_path[CTL_PATH];
    char serial_out[CTL_PATH];
    int log_fd;
    int metrics_fd;
    bool metrics_emit_id;
    struct json_t *metrics_properties; /* operator key-value pairs put on every metrics line */
    int metrics_timer_fd;
    uint64_t metrics_flushes;

    /* Command-line settings a config file or API start inherits. */
    enum host_compat_mode host_compat;
    enum kernel_decompress_mode decompress;
    int use_pvh, print_stats;
};

void ctl_init(struct controller *c, struct runner *r, struct vm *vm, const char *instance_id);
void ctl_destroy(struct controller *c);
/* InstanceStart: build the VM from the collected configuration and start it. */
int ctl_start(struct controller *c, struct errmsg *err);
/* Copies a command-line VM description into the controller (so GET /vm/config shows it). */
int ctl_from_cli(struct controller *c, const struct vm_config *cfg, struct errmsg *err);
/* Writes one metrics line now (FlushMetrics and the periodic timer). */
int ctl_flush_metrics(struct controller *c, struct errmsg *err);
const char *ctl_state_name(const struct controller *c);
int ctl_set_metrics(struct controller *c, const char *path, struct errmsg *err);
/* level: Error|Warning|Info|Debug|Trace|Off; path NULL keeps stderr. */
int ctl_set_logger(struct controller *c, const char *path, const char *level, bool show_level, bool show_origin,
                   struct errmsg *err);

#endif
