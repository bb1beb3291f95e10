/*
 * Serving a VMM's userfaultfd from a memory file: the events of one uffd
 * (page faults, removals by MADV_DONTNEED) answered with UFFDIO_COPY from the
 * file or UFFDIO_ZEROPAGE for pages the VMM removed. No threads, no sockets:
 * uffd_handler.c does those.
 */
#ifndef EMBER_UFFD_SERVE_H
#define EMBER_UFFD_SERVE_H

#include <stdint.h>

#include "core/errmsg.h"
#include "core/uffd_msg.h"

struct uffd_stats {
    uint64_t faults;       /* page-fault events answered */
    uint64_t pages_copied; /* pages filled from the file */
    uint64_t pages_zeroed; /* pages filled with zeros (removed before) */
    uint64_t races;        /* faults on pages already present (EEXIST: another thread faulted them first) */
    uint64_t removes;      /* remove events (balloon, MADV_DONTNEED) */
};

struct uffd_server {
    int uffd;
    const uint8_t *file; /* the memory file, mapped read-only */
    uint64_t file_size;
    const char *file_name; /* for messages */
    struct uffd_region regions[UFFD_MSG_MAX_REGIONS];
    unsigned nr_regions;
    /* Per region, one bit per page the VMM removed (NULL until the first removal there). */
    uint8_t *removed[UFFD_MSG_MAX_REGIONS];
    /* Read-only zeros as large as the largest page, the source for zeroing huge pages. */
    const uint8_t *zeros;
    uint64_t zeros_len;
    struct uffd_stats stats;
};

/*
 * Checks that every region lies inside the file (offset + size <= file_size):
 * 0, or -EINVAL with a message naming the region and the file.
 */
int uffd_regions_fit_file(const struct uffd_region *r, unsigned n, uint64_t file_size, const char *file_name,
                          struct errmsg *err);

/*
 * The region holding addr and, through *file_off, where addr's page starts in
 * the file: its index, or -EFAULT with a message when addr lies in no region or
 * its page lies past the file's end.
 */
int uffd_region_lookup(const struct uffd_server *s, uint64_t addr, uint64_t *file_off, struct errmsg *err);

/* Sets s up over regions already checked by uffd_msg_parse and uffd_regions_fit_file: 0 or -ENOMEM. */
int uffd_server_init(struct uffd_server *s, int uffd, const void *file, uint64_t file_size, const char *file_name,
                     const struct uffd_region *r, unsigned n, struct errmsg *err);

/*
 * Reads every event queued on the (non-blocking) uffd and answers it: 0 when
 * the queue is empty, 1 when the VMM's memory is gone (it exited), -errno with
 * a message for a fault it cannot serve or an event it does not expect.
 */
int uffd_server_drain(struct uffd_server *s, struct errmsg *err);

void uffd_server_destroy(struct uffd_server *s);

#endif
