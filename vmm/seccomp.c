#include "seccomp.h"

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
#include <sys/prctl.h>
#include <termios.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"

enum rule_kind { R_ANY, R_ARG_EQ, R_ARG_MASK_ZERO };

struct rule {
    int nr;
    enum rule_kind kind;
    unsigned arg;
    uint64_t value; /* R_ARG_EQ: the value; R_ARG_MASK_ZERO: bits that must be clear */
    const char *what;
};

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
};

/* The API thread: one Unix socket, HTTP, and the hand-over to the VMM thread. */
static const struct rule api_rules[] = {
    COMMON_RULES,
    ANY(epoll_wait), ANY(epoll_pwait), ANY(epoll_ctl), ANY(epoll_create1), ANY(close), ANY(accept4),
    ANY(accept), ANY(recvfrom), ANY(recvmsg), ANY(sendto), ANY(sendmsg), ANY(writev), ANY(shutdown),
    ANY(getsockopt), ANY(setsockopt), ANY(getsockname), ANY(getpeername),
    ARG_EQ(fcntl, 1, F_GETFL), ARG_EQ(fcntl, 1, F_SETFL), ARG_EQ(fcntl, 1, F_GETFD), ARG_EQ(fcntl, 1, F_SETFD),
    IOCTL(FIONBIO),
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
};

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
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_TRAP);
    if (!ctx)
        return err_set(err, -ENOMEM, "seccomp: cannot create a filter");
    /* This thread only: the others install their own. */
    seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 0);
    int rc = 0;
    for (unsigned i = 0; i < policies[kind].n && !rc; i++) {
        const struct rule *r = &policies[kind].rules[i];
        if (r->kind == R_ANY)
            rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, r->nr, 0);
        else if (r->kind == R_ARG_EQ)
            rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, r->nr, 1, SCMP_CMP(r->arg, SCMP_CMP_EQ, r->value));
        else
            rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, r->nr, 1, SCMP_CMP(r->arg, SCMP_CMP_MASKED_EQ, r->value, 0));
        if (rc)
            rc = err_set(err, rc, "seccomp: rule '%s' for the %s thread: %s", r->what, policies[kind].name,
                         strerror(-rc));
    }
    if (!rc && (rc = seccomp_load(ctx)))
        rc = err_set(err, rc, "seccomp: cannot load the %s thread's filter: %s", policies[kind].name, strerror(-rc));
    seccomp_release(ctx);
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
