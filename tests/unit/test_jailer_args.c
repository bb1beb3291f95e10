/* ember-jailer: command-line parsing, every flag, and the errors. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jailer/args.h"

static struct jl_args a;
static struct errmsg err;
static int rc;
static char dir[32], exe[64], plain[64], link_path[64];

/* A temporary executable, a non-executable file, a directory and a symlink, for --exec-file. */
static void init(void)
{
    strcpy(dir, "/tmp/jl-args-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(exe, sizeof(exe), "%s/ember", dir);
    snprintf(plain, sizeof(plain), "%s/plain", dir);
    snprintf(link_path, sizeof(link_path), "%s/link", dir);
    FILE *f = fopen(exe, "w");
    fputs("#!/bin/true\n", f);
    fclose(f);
    chmod(exe, 0755);
    f = fopen(plain, "w");
    fclose(f);
    chmod(plain, 0644);
    cr_assert_eq(symlink(exe, link_path), 0);
}

static void fini(void)
{
    unlink(exe);
    unlink(plain);
    unlink(link_path);
    rmdir(dir);
}

TestSuite(jailer_args, .init = init, .fini = fini);

/* argv lives on after the parse: a.extra points into it. */
static char *argv_store[64];
#define PARSE(...)                                                                             \
    do {                                                                                       \
        char *argv_[] = {"ember-jailer", __VA_ARGS__, NULL};                                   \
        memcpy(argv_store, argv_, sizeof(argv_));                                              \
        memset(&err, 0, sizeof(err));                                                          \
        rc = jl_parse_args((int)(sizeof(argv_) / sizeof(argv_[0])) - 1, argv_store, &a, &err); \
    } while (0)

/* The four required flags, then more. */
#define PARSE_REQ(...) PARSE("--id", "vm1", "--exec-file", exe, "--uid", "1234", "--gid", "1234", __VA_ARGS__)

static void expect_error(const char *frag)
{
    cr_assert_eq(rc, -EINVAL, "rc %d (message: %s)", rc, err.text);
    cr_assert(strstr(err.text, frag) != NULL, "message '%s' should mention '%s'", err.text, frag);
}

Test(jailer_args, required_only_and_defaults)
{
    PARSE("--id", "vm1", "--exec-file", exe, "--uid", "1234", "--gid", "4321");
    cr_assert_eq(rc, 0, "%s", err.text);
    cr_assert_str_eq(a.id, "vm1");
    cr_assert_str_eq(a.exec_file, exe);
    cr_assert_str_eq(a.exec_name, "ember");
    cr_assert_eq(a.uid, 1234);
    cr_assert_eq(a.gid, 4321);
    cr_assert_str_eq(a.chroot_base, "/srv/jailer");
    cr_assert_null(a.netns);
    cr_assert_eq(a.cgroup_version, 1);
    cr_assert_str_eq(a.parent_cgroup, "ember", "the parent cgroup defaults to the exec file's name");
    cr_assert_eq(a.parent_cgroup_given, 0);
    cr_assert_eq(a.daemonize + a.new_pid_ns + a.keep_jail, 0);
    cr_assert_eq(a.n_cgroups, 0);
    cr_assert_eq(a.n_rlimits, 1, "no-file is always set");
    cr_assert_str_eq(a.rlimits[0].name, "no-file");
    cr_assert_eq(a.rlimits[0].resource, RLIMIT_NOFILE);
    cr_assert_eq(a.rlimits[0].value, 2048, "Firecracker's default");
    cr_assert_eq(a.n_extra, 0);
}

Test(jailer_args, every_flag)
{
    PARSE("--id", "Vm-01", "--exec-file", exe, "--uid", "1000", "--gid", "1001", "--chroot-base-dir", "/var/jail/",
          "--netns", "/var/run/netns/vm1", "--daemonize", "--new-pid-ns", "--cgroup-version", "2", "--cgroup",
          "cpu.max=50000 100000", "--cgroup", "memory.max=300M", "--parent-cgroup", "tenants/ember", "--resource-limit",
          "no-file=4096", "--resource-limit", "fsize=1048576", "--keep-jail", "--", "--api-sock", "/run/ember.sock");
    cr_assert_eq(rc, 0, "%s", err.text);
    cr_assert_str_eq(a.id, "Vm-01");
    cr_assert_eq(a.uid, 1000);
    cr_assert_eq(a.gid, 1001);
    cr_assert_str_eq(a.chroot_base, "/var/jail", "trailing slash dropped");
    cr_assert_str_eq(a.netns, "/var/run/netns/vm1");
    cr_assert(a.daemonize && a.new_pid_ns && a.keep_jail);
    cr_assert_eq(a.cgroup_version, 2);
    cr_assert_eq(a.n_cgroups, 2);
    cr_assert_str_eq(a.cgroups[0].file, "cpu.max");
    cr_assert_str_eq(a.cgroups[0].value, "50000 100000", "a value keeps its spaces");
    cr_assert_str_eq(a.cgroups[1].file, "memory.max");
    cr_assert_str_eq(a.cgroups[1].value, "300M");
    cr_assert_str_eq(a.parent_cgroup, "tenants/ember");
    cr_assert_eq(a.parent_cgroup_given, 1);
    cr_assert_eq(a.n_rlimits, 2, "no default added when no-file is given");
    cr_assert_eq(a.rlimits[0].resource, RLIMIT_NOFILE);
    cr_assert_eq(a.rlimits[0].value, 4096);
    cr_assert_eq(a.rlimits[1].resource, RLIMIT_FSIZE);
    cr_assert_eq(a.rlimits[1].value, 1048576);
    cr_assert_eq(a.n_extra, 2);
    cr_assert_str_eq(a.extra[0], "--api-sock");
    cr_assert_str_eq(a.extra[1], "/run/ember.sock");
}

Test(jailer_args, equals_form)
{
    PARSE("--id=vm2", "--exec-file=/bin/true", "--uid=5", "--gid=6", "--cgroup=pids.max=10", "--cgroup-version=1");
    cr_assert_eq(rc, 0, "%s", err.text);
    cr_assert_str_eq(a.id, "vm2");
    cr_assert_str_eq(a.exec_name, "true");
    cr_assert_str_eq(a.cgroups[0].file, "pids.max");
    cr_assert_str_eq(a.cgroups[0].value, "10");
}

Test(jailer_args, extra_args_after_double_dash_are_untouched)
{
    PARSE_REQ("--", "--id", "x", "--unknown", "--");
    cr_assert_eq(rc, 0, "%s", err.text);
    cr_assert_eq(a.n_extra, 4);
    cr_assert_str_eq(a.extra[0], "--id");
    cr_assert_str_eq(a.extra[3], "--");
    PARSE_REQ("--");
    cr_assert_eq(rc, 0, "%s", err.text);
    cr_assert_eq(a.n_extra, 0);
}

Test(jailer_args, good_ids)
{
    cr_assert(jl_valid_id("a"));
    cr_assert(jl_valid_id("A-b-9"));
    cr_assert(jl_valid_id("551e7604-e35c-42b3-b825-416853441234"));
    char id64[65];
    memset(id64, 'x', 64);
    id64[64] = '\0';
    cr_assert(jl_valid_id(id64));
}

Test(jailer_args, bad_ids)
{
    char id65[66];
    memset(id65, 'x', 65);
    id65[65] = '\0';
    const char *bad[] = {"", id65, "vm_1", "vm 1", "vm/1", "..", "../x", "vm.1", "vm1\n", "é"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert(!jl_valid_id(bad[i]), "'%s' accepted", bad[i]);
        PARSE("--id", (char *)bad[i], "--exec-file", exe, "--uid", "1", "--gid", "1");
        expect_error("--id");
    }
}

Test(jailer_args, bad_uid_and_gid)
{
    const char *bad[] = {"", "abc", "-1", "12a", "1.5", " 1", "0x10", "4294967295", "99999999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        PARSE("--id", "vm1", "--exec-file", exe, "--uid", (char *)bad[i], "--gid", "1");
        expect_error("--uid");
        PARSE("--id", "vm1", "--exec-file", exe, "--uid", "1", "--gid", (char *)bad[i]);
        expect_error("--gid");
    }
    /* Firecracker's jailer takes 0, and Kata Containers passes --uid 0 --gid 0. */
    PARSE("--id", "vm1", "--exec-file", exe, "--uid", "0", "--gid", "0");
    cr_assert_eq(rc, 0, "%s", err.text);
    cr_assert_eq(a.uid, 0u);
    cr_assert_eq(a.gid, 0u);
    PARSE("--id", "vm1", "--exec-file", exe, "--uid", "4294967294", "--gid", "4294967294");
    cr_assert_eq(rc, 0, "%s", err.text);
    cr_assert_eq(a.uid, 4294967294u);
}

Test(jailer_args, exec_file_checks)
{
    PARSE("--id", "vm1", "--exec-file", "/nonexistent/ember", "--uid", "1", "--gid", "1");
    expect_error("No such file");
    PARSE("--id", "vm1", "--exec-file", dir, "--uid", "1", "--gid", "1");
    expect_error("not a regular file");
    PARSE("--id", "vm1", "--exec-file", plain, "--uid", "1", "--gid", "1");
    expect_error("not executable");
    PARSE("--id", "vm1", "--exec-file", link_path, "--uid", "1", "--gid", "1");
    expect_error("symbolic link");
}

Test(jailer_args, required_flags)
{
    PARSE("--exec-file", exe, "--uid", "1", "--gid", "1");
    expect_error("--id is required");
    PARSE("--id", "vm1", "--uid", "1", "--gid", "1");
    expect_error("--exec-file is required");
    PARSE("--id", "vm1", "--exec-file", exe, "--gid", "1");
    expect_error("--uid is required");
    PARSE("--id", "vm1", "--exec-file", exe, "--uid", "1");
    expect_error("--gid is required");
}

Test(jailer_args, syntax_errors)
{
    PARSE_REQ("--bogus");
    expect_error("unknown option '--bogus'");
    PARSE_REQ("--netns");
    expect_error("--netns needs a value");
    PARSE_REQ("stray");
    expect_error("unexpected argument 'stray'");
    PARSE_REQ("--daemonize=1");
    expect_error("--daemonize takes no value");
    PARSE_REQ("--id", "vm2");
    expect_error("--id given twice");
    PARSE_REQ("--cgroup-version", "3");
    expect_error("--cgroup-version '3'");
    PARSE_REQ("--netns", "run/netns/x");
    expect_error("absolute path");
}

Test(jailer_args, chroot_base_dir)
{
    PARSE_REQ("--chroot-base-dir", "srv/jailer");
    expect_error("absolute path");
    PARSE_REQ("--chroot-base-dir", "/srv/../etc");
    expect_error("'.' and '..'");
    PARSE_REQ("--chroot-base-dir", "/srv/./x");
    expect_error("'.' and '..'");
    PARSE_REQ("--chroot-base-dir", "/srv/..");
    expect_error("'.' and '..'");
    PARSE_REQ("--chroot-base-dir", "/");
    expect_error("directory of its own");
    PARSE_REQ("--chroot-base-dir", "/srv/.hidden/..x//");
    cr_assert_eq(rc, 0, "%s", err.text);
    cr_assert_str_eq(a.chroot_base, "/srv/.hidden/..x");
}

Test(jailer_args, parent_cgroup)
{
    PARSE_REQ("--parent-cgroup", "/a/b/");
    cr_assert_eq(rc, 0, "%s", err.text);
    cr_assert_str_eq(a.parent_cgroup, "a/b", "slashes at either end dropped");
    const char *bad[] = {"../x", "a/../b", "a//b", ".", "a b", "a/./b", "/"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        PARSE_REQ("--parent-cgroup", (char *)bad[i]);
        expect_error("--parent-cgroup");
    }
}

Test(jailer_args, cgroup_syntax)
{
    struct jl_cgroup_arg c;
    cr_assert_eq(jl_parse_cgroup("cpu.cfs_quota_us=50000", &c, &err), 0, "%s", err.text);
    cr_assert_str_eq(c.file, "cpu.cfs_quota_us");
    cr_assert_str_eq(c.value, "50000");
    cr_assert_eq(jl_parse_cgroup("cpu.max=max 100000", &c, &err), 0, "%s", err.text);
    cr_assert_str_eq(c.value, "max 100000");
    cr_assert_eq(jl_parse_cgroup("hugetlb.2MB.max=4194304", &c, &err), 0, "%s", err.text);
    cr_assert_str_eq(c.file, "hugetlb.2MB.max");
    cr_assert_eq(jl_parse_cgroup("cpuset.cpus=0-1,3", &c, &err), 0, "%s", err.text);
    cr_assert_eq(jl_parse_cgroup("memory.limit_in_bytes=a=b", &c, &err), 0, "%s", err.text);
    cr_assert_str_eq(c.value, "a=b", "split at the first '='");

    const char *bad[] = {"cpu.shares",  "nodot=1",         "=1",           "cpu.=1",
                         ".cpu=1",      "Cpu.shares=1",    "cpu/../x.y=1", "cpu.sh/ares=1",
                         "cpu.shares=", "cpu.shares=1\n2", "cpu shares=1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(jl_parse_cgroup(bad[i], &c, &err), -EINVAL, "'%s' accepted", bad[i]);
    char long_value[400];
    memset(long_value, '1', sizeof(long_value));
    memcpy(long_value, "pids.max=", 9);
    long_value[sizeof(long_value) - 1] = '\0';
    cr_assert_eq(jl_parse_cgroup(long_value, &c, &err), -EINVAL);

    PARSE_REQ("--cgroup", "pids.max=10", "--cgroup", "pids.max=20");
    expect_error("--cgroup pids.max given twice");
    PARSE_REQ("--cgroup", "pids");
    expect_error("FILE=VALUE");
}

Test(jailer_args, resource_limits)
{
    struct jl_rlimit r;
    cr_assert_eq(jl_parse_rlimit("no-file=1024", &r, &err), 0, "%s", err.text);
    cr_assert_eq(r.resource, RLIMIT_NOFILE);
    cr_assert_eq(r.value, 1024);
    cr_assert_eq(jl_parse_rlimit("fsize=unlimited", &r, &err), 0, "%s", err.text);
    cr_assert_eq(r.resource, RLIMIT_FSIZE);
    cr_assert_eq(r.value, RLIM_INFINITY);
    cr_assert_eq(jl_parse_rlimit("fsize=0", &r, &err), 0, "%s", err.text);
    cr_assert_eq(r.value, 0);
    const struct {
        const char *spec;
        int resource;
    } names[] = {{"core=0", RLIMIT_CORE},
                 {"memlock=65536", RLIMIT_MEMLOCK},
                 {"nproc=100", RLIMIT_NPROC},
                 {"as=1000000000", RLIMIT_AS}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        cr_assert_eq(jl_parse_rlimit(names[i].spec, &r, &err), 0, "%s", err.text);
        cr_assert_eq(r.resource, names[i].resource, "%s", names[i].spec);
    }
    const char *bad[] = {"no-file",
                         "nofile=10",
                         "bogus=1",
                         "no-file=",
                         "no-file=-1",
                         "no-file=1k",
                         "no-file= 1",
                         "fsize=18446744073709551615",
                         "fsize=99999999999999999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(jl_parse_rlimit(bad[i], &r, &err), -EINVAL, "'%s' accepted", bad[i]);

    PARSE_REQ("--resource-limit", "fsize=10", "--resource-limit", "fsize=20");
    expect_error("fsize given twice");
    PARSE_REQ("--resource-limit", "fsize=10");
    cr_assert_eq(rc, 0, "%s", err.text);
    cr_assert_eq(a.n_rlimits, 2, "fsize plus the no-file default");
    cr_assert_eq(a.rlimits[1].resource, RLIMIT_NOFILE);
    cr_assert_eq(a.rlimits[1].value, 2048);
}

Test(jailer_args, help_and_version_short_circuit)
{
    PARSE("--help");
    cr_assert_eq(rc, 0);
    cr_assert(a.help);
    PARSE("-h");
    cr_assert(a.help);
    PARSE("--version");
    cr_assert_eq(rc, 0);
    cr_assert(a.version);
}
