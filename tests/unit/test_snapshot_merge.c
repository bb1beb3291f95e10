/* ember-snapshot-merge: a sparse Diff memory file laid onto its base; mismatched pairs refused, base untouched. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/unit/tool_fixture.h"

#define PAGE 4096
#define PAGES 64

static char dir[64], base_path[96], diff_path[96];

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/ember-merge-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(base_path, sizeof(base_path), "%s/base.mem", dir);
    snprintf(diff_path, sizeof(diff_path), "%s/diff.mem", dir);
}

static void teardown(void)
{
    unlink(base_path);
    unlink(diff_path);
    cr_assert_eq(rmdir(dir), 0);
}

TestSuite(snapshot_merge, .init = setup, .fini = teardown, .timeout = 30);

/* Page p of a file as `tag` writes it: every byte says which file and which page. */
static void fill_page(uint8_t *buf, unsigned tag, unsigned p)
{
    for (unsigned i = 0; i < PAGE; i++)
        buf[i] = (uint8_t)(tag * 31 + p * 7 + i / 512);
}

static void write_pages(const char *path, unsigned tag, const unsigned *pages, unsigned n, off_t size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert_geq(fd, 0);
    cr_assert_eq(ftruncate(fd, size), 0);
    uint8_t buf[PAGE];
    for (unsigned k = 0; k < n; k++) {
        fill_page(buf, tag, pages[k]);
        cr_assert_eq(pwrite(fd, buf, PAGE, (off_t)pages[k] * PAGE), PAGE);
    }
    close(fd);
}

static void write_full_base(off_t size)
{
    unsigned all[PAGES];
    for (unsigned p = 0; p < PAGES; p++)
        all[p] = p;
    write_pages(base_path, 1, all, (unsigned)(size / PAGE), size);
}

static uint8_t *read_all(const char *path, size_t size)
{
    uint8_t *buf = malloc(size);
    cr_assert_not_null(buf);
    int fd = open(path, O_RDONLY);
    cr_assert_geq(fd, 0);
    cr_assert_eq(pread(fd, buf, size, 0), (ssize_t)size);
    close(fd);
    return buf;
}

static int merge(struct tool_run *t)
{
    return tool_run(t, "ember-snapshot-merge", (const char *const[]){base_path, diff_path, NULL}, 10000);
}

Test(snapshot_merge, scattered_pages_land_at_their_offsets)
{
    write_full_base(PAGES * PAGE);
    /* 7 and 8 touch: one extent; 0 and 63 are the file's first and last pages. */
    const unsigned dirty[] = {0, 7, 8, 33, 63};
    write_pages(diff_path, 2, dirty, 5, PAGES * PAGE);
    struct tool_run t;
    cr_assert_eq(merge(&t), 0, "%s", t.out);
    cr_assert_not_null(strstr(t.out, "merged 20480 bytes in 4 extent(s)"), "%s", t.out);

    uint8_t *got = read_all(base_path, PAGES * PAGE), want[PAGE];
    for (unsigned p = 0; p < PAGES; p++) {
        bool is_dirty = p == 0 || p == 7 || p == 8 || p == 33 || p == 63;
        fill_page(want, is_dirty ? 2 : 1, p);
        cr_assert_arr_eq(got + (size_t)p * PAGE, want, PAGE, "page %u", p);
    }
    free(got);
}

Test(snapshot_merge, an_empty_diff_changes_nothing)
{
    write_full_base(PAGES * PAGE);
    write_pages(diff_path, 2, NULL, 0, PAGES * PAGE);
    uint8_t *before = read_all(base_path, PAGES * PAGE);
    struct tool_run t;
    cr_assert_eq(merge(&t), 0, "%s", t.out);
    cr_assert_not_null(strstr(t.out, "merged 0 bytes in 0 extent(s)"), "%s", t.out);
    uint8_t *after = read_all(base_path, PAGES * PAGE);
    cr_assert_arr_eq(after, before, PAGES * PAGE);
    free(before);
    free(after);
}

Test(snapshot_merge, size_mismatch_is_refused_and_base_untouched)
{
    write_full_base(PAGES * PAGE);
    const unsigned dirty[] = {3};
    write_pages(diff_path, 2, dirty, 1, (PAGES + 1) * PAGE);
    struct stat st_before, st_after;
    cr_assert_eq(stat(base_path, &st_before), 0);
    uint8_t *before = read_all(base_path, PAGES * PAGE);
    struct tool_run t;
    cr_assert_eq(merge(&t), 1, "%s", t.out);
    cr_assert_not_null(strstr(t.out, "wrong pair?"), "%s", t.out);
    uint8_t *after = read_all(base_path, PAGES * PAGE);
    cr_assert_arr_eq(after, before, PAGES * PAGE);
    cr_assert_eq(stat(base_path, &st_after), 0);
    cr_assert_eq(st_after.st_size, st_before.st_size);
    cr_assert_eq(st_after.st_mtim.tv_sec, st_before.st_mtim.tv_sec);
    cr_assert_eq(st_after.st_mtim.tv_nsec, st_before.st_mtim.tv_nsec);
    free(before);
    free(after);
}

Test(snapshot_merge, refuses_what_is_not_a_pair_of_regular_files)
{
    write_full_base(PAGES * PAGE);
    struct tool_run t;
    cr_assert_eq(tool_run(&t, "ember-snapshot-merge", (const char *const[]){base_path, dir, NULL}, 10000), 1);
    cr_assert_not_null(strstr(t.out, "is not a regular file"), "%s", t.out);
    cr_assert_eq(tool_run(&t, "ember-snapshot-merge", (const char *const[]){"/dev/null", base_path, NULL}, 10000), 1);
    cr_assert_not_null(strstr(t.out, "/dev/null is not a regular file"), "%s", t.out);
    cr_assert_eq(tool_run(&t, "ember-snapshot-merge", (const char *const[]){base_path, base_path, NULL}, 10000), 1);
    cr_assert_not_null(strstr(t.out, "are the same file"), "%s", t.out);
    cr_assert_eq(tool_run(&t, "ember-snapshot-merge", (const char *const[]){base_path, diff_path, NULL}, 10000), 1);
    cr_assert_not_null(strstr(t.out, "cannot open"), "%s", t.out);
    cr_assert_eq(tool_run(&t, "ember-snapshot-merge", (const char *const[]){base_path, NULL}, 10000), 1);
    cr_assert_not_null(strstr(t.out, "usage:"), "%s", t.out);
    cr_assert_eq(tool_run(&t, "ember-snapshot-merge", (const char *const[]){"--help", NULL}, 10000), 0);
    cr_assert_not_null(strstr(t.out, "usage: ember-snapshot-merge BASE_MEM DIFF_MEM"), "%s", t.out);
}
