#include "jailer/jail.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "jailer/elfdeps.h"

#define RM_MAX_DEPTH 256 /* deeper trees (made by a hostile VMM) are left, with an error */

int jl_jail_paths(struct jl_jail *j, const char *base, const char *exec_name, const char *id, struct errmsg *err)
{
    memset(j, 0, sizeof(*j));
    int n = snprintf(j->path, sizeof(j->path), "%s/%s/%s/root", base, exec_name, id);
    if (n < 0 || (size_t)n >= sizeof(j->path))
        return err_set(err, -ENAMETOOLONG, "jail path %s/%s/%s/root is too long", base, exec_name, id);
    j->base_len = strlen(base);
    j->exec_len = j->base_len + 1 + strlen(exec_name);
    j->id_len = j->exec_len + 1 + strlen(id);
    return 0;
}

/*
 * mkdir of path[0..len) (0755 whatever the umask): 1 made, 0 already there, or -errno. A missing level is noted
 * as pending over its mkdir (the caller clears it); one that exists is not, so no kill makes it look like ours.
 */
static int mkdir_prefix(struct jl_jail *j, size_t len, struct errmsg *err)
{
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%.*s", (int)len, j->path);
    struct stat st;
    if (lstat(p, &st) == 0)
        return 0;
    j->pending_len = len;
    atomic_signal_fence(memory_order_seq_cst);
    if (mkdir(p, 0755) == 0)
        return chmod(p, 0755) ? err_set(err, -errno, "chmod %s: %s", p, strerror(errno)) : 1;
    if (errno == EEXIST)
        return 0;
    return err_set(err, -errno, "cannot create %s: %s", p, strerror(errno));
}

int jl_jail_create(struct jl_jail *j, struct errmsg *err)
{
    size_t root_len = strlen(j->path);
    /* A concurrent jailer may remove an empty shared level between two mkdirs: start again then. */
    for (int attempt = 0;; attempt++) {
        int rc = 0;
        for (size_t len = 1; len <= root_len && rc >= 0; len++) {
            if (len < root_len && j->path[len] != '/')
                continue;
            /* Pending over the mkdir, cleared once the flags say it: the janitor sees every moment of a kill. */
            rc = mkdir_prefix(j, len, err);
            if (rc == 1 && len <= j->exec_len && !j->created_from)
                j->created_from = len;
            if (rc == 1 && len == j->id_len)
                j->made_id = 1;
            if (rc == 1 && len == root_len && !j->made_id)
                j->made_root = 1;
            atomic_signal_fence(memory_order_seq_cst);
            j->pending_len = 0;
        }
        if (rc >= 0)
            return 0;
        if (rc != -ENOENT || attempt == 5)
            return rc;
    }
}

/*
 * Remembers an entry this run made inside a root the operator prepared,
 * unless it lies inside one already remembered. -ENOSPC when the table is full.
 */
static int note_made(struct jl_jail *j, const char *rel, size_t len, struct errmsg *err)
{
    if (j->made_id || j->made_root)
        return 0;
    for (size_t i = 0; i < j->n_made; i++) {
        size_t l = strlen(j->made[i]);
        if (l < len && strncmp(rel, j->made[i], l) == 0 && rel[l] == '/')
            return 0;
    }
    if (j->n_made == JL_JAIL_MAX_MADE || len >= sizeof(j->made[0]))
        return err_set(err, -ENOSPC, "too many entries added to the prepared jail root (/%.*s)", (int)len, rel);
    snprintf(j->made[j->n_made++], sizeof(j->made[0]), "%.*s", (int)len, rel);
    return 0;
}

/*
 * Opens the directory holding rel's last component, below rootfd, never
 * following a symbolic link. With create, missing directories are made
 * (0755, owned by uid:gid) and noted; *fresh tells whether one was made, so
 * the caller notes the leaf only when it is not inside a new directory.
 */
static int walk(struct jl_jail *j, int rootfd, const char *rel, int create, uid_t uid, gid_t gid, const char **leaf,
                int *fresh, struct errmsg *err)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof(buf), "%s", rel);
    *leaf = rel; /* defined on every return; a walk that gets through points it at the last component */
    *fresh = 0;
    int fd = dup(rootfd);
    if (fd < 0)
        return err_set(err, -errno, "dup: %s", strerror(errno));
    char *comp = buf;
    for (char *slash; (slash = strchr(comp, '/')); comp = slash + 1) {
        *slash = '\0';
        int made = 0;
        if (create) {
            made = mkdirat(fd, comp, 0755) == 0;
            if (!made && errno != EEXIST) {
                int e = errno;
                close(fd);
                return err_set(err, -e, "cannot create /%s in the jail: %s", buf, strerror(e));
            }
        }
        int next = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int e = errno;
        close(fd);
        if (next < 0)
            return err_set(err, -e, "cannot open /%s in the jail: %s", buf, strerror(e));
        fd = next;
        if (made && (fchown(fd, uid, gid) || fchmod(fd, 0755))) {
            e = errno;
            close(fd);
            return err_set(err, -e, "cannot set the owner of /%s in the jail: %s", buf, strerror(e));
        }
        if (made && !*fresh) {
            *fresh = 1;
            if (note_made(j, buf, strlen(buf), err) < 0) {
                close(fd);
                return -ENOSPC;
            }
        }
        *slash = '/';
    }
    *leaf = rel + (comp - buf);
    return fd;
}

/* Copies src to dst: copy_file_range, or read/write where the kernel cannot copy between these files. */
static int copy_fd(int src, int dst)
{
    for (;;) {
        ssize_t n = copy_file_range(src, NULL, dst, NULL, 1 << 30, 0);
        if (n == 0)
            return 0;
        if (n > 0)
            continue;
        if (errno == EINTR)
            continue;
        if (errno != EXDEV && errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
            return -errno;
        break;
    }
    char buf[1 << 16];
    for (;;) {
        ssize_t n = read(src, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : 0;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(dst, buf + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                return w < 0 ? -errno : -EIO;
            off += w;
        }
    }
}

/* Copies the file at src (opened with src_flags) to a new file name under dirfd, with owner and mode. */
static int copy_into(const char *src, int src_flags, int dirfd, const char *name, uid_t uid, gid_t gid, mode_t mode,
                     struct errmsg *err)
{
    int in = open(src, O_RDONLY | O_CLOEXEC | src_flags);
    if (in < 0)
        return err_set(err, -errno, "cannot open %s: %s", src, strerror(errno));
    struct stat st;
    if (fstat(in, &st) || !S_ISREG(st.st_mode)) {
        close(in);
        return err_set(err, -EINVAL, "%s is not a regular file", src);
    }
    int out = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (out < 0) {
        int e = errno;
        close(in);
        return err_set(err, -e, "cannot create /%s in the jail: %s%s", name, strerror(e),
                       e == EEXIST ? " (a VM with this id is running, or its jail was kept)" : "");
    }
    int rc = copy_fd(in, out);
    if (!rc && (fchown(out, uid, gid) || fchmod(out, mode == (mode_t)-1 ? (st.st_mode & 0755) : mode)))
        rc = -errno;
    if (close(out) && !rc)
        rc = -errno;
    close(in);
    return rc ? err_set(err, rc, "cannot copy %s into the jail: %s", src, strerror(-rc)) : 1;
}

/* Copies src to rel below rootfd (making directories, noting what is new). */
static int copy_to(struct jl_jail *j, int rootfd, const char *src, int src_flags, const char *rel, uid_t uid, gid_t gid,
                   mode_t mode, struct errmsg *err)
{
    const char *leaf;
    int fresh;
    int dirfd = walk(j, rootfd, rel, 1, 0, 0, &leaf, &fresh, err);
    if (dirfd < 0)
        return dirfd;
    int rc = copy_into(src, src_flags, dirfd, leaf, uid, gid, mode, err);
    if (rc == 1 && !fresh && (rc = note_made(j, rel, strlen(rel), err)))
        unlinkat(dirfd, leaf, 0); /* not remembered: not kept */
    close(dirfd);
    return rc < 0 ? rc : 0;
}

static int open_root(const struct jl_jail *j, struct errmsg *err)
{
    int fd = open(j->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    return fd < 0 ? err_set(err, -errno, "cannot open %s: %s", j->path, strerror(errno)) : fd;
}

int jl_jail_copy_exec(struct jl_jail *j, const char *exec_file, const char *exec_name, uid_t uid, gid_t gid,
                      struct errmsg *err)
{
    int rootfd = open_root(j, err);
    if (rootfd < 0)
        return rootfd;
    /* Like Firecracker: a copy, not a link (no text pages shared between VMMs), opened without following links. */
    int rc = copy_to(j, rootfd, exec_file, O_NOFOLLOW, exec_name, uid, gid, (mode_t)-1, err);
    if (rc == -EEXIST) /* say which file is in the way and what to remove when it is a killed jailer's */
        err_set(err, rc,
                "%s/%s exists: a VM with this id is running, or its jail was kept, or its jailer was killed; "
                "if no VM with this id runs, remove %.*s (what the jailer made) and the id's cgroups",
                j->path, exec_name, (int)j->id_len, j->path);
    struct jl_elf_deps *deps = rc ? NULL : malloc(sizeof(*deps));
    if (!rc && !deps)
        rc = err_set(err, -ENOMEM, "out of memory");
    if (!rc)
        rc = jl_elf_deps(exec_file, deps, err);
    /* Each library at the path the loader will look for it; root's and read-only, unlike the exec file. */
    for (size_t i = 0; !rc && deps && i < deps->n; i++)
        rc = copy_to(j, rootfd, deps->path[i], 0, deps->path[i] + strspn(deps->path[i], "/"), 0, 0, 0555, err);
    free(deps);
    close(rootfd);
    return rc;
}

static int make_node(struct jl_jail *j, int rootfd, const char *rel, dev_t dev, uid_t uid, gid_t gid,
                     struct errmsg *err)
{
    const char *leaf;
    int fresh;
    int dirfd = walk(j, rootfd, rel, 1, uid, gid, &leaf, &fresh, err);
    if (dirfd < 0)
        return dirfd;
    int rc = 0;
    if (mknodat(dirfd, leaf, S_IFCHR | 0600, dev))
        rc = err_set(err, -errno, "mknod /%s (%u:%u): %s", rel, major(dev), minor(dev), strerror(errno));
    else if (!fresh && (rc = note_made(j, rel, strlen(rel), err)))
        unlinkat(dirfd, leaf, 0);
    /* Just made by root in a directory no jailed process runs in: nothing can have swapped it. */
    if (!rc && (fchownat(dirfd, leaf, uid, gid, AT_SYMLINK_NOFOLLOW) || fchmodat(dirfd, leaf, 0600, 0)))
        rc = err_set(err, -errno, "chown /%s: %s", rel, strerror(errno));
    close(dirfd);
    return rc;
}

int jl_jail_devices(struct jl_jail *j, uid_t uid, gid_t gid, struct errmsg *err)
{
    struct stat kvm, tun, urandom;
    if (stat("/dev/kvm", &kvm) || !S_ISCHR(kvm.st_mode))
        return err_set(err, -ENODEV, "the host has no /dev/kvm character device");
    int have_tun = stat("/dev/net/tun", &tun) == 0 && S_ISCHR(tun.st_mode);
    int have_urandom = stat("/dev/urandom", &urandom) == 0 && S_ISCHR(urandom.st_mode);

    int rootfd = open_root(j, err);
    if (rootfd < 0)
        return rootfd;
    struct stat st;
    int rc = fstat(rootfd, &st) ? -errno : 0;
    if (!rc && !j->made_id && !j->made_root) {
        j->root_uid = st.st_uid;
        j->root_gid = st.st_gid;
        j->root_mode = st.st_mode & 07777;
        j->root_saved = 1;
    }
    if (!rc && fchown(rootfd, uid, gid))
        rc = -errno;
    if (rc)
        rc = err_set(err, rc, "cannot give %s to %u:%u: %s", j->path, (unsigned)uid, (unsigned)gid, strerror(-rc));
    const char *leaf;
    int fresh;
    /* /run (for the API socket) and /dev/net; walk() makes every directory before the last '/'. */
    static const char *const dirs[] = {"run/", "dev/net/"};
    for (int i = 0; !rc && i < 2; i++) {
        int fd = walk(j, rootfd, dirs[i], 1, uid, gid, &leaf, &fresh, err);
        rc = fd < 0 ? fd : close(fd);
    }
    if (!rc)
        rc = make_node(j, rootfd, "dev/kvm", kvm.st_rdev, uid, gid, err);
    if (!rc && have_tun)
        rc = make_node(j, rootfd, "dev/net/tun", tun.st_rdev, uid, gid, err);
    if (!rc && have_urandom)
        rc = make_node(j, rootfd, "dev/urandom", urandom.st_rdev, uid, gid, err);
    close(rootfd);
    return rc;
}

int jl_jail_write_pid(struct jl_jail *j, const char *exec_name, pid_t pid, struct errmsg *err)
{
    int rootfd = open_root(j, err);
    if (rootfd < 0)
        return rootfd;
    char name[300];
    snprintf(name, sizeof(name), "%s.pid", exec_name);
    int fd = openat(rootfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    int rc = fd < 0 ? -errno : 0;
    if (!rc) {
        if ((rc = note_made(j, name, strlen(name), err)))
            unlinkat(rootfd, name, 0);
        char s[24];
        int n = snprintf(s, sizeof(s), "%d\n", (int)pid);
        if (!rc && write(fd, s, (size_t)n) != n)
            rc = err_set(err, -EIO, "cannot write %s/%s", j->path, name);
        close(fd);
    } else {
        err_set(err, rc, "cannot create %s/%s: %s", j->path, name, strerror(-rc));
    }
    close(rootfd);
    return rc;
}

/* Removes name under dirfd, never following a symbolic link nor entering another mount. */
static int rm_at(int dirfd, const char *name, unsigned long long mnt_id, int depth)
{
    struct statx stx;
    if (statx(dirfd, name, AT_SYMLINK_NOFOLLOW, STATX_TYPE | STATX_MNT_ID, &stx))
        return errno == ENOENT ? 0 : -errno;
    if (!S_ISDIR(stx.stx_mode))
        return unlinkat(dirfd, name, 0) && errno != ENOENT ? -errno : 0;
    if ((stx.stx_mask & STATX_MNT_ID) && stx.stx_mnt_id != mnt_id)
        return -EXDEV;
    if (depth > RM_MAX_DEPTH)
        return -ELOOP;
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return -errno;
    }
    int first = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        int rc = rm_at(fd, e->d_name, mnt_id, depth + 1);
        if (rc && !first)
            first = rc;
    }
    closedir(d);
    if (first)
        return first;
    return unlinkat(dirfd, name, AT_REMOVEDIR) && errno != ENOENT ? -errno : 0;
}

/* Removes name below dirfd (its directory's mount id in mnt_id), with a message. */
static int remove_entry(int dirfd, const char *shown, const char *name, unsigned long long mnt_id, struct errmsg *err)
{
    int rc = rm_at(dirfd, name, mnt_id, 0);
    if (rc)
        return err_set(err, rc, "cannot remove %s: %s%s", shown, strerror(-rc),
                       rc == -EXDEV ? " (a mount point inside the jail)" : "");
    return 0;
}

static unsigned long long mount_id(int fd)
{
    struct statx stx;
    if (statx(fd, "", AT_EMPTY_PATH, STATX_MNT_ID, &stx) || !(stx.stx_mask & STATX_MNT_ID))
        return 0;
    return stx.stx_mnt_id;
}

int jl_jail_remove(struct jl_jail *j, struct errmsg *err)
{
    int first = 0;
    if (j->pending_len) {
        /* A kill during that mkdir (janitor): the level goes if it is there and empty, as an empty shared one. */
        char p[PATH_MAX];
        snprintf(p, sizeof(p), "%.*s", (int)j->pending_len, j->path);
        rmdir(p);
        j->pending_len = 0;
    }
    if (j->made_id || j->made_root) {
        /* Everything from <id> (or root) down is this run's. */
        size_t parent_len = j->made_id ? j->exec_len : j->id_len;
        char parent[PATH_MAX];
        snprintf(parent, sizeof(parent), "%.*s", (int)parent_len, j->path);
        const char *name = j->made_id ? j->path + j->exec_len + 1 : "root";
        char name_buf[PATH_MAX];
        snprintf(name_buf, sizeof(name_buf), "%.*s", (int)strcspn(name, "/"), name);
        int pfd = open(parent, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        first = pfd < 0 ? err_set(err, -errno, "cannot open %s: %s", parent, strerror(errno))
                        : remove_entry(pfd, j->path, name_buf, mount_id(pfd), err);
        if (pfd >= 0)
            close(pfd);
        if (!first)
            j->made_id = j->made_root = 0;
    } else if (j->n_made || j->root_saved) {
        /* A root the operator prepared: only what this run added goes, newest first; the owner comes back. */
        int rootfd = open_root(j, err);
        if (rootfd < 0)
            return rootfd;
        unsigned long long mnt = mount_id(rootfd);
        while (!first && j->n_made > 0) {
            const char *rel = j->made[j->n_made - 1], *leaf;
            int fresh;
            int dirfd = walk(j, rootfd, rel, 0, 0, 0, &leaf, &fresh, err);
            first = dirfd < 0 ? dirfd : remove_entry(dirfd, rel, leaf, mnt, err);
            if (dirfd >= 0)
                close(dirfd);
            j->n_made -= !first;
        }
        if (!first && j->root_saved) {
            if (fchown(rootfd, j->root_uid, j->root_gid) || fchmod(rootfd, j->root_mode))
                first = err_set(err, -errno, "cannot give %s its owner back: %s", j->path, strerror(errno));
            else
                j->root_saved = 0;
        }
        close(rootfd);
    }
    /* The shared levels this run created, deepest first, while empty (another jail may use them). */
    for (size_t len = j->exec_len; !first && j->created_from && len >= j->created_from; len--) {
        if (len < j->exec_len && j->path[len] != '/')
            continue;
        char p[PATH_MAX];
        snprintf(p, sizeof(p), "%.*s", (int)len, j->path);
        if (rmdir(p) && errno != ENOENT)
            break;
        if (len == j->created_from)
            j->created_from = 0;
    }
    return first;
}

int jl_jail_enter(const struct jl_jail *j, struct errmsg *err)
{
    char id_dir[PATH_MAX];
    snprintf(id_dir, sizeof(id_dir), "%.*s", (int)j->id_len, j->path);
    if (unshare(CLONE_NEWNS))
        return err_set(err, -errno, "unshare(CLONE_NEWNS): %s", strerror(errno));
    /* Nothing this namespace mounts or unmounts may propagate back to the host. */
    if (mount(NULL, "/", NULL, MS_SLAVE | MS_REC, NULL))
        return err_set(err, -errno, "making / rslave: %s", strerror(errno));
    /*
     * The new root is <id>, bound onto itself; the process root is then
     * <id>/root. That the two differ is what the kernel calls chrooted, and a
     * chrooted process may not create user namespaces (create_user_ns), the
     * door to every namespace and mount a VMM could otherwise make.
     */
    if (mount(id_dir, id_dir, NULL, MS_BIND | MS_REC, NULL))
        return err_set(err, -errno, "bind-mounting %s onto itself: %s", id_dir, strerror(errno));
    if (chdir(id_dir))
        return err_set(err, -errno, "chdir %s: %s", id_dir, strerror(errno));
    /* pivot_root(".", ".") stacks the old root on the new one; detaching it leaves only the jail. */
    if (syscall(SYS_pivot_root, ".", "."))
        return err_set(err, -errno, "pivot_root into %s: %s", id_dir, strerror(errno));
    if (umount2(".", MNT_DETACH))
        return err_set(err, -errno, "detaching the old root: %s", strerror(errno));
    if (chroot("/root") || chdir("/"))
        return err_set(err, -errno, "chroot into %s: %s", j->path, strerror(errno));
    return 0;
}
