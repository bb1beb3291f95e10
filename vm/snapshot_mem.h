/*
 * A snapshot's guest memory: the memory file written at create (Full: all of
 * RAM, Diff: the pages written since the last snapshot, both sparse at the
 * pages' own offsets) and the two backends a load maps it with (File:
 * MAP_PRIVATE of the file; Uffd: anonymous memory whose page faults an
 * external handler serves, in Firecracker's protocol).
 *
 * The memory file is the guest's RAM regions one after the other, in
 * guest-physical order (the region above the 32-bit MMIO gap follows the one
 * below it), so file offset = position in RAM, not guest-physical address.
 */
#ifndef EMBER_SNAPSHOT_MEM_H
#define EMBER_SNAPSHOT_MEM_H

#include <stdbool.h>
#include <stdint.h>

#include "core/errmsg.h"
#include "core/guest_mem.h"

/* What a memory file write did (create's metrics and the tests). */
struct snapshot_mem_stats {
    uint64_t pages_written; /* 4 KiB pages with data in the file */
    uint64_t bytes_written;
    /* With tracking: the dirty pages the write took from the logs, per region (snapshot_mem_settle). */
    uint64_t *taken[GUEST_MEM_MAX_REGIONS];
};

/*
 * Ends a create that wrote a memory file with tracking on: if the snapshot as
 * a whole failed (the state file could not be written either), the pages the
 * write took from the dirty logs are marked dirty again, so the next Diff
 * still holds them. Frees stats->taken.
 */
void snapshot_mem_settle(const struct guest_mem *gm, struct snapshot_mem_stats *stats, bool failed);

/*
 * Writes the memory file through a temporary file beside `path`, fsync and
 * rename: `path` then holds the whole file or what it held before. Full (diff
 * false) writes every page that is not all zeros (the rest stay holes, which
 * read as zeros); diff writes the pages KVM's dirty log on vm_fd or the
 * accessor's bitmap (guest_mem_track_dirty) mark, and needs tracking. With
 * tracking on, both start over from here, so the next Diff holds what
 * changes after this one; a caller passing stats ends the create with
 * snapshot_mem_settle (with NULL stats, or on error, it is settled here).
 */
int snapshot_mem_write(const struct guest_mem *gm, int vm_fd, bool diff, bool tracking, const char *path,
                       struct snapshot_mem_stats *stats, struct errmsg *err);

/*
 * Opens a memory file for the File backend: a regular file of exactly
 * `bytes` bytes (shorter cannot back the RAM; longer belongs to another
 * snapshot). Returns the fd (read-only) or -errno with a message.
 */
int snapshot_mem_open(const char *path, uint64_t bytes, struct errmsg *err);

/*
 * The Uffd backend: registers every region of gm (anonymous, not yet touched)
 * with a new userfaultfd, connects to the handler listening on sock_path and
 * sends it the region list and the userfaultfd. *uffd and *sock stay open for
 * the VM's life (the handler learns that the VM is gone when they close).
 */
int snapshot_mem_uffd(const struct guest_mem *gm, const char *sock_path, int *uffd, int *sock, struct errmsg *err);

#endif
