#include "core/path_open.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

int path_open_noblock(const char *path, int flags, struct stat *st)
{
    int fd = open(path, flags | O_NONBLOCK | O_NOCTTY, 0600); /* the mode of a file O_CREAT makes */
    if (fd < 0)
        return -errno;
    int fl = fcntl(fd, F_GETFL);
    if (fstat(fd, st) < 0 || fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

const char *path_kind(mode_t mode)
{
    switch (mode & S_IFMT) {
    case S_IFREG: return "a regular file";
    case S_IFDIR: return "a directory";
    case S_IFIFO: return "a FIFO";
    case S_IFSOCK: return "a socket";
    case S_IFCHR: return "a character device";
    case S_IFBLK: return "a block device";
    default: return "not a regular file";
    }
}
