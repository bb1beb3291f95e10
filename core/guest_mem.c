#include "core/guest_mem.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

int guest_mem_layout(uint64_t bytes, struct guest_region *out, int *nr)
{
    if (bytes == 0 || (bytes & 0xfff))
        return -EINVAL;
    uint64_t low = bytes < MMIO_GAP_START ? bytes : MMIO_GAP_START;
    out[0] = (struct guest_region){.gpa = 0, .size = low, .host = NULL};
    *nr = 1;
    if (bytes > low) {
        out[1] = (struct guest_region){.gpa = MMIO_GAP_END, .size = bytes - low, .host = NULL};
        *nr = 2;
    }
    return 0;
}

static int layout_into(struct guest_mem *gm, uint64_t bytes)
{
    memset(gm, 0, sizeof(*gm));
    int rc = guest_mem_layout(bytes, gm->regions, &gm->nr_regions);
    if (rc == 0)
        gm->total = bytes;
    return rc;
}

int guest_mem_init(struct guest_mem *gm, uint64_t bytes)
{
    int rc = layout_into(gm, bytes);
    if (rc)
        return rc;
    for (int i = 0; i < gm->nr_regions; i++) {
        /* MAP_NORESERVE: guest pages cost nothing until the guest touches them. */
        void *p = mmap(NULL, gm->regions[i].size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                       -1, 0);
        if (p == MAP_FAILED) {
            rc = -errno;
            guest_mem_free(gm);
            return rc;
        }
        gm->regions[i].host = p;
    }
    return 0;
}

int guest_mem_init_file(struct guest_mem *gm, uint64_t bytes, int fd)
{
    int rc = layout_into(gm, bytes);
    if (rc)
        return rc;
    gm->file_backed = 1;
    uint64_t off = 0;
    for (int i = 0; i < gm->nr_regions; i++) {
        void *p = mmap(NULL, gm->regions[i].size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, fd, (off_t)off);
        if (p == MAP_FAILED) {
            rc = -errno;
            guest_mem_free(gm);
            return rc;
        }
        gm->regions[i].host = p;
        off += gm->regions[i].size;
    }
    return 0;
}

int guest_mem_init_with(struct guest_mem *gm, uint64_t bytes, uint8_t *backing)
{
    int rc = layout_into(gm, bytes);
    if (rc)
        return rc;
    uint64_t off = 0;
    for (int i = 0; i < gm->nr_regions; i++) {
        gm->regions[i].host = backing + off;
        off += gm->regions[i].size;
    }
    gm->total = 0; /* marks "not ours to unmap" */
    return 0;
}

void guest_mem_free(struct guest_mem *gm)
{
    for (int i = 0; i < gm->nr_regions; i++) {
        if (gm->total && gm->regions[i].host)
            munmap(gm->regions[i].host, gm->regions[i].size);
        free((void *)gm->regions[i].dirty);
    }
    memset(gm, 0, sizeof(*gm));
}

size_t gm_dirty_words(const struct guest_mem *gm, int region)
{
    return (size_t)((gm->regions[region].size / GUEST_PAGE_SIZE + 63) / 64);
}

int guest_mem_track_dirty(struct guest_mem *gm)
{
    for (int i = 0; i < gm->nr_regions; i++) {
        if (gm->regions[i].dirty)
            continue;
        gm->regions[i].dirty = calloc(gm_dirty_words(gm, i), sizeof(*gm->regions[i].dirty));
        if (!gm->regions[i].dirty)
            return -ENOMEM;
    }
    return 0;
}

void gm_take_dirty(const struct guest_mem *gm, int region, uint64_t *out)
{
    _Atomic uint64_t *d = gm->regions[region].dirty;
    if (!d)
        return;
    for (size_t w = 0, n = gm_dirty_words(gm, region); w < n; w++)
        if (atomic_load_explicit(&d[w], memory_order_relaxed))
            out[w] |= atomic_exchange(&d[w], 0);
}

void gm_return_dirty(const struct guest_mem *gm, int region, const uint64_t *pages)
{
    _Atomic uint64_t *d = gm->regions[region].dirty;
    if (!d)
        return;
    for (size_t w = 0, n = gm_dirty_words(gm, region); w < n; w++)
        if (pages[w])
            atomic_fetch_or(&d[w], pages[w]);
}

static void mark_dirty(const struct guest_region *r, uint64_t off, uint64_t len)
{
    uint64_t first = off / GUEST_PAGE_SIZE, last = (off + (len ? len : 1) - 1) / GUEST_PAGE_SIZE;
    for (uint64_t p = first; p <= last; p++)
        if (!(atomic_load_explicit(&r->dirty[p / 64], memory_order_relaxed) & (1ULL << (p % 64))))
            atomic_fetch_or(&r->dirty[p / 64], 1ULL << (p % 64));
}

void *gm_ptr(const struct guest_mem *gm, uint64_t gpa, uint64_t len)
{
    for (int i = 0; i < gm->nr_regions; i++) {
        const struct guest_region *r = &gm->regions[i];
        if (gpa < r->gpa)
            continue;
        uint64_t off = gpa - r->gpa;
        /* Written so that no addition can wrap: off < size, len <= size - off. */
        if (off >= r->size || len > r->size - off)
            continue;
        if (r->dirty) /* any pointer may be written through: counted as written */
            mark_dirty(r, off, len);
        return r->host + off;
    }
    return NULL;
}

int gm_read(const struct guest_mem *gm, uint64_t gpa, void *dst, uint64_t len)
{
    const void *src = gm_ptr(gm, gpa, len);
    if (!src)
        return -EFAULT;
    memcpy(dst, src, len);
    return 0;
}

int gm_write(const struct guest_mem *gm, uint64_t gpa, const void *src, uint64_t len)
{
    void *dst = gm_ptr(gm, gpa, len);
    if (!dst)
        return -EFAULT;
    memcpy(dst, src, len);
    return 0;
}

int gm_zero(const struct guest_mem *gm, uint64_t gpa, uint64_t len)
{
    uint8_t *dst = gm_ptr(gm, gpa, len);
    if (!dst)
        return -EFAULT;
    const uintptr_t page = 4096;
    uintptr_t a = ((uintptr_t)dst + page - 1) & ~(page - 1);
    uintptr_t b = ((uintptr_t)dst + len) & ~(page - 1);
    /* Only our own private anonymous mapping (total != 0) reads back as zeros after MADV_DONTNEED. */
    if (!gm->total || gm->file_backed || b <= a || madvise((void *)a, b - a, MADV_DONTNEED) != 0) {
        memset(dst, 0, len);
        return 0;
    }
    memset(dst, 0, a - (uintptr_t)dst);
    memset((void *)b, 0, (uintptr_t)dst + len - b);
    return 0;
}

uint64_t gm_low_end(const struct guest_mem *gm) { return gm->nr_regions ? gm->regions[0].size : 0; }
