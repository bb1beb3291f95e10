/* Answering one VMM's userfaultfd events from a memory file (tools/snapshot/uffd_serve.h). */
#include "tools/snapshot/uffd_serve.h"

#include <errno.h>
#include <inttypes.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

/* Events read at a time; faults the kernel refuses for now (EAGAIN) wait at the front of the same array. */
#define EVENT_BATCH 64

int uffd_regions_fit_file(const struct uffd_region *r, unsigned n, uint64_t file_size, const char *file_name,
                          struct errmsg *err)
{
    for (unsigned i = 0; i < n; i++) {
        /* uffd_msg_parse has refused offsets that wrap. */
        if (r[i].offset + r[i].size > file_size)
            return err_set(err, -EINVAL,
                           "region %u (offset 0x%" PRIx64 ", size 0x%" PRIx64 ") lies past the end of %s (%" PRIu64
                           " bytes): wrong memory file for this snapshot?",
                           i, r[i].offset, r[i].size, file_name, file_size);
    }
    return 0;
}

int uffd_region_lookup(const struct uffd_server *s, uint64_t addr, uint64_t *file_off, struct errmsg *err)
{
    for (unsigned i = 0; i < s->nr_regions; i++) {
        const struct uffd_region *r = &s->regions[i];
        if (addr < r->base_host_virt_addr || addr - r->base_host_virt_addr >= r->size)
            continue;
        uint64_t page_in_region = (addr - r->base_host_virt_addr) & ~(r->page_size - 1);
        uint64_t off = r->offset + page_in_region;
        if (off > s->file_size || s->file_size - off < r->page_size)
            return err_set(err, -EFAULT,
                           "page fault at 0x%" PRIx64 " (region %u) needs bytes 0x%" PRIx64 "..0x%" PRIx64
                           " of %s, which has %" PRIu64 " bytes",
                           addr, i, off, off + r->page_size, s->file_name, s->file_size);
        *file_off = off;
        return (int)i;
    }
    return err_set(err, -EFAULT, "page fault at 0x%" PRIx64 " lies in none of the %u region(s) the VMM sent", addr,
                   s->nr_regions);
}

int uffd_server_init(struct uffd_server *s, int uffd, const void *file, uint64_t file_size, const char *file_name,
                     const struct uffd_region *r, unsigned n, struct errmsg *err)
{
    memset(s, 0, sizeof(*s));
    s->uffd = uffd;
    s->file = file;
    s->file_size = file_size;
    s->file_name = file_name;
    s->nr_regions = n;
    memcpy(s->regions, r, n * sizeof(*r));
    uint64_t host_page = (uint64_t)sysconf(_SC_PAGESIZE), largest = 0;
    for (unsigned i = 0; i < n; i++) {
        if (r[i].page_size < host_page)
            return err_set(err, -EINVAL, "region %u: page size %" PRIu64 " is below this host's page size %" PRIu64, i,
                           r[i].page_size, host_page);
        if (r[i].page_size > largest)
            largest = r[i].page_size;
    }
    if (largest > host_page) {
        /* UFFDIO_ZEROPAGE does not take huge pages: those are zeroed by copying from here (untouched: no memory). */
        void *z = mmap(NULL, largest, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (z == MAP_FAILED)
            return err_set(err, -ENOMEM, "cannot map %" PRIu64 " bytes of zeros for huge pages", largest);
        s->zeros = z;
        s->zeros_len = largest;
    }
    return 0;
}

void uffd_server_destroy(struct uffd_server *s)
{
    for (unsigned i = 0; i < s->nr_regions; i++) {
        free(s->removed[i]);
        s->removed[i] = NULL;
    }
    if (s->zeros)
        munmap((void *)s->zeros, s->zeros_len);
    s->zeros = NULL;
}

static int page_removed(const struct uffd_server *s, unsigned i, uint64_t page_index)
{
    return s->removed[i] && (s->removed[i][page_index / 8] >> (page_index % 8) & 1);
}

/* Marks the pages of every region that [start, end) touches as removed: 0 or -ENOMEM. */
static int note_removal(struct uffd_server *s, uint64_t start, uint64_t end, struct errmsg *err)
{
    s->stats.removes++;
    for (unsigned i = 0; i < s->nr_regions; i++) {
        const struct uffd_region *r = &s->regions[i];
        uint64_t lo = start > r->base_host_virt_addr ? start : r->base_host_virt_addr;
        uint64_t region_end = r->base_host_virt_addr + r->size;
        uint64_t hi = end < region_end ? end : region_end;
        if (lo >= hi)
            continue;
        uint64_t pages = r->size / r->page_size;
        if (!s->removed[i] && !(s->removed[i] = calloc((pages + 7) / 8, 1)))
            return err_set(err, -ENOMEM, "out of memory recording removed pages of region %u", i);
        uint64_t first = (lo - r->base_host_virt_addr) / r->page_size;
        uint64_t last = (hi - r->base_host_virt_addr + r->page_size - 1) / r->page_size;
        for (uint64_t p = first; p < last; p++)
            s->removed[i][p / 8] |= (uint8_t)(1u << (p % 8));
    }
    return 0;
}

/*
 * The outcome of a UFFDIO_COPY or UFFDIO_ZEROPAGE of the page at `page` that set errno e:
 * 0 when the fault is settled, -EAGAIN to retry it later, 1 when the VMM is gone, else -errno.
 */
static int fill_failed(struct uffd_server *s, const char *what, uint64_t page, uint64_t len, int e, struct errmsg *err)
{
    switch (e) {
    case EEXIST: {
        /* Already present (a fault by another thread on the same page was served): make sure nobody sleeps on it. */
        struct uffdio_range range = {.start = page, .len = len};
        s->stats.faults++;
        s->stats.races++;
        if (ioctl(s->uffd, UFFDIO_WAKE, &range) < 0 && errno != ESRCH)
            return err_set(err, -errno, "UFFDIO_WAKE of page 0x%" PRIx64 " failed: %s", page, strerror(errno));
        return 0;
    }
    case EAGAIN: return -EAGAIN; /* a removal is queued: the kernel takes no copies until it has been read */
    case ESRCH: return 1;        /* the VMM's address space is gone */
    case ENOENT: return 0;       /* the VMM unmapped the range: nobody waits on it any more */
    default: return err_set(err, -e, "%s of page 0x%" PRIx64 " failed: %s", what, page, strerror(e));
    }
}

static int serve_fault(struct uffd_server *s, const struct uffd_msg *m, struct errmsg *err)
{
    uint64_t addr = m->arg.pagefault.address;
    if (m->arg.pagefault.flags & (UFFD_PAGEFAULT_FLAG_WP | UFFD_PAGEFAULT_FLAG_MINOR))
        return err_set(err, -EPROTO,
                       "page fault at 0x%" PRIx64 " with flags 0x%llx: only missing-page faults are expected", addr,
                       (unsigned long long)m->arg.pagefault.flags);
    uint64_t file_off = 0;
    int i = uffd_region_lookup(s, addr, &file_off, err);
    if (i < 0)
        return i;
    const struct uffd_region *r = &s->regions[i];
    uint64_t page = addr & ~(r->page_size - 1);
    bool zero = page_removed(s, (unsigned)i, (page - r->base_host_virt_addr) / r->page_size);
    if (zero && !s->zeros) {
        struct uffdio_zeropage z = {.range = {.start = page, .len = r->page_size}};
        if (ioctl(s->uffd, UFFDIO_ZEROPAGE, &z) < 0)
            return fill_failed(s, "UFFDIO_ZEROPAGE", page, r->page_size, errno, err);
    } else {
        const uint8_t *src = zero ? s->zeros : s->file + file_off;
        struct uffdio_copy c = {.dst = page, .src = (uintptr_t)src, .len = r->page_size};
        if (ioctl(s->uffd, UFFDIO_COPY, &c) < 0)
            return fill_failed(s, "UFFDIO_COPY", page, r->page_size, errno, err);
    }
    s->stats.faults++;
    if (zero)
        s->stats.pages_zeroed++;
    else
        s->stats.pages_copied++;
    return 0;
}

int uffd_server_drain(struct uffd_server *s, struct errmsg *err)
{
    struct uffd_msg ev[EVENT_BATCH];
    unsigned held = 0;
    for (;;) {
        ssize_t got = read(s->uffd, ev + held, (EVENT_BATCH - held) * sizeof(ev[0]));
        unsigned fresh = 0;
        if (got < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                return err_set(err, -errno, "reading the userfaultfd failed: %s", strerror(errno));
            if (held == 0)
                return 0;
            /* Faults wait on a removal that is not queued yet: let it arrive rather than spin. */
            struct pollfd p = {.fd = s->uffd, .events = POLLIN};
            poll(&p, 1, 10);
        } else {
            if (got == 0 || got % (ssize_t)sizeof(ev[0]))
                return err_set(err, -EPROTO, "the userfaultfd returned %zd bytes, not whole events", got);
            fresh = (unsigned)(got / (ssize_t)sizeof(ev[0]));
        }
        /*
         * Removals first: a fault queued with a removal of its page is answered
         * with zeros, as if it came after (it has not completed, so it may).
         */
        for (unsigned k = held; k < held + fresh; k++) {
            int rc = 0;
            switch (ev[k].event) {
            case UFFD_EVENT_PAGEFAULT: break;
            case UFFD_EVENT_REMOVE: rc = note_removal(s, ev[k].arg.remove.start, ev[k].arg.remove.end, err); break;
            case UFFD_EVENT_UNMAP: break; /* faults there cannot come any more */
            default:
                rc = err_set(err, -EPROTO, "unexpected userfaultfd event %u (the VMM asked for more than removals?)",
                             ev[k].event);
            }
            if (rc)
                return rc;
        }
        unsigned still_held = 0;
        for (unsigned k = 0; k < held + fresh; k++) {
            if (ev[k].event != UFFD_EVENT_PAGEFAULT)
                continue;
            int rc = serve_fault(s, &ev[k], err);
            if (rc == -EAGAIN)
                ev[still_held++] = ev[k];
            else if (rc)
                return rc;
        }
        held = still_held;
    }
}
