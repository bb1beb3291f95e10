/*
 * The jailer's process structure. The supervisor (the jailer itself, or with
 * --daemonize its detached grandchild) forks the jailed child, which builds
 * the jail around itself and execs the VMM. The supervisor stays outside,
 * privileged, holding no fd but 0-2 and the janitor's socket (janitor.h),
 * waits for the VMM, then removes the jail directory and cgroups.
 *
 * The child reports a failed step over a close-on-exec pipe: the supervisor
 * reads either one report or, when execve succeeded, end of file.
 */
#ifndef EMBER_JAILER_SUPERVISE_H
#define EMBER_JAILER_SUPERVISE_H

#include <sys/types.h>

#include "core/errmsg.h"
#include "jailer/jailer.h"

/* A step's failure, as the child sends it and as the supervisor relays it. */
struct jl_report {
    int code; /* enum jl_exit; 0: the exec succeeded */
    char text[sizeof(((struct errmsg *)0)->text) + 64];
};

/* Prints "ember-jailer: <step>: <text>" on stderr. */
void jl_print_failure(int code, const char *text);

/*
 * Blocks the signals the supervisor forwards (SIGINT, SIGTERM, SIGHUP,
 * SIGQUIT) and SIGCHLD, so that none is lost before the wait; the child
 * restores the mask before exec.
 */
int jl_block_signals(struct errmsg *err);

/*
 * --daemonize: returns 0 in the detached supervisor (new session, stdio on
 * /dev/null) with *relay the socket on which it must send the outcome
 * (jl_relay_outcome). The calling process never returns: it waits for that
 * outcome and exits with 0 once the VMM runs, or with the failed step's code
 * after printing its message. A failure in between returns -errno, with
 * *relay already set when the outcome must go there. The calling process
 * closes janitor (only the supervisor may hold the janitor's socket).
 */
int jl_daemonize(int *relay, int janitor, struct errmsg *err);

/* Sends the outcome to the process that ran ember-jailer, and closes relay. */
void jl_relay_outcome(int relay, const struct jl_report *r);

/*
 * Forks the jailed child (pid 1 of a new PID namespace with new_pid_ns).
 * Returns the child's pid (as this process sees it) in the supervisor and 0
 * in the child, which gets *report: the write end of the report pipe.
 */
pid_t jl_spawn(int new_pid_ns, int *report, int *report_read, struct errmsg *err);

/* In the child: 1 when the supervisor is gone (end of file on report, on which it never writes). */
int jl_supervisor_gone(int report);

/* In the child: sends the failure to the supervisor and exits with code. */
void jl_child_fail(int report, int code, const struct errmsg *err) __attribute__((noreturn));

/* Reads the child's report: r->code 0 when the exec succeeded. Closes report_read. */
void jl_read_report(int report_read, struct jl_report *r);

/*
 * Waits for child to end, forwarding SIGINT/SIGTERM/SIGHUP/SIGQUIT to it,
 * then kills and reaps whatever it left behind (the supervisor is a child
 * subreaper). Returns the status the jailer exits with: the child's exit
 * code, or 128 + the signal that killed it.
 */
int jl_supervise(pid_t child);

#endif
