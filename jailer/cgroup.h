/*
 * The jail's cgroups. A plan is built from the arguments and the mount table
 * without touching the system (unit-tested), then created, joined by the
 * jailed child, and removed by the supervisor when the VM has ended.
 *
 * v1: one cgroup <mount of the controller>/<parent>/<id> per controller named
 *     by a --cgroup file (cpu.cfs_quota_us -> the cpu hierarchy); the pid goes
 *     to "tasks". A few cgroup v2 names are mapped to their v1 files
 *     (cpu.max, cpu.weight, memory.max, hugetlb.<size>.max).
 * v2: one cgroup <cgroup2 mount>/<parent>/<id>; each controller named by a
 *     --cgroup file is enabled in cgroup.subtree_control from the root down to
 *     the parent; the pid goes to "cgroup.procs".
 */
#ifndef EMBER_JAILER_CGROUP_H
#define EMBER_JAILER_CGROUP_H

#include <sys/types.h>

#include "core/errmsg.h"
#include "jailer/args.h"

#define JL_CG_MAX_DIRS 12
#define JL_CG_MAX_WRITES (2 * JL_MAX_CGROUPS)
#define JL_CG_NAME_MAX 32
#define JL_CG_PATH_MAX 1024

struct jl_cg_dir {
    char controller[JL_CG_NAME_MAX]; /* v1: the hierarchy's controller; v2: "" */
    char mount[JL_CG_PATH_MAX];      /* where the hierarchy is mounted */
    char path[JL_CG_PATH_MAX];       /* <mount>/<parent>/<id> (v2 attach-only: <mount>/<parent>) */
    int levels;                      /* path components below the mount: parent's + 1 for the id */
    int created_from, created_to;    /* levels this run created (-1: none); 0 is the first below the mount */
    int pending; /* the level being made (-1: none): a kill may land between its mkdir and created_to */
};

struct jl_cg_write {
    int dir; /* index into dirs */
    char file[JL_CG_FILE_MAX];
    char value[JL_CG_VALUE_MAX];
};

struct jl_cg_plan {
    int version;
    int attach_only; /* v2 with --parent-cgroup and no --cgroup: join the existing parent, create nothing */
    size_t n_dirs;
    struct jl_cg_dir dirs[JL_CG_MAX_DIRS];
    size_t n_writes;
    struct jl_cg_write writes[JL_CG_MAX_WRITES];
    size_t n_enable; /* v2: controllers to enable in cgroup.subtree_control */
    char enable[JL_MAX_CGROUPS][JL_CG_NAME_MAX];
    /* v2, at run time: where this run switched a controller on in a cgroup it did not create (undone at the end). */
    size_t n_enabled;
    struct {
        char dir[JL_CG_PATH_MAX];
        char controller[JL_CG_NAME_MAX];
    } enabled[JL_CG_MAX_DIRS];
};

/* The controller a cgroup file belongs to: the part before the first '.'. */
int jl_cg_controller(const char *file, char *out, size_t max);

/*
 * For cgroup v1: the file(s) and value(s) a --cgroup FILE=VALUE becomes. v1
 * names pass through; cpu.max "QUOTA [PERIOD]" becomes cpu.cfs_period_us then
 * cpu.cfs_quota_us ("max" -> -1); cpu.weight W becomes cpu.shares W*1024/100;
 * memory.max becomes memory.limit_in_bytes ("max" -> -1); hugetlb.SIZE.max
 * becomes hugetlb.SIZE.limit_in_bytes. Returns how many writes (1 or 2) were
 * stored in out, or -EINVAL.
 */
int jl_cg_v1_map(const char *file, const char *value, struct jl_cg_write out[2], struct errmsg *err);

/*
 * Finds in mounts (the text of /proc/self/mounts) the mount point of the v1
 * hierarchy carrying controller (version 1) or of the cgroup2 hierarchy
 * (version 2, controller ignored). 0, or -ENOENT.
 */
int jl_cg_find_mount(const char *mounts, int version, const char *controller, char *out, size_t max);

/* Builds the plan; touches nothing. 0 or -EINVAL/-ENOENT with a message. */
int jl_cg_plan_build(struct jl_cg_plan *p, const struct jl_args *a, const char *mounts, struct errmsg *err);

/* Creates the cgroups and writes the values. On failure, removes what it created. */
int jl_cg_create(struct jl_cg_plan *p, struct errmsg *err);

/* Moves pid (as seen by the caller) into every cgroup of the plan. */
int jl_cg_attach(const struct jl_cg_plan *p, pid_t pid, struct errmsg *err);

/*
 * Removes every cgroup directory this run created (leaf first), then switches
 * off the controllers it switched on above them, unless a cgroup below still
 * uses them (the kernel refuses then, and they stay). 0 or the first error.
 */
int jl_cg_remove(struct jl_cg_plan *p, struct errmsg *err);

#endif
