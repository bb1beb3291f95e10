#include "jailer/args.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void jl_usage(FILE *out)
{
    fputs("usage: ember-jailer --id ID --exec-file PATH --uid UID --gid GID\n"
          "           [--chroot-base-dir DIR] [--netns PATH] [--daemonize] [--new-pid-ns]\n"
          "           [--cgroup-version 1|2] [--cgroup FILE=VALUE]... [--parent-cgroup PATH]\n"
          "           [--resource-limit NAME=VALUE]... [--keep-jail] [-- EXEC ARGS...]\n"
          "  --id ID               1-64 characters of [A-Za-z0-9-]\n"
          "  --exec-file PATH      the VMM binary; copied to <base>/<name>/<id>/root/<name>\n"
          "  --uid, --gid N        numeric ids the VMM runs as (0: root without capabilities)\n"
          "  --chroot-base-dir DIR default " JL_DEFAULT_CHROOT_BASE "\n"
          "  --netns PATH          network namespace file to join (e.g. /var/run/netns/NAME)\n"
          "  --daemonize           detach (setsid, stdio on /dev/null); returns once the VMM runs\n"
          "  --new-pid-ns          the VMM is pid 1 of a new PID namespace\n"
          "  --cgroup FILE=VALUE   e.g. cpu.cfs_quota_us=50000, memory.max=300M, cpu.max=\"50000 100000\"\n"
          "  --cgroup-version 1|2  default 1\n"
          "  --parent-cgroup PATH  default: the exec file's name\n"
          "  --resource-limit N=V  no-file (default 2048), fsize, core, memlock, nproc, as; V a number or unlimited\n"
          "  --keep-jail           leave the jail directory and cgroups in place when the VMM ends\n"
          "Arguments after -- go to the VMM, after --id ID.\n",
          out);
}

int jl_valid_id(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n < 1 || n > JL_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!(isalnum((unsigned char)id[i]) || id[i] == '-'))
            return 0;
    return 1;
}

/*
 * A decimal uid/gid: digits only, below 2^32 - 1 ((uid_t)-1 means "unchanged"). 0 is accepted as
 * Firecracker's jailer accepts it (Kata Containers passes --uid 0 --gid 0): the VMM still has no
 * capabilities (empty bounding set), no_new_privs and the jail.
 */
static int parse_id_number(const char *flag, const char *s, unsigned *out, struct errmsg *err)
{
    if (!*s || strlen(s) > 10)
        return err_set(err, -EINVAL, "%s '%s': must be a number from 0 to 4294967294", flag, s);
    for (const char *p = s; *p; p++)
        if (!isdigit((unsigned char)*p))
            return err_set(err, -EINVAL, "%s '%s': must be a number from 0 to 4294967294", flag, s);
    unsigned long long v = strtoull(s, NULL, 10);
    if (v >= 4294967295ULL)
        return err_set(err, -EINVAL, "%s '%s': must be a number from 0 to 4294967294", flag, s);
    *out = (unsigned)v;
    return 0;
}

int jl_parse_cgroup(const char *spec, struct jl_cgroup_arg *out, struct errmsg *err)
{
    const char *eq = strchr(spec, '=');
    if (!eq)
        return err_set(err, -EINVAL, "--cgroup '%s': must be FILE=VALUE (e.g. cpu.cfs_quota_us=50000)", spec);
    size_t flen = (size_t)(eq - spec);
    const char *value = eq + 1;
    /* FILE is <controller>.<setting>: a lower-case controller name, a dot, then [A-Za-z0-9_.]. */
    size_t dot = 0;
    for (size_t i = 0; i < flen; i++) {
        char c = spec[i];
        if (c == '.' && !dot && i > 0)
            dot = i;
        else if (!(islower((unsigned char)c) || isdigit((unsigned char)c) || c == '_' ||
                   (dot && (isalnum((unsigned char)c) || c == '.'))))
            return err_set(err, -EINVAL, "--cgroup '%.*s': not a cgroup file name (<controller>.<setting>)", (int)flen,
                           spec);
    }
    if (!dot || dot + 1 >= flen || spec[flen - 1] == '.')
        return err_set(err, -EINVAL, "--cgroup '%.*s': not a cgroup file name (<controller>.<setting>)", (int)flen,
                       spec);
    if (flen >= sizeof(out->file))
        return err_set(err, -EINVAL, "--cgroup '%.*s': file name too long", (int)flen, spec);
    if (!*value)
        return err_set(err, -EINVAL, "--cgroup '%.*s': empty value", (int)flen, spec);
    if (strlen(value) >= sizeof(out->value))
        return err_set(err, -EINVAL, "--cgroup '%.*s': value longer than %zu bytes", (int)flen, spec,
                       sizeof(out->value) - 1);
    for (const char *p = value; *p; p++)
        if (!isprint((unsigned char)*p))
            return err_set(err, -EINVAL, "--cgroup '%.*s': value has a control character", (int)flen, spec);
    memcpy(out->file, spec, flen);
    out->file[flen] = '\0';
    strcpy(out->value, value);
    return 0;
}

static const struct {
    const char *name;
    int resource;
} rlimit_names[] = {
    {"no-file", RLIMIT_NOFILE}, {"fsize", RLIMIT_FSIZE}, /* Firecracker's two */
    {"core", RLIMIT_CORE},      {"memlock", RLIMIT_MEMLOCK}, {"nproc", RLIMIT_NPROC}, {"as", RLIMIT_AS},
};

int jl_parse_rlimit(const char *spec, struct jl_rlimit *out, struct errmsg *err)
{
    const char *eq = strchr(spec, '=');
    if (!eq)
        return err_set(err, -EINVAL, "--resource-limit '%s': must be NAME=VALUE (e.g. no-file=2048)", spec);
    size_t nlen = (size_t)(eq - spec);
    const char *v = eq + 1;
    out->name = NULL;
    for (size_t i = 0; i < sizeof(rlimit_names) / sizeof(rlimit_names[0]); i++)
        if (strlen(rlimit_names[i].name) == nlen && strncmp(spec, rlimit_names[i].name, nlen) == 0) {
            out->name = rlimit_names[i].name;
            out->resource = rlimit_names[i].resource;
        }
    if (!out->name)
        return err_set(err, -EINVAL,
                       "--resource-limit '%.*s': unknown limit (no-file, fsize, core, memlock, nproc, as)", (int)nlen,
                       spec);
    if (strcmp(v, "unlimited") == 0) {
        out->value = RLIM_INFINITY;
        return 0;
    }
    int digits = *v != '\0' && strlen(v) <= 20;
    for (const char *p = v; *p && digits; p++)
        digits = isdigit((unsigned char)*p);
    errno = 0;
    unsigned long long n = digits ? strtoull(v, NULL, 10) : 0;
    if (!digits || errno == ERANGE || (rlim_t)n == RLIM_INFINITY)
        return err_set(err, -EINVAL, "--resource-limit %s: '%s' must be a whole number or unlimited", out->name, v);
    out->value = (rlim_t)n;
    return 0;
}

/* An absolute path with no "." or ".." component, copied without trailing slashes. */
static int parse_abs_path(const char *flag, const char *s, char *out, size_t max, struct errmsg *err)
{
    if (s[0] != '/')
        return err_set(err, -EINVAL, "%s '%s': must be an absolute path", flag, s);
    size_t n = strlen(s);
    while (n > 1 && s[n - 1] == '/')
        n--;
    if (n >= max)
        return err_set(err, -EINVAL, "%s '%s': path too long", flag, s);
    for (const char *p = s; p < s + n; p++)
        if (p[0] == '/' && p[1] == '.' &&
            (p + 2 >= s + n || p[2] == '/' || (p[2] == '.' && (p + 3 >= s + n || p[3] == '/'))))
            return err_set(err, -EINVAL, "%s '%s': '.' and '..' components are not allowed", flag, s);
    memcpy(out, s, n);
    out[n] = '\0';
    return 0;
}

/* A cgroup path relative to the hierarchy's mount point: [A-Za-z0-9_.-] components, no "." or "..". */
static int parse_parent_cgroup(const char *s, char *out, size_t max, struct errmsg *err)
{
    while (*s == '/')
        s++;
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == '/')
        n--;
    if (n == 0 || n >= max)
        return err_set(err, -EINVAL, "--parent-cgroup '%s': must be a relative path of 1-%zu characters", s, max - 1);
    size_t comp = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == '/') {
            size_t len = i - comp;
            if (len == 0 || (len == 1 && s[comp] == '.') || (len == 2 && s[comp] == '.' && s[comp + 1] == '.'))
                return err_set(err, -EINVAL, "--parent-cgroup '%s': empty, '.' or '..' component", s);
            comp = i + 1;
        } else if (!(isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == '.' || s[i] == '-')) {
            return err_set(err, -EINVAL, "--parent-cgroup '%s': components are [A-Za-z0-9_.-]", s);
        }
    }
    memcpy(out, s, n);
    out[n] = '\0';
    return 0;
}

static int check_exec_file(const char *path, struct errmsg *err)
{
    struct stat st;
    if (lstat(path, &st))
        return err_set(err, -EINVAL, "--exec-file '%s': %s", path, strerror(errno));
    if (S_ISLNK(st.st_mode))
        return err_set(err, -EINVAL, "--exec-file '%s': is a symbolic link (give the file itself)", path);
    if (!S_ISREG(st.st_mode))
        return err_set(err, -EINVAL, "--exec-file '%s': not a regular file", path);
    if (!(st.st_mode & 0111))
        return err_set(err, -EINVAL, "--exec-file '%s': not executable", path);
    return 0;
}

enum flag {
    F_ID,
    F_EXEC,
    F_UID,
    F_GID,
    F_BASE,
    F_NETNS,
    F_CGVER,
    F_CGROUP,
    F_PARENT,
    F_RLIMIT,
    F_DAEMON,
    F_PIDNS,
    F_KEEP,
    F_HELP,
    F_VERSION,
    F_COUNT
};

static const struct {
    const char *name;
    int takes_value;
    int repeatable;
} flags[F_COUNT] = {
    [F_ID] = {"id", 1, 0},
    [F_EXEC] = {"exec-file", 1, 0},
    [F_UID] = {"uid", 1, 0},
    [F_GID] = {"gid", 1, 0},
    [F_BASE] = {"chroot-base-dir", 1, 0},
    [F_NETNS] = {"netns", 1, 0},
    [F_CGVER] = {"cgroup-version", 1, 0},
    [F_CGROUP] = {"cgroup", 1, 1},
    [F_PARENT] = {"parent-cgroup", 1, 0},
    [F_RLIMIT] = {"resource-limit", 1, 1},
    [F_DAEMON] = {"daemonize", 0, 0},
    [F_PIDNS] = {"new-pid-ns", 0, 0},
    [F_KEEP] = {"keep-jail", 0, 0},
    [F_HELP] = {"help", 0, 0},
    [F_VERSION] = {"version", 0, 0},
};

int jl_parse_args(int argc, char **argv, struct jl_args *a, struct errmsg *err)
{
    memset(a, 0, sizeof(*a));
    a->cgroup_version = 1;
    strcpy(a->chroot_base, JL_DEFAULT_CHROOT_BASE);
    int seen[F_COUNT] = {0};
    const char *parent = NULL;
    int i;
    for (i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--") == 0) {
            i++;
            break;
        }
        if (strcmp(arg, "-h") == 0)
            arg = "--help";
        if (strncmp(arg, "--", 2) != 0)
            return err_set(err, -EINVAL, "unexpected argument '%s' (arguments for the VMM go after --)", arg);
        const char *name = arg + 2, *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        int f;
        for (f = 0; f < F_COUNT; f++)
            if (strlen(flags[f].name) == nlen && strncmp(name, flags[f].name, nlen) == 0)
                break;
        if (f == F_COUNT)
            return err_set(err, -EINVAL, "unknown option '%.*s' (see --help)", (int)(nlen + 2), arg);
        if (seen[f]++ && !flags[f].repeatable)
            return err_set(err, -EINVAL, "--%s given twice", flags[f].name);
        const char *val = NULL;
        if (flags[f].takes_value) {
            if (eq)
                val = eq + 1;
            else if (i + 1 < argc)
                val = argv[++i];
            else
                return err_set(err, -EINVAL, "--%s needs a value", flags[f].name);
        } else if (eq) {
            return err_set(err, -EINVAL, "--%s takes no value", flags[f].name);
        }
        int rc = 0;
        switch ((enum flag)f) {
        case F_ID:
            if (!jl_valid_id(val))
                return err_set(err, -EINVAL, "--id '%s': must be 1-64 characters of [A-Za-z0-9-]", val);
            a->id = val;
            break;
        case F_EXEC: a->exec_file = val; break;
        case F_UID: rc = parse_id_number("--uid", val, &a->uid, err); break;
        case F_GID: rc = parse_id_number("--gid", val, &a->gid, err); break;
        case F_BASE:
            rc = parse_abs_path("--chroot-base-dir", val, a->chroot_base, sizeof(a->chroot_base), err);
            if (!rc && strcmp(a->chroot_base, "/") == 0)
                rc = err_set(err, -EINVAL, "--chroot-base-dir '/': give a directory of its own");
            break;
        case F_NETNS:
            if (val[0] != '/')
                return err_set(err, -EINVAL, "--netns '%s': must be an absolute path (e.g. /var/run/netns/NAME)", val);
            a->netns = val;
            break;
        case F_CGVER:
            if (strcmp(val, "1") && strcmp(val, "2"))
                return err_set(err, -EINVAL, "--cgroup-version '%s': must be 1 or 2", val);
            a->cgroup_version = val[0] - '0';
            break;
        case F_CGROUP:
            if (a->n_cgroups == JL_MAX_CGROUPS)
                return err_set(err, -EINVAL, "--cgroup: at most %d", JL_MAX_CGROUPS);
            rc = jl_parse_cgroup(val, &a->cgroups[a->n_cgroups], err);
            for (size_t k = 0; !rc && k < a->n_cgroups; k++)
                if (strcmp(a->cgroups[k].file, a->cgroups[a->n_cgroups].file) == 0)
                    rc = err_set(err, -EINVAL, "--cgroup %s given twice", a->cgroups[k].file);
            a->n_cgroups += !rc;
            break;
        case F_PARENT: parent = val; break;
        case F_RLIMIT:
            if (a->n_rlimits == JL_MAX_RLIMITS - 1) /* one slot kept for the no-file default */
                return err_set(err, -EINVAL, "--resource-limit: at most %d", JL_MAX_RLIMITS - 1);
            rc = jl_parse_rlimit(val, &a->rlimits[a->n_rlimits], err);
            for (size_t k = 0; !rc && k < a->n_rlimits; k++)
                if (a->rlimits[k].resource == a->rlimits[a->n_rlimits].resource)
                    rc = err_set(err, -EINVAL, "--resource-limit %s given twice", a->rlimits[k].name);
            a->n_rlimits += !rc;
            break;
        case F_DAEMON: a->daemonize = 1; break;
        case F_PIDNS: a->new_pid_ns = 1; break;
        case F_KEEP: a->keep_jail = 1; break;
        case F_HELP: a->help = 1; break;
        case F_VERSION: a->version = 1; break;
        case F_COUNT: break;
        }
        if (rc)
            return rc;
    }
    a->extra = argv + i;
    a->n_extra = argc > i ? argc - i : 0;
    if (a->help || a->version)
        return 0;

    if (!a->id)
        return err_set(err, -EINVAL, "--id is required");
    if (!a->exec_file)
        return err_set(err, -EINVAL, "--exec-file is required");
    if (!seen[F_UID])
        return err_set(err, -EINVAL, "--uid is required");
    if (!seen[F_GID])
        return err_set(err, -EINVAL, "--gid is required");
    int rc = check_exec_file(a->exec_file, err);
    if (rc)
        return rc;
    const char *slash = strrchr(a->exec_file, '/');
    const char *base = slash ? slash + 1 : a->exec_file;
    if (!*base || strcmp(base, ".") == 0 || strcmp(base, "..") == 0 || strlen(base) >= sizeof(a->exec_name))
        return err_set(err, -EINVAL, "--exec-file '%s': needs a file name", a->exec_file);
    strcpy(a->exec_name, base);
    a->parent_cgroup_given = parent != NULL;
    rc = parse_parent_cgroup(parent ? parent : a->exec_name, a->parent_cgroup, sizeof(a->parent_cgroup), err);
    if (rc)
        return rc;
    int have_nofile = 0;
    for (size_t k = 0; k < a->n_rlimits; k++)
        have_nofile |= a->rlimits[k].resource == RLIMIT_NOFILE;
    if (!have_nofile)
        a->rlimits[a->n_rlimits++] = (struct jl_rlimit){"no-file", RLIMIT_NOFILE, JL_DEFAULT_NOFILE};
    return 0;
}
