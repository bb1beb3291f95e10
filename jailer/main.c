/*
 * ember-jailer: starts a VMM (ember) inside a jail, Firecracker's jailer's
 * way (same arguments, same <base>/<exec name>/<id>/root layout), and leaves
 * no trace when the VM ends. docs/jailer.md describes every step.
 *
 * One linear sequence. The jailer itself (the supervisor) makes what lives on
 * the host: the jail directory, the copy of the exec file, the device nodes,
 * the cgroups. It forks the jailed child, which turns itself into the jailed
 * process (netns, rlimits, cgroups, mount namespace and pivot_root, uid/gid,
 * capabilities, no_new_privs) and execs the copy. The supervisor stays
 * outside with its privileges and no fd but 0-2 and the janitor's socket,
 * waits for the VMM, and then removes the jail directory and the cgroups
 * (unless --keep-jail). The janitor (janitor.h), started before anything is
 * made, does that cleanup instead if the supervisor is killed.
 *
 * A failing step prints "ember-jailer: <step>: <what>" and exits with the
 * step's code (jailer.h); whatever the run created is removed first.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "core/version.h"
#include "jailer/args.h"
#include "jailer/cgroup.h"
#include "jailer/jail.h"
#include "jailer/jailer.h"
#include "jailer/janitor.h"
#include "jailer/privs.h"
#include "jailer/supervise.h"

static struct jl_args args; /* static: large */
/* What this run made on the host, for the cleanup: shared with the janitor, which cleans if we are killed. */
static struct jl_made *made;
static int janitor = -1; /* our end of the janitor's socket */
static int relay = -1;   /* --daemonize: where the outcome goes (else: our own stderr) */

/* Removes the jail directory and cgroups this run created. 0, or the first failure's message in err. */
static int cleanup(struct errmsg *err) { return made ? jl_made_cleanup(made, err) : 0; }

/* A failed step in the supervisor: undo, report (here, or to the process the operator started), exit. */
static void __attribute__((noreturn)) fail_text(int code, const char *text)
{
    struct jl_report r = {.code = code};
    snprintf(r.text, sizeof(r.text), "%s", text);
    struct errmsg cerr;
    if (cleanup(&cerr))
        snprintf(r.text + strlen(r.text), sizeof(r.text) - strlen(r.text), " (and cleanup failed: %s)", cerr.text);
    jl_janitor_release(janitor);
    if (relay >= 0)
        jl_relay_outcome(relay, &r);
    else
        jl_print_failure(code, r.text);
    exit(code);
}

static void __attribute__((noreturn)) fail(int code, const struct errmsg *err) { fail_text(code, err->text); }

static char *read_mounts(void)
{
    FILE *f = fopen("/proc/self/mounts", "re");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    char chunk[4096];
    size_t n;
    while (out && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        fwrite(chunk, 1, n, out);
    fclose(f);
    if (out)
        fclose(out);
    return buf;
}

/*
 * The jailed child: becomes the jailed process and execs the VMM. Never
 * returns; a failing step is reported to the supervisor over `report`.
 */
static void __attribute__((noreturn)) run_child(int report, const sigset_t *orig_mask, pid_t supervisor)
{
    struct errmsg err;
    /* Dies with the supervisor from here on; the report socket's end of file says if it died before this. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) || jl_supervisor_gone(report)) {
        err_set(&err, -ESRCH, "the supervisor is gone");
        jl_child_fail(report, JL_EXIT_PIDNS, &err);
    }
    close(janitor);
    if (relay >= 0)
        close(relay);
    sigprocmask(SIG_SETMASK, orig_mask, NULL);
    /* A session of its own: no controlling terminal to push input into (TIOCSTI) or to signal. */
    if (setsid() < 0) {
        err_set(&err, -errno, "setsid: %s", strerror(errno));
        jl_child_fail(report, JL_EXIT_PIDNS, &err);
    }

    if (args.netns && jl_join_netns(args.netns, &err))
        jl_child_fail(report, JL_EXIT_NETNS, &err);
    if (jl_apply_rlimits(&args, &err))
        jl_child_fail(report, JL_EXIT_RLIMITS, &err);
    if (jl_cg_attach(&made->cgroups, getpid(), &err))
        jl_child_fail(report, JL_EXIT_CGROUPS, &err);
    if (jl_jail_enter(&made->jail, &err))
        jl_child_fail(report, JL_EXIT_MOUNTNS, &err);
    if (jl_drop_bounding_set(args.uid == 0, &err))
        jl_child_fail(report, JL_EXIT_CAPS, &err);
    if (jl_drop_ids(args.uid, args.gid, &err))
        jl_child_fail(report, JL_EXIT_IDS, &err);
    if (jl_drop_caps(args.uid == 0, &err))
        jl_child_fail(report, JL_EXIT_CAPS, &err);
    if (jl_no_new_privs(&err) || jl_baseline_filter(&err))
        jl_child_fail(report, JL_EXIT_NNP, &err);
    /* The VM does not outlive its supervisor (set after the uid change, which clears it). */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) || (!args.new_pid_ns && getppid() != supervisor) ||
        jl_supervisor_gone(report)) {
        err_set(&err, -ESRCH, "the supervisor is gone");
        jl_child_fail(report, JL_EXIT_EXEC, &err);
    }

    /* argv: /<exec name> --id <id> [arguments after --]; an empty environment. */
    char path[sizeof(args.exec_name) + 1];
    snprintf(path, sizeof(path), "/%s", args.exec_name);
    char **argv = calloc((size_t)args.n_extra + 4, sizeof(*argv));
    if (!argv) {
        err_set(&err, -ENOMEM, "out of memory");
        jl_child_fail(report, JL_EXIT_EXEC, &err);
    }
    argv[0] = args.exec_name;
    argv[1] = "--id";
    argv[2] = (char *)args.id;
    for (int i = 0; i < args.n_extra; i++)
        argv[3 + i] = args.extra[i];
    char *envp[] = {NULL};
    execve(path, argv, envp);
    err_set(&err, -errno, "execve %s in the jail: %s", path, strerror(errno));
    jl_child_fail(report, JL_EXIT_EXEC, &err);
}

int main(int argc, char **argv)
{
    struct errmsg err = {{0}};

    /* 1. Arguments: everything checkable is checked before anything is made. */
    if (jl_parse_args(argc, argv, &args, &err)) {
        jl_print_failure(JL_EXIT_ARGS, err.text);
        return JL_EXIT_ARGS;
    }
    if (args.help || args.version) {
        if (args.help)
            jl_usage(stdout);
        else
            printf("ember-jailer v%s\n\nember %s, taking the Firecracker v%s jailer's arguments\n",
                   EMBER_FIRECRACKER_API_VERSION, EMBER_VERSION_STRING, EMBER_FIRECRACKER_API_VERSION);
        return 0;
    }
    if (geteuid() != 0) {
        err_set(&err, -EPERM, "ember-jailer must run as root");
        jl_print_failure(JL_EXIT_ARGS, err.text);
        return JL_EXIT_ARGS;
    }

    /* 2. A clean start: no inherited fd above 2, no environment, no lost signal. */
    sigset_t orig_mask;
    sigprocmask(SIG_SETMASK, NULL, &orig_mask);
    if (jl_sanitize(&err) || jl_block_signals(&err))
        fail(JL_EXIT_SANITIZE, &err);

    /* The janitor, before anything is made: it cleans up if this process is killed from here on. */
    made = jl_made_map(&err);
    if (!made || (janitor = jl_janitor_start(made, &err)) < 0)
        fail(JL_EXIT_PIDNS, &err);
    struct jl_jail *jail = &made->jail;

    /* 3. The host side: the jail directory, the exec file's copy, the device nodes, the cgroups. */
    if (jl_jail_paths(jail, args.chroot_base, args.exec_name, args.id, &err))
        fail(JL_EXIT_JAILDIR, &err);
    made->jail_valid = 1;
    if (jl_jail_create(jail, &err))
        fail(JL_EXIT_JAILDIR, &err);
    if (jl_jail_copy_exec(jail, args.exec_file, args.exec_name, args.uid, args.gid, &err))
        fail(JL_EXIT_COPY, &err);
    if (jl_jail_devices(jail, args.uid, args.gid, &err))
        fail(JL_EXIT_DEVICES, &err);
    char *mounts = read_mounts();
    if (!mounts) {
        err_set(&err, -errno, "cannot read /proc/self/mounts: %s", strerror(errno));
        fail(JL_EXIT_CGROUPS, &err);
    }
    int rc = jl_cg_plan_build(&made->cgroups, &args, mounts, &err);
    free(mounts);
    if (rc)
        fail(JL_EXIT_CGROUPS, &err);
    made->cgroups_valid = 1; /* complete before anything is created */
    if (jl_cg_create(&made->cgroups, &err))
        fail(JL_EXIT_CGROUPS, &err);

    /* 4. --daemonize: from here on the supervisor is a detached grandchild. */
    if (args.daemonize && jl_daemonize(&relay, janitor, &err))
        fail(JL_EXIT_DAEMON, &err);

    /* 5. The jailed child (pid 1 of a new PID namespace with --new-pid-ns) builds the jail and execs. */
    pid_t supervisor = getpid();
    int report = -1, report_read = -1;
    pid_t child = jl_spawn(args.new_pid_ns, &report, &report_read, &err);
    if (child < 0)
        fail(JL_EXIT_PIDNS, &err);
    if (child == 0)
        run_child(report, &orig_mask, supervisor);
    made->vmm = child;

    /* 6. Supervise: the pid file, the child's outcome, the VM's life, then no trace. */
    struct jl_report outcome;
    if (jl_jail_write_pid(jail, args.exec_name, child, &err)) {
        kill(child, SIGKILL);
        jl_read_report(report_read, &outcome);
        jl_supervise(child);
        made->vmm = 0; /* reaped: its pid may be reused */
        fail(JL_EXIT_JAILDIR, &err);
    }
    jl_read_report(report_read, &outcome);
    if (outcome.code) {
        jl_supervise(child);
        made->vmm = 0; /* reaped: its pid may be reused */
        fail_text(outcome.code, outcome.text);
    }
    made->keep = args.keep_jail; /* the VMM runs: --keep-jail now applies, for the janitor too */
    if (relay >= 0) {
        jl_relay_outcome(relay, &outcome);
        relay = -1;
    }
    int status = jl_supervise(child);
    made->vmm = 0; /* reaped: its pid may be reused */
    if (!args.keep_jail && cleanup(&err)) {
        jl_janitor_release(janitor); /* it would fail the same way */
        snprintf(err.text + strlen(err.text), sizeof(err.text) - strlen(err.text), " (the VMM exited with %d)", status);
        jl_print_failure(JL_EXIT_CLEANUP, err.text);
        return JL_EXIT_CLEANUP;
    }
    jl_janitor_release(janitor);
    return status;
}
