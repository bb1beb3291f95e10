/*
 * ember-jailer's janitor: the record of what a run made read at any moment
 * of a kill (a mkdir noted as pending), the cgroup.procs parser, and the
 * janitor process itself: released, it leaves everything; when its
 * supervisor's end closes without the release, it waits for the VMM and
 * cleans up.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "jailer/cgroup.h"
#include "jailer/jail.h"
#include "jailer/janitor.h"

static struct errmsg err;
static char tmp[64];

static void init(void)
{
    strcpy(tmp, "/tmp/jl-janitor-XXXXXX");
    cr_assert_not_null(mkdtemp(tmp));
}

/* rm -rf: whatever cannot be removed stays, the walk goes on. */
static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st, (void)type, (void)ftw;
    remove(path);
    return 0;
}

static void fini(void) { nftw(tmp, remove_entry, 16, FTW_DEPTH | FTW_PHYS); }

TestSuite(jailer_janitor, .init = init, .fini = fini);

static int exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static void sleep_ms(int ms) { nanosleep(&(struct timespec){ms / 1000, (ms % 1000) * 1000000L}, NULL); }

/* Polls for up to ms for path to vanish. */
static int gone_within(const char *path, int ms)
{
    for (int t = 0; t < ms && exists(path); t += 10)
        sleep_ms(10);
    return !exists(path);
}

Test(jailer_janitor, parse_pids)
{
    pid_t pids[3];
    cr_assert_eq(jl_parse_pids("", pids, 3), 0);
    cr_assert_eq(jl_parse_pids("12\n345\n", pids, 3), 2);
    cr_assert_eq(pids[0], 12);
    cr_assert_eq(pids[1], 345);
    cr_assert_eq(jl_parse_pids("1\n2\n3\n4\n", pids, 3), 3, "at most max");
    cr_assert_eq(pids[2], 3);
    cr_assert_eq(jl_parse_pids("12x\n", pids, 3), -EINVAL);
    cr_assert_eq(jl_parse_pids("-5\n", pids, 3), -EINVAL);
    cr_assert_eq(jl_parse_pids("0\n", pids, 3), -EINVAL);
}

/* A kill between mkdir of <id> and the flag that says this run made it: the empty level goes, a used one stays. */
Test(jailer_janitor, jail_level_pending_at_the_kill)
{
    static struct jl_jail j;
    char base[128], id[256], root[300];
    snprintf(base, sizeof(base), "%s/base", tmp);
    cr_assert_eq(jl_jail_paths(&j, base, "ember", "vm1", &err), 0);
    snprintf(id, sizeof(id), "%s/ember/vm1", base);
    cr_assert_eq(mkdir(base, 0755), 0);
    snprintf(root, sizeof(root), "%s/ember", base);
    cr_assert_eq(mkdir(root, 0755), 0);
    cr_assert_eq(mkdir(id, 0755), 0);
    j.created_from = j.exec_len; /* <base>/ember made by the run, then killed during mkdir <id> */
    j.pending_len = j.id_len;
    cr_assert_eq(jl_jail_remove(&j, &err), 0, "%s", err.text);
    cr_assert_not(exists(root), "%s (made by the run) left", root);
    cr_assert(exists(base), "the operator's base removed");

    /* The mkdir failed (EEXIST): the <id> is the operator's prepared one, not empty: it stays. */
    cr_assert_eq(jl_jail_paths(&j, base, "ember", "vm1", &err), 0);
    cr_assert_eq(mkdir(root, 0755), 0);
    cr_assert_eq(mkdir(id, 0755), 0);
    snprintf(root, sizeof(root), "%s/root", id);
    cr_assert_eq(mkdir(root, 0755), 0);
    j.pending_len = j.id_len;
    cr_assert_eq(jl_jail_remove(&j, &err), 0, "%s", err.text);
    cr_assert(exists(root), "the operator's prepared root removed");
    cr_assert_eq(j.pending_len, 0);
}

/* The same for a cgroup level: a kill between its mkdir and created_to. */
Test(jailer_janitor, cgroup_level_pending_at_the_kill)
{
    static struct jl_args a;
    static struct jl_cg_plan plan;
    a.cgroup_version = 1;
    a.id = "vm1";
    snprintf(a.parent_cgroup, sizeof(a.parent_cgroup), "p");
    cr_assert_eq(jl_parse_cgroup("pids.max=10", &a.cgroups[a.n_cgroups++], &err), 0, "%s", err.text);
    char fake[256], path[300];
    snprintf(fake, sizeof(fake), "cgroup %s cgroup rw,pids 0 0\n", tmp);
    cr_assert_eq(jl_cg_plan_build(&plan, &a, fake, &err), 0, "%s", err.text);
    cr_assert_eq(plan.dirs[0].pending, -1, "nothing pending in a new plan");
    snprintf(path, sizeof(path), "%s/p", tmp);
    cr_assert_eq(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/p/vm1", tmp);
    cr_assert_eq(mkdir(path, 0755), 0);
    plan.dirs[0].created_from = plan.dirs[0].created_to = 0;
    plan.dirs[0].pending = 1;
    cr_assert_eq(jl_cg_remove(&plan, &err), 0, "%s", err.text);
    snprintf(path, sizeof(path), "%s/p", tmp);
    cr_assert_not(exists(path), "%s left", path);
    cr_assert_eq(plan.dirs[0].pending, -1);
}

/* A record of a fresh jail made under tmp, in a shared mapping. */
static struct jl_made *made_jail(const char *name, char *id_dir, size_t max)
{
    struct jl_made *m = jl_made_map(&err);
    cr_assert_not_null(m, "%s", err.text);
    char base[128];
    snprintf(base, sizeof(base), "%s/%s", tmp, name);
    cr_assert_eq(jl_jail_paths(&m->jail, base, "ember", "vm1", &err), 0);
    m->jail_valid = 1;
    cr_assert_eq(jl_jail_create(&m->jail, &err), 0, "%s", err.text);
    snprintf(id_dir, max, "%s", base);
    return m;
}

Test(jailer_janitor, released_it_leaves_everything)
{
    char dir[160];
    struct jl_made *m = made_jail("released", dir, sizeof(dir));
    int fd = jl_janitor_start(m, &err);
    cr_assert_geq(fd, 0, "%s", err.text);
    jl_janitor_release(fd); /* returns once the janitor has exited */
    sleep_ms(50);
    cr_assert(exists(m->jail.path), "the janitor removed a jail after its release");
}

Test(jailer_janitor, supervisor_killed_it_cleans_up)
{
    char dir[160];
    struct jl_made *m = made_jail("killed", dir, sizeof(dir));
    int fd = jl_janitor_start(m, &err);
    cr_assert_geq(fd, 0, "%s", err.text);
    close(fd); /* what the supervisor's death does */
    cr_assert(gone_within(dir, 5000), "%s left after the supervisor's death", dir);
}

Test(jailer_janitor, it_waits_for_the_vmm)
{
    char dir[160];
    struct jl_made *m = made_jail("waits", dir, sizeof(dir));
    pid_t vmm = fork();
    cr_assert_geq(vmm, 0);
    if (vmm == 0) {
        pause();
        _exit(0);
    }
    m->vmm = vmm;
    int fd = jl_janitor_start(m, &err);
    cr_assert_geq(fd, 0, "%s", err.text);
    close(fd);
    sleep_ms(300);
    cr_assert(exists(m->jail.path), "cleaned while the VMM still ran");
    kill(vmm, SIGKILL);
    cr_assert(gone_within(dir, 5000), "%s left after the VMM ended", dir);
    waitpid(vmm, NULL, 0);
}

Test(jailer_janitor, keep_jail_keeps_it)
{
    char dir[160];
    struct jl_made *m = made_jail("kept", dir, sizeof(dir));
    int fd = jl_janitor_start(m, &err);
    cr_assert_geq(fd, 0, "%s", err.text);
    m->keep = 1;
    close(fd);
    sleep_ms(300);
    cr_assert(exists(m->jail.path), "--keep-jail: the janitor removed the jail");
}
