/* ember-jailer: cgroup file mapping, mount discovery, paths and values, and undoing a failed creation. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jailer/cgroup.h"

/* This project's machines: v1 controllers each on its own, a cgroup2 hierarchy with only hugetlb. */
static const char *mounts = "proc /proc proc rw,relatime 0 0\n"
                            "tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0\n"
                            "cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0\n"
                            "cgroup /sys/fs/cgroup/cpuacct cgroup rw,relatime,cpuacct 0 0\n"
                            "cgroup /sys/fs/cgroup/cpuset cgroup rw,relatime,cpuset 0 0\n"
                            "cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0\n"
                            "cgroup /sys/fs/cgroup/pids cgroup rw,relatime,pids 0 0\n"
                            "cgroup /sys/fs/cgroup/systemd cgroup rw,relatime,name=systemd 0 0\n"
                            "cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0\n";

static struct errmsg err;
static struct jl_args args;
static struct jl_cg_plan plan;

static void set_args(int version, const char *parent, const char *id)
{
    memset(&args, 0, sizeof(args));
    args.cgroup_version = version;
    args.id = id;
    snprintf(args.parent_cgroup, sizeof(args.parent_cgroup), "%s", parent);
}

static void add_cgroup(const char *spec)
{
    cr_assert_eq(jl_parse_cgroup(spec, &args.cgroups[args.n_cgroups++], &err), 0, "%s", err.text);
}

TestSuite(jailer_cgroup);

Test(jailer_cgroup, controller_of_a_file)
{
    char c[32];
    cr_assert_eq(jl_cg_controller("cpu.cfs_quota_us", c, sizeof(c)), 0);
    cr_assert_str_eq(c, "cpu");
    cr_assert_eq(jl_cg_controller("hugetlb.2MB.max", c, sizeof(c)), 0);
    cr_assert_str_eq(c, "hugetlb");
    cr_assert_eq(jl_cg_controller("cpuacct.usage", c, sizeof(c)), 0);
    cr_assert_str_eq(c, "cpuacct");
    cr_assert_eq(jl_cg_controller("nodot", c, sizeof(c)), -EINVAL);
    cr_assert_eq(jl_cg_controller(".x", c, sizeof(c)), -EINVAL);
    cr_assert_eq(jl_cg_controller("abcdef.x", c, 4), -EINVAL, "too long for the buffer");
}

/* Maps one file=value for v1 and checks the writes. */
static int map(const char *file, const char *value, struct jl_cg_write w[2])
{
    memset(w, 0, 2 * sizeof(*w));
    return jl_cg_v1_map(file, value, w, &err);
}

Test(jailer_cgroup, v1_names_pass_through)
{
    struct jl_cg_write w[2];
    cr_assert_eq(map("cpu.cfs_quota_us", "50000", w), 1);
    cr_assert_str_eq(w[0].file, "cpu.cfs_quota_us");
    cr_assert_str_eq(w[0].value, "50000");
    cr_assert_eq(map("pids.max", "64", w), 1);
    cr_assert_str_eq(w[0].file, "pids.max");
    cr_assert_eq(map("cpuset.cpus", "0-1", w), 1);
    cr_assert_str_eq(w[0].value, "0-1");
    cr_assert_eq(map("memory.limit_in_bytes", "300M", w), 1);
    cr_assert_str_eq(w[0].file, "memory.limit_in_bytes");
}

Test(jailer_cgroup, v1_cpu_max)
{
    struct jl_cg_write w[2];
    cr_assert_eq(map("cpu.max", "50000 100000", w), 2, "%s", err.text);
    cr_assert_str_eq(w[0].file, "cpu.cfs_period_us", "the period is written first");
    cr_assert_str_eq(w[0].value, "100000");
    cr_assert_str_eq(w[1].file, "cpu.cfs_quota_us");
    cr_assert_str_eq(w[1].value, "50000");
    cr_assert_eq(map("cpu.max", "max 100000", w), 2);
    cr_assert_str_eq(w[1].value, "-1", "max is no quota");
    cr_assert_eq(map("cpu.max", "max", w), 1);
    cr_assert_str_eq(w[0].file, "cpu.cfs_quota_us");
    cr_assert_str_eq(w[0].value, "-1");
    cr_assert_eq(map("cpu.max", "20000", w), 1);
    cr_assert_str_eq(w[0].value, "20000");
    const char *bad[] = {"5o000", "50000 abc", "50000  100000", "-1", "", " 50000", "50000 "};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(map("cpu.max", bad[i], w), -EINVAL, "'%s' accepted", bad[i]);
}

Test(jailer_cgroup, v1_cpu_weight_memory_hugetlb)
{
    struct jl_cg_write w[2];
    cr_assert_eq(map("cpu.weight", "100", w), 1);
    cr_assert_str_eq(w[0].file, "cpu.shares");
    cr_assert_str_eq(w[0].value, "1024", "the default weight is the default shares");
    cr_assert_eq(map("cpu.weight", "10000", w), 1);
    cr_assert_str_eq(w[0].value, "102400");
    cr_assert_eq(map("cpu.weight", "1", w), 1);
    cr_assert_str_eq(w[0].value, "10");
    cr_assert_eq(map("cpu.weight", "0", w), -EINVAL);
    cr_assert_eq(map("cpu.weight", "10001", w), -EINVAL);
    cr_assert_eq(map("cpu.weight", "99999999999999999999", w), -EINVAL,
                 "a weight past LONG_MAX is refused, not undefined");
    cr_assert_eq(map("memory.max", "300M", w), 1);
    cr_assert_str_eq(w[0].file, "memory.limit_in_bytes");
    cr_assert_str_eq(w[0].value, "300M");
    cr_assert_eq(map("memory.max", "max", w), 1);
    cr_assert_str_eq(w[0].value, "-1");
    cr_assert_eq(map("hugetlb.2MB.max", "4194304", w), 1);
    cr_assert_str_eq(w[0].file, "hugetlb.2MB.limit_in_bytes");
    cr_assert_str_eq(w[0].value, "4194304");
    cr_assert_eq(map("hugetlb.1GB.max", "max", w), 1);
    cr_assert_str_eq(w[0].file, "hugetlb.1GB.limit_in_bytes");
    cr_assert_str_eq(w[0].value, "-1");
}

Test(jailer_cgroup, find_mounts)
{
    char m[256];
    cr_assert_eq(jl_cg_find_mount(mounts, 1, "cpu", m, sizeof(m)), 0);
    cr_assert_str_eq(m, "/sys/fs/cgroup/cpu", "cpu, not cpuacct or cpuset");
    cr_assert_eq(jl_cg_find_mount(mounts, 1, "cpuacct", m, sizeof(m)), 0);
    cr_assert_str_eq(m, "/sys/fs/cgroup/cpuacct");
    cr_assert_eq(jl_cg_find_mount(mounts, 1, "memory", m, sizeof(m)), 0);
    cr_assert_str_eq(m, "/sys/fs/cgroup/memory");
    cr_assert_eq(jl_cg_find_mount(mounts, 2, NULL, m, sizeof(m)), 0);
    cr_assert_str_eq(m, "/sys/fs/cgroup/unified");
    cr_assert_eq(jl_cg_find_mount(mounts, 1, "hugetlb", m, sizeof(m)), -ENOENT, "v2-only controller");
    cr_assert_eq(jl_cg_find_mount(mounts, 1, "systemd", m, sizeof(m)), -ENOENT, "name=systemd is no controller");
    cr_assert_eq(jl_cg_find_mount(mounts, 1, "rw", m, sizeof(m)), -ENOENT, "only cgroup mounts count");

    /* Co-mounted controllers (cpu,cpuacct) and an escaped space in the mount point. */
    const char *other = "cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,nosuid,cpu,cpuacct 0 0\n"
                        "cgroup /mnt/my\\040cgroups/pids cgroup rw,pids 0 0";
    cr_assert_eq(jl_cg_find_mount(other, 1, "cpuacct", m, sizeof(m)), 0);
    cr_assert_str_eq(m, "/sys/fs/cgroup/cpu,cpuacct");
    cr_assert_eq(jl_cg_find_mount(other, 1, "pids", m, sizeof(m)), 0);
    cr_assert_str_eq(m, "/mnt/my cgroups/pids", "no newline at the end, octal escape undone");
    cr_assert_eq(jl_cg_find_mount(other, 2, NULL, m, sizeof(m)), -ENOENT);
    cr_assert_eq(jl_cg_find_mount("", 1, "cpu", m, sizeof(m)), -ENOENT);
}

Test(jailer_cgroup, v1_plan_paths_and_writes)
{
    set_args(1, "ember", "vm1");
    add_cgroup("cpu.max=50000 100000");
    add_cgroup("memory.max=300M");
    add_cgroup("pids.max=64");
    add_cgroup("cpuset.cpus=0");
    add_cgroup("cpu.shares=512");
    cr_assert_eq(jl_cg_plan_build(&plan, &args, mounts, &err), 0, "%s", err.text);
    cr_assert_eq(plan.version, 1);
    cr_assert_eq(plan.attach_only, 0);
    cr_assert_eq(plan.n_dirs, 4, "one cgroup per controller");
    const char *want[][2] = {{"cpu", "/sys/fs/cgroup/cpu/ember/vm1"},
                             {"memory", "/sys/fs/cgroup/memory/ember/vm1"},
                             {"pids", "/sys/fs/cgroup/pids/ember/vm1"},
                             {"cpuset", "/sys/fs/cgroup/cpuset/ember/vm1"}};
    for (int i = 0; i < 4; i++) {
        cr_assert_str_eq(plan.dirs[i].controller, want[i][0]);
        cr_assert_str_eq(plan.dirs[i].path, want[i][1]);
        cr_assert_eq(plan.dirs[i].levels, 2);
        cr_assert_eq(plan.dirs[i].created_from, -1, "nothing created yet");
    }
    cr_assert_eq(plan.n_writes, 6);
    const struct {
        int dir;
        const char *file, *value;
    } w[] = {{0, "cpu.cfs_period_us", "100000"},
             {0, "cpu.cfs_quota_us", "50000"},
             {1, "memory.limit_in_bytes", "300M"},
             {2, "pids.max", "64"},
             {3, "cpuset.cpus", "0"},
             {0, "cpu.shares", "512"}};
    for (int i = 0; i < 6; i++) {
        cr_assert_eq(plan.writes[i].dir, w[i].dir, "write %d", i);
        cr_assert_str_eq(plan.writes[i].file, w[i].file);
        cr_assert_str_eq(plan.writes[i].value, w[i].value);
    }
    cr_assert_eq(plan.n_enable, 0, "subtree_control is v2 only");
}

Test(jailer_cgroup, nested_parent_cgroup)
{
    set_args(1, "tenants/a/ember", "vm-7");
    add_cgroup("pids.max=10");
    cr_assert_eq(jl_cg_plan_build(&plan, &args, mounts, &err), 0, "%s", err.text);
    cr_assert_str_eq(plan.dirs[0].path, "/sys/fs/cgroup/pids/tenants/a/ember/vm-7");
    cr_assert_eq(plan.dirs[0].levels, 4);
}

Test(jailer_cgroup, v2_plan)
{
    set_args(2, "ember", "vm1");
    add_cgroup("hugetlb.2MB.max=4194304");
    add_cgroup("cpu.max=50000 100000");
    add_cgroup("hugetlb.1GB.max=0");
    add_cgroup("cgroup.max.descendants=5");
    cr_assert_eq(jl_cg_plan_build(&plan, &args, mounts, &err), 0, "%s", err.text);
    cr_assert_eq(plan.n_dirs, 1, "v2 has one hierarchy");
    cr_assert_str_eq(plan.dirs[0].path, "/sys/fs/cgroup/unified/ember/vm1");
    cr_assert_str_eq(plan.dirs[0].mount, "/sys/fs/cgroup/unified");
    cr_assert_eq(plan.n_writes, 4);
    cr_assert_str_eq(plan.writes[1].file, "cpu.max", "no v1 mapping under v2");
    cr_assert_str_eq(plan.writes[1].value, "50000 100000", "the value keeps its space");
    cr_assert_eq(plan.n_enable, 2, "hugetlb once, cpu; cgroup.* is no controller");
    cr_assert_str_eq(plan.enable[0], "hugetlb");
    cr_assert_str_eq(plan.enable[1], "cpu");
}

Test(jailer_cgroup, v2_parent_only_means_join_the_parent)
{
    set_args(2, "ember", "vm1");
    args.parent_cgroup_given = 1;
    cr_assert_eq(jl_cg_plan_build(&plan, &args, mounts, &err), 0, "%s", err.text);
    cr_assert_eq(plan.attach_only, 1);
    cr_assert_eq(plan.n_dirs, 1);
    cr_assert_str_eq(plan.dirs[0].path, "/sys/fs/cgroup/unified/ember");
    cr_assert_eq(plan.n_writes, 0);

    set_args(2, "ember", "vm1"); /* parent only defaulted: no cgroup at all */
    cr_assert_eq(jl_cg_plan_build(&plan, &args, mounts, &err), 0);
    cr_assert_eq(plan.n_dirs, 0);
    set_args(1, "ember", "vm1");
    args.parent_cgroup_given = 1;
    cr_assert_eq(jl_cg_plan_build(&plan, &args, mounts, &err), 0);
    cr_assert_eq(plan.n_dirs, 0, "v1 without --cgroup: nothing");
}

Test(jailer_cgroup, missing_hierarchies)
{
    set_args(1, "ember", "vm1");
    add_cgroup("hugetlb.2MB.limit_in_bytes=0");
    cr_assert_eq(jl_cg_plan_build(&plan, &args, mounts, &err), -ENOENT);
    cr_assert(strstr(err.text, "no cgroup v1 hierarchy with the hugetlb controller") != NULL, "%s", err.text);
    set_args(2, "ember", "vm1");
    add_cgroup("pids.max=1");
    cr_assert_eq(jl_cg_plan_build(&plan, &args, "cgroup /sys/fs/cgroup/pids cgroup rw,pids 0 0\n", &err), -ENOENT);
    cr_assert(strstr(err.text, "no cgroup2 hierarchy") != NULL, "%s", err.text);
    set_args(1, "ember", "vm1");
    add_cgroup("cpu.max=lots");
    cr_assert_eq(jl_cg_plan_build(&plan, &args, mounts, &err), -EINVAL, "bad cpu.max value caught in the plan");
}

/* A fake hierarchy in a temporary directory: creation that fails half-way removes what it made. */
Test(jailer_cgroup, failed_creation_leaves_nothing)
{
    char tmp[] = "/tmp/jl-cg-XXXXXX";
    cr_assert_not_null(mkdtemp(tmp));
    char fake[512];
    snprintf(fake, sizeof(fake), "cgroup %s cgroup rw,pids 0 0\n", tmp);
    set_args(1, "a/b", "vm1");
    add_cgroup("pids.max=10"); /* a plain directory has no pids.max: the write fails */
    cr_assert_eq(jl_cg_plan_build(&plan, &args, fake, &err), 0, "%s", err.text);
    cr_assert_neq(jl_cg_create(&plan, &err), 0);
    cr_assert(strstr(err.text, "pids.max") != NULL, "%s", err.text);
    char path[600];
    snprintf(path, sizeof(path), "%s/a", tmp);
    cr_assert_neq(access(path, F_OK), 0, "%s left behind", path);

    /* With the parent already there, only the levels this run made go. */
    cr_assert_eq(mkdir(path, 0755), 0);
    cr_assert_eq(jl_cg_plan_build(&plan, &args, fake, &err), 0, "%s", err.text);
    cr_assert_neq(jl_cg_create(&plan, &err), 0);
    cr_assert_eq(access(path, F_OK), 0, "the operator's %s was removed", path);
    snprintf(path, sizeof(path), "%s/a/b", tmp);
    cr_assert_neq(access(path, F_OK), 0, "%s left behind", path);

    /* An existing leaf is refused and left alone. */
    snprintf(path, sizeof(path), "%s/a/b", tmp);
    cr_assert_eq(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/a/b/vm1", tmp);
    cr_assert_eq(mkdir(path, 0755), 0);
    cr_assert_eq(jl_cg_plan_build(&plan, &args, fake, &err), 0, "%s", err.text);
    cr_assert_eq(jl_cg_create(&plan, &err), -EEXIST);
    cr_assert(strstr(err.text, "already exists") != NULL, "%s", err.text);
    snprintf(path, sizeof(path), "%s/a/b/vm1", tmp);
    cr_assert_eq(access(path, F_OK), 0, "an existing leaf must stay");

    rmdir(path);
    snprintf(path, sizeof(path), "%s/a/b", tmp);
    rmdir(path);
    snprintf(path, sizeof(path), "%s/a", tmp);
    rmdir(path);
    rmdir(tmp);
}
