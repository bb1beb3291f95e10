/*
 * Host-side decompression of a bzImage payload (x86/decompress.c): gzip, xz,
 * zstd and legacy lz4 through Debian's libraries, on hostile data. The input
 * is the payload itself (the kernel build's 4-byte size trailer included).
 *
 * Invariants: success gives exactly the stated size (the trailer), within the
 * limit, from a format Ember decompresses; failure leaves no buffer and says why.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "x86/decompress.h"

/*
 * Larger stated sizes must be refused up front. The limit is only compared with, so a small one runs the same
 * code as a guest's few MiB; it keeps the output buffer under ASan's mmap threshold (128 KiB): a 4 MiB limit
 * let mutated trailers make every run map, clear and unmap megabytes.
 */
#define MAX_OUT (64u << 10)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *out = (uint8_t *)&out; /* must be reset whatever happens */
    size_t out_len = 1;
    struct errmsg err = {{0}};
    int rc = payload_decompress(data, size, MAX_OUT, &out, &out_len, &err);
    enum payload_format f = payload_detect(data, size);
    if (rc == 0) {
        size_t stated = size >= 4 ? (size_t)data[size - 4] | (size_t)data[size - 3] << 8 |
                                        (size_t)data[size - 2] << 16 | (size_t)data[size - 1] << 24
                                  : 0;
        if (!out || out_len != stated || out_len > MAX_OUT)
            abort();
        if (f != PAYLOAD_GZIP && f != PAYLOAD_XZ && f != PAYLOAD_ZSTD && f != PAYLOAD_LZ4_LEGACY)
            abort();
        free(out);
    } else {
        if (out || out_len || !err.text[0])
            abort();
        if (rc == -ENOTSUP && (f == PAYLOAD_GZIP || f == PAYLOAD_XZ || f == PAYLOAD_ZSTD || f == PAYLOAD_LZ4_LEGACY))
            abort();
    }
    return 0;
}
