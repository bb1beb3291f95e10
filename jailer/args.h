/*
 * ember-jailer's command line: the same flags as Firecracker's jailer (plus
 * --keep-jail), validated completely before anything is created.
 */
#ifndef EMBER_JAILER_ARGS_H
#define EMBER_JAILER_ARGS_H

#include <stdio.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "core/errmsg.h"

#define JL_ID_MAX 64
#define JL_MAX_CGROUPS 32
#define JL_MAX_RLIMITS 8
#define JL_CG_FILE_MAX 64 /* "hugetlb.1GB.limit_in_bytes" fits with room */
#define JL_CG_VALUE_MAX 256
#define JL_DEFAULT_CHROOT_BASE "/srv/jailer"
#define JL_DEFAULT_NOFILE 2048 /* Firecracker's default for no-file */

/* --cgroup FILE=VALUE: file and value as given (the value may hold spaces). */
struct jl_cgroup_arg {
    char file[JL_CG_FILE_MAX];
    char value[JL_CG_VALUE_MAX];
};

/* --resource-limit NAME=VALUE, applied as both soft and hard limit. */
struct jl_rlimit {
    const char *name; /* "no-file", "fsize", ... (static string) */
    int resource;     /* RLIMIT_* */
    rlim_t value;     /* RLIM_INFINITY for "unlimited" */
};

struct jl_args {
    const char *id;
    const char *exec_file;
    char exec_name[256]; /* basename of exec_file: the name inside the jail */
    uid_t uid;
    gid_t gid;
    char chroot_base[1024];  /* absolute, no trailing '/' */
    const char *netns;       /* NULL: stay in the caller's network namespace */
    char parent_cgroup[256]; /* relative path; default exec_name */
    int parent_cgroup_given;
    int cgroup_version; /* 1 (default) or 2 */
    int daemonize, new_pid_ns, keep_jail;
    int help, version;
    struct jl_cgroup_arg cgroups[JL_MAX_CGROUPS];
    size_t n_cgroups;
    struct jl_rlimit rlimits[JL_MAX_RLIMITS]; /* always holds no-file (2048 unless given) */
    size_t n_rlimits;
    char **extra; /* arguments after "--", passed to the exec file */
    int n_extra;
};

/*
 * Parses argv (argv[0] is the program name) into a. Checks everything that
 * can be checked without side effects: the id, numeric uid/gid, that the exec
 * file exists and is a regular executable file, the syntax of every --cgroup
 * and --resource-limit. Returns 0, or -EINVAL with a one-line message.
 * a->help / a->version set means: print and exit 0 (no other checks run).
 */
int jl_parse_args(int argc, char **argv, struct jl_args *a, struct errmsg *err);

/* [A-Za-z0-9-]{1,64}, as Firecracker's jailer requires. */
int jl_valid_id(const char *id);

/* "FILE=VALUE" for --cgroup; 0 or -EINVAL. */
int jl_parse_cgroup(const char *spec, struct jl_cgroup_arg *out, struct errmsg *err);

/* "NAME=VALUE" for --resource-limit; 0 or -EINVAL. */
int jl_parse_rlimit(const char *spec, struct jl_rlimit *out, struct errmsg *err);

void jl_usage(FILE *out);

#endif
