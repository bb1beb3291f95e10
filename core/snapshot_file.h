/*
 * The snapshot state file: a header, the state sections (core/state.h) and a
 * trailing CRC-32. It knows nothing of KVM: the sections are the caller's
 * (by convention "vm", then one "vcpu" per vCPU, then one "device" wrapper
 * per device, see snapshot_device_begin). Every integer is little-endian.
 *
 *   offset  size  field
 *   0       8     magic "EMBERSNP"
 *   8       4     format version (SNAPSHOT_FORMAT_VERSION)
 *   12      4     architecture (SNAPSHOT_ARCH_X86_64)
 *   16      1     length n of the Ember version string (at most 63)
 *   17      n     Ember version string (not NUL-terminated)
 *   17+n    8     guest memory size in bytes
 *   25+n    4     vCPU count
 *   29+n    4     flags (none defined: must be 0)
 *   33+n    8     length m of the sections
 *   41+n    m     sections
 *   41+n+m  4     CRC-32 (zlib) of every byte before it
 */
#ifndef EMBER_SNAPSHOT_FILE_H
#define EMBER_SNAPSHOT_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "core/errmsg.h"
#include "core/state.h"

#define SNAPSHOT_MAGIC "EMBERSNP"
#define SNAPSHOT_FORMAT_VERSION 1u
#define SNAPSHOT_ARCH_X86_64 1u
#define SNAPSHOT_VERSION_STRING_MAX 63
/* The state of 32 vCPUs with AMX-sized XSAVE areas and every device is far below this. */
#define SNAPSHOT_FILE_MAX (64u << 20)

struct snapshot_header {
    uint32_t format_version;
    uint32_t arch;
    char ember_version[SNAPSHOT_VERSION_STRING_MAX + 1];
    uint64_t mem_size;
    uint32_t nr_vcpus;
    uint32_t flags;
};

/* A header for this Ember on this architecture (format version, arch, version string filled in). */
void snapshot_header_init(struct snapshot_header *h, uint64_t mem_size, uint32_t nr_vcpus);

/* The whole file image of `h` and `sections` into `out` (initialized by the caller); 0 or -ENOMEM/-EINVAL. */
int snapshot_encode(const struct snapshot_header *h, const void *sections, size_t len, struct state_writer *out);
/*
 * Checks a file image (magic, version, checksum, architecture, every length)
 * before using any of it: 0 with *h filled and *sections reading the sections
 * (pointing into buf), or -EINVAL with a message naming `path`.
 */
int snapshot_decode(const void *buf, size_t len, const char *path, struct snapshot_header *h,
                    struct state_reader *sections, struct errmsg *err);

/*
 * Writes the file through a temporary file in the same directory, fsync and
 * rename, so `path` holds either the complete snapshot or what it held before.
 */
int snapshot_file_write(const char *path, const struct snapshot_header *h, const void *sections, size_t len,
                        struct errmsg *err);
/*
 * Reads and checks `path` (a regular file of at most SNAPSHOT_FILE_MAX bytes):
 * 0 with *image holding the file (the caller frees it) and *sections reading
 * into it; nothing to free on error.
 */
int snapshot_file_read(const char *path, struct snapshot_header *h, uint8_t **image, struct state_reader *sections,
                       struct errmsg *err);

/*
 * A device's state inside the sections: a "device" section carrying the
 * device's type and id (each up to 255 bytes) around the device's own section.
 */
size_t snapshot_device_begin(struct state_writer *w, const char *type, const char *id);
/* Opens the next "device" section: *type and *id (NUL-terminated, 256 bytes each) and a reader over the rest. */
int snapshot_device_open(struct state_reader *r, char type[256], char id[256], struct state_reader *body,
                         struct errmsg *err);

#endif
