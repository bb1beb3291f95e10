#include "jailer/supervise.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

const char *jl_step_name(enum jl_exit code)
{
    switch (code) {
    case JL_EXIT_ARGS: return "arguments";
    case JL_EXIT_SANITIZE: return "sanitize";
    case JL_EXIT_JAILDIR: return "jail directory";
    case JL_EXIT_COPY: return "copy exec file";
    case JL_EXIT_NETNS: return "netns";
    case JL_EXIT_RLIMITS: return "rlimits";
    case JL_EXIT_CGROUPS: return "cgroups";
    case JL_EXIT_MOUNTNS: return "mount namespace";
    case JL_EXIT_DEVICES: return "devices";
    case JL_EXIT_PIDNS: return "process";
    case JL_EXIT_DAEMON: return "daemonize";
    case JL_EXIT_CAPS: return "capabilities";
    case JL_EXIT_IDS: return "uid/gid";
    case JL_EXIT_NNP: return "no_new_privs";
    case JL_EXIT_EXEC: return "exec";
    case JL_EXIT_CLEANUP: return "cleanup";
    case JL_EXIT_SUPERVISE: return "supervise";
    }
    return "?";
}

void jl_print_failure(int code, const char *text)
{
    fprintf(stderr, "ember-jailer: %s: %s\n", jl_step_name((enum jl_exit)code), text);
}

/*
 * Ends a forked process at once: no atexit handlers, no stdio flush, and no
 * sanitizer leak check (which the _exit interceptor would run in a copy of
 * the parent's heap).
 */
static void __attribute__((noreturn)) exit_now(int code)
{
    for (;;)
        syscall(SYS_exit_group, code);
}

static void forwarded_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGCHLD);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGHUP);
    sigaddset(set, SIGQUIT);
}

int jl_block_signals(struct errmsg *err)
{
    sigset_t set;
    forwarded_signals(&set);
    if (sigprocmask(SIG_BLOCK, &set, NULL))
        return err_set(err, -errno, "sigprocmask: %s", strerror(errno));
    return 0;
}

static void unblock_signals(void)
{
    sigset_t set;
    forwarded_signals(&set);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
}

/* Reads one report; 0 bytes (end of file) leaves r->code at -1. */
static void recv_report(int fd, struct jl_report *r)
{
    memset(r, 0, sizeof(*r));
    r->code = -1;
    size_t got = 0;
    while (got < sizeof(*r)) {
        ssize_t n = recv(fd, (char *)r + got, sizeof(*r) - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    if (got != sizeof(*r)) {
        r->code = got ? JL_EXIT_SUPERVISE : -1;
        if (got)
            snprintf(r->text, sizeof(r->text), "truncated report");
    }
    r->text[sizeof(r->text) - 1] = '\0';
}

static void send_report(int fd, const struct jl_report *r)
{
    for (size_t off = 0; off < sizeof(*r);) {
        ssize_t n = send(fd, (const char *)r + off, sizeof(*r) - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        off += (size_t)n;
    }
}

int jl_daemonize(int *relay, int janitor, struct errmsg *err)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
        return err_set(err, -errno, "socketpair: %s", strerror(errno));
    pid_t p = fork();
    if (p < 0) {
        int e = errno;
        close(sv[0]);
        close(sv[1]);
        return err_set(err, -e, "fork: %s", strerror(e));
    }
    if (p > 0) {
        /* The process the operator started: report how the start went, leave the rest to the daemon. */
        close(sv[1]);
        close(janitor);
        unblock_signals();
        struct jl_report r;
        recv_report(sv[0], &r);
        waitpid(p, NULL, 0);
        if (r.code == -1) {
            jl_print_failure(JL_EXIT_DAEMON, "the detached supervisor ended without reporting");
            exit(JL_EXIT_DAEMON);
        }
        if (r.code)
            jl_print_failure(r.code, r.text);
        exit(r.code);
    }
    /* From here a failure returns with *relay set: the caller undoes what was made and sends the report. */
    close(sv[0]);
    *relay = sv[1];
    if (setsid() < 0)
        return err_set(err, -errno, "setsid: %s", strerror(errno));
    p = fork();
    if (p < 0)
        return err_set(err, -errno, "second fork: %s", strerror(errno));
    if (p > 0)
        exit_now(0); /* the session leader goes; its child can never regain a terminal */
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0 || chdir("/"))
        return err_set(err, -errno, "stdio to /dev/null: %s", strerror(errno));
    if (null > 2)
        close(null);
    return 0;
}

void jl_relay_outcome(int relay, const struct jl_report *r)
{
    send_report(relay, r);
    close(relay);
}

pid_t jl_spawn(int new_pid_ns, int *report, int *report_read, struct errmsg *err)
{
    /* Whatever the VMM leaves behind is reparented here, to be killed and reaped. */
    if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0))
        return err_set(err, -errno, "PR_SET_CHILD_SUBREAPER: %s", strerror(errno));
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
        return err_set(err, -errno, "socketpair: %s", strerror(errno));
    /*
     * With --new-pid-ns only the next child enters the new namespace (as its
     * pid 1); the supervisor then goes back to creating children in its own
     * one, or any later fork of its (a sanitizer's, say) would fail once
     * that pid 1 is gone.
     */
    int own_ns = new_pid_ns ? open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC) : -1;
    if (new_pid_ns && (own_ns < 0 || unshare(CLONE_NEWPID))) {
        err_set(err, -errno, "unshare(CLONE_NEWPID): %s", strerror(errno));
        goto fail;
    }
    pid_t p = fork();
    if (p < 0) {
        err_set(err, -errno, "fork: %s", strerror(errno));
        goto fail;
    }
    if (p == 0) {
        if (own_ns >= 0)
            close(own_ns);
        close(sv[0]);
        *report = sv[1];
        return 0;
    }
    if (own_ns >= 0) {
        if (setns(own_ns, CLONE_NEWPID)) /* harmless if it fails: the supervisor forks no more */
            fprintf(stderr, "ember-jailer: warning: cannot return to the host PID namespace: %s\n", strerror(errno));
        close(own_ns);
    }
    close(sv[1]);
    *report_read = sv[0];
    return p;
fail:
    if (own_ns >= 0)
        close(own_ns);
    close(sv[0]);
    close(sv[1]);
    return -1;
}

int jl_supervisor_gone(int report)
{
    struct pollfd p = {.fd = report, .events = POLLIN | POLLRDHUP};
    return poll(&p, 1, 0) != 0; /* an error counts as gone: better no VM than one nobody cleans up after */
}

void jl_child_fail(int report, int code, const struct errmsg *err)
{
    struct jl_report r = {.code = code};
    snprintf(r.text, sizeof(r.text), "%s", err->text);
    send_report(report, &r);
    exit_now(code);
}

void jl_read_report(int report_read, struct jl_report *r)
{
    recv_report(report_read, r);
    close(report_read);
    if (r->code == -1) /* end of file: execve closed the child's end */
        r->code = 0;
}

/* Kills and reaps every remaining child (the VMM's orphans, reparented to this subreaper). */
static void kill_leftovers(void)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/task/%d/children", (int)getpid());
    for (int round = 0; round < 100; round++) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        char buf[4096];
        ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
        if (fd >= 0)
            close(fd);
        if (n <= 0)
            break;
        buf[n] = '\0';
        for (char *save = NULL, *tok = strtok_r(buf, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save)) {
            pid_t pid = (pid_t)strtol(tok, NULL, 10);
            if (pid > 0) {
                kill(pid, SIGKILL);
                waitpid(pid, NULL, 0);
            }
        }
    }
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
}

int jl_supervise(pid_t child)
{
    sigset_t set;
    forwarded_signals(&set);
    int status = -1;
    while (status < 0) {
        int st;
        pid_t p = waitpid(-1, &st, WNOHANG);
        if (p == child) {
            status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        } else if (p > 0) {
            continue; /* an orphan of the VMM, reparented here */
        } else if (p < 0 && errno == ECHILD) {
            jl_print_failure(JL_EXIT_SUPERVISE, "the jailed process vanished");
            status = JL_EXIT_SUPERVISE;
        } else {
            /* SIGCHLD stays pending while blocked, so none is missed between waitpid and here. */
            siginfo_t si;
            int sig = sigwaitinfo(&set, &si);
            if (sig > 0 && sig != SIGCHLD)
                kill(child, sig);
        }
    }
    kill_leftovers();
    return status;
}
