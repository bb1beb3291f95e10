/*
 * Snapshots of a whole VM: create writes a state file (core/snapshot_file.h:
 * the VM's description as the API shows it, the VM-wide KVM state, every
 * vCPU, every device in realize order) and a memory file (vm/snapshot_mem.h);
 * restore builds a VM from them in a fresh process. docs/snapshots.md has the
 * format, the compatibility rules and what a snapshot does not hold.
 */
#ifndef EMBER_VM_SNAPSHOT_H
#define EMBER_VM_SNAPSHOT_H

#include <stdbool.h>
#include <stdint.h>

#include "core/errmsg.h"
#include "core/event_loop.h"
#include "vm/config.h"

struct vm;

enum vm_snapshot_type { VM_SNAPSHOT_FULL, VM_SNAPSHOT_DIFF };

struct vm_snapshot_create {
    enum vm_snapshot_type type;
    const char *state_path;
    const char *mem_path;
    const char *config_json; /* the description to hand back at load (GET /vm/config's body) */
};

/* What a create wrote (metrics, tests). */
struct vm_snapshot_stats {
    uint64_t state_bytes;
    uint64_t mem_pages_written;
};

/*
 * Saves a paused VM (devices quiesced first: block requests in flight are
 * completed). On error no new file is left at either path, whatever was
 * there before is unchanged, and the VM stays paused and can be resumed.
 */
int vm_snapshot_create(struct vm *vm, const struct vm_snapshot_create *p, struct vm_snapshot_stats *stats,
                       struct errmsg *err);

/* A state file read and checked (magic, version, checksum, sizes), ready to restore from. */
struct vm_snapshot;
int vm_snapshot_open(const char *path, struct vm_snapshot **out, struct errmsg *err);
void vm_snapshot_close(struct vm_snapshot *s);
/* The description the snapshot was taken with (NUL-terminated JSON text). */
const char *vm_snapshot_config_json(const struct vm_snapshot *s);
uint64_t vm_snapshot_mem_bytes(const struct vm_snapshot *s);
uint32_t vm_snapshot_vcpus(const struct vm_snapshot *s);

enum vm_mem_backend { VM_MEM_BACKEND_FILE, VM_MEM_BACKEND_UFFD };

struct vm_restore_params {
    enum vm_mem_backend backend;
    const char *backend_path; /* the memory file, or the page-fault handler's socket */
    bool clock_realtime;      /* advance the guest's clock by the wall-clock time since the snapshot */
    bool resume;              /* the vCPUs run as soon as the VM starts; else it starts paused */
};

/*
 * Builds the VM `cfg` describes (which must match the snapshot's vCPU count
 * and memory size) with the snapshot's state instead of a boot, ready for
 * vm_start. On error the caller runs vm_destroy; err says what differs.
 */
int vm_restore(struct vm *vm, const struct vm_config *cfg, struct event_loop *loop, const struct vm_snapshot *s,
               const struct vm_restore_params *p, struct errmsg *err);

#endif
