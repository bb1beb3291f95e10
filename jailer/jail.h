/*
 * The jail directory <base>/<exec name>/<id>/root (Firecracker's layout):
 * made by the jailer on the host side, entered by the jailed child
 * (pivot_root), cleaned by the supervisor when the VM has ended.
 *
 * The operator may prepare <id>/root beforehand (hard links to the kernel and
 * disks, as with Firecracker's jailer). The jailer then removes only what it
 * added (the exec file and its libraries, the pid file, /dev, /run, ...) and
 * gives the root directory its owner and mode back; when it made <id> itself
 * it removes the whole <id> tree. Creating the exec file's copy (O_EXCL) is
 * what keeps a second jailer off a jail that is in use.
 */
#ifndef EMBER_JAILER_JAIL_H
#define EMBER_JAILER_JAIL_H

#include <limits.h>
#include <sys/types.h>

#include "core/errmsg.h"

#define JL_JAIL_MAX_MADE 64

struct jl_jail {
    char path[PATH_MAX]; /* <base>/<exec name>/<id>/root */
    size_t base_len;     /* path[0..base_len) is the chroot base */
    size_t exec_len;     /* path[0..exec_len) is <base>/<exec name> */
    size_t id_len;       /* path[0..id_len) is <base>/<exec name>/<id> */
    /* What this run made, for jl_jail_remove. */
    size_t created_from; /* length of the shortest prefix of <base>/<exec name> made here; 0: none */
    int made_id;         /* <id> and everything below it are this run's */
    int made_root;       /* root (in an <id> the operator made) is this run's */
    size_t pending_len;  /* a level being made (path[0..pending_len)), noted over its mkdir: removed if empty */
    int root_saved;      /* a prepared root's owner and mode, given back at the end */
    uid_t root_uid;
    gid_t root_gid;
    mode_t root_mode;
    size_t n_made; /* in a prepared root: the topmost entries this run created, relative to root */
    char made[JL_JAIL_MAX_MADE][256];
};

/* Fills the paths; touches nothing. 0 or -ENAMETOOLONG. */
int jl_jail_paths(struct jl_jail *j, const char *base, const char *exec_name, const char *id, struct errmsg *err);

/* Makes the missing levels of <base>/<exec name>/<id>/root (0755, root's). */
int jl_jail_create(struct jl_jail *j, struct errmsg *err);

/*
 * Copies exec_file to root/<exec_name> (owned by uid:gid, its mode kept;
 * -EEXIST if it is there: a jail with this id is in use), and, for a
 * dynamically linked file, its interpreter and libraries at their paths
 * under root (root's, read-only).
 */
int jl_jail_copy_exec(struct jl_jail *j, const char *exec_file, const char *exec_name, uid_t uid, gid_t gid,
                      struct errmsg *err);

/*
 * The jail's own entries, owned by uid:gid as with Firecracker's jailer: the
 * root directory, /dev, /dev/net, /run, and the device nodes /dev/kvm,
 * /dev/net/tun, /dev/urandom (0600, the host's major:minor; kvm is required,
 * the other two are skipped if the host lacks them).
 */
int jl_jail_devices(struct jl_jail *j, uid_t uid, gid_t gid, struct errmsg *err);

/* Writes root/<exec_name>.pid: the VMM's pid as the host sees it, like Firecracker's jailer. */
int jl_jail_write_pid(struct jl_jail *j, const char *exec_name, pid_t pid, struct errmsg *err);

/*
 * Removes what this run made (never following a symbolic link nor entering
 * another mount), then the levels of <base>/<exec name> it created, if empty.
 * 0 or the first error.
 */
int jl_jail_remove(struct jl_jail *j, struct errmsg *err);

/*
 * In the jailed child: a new mount namespace, "/" made rslave, <id> bound
 * onto itself, pivot_root into it, the old root detached, then chroot into
 * root (which makes the kernel refuse the VMM user namespaces).
 */
int jl_jail_enter(const struct jl_jail *j, struct errmsg *err);

#endif
