/*
 * The janitor: a process started before the jailer makes anything, in a
 * session of its own and nobody's child in the jailer's tree, so that a
 * SIGKILL of the supervisor (or of its process group) does not take it. It
 * shares with the supervisor the record of what the run made (struct
 * jl_made, in a MAP_SHARED mapping) and holds one end of a socket whose
 * other end only the supervisor holds (close-on-exec: the VMM never has it).
 *
 * A normal end: the supervisor cleans up itself, then sends one byte
 * (jl_janitor_release), and the janitor exits. End of file without that
 * byte: the supervisor died. The janitor then waits (at most
 * JL_JANITOR_WAIT_MS) for the VM's processes to be gone (the VMM dies with
 * its supervisor: PR_SET_PDEATHSIG; anything left in the VM's own cgroups is
 * killed), runs the supervisor's cleanup on the record (jl_made_cleanup), and
 * exits. It holds no fd but that socket and /dev/null on 0-2.
 */
#ifndef EMBER_JAILER_JANITOR_H
#define EMBER_JAILER_JANITOR_H

#include <stddef.h>
#include <sys/types.h>

#include "core/errmsg.h"
#include "jailer/cgroup.h"
#include "jailer/jail.h"

#define JL_JANITOR_WAIT_MS 10000

/*
 * What the run made, as the supervisor records it while making it. Every
 * field is written before the thing it describes can exist (or noted as
 * pending over the syscall that makes it), so the record read after a kill
 * at any instruction is never short of what exists.
 */
struct jl_made {
    int jail_valid;    /* jail holds this run's paths */
    int cgroups_valid; /* cgroups holds the plan (set once complete, before anything is created) */
    int keep;          /* the VMM ran and --keep-jail: nothing is removed */
    pid_t vmm;         /* the jailed child's pid, as the host sees it; 0 before the fork */
    struct jl_jail jail;
    struct jl_cg_plan cgroups;
};

/* A zeroed record in an anonymous MAP_SHARED mapping (shared with the processes forked after). NULL and err. */
struct jl_made *jl_made_map(struct errmsg *err);

/* Removes the cgroups, then the jail directory, the record holds. 0 or the first failure's message. */
int jl_made_cleanup(struct jl_made *m, struct errmsg *err);

/*
 * Starts the janitor on m. Returns the supervisor's end of the socket
 * (close-on-exec), or -errno. Call with nothing made yet; SIGINT, SIGTERM,
 * SIGHUP and SIGQUIT blocked (the janitor keeps them blocked: only SIGKILL
 * ends it early).
 */
int jl_janitor_start(struct jl_made *m, struct errmsg *err);

/* The supervisor has cleaned up (or kept what it must): the janitor exits; waits until it has. Closes fd. */
void jl_janitor_release(int fd);

/* Parses a cgroup.procs text (one pid a line) into pids; returns how many (at most max), or -EINVAL. */
int jl_parse_pids(const char *text, pid_t *pids, size_t max);

#endif
