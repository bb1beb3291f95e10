#include "vm/seccomp.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <seccomp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/log.h"

enum rule_kind { R_ANY, R_ARG_EQ, R_ARG_MASK_ZERO };

struct rule {
    int nr;
    enum rule_kind kind;
    unsigned arg;
    uint64_t value; /* R_ARG_EQ: the value; R_ARG_MASK_ZERO: bits that must be clear */
    const char *what;
};

/* The rule tables are laid out by hand, several rules to a line. */
/* clang-format off */
#define ANY(name) {SCMP_SYS(name), R_ANY, 0, 0, #name}
#define IOCTL(req) {SCMP_SYS(ioctl), R_ARG_EQ, 1, (uint64_t)(req), "ioctl " #req}
#define NOEXEC(name, a) {SCMP_SYS(name), R_ARG_MASK_ZERO, a, PROT_EXEC, #name " without PROT_EXEC"}
#define ARG_EQ(name, a, v) {SCMP_SYS(name), R_ARG_EQ, a, (uint64_t)(v), #name " " #v}

/* What every Ember thread does: memory, locks, signals, logging, exiting. */
#define COMMON_RULES                                                                                   \
    ANY(read), ANY(write), ANY(futex), ANY(rt_sigreturn), ANY(rt_sigprocmask), ANY(exit),              \
        ANY(exit_group), ANY(brk), NOEXEC(mmap, 2), NOEXEC(mprotect, 2), ANY(munmap), ANY(madvise),    \
        ANY(mremap), ANY(sched_yield), ANY(clock_gettime), ANY(gettid), ANY(getpid), ANY(restart_syscall), \
        ARG_EQ(prctl, 0, PR_GET_NAME), ANY(clock_nanosleep), ANY(nanosleep)

/* The VMM thread after boot: event loop, devices, runtime API operations, teardown. */
static const struct rule vmm_rules[] = {
    COMMON_RULES,
    ANY(epoll_wait), ANY(epoll_pwait), ANY(epoll_ctl), ANY(close), ANY(openat), ANY(fstat), ANY(newfstatat),
    ANY(flock), ANY(fsync), ANY(fdatasync), ANY(preadv), ANY(pwritev), ANY(pread64), ANY(pwrite64), ANY(readv),
    ANY(writev), ANY(io_uring_enter), ANY(tgkill), ANY(unlink), ANY(unlinkat), ANY(lseek),
    ARG_EQ(fcntl, 1, F_GETFL), ARG_EQ(fcntl, 1, F_SETFL),
    IOCTL(KVM_IRQ_LINE), IOCTL(KVM_IRQ_LINE_STATUS), IOCTL(TUNSETOFFLOAD), IOCTL(TCGETS), IOCTL(TCSETS),
    IOCTL(TCSETSW),
    /* virtio-vsock half-closes a host connection when the guest shuts its side down. */
    ANY(shutdown),
    /* Snapshot create on a paused VM: the vCPUs' and the VM's state, the dirty log, two files written through
     * temporary names (mkostemp draws its name from getrandom) and renamed into place. */
    IOCTL(KVM_GET_REGS), IOCTL(KVM_GET_SREGS), IOCTL(KVM_GET_FPU), IOCTL(KVM_GET_XSAVE), IOCTL(KVM_GET_XSAVE2),
    IOCTL(KVM_GET_XCRS), IOCTL(KVM_GET_LAPIC), IOCTL(KVM_GET_VCPU_EVENTS), IOCTL(KVM_GET_MP_STATE),
    IOCTL(KVM_GET_DEBUGREGS), IOCTL(KVM_GET_MSRS), IOCTL(KVM_GET_CPUID2), IOCTL(KVM_GET_IRQCHIP),
    IOCTL(KVM_GET_PIT2), IOCTL(KVM_GET_CLOCK), IOCTL(KVM_GET_DIRTY_LOG),
    ANY(ftruncate), ANY(rename), ANY(renameat), ANY(renameat2), ANY(getrandom),
    /* Rate limiters arm their timerfd when a bucket runs dry; virtio-rng's bytes come from getrandom (above). */
    ANY(timerfd_settime),
    /* virtio-vsock: host clients accepted on uds_path, guest connections to <uds_path>_<port>, stream I/O. */
    ARG_EQ(socket, 0, AF_UNIX), ANY(connect), ANY(accept4), ANY(recvfrom), ANY(sendto), ANY(sendmsg),
    ARG_EQ(setsockopt, 2, SO_SNDBUF),
};

/* The API thread: one Unix socket, HTTP, and the hand-over to the VMM thread. */
static const struct rule api_rules[] = {
    COMMON_RULES,
    /* api/http_conn.c: non-blocking accept4, recv and send (recvfrom, sendto) on an epoll set of its own. */
    ANY(epoll_wait), ANY(epoll_pwait), ANY(epoll_ctl), ANY(epoll_create1), ANY(close), ANY(accept4),
    ANY(recvfrom), ANY(sendto),
};

/* A vCPU thread: KVM_RUN and the exits it serves itself (devices, interpreter). */
static const struct rule vcpu_rules[] = {
    COMMON_RULES,
    IOCTL(KVM_RUN), IOCTL(KVM_GET_REGS), IOCTL(KVM_SET_REGS), IOCTL(KVM_GET_SREGS), IOCTL(KVM_SET_SREGS),
    IOCTL(KVM_GET_VCPU_EVENTS), IOCTL(KVM_SET_VCPU_EVENTS), IOCTL(KVM_GET_FPU), IOCTL(KVM_SET_FPU),
    IOCTL(KVM_GET_XSAVE), IOCTL(KVM_SET_XSAVE), IOCTL(KVM_GET_XCRS), IOCTL(KVM_SET_XCRS),
    IOCTL(KVM_GET_MSRS), IOCTL(KVM_SET_MSRS), IOCTL(KVM_IRQ_LINE), IOCTL(KVM_IRQ_LINE_STATUS),
    ANY(writev),
    /* The driver's status writes activate/reset devices on this thread: watch fds, tap offloads, drain I/O. */
    ANY(epoll_ctl), IOCTL(TUNSETOFFLOAD), ANY(io_uring_enter),
    /* A vsock driver reset closes the device's host connections. */
    ANY(close),
    /* The balloon's statistics timer is armed at DRIVER_OK and stopped at a driver reset. */
    ANY(timerfd_settime),
};
/* clang-format on */

static const struct {
    const struct rule *rules;
    unsigned n;
    const char *name;
} policies[THREAD_KINDS] = {
    [THREAD_VMM] = {vmm_rules, sizeof(vmm_rules) / sizeof(vmm_rules[0]), "vmm"},
    [THREAD_API] = {api_rules, sizeof(api_rules) / sizeof(api_rules[0]), "api"},
    [THREAD_VCPU] = {vcpu_rules, sizeof(vcpu_rules) / sizeof(vcpu_rules[0]), "vcpu"},
};

static _Atomic int enabled = 1;

#if defined(__SANITIZE_ADDRESS__)
/* ASan/LSan need calls no policy allows (sigaltstack, ptrace at exit): sanitizer builds run unfiltered. */
#define SANITIZER_BUILD 1
#else
#define SANITIZER_BUILD 0
#endif

void seccomp_set_enabled(int on)
{
    if (on && SANITIZER_BUILD) {
        log_info("seccomp: off in this sanitizer build (the sanitizer runtime needs calls the filters forbid)");
        on = 0;
    }
    atomic_store(&enabled, on);
}
int seccomp_enabled(void) { return atomic_load(&enabled); }
const char *thread_kind_name(enum thread_kind kind) { return policies[kind].name; }
unsigned seccomp_rule_count(enum thread_kind kind) { return policies[kind].n; }

/* SIGSYS from a filter: name the call, then end the process (only async-signal-safe calls). */
static void on_sigsys(int sig, siginfo_t *si, void *uc)
{
    (void)sig, (void)uc;
    char line[160];
    const char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, si->si_syscall);
    char thread[16] = "?";
    prctl(PR_GET_NAME, thread);
    int n = 0;
    static const char prefix[] = "ember: error: seccomp: thread '";
    memcpy(line, prefix, sizeof(prefix) - 1);
    n = sizeof(prefix) - 1;
    for (const char *p = thread; *p && n < 60; p++)
        line[n++] = *p;
    static const char mid[] = "' made a forbidden system call: ";
    memcpy(line + n, mid, sizeof(mid) - 1);
    n += sizeof(mid) - 1;
    for (const char *p = name ? name : "unknown"; *p && n < 140; p++)
        line[n++] = *p;
    /* (libseccomp allocated `name`; the process ends here, so it is not freed.) */
    line[n++] = '\n';
    if (write(STDERR_FILENO, line, (size_t)n) < 0) {
        /* nothing more can be done from here */
    }
    _exit(EXIT_BAD_SYSCALL);
}

/* The policy of one thread kind as a libseccomp context (NULL and err set on failure). */
static scmp_filter_ctx build_ctx(enum thread_kind kind, int *rc, struct errmsg *err)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_TRAP);
    if (!ctx) {
        *rc = err_set(err, -ENOMEM, "seccomp: cannot create a filter");
        return NULL;
    }
    /* This thread only: the others install their own. */
    seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 0);
    *rc = 0;
    for (unsigned i = 0; i < policies[kind].n && !*rc; i++) {
        const struct rule *r = &policies[kind].rules[i];
        if (r->kind == R_ANY)
            *rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, r->nr, 0);
        else if (r->kind == R_ARG_EQ)
            *rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, r->nr, 1, SCMP_CMP(r->arg, SCMP_CMP_EQ, r->value));
        else
            *rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, r->nr, 1, SCMP_CMP(r->arg, SCMP_CMP_MASKED_EQ, r->value, 0));
        if (*rc)
            *rc = err_set(err, *rc, "seccomp: rule '%s' for the %s thread: %s", r->what, policies[kind].name,
                          strerror(-*rc));
    }
    if (*rc) {
        seccomp_release(ctx);
        return NULL;
    }
    return ctx;
}

/*
 * BPF programs compiled ahead by seccomp_precompile (once per process, before
 * the threads that use them exist; read-only afterwards). Compiling a policy
 * takes ~0.1 ms, on the path from InstanceStart to the guest's first
 * instruction when done at install time.
 */
static struct sock_fprog precompiled[THREAD_KINDS];

int seccomp_precompile(enum thread_kind kind, struct errmsg *err)
{
    if (!seccomp_enabled() || precompiled[kind].filter)
        return 0;
    int rc;
    scmp_filter_ctx ctx = build_ctx(kind, &rc, err);
    if (!ctx)
        return rc;
    /* libseccomp 2.5 exports to a file descriptor only: a pipe holds a few hundred instructions easily. */
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) {
        seccomp_release(ctx);
        return err_set(err, -errno, "seccomp: pipe: %s", strerror(errno));
    }
    rc = seccomp_export_bpf(ctx, p[1]);
    seccomp_release(ctx);
    close(p[1]);
    struct sock_filter *prog = NULL;
    size_t len = 0;
    if (!rc) {
        prog = malloc(BPF_MAXINSNS * sizeof(*prog));
        ssize_t r;
        while (prog && (r = read(p[0], (char *)prog + len, BPF_MAXINSNS * sizeof(*prog) - len)) > 0)
            len += (size_t)r;
        if (!prog)
            rc = -ENOMEM;
    }
    close(p[0]);
    if (rc || len == 0 || len % sizeof(*prog)) {
        free(prog);
        return err_set(err, rc ? rc : -EIO, "seccomp: cannot compile the %s thread's filter", policies[kind].name);
    }
    struct sock_filter *fit = realloc(prog, len); /* a few hundred bytes of the 32 KiB read buffer */
    precompiled[kind].len = (unsigned short)(len / sizeof(*prog));
    precompiled[kind].filter = fit ? fit : prog;
    return 0;
}

int seccomp_install(enum thread_kind kind, struct errmsg *err)
{
    if (!seccomp_enabled())
        return 0;
    static _Atomic int handler_installed;
    if (!atomic_exchange(&handler_installed, 1)) {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_sigaction = on_sigsys;
        sa.sa_flags = SA_SIGINFO;
        sigaction(SIGSYS, &sa, NULL);
    }
    int rc = 0;
    if (precompiled[kind].filter) {
        /* What seccomp_load does with the same program: no_new_privs, then this thread's filter. */
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
            syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &precompiled[kind]) < 0)
            rc = err_set(err, -errno, "seccomp: cannot load the %s thread's filter: %s", policies[kind].name,
                         strerror(errno));
    } else {
        scmp_filter_ctx ctx = build_ctx(kind, &rc, err);
        if (ctx && (rc = seccomp_load(ctx)))
            rc = err_set(err, rc, "seccomp: cannot load the %s thread's filter: %s", policies[kind].name,
                         strerror(-rc));
        if (ctx)
            seccomp_release(ctx);
    }
    /*
     * Test hook: the tests prove each filter is live by asking one thread
     * kind to make a call no policy allows. Harmless: it can only end ember.
     */
    const char *probe = getenv("EMBER_SECCOMP_TEST_VIOLATION");
    if (!rc && probe && strcmp(probe, policies[kind].name) == 0)
        syscall(SYS_getppid);
    return rc;
}

int seccomp_install_api(void)
{
    struct errmsg err;
    int rc = seccomp_install(THREAD_API, &err);
    if (rc)
        log_error("%s", err.text);
    return rc;
}

void seccomp_print(FILE *out)
{
    for (int k = 0; k < THREAD_KINDS; k++) {
        fprintf(out, "thread %s: %u rules, default action: log and exit %d\n", policies[k].name, policies[k].n,
                EXIT_BAD_SYSCALL);
        for (unsigned i = 0; i < policies[k].n; i++) {
            const struct rule *r = &policies[k].rules[i];
            if (r->kind == R_ARG_EQ && r->nr == SCMP_SYS(ioctl))
                fprintf(out, "  allow %s (request %#llx)\n", r->what, (unsigned long long)r->value);
            else
                fprintf(out, "  allow %s\n", r->what);
        }
    }
}
