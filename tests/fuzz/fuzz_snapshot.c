/*
 * The snapshot state file reader (core/snapshot_file.c, core/state.c). The input
 * is a state file without its trailing CRC-32, which the harness appends (else
 * nearly every mutation would stop at the checksum); then the sections are
 * walked as a restore does: "vm", then "vcpu" and "device" sections with
 * nested sections and fields of every width.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/snapshot_file.h"
#include "core/state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reads fields as the input's own bytes say (a restore's reads depend on what it read before). */
static void walk(struct state_reader *r, int depth)
{
    struct errmsg err;
    static const char *const names[] = {"vm", "vcpu", "device", "virtio", "queue", "blk", "net", "serial"};
    for (int i = 0; i < 64 && !r->err && r->pos < r->len; i++) {
        uint8_t op = state_get_u8(r);
        switch (op % 8) {
        case 0: (void)state_get_u16(r); break;
        case 1: (void)state_get_u32(r); break;
        case 2: (void)state_get_u64(r); break;
        case 3: {
            uint8_t buf[64];
            state_get_bytes(r, buf, state_get_u8(r) % sizeof(buf));
            break;
        }
        default: {
            if (depth >= 4)
                break;
            struct state_reader body;
            uint32_t version;
            if (state_open(r, names[op % 8], 1 + (op >> 4), &version, &body, &err) == 0) {
                walk(&body, depth + 1);
                (void)state_close(&body, names[op % 8], &err);
            }
        }
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (1u << 20))
        return 0;
    uint8_t *file = malloc(size + 4);
    if (!file)
        return 0;
    memcpy(file, data, size);
    uLong crc = crc32(crc32(0L, Z_NULL, 0), data, (uInt)size);
    for (int i = 0; i < 4; i++)
        file[size + (size_t)i] = (uint8_t)(crc >> (8 * i));
    struct snapshot_header h;
    struct state_reader sections;
    struct errmsg err;
    if (snapshot_decode(file, size + 4, "fuzz.snap", &h, &sections, &err) == 0) {
        struct state_reader body;
        uint32_t version;
        if (state_open(&sections, "vm", 1, &version, &body, &err) == 0) {
            walk(&body, 1);
            (void)state_close(&body, "vm", &err);
        }
        walk(&sections, 0);
    }
    free(file);
    return 0;
}
