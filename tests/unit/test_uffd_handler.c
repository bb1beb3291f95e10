/*
 * ember-uffd-handler, driven as a VMM drives it: this process creates the
 * userfaultfd, registers two anonymous regions, connects, sends Firecracker's
 * message (core/uffd_msg) and touches the memory from threads; the handler must
 * fill every page from the right place of the file (zeros after MADV_DONTNEED),
 * exit 0 when the VMM closes the connection, and exit 1 with a message on
 * hostile messages and on faults it cannot serve.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/uffd_msg.h"
#include "tests/unit/tool_fixture.h"

#define PAGE 4096u
/* Region 0: 8 pages backed by file pages 0-7; region 1: 16 pages backed by file pages 8-23. */
#define R0_PAGES 8u
#define R1_PAGES 16u
#define FILE_PAGES (R0_PAGES + R1_PAGES)
#define WAIT_MS 10000

static char dir[64], sock_path[96], mem_path[96];

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/ember-uffd-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(sock_path, sizeof(sock_path), "%s/uffd.sock", dir);
    snprintf(mem_path, sizeof(mem_path), "%s/guest.mem", dir);
}

static void teardown(void)
{
    unlink(sock_path);
    unlink(mem_path);
    cr_assert_eq(rmdir(dir), 0);
}

TestSuite(uffd_handler, .init = setup, .fini = teardown, .timeout = 60);

/* Byte i of file page p: no two pages alike, no page all zeros. */
static uint8_t file_byte(unsigned p, unsigned i) { return (uint8_t)(0x5a ^ (p * 13 + i / 8 + 1)); }

static void write_mem_file(unsigned pages)
{
    int fd = open(mem_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert_geq(fd, 0);
    uint8_t buf[PAGE];
    for (unsigned p = 0; p < pages; p++) {
        for (unsigned i = 0; i < PAGE; i++)
            buf[i] = file_byte(p, i);
        cr_assert_eq(write(fd, buf, PAGE), PAGE);
    }
    close(fd);
}

/* The VMM's side: the userfaultfd, the guest memory regions, the connection. */
struct vmm {
    int uffd;
    int sock;
    uint8_t *mem[2];
    struct uffd_region regions[2];
    struct tool_run handler;
};

static uint8_t *map_registered(int uffd, size_t len)
{
    uint8_t *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(p, MAP_FAILED);
    struct uffdio_register reg = {.range = {.start = (uintptr_t)p, .len = len}, .mode = UFFDIO_REGISTER_MODE_MISSING};
    cr_assert_eq(ioctl(uffd, UFFDIO_REGISTER, &reg), 0, "UFFDIO_REGISTER: %s", strerror(errno));
    return p;
}

/* As Firecracker does: a non-blocking uffd asking for removal events, both regions registered (the
 * second `extra` pages longer than the message will say). */
static void vmm_map(struct vmm *v, unsigned extra)
{
    v->uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    cr_assert_geq(v->uffd, 0, "userfaultfd: %s", strerror(errno));
    struct uffdio_api api = {.api = UFFD_API, .features = UFFD_FEATURE_EVENT_REMOVE};
    cr_assert_eq(ioctl(v->uffd, UFFDIO_API, &api), 0, "UFFDIO_API: %s", strerror(errno));
    v->mem[0] = map_registered(v->uffd, R0_PAGES * PAGE);
    v->mem[1] = map_registered(v->uffd, (R1_PAGES + extra) * PAGE);
    v->regions[0] = (struct uffd_region){(uintptr_t)v->mem[0], R0_PAGES * PAGE, 0, PAGE};
    v->regions[1] = (struct uffd_region){(uintptr_t)v->mem[1], R1_PAGES * PAGE, R0_PAGES * PAGE, PAGE};
}

/* A connection to the handler, which binds its socket shortly after starting: -1 after 10 s. No assertions:
 * a forked VMM uses it too. */
static int connect_handler(void)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strcpy(sa.sun_path, sock_path);
    for (int tries = 0; tries < 1000; tries++) {
        int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s >= 0 && connect(s, (struct sockaddr *)&sa, sizeof(sa)) == 0)
            return s;
        int e = errno;
        if (s >= 0)
            close(s);
        if (e != ENOENT && e != ECONNREFUSED)
            return -1;
        nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
    }
    return -1;
}

/* Starts the handler and connects to it. */
static void vmm_connect(struct vmm *v)
{
    tool_start(&v->handler, "ember-uffd-handler", (const char *const[]){sock_path, mem_path, NULL});
    v->sock = connect_handler();
    cr_assert_geq(v->sock, 0, "the handler did not listen on %s: %s", sock_path, strerror(errno));
}

static void vmm_send(struct vmm *v)
{
    char json[1024];
    cr_assert_gt(uffd_msg_encode(v->regions, 2, json, sizeof(json)), 0);
    cr_assert_eq(uffd_msg_send(v->sock, json, v->uffd), 0);
}

/* Closes the connection (the VMM has gone), waits for the handler: its exit status. */
static int vmm_hang_up(struct vmm *v)
{
    close(v->sock);
    return tool_wait(&v->handler, WAIT_MS);
}

static void vmm_unmap(struct vmm *v, unsigned extra)
{
    munmap(v->mem[0], R0_PAGES * PAGE);
    munmap(v->mem[1], (R1_PAGES + extra) * PAGE);
    close(v->uffd);
}

/*
 * Runs fn(arg) on a thread (it blocks in page faults while the handler serves
 * them) and joins it. The thread only copies what it reads: the test's thread
 * asserts (Criterion's assertions belong to it).
 */
static void on_thread(void *(*fn)(void *), void *arg)
{
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, fn, arg), 0);
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += WAIT_MS / 1000;
    void *failed = NULL;
    cr_assert_eq(pthread_timedjoin_np(t, &failed, &deadline), 0, "the faulting thread is still blocked after %d ms",
                 WAIT_MS);
    cr_assert_null(failed, "the thread could not start its own threads");
}

/* What the toucher reads: region 1's pages 3 and 15, then all of region 0, then all of region 1. */
struct touch {
    struct vmm *v;
    uint8_t *copy[2];
};

static void *touch_pages(void *arg)
{
    struct touch *t = arg;
    volatile uint8_t *r1 = t->v->mem[1];
    (void)r1[3 * PAGE + 5];
    (void)r1[15 * PAGE + PAGE - 1];
    memcpy(t->copy[0], t->v->mem[0], R0_PAGES * PAGE);
    memcpy(t->copy[1], t->v->mem[1], R1_PAGES * PAGE);
    return NULL;
}

/* Asserts that the pages at got are the file's pages from first_page on. */
static void assert_file_bytes(const uint8_t *got, unsigned first_page, unsigned pages)
{
    for (unsigned p = 0; p < pages; p++)
        for (unsigned i = 0; i < PAGE; i++)
            cr_assert_eq(got[p * PAGE + i], file_byte(first_page + p, i), "file page %u byte %u", first_page + p, i);
}

Test(uffd_handler, fills_both_regions_from_the_file)
{
    write_mem_file(FILE_PAGES);
    struct vmm v;
    vmm_map(&v, 0);
    vmm_connect(&v);
    vmm_send(&v);
    struct touch t = {.v = &v, .copy = {malloc(R0_PAGES * PAGE), malloc(R1_PAGES * PAGE)}};
    on_thread(touch_pages, &t);
    assert_file_bytes(t.copy[0], 0, R0_PAGES);
    assert_file_bytes(t.copy[1], R0_PAGES, R1_PAGES);
    /* Present now: read again without the handler's help. */
    assert_file_bytes(v.mem[1], R0_PAGES, R1_PAGES);

    cr_assert_eq(vmm_hang_up(&v), 0, "%s", v.handler.out);
    char want[256];
    snprintf(want, sizeof(want), "ember-uffd-handler: serving 2 region(s) of %s on %s\n", mem_path, sock_path);
    cr_assert_not_null(strstr(v.handler.out, want), "%s", v.handler.out);
    cr_assert_not_null(strstr(v.handler.out, "24 fault(s) served, 24 page(s) copied, 0 page(s) zeroed"), "%s",
                       v.handler.out);
    cr_assert_neq(access(sock_path, F_OK), 0, "the handler left its socket behind");
    free(t.copy[0]);
    free(t.copy[1]);
    vmm_unmap(&v, 0);
}

/*
 * Page 2 of region 0: read (from the file), removed by MADV_DONTNEED, read
 * again (zeros), written; then page 3, never removed (from the file).
 */
struct remove_run {
    struct vmm *v;
    uint8_t before[PAGE], after[PAGE], neighbour[PAGE];
    int madvise_rc;
};

static void *fault_remove_fault(void *arg)
{
    struct remove_run *r = arg;
    uint8_t *page = r->v->mem[0] + 2 * PAGE;
    memcpy(r->before, page, PAGE);
    r->madvise_rc = madvise(page, PAGE, MADV_DONTNEED);
    memcpy(r->after, page, PAGE);
    page[7] = 0x42; /* the zero page is copied on write, without a fault the handler sees */
    memcpy(r->neighbour, r->v->mem[0] + 3 * PAGE, PAGE);
    return NULL;
}

Test(uffd_handler, pages_removed_by_the_vmm_come_back_as_zeros)
{
    write_mem_file(FILE_PAGES);
    struct vmm v;
    vmm_map(&v, 0);
    vmm_connect(&v);
    vmm_send(&v);
    static struct remove_run r;
    r.v = &v;
    on_thread(fault_remove_fault, &r);
    assert_file_bytes(r.before, 2, 1);
    cr_assert_eq(r.madvise_rc, 0);
    static const uint8_t zeros[PAGE];
    cr_assert_arr_eq(r.after, zeros, PAGE, "the removed page is not zeros");
    assert_file_bytes(r.neighbour, 3, 1);
    cr_assert_eq(v.mem[0][2 * PAGE + 7], 0x42);
    cr_assert_eq(vmm_hang_up(&v), 0, "%s", v.handler.out);
    cr_assert_not_null(strstr(v.handler.out, "3 fault(s) served, 2 page(s) copied, 1 page(s) zeroed"), "%s",
                       v.handler.out);
    cr_assert_not_null(strstr(v.handler.out, "1 remove event(s)"), "%s", v.handler.out);
    vmm_unmap(&v, 0);
}

/* Four threads read all of region 1 at once: every page is served once, whoever faults it. */
struct reader {
    struct vmm *v;
    uint8_t copy[R1_PAGES * PAGE];
};

static void *read_region1(void *arg)
{
    struct reader *r = arg;
    memcpy(r->copy, r->v->mem[1], sizeof(r->copy));
    return NULL;
}

static void *four_readers(void *arg)
{
    struct reader *r = arg;
    pthread_t t[4];
    int started = 0;
    while (started < 4 && pthread_create(&t[started], NULL, read_region1, &r[started]) == 0)
        started++;
    for (int i = 0; i < started; i++)
        pthread_join(t[i], NULL);
    return started == 4 ? NULL : r;
}

Test(uffd_handler, threads_faulting_the_same_pages)
{
    write_mem_file(FILE_PAGES);
    struct vmm v;
    vmm_map(&v, 0);
    vmm_connect(&v);
    vmm_send(&v);
    static struct reader r[4];
    for (int i = 0; i < 4; i++)
        r[i].v = &v;
    on_thread(four_readers, r);
    for (int i = 0; i < 4; i++)
        assert_file_bytes(r[i].copy, R0_PAGES, R1_PAGES);
    cr_assert_eq(vmm_hang_up(&v), 0, "%s", v.handler.out);
    cr_assert_not_null(strstr(v.handler.out, "16 page(s) copied, 0 page(s) zeroed"), "%s", v.handler.out);
    vmm_unmap(&v, 0);
}

/*
 * Firecracker before 1.12 closes the connection right after sending: with
 * --wait-for-exit the handler goes on serving until the process that connected
 * exits. Here a child connects and sends (the uffd is this process's), hangs
 * up at once and exits when told; this process faults meanwhile.
 */
Test(uffd_handler, wait_for_exit_serves_until_the_vmm_process_exits)
{
    write_mem_file(FILE_PAGES);
    struct vmm v;
    vmm_map(&v, 0);
    char json[1024];
    cr_assert_gt(uffd_msg_encode(v.regions, 2, json, sizeof(json)), 0);
    tool_start(&v.handler, "ember-uffd-handler", (const char *const[]){"--wait-for-exit", sock_path, mem_path, NULL});
    int go[2];
    cr_assert_eq(pipe2(go, O_CLOEXEC), 0);
    pid_t vmm = fork();
    cr_assert_geq(vmm, 0);
    if (vmm == 0) {
        close(go[1]);
        int s = connect_handler();
        int failed = s < 0 || uffd_msg_send(s, json, v.uffd) != 0;
        close(s);
        char c;
        (void)!read(go[0], &c, 1); /* until the test closes its end */
        _exit(failed);
    }
    close(go[0]);
    struct touch t = {.v = &v, .copy = {malloc(R0_PAGES * PAGE), malloc(R1_PAGES * PAGE)}};
    on_thread(touch_pages, &t);
    assert_file_bytes(t.copy[0], 0, R0_PAGES);
    assert_file_bytes(t.copy[1], R0_PAGES, R1_PAGES);
    close(go[1]);
    int status;
    cr_assert_eq(waitpid(vmm, &status, 0), vmm);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child could not connect or send");
    cr_assert_eq(tool_wait(&v.handler, WAIT_MS), 0, "%s", v.handler.out);
    cr_assert_not_null(strstr(v.handler.out, "24 fault(s) served, 24 page(s) copied"), "%s", v.handler.out);
    free(t.copy[0]);
    free(t.copy[1]);
    vmm_unmap(&v, 0);
}

/* A page registered with the uffd beyond the regions the message names. */
static void *touch_unannounced_page(void *arg)
{
    struct vmm *v = arg;
    (void)((volatile uint8_t *)v->mem[1])[R1_PAGES * PAGE];
    return NULL;
}

Test(uffd_handler, a_fault_outside_every_region_stops_it_with_a_message)
{
    write_mem_file(FILE_PAGES);
    struct vmm v;
    vmm_map(&v, 1);
    vmm_connect(&v);
    vmm_send(&v);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, touch_unannounced_page, &v), 0);
    cr_assert_eq(tool_wait(&v.handler, WAIT_MS), 1, "%s", v.handler.out);
    cr_assert_not_null(strstr(v.handler.out, "lies in none of the 2 region(s)"), "%s", v.handler.out);
    /* The handler is gone: fill the page ourselves so the thread can finish. */
    struct uffdio_zeropage z = {.range = {.start = (uintptr_t)v.mem[1] + R1_PAGES * PAGE, .len = PAGE}};
    cr_assert_eq(ioctl(v.uffd, UFFDIO_ZEROPAGE, &z), 0, "%s", strerror(errno));
    cr_assert_eq(pthread_join(t, NULL), 0);
    close(v.sock);
    vmm_unmap(&v, 1);
}

#define ATTACH_UFFD (-2) /* hostile(): attach the real userfaultfd */
#define ATTACH_NONE (-1) /* hostile(): attach nothing */

/* Connects, sends `text` (if any) with `attach` (a descriptor or the above), expects exit 1 with `why` said. */
static void hostile(const char *text, int attach, const char *why)
{
    struct vmm v;
    vmm_map(&v, 0);
    vmm_connect(&v);
    if (text && attach == ATTACH_NONE)
        cr_assert_eq(write(v.sock, text, strlen(text)), (ssize_t)strlen(text));
    else if (text)
        cr_assert_eq(uffd_msg_send(v.sock, text, attach == ATTACH_UFFD ? v.uffd : attach), 0);
    cr_assert_eq(vmm_hang_up(&v), 1, "for %s: %s", text ? text : "(nothing)", v.handler.out);
    cr_assert_not_null(strstr(v.handler.out, why), "for %s: %s", text ? text : "(nothing)", v.handler.out);
    cr_assert_null(strstr(v.handler.out, "serving"), "%s", v.handler.out);
    vmm_unmap(&v, 0);
}

Test(uffd_handler, hostile_messages_stop_it_with_a_message)
{
    write_mem_file(FILE_PAGES);
    char json[1024];
    struct vmm shape;
    vmm_map(&shape, 0);
    /* One page past the file's end. Moved in the file, not grown: grown, it could overlap region 0 in the address
     * space (mmap often puts region 1 just below region 0), which the handler reports first. */
    shape.regions[1].offset += PAGE;
    cr_assert_gt(uffd_msg_encode(shape.regions, 2, json, sizeof(json)), 0);
    vmm_unmap(&shape, 0);

    hostile("[{\"base_host_virt_addr\":", ATTACH_UFFD, "not valid JSON");
    hostile("{\"regions\":[]}", ATTACH_UFFD, "expected a JSON array");
    hostile("[{\"base_host_virt_addr\":4096,\"size\":8192,\"offset\":0,\"page_size\":4096},"
            "{\"base_host_virt_addr\":8192,\"size\":4096,\"offset\":8192,\"page_size\":4096}]",
            ATTACH_UFFD, "regions 0 and 1 overlap");
    hostile(json, ATTACH_UFFD, "region 1 (offset 0x9000, size 0x10000) lies past the end of");
    hostile("[{\"base_host_virt_addr\":4096,\"size\":4096,\"offset\":0,\"page_size\":4096}]", ATTACH_NONE,
            "expected exactly one userfaultfd with it, got none");
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    hostile("[{\"base_host_virt_addr\":4096,\"size\":4096,\"offset\":0,\"page_size\":4096}]", devnull,
            "the VMM sent /dev/null, not a userfaultfd");
    close(devnull);
    hostile(NULL, ATTACH_NONE, "closed the connection without sending the regions");
}

Test(uffd_handler, bad_command_lines_and_files)
{
    struct tool_run t;
    cr_assert_eq(tool_run(&t, "ember-uffd-handler", (const char *const[]){"--help", NULL}, WAIT_MS), 0);
    cr_assert_not_null(strstr(t.out, "usage: ember-uffd-handler [--wait-for-exit] SOCKET_PATH MEM_FILE"), "%s", t.out);
    cr_assert_eq(tool_run(&t, "ember-uffd-handler", (const char *const[]){sock_path, NULL}, WAIT_MS), 1);
    cr_assert_not_null(strstr(t.out, "usage:"), "%s", t.out);
    cr_assert_eq(tool_run(&t, "ember-uffd-handler", (const char *const[]){"--bogus", sock_path, mem_path, NULL},
                          WAIT_MS),
                 1);
    cr_assert_not_null(strstr(t.out, "unknown option --bogus"), "%s", t.out);
    cr_assert_eq(tool_run(&t, "ember-uffd-handler", (const char *const[]){sock_path, mem_path, NULL}, WAIT_MS), 1);
    cr_assert_not_null(strstr(t.out, "cannot open memory file"), "%s", t.out);
    write_mem_file(0);
    cr_assert_eq(tool_run(&t, "ember-uffd-handler", (const char *const[]){sock_path, mem_path, NULL}, WAIT_MS), 1);
    cr_assert_not_null(strstr(t.out, "is empty"), "%s", t.out);
    /* A path already taken is not removed: it may be another handler's. */
    write_mem_file(1);
    int fd = open(sock_path, O_WRONLY | O_CREAT, 0600);
    close(fd);
    cr_assert_eq(tool_run(&t, "ember-uffd-handler", (const char *const[]){sock_path, mem_path, NULL}, WAIT_MS), 1);
    cr_assert_not_null(strstr(t.out, "cannot listen on"), "%s", t.out);
    cr_assert_eq(access(sock_path, F_OK), 0);
}
