#include "jailer/cgroup.h"

#include <ctype.h>
#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int jl_cg_controller(const char *file, char *out, size_t max)
{
    const char *dot = strchr(file, '.');
    size_t n = dot ? (size_t)(dot - file) : 0;
    if (n == 0 || n >= max)
        return -EINVAL;
    memcpy(out, file, n);
    out[n] = '\0';
    return 0;
}

static int all_digits(const char *s, size_t n)
{
    if (n == 0 || n > 19)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return 0;
    return 1;
}

static void set_write(struct jl_cg_write *w, const char *file, const char *value)
{
    snprintf(w->file, sizeof(w->file), "%s", file);
    snprintf(w->value, sizeof(w->value), "%s", value);
}

int jl_cg_v1_map(const char *file, const char *value, struct jl_cg_write out[2], struct errmsg *err)
{
    size_t flen = strlen(file);
    if (strcmp(file, "cpu.max") == 0) {
        /* "QUOTA [PERIOD]", QUOTA a number or "max". The period goes first: the kernel checks the quota against it. */
        const char *sp = strchr(value, ' ');
        size_t qlen = sp ? (size_t)(sp - value) : strlen(value);
        const char *period = sp ? sp + 1 : NULL;
        int quota_max = qlen == 3 && strncmp(value, "max", 3) == 0;
        if (!(quota_max || all_digits(value, qlen)) || (period && !all_digits(period, strlen(period))))
            return err_set(err, -EINVAL,
                           "--cgroup cpu.max='%s': must be \"QUOTA [PERIOD]\" in microseconds, QUOTA may be max",
                           value);
        int n = 0;
        if (period)
            set_write(&out[n++], "cpu.cfs_period_us", period);
        char q[32];
        snprintf(q, sizeof(q), "%.*s", (int)qlen, value);
        set_write(&out[n++], "cpu.cfs_quota_us", quota_max ? "-1" : q);
        return n;
    }
    if (strcmp(file, "cpu.weight") == 0) {
        long weight = all_digits(value, strlen(value)) ? strtol(value, NULL, 10) : 0; /* LONG_MAX on overflow */
        if (weight < 1 || weight > 10000)
            return err_set(err, -EINVAL, "--cgroup cpu.weight='%s': must be 1 to 10000", value);
        char shares[32]; /* v1's default 1024 is v2's default 100; cpu.shares is at least 2 */
        snprintf(shares, sizeof(shares), "%ld", weight * 1024 / 100 < 2 ? 2 : weight * 1024 / 100);
        set_write(&out[0], "cpu.shares", shares);
        return 1;
    }
    if (strcmp(file, "memory.max") == 0) {
        set_write(&out[0], "memory.limit_in_bytes", strcmp(value, "max") == 0 ? "-1" : value);
        return 1;
    }
    if (strncmp(file, "hugetlb.", 8) == 0 && flen > 12 && strcmp(file + flen - 4, ".max") == 0) {
        char f[JL_CG_FILE_MAX];
        snprintf(f, sizeof(f), "%.*slimit_in_bytes", (int)(flen - 3), file);
        set_write(&out[0], f, strcmp(value, "max") == 0 ? "-1" : value);
        return 1;
    }
    set_write(&out[0], file, value);
    return 1;
}

/* Copies a /proc/mounts field, undoing the kernel's octal escapes (\040 for a space). */
static const char *mount_field(const char *p, char *out, size_t max)
{
    size_t n = 0;
    while (*p == ' ')
        p++;
    while (*p && *p != ' ' && *p != '\n') {
        char c = *p++;
        if (c == '\\' && p[0] >= '0' && p[0] <= '7' && p[1] >= '0' && p[1] <= '7' && p[2] >= '0' && p[2] <= '7') {
            c = (char)((p[0] - '0') * 64 + (p[1] - '0') * 8 + (p[2] - '0'));
            p += 3;
        }
        if (n + 1 < max)
            out[n++] = c;
    }
    out[n] = '\0';
    return p;
}

static int has_option(const char *opts, const char *want)
{
    size_t wl = strlen(want);
    for (const char *o = opts; *o;) {
        const char *end = strchr(o, ',');
        size_t l = end ? (size_t)(end - o) : strlen(o);
        if (l == wl && strncmp(o, want, wl) == 0)
            return 1;
        o += l + (end ? 1 : 0);
    }
    return 0;
}

/* The kernel's v1 controllers: a mount option that is not one of them (rw, nosuid, ...) names none. */
static int is_v1_controller(const char *name)
{
    static const char *const known[] = {"cpu",      "cpuacct", "cpuset",  "memory", "devices", "freezer", "net_cls",
                                        "net_prio", "blkio",   "hugetlb", "pids",   "rdma",    "misc",    "perf_event"};
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (strcmp(name, known[i]) == 0)
            return 1;
    return 0;
}

int jl_cg_find_mount(const char *mounts, int version, const char *controller, char *out, size_t max)
{
    if (version == 1 && !is_v1_controller(controller))
        return -ENOENT;
    for (const char *line = mounts; line && *line;) {
        char dev[64], mnt[JL_CG_PATH_MAX], type[32], opts[512];
        const char *p = mount_field(line, dev, sizeof(dev));
        p = mount_field(p, mnt, sizeof(mnt));
        p = mount_field(p, type, sizeof(type));
        mount_field(p, opts, sizeof(opts));
        int match = version == 2 ? strcmp(type, "cgroup2") == 0
                                 : strcmp(type, "cgroup") == 0 && has_option(opts, controller);
        if (match && strlen(mnt) < max) {
            strcpy(out, mnt);
            return 0;
        }
        line = strchr(line, '\n');
        line = line ? line + 1 : NULL;
    }
    return -ENOENT;
}

static int add_dir(struct jl_cg_plan *p, const struct jl_args *a, const char *controller, const char *mount,
                   int attach_only, struct errmsg *err)
{
    if (p->n_dirs == JL_CG_MAX_DIRS)
        return err_set(err, -EINVAL, "too many cgroup hierarchies");
    struct jl_cg_dir *d = &p->dirs[p->n_dirs];
    memset(d, 0, sizeof(*d));
    snprintf(d->controller, sizeof(d->controller), "%s", controller);
    snprintf(d->mount, sizeof(d->mount), "%s", mount);
    int n = attach_only ? snprintf(d->path, sizeof(d->path), "%s/%s", mount, a->parent_cgroup)
                        : snprintf(d->path, sizeof(d->path), "%s/%s/%s", mount, a->parent_cgroup, a->id);
    if (n < 0 || (size_t)n >= sizeof(d->path))
        return err_set(err, -EINVAL, "cgroup path under %s too long", mount);
    d->levels = 1 + !attach_only;
    for (const char *c = a->parent_cgroup; *c; c++)
        d->levels += *c == '/';
    d->created_from = d->created_to = d->pending = -1;
    return (int)p->n_dirs++;
}

int jl_cg_plan_build(struct jl_cg_plan *p, const struct jl_args *a, const char *mounts, struct errmsg *err)
{
    memset(p, 0, sizeof(*p));
    p->version = a->cgroup_version;
    char mnt[JL_CG_PATH_MAX];
    if (a->n_cgroups == 0) {
        /* Firecracker's rule: with v2, --parent-cgroup alone places the VMM in that (existing) cgroup. */
        if (p->version != 2 || !a->parent_cgroup_given)
            return 0;
        if (jl_cg_find_mount(mounts, 2, NULL, mnt, sizeof(mnt)))
            return err_set(err, -ENOENT, "no cgroup2 hierarchy is mounted");
        p->attach_only = 1;
        int rc = add_dir(p, a, "", mnt, 1, err);
        return rc < 0 ? rc : 0;
    }
    if (p->version == 2) {
        if (jl_cg_find_mount(mounts, 2, NULL, mnt, sizeof(mnt)))
            return err_set(err, -ENOENT, "no cgroup2 hierarchy is mounted");
        int rc = add_dir(p, a, "", mnt, 0, err);
        if (rc < 0)
            return rc;
    }
    for (size_t i = 0; i < a->n_cgroups; i++) {
        struct jl_cg_write w[2];
        int nw = 1;
        if (p->version == 1) {
            nw = jl_cg_v1_map(a->cgroups[i].file, a->cgroups[i].value, w, err);
            if (nw < 0)
                return nw;
        } else {
            set_write(&w[0], a->cgroups[i].file, a->cgroups[i].value);
        }
        for (int k = 0; k < nw; k++) {
            char ctl[JL_CG_NAME_MAX];
            if (jl_cg_controller(w[k].file, ctl, sizeof(ctl)))
                return err_set(err, -EINVAL, "--cgroup %s: no controller in the file name", w[k].file);
            int dir = 0;
            if (p->version == 1) {
                for (dir = 0; dir < (int)p->n_dirs && strcmp(p->dirs[dir].controller, ctl); dir++)
                    ;
                if (dir == (int)p->n_dirs) {
                    if (jl_cg_find_mount(mounts, 1, ctl, mnt, sizeof(mnt)))
                        return err_set(err, -ENOENT,
                                       "--cgroup %s: no cgroup v1 hierarchy with the %s controller is mounted",
                                       a->cgroups[i].file, ctl);
                    dir = add_dir(p, a, ctl, mnt, 0, err);
                    if (dir < 0)
                        return dir;
                }
            } else if (strcmp(ctl, "cgroup") != 0) { /* cgroup.* files are core, not a controller */
                size_t e;
                for (e = 0; e < p->n_enable && strcmp(p->enable[e], ctl); e++)
                    ;
                if (e == p->n_enable)
                    strcpy(p->enable[p->n_enable++], ctl);
            }
            struct jl_cg_write *dst = &p->writes[p->n_writes++];
            *dst = w[k];
            dst->dir = dir;
        }
    }
    return 0;
}

/* The path of level k (0 = first component below the mount) of d. */
static void level_path(const struct jl_cg_dir *d, int k, char *out, size_t max)
{
    size_t pos = strlen(d->mount);
    for (int i = 0; i <= k; i++) {
        const char *next = strchr(d->path + pos + 1, '/');
        pos = next ? (size_t)(next - d->path) : strlen(d->path);
    }
    snprintf(out, max, "%.*s", (int)pos, d->path);
}

static int write_file(const char *dir, const char *file, const char *value, struct errmsg *err)
{
    char path[JL_CG_PATH_MAX + JL_CG_FILE_MAX + 2];
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return err_set(err, -errno, "cannot open %s: %s", path, strerror(errno));
    size_t len = strlen(value);
    ssize_t n = write(fd, value, len);
    int e = n < 0 ? errno : EIO;
    close(fd);
    if (n != (ssize_t)len)
        return err_set(err, -e, "cannot write '%s' to %s: %s", value, path, strerror(e));
    return 0;
}

static int read_file(const char *dir, const char *file, char *out, size_t max)
{
    char path[JL_CG_PATH_MAX + JL_CG_FILE_MAX + 2];
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    out[0] = '\0'; /* empty on any failure */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, out, max - 1);
    int e = errno;
    close(fd);
    if (n < 0)
        return -e;
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == ' '))
        n--;
    out[n] = '\0';
    return 0;
}

/* A new v1 cpuset is empty and refuses tasks: give it its parent's cpus and mems. */
static int cpuset_inherit(const char *parent, const char *child, struct errmsg *err)
{
    static const char *const files[] = {"cpuset.cpus", "cpuset.mems"};
    for (int i = 0; i < 2; i++) {
        char have[4096], from[4096];
        if (read_file(child, files[i], have, sizeof(have)) == 0 && have[0])
            continue;
        int rc = read_file(parent, files[i], from, sizeof(from));
        if (rc)
            return err_set(err, rc, "cannot read %s/%s: %s", parent, files[i], strerror(-rc));
        if (!from[0])
            return err_set(err, -EINVAL, "%s/%s is empty: nothing to inherit", parent, files[i]);
        rc = write_file(child, files[i], from, err);
        if (rc)
            return rc;
    }
    return 0;
}

/*
 * v2: enables ctl in the subtree_control of dir, unless already on. With note (a cgroup this run did not
 * create), the switch is noted in p->enabled before the write, so that a kill right after it leaves it noted.
 */
static int enable_controller(struct jl_cg_plan *p, const char *dir, const char *ctl, int note, struct errmsg *err)
{
    char cur[1024];
    int rc = read_file(dir, "cgroup.subtree_control", cur, sizeof(cur));
    if (rc)
        return err_set(err, rc, "cannot read %s/cgroup.subtree_control: %s", dir, strerror(-rc));
    for (char *tok = strtok(cur, " "); tok; tok = strtok(NULL, " "))
        if (strcmp(tok, ctl) == 0)
            return 0;
    note = note && p->n_enabled < JL_CG_MAX_DIRS;
    if (note) {
        snprintf(p->enabled[p->n_enabled].dir, JL_CG_PATH_MAX, "%s", dir);
        snprintf(p->enabled[p->n_enabled].controller, JL_CG_NAME_MAX, "%s", ctl);
        atomic_signal_fence(memory_order_seq_cst);
        p->n_enabled++;
    }
    char plus[JL_CG_NAME_MAX + 2];
    snprintf(plus, sizeof(plus), "+%s", ctl);
    rc = write_file(dir, "cgroup.subtree_control", plus, err);
    if (rc && note)
        p->n_enabled--;
    return rc;
}

static int create_dir(struct jl_cg_plan *p, struct jl_cg_dir *d, struct errmsg *err)
{
    char path[JL_CG_PATH_MAX], up[JL_CG_PATH_MAX];
    for (int k = 0; k < d->levels; k++) {
        level_path(d, k, path, sizeof(path));
        /*
         * A missing level is noted as pending over its mkdir, cleared once created_* say it: the janitor sees
         * every moment of a kill. An existing one is never noted, so no kill makes it look like ours.
         */
        struct stat st;
        int made = 0, e = EEXIST;
        if (stat(path, &st)) {
            d->pending = k;
            atomic_signal_fence(memory_order_seq_cst);
            made = mkdir(path, 0755) == 0;
            e = errno;
        }
        if (made) {
            d->created_to = k;
            if (d->created_from < 0)
                d->created_from = k;
        }
        atomic_signal_fence(memory_order_seq_cst); /* the record is in memory the janitor shares: keep this order */
        d->pending = -1;
        if (made) {
            continue;
        } else if (e != EEXIST) {
            return err_set(err, -e, "cannot create %s: %s", path, strerror(e));
        } else if (k == d->levels - 1) {
            return err_set(err, -EEXIST, "%s already exists (is a VM with this id running?)", path);
        }
    }
    for (int k = d->created_from; p->version == 1 && strcmp(d->controller, "cpuset") == 0 && k >= 0 && k < d->levels;
         k++) {
        if (k == 0)
            snprintf(up, sizeof(up), "%s", d->mount);
        else
            level_path(d, k - 1, up, sizeof(up));
        level_path(d, k, path, sizeof(path));
        int rc = cpuset_inherit(up, path, err);
        if (rc)
            return rc;
    }
    for (size_t c = 0; p->version == 2 && c < p->n_enable; c++)
        for (int k = -1; k < d->levels - 1; k++) {
            if (k < 0)
                snprintf(path, sizeof(path), "%s", d->mount);
            else
                level_path(d, k, path, sizeof(path));
            /* Levels this run created go away with their settings; remember the others. */
            int ours = d->created_from >= 0 && k >= d->created_from;
            int rc = enable_controller(p, path, p->enable[c], !ours, err);
            if (rc < 0)
                return rc;
        }
    return 0;
}

int jl_cg_create(struct jl_cg_plan *p, struct errmsg *err)
{
    if (p->attach_only)
        return 0;
    int rc = 0;
    for (size_t i = 0; !rc && i < p->n_dirs; i++)
        rc = create_dir(p, &p->dirs[i], err);
    for (size_t i = 0; !rc && i < p->n_writes; i++)
        rc = write_file(p->dirs[p->writes[i].dir].path, p->writes[i].file, p->writes[i].value, err);
    if (rc)
        jl_cg_remove(p, NULL);
    return rc;
}

int jl_cg_attach(const struct jl_cg_plan *p, pid_t pid, struct errmsg *err)
{
    char s[24];
    snprintf(s, sizeof(s), "%d", (int)pid);
    for (size_t i = 0; i < p->n_dirs; i++) {
        int rc = write_file(p->dirs[i].path, p->version == 1 ? "tasks" : "cgroup.procs", s, err);
        if (rc)
            return rc;
    }
    return 0;
}

int jl_cg_remove(struct jl_cg_plan *p, struct errmsg *err)
{
    int first = 0;
    for (size_t i = p->n_dirs; i-- > 0;) {
        struct jl_cg_dir *d = &p->dirs[i];
        if (d->pending >= 0) {
            /* A kill during its mkdir: removed if it is there and empty (an existing one holds a VM's tasks). */
            char path[JL_CG_PATH_MAX];
            level_path(d, d->pending, path, sizeof(path));
            rmdir(path);
            d->pending = -1;
        }
        for (int k = d->created_to; d->created_from >= 0 && k >= d->created_from; k--) {
            char path[JL_CG_PATH_MAX];
            level_path(d, k, path, sizeof(path));
            /* The last task may still be leaving the cgroup just after it was reaped: retry for up to 1 s. */
            int rc = -1;
            for (int tries = 0; tries < 100; tries++) {
                rc = rmdir(path) ? -errno : 0;
                if (rc != -EBUSY || k != d->levels - 1)
                    break;
                nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
            }
            if (rc == 0 || rc == -ENOENT) {
                d->created_to = k - 1;
                continue;
            }
            if (k == d->levels - 1 && !first)
                first = err_set(err, rc, "cannot remove cgroup %s: %s", path, strerror(-rc));
            break; /* a parent still used by another VM's cgroup: leave it and everything above */
        }
        if (d->created_to < d->created_from)
            d->created_from = d->created_to = -1;
    }
    /* Deepest first; EBUSY means another cgroup below uses the controller: leave it on. */
    while (!first && p->n_enabled > 0) {
        char minus[JL_CG_NAME_MAX + 2];
        snprintf(minus, sizeof(minus), "-%s", p->enabled[p->n_enabled - 1].controller);
        struct errmsg ignored;
        write_file(p->enabled[p->n_enabled - 1].dir, "cgroup.subtree_control", minus, &ignored);
        p->n_enabled--; /* after the write: a kill in between leaves it noted, for the janitor */
    }
    return first;
}
