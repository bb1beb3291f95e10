/*
 * Host-side bzImage payload decompression (x86/decompress.c) and the loader
 * path that uses it: payloads made here with the same libraries' compressors,
 * in the layout the kernel build writes (compressed stream + 4-byte size).
 */
#include <criterion/criterion.h>
#include <elf.h>
#include <errno.h>
#include <lz4.h>
#include <lzma.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "tests/unit/boot_fixture.h"
#include "x86/decompress.h"
#include "x86/loader.h"

static struct errmsg err;

static void w32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16), p[3] = (uint8_t)(v >> 24);
}

/* Compressible but not trivial data. */
static uint8_t *sample(size_t n)
{
    uint8_t *d = malloc(n);
    cr_assert_not_null(d);
    uint32_t x = 12345;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245 + 12345;
        d[i] = (i % 64 < 40) ? (uint8_t)(i / 64) : (uint8_t)(x >> 24);
    }
    return d;
}

/* lz4 -l: magic, then [u32 csize][block] per 8 MiB of input; then the kernel's size trailer. */
static uint8_t *make_lz4(const uint8_t *in, size_t n, size_t *out_n)
{
    const size_t blk = 8u << 20;
    size_t cap = 8 + (n / blk + 1) * (4 + (size_t)LZ4_compressBound((int)blk));
    uint8_t *o = malloc(cap);
    cr_assert_not_null(o);
    w32(o, 0x184c2102);
    size_t off = 4;
    for (size_t i = 0; i < n; i += blk) {
        size_t len = n - i < blk ? n - i : blk;
        int c = LZ4_compress_default((const char *)in + i, (char *)o + off + 4, (int)len, (int)(cap - off - 4));
        cr_assert_gt(c, 0);
        w32(o + off, (uint32_t)c);
        off += 4 + (size_t)c;
    }
    w32(o + off, (uint32_t)n);
    *out_n = off + 4;
    return o;
}

static uint8_t *make_gzip(const uint8_t *in, size_t n, size_t *out_n)
{
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    cr_assert_eq(deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&zs, (uLong)n) + 16;
    uint8_t *o = malloc(cap);
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)n;
    zs.next_out = o;
    zs.avail_out = (uInt)cap;
    cr_assert_eq(deflate(&zs, Z_FINISH), Z_STREAM_END);
    *out_n = zs.total_out; /* gzip's own trailer ends in the size */
    deflateEnd(&zs);
    return o;
}

static uint8_t *make_xz(const uint8_t *in, size_t n, size_t *out_n)
{
    size_t cap = lzma_stream_buffer_bound(n) + 4, pos = 0;
    uint8_t *o = malloc(cap);
    cr_assert_eq(lzma_easy_buffer_encode(6, LZMA_CHECK_CRC32, NULL, in, n, o, &pos, cap - 4), LZMA_OK);
    w32(o + pos, (uint32_t)n);
    *out_n = pos + 4;
    return o;
}

static uint8_t *make_zstd(const uint8_t *in, size_t n, size_t *out_n)
{
    size_t cap = ZSTD_compressBound(n) + 4;
    uint8_t *o = malloc(cap);
    size_t c = ZSTD_compress(o, cap - 4, in, n, 3);
    cr_assert(!ZSTD_isError(c));
    w32(o + c, (uint32_t)n);
    *out_n = c + 4;
    return o;
}

typedef uint8_t *(*maker)(const uint8_t *, size_t, size_t *);

static void round_trip(maker mk, enum payload_format f, size_t n)
{
    uint8_t *in = sample(n);
    size_t pn;
    uint8_t *p = mk(in, n, &pn);
    cr_assert_eq(payload_detect(p, pn), f);
    uint8_t *out = NULL;
    size_t out_n = 0;
    cr_assert_eq(payload_decompress(p, pn, 64u << 20, &out, &out_n, &err), 0, "%s: %s", payload_format_name(f),
                 err.text);
    cr_assert_eq(out_n, n);
    cr_assert_eq(memcmp(out, in, n), 0);
    free(out);

    /* A trailer that lies about the size: refused, not truncated or overrun. */
    w32(p + pn - 4, (uint32_t)(n - 1));
    cr_assert_eq(payload_decompress(p, pn, 64u << 20, &out, &out_n, &err), -EINVAL, "%s: short trailer",
                 payload_format_name(f));
    cr_assert_null(out);
    w32(p + pn - 4, (uint32_t)(n + 100));
    cr_assert_eq(payload_decompress(p, pn, 64u << 20, &out, &out_n, &err), -EINVAL, "%s: long trailer",
                 payload_format_name(f));
    /* Above the caller's bound: refused before allocating. */
    w32(p + pn - 4, (uint32_t)n);
    cr_assert_eq(payload_decompress(p, pn, n - 1, &out, &out_n, &err), -EFBIG);
    /* Truncated stream (trailer kept). */
    size_t cut = pn / 2;
    memcpy(p + cut - 4, p + pn - 4, 4);
    cr_assert_eq(payload_decompress(p, cut, 64u << 20, &out, &out_n, &err), -EINVAL, "%s: truncated",
                 payload_format_name(f));
    cr_assert_null(out);
    free(p);
    free(in);
}

Test(decompress, lz4_legacy_round_trip_and_damage) { round_trip(make_lz4, PAYLOAD_LZ4_LEGACY, 300000); }
Test(decompress, lz4_legacy_several_blocks) { round_trip(make_lz4, PAYLOAD_LZ4_LEGACY, (8u << 20) * 2 + 4097); }
Test(decompress, gzip_round_trip_and_damage) { round_trip(make_gzip, PAYLOAD_GZIP, 300000); }
Test(decompress, xz_round_trip_and_damage) { round_trip(make_xz, PAYLOAD_XZ, 300000); }
Test(decompress, zstd_round_trip_and_damage) { round_trip(make_zstd, PAYLOAD_ZSTD, 300000); }

Test(decompress, formats_ember_leaves_to_the_guest)
{
    uint8_t bz[16] = {'B', 'Z', 'h', '9'}, lzma[16] = {0x5d, 0, 0}, lzo[16] = {0x89, 'L', 'Z', 'O'}, junk[16] = {7, 7};
    uint8_t *out = (uint8_t *)1;
    size_t n;
    cr_assert_eq(payload_decompress(bz, sizeof(bz), 1 << 20, &out, &n, &err), -ENOTSUP);
    cr_assert_null(out);
    cr_assert_eq(payload_decompress(lzma, sizeof(lzma), 1 << 20, &out, &n, &err), -ENOTSUP);
    cr_assert_eq(payload_decompress(lzo, sizeof(lzo), 1 << 20, &out, &n, &err), -ENOTSUP);
    cr_assert_eq(payload_decompress(junk, sizeof(junk), 1 << 20, &out, &n, &err), -ENOTSUP);
    cr_assert_str_eq(payload_format_name(payload_detect(bz, sizeof(bz))), "bzip2");
}

Test(decompress, hostile_lz4_block_sizes)
{
    uint8_t p[64] = {0};
    w32(p, 0x184c2102);
    w32(p + 4, 0xffffff00); /* a block far larger than the input */
    w32(p + 60, 1000);
    uint8_t *out = NULL;
    size_t n;
    cr_assert_eq(payload_decompress(p, sizeof(p), 1 << 20, &out, &n, &err), -EINVAL);
    w32(p + 4, 0); /* a zero-length block */
    cr_assert_eq(payload_decompress(p, sizeof(p), 1 << 20, &out, &n, &err), -EINVAL);
    w32(p + 60, 0); /* stated size 0 */
    cr_assert_eq(payload_decompress(p, sizeof(p), 1 << 20, &out, &n, &err), -EINVAL);
    cr_assert_null(out);
}

/* ---- the loader path: a bzImage whose payload is an lz4-compressed ELF vmlinux */

#define RAM (8ULL << 20)
#define SETUP_SECTS 2
#define KERNEL_OFF ((SETUP_SECTS + 1) * 512)

static void w16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8); }

static uint8_t *bz_with_payload(const uint8_t *payload, size_t pn, size_t *n)
{
    *n = KERNEL_OFF + 0x100 + pn;
    uint8_t *f = calloc(1, *n);
    f[0x1f1] = SETUP_SECTS;
    w16(f + 0x1fe, 0xaa55);
    f[0x200] = 0xeb;
    f[0x201] = 0x6a;
    memcpy(f + 0x202, "HdrS", 4);
    w16(f + 0x206, 0x020f);
    f[0x211] = 0x01;
    w32(f + 0x22c, 0x7fffffff);
    f[0x234] = 1;
    w16(f + 0x236, 0x0001);
    w32(f + 0x238, 2047);
    w32(f + 0x248, 0x100);        /* payload_offset, from the protected-mode code */
    w32(f + 0x24c, (uint32_t)pn); /* payload_length */
    w32(f + 0x260, 0x3000);
    memcpy(f + KERNEL_OFF + 0x100, payload, pn);
    return f;
}

Test(decompress, bzimage_loaded_as_its_vmlinux)
{
    uint8_t *backing = malloc(RAM);
    memset(backing, 0xcc, RAM);
    struct guest_mem gm;
    cr_assert_eq(guest_mem_init_with(&gm, RAM, backing), 0);
    size_t en, pn, bn;
    /* 5000 bytes of 0x42 at 2 MiB and an 8 KiB .bss tail */
    uint8_t *elf = bfx_elf_one_load(5000, 5000 + 8192, &en);
    uint8_t *payload = make_lz4(elf, en, &pn);
    uint8_t *bz = bz_with_payload(payload, pn, &bn);
    struct kernel_image k;
    cr_assert_eq(load_kernel(&gm, bz, bn, 1, 1, &k, &err), 0, "%s", err.text);
    cr_assert_eq(k.host_decompressed, 1);
    cr_assert_eq(k.is_bzimage, 1, "the zero page still gets the bzImage's header");
    cr_assert_str_eq(k.payload_format, "lz4");
    cr_assert_eq(k.proto, BOOT_LINUX64);
    cr_assert_eq(k.entry, 0x200000);
    cr_assert_eq(k.cmdline_max, 2048);
    cr_assert_eq(backing[0x200000], 0x42);
    cr_assert_eq(backing[0x200000 + 4999], 0x42);
    cr_assert_eq(backing[0x200000 + 5000], 0, ".bss zeroed");
    cr_assert_eq(backing[0x200000 + 5000 + 8191], 0);

    /* With host decompression off the same file goes to the guest's decompressor. */
    memset(backing, 0xcc, RAM);
    cr_assert_eq(load_kernel(&gm, bz, bn, 1, 0, &k, &err), 0, "%s", err.text);
    cr_assert_eq(k.host_decompressed, 0);
    cr_assert_eq(k.entry, 0x100000 + 0x200);

    /* A payload in a format Ember leaves alone falls back the same way. */
    uint8_t bzip2[64] = {'B', 'Z', 'h', '9'};
    uint8_t *bz2 = bz_with_payload(bzip2, sizeof(bzip2), &bn);
    cr_assert_eq(load_kernel(&gm, bz2, bn, 1, 1, &k, &err), 0, "%s", err.text);
    cr_assert_eq(k.host_decompressed, 0);

    /* A damaged payload is an error, never a silent fallback. */
    uint8_t *bad = bz_with_payload(payload, pn - 9, &bn);
    memcpy(bad + bn - 4, payload + pn - 4, 4);
    cr_assert_eq(load_kernel(&gm, bad, bn, 1, 1, &k, &err), -EINVAL);
    cr_assert(strstr(err.text, "lz4"), "%s", err.text);

    /* payload_length beyond the file. */
    w32(bz + 0x24c, (uint32_t)pn + 1000);
    cr_assert_eq(load_bzimage_decompressed(&gm, bz, KERNEL_OFF + 0x100 + pn, 1, &k, &err), -ENOEXEC);
    free(bad);
    free(bz2);
    free(bz);
    free(payload);
    free(elf);
    free(backing);
}
