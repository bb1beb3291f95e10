/*
 * snapshot_mem: the memory file a create writes (sparse, whole or not at all)
 * and the checks a File-backend load makes before mapping one. No KVM: a Diff,
 * which needs KVM's dirty log, can only be seen failing cleanly.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vm/snapshot_mem.h"

#define PAGE GUEST_PAGE_SIZE
#define RAM (4ULL << 20)

static char dir[64];
static uint8_t *backing;
static struct guest_mem gm;
static struct errmsg err;

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/ember-snapmem-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    backing = aligned_alloc(PAGE, RAM);
    cr_assert_not_null(backing);
    memset(backing, 0, RAM);
    cr_assert_eq(guest_mem_init_with(&gm, RAM, backing), 0);
}

/* The names in dir (at most 8 kept in names, if given); removes them when told to. */
static int entries(char names[8][64], bool remove_them)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (names && n < 8)
            snprintf(names[n], 64, "%.63s", e->d_name);
        n++;
        if (remove_them)
            unlinkat(dirfd(d), e->d_name, e->d_type == DT_DIR ? AT_REMOVEDIR : 0);
    }
    closedir(d);
    return n;
}

static void teardown(void)
{
    guest_mem_free(&gm);
    free(backing);
    entries(NULL, true);
    chmod(dir, 0700);
    rmdir(dir);
}

/* No .timeout: criterion's timeout watcher leaks under LeakSanitizer now and then (alarm() guards the FIFO case). */
TestSuite(snapshot_mem, .init = setup, .fini = teardown);

static const char *in_dir(const char *name)
{
    static char p[4][128];
    static int n;
    char *b = p[n++ % 4];
    snprintf(b, sizeof(p[0]), "%s/%s", dir, name);
    return b;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

static bool file_is(const char *path, const char *text)
{
    char buf[64] = "";
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strcmp(buf, text) == 0;
}

/* The data ranges of fd (SEEK_DATA/SEEK_HOLE) as page numbers: [first, last) pairs into r, their count. */
static int data_ranges(int fd, uint64_t size, uint64_t r[][2], int max)
{
    int n = 0;
    for (off_t off = 0; (uint64_t)off < size && n < max;) {
        off_t data = lseek(fd, off, SEEK_DATA);
        if (data < 0)
            break; /* ENXIO: no data after off */
        off_t hole = lseek(fd, data, SEEK_HOLE);
        cr_assert_geq(hole, data);
        r[n][0] = (uint64_t)data / PAGE;
        r[n][1] = ((uint64_t)hole + PAGE - 1) / PAGE;
        n++;
        off = hole;
    }
    return n;
}

Test(snapshot_mem, full_is_sparse_and_exact)
{
    backing[0] = 1;                               /* page 0, first byte */
    backing[6 * PAGE - 1] = 2;                    /* page 5, last byte */
    memset(backing + 100 * PAGE, 0x33, 2 * PAGE); /* pages 100-101 */
    backing[RAM - 1] = 4;                         /* the last page */
    const char *path = in_dir("mem");
    struct snapshot_mem_stats st;
    cr_assert_eq(snapshot_mem_write(&gm, -1, false, false, path, &st, &err), 0, "%s", err.text);
    cr_expect_eq(st.pages_written, 5);
    cr_expect_eq(st.bytes_written, 5 * PAGE);
    int fd = open(path, O_RDONLY);
    cr_assert_geq(fd, 0);
    struct stat sb;
    cr_assert_eq(fstat(fd, &sb), 0);
    cr_expect_eq((uint64_t)sb.st_size, RAM, "the file holds %lld bytes, the RAM %llu", (long long)sb.st_size, RAM);
    cr_expect_eq(sb.st_mode & 0777, 0600, "mode %o", sb.st_mode & 0777);
    uint8_t *file = malloc(RAM);
    cr_assert_not_null(file);
    cr_assert_eq(pread(fd, file, RAM, 0), (ssize_t)RAM);
    cr_expect_eq(memcmp(file, backing, RAM), 0, "the file's bytes differ from the RAM's");
    /* Zero pages are holes: the data is exactly the five written pages. */
    uint64_t r[8][2] = {{0}};
    int n = data_ranges(fd, RAM, r, 8);
    const uint64_t want[][2] = {{0, 1}, {5, 6}, {100, 102}, {RAM / PAGE - 1, RAM / PAGE}};
    cr_expect_eq(n, 4, "%d data ranges", n);
    for (int i = 0; i < n && i < 4; i++)
        cr_expect(r[i][0] == want[i][0] && r[i][1] == want[i][1], "data range %d: pages [%llu, %llu)", i,
                  (unsigned long long)r[i][0], (unsigned long long)r[i][1]);
    cr_expect_leq((uint64_t)sb.st_blocks * 512, 5 * PAGE, "%lld blocks allocated", (long long)sb.st_blocks);
    close(fd);
    free(file);
    /* Only the memory file: no temporary file left beside it. */
    char names[8][64];
    cr_expect_eq(entries(names, false), 1, "the directory holds %s and more", names[0]);
    cr_expect_str_eq(names[0], "mem");
}

/* All-zero RAM: a file of the RAM's size with no data at all. Writing over an existing file replaces it. */
Test(snapshot_mem, zero_ram_replaces_old_file)
{
    const char *path = in_dir("mem");
    write_text(path, "an older memory file");
    struct snapshot_mem_stats st;
    cr_assert_eq(snapshot_mem_write(&gm, -1, false, false, path, &st, &err), 0, "%s", err.text);
    cr_expect_eq(st.pages_written, 0);
    struct stat sb;
    cr_assert_eq(stat(path, &sb), 0);
    cr_expect_eq((uint64_t)sb.st_size, RAM);
    cr_expect_eq(sb.st_blocks, 0);
    cr_expect_eq(entries(NULL, false), 1);
}

/*
 * Above the 32-bit gap: region 1 follows region 0 in the file, not at its
 * address. The real layout puts 3 GiB of RAM below the gap, which takes
 * minutes to scan on a slow host (a page fault per untouched page), so the
 * two regions are laid out by hand, small, at the real addresses.
 */
Test(snapshot_mem, regions_laid_end_to_end)
{
    struct guest_mem m = {.nr_regions = 2};
    m.regions[0] = (struct guest_region){.gpa = 0, .size = 8 * PAGE, .host = backing};
    m.regions[1] = (struct guest_region){.gpa = MMIO_GAP_END, .size = 4 * PAGE, .host = backing + 64 * PAGE};
    const uint64_t a = 0xa1, b = 0xb2;
    cr_assert_eq(gm_write(&m, 8 * PAGE - 8, &a, 8), 0);
    cr_assert_eq(gm_write(&m, MMIO_GAP_END + 3 * PAGE, &b, 8), 0);
    const char *path = in_dir("two");
    struct snapshot_mem_stats st;
    cr_assert_eq(snapshot_mem_write(&m, -1, false, false, path, &st, &err), 0, "%s", err.text);
    cr_expect_eq(st.pages_written, 2);
    int fd = open(path, O_RDONLY);
    cr_assert_geq(fd, 0);
    struct stat sb;
    cr_assert_eq(fstat(fd, &sb), 0);
    cr_expect_eq((uint64_t)sb.st_size, 12 * PAGE);
    uint64_t v = 0;
    cr_assert_eq(pread(fd, &v, 8, (off_t)(8 * PAGE - 8)), 8);
    cr_expect_eq(v, a);
    cr_assert_eq(pread(fd, &v, 8, (off_t)(8 * PAGE + 3 * PAGE)), 8);
    cr_expect_eq(v, b);
    uint64_t r[4][2] = {{0}};
    cr_expect_eq(data_ranges(fd, 12 * PAGE, r, 4), 2);
    cr_expect(r[0][0] == 7 && r[0][1] == 8 && r[1][0] == 11 && r[1][1] == 12, "data at pages [%llu,%llu) [%llu,%llu)",
              (unsigned long long)r[0][0], (unsigned long long)r[0][1], (unsigned long long)r[1][0],
              (unsigned long long)r[1][1]);
    close(fd);
}

/* Runs snapshot_mem_write as an unprivileged user when we are root (root writes anywhere); its rc. */
static int write_as_nobody(const char *path)
{
    if (geteuid() != 0)
        return snapshot_mem_write(&gm, -1, false, false, path, NULL, &err);
    int pipefd[2];
    cr_assert_eq(pipe(pipefd), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(pipefd[0]);
        if (setgid(65534) || setuid(65534))
            _exit(99);
        int rc = snapshot_mem_write(&gm, -1, false, false, path, NULL, &err);
        ssize_t w = write(pipefd[1], err.text, strlen(err.text));
        _exit(rc == 0 ? 0 : w >= 0 ? -rc : 98);
    }
    close(pipefd[1]);
    ssize_t n = read(pipefd[0], err.text, sizeof(err.text) - 1);
    err.text[n > 0 ? n : 0] = '\0';
    close(pipefd[0]);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) != 99 && WEXITSTATUS(status) != 98, "the child failed");
    return -WEXITSTATUS(status);
}

Test(snapshot_mem, unwritable_directory)
{
    backing[0] = 1;
    cr_assert_eq(chmod(dir, 0555), 0);
    const char *path = in_dir("mem");
    int rc = write_as_nobody(path);
    cr_expect_eq(rc, -EACCES, "rc %d: %s", rc, err.text);
    cr_expect(strstr(err.text, path) && strstr(err.text, "temporary file"), "message: %s", err.text);
    cr_assert_eq(chmod(dir, 0700), 0);
    cr_expect_eq(entries(NULL, false), 0, "an unwritable directory got a file");
    /* A directory that does not exist. */
    const char *nowhere = in_dir("no-such-dir/mem");
    cr_expect_eq(snapshot_mem_write(&gm, -1, false, false, nowhere, NULL, &err), -ENOENT);
    cr_expect(strstr(err.text, nowhere), "message: %s", err.text);
}

/* Dirty pages come from KVM's log: with no VM (fd -1) a Diff, or a Full that restarts the log, fails cleanly. */
Test(snapshot_mem, diff_needs_the_dirty_log)
{
    backing[PAGE] = 1;
    cr_assert_eq(guest_mem_track_dirty(&gm), 0);
    cr_assert_not_null(gm_ptr(&gm, 7 * PAGE, 8)); /* a page Ember handed out: it must stay marked */
    const char *path = in_dir("mem");
    write_text(path, "old");
    for (int full = 0; full < 2; full++) {
        int rc = snapshot_mem_write(&gm, -1, !full, true, path, NULL, &err);
        cr_expect_eq(rc, -EBADF, "%s: rc %d", full ? "Full" : "Diff", rc);
        cr_expect(strstr(err.text, "dirty page log") && strstr(err.text, path), "message: %s", err.text);
        cr_expect(file_is(path, "old"), "the old file was changed");
        cr_expect_eq(entries(NULL, false), 1, "a temporary file was left");
    }
    uint64_t map[RAM / PAGE / 64] = {0};
    gm_take_dirty(&gm, 0, map);
    cr_expect(map[0] & (1ULL << 7), "a failed snapshot lost Ember's dirty pages");
    /* A Diff without tracking would silently be a Full: refused. */
    cr_expect_eq(snapshot_mem_write(&gm, -1, true, false, path, NULL, &err), -EINVAL);
    cr_expect(strstr(err.text, "dirty page tracking"), "message: %s", err.text);
    cr_expect(file_is(path, "old"));
    cr_expect_eq(entries(NULL, false), 1);
}

/* ---- snapshot_mem_open ---- */

static void sized_file(const char *path, uint64_t bytes)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert_geq(fd, 0);
    cr_assert_eq(ftruncate(fd, (off_t)bytes), 0);
    close(fd);
}

static void open_refused(const char *path, int want_rc, const char *frag)
{
    memset(&err, 0, sizeof(err));
    int rc = snapshot_mem_open(path, RAM, &err);
    cr_expect_eq(rc, want_rc, "%s: rc %d (%s)", path, rc, err.text);
    if (rc >= 0)
        close(rc);
    cr_expect(strstr(err.text, path), "message '%s' does not name %s", err.text, path);
    cr_expect(strstr(err.text, frag), "message '%s' should say '%s'", err.text, frag);
}

Test(snapshot_mem, open_checks)
{
    open_refused(in_dir("missing"), -ENOENT, "cannot open it");
    cr_assert_eq(mkdir(in_dir("d"), 0700), 0);
    open_refused(in_dir("d"), -EINVAL, "not a regular file");
    cr_assert_eq(mkfifo(in_dir("fifo"), 0600), 0);
    alarm(10); /* no writer: opening must not wait for one */
    open_refused(in_dir("fifo"), -EINVAL, "not a regular file");
    alarm(0);
    open_refused("/dev/null", -EINVAL, "not a regular file");
    sized_file(in_dir("short"), RAM - PAGE);
    open_refused(in_dir("short"), -EINVAL, "truncated");
    sized_file(in_dir("empty"), 0);
    open_refused(in_dir("empty"), -EINVAL, "truncated");
    sized_file(in_dir("long"), RAM + 1);
    open_refused(in_dir("long"), -EINVAL, "another snapshot");

    sized_file(in_dir("exact"), RAM);
    int fd = snapshot_mem_open(in_dir("exact"), RAM, &err);
    cr_assert_geq(fd, 0, "%s", err.text);
    cr_expect_eq(write(fd, "x", 1), -1, "the memory file is open for writing");
    cr_expect(fcntl(fd, F_GETFD) & FD_CLOEXEC, "the memory file's fd would leak into children");
    struct guest_mem m;
    cr_assert_eq(guest_mem_init_file(&m, RAM, fd), 0, "a File backend cannot map what snapshot_mem_open gave");
    close(fd);
    guest_mem_free(&m);
}
