/*
 * Process-wide steps of the jailer: the clean start, and what the jailed
 * child does to itself before exec (netns, rlimits, privileges).
 */
#ifndef EMBER_JAILER_PRIVS_H
#define EMBER_JAILER_PRIVS_H

#include <stdbool.h>
#include <sys/types.h>

#include "core/errmsg.h"
#include "jailer/args.h"

/* Closes every fd above 2 (close_range), puts /dev/null on a closed 0-2, empties the environment. */
int jl_sanitize(struct errmsg *err);

/* setns(CLONE_NEWNET) into the namespace file at path. */
int jl_join_netns(const char *path, struct errmsg *err);

/* setrlimit (soft = hard) for each limit in a. */
int jl_apply_rlimits(const struct jl_args *a, struct errmsg *err);

/*
 * Empties the capability bounding set (libcap-ng); needs CAP_SETPCAP, so before jl_drop_ids. keep_dac:
 * leave CAP_DAC_OVERRIDE in it (uid 0 only, see jl_drop_caps).
 */
int jl_drop_bounding_set(bool keep_dac, struct errmsg *err);

/* setgroups(0), setresgid(gid), setresuid(uid): no way back to root. */
int jl_drop_ids(uid_t uid, gid_t gid, struct errmsg *err);

/*
 * Clears the effective, permitted, inheritable and ambient sets and checks that none is left. keep_dac
 * (the VMM runs as uid 0, as Kata Containers asks): CAP_DAC_OVERRIDE alone stays, as root's files in the
 * jail include FIFOs Kata makes with mode 0000 that Firecracker, root with every capability, opens.
 */
int jl_drop_caps(bool keep_dac, struct errmsg *err);

/* PR_SET_NO_NEW_PRIVS: nothing the VMM execs can gain privileges. */
int jl_no_new_privs(struct errmsg *err);
/* Denies, with an error, calls no VMM needs (mount, ptrace, module loading, non-Unix sockets, ...). */
int jl_baseline_filter(struct errmsg *err);

#endif
