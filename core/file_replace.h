/*
 * Writing a file so that a reader sees the old one or the whole new one,
 * never a part: the content goes to a temporary file beside the target,
 * which is synced, then renamed over it, and the directory synced. A
 * failure at any step leaves no temporary file and the target untouched.
 * Snapshot state and memory files are written this way.
 */
#ifndef EMBER_FILE_REPLACE_H
#define EMBER_FILE_REPLACE_H

#include <stddef.h>
#include <stdint.h>

/* Writes the content into fd; 0 or -errno, and on failure *step names what it was doing ("write"). */
typedef int file_fill_fn(int fd, void *ctx, const char **step);

/*
 * Replaces path with what fill writes. 0, or -errno with *step set to the
 * step that failed, phrased to follow "cannot " and precede " it" ("create
 * a temporary file beside", "write", "sync", "rename the temporary file to").
 */
int file_replace(const char *path, file_fill_fn *fill, void *ctx, const char **step);

/* Writes all n bytes of p to fd; 0 or -errno (-EIO if the file takes nothing). */
int file_write_all(int fd, const uint8_t *p, size_t n);

#endif
