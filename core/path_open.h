/*
 * Opening a path a client named, without ever waiting. A blocking open(2) of a
 * FIFO waits for the other end (and a device's open may wait for a carrier):
 * on the VMM thread that hangs the API. So every such open is O_NONBLOCK, the
 * caller checks the file's type from the fstat, and O_NONBLOCK is cleared
 * again so later reads and writes behave as with a plain open.
 */
#ifndef EMBER_PATH_OPEN_H
#define EMBER_PATH_OPEN_H

#include <sys/stat.h>

/*
 * open(path, flags | O_NONBLOCK | O_NOCTTY, 0600), fstat into *st, O_NONBLOCK cleared: the fd, or -errno.
 * A FIFO opened write-only with no reader fails at once (-ENXIO) instead of waiting.
 */
int path_open_noblock(const char *path, int flags, struct stat *st);
/* What a file is, for messages: "a regular file", "a FIFO", "a directory", ... */
const char *path_kind(mode_t mode);

#endif
