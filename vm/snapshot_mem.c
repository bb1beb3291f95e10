#include "vm/snapshot_mem.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/file_replace.h"

#define RUN_MAX_PAGES 256 /* one pwrite covers at most 1 MiB */

static bool page_is_zero(const uint8_t *p)
{
    const uint64_t *w = (const uint64_t *)(const void *)p;
    for (size_t i = 0; i < GUEST_PAGE_SIZE / 8; i++)
        if (w[i])
            return false;
    return true;
}

static int pwrite_all(int fd, const uint8_t *p, uint64_t len, uint64_t off)
{
    while (len) {
        ssize_t n = pwrite(fd, p, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return -EIO;
        p += n, off += (uint64_t)n, len -= (uint64_t)n;
    }
    return 0;
}

static bool bit(const uint64_t *map, uint64_t i) { return (map[i / 64] >> (i % 64)) & 1; }

/* Region r's dirty pages: KVM's log (the guest's writes) ORed with the accessor's (Ember's). */
static int take_dirty(const struct guest_mem *gm, int vm_fd, int r, uint64_t *map)
{
    struct kvm_dirty_log log = {.slot = (uint32_t)r, .dirty_bitmap = map};
    if (ioctl(vm_fd, KVM_GET_DIRTY_LOG, &log) < 0)
        return -errno;
    gm_take_dirty(gm, r, map);
    return 0;
}

/* Writes region r (at file offset `base`): the pages `map` marks, or (map NULL) every non-zero page. */
static int write_region(int fd, const struct guest_region *reg, uint64_t base, const uint64_t *map,
                        uint64_t *pages_written)
{
    uint64_t pages = reg->size / GUEST_PAGE_SIZE;
    for (uint64_t p = 0; p < pages;) {
        bool want = map ? bit(map, p) : !page_is_zero(reg->host + p * GUEST_PAGE_SIZE);
        if (!want) {
            p++;
            continue;
        }
        uint64_t n = 1;
        while (p + n < pages && n < RUN_MAX_PAGES &&
               (map ? bit(map, p + n) : !page_is_zero(reg->host + (p + n) * GUEST_PAGE_SIZE)))
            n++;
        int rc = pwrite_all(fd, reg->host + p * GUEST_PAGE_SIZE, n * GUEST_PAGE_SIZE, base + p * GUEST_PAGE_SIZE);
        if (rc)
            return rc;
        *pages_written += n;
        p += n;
    }
    return 0;
}

/*
 * With tracking, every region's dirty pages are taken into maps[] (for a Full
 * snapshot too: the next Diff starts from this one); the caller hands them
 * back with return_dirty if the snapshot fails in the end.
 */
static int write_all_regions(int fd, const struct guest_mem *gm, int vm_fd, bool diff, bool tracking,
                             struct snapshot_mem_stats *st, const char **step)
{
    uint64_t **maps = st->taken;
    for (int r = 0; tracking && r < gm->nr_regions; r++) {
        maps[r] = calloc(gm_dirty_words(gm, r), sizeof(uint64_t));
        if (!maps[r])
            return -ENOMEM;
        int rc = take_dirty(gm, vm_fd, r, maps[r]);
        if (rc) {
            *step = "read KVM's dirty page log for";
            return rc;
        }
    }
    uint64_t base = 0;
    for (int r = 0; r < gm->nr_regions; r++) {
        int rc = write_region(fd, &gm->regions[r], base, diff ? maps[r] : NULL, &st->pages_written);
        if (rc)        /* the maps stay in st->taken: snapshot_mem_settle frees them */
            return rc; // NOLINT(clang-analyzer-unix.Malloc)
        base += gm->regions[r].size;
    }
    return 0;
}

void snapshot_mem_settle(const struct guest_mem *gm, struct snapshot_mem_stats *stats, bool failed)
{
    for (int r = 0; r < GUEST_MEM_MAX_REGIONS; r++) {
        if (stats->taken[r] && failed && r < gm->nr_regions)
            gm_return_dirty(gm, r, stats->taken[r]);
        free(stats->taken[r]);
        stats->taken[r] = NULL;
    }
}

struct fill_ctx {
    const struct guest_mem *gm;
    int vm_fd;
    bool diff, tracking;
    uint64_t ram;
    struct snapshot_mem_stats *stats;
};

/* file_replace's filler: the whole RAM's size, then the pages; what is not written is a hole that reads as zeros. */
static int fill_memory(int fd, void *ctx, const char **step)
{
    const struct fill_ctx *fc = ctx;
    if (ftruncate(fd, (off_t)fc->ram) != 0)
        return -errno;
    return write_all_regions(fd, fc->gm, fc->vm_fd, fc->diff, fc->tracking, fc->stats, step);
}

int snapshot_mem_write(const struct guest_mem *gm, int vm_fd, bool diff, bool tracking, const char *path,
                       struct snapshot_mem_stats *stats, struct errmsg *err)
{
    struct snapshot_mem_stats st = {0};
    if (diff && !tracking) /* no dirty log: it would silently be a Full */
        return err_set(err, -EINVAL, "memory file '%s': a Diff snapshot needs dirty page tracking", path);
    /* The RAM's size from its regions: gm->total is 0 on memory the caller provides (guest_mem_init_with). */
    uint64_t ram = 0;
    for (int r = 0; r < gm->nr_regions; r++)
        ram += gm->regions[r].size;
    struct fill_ctx fc = {.gm = gm, .vm_fd = vm_fd, .diff = diff, .tracking = tracking, .ram = ram, .stats = &st};
    const char *step;
    int rc = file_replace(path, fill_memory, &fc, &step);
    /* Failed here, or no caller to settle later: settled now. */
    if (rc || !stats)
        snapshot_mem_settle(gm, &st, rc != 0);
    if (rc)
        return err_set(err, rc, "memory file '%s': cannot %s it: %s", path, step, strerror(-rc));
    st.bytes_written = st.pages_written * GUEST_PAGE_SIZE;
    if (stats)
        *stats = st;
    return 0;
}

int snapshot_mem_open(const char *path, uint64_t bytes, struct errmsg *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        int rc = -errno;
        return err_set(err, rc, "memory file '%s': cannot open it: %s", path, strerror(-rc));
    }
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) != 0)
        rc = err_set(err, -errno, "memory file '%s': cannot stat it: %s", path, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        rc = err_set(err, -EINVAL, "memory file '%s' is not a regular file", path);
    else if ((uint64_t)st.st_size != bytes)
        rc = err_set(err, -EINVAL, "memory file '%s' holds %lld bytes, the snapshot's guest has %llu bytes of RAM: %s",
                     path, (long long)st.st_size, (unsigned long long)bytes,
                     (uint64_t)st.st_size < bytes ? "it is truncated" : "it belongs to another snapshot");
    if (rc) {
        close(fd);
        return rc;
    }
    return fd;
}
