#include "core/file_replace.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int file_write_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return -errno;
        if (k == 0)
            return -EIO;
        p += k, n -= (size_t)k;
    }
    return 0;
}

/* Makes the rename durable: fsync of the directory holding path (best effort where that is refused). */
static void sync_dir_of(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(copy);
}

int file_replace(const char *path, file_fill_fn *fill, void *ctx, const char **step)
{
    char *tmp = NULL;
    *step = "create a temporary file beside";
    if (asprintf(&tmp, "%s.tmp.XXXXXX", path) < 0)
        return -ENOMEM;
    int rc = 0;
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
    } else {
        *step = "write";
        rc = fill(fd, ctx, step);
        if (!rc && fsync(fd) != 0)
            *step = "sync", rc = -errno;
        if (close(fd) != 0 && !rc)
            *step = "close", rc = -errno;
        if (!rc && rename(tmp, path) != 0)
            *step = "rename the temporary file to", rc = -errno;
        if (rc)
            unlink(tmp); /* nothing half-written stays behind */
    }
    free(tmp);
    if (!rc)
        sync_dir_of(path);
    return rc;
}
