/* snapshot_file: the state file's header, sections and checksum; every damaged file is refused by name. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "core/le.h"
#include "core/snapshot_file.h"
#include "core/version.h"

static char dir[64];

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/ember-snapfile-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

/* The names in dir, "." and ".." aside; with unlink_them, removes them (the tests make plain files only). */
static int entries(bool unlink_them)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        n++;
        if (unlink_them)
            cr_assert_eq(unlinkat(dirfd(d), e->d_name, 0), 0);
    }
    closedir(d);
    return n;
}

static void teardown(void)
{
    entries(true);
    cr_assert_eq(rmdir(dir), 0);
}

TestSuite(snapshot_file, .init = setup, .fini = teardown);

/* Sections as a VM would write them: "vm", two "vcpu", two devices. */
static void build_sections(struct state_writer *w)
{
    state_writer_init(w);
    size_t m = state_begin(w, "vm", 1);
    state_put_u64(w, 0x1122334455667788ull);
    cr_assert_eq(state_end(w, m), 0);
    for (uint32_t i = 0; i < 2; i++) {
        m = state_begin(w, "vcpu", 1);
        state_put_u32(w, i);
        state_put_bytes(w, "registers", 9);
        cr_assert_eq(state_end(w, m), 0);
    }
    const char *types[] = {"serial", "virtio-blk"}, *ids[] = {"com1", "rootfs"};
    for (int d = 0; d < 2; d++) {
        m = snapshot_device_begin(w, types[d], ids[d]);
        size_t inner = state_begin(w, types[d], 1);
        state_put_u32(w, (uint32_t)d + 7);
        cr_assert_eq(state_end(w, inner), 0);
        cr_assert_eq(state_end(w, m), 0);
    }
}

/* A valid file image (caller frees w). */
static void build_image(struct state_writer *img)
{
    struct state_writer s;
    build_sections(&s);
    struct snapshot_header h;
    snapshot_header_init(&h, 128ull << 20, 2);
    state_writer_init(img);
    cr_assert_eq(snapshot_encode(&h, s.buf, s.len, img), 0);
    state_writer_free(&s);
}

static void check_sections(struct state_reader *r)
{
    struct errmsg err = {{0}};
    struct state_reader b;
    uint32_t v;
    cr_assert_eq(state_open(r, "vm", 1, &v, &b, &err), 0, "%s", err.text);
    cr_expect_eq(state_get_u64(&b), 0x1122334455667788ull);
    cr_assert_eq(state_close(&b, "vm", &err), 0);
    for (uint32_t i = 0; i < 2; i++) {
        cr_assert_eq(state_open(r, "vcpu", 1, &v, &b, &err), 0, "%s", err.text);
        cr_expect_eq(state_get_u32(&b), i);
        char regs[9];
        state_get_bytes(&b, regs, 9);
        cr_expect_eq(memcmp(regs, "registers", 9), 0);
        cr_assert_eq(state_close(&b, "vcpu", &err), 0);
    }
    const char *types[] = {"serial", "virtio-blk"}, *ids[] = {"com1", "rootfs"};
    for (int d = 0; d < 2; d++) {
        char type[256], id[256];
        struct state_reader dev, inner;
        cr_assert_eq(snapshot_device_open(r, type, id, &dev, &err), 0, "%s", err.text);
        cr_expect_str_eq(type, types[d]);
        cr_expect_str_eq(id, ids[d]);
        cr_assert_eq(state_open(&dev, type, 1, &v, &inner, &err), 0, "%s", err.text);
        cr_expect_eq(state_get_u32(&inner), (uint32_t)d + 7);
        cr_assert_eq(state_close(&inner, type, &err), 0);
        cr_assert_eq(state_close(&dev, "device", &err), 0);
    }
    cr_expect_eq(r->pos, r->len, "nothing after the last section");
}

static void expect_refused(const uint8_t *img, size_t len, const char *needle, const char *what)
{
    struct snapshot_header h;
    struct state_reader r;
    struct errmsg err = {{0}};
    int rc = snapshot_decode(img, len, "snap", &h, &r, &err);
    cr_assert_eq(rc, -EINVAL, "%s: refused with -EINVAL (got %d)", what, rc);
    cr_assert(strstr(err.text, "snapshot file 'snap'") != NULL, "%s: names the file: %s", what, err.text);
    if (needle)
        cr_assert(strstr(err.text, needle) != NULL, "%s: '%s' in '%s'", what, needle, err.text);
    cr_assert_null(r.buf, "%s: no sections handed out", what);
}

/* Re-seals a deliberately altered image, so the check under test is not the checksum. */
static void reseal(uint8_t *img, size_t len) { le_st32(img + len - 4, (uint32_t)crc32(0L, img, (uInt)(len - 4))); }

Test(snapshot_file, round_trip_in_memory)
{
    struct state_writer img;
    build_image(&img);
    struct snapshot_header h;
    struct state_reader r;
    struct errmsg err = {{0}};
    cr_assert_eq(snapshot_decode(img.buf, img.len, "snap", &h, &r, &err), 0, "%s", err.text);
    cr_expect_eq(h.format_version, SNAPSHOT_FORMAT_VERSION);
    cr_expect_eq(h.arch, SNAPSHOT_ARCH_X86_64);
    cr_expect_str_eq(h.ember_version, EMBER_VERSION_STRING);
    cr_expect_eq(h.mem_size, 128ull << 20);
    cr_expect_eq(h.nr_vcpus, 2);
    cr_expect_eq(h.flags, 0);
    check_sections(&r);
    state_writer_free(&img);
}

Test(snapshot_file, round_trip_through_a_file_leaves_no_temporary)
{
    struct state_writer s;
    build_sections(&s);
    struct snapshot_header h;
    snapshot_header_init(&h, 1ull << 30, 2);
    char path[128];
    snprintf(path, sizeof(path), "%s/vm.snap", dir);
    struct errmsg err = {{0}};
    cr_assert_eq(snapshot_file_write(path, &h, s.buf, s.len, &err), 0, "%s", err.text);
    /* Overwriting works too (rename replaces). */
    cr_assert_eq(snapshot_file_write(path, &h, s.buf, s.len, &err), 0, "%s", err.text);
    state_writer_free(&s);

    struct snapshot_header got;
    struct state_reader r;
    uint8_t *image;
    cr_assert_eq(snapshot_file_read(path, &got, &image, &r, &err), 0, "%s", err.text);
    cr_expect_eq(got.mem_size, 1ull << 30);
    check_sections(&r);
    free(image);

    cr_expect_eq(entries(false), 1, "only vm.snap in the directory");
}

Test(snapshot_file, every_truncation_is_refused)
{
    struct state_writer img;
    build_image(&img);
    for (size_t cut = 0; cut < img.len; cut++)
        expect_refused(img.buf, cut, NULL, "truncated");
    /* Past the header, the message tells what happened. */
    expect_refused(img.buf, img.len - 1, "checksum mismatch: the file is corrupt or truncated", "one byte short");
    expect_refused(img.buf, 0, "is empty", "empty");
    state_writer_free(&img);
}

Test(snapshot_file, every_flipped_byte_is_refused)
{
    struct state_writer img;
    build_image(&img);
    uint8_t *bad = malloc(img.len);
    cr_assert_not_null(bad);
    for (size_t at = 0; at < img.len; at++) {
        for (int bit = 0; bit < 8; bit += 7) {
            memcpy(bad, img.buf, img.len);
            bad[at] ^= (uint8_t)(1u << bit);
            /* Magic and version bytes get their own messages; everything else is the checksum's. */
            expect_refused(bad, img.len, at < 12 ? NULL : "checksum mismatch", "flipped");
        }
    }
    free(bad);
    state_writer_free(&img);
}

Test(snapshot_file, wrong_magic_version_arch_flags)
{
    struct state_writer img;
    build_image(&img);
    uint8_t *bad = malloc(img.len);
    cr_assert_not_null(bad);

    memcpy(bad, img.buf, img.len);
    bad[0] = 'X';
    expect_refused(bad, img.len, "not an Ember snapshot", "magic");

    memcpy(bad, img.buf, img.len);
    le_st32(bad + 8, 2);
    expect_refused(bad, img.len, "was made by format version 2, this Ember (" EMBER_VERSION_STRING ") reads version 1",
                   "newer version");
    le_st32(bad + 8, 0);
    expect_refused(bad, img.len, "format version 0", "version 0");

    memcpy(bad, img.buf, img.len);
    le_st32(bad + 12, 2);
    reseal(bad, img.len);
    expect_refused(bad, img.len, "architecture 2", "arch");

    size_t vlen = bad[16];
    memcpy(bad, img.buf, img.len);
    le_st32(bad + 17 + vlen + 12, 1);
    reseal(bad, img.len);
    expect_refused(bad, img.len, "flags 0x1", "flags");

    memcpy(bad, img.buf, img.len);
    le_st32(bad + 17 + vlen + 8, 0);
    reseal(bad, img.len);
    expect_refused(bad, img.len, "0 vCPUs", "no vCPUs");
    free(bad);
    state_writer_free(&img);
}

Test(snapshot_file, lengths_pointing_past_the_end)
{
    struct state_writer img;
    build_image(&img);
    uint8_t *bad = malloc(img.len);
    cr_assert_not_null(bad);
    size_t vlen = img.buf[16];
    const uint64_t lens[] = {UINT64_MAX, img.len, img.len - 41 - vlen - 4 + 1, 0};
    for (unsigned i = 0; i < 4; i++) {
        memcpy(bad, img.buf, img.len);
        le_st64(bad + 17 + vlen + 16, lens[i]);
        reseal(bad, img.len);
        expect_refused(bad, img.len, "bytes of state but holds", "sections length");
    }
    /* A version string longer than the header allows, and one running into the checksum. */
    memcpy(bad, img.buf, img.len);
    bad[16] = 200;
    reseal(bad, img.len);
    expect_refused(bad, img.len, "version string", "string length");
    memcpy(bad, img.buf, img.len);
    bad[16] = 63;
    reseal(bad, img.len);
    expect_refused(bad, img.len, NULL, "string length within bounds but wrong");
    free(bad);

    /* A section inside announcing more than the file holds is the section reader's to refuse. */
    struct state_writer s;
    state_writer_init(&s);
    size_t m = state_begin(&s, "vm", 1);
    state_put_u32(&s, 1);
    cr_assert_eq(state_end(&s, m), 0);
    le_st32(s.buf + 1 + 2 + 4, 0xffffff00u);
    struct snapshot_header h;
    snapshot_header_init(&h, 4096, 1);
    struct state_writer img2;
    state_writer_init(&img2);
    cr_assert_eq(snapshot_encode(&h, s.buf, s.len, &img2), 0);
    struct state_reader r, b;
    struct errmsg err = {{0}};
    cr_assert_eq(snapshot_decode(img2.buf, img2.len, "snap", &h, &r, &err), 0, "%s", err.text);
    uint32_t v;
    cr_expect_eq(state_open(&r, "vm", 1, &v, &b, &err), -EINVAL);
    cr_expect(strstr(err.text, "truncated") != NULL, "%s", err.text);
    state_writer_free(&s);
    state_writer_free(&img2);
    state_writer_free(&img);
}

Test(snapshot_file, paths_that_are_not_snapshot_files)
{
    struct snapshot_header h;
    struct state_reader r;
    uint8_t *image = (uint8_t *)1;
    struct errmsg err = {{0}};
    cr_expect_eq(snapshot_file_read(dir, &h, &image, &r, &err), -EINVAL);
    cr_expect(strstr(err.text, "is a directory") != NULL, "%s", err.text);
    cr_expect_null(image);

    char path[128];
    snprintf(path, sizeof(path), "%s/missing", dir);
    cr_expect_eq(snapshot_file_read(path, &h, &image, &r, &err), -ENOENT);
    cr_expect(strstr(err.text, "cannot open") != NULL, "%s", err.text);

    snprintf(path, sizeof(path), "%s/empty", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fclose(f);
    cr_expect_eq(snapshot_file_read(path, &h, &image, &r, &err), -EINVAL);
    cr_expect(strstr(err.text, "is empty") != NULL, "%s", err.text);

    /* Writing where no file can be: the error names the step, and nothing is left behind. */
    snprintf(path, sizeof(path), "%s/no/such/dir/vm.snap", dir);
    snapshot_header_init(&h, 4096, 1);
    cr_expect_lt(snapshot_file_write(path, &h, "", 0, &err), 0);
    cr_expect(strstr(err.text, "cannot create a temporary file") != NULL, "%s", err.text);
    cr_expect_lt(snapshot_file_write(dir, &h, "", 0, &err), 0, "a directory is not replaced");
    cr_expect(strstr(err.text, "cannot rename") != NULL, "%s", err.text);
    cr_expect_eq(entries(false), 1, "no temporary left behind");
}

Test(snapshot_file, device_wrapper_refuses_truncated_names)
{
    struct state_writer w;
    state_writer_init(&w);
    size_t m = snapshot_device_begin(&w, "serial", "com1");
    cr_assert_eq(state_end(&w, m), 0);
    for (size_t cut = 0; cut < w.len - 15; cut++) {
        /* Shorten the body: fix its announced length so only the type/id check can catch it. */
        uint8_t buf[64];
        memcpy(buf, w.buf, w.len);
        le_st32(buf + 1 + 6 + 4, (uint32_t)cut);
        struct state_reader r, b;
        char type[256], id[256];
        struct errmsg err = {{0}};
        state_reader_init(&r, buf, 15 + cut);
        cr_expect_eq(snapshot_device_open(&r, type, id, &b, &err), -EINVAL, "cut %zu", cut);
    }
    state_writer_free(&w);
}
