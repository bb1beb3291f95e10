/*
 * ember-snapshot-merge BASE_MEM DIFF_MEM: lays a Diff snapshot's memory file
 * onto its Full base, in place. A Diff memory file is as large as guest RAM
 * but sparse: only the pages dirtied since the previous snapshot hold data, at
 * their own offsets. Every data extent of DIFF (SEEK_DATA / SEEK_HOLE) is
 * copied into BASE at the same offset, then BASE is synced. Firecracker's
 * rebase-snap does the same job; docs/snapshot-tools.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/errmsg.h"

#define PROG "ember-snapshot-merge"
#define COPY_CHUNK (1u << 20)

static void usage(FILE *to)
{
    fprintf(to, "usage: " PROG " BASE_MEM DIFF_MEM\n"
                "Copies every data extent of the sparse memory file DIFF_MEM (a Diff snapshot's)\n"
                "into BASE_MEM (the memory file it was taken on top of) at the same offset, in\n"
                "place, then syncs BASE_MEM. Both must be regular files of the same size;\n"
                "otherwise BASE_MEM is left untouched. DIFF_MEM must still be sparse: a copy that\n"
                "filled its holes with zeros would overwrite every page of BASE_MEM.\n"
                "Exit status: 0 merged, 1 refused or failed (message on stderr).\n");
}

struct merge_stats {
    uint64_t bytes;
    uint64_t extents;
};

static int open_checked(const char *path, int flags, struct stat *st, struct errmsg *err)
{
    int fd = open(path, flags | O_CLOEXEC);
    if (fd < 0)
        return err_set(err, -errno, "cannot open %s: %s", path, strerror(errno));
    int rc = 0;
    if (fstat(fd, st) < 0)
        rc = err_set(err, -errno, "cannot stat %s: %s", path, strerror(errno));
    else if (!S_ISREG(st->st_mode))
        rc = err_set(err, -EINVAL, "%s is not a regular file", path);
    if (rc)
        close(fd);
    return rc ? rc : fd;
}

/* Copies [off, end) of diff into base at the same offset. */
static int copy_extent(int base, int diff, off_t off, off_t end, char *buf, const char *base_path,
                       const char *diff_path, struct errmsg *err)
{
    while (off < end) {
        size_t want = (uint64_t)(end - off) < COPY_CHUNK ? (size_t)(end - off) : COPY_CHUNK;
        ssize_t got = pread(diff, buf, want, off);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return err_set(err, got ? -errno : -EIO, "reading %s at 0x%jx failed: %s", diff_path, (intmax_t)off,
                           got ? strerror(errno) : "unexpected end of file");
        for (ssize_t done = 0; done < got;) {
            ssize_t w = pwrite(base, buf + done, (size_t)(got - done), off + done);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                return err_set(err, w ? -errno : -EIO, "writing %s at 0x%jx failed: %s", base_path,
                               (intmax_t)(off + done), w ? strerror(errno) : "nothing written");
            done += w;
        }
        off += got;
    }
    return 0;
}

static int merge(int base, int diff, off_t size, const char *base_path, const char *diff_path, struct merge_stats *ms,
                 struct errmsg *err)
{
    char *buf = malloc(COPY_CHUNK);
    if (!buf)
        return err_set(err, -ENOMEM, "out of memory");
    int rc = 0;
    for (off_t pos = 0; !rc && pos < size;) {
        off_t data = lseek(diff, pos, SEEK_DATA);
        if (data < 0) {
            if (errno != ENXIO) /* ENXIO: no data after pos */
                rc = err_set(err, -errno, "SEEK_DATA in %s failed: %s", diff_path, strerror(errno));
            break;
        }
        off_t hole = lseek(diff, data, SEEK_HOLE);
        if (hole < 0) {
            rc = err_set(err, -errno, "SEEK_HOLE in %s failed: %s", diff_path, strerror(errno));
            break;
        }
        if (hole > size)
            hole = size; /* the file grew while we read it: the size checked up front is what is merged */
        rc = copy_extent(base, diff, data, hole, buf, base_path, diff_path, err);
        ms->bytes += (uint64_t)(hole - data);
        ms->extents++;
        pos = hole;
    }
    free(buf);
    if (!rc && fsync(base) < 0)
        rc = err_set(err, -errno, "fsync of %s failed: %s", base_path, strerror(errno));
    return rc;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        }
    }
    if (argc != 3 || argv[1][0] == '-' || argv[2][0] == '-') {
        usage(stderr);
        return 1;
    }
    const char *base_path = argv[1], *diff_path = argv[2];
    struct errmsg err = {{0}};
    struct stat bst = {0}, dst = {0};
    struct merge_stats ms = {0};
    int base = -1, diff = -1, rc;
    if ((rc = diff = open_checked(diff_path, O_RDONLY, &dst, &err)) < 0 ||
        (rc = base = open_checked(base_path, O_RDWR, &bst, &err)) < 0)
        goto out;
    if (bst.st_dev == dst.st_dev && bst.st_ino == dst.st_ino)
        rc = err_set(&err, -EINVAL, "%s and %s are the same file", base_path, diff_path);
    else if (bst.st_size != dst.st_size)
        rc = err_set(&err, -EINVAL,
                     "%s has %jd bytes and %s %jd: a diff is as large as the guest RAM of its base; wrong pair?",
                     base_path, (intmax_t)bst.st_size, diff_path, (intmax_t)dst.st_size);
    else
        rc = merge(base, diff, bst.st_size, base_path, diff_path, &ms, &err);
out:
    if (base >= 0)
        close(base);
    if (diff >= 0)
        close(diff);
    if (rc < 0) {
        fprintf(stderr, PROG ": %s\n", err.text);
        if (ms.extents)
            fprintf(stderr, PROG ": %s is partly merged: merge again once the cause is fixed\n", base_path);
        return 1;
    }
    printf(PROG ": merged %" PRIu64 " bytes in %" PRIu64 " extent(s) of %s into %s\n", ms.bytes, ms.extents, diff_path,
           base_path);
    return 0;
}
