#include "core/guest_mem.h"

#include <errno.h>
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
    if (gm->total) {
        for (int i = 0; i < gm->nr_regions; i++)
            if (gm->regions[i].host)
                munmap(gm->regions[i].host, gm->regions[i].size);
    }
    memset(gm, 0, sizeof(*gm));
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
    if (!gm->total || b <= a || madvise((void *)a, b - a, MADV_DONTNEED) != 0) {
        memset(dst, 0, len);
        return 0;
    }
    memset(dst, 0, a - (uintptr_t)dst);
    memset((void *)b, 0, (uintptr_t)dst + len - b);
    return 0;
}

uint64_t gm_low_end(const struct guest_mem *gm) { return gm->nr_regions ? gm->regions[0].size : 0; }
