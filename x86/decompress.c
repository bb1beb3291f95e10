/* Host-side decompression of bzImage payloads (see decompress.h). */
#include "x86/decompress.h"
#include "core/le.h"

#include <errno.h>
#include <lz4.h>
#include <lzma.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#define LZ4_LEGACY_MAGIC 0x184c2102u
#define LZ4_LEGACY_BLOCK (8u << 20) /* uncompressed bytes per legacy block */

enum payload_format payload_detect(const uint8_t *p, size_t n)
{
    static const struct {
        enum payload_format f;
        unsigned len;
        uint8_t magic[6];
    } magics[] = {
        {PAYLOAD_GZIP, 2, {0x1f, 0x8b}},
        {PAYLOAD_XZ, 6, {0xfd, '7', 'z', 'X', 'Z', 0x00}},
        {PAYLOAD_ZSTD, 4, {0x28, 0xb5, 0x2f, 0xfd}},
        {PAYLOAD_LZ4_LEGACY, 4, {0x02, 0x21, 0x4c, 0x18}},
        {PAYLOAD_BZIP2, 3, {'B', 'Z', 'h'}},
        {PAYLOAD_LZMA, 3, {0x5d, 0x00, 0x00}},
        {PAYLOAD_LZO, 4, {0x89, 'L', 'Z', 'O'}},
    };
    for (size_t i = 0; i < sizeof(magics) / sizeof(magics[0]); i++)
        if (n >= magics[i].len && memcmp(p, magics[i].magic, magics[i].len) == 0)
            return magics[i].f;
    return PAYLOAD_UNKNOWN;
}

const char *payload_format_name(enum payload_format f)
{
    static const char *const names[] = {
        [PAYLOAD_UNKNOWN] = "unknown", [PAYLOAD_GZIP] = "gzip",   [PAYLOAD_XZ] = "xz",     [PAYLOAD_ZSTD] = "zstd",
        [PAYLOAD_LZ4_LEGACY] = "lz4",  [PAYLOAD_BZIP2] = "bzip2", [PAYLOAD_LZMA] = "lzma", [PAYLOAD_LZO] = "lzo",
    };
    return (unsigned)f < sizeof(names) / sizeof(names[0]) ? names[f] : "unknown";
}

/* Legacy LZ4 frame (lz4 -l): the magic, then [u32 compressed size][block]... */
static int unlz4_legacy(const uint8_t *p, size_t n, uint8_t *out, size_t cap, size_t *got, struct errmsg *err)
{
    size_t off = 4, pos = 0;
    const size_t bound = (size_t)LZ4_compressBound((int)LZ4_LEGACY_BLOCK);
    while (off < n) {
        if (n - off < 4)
            return err_set(err, -EINVAL, "lz4: %zu stray bytes at the end", n - off);
        uint32_t csize = le_ld32(p + off);
        off += 4;
        if (csize == LZ4_LEGACY_MAGIC)
            continue; /* concatenated frames */
        if (csize == 0 || csize > n - off || csize > bound)
            return err_set(err, -EINVAL, "lz4: block at offset %zu claims %u bytes", off - 4, csize);
        size_t room = cap - pos < LZ4_LEGACY_BLOCK ? cap - pos : LZ4_LEGACY_BLOCK;
        int r = LZ4_decompress_safe((const char *)p + off, (char *)out + pos, (int)csize, (int)room);
        if (r < 0)
            return err_set(err, -EINVAL, "lz4: corrupt block at offset %zu", off - 4);
        pos += (size_t)r;
        off += csize;
    }
    *got = pos;
    return 0;
}

static int ungzip(const uint8_t *p, size_t n, uint8_t *out, size_t cap, size_t *got, struct errmsg *err)
{
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK)
        return err_set(err, -ENOMEM, "gzip: cannot start zlib");
    int rc = 0;
    size_t in_off = 0, out_off = 0;
    int zr = Z_OK;
    /* zlib counts in uInt: feed it at most 1 GiB at a time. */
    while (zr == Z_OK) {
        if (zs.avail_in == 0 && in_off < n) {
            size_t chunk = n - in_off < (1u << 30) ? n - in_off : (1u << 30);
            zs.next_in = (Bytef *)(uintptr_t)(p + in_off);
            zs.avail_in = (uInt)chunk;
            in_off += chunk;
        }
        if (zs.avail_out == 0) {
            size_t chunk = cap - out_off < (1u << 30) ? cap - out_off : (1u << 30);
            if (chunk == 0)
                break; /* full: Z_STREAM_END must already have come */
            zs.next_out = out + out_off;
            zs.avail_out = (uInt)chunk;
            out_off += chunk;
        }
        zr = inflate(&zs, Z_NO_FLUSH);
    }
    if (zr != Z_STREAM_END)
        rc = err_set(err, -EINVAL, "gzip: corrupt or truncated data (%s)", zs.msg ? zs.msg : "no end of stream");
    *got = (size_t)zs.total_out;
    inflateEnd(&zs);
    return rc;
}

static int unxz(const uint8_t *p, size_t n, uint8_t *out, size_t cap, size_t *got, struct errmsg *err)
{
    uint64_t memlimit = 256u << 20; /* the kernel's xz uses a 32 MiB dictionary at most */
    size_t in_pos = 0, out_pos = 0;
    lzma_ret r = lzma_stream_buffer_decode(&memlimit, 0, NULL, p, &in_pos, n, out, &out_pos, cap);
    if (r != LZMA_OK)
        return err_set(err, -EINVAL, "xz: corrupt or truncated data (liblzma error %d)", (int)r);
    *got = out_pos;
    return 0;
}

static int unzstd(const uint8_t *p, size_t n, uint8_t *out, size_t cap, size_t *got, struct errmsg *err)
{
    size_t r = ZSTD_decompress(out, cap, p, n);
    if (ZSTD_isError(r))
        return err_set(err, -EINVAL, "zstd: %s", ZSTD_getErrorName(r));
    *got = r;
    return 0;
}

int payload_decompress(const uint8_t *p, size_t n, size_t max_out, uint8_t **out, size_t *out_len, struct errmsg *err)
{
    *out = NULL;
    *out_len = 0;
    enum payload_format f = payload_detect(p, n);
    if (f == PAYLOAD_UNKNOWN || f == PAYLOAD_BZIP2 || f == PAYLOAD_LZMA || f == PAYLOAD_LZO)
        return err_set(err, -ENOTSUP, "payload compressed with %s: not decompressed by Ember", payload_format_name(f));
    if (n < 8)
        return err_set(err, -EINVAL, "payload of %zu bytes is too short", n);
    /* The kernel build appends the uncompressed size (gzip's own trailer says the same). */
    size_t want = le_ld32(p + n - 4);
    if (want == 0)
        return err_set(err, -EINVAL, "payload states an uncompressed size of 0");
    if (want > max_out)
        return err_set(err, -EFBIG, "payload decompresses to %zu bytes, more than the %zu allowed", want, max_out);
    /* One spare byte: output beyond the stated size shows up as a mismatch instead of being cut off. */
    uint8_t *buf = malloc(want + 1);
    if (!buf)
        return err_set(err, -ENOMEM, "out of memory for a %zu-byte kernel", want);
    size_t got = 0;
    int rc;
    switch (f) {
    case PAYLOAD_GZIP: rc = ungzip(p, n, buf, want + 1, &got, err); break;
    case PAYLOAD_XZ: rc = unxz(p, n - 4, buf, want + 1, &got, err); break;
    case PAYLOAD_ZSTD: rc = unzstd(p, n - 4, buf, want + 1, &got, err); break;
    default: rc = unlz4_legacy(p, n - 4, buf, want + 1, &got, err); break;
    }
    if (!rc && got != want)
        rc = err_set(err, -EINVAL, "%s payload gave %zu bytes, its trailer says %zu", payload_format_name(f), got,
                     want);
    if (rc) {
        free(buf);
        return rc;
    }
    *out = buf;
    *out_len = got;
    return 0;
}
