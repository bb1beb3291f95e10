#include "jailer/janitor.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define JANITOR_READY 'R'
#define JANITOR_DONE 'D'
#define MAX_CG_PIDS 512

struct jl_made *jl_made_map(struct errmsg *err)
{
    void *p = mmap(NULL, sizeof(struct jl_made), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        err_set(err, -errno, "mmap of the janitor's record: %s", strerror(errno));
        return NULL;
    }
    return p; /* zeroed by the kernel; never unmapped: it lives as long as the process */
}

int jl_made_cleanup(struct jl_made *m, struct errmsg *err)
{
    struct errmsg e2;
    int rc = m->cgroups_valid ? jl_cg_remove(&m->cgroups, err) : 0;
    int rc2 = m->jail_valid ? jl_jail_remove(&m->jail, rc ? &e2 : err) : 0;
    return rc ? rc : rc2;
}

int jl_parse_pids(const char *text, pid_t *pids, size_t max)
{
    size_t n = 0;
    for (const char *c = text; *c;) {
        if (*c == '\n' || *c == ' ') {
            c++;
            continue;
        }
        char *end;
        errno = 0;
        long v = strtol(c, &end, 10);
        if (end == c || errno || v <= 0 || v > 0x7fffffffL || (*end && *end != '\n' && *end != ' '))
            return -EINVAL;
        if (n < max)
            pids[n++] = (pid_t)v;
        c = end;
    }
    return (int)n;
}

/* Ends a forked process at once: no atexit handlers, no stdio flush, no sanitizer leak check on a heap copy. */
static void __attribute__((noreturn)) exit_now(int code)
{
    for (;;)
        syscall(SYS_exit_group, code);
}

static long long now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* SIGKILLs every process in the VM's own cgroups (the <id> leaves this run created); returns how many. */
static int kill_cgroup_tasks(const struct jl_made *m)
{
    if (!m->cgroups_valid || m->cgroups.attach_only)
        return 0; /* an attach-only cgroup is the operator's, shared with others: nothing in it is the VM's alone */
    int listed = 0;
    for (size_t i = 0; i < m->cgroups.n_dirs && i < JL_CG_MAX_DIRS; i++) {
        const struct jl_cg_dir *d = &m->cgroups.dirs[i];
        if (d->created_to != d->levels - 1)
            continue;
        char path[JL_CG_PATH_MAX + 16], text[8192];
        snprintf(path, sizeof(path), "%s/cgroup.procs", d->path);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        ssize_t n = fd < 0 ? -1 : read(fd, text, sizeof(text) - 1);
        if (fd >= 0)
            close(fd);
        if (n <= 0)
            continue;
        text[n] = '\0';
        pid_t pids[MAX_CG_PIDS];
        int count = jl_parse_pids(text, pids, MAX_CG_PIDS);
        for (int k = 0; k < count; k++)
            kill(pids[k], SIGKILL);
        listed += count > 0 ? count : 0;
    }
    return listed;
}

/* 1 once pid has exited (a zombie counts: it holds nothing of the jail), waiting up to timeout_ms. */
static int exited_within(pid_t pid, int timeout_ms)
{
    if (pid <= 0)
        return 1;
    int fd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (fd < 0)
        return errno == ESRCH || (kill(pid, 0) && errno == ESRCH);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r = poll(&p, 1, timeout_ms);
    close(fd);
    return r > 0;
}

/* After the supervisor's death: the VMM follows it (PR_SET_PDEATHSIG); wait for it and empty its cgroups. */
static void wait_vm_gone(const struct jl_made *m)
{
    long long deadline = now_ms() + JL_JANITOR_WAIT_MS;
    for (;;) {
        int listed = kill_cgroup_tasks(m);
        int gone = exited_within(m->vmm, 10);
        if ((gone && !listed) || now_ms() >= deadline)
            return;
        if (gone)
            nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    }
}

static void __attribute__((noreturn)) janitor_main(struct jl_made *m, int sock)
{
    /* Nothing of the operator's: no terminal, no pipe a caller waits on, no directory kept busy. */
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0 || chdir("/"))
        exit_now(1);
    if (sock != 3) {
        if (dup3(sock, 3, O_CLOEXEC) < 0)
            exit_now(1);
        sock = 3;
    }
    if (syscall(SYS_close_range, 4U, ~0U, 0U))
        exit_now(1);
    prctl(PR_SET_NAME, "ember-janitor", 0, 0, 0);
    char b = JANITOR_READY;
    if (send(sock, &b, 1, MSG_NOSIGNAL) != 1)
        exit_now(1);
    ssize_t n;
    do
        n = recv(sock, &b, 1, 0);
    while (n < 0 && errno == EINTR);
    if (n == 1 && b == JANITOR_DONE)
        exit_now(0);
    /* End of file without the byte: the supervisor died. */
    if (!m->keep) {
        wait_vm_gone(m);
        struct errmsg err;
        jl_made_cleanup(m, &err);
    }
    exit_now(0);
}

int jl_janitor_start(struct jl_made *m, struct errmsg *err)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
        return err_set(err, -errno, "janitor: socketpair: %s", strerror(errno));
    pid_t p = fork();
    if (p < 0) {
        int e = errno;
        close(sv[0]);
        close(sv[1]);
        return err_set(err, -e, "janitor: fork: %s", strerror(e));
    }
    if (p == 0) {
        /* A session of its own and, once this process is gone, nobody's child in the jailer's tree. */
        close(sv[0]);
        if (setsid() < 0)
            exit_now(1);
        p = fork();
        if (p < 0)
            exit_now(1);
        if (p > 0)
            exit_now(0);
        janitor_main(m, sv[1]);
    }
    close(sv[1]);
    int st = 0;
    while (waitpid(p, &st, 0) < 0 && errno == EINTR)
        ;
    char b = 0;
    ssize_t n;
    do
        n = recv(sv[0], &b, 1, 0);
    while (n < 0 && errno == EINTR);
    if (!WIFEXITED(st) || WEXITSTATUS(st) || n != 1 || b != JANITOR_READY) {
        close(sv[0]);
        return err_set(err, -ECHILD, "the janitor did not start (fork, setsid or /dev/null failed)");
    }
    return sv[0];
}

void jl_janitor_release(int fd)
{
    if (fd < 0)
        return;
    char b = JANITOR_DONE;
    if (send(fd, &b, 1, MSG_NOSIGNAL) == 1) {
        /* Its end closes when it exits: wait for that, so nothing of the run outlives the jailer's exit. */
        ssize_t n;
        do
            n = recv(fd, &b, 1, 0);
        while (n > 0 || (n < 0 && errno == EINTR));
    }
    close(fd);
}
