/*
 * Host-side decompression of a bzImage's payload (the compressed vmlinux ELF
 * plus its relocations), with Debian's compression libraries.
 *
 * Why: a bzImage normally decompresses itself inside the guest. On a host
 * whose KVM emulates guest kernel code (kvm-pvm, ~2 M instructions/s) that
 * alone takes minutes for a distribution kernel; on the host it takes tens
 * of milliseconds. The kernel build appends the uncompressed size as the
 * payload's last four bytes (little endian) for every compressor, so the
 * output buffer is sized exactly and a mismatch is an error.
 */
#ifndef EMBER_DECOMPRESS_H
#define EMBER_DECOMPRESS_H

#include <stddef.h>
#include <stdint.h>

#include "core/errmsg.h"

enum payload_format {
    PAYLOAD_UNKNOWN,
    PAYLOAD_GZIP,
    PAYLOAD_XZ,
    PAYLOAD_ZSTD,
    PAYLOAD_LZ4_LEGACY,
    PAYLOAD_BZIP2, /* recognised, not decompressed here */
    PAYLOAD_LZMA,  /* recognised, not decompressed here */
    PAYLOAD_LZO,   /* recognised, not decompressed here */
};

enum payload_format payload_detect(const uint8_t *p, size_t n);
const char *payload_format_name(enum payload_format f);

/*
 * Decompresses payload [p, p+n) into a malloc'd buffer (*out, *out_len; the
 * caller frees it). max_out bounds the uncompressed size. Returns 0,
 * -ENOTSUP for a format Ember does not decompress (the guest can), -EFBIG when
 * the stated size exceeds max_out, -EINVAL for corrupt data or a size that
 * does not match the stated one, -ENOMEM.
 */
int payload_decompress(const uint8_t *p, size_t n, size_t max_out, uint8_t **out, size_t *out_len, struct errmsg *err);

#endif
