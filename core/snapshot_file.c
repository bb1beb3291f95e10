#include "core/snapshot_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "core/file_replace.h"
#include "core/le.h"
#include "core/version.h"

#define MAGIC_LEN 8
/* Magic, version, arch, string length; then (after the string) memory size, vCPUs, flags, sections length. */
#define FIXED_HEAD (MAGIC_LEN + 4 + 4 + 1)
#define FIXED_TAIL (8 + 4 + 4 + 8)
#define CRC_LEN 4

void snapshot_header_init(struct snapshot_header *h, uint64_t mem_size, uint32_t nr_vcpus)
{
    memset(h, 0, sizeof(*h));
    h->format_version = SNAPSHOT_FORMAT_VERSION;
    h->arch = SNAPSHOT_ARCH_X86_64;
    snprintf(h->ember_version, sizeof(h->ember_version), "%s", EMBER_VERSION_STRING);
    h->mem_size = mem_size;
    h->nr_vcpus = nr_vcpus;
}

/* zlib's crc32 takes a uInt length: feed it in pieces. */
static uint32_t crc_of(const uint8_t *p, size_t n)
{
    uLong crc = crc32(0L, Z_NULL, 0);
    while (n) {
        uInt chunk = n > (1u << 30) ? (1u << 30) : (uInt)n;
        crc = crc32(crc, p, chunk);
        p += chunk, n -= chunk;
    }
    return (uint32_t)crc;
}

int snapshot_encode(const struct snapshot_header *h, const void *sections, size_t len, struct state_writer *out)
{
    size_t vlen = strnlen(h->ember_version, sizeof(h->ember_version));
    if (vlen > SNAPSHOT_VERSION_STRING_MAX)
        return -EINVAL;
    state_put_bytes(out, SNAPSHOT_MAGIC, MAGIC_LEN);
    state_put_u32(out, h->format_version);
    state_put_u32(out, h->arch);
    state_put_u8(out, (uint8_t)vlen);
    state_put_bytes(out, h->ember_version, vlen);
    state_put_u64(out, h->mem_size);
    state_put_u32(out, h->nr_vcpus);
    state_put_u32(out, h->flags);
    state_put_u64(out, len);
    state_put_bytes(out, sections, len);
    if (out->err)
        return out->err;
    state_put_u32(out, crc_of(out->buf, out->len));
    return out->err;
}

int snapshot_decode(const void *buf, size_t len, const char *path, struct snapshot_header *h,
                    struct state_reader *sections, struct errmsg *err)
{
    const uint8_t *b = buf;
    state_reader_init(sections, NULL, 0);
    memset(h, 0, sizeof(*h));
    if (len == 0)
        return err_set(err, -EINVAL, "snapshot file '%s' is empty", path);
    if (len < MAGIC_LEN || memcmp(b, SNAPSHOT_MAGIC, MAGIC_LEN) != 0)
        return err_set(err, -EINVAL, "snapshot file '%s' is not an Ember snapshot (no '%s' magic at its start)", path,
                       SNAPSHOT_MAGIC);
    if (len < FIXED_HEAD + FIXED_TAIL + CRC_LEN)
        return err_set(err, -EINVAL, "snapshot file '%s' is truncated (%zu bytes, shorter than a header)", path, len);
    /* The version first: a later format may lay out (and check) the rest differently. */
    uint32_t version = le_ld32(b + MAGIC_LEN);
    if (version != SNAPSHOT_FORMAT_VERSION)
        return err_set(err, -EINVAL,
                       "snapshot file '%s' was made by format version %u, this Ember (%s) reads version %u: "
                       "load it with the Ember that made it",
                       path, version, EMBER_VERSION_STRING, SNAPSHOT_FORMAT_VERSION);
    /* Then the checksum, so that no length below comes from a damaged file. */
    uint32_t want = le_ld32(b + len - CRC_LEN), got = crc_of(b, len - CRC_LEN);
    if (want != got)
        return err_set(err, -EINVAL, "snapshot file '%s': checksum mismatch: the file is corrupt or truncated", path);

    struct state_reader r;
    state_reader_init(&r, b, len - CRC_LEN);
    uint8_t magic[MAGIC_LEN];
    state_get_bytes(&r, magic, MAGIC_LEN);
    h->format_version = state_get_u32(&r);
    h->arch = state_get_u32(&r);
    size_t vlen = state_get_u8(&r);
    if (vlen > SNAPSHOT_VERSION_STRING_MAX)
        return err_set(err, -EINVAL, "snapshot file '%s': a %zu-byte version string (at most %d): the file is corrupt",
                       path, vlen, SNAPSHOT_VERSION_STRING_MAX);
    state_get_bytes(&r, h->ember_version, vlen);
    h->ember_version[vlen] = '\0';
    h->mem_size = state_get_u64(&r);
    h->nr_vcpus = state_get_u32(&r);
    h->flags = state_get_u32(&r);
    uint64_t body = state_get_u64(&r);
    if (r.err)
        return err_set(err, -EINVAL, "snapshot file '%s' is truncated (its header is incomplete)", path);
    if (h->arch != SNAPSHOT_ARCH_X86_64)
        return err_set(err, -EINVAL,
                       "snapshot file '%s' holds a machine of architecture %u; this Ember runs x86_64 (%u)", path,
                       h->arch, SNAPSHOT_ARCH_X86_64);
    if (h->flags != 0)
        return err_set(err, -EINVAL, "snapshot file '%s' uses flags %#x this Ember does not know", path, h->flags);
    if (body != r.len - r.pos)
        return err_set(err, -EINVAL,
                       "snapshot file '%s' announces %llu bytes of state but holds %zu: the file is corrupt or "
                       "truncated",
                       path, (unsigned long long)body, r.len - r.pos);
    if (h->nr_vcpus == 0 || h->mem_size == 0)
        return err_set(err, -EINVAL, "snapshot file '%s' describes a machine with %u vCPUs and %llu bytes of memory",
                       path, h->nr_vcpus, (unsigned long long)h->mem_size);
    state_reader_init(sections, b + r.pos, (size_t)body);
    return 0;
}

/* file_replace's filler: the encoded image. */
static int fill_image(int fd, void *ctx, const char **step)
{
    (void)step;
    const struct state_writer *w = ctx;
    return file_write_all(fd, w->buf, w->len);
}

int snapshot_file_write(const char *path, const struct snapshot_header *h, const void *sections, size_t len,
                        struct errmsg *err)
{
    struct state_writer w;
    state_writer_init(&w);
    int rc = snapshot_encode(h, sections, len, &w);
    if (rc) {
        state_writer_free(&w);
        return err_set(err, rc, "snapshot file '%s': cannot encode the state: %s", path, strerror(-rc));
    }
    const char *step;
    rc = file_replace(path, fill_image, &w, &step);
    state_writer_free(&w);
    if (rc)
        return err_set(err, rc, "snapshot file '%s': cannot %s it: %s", path, step, strerror(-rc));
    return 0;
}

int snapshot_file_read(const char *path, struct snapshot_header *h, uint8_t **image, struct state_reader *sections,
                       struct errmsg *err)
{
    *image = NULL;
    state_reader_init(sections, NULL, 0);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int rc = -errno;
        return err_set(err, rc, "snapshot file '%s': cannot open it: %s", path, strerror(-rc));
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int rc = -errno;
        close(fd);
        return err_set(err, rc, "snapshot file '%s': cannot stat it: %s", path, strerror(-rc));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return err_set(err, -EINVAL, "snapshot file '%s' is not a regular file%s", path,
                       S_ISDIR(st.st_mode) ? " (it is a directory)" : "");
    }
    if (st.st_size > (off_t)SNAPSHOT_FILE_MAX) {
        close(fd);
        return err_set(err, -EINVAL,
                       "snapshot file '%s' is %lld bytes, more than any Ember snapshot (%u): not a state file", path,
                       (long long)st.st_size, SNAPSHOT_FILE_MAX);
    }
    size_t size = (size_t)st.st_size;
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) {
        close(fd);
        return err_set(err, -ENOMEM, "out of memory");
    }
    size_t got = 0;
    int rc = 0;
    while (got < size) {
        ssize_t k = read(fd, buf + got, size - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            rc = -errno;
            break;
        }
        if (k == 0)
            break; /* shrank under us: the checks below see a short file */
        got += (size_t)k;
    }
    close(fd);
    if (rc) {
        free(buf);
        return err_set(err, rc, "snapshot file '%s': cannot read it: %s", path, strerror(-rc));
    }
    rc = snapshot_decode(buf, got, path, h, sections, err);
    if (rc) {
        free(buf);
        return rc;
    }
    *image = buf;
    return 0;
}

size_t snapshot_device_begin(struct state_writer *w, const char *type, const char *id)
{
    size_t mark = state_begin(w, "device", 1);
    size_t tn = strnlen(type, 255), in = strnlen(id, 255);
    state_put_u8(w, (uint8_t)tn);
    state_put_bytes(w, type, tn);
    state_put_u8(w, (uint8_t)in);
    state_put_bytes(w, id, in);
    return mark;
}

int snapshot_device_open(struct state_reader *r, char type[256], char id[256], struct state_reader *body,
                         struct errmsg *err)
{
    uint32_t version;
    type[0] = id[0] = '\0';
    int rc = state_open(r, "device", 1, &version, body, err);
    if (rc)
        return rc;
    size_t tn = state_get_u8(body);
    state_get_bytes(body, type, tn);
    type[tn] = '\0';
    size_t in = state_get_u8(body);
    state_get_bytes(body, id, in);
    id[in] = '\0';
    if (body->err)
        return err_set(err, -EINVAL, "device state: the image is truncated (no complete type and id)");
    return 0;
}
