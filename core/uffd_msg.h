/*
 * The message a VMM sends to a userfaultfd page-fault handler when it loads a
 * snapshot with `mem_backend.backend_type = "Uffd"`, in Firecracker's format so
 * that Firecracker's handlers serve Ember and Ember's handler serves Firecracker:
 *
 *   one sendmsg on the handler's Unix stream socket; the bytes are a JSON array
 *   [{"base_host_virt_addr": A, "size": S, "offset": O, "page_size": P, "page_size_kib": P}, ...]
 *   (one entry per guest memory region: the region's host address in the VMM,
 *   its length, where its contents start in the memory file, its page size in
 *   bytes; page_size_kib is Firecracker's older name for page_size and, despite
 *   the name, also in bytes), and the userfaultfd travels as SCM_RIGHTS.
 *
 * docs/snapshot-tools.md describes the whole exchange.
 */
#ifndef EMBER_UFFD_MSG_H
#define EMBER_UFFD_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "core/errmsg.h"

/* More regions than any VMM maps for guest RAM; a message with more is refused. */
#define UFFD_MSG_MAX_REGIONS 64
/* The largest message 64 regions make (each entry well under 200 bytes), with room to spare. */
#define UFFD_MSG_MAX_LEN 16384
/* Page sizes a region may use: 4 KiB up to 1 GiB (hugetlbfs), powers of two. */
#define UFFD_MSG_MIN_PAGE_SIZE 4096u
#define UFFD_MSG_MAX_PAGE_SIZE (1u << 30)

struct uffd_region {
    uint64_t base_host_virt_addr; /* where the region starts in the VMM's address space */
    uint64_t size;                /* bytes, a multiple of page_size */
    uint64_t offset;              /* where the region's contents start in the memory file */
    uint64_t page_size;           /* bytes */
};

/*
 * The JSON text for n regions into buf (NUL-terminated): its length, or
 * -ENOSPC when buf is too small, -EINVAL when n is 0 or above UFFD_MSG_MAX_REGIONS.
 */
int uffd_msg_encode(const struct uffd_region *r, unsigned n, char *buf, size_t len);

/*
 * Sends the text (without its NUL) with `uffd` attached as SCM_RIGHTS on the
 * connected stream socket `sock`: 0, or -errno (-EPIPE when the handler has gone).
 */
int uffd_msg_send(int sock, const char *json, int uffd);

/*
 * Receives the message on `sock` into buf (NUL-terminated, at most len - 1 bytes):
 * the text's length with *uffd set to the received descriptor (close-on-exec),
 * or -errno with a message: -ECONNRESET when the peer closed first, -EBADMSG
 * when no descriptor (or more than one) came with it, -EMSGSIZE when it did not
 * fit; no descriptor is left open on error.
 */
int uffd_msg_recv(int sock, char *buf, size_t len, int *uffd, struct errmsg *err);

/*
 * Parses and checks a message: 0 with *n regions in out[0..max), or -EINVAL with
 * a message saying what is wrong (not a JSON array, no regions or more than max,
 * a missing or non-integer field, page_size and page_size_kib disagreeing, a page
 * size that is not a power of two in [4 KiB, 1 GiB], an address or size that is
 * not a multiple of the page size, an offset that is not a multiple of 4 KiB
 * (what UFFDIO_COPY needs of its source), a zero size, a range that wraps, two
 * regions overlapping in the VMM's address space or in the file). Unknown fields
 * are ignored, as Firecracker's handlers do.
 */
int uffd_msg_parse(const char *json, size_t len, struct uffd_region *out, unsigned max, unsigned *n,
                   struct errmsg *err);

#endif
