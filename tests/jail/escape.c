/*
 * Test-only payload for tests/integration/t_jailer_escape.sh: run by
 * ember-jailer in place of ember (--exec-file), it tries to get out of the
 * jail and prints one line per attempt:
 *
 *     BLOCKED <name>: <what the kernel answered>
 *     ALLOWED <name>: <what worked>
 *
 * Usage (after the jailer's own "--id ID"): escape [HOST:PORT...]
 *   HOST:PORT   TCP listeners on the host to try to reach (IPv4).
 * Also: escape --listen FILE  (outside the jail) listens on 0.0.0.0, an
 * ephemeral port, writes the port to FILE, and appends "CONNECTED" to
 * FILE.log for every connection it accepts.
 *
 * Built by the test with: gcc -static -O2 -o escape tests/jail/escape.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

static int allowed_count;

static void report(int allowed, const char *name, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void report(int allowed, const char *name, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("%s %s: ", allowed ? "ALLOWED" : "BLOCKED", name);
    vprintf(fmt, ap);
    printf("\n");
    fflush(stdout);
    va_end(ap);
    allowed_count += allowed;
}

/* A call that should fail: BLOCKED with its errno, or ALLOWED. */
static void expect_fail(const char *name, long rc, const char *what)
{
    if (rc < 0)
        report(0, name, "%s: %s", what, strerror(errno));
    else
        report(1, name, "%s succeeded", what);
}

static void try_host_files(void)
{
    const char *paths[] = {"/etc/shadow",       "/etc/passwd", "/etc/hostname", "/proc/1/root/etc/shadow",
                           "/sys/kernel/notes", "/home",       "/root"};
    int opened = 0;
    char detail[512] = "";
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        int fd = open(paths[i], O_RDONLY);
        if (fd >= 0) {
            opened = 1;
            close(fd);
        }
        snprintf(detail + strlen(detail), sizeof(detail) - strlen(detail), "%s%s: %s", i ? ", " : "", paths[i],
                 fd >= 0 ? "OPENED" : strerror(errno));
    }
    report(opened, "host-file", "%s", detail);
}

static void try_dotdot(void)
{
    int fd = open("../../../../../../../../etc/shadow", O_RDONLY);
    int e = errno;
    if (fd >= 0)
        close(fd);
    for (int i = 0; i < 32; i++)
        if (chdir(".."))
            break;
    int fd2 = open("etc/shadow", O_RDONLY);
    int e2 = errno;
    if (fd2 >= 0)
        close(fd2);
    struct stat root, up;
    int same = stat("/", &root) == 0 && stat("/..", &up) == 0 && root.st_ino == up.st_ino && root.st_dev == up.st_dev;
    char cwd[256] = "?";
    if (!getcwd(cwd, sizeof(cwd)))
        snprintf(cwd, sizeof(cwd), "(getcwd: %s)", strerror(errno));
    report(fd >= 0 || fd2 >= 0 || !same, "dotdot",
           "../../etc/shadow: %s; after 32 x chdir(\"..\") cwd is %s and etc/shadow: %s; /.. is / itself: %s",
           fd >= 0 ? "OPENED" : strerror(e), cwd, fd2 >= 0 ? "OPENED" : strerror(e2), same ? "yes" : "NO");
    if (chdir("/")) {
    }
}

static void try_symlink(void)
{
    unlink("/run/escape-link");
    if (symlink("/etc/shadow", "/run/escape-link")) {
        report(0, "symlink", "symlink in /run: %s", strerror(errno));
        return;
    }
    int fd = open("/run/escape-link", O_RDONLY);
    int e = errno;
    if (fd >= 0)
        close(fd);
    unlink("/run/escape-link");
    report(fd >= 0, "symlink", "a link to /etc/shadow resolves inside the jail: %s", fd >= 0 ? "OPENED" : strerror(e));
}

static void try_ptrace(const char *name, pid_t pid)
{
    long rc = ptrace(PTRACE_ATTACH, pid, NULL, NULL);
    int e = errno;
    if (rc == 0) {
        waitpid(pid, NULL, __WALL);
        ptrace(PTRACE_DETACH, pid, NULL, NULL);
        report(1, name, "PTRACE_ATTACH to pid %d succeeded", (int)pid);
    } else {
        report(0, name, "PTRACE_ATTACH to pid %d: %s", (int)pid, strerror(e));
    }
}

/* In a child, so that a success changes nothing for the other attempts. */
static void try_in_child(const char *name, int (*fn)(char *detail, size_t n))
{
    int p[2];
    if (pipe(p)) {
        report(1, name, "pipe: %s (cannot test)", strerror(errno));
        return;
    }
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        char detail[256] = "";
        int ok = fn(detail, sizeof(detail));
        if (write(p[1], detail, strlen(detail)) < 0) {
        }
        _exit(ok ? 1 : 0);
    }
    close(p[1]);
    char detail[257] = "";
    ssize_t n = pid > 0 ? read(p[0], detail, 256) : -1;
    detail[n > 0 ? n : 0] = '\0';
    close(p[0]);
    int st = 0;
    if (pid > 0)
        waitpid(pid, &st, 0);
    report(pid < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0, name, "%s", pid < 0 ? "fork failed" : detail);
}

static int userns(char *d, size_t n)
{
    if (unshare(CLONE_NEWUSER)) {
        snprintf(d, n, "unshare(CLONE_NEWUSER): %s", strerror(errno));
        return 0;
    }
    snprintf(d, n, "unshare(CLONE_NEWUSER) succeeded");
    return 1;
}

static int userns_then_mount(char *d, size_t n)
{
    if (unshare(CLONE_NEWUSER | CLONE_NEWNS)) {
        snprintf(d, n, "unshare(CLONE_NEWUSER|CLONE_NEWNS): %s", strerror(errno));
        return 0;
    }
    if (mount("tmpfs", "/run", "tmpfs", 0, NULL)) {
        snprintf(d, n, "in a new user namespace, mount tmpfs: %s", strerror(errno));
        return 0;
    }
    snprintf(d, n, "a user namespace, then a tmpfs mount, succeeded");
    return 1;
}

static int netns(char *d, size_t n)
{
    if (unshare(CLONE_NEWNET)) {
        snprintf(d, n, "unshare(CLONE_NEWNET): %s", strerror(errno));
        return 0;
    }
    snprintf(d, n, "unshare(CLONE_NEWNET) succeeded");
    return 1;
}

static int mountns(char *d, size_t n)
{
    if (unshare(CLONE_NEWNS)) {
        snprintf(d, n, "unshare(CLONE_NEWNS): %s", strerror(errno));
        return 0;
    }
    snprintf(d, n, "unshare(CLONE_NEWNS) succeeded");
    return 1;
}

static int setuid_root(char *d, size_t n)
{
    int a = setuid(0), ea = errno;
    int b = setgid(0), eb = errno;
    int c = setgroups(0, NULL), ec = errno;
    snprintf(d, n, "setuid(0): %s, setgid(0): %s, setgroups: %s; uid now %d", a ? strerror(ea) : "ok",
             b ? strerror(eb) : "ok", c ? strerror(ec) : "ok", (int)getuid());
    return a == 0 || b == 0 || getuid() == 0 || geteuid() == 0;
}

/* Connects to ip:port with a 1 s timeout; 0 when connected, else errno. */
static int tcp_connect(const char *spec, char *detail, size_t n)
{
    char host[64];
    snprintf(host, sizeof(host), "%s", spec);
    char *colon = strrchr(host, ':');
    if (!colon) {
        snprintf(detail, n, "bad target %s", spec);
        return EINVAL;
    }
    *colon = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || *end || port < 0 || port > 65535) {
        snprintf(detail, n, "bad port in %s", spec);
        return EINVAL;
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    inet_pton(AF_INET, host, &sa.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        snprintf(detail, n, "socket: %s", strerror(errno));
        return errno;
    }
    int rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) ? errno : 0;
    if (rc == EINPROGRESS) {
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        socklen_t l = sizeof(rc);
        rc = poll(&p, 1, 1000) == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &rc, &l) == 0 ? rc : ETIMEDOUT;
    }
    close(fd);
    snprintf(detail, n, "connect %s: %s", spec, rc ? strerror(rc) : "CONNECTED");
    return rc;
}

static void try_network(int ntargets, char **targets)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int e = errno;
    if (fd >= 0)
        close(fd);
    /* The jailer's baseline filter refuses every socket family but AF_UNIX. */
    report(fd >= 0, "inet-socket", "socket(AF_INET) %s", fd >= 0 ? "succeeded" : strerror(e));
    char detail[1024] = "";
    int reached = 0;
    for (int i = 0; i < ntargets; i++) {
        char one[256];
        reached |= tcp_connect(targets[i], one, sizeof(one)) == 0;
        snprintf(detail + strlen(detail), sizeof(detail) - strlen(detail), "%s%s", i ? "; " : "", one);
    }
    if (ntargets == 0)
        snprintf(detail, sizeof(detail), "no target given");
    report(reached || ntargets == 0, "inet-connect", "%s", detail);
}

static void try_modules(void)
{
    static char image[64];
    long a = syscall(SYS_init_module, image, sizeof(image), "");
    int ea = errno;
    int fd = open("/proc/self/exe", O_RDONLY);
    if (fd < 0)
        fd = open("/dev/urandom", O_RDONLY);
    long b = syscall(SYS_finit_module, fd, "", 0);
    int eb = errno;
    if (fd >= 0)
        close(fd);
    report(a == 0 || b == 0, "kernel-module", "init_module: %s, finit_module: %s", a ? strerror(ea) : "LOADED",
           b ? strerror(eb) : "LOADED");
}

static void try_capabilities(void)
{
    int held = 0;
    for (int cap = 0; cap <= 63; cap++) {
        int r = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);
        if (r < 0)
            break;
        held += r == 1;
    }
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2] = {{0}};
    long rc = syscall(SYS_capget, &h, d);
    int eff = rc == 0 && (d[0].effective || d[1].effective || d[0].permitted || d[1].permitted);
    int nnp = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
    report(held || eff || nnp != 1, "capabilities", "bounding set holds %d, effective/permitted %s, no_new_privs %d",
           held, eff ? "NOT EMPTY" : "empty", nnp);
}

static void try_tiocsti(void)
{
    if (!isatty(0)) {
        report(0, "tiocsti", "stdin is not a terminal");
        return;
    }
    char c = ' ';
    long rc = ioctl(0, TIOCSTI, &c);
    int e = errno;
    report(rc == 0, "tiocsti", "TIOCSTI into the operator's terminal: %s", rc ? strerror(e) : "INJECTED");
}

static int listen_mode(const char *file)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_ANY)};
    socklen_t l = sizeof(sa);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 16) ||
        getsockname(fd, (struct sockaddr *)&sa, &l)) {
        perror("listen");
        return 1;
    }
    char log[512];
    snprintf(log, sizeof(log), "%s.log", file);
    FILE *f = fopen(file, "w");
    fprintf(f, "%d\n", ntohs(sa.sin_port));
    fclose(f);
    for (;;) {
        int c = accept(fd, NULL, NULL);
        if (c < 0)
            continue;
        FILE *lf = fopen(log, "a");
        if (lf) {
            fputs("CONNECTED\n", lf);
            fclose(lf);
        }
        close(c);
    }
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--listen") == 0)
        return listen_mode(argv[2]);
    int first = 1;
    if (argc > 2 && strcmp(argv[1], "--id") == 0) /* what the jailer passes first */
        first = 3;
    printf("escape: uid %d gid %d pid %d ppid %d\n", (int)getuid(), (int)getgid(), (int)getpid(), (int)getppid());

    try_host_files();
    try_dotdot();
    try_symlink();
    pid_t ppid = getppid();
    if (ppid > 0) {
        try_ptrace("ptrace-parent", ppid);
        expect_fail("kill-parent", kill(ppid, 0), "kill(parent, 0)");
    } else { /* --new-pid-ns: the jailer is outside this namespace */
        report(0, "ptrace-parent", "no parent in sight: getppid() is 0 (outside this PID namespace)");
        report(0, "kill-parent", "no parent in sight: getppid() is 0 (outside this PID namespace)");
    }
    if (getpid() != 1)
        try_ptrace("ptrace-init", 1);
    else
        report(0, "ptrace-init", "this process is pid 1 of its own PID namespace: the host's init has no pid here");
    expect_fail("mount-tmpfs", mount("tmpfs", "/run", "tmpfs", 0, NULL), "mount tmpfs on /run");
    expect_fail("mount-proc", mount("proc", "/run", "proc", 0, NULL), "mount proc on /run");
    try_in_child("unshare-user", userns);
    try_in_child("userns-then-mount", userns_then_mount);
    try_in_child("unshare-net", netns);
    try_in_child("unshare-mount", mountns);
    try_network(argc - first, argv + first);
    try_in_child("setuid-root", setuid_root);
    try_modules();
    expect_fail("sysrq-trigger", open("/proc/sysrq-trigger", O_WRONLY), "open /proc/sysrq-trigger");
    expect_fail("mknod-block", mknod("/run/sda", S_IFBLK | 0600, makedev(8, 0)), "mknod block device 8:0");
    if (mkdir("/run/inner", 0700) && errno != EEXIST) {
    }
    expect_fail("chroot", chroot("/run/inner"), "chroot /run/inner");
    rmdir("/run/inner");
    char name[256] = "";
    gethostname(name, sizeof(name));
    expect_fail("sethostname", sethostname(name, strlen(name)), "sethostname (to its current value)");
    try_capabilities();
    try_tiocsti();
    printf("escape: %d attempt(s) allowed\n", allowed_count);
    return 0;
}
