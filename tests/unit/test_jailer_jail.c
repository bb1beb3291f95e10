/*
 * ember-jailer: the jail directory (paths, creation, the exec file's copy and
 * its libraries, device nodes, removal that follows no link and leaves the
 * operator's files) and the ELF dependency walk.
 */
#include <criterion/criterion.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jailer/elfdeps.h"
#include "jailer/jail.h"

static struct errmsg err;
static struct jl_jail jail;
static char tmp[64], self[PATH_MAX];

static void init(void)
{
    strcpy(tmp, "/tmp/jl-jail-XXXXXX");
    cr_assert_not_null(mkdtemp(tmp));
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    cr_assert_gt(n, 0);
    self[n] = '\0';
}

/* rm -rf: whatever cannot be removed stays, the walk goes on. */
static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st, (void)type, (void)ftw;
    remove(path);
    return 0;
}

static void fini(void) { nftw(tmp, remove_entry, 16, FTW_DEPTH | FTW_PHYS); }

/* mkdir -p (cuts path at each '/' in turn and puts it back) */
static void make_dirs(char *path)
{
    for (char *slash = strchr(path + 1, '/');; slash = strchr(slash + 1, '/')) {
        if (slash)
            *slash = '\0';
        cr_assert(mkdir(path, 0777) == 0 || errno == EEXIST, "mkdir %s: %s", path, strerror(errno));
        if (!slash)
            break;
        *slash = '/';
    }
}

TestSuite(jailer_jail, .init = init, .fini = fini);

static int exists(const char *fmt, const char *a, const char *b)
{
    char p[2 * PATH_MAX + 8];
    snprintf(p, sizeof(p), fmt, a, b);
    struct stat st;
    return lstat(p, &st) == 0;
}

static void need_root(void)
{
    if (geteuid() != 0)
        cr_skip_test("needs root (chown, mknod)");
}

Test(jailer_jail, paths)
{
    cr_assert_eq(jl_jail_paths(&jail, "/srv/jailer", "ember", "vm1", &err), 0);
    cr_assert_str_eq(jail.path, "/srv/jailer/ember/vm1/root", "Firecracker's layout");
    cr_assert_eq(jail.base_len, strlen("/srv/jailer"));
    cr_assert_eq(jail.exec_len, strlen("/srv/jailer/ember"));
    cr_assert_eq(jail.id_len, strlen("/srv/jailer/ember/vm1"));
    char base[PATH_MAX];
    memset(base, 'b', sizeof(base) - 8);
    base[0] = '/';
    base[sizeof(base) - 8] = '\0';
    cr_assert_eq(jl_jail_paths(&jail, base, "ember", "vm1", &err), -ENAMETOOLONG);
}

/* A fresh jail: everything made, then everything removed, without following the VMM's symlinks. */
Test(jailer_jail, fresh_jail_made_and_removed)
{
    need_root();
    char base[128], victim[128];
    snprintf(base, sizeof(base), "%s/base/deeper", tmp);
    snprintf(victim, sizeof(victim), "%s/victim", tmp);
    cr_assert_eq(mkdir(victim, 0755), 0);
    char vf[160];
    snprintf(vf, sizeof(vf), "%s/precious", victim);
    fclose(fopen(vf, "w"));

    cr_assert_eq(jl_jail_paths(&jail, base, "ember", "vm1", &err), 0);
    cr_assert_eq(jl_jail_create(&jail, &err), 0, "%s", err.text);
    cr_assert(jail.made_id);
    cr_assert_eq(jl_jail_copy_exec(&jail, self, "ember", 1234, 1234, &err), 0, "%s", err.text);
    struct stat st;
    char p[PATH_MAX + 64];
    snprintf(p, sizeof(p), "%s/ember", jail.path);
    cr_assert_eq(stat(p, &st), 0);
    cr_assert_eq(st.st_uid, 1234, "the copy belongs to the VMM's uid");
    cr_assert_eq(st.st_nlink, 1, "a copy, not a link");
    cr_assert(exists("%s%s", jail.path, "/lib64/ld-linux-x86-64.so.2"), "the interpreter is in the jail");
    cr_assert(exists("%s%s", jail.path, "/lib/x86_64-linux-gnu/libc.so.6"), "libc is in the jail");
    snprintf(p, sizeof(p), "%s/lib/x86_64-linux-gnu/libc.so.6", jail.path);
    cr_assert_eq(stat(p, &st), 0);
    cr_assert_eq(st.st_uid, 0, "libraries stay root's");
    cr_assert_eq(st.st_mode & 0777, 0555);
    if (access("/dev/kvm", F_OK) == 0) {
        cr_assert_eq(jl_jail_devices(&jail, 1234, 1234, &err), 0, "%s", err.text);
        snprintf(p, sizeof(p), "%s/dev/kvm", jail.path);
        cr_assert_eq(stat(p, &st), 0);
        cr_assert(S_ISCHR(st.st_mode));
        cr_assert_eq(st.st_uid, 1234);
        cr_assert_eq(st.st_mode & 0777, 0600);
        cr_assert(exists("%s%s", jail.path, "/run"));
    }
    cr_assert_eq(jl_jail_write_pid(&jail, "ember", 4242, &err), 0, "%s", err.text);
    cr_assert(exists("%s%s", jail.path, "/ember.pid"));

    /* What a hostile VMM could leave: links out of the jail and a deep tree. */
    snprintf(p, sizeof(p), "%s/escape", jail.path);
    cr_assert_eq(symlink(victim, p), 0);
    /* /run exists already when jl_jail_devices ran (a host with /dev/kvm). */
    snprintf(p, sizeof(p), "%s/run", jail.path);
    cr_assert(mkdir(p, 0755) == 0 || errno == EEXIST);
    snprintf(p, sizeof(p), "%s/run/sock-link", jail.path);
    cr_assert_eq(symlink(vf, p), 0);
    snprintf(p, sizeof(p), "%s/d", jail.path);
    for (int i = 0; i < 40; i++) {
        mkdir(p, 0755);
        strcat(p, "/d");
    }

    cr_assert_eq(jl_jail_remove(&jail, &err), 0, "%s", err.text);
    snprintf(p, sizeof(p), "%s/base", tmp);
    cr_assert_neq(access(p, F_OK), 0, "%s (made by this run) must be gone", p);
    cr_assert_eq(access(vf, F_OK), 0, "a file outside the jail was removed through a symlink");
}

/* A root the operator prepared: only what the run added goes, and the root gets its owner back. */
Test(jailer_jail, prepared_root_keeps_the_operators_files)
{
    need_root();
    char base[128], p[3 * PATH_MAX + 64];
    snprintf(base, sizeof(base), "%s/srv", tmp);
    cr_assert_eq(jl_jail_paths(&jail, base, "ember", "vm2", &err), 0);
    snprintf(p, sizeof(p), "%s/dev", jail.path);
    make_dirs(p);
    snprintf(p, sizeof(p), "%s/vmlinux", jail.path);
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f, "%s: %s", p, strerror(errno));
    int wrote = fputs("k\n", f) >= 0;
    cr_assert(fclose(f) == 0 && wrote, "%s", p);
    cr_assert_eq(chmod(jail.path, 0711), 0, "%s", strerror(errno));
    cr_assert_eq(jl_jail_create(&jail, &err), 0, "%s", err.text);
    cr_assert_eq(jail.made_id + jail.made_root, 0);
    cr_assert_eq(jl_jail_copy_exec(&jail, self, "ember", 1234, 1234, &err), 0, "%s", err.text);
    if (access("/dev/kvm", F_OK) == 0) {
        cr_assert_eq(jl_jail_devices(&jail, 1234, 1234, &err), 0, "%s", err.text);
        struct stat st;
        cr_assert_eq(stat(jail.path, &st), 0);
        cr_assert_eq(st.st_uid, 1234, "the root belongs to the VMM while it runs (as with Firecracker)");
    }
    cr_assert_eq(jl_jail_write_pid(&jail, "ember", 1, &err), 0, "%s", err.text);

    /* A second jailer with the same id: the exec file's copy is the lock; nothing of the first is touched. */
    struct jl_jail second;
    cr_assert_eq(jl_jail_paths(&second, base, "ember", "vm2", &err), 0);
    cr_assert_eq(jl_jail_create(&second, &err), 0);
    cr_assert_eq(jl_jail_copy_exec(&second, self, "ember", 1234, 1234, &err), -EEXIST);
    cr_assert(strstr(err.text, "a VM with this id is running") != NULL, "%s", err.text);
    cr_assert(strstr(err.text, second.path) && strstr(err.text, "/ember exists"), "the path in the way: %s", err.text);
    cr_assert_eq(jl_jail_remove(&second, &err), 0, "%s", err.text);
    cr_assert(exists("%s%s", jail.path, "/ember"), "the second jailer removed the first one's file");

    cr_assert_eq(jl_jail_remove(&jail, &err), 0, "%s", err.text);
    cr_assert(exists("%s%s", jail.path, "/vmlinux"), "the operator's file must stay");
    cr_assert(exists("%s%s", jail.path, "/dev"), "the operator's directory must stay");
    cr_assert(!exists("%s%s", jail.path, "/dev/kvm"));
    cr_assert(!exists("%s%s", jail.path, "/ember"));
    cr_assert(!exists("%s%s", jail.path, "/ember.pid"));
    cr_assert(!exists("%s%s", jail.path, "/lib"));
    cr_assert(!exists("%s%s", jail.path, "/lib64"));
    cr_assert(!exists("%s%s", jail.path, "/run"));
    struct stat st;
    cr_assert_eq(stat(jail.path, &st), 0);
    cr_assert_eq(st.st_uid, 0, "owner given back");
    cr_assert_eq(st.st_mode & 07777, 0711, "mode given back");
}

Test(jailer_jail, elf_of_this_test_binary)
{
    struct jl_elf_deps *d = malloc(sizeof(*d));
    cr_assert_eq(jl_elf_deps(self, d, &err), 0, "%s", err.text);
    cr_assert_geq(d->n, 2);
    cr_assert_str_eq(d->path[0], "/lib64/ld-linux-x86-64.so.2", "the interpreter comes first");
    int libc = 0, criterion = 0;
    for (size_t i = 0; i < d->n; i++) {
        libc |= strstr(d->path[i], "/libc.so.6") != NULL;
        criterion |= strstr(d->path[i], "/libcriterion.so") != NULL;
        cr_assert_eq(d->path[i][0], '/');
    }
    cr_assert(libc && criterion, "direct and indirect needs are found");
    free(d);
}

Test(jailer_jail, elf_rejects_garbage)
{
    struct jl_elf_info *info = malloc(sizeof(*info));
    unsigned char buf[256] = "not an elf";
    cr_assert_eq(jl_elf_parse(buf, sizeof(buf), info), -ENOEXEC);
    cr_assert_eq(jl_elf_parse(buf, 10, info), -ENOEXEC, "shorter than a header");

    /* A valid header whose program headers lie beyond the end. */
    Elf64_Ehdr eh = {0};
    memcpy(eh.e_ident, ELFMAG, SELFMAG);
    eh.e_ident[EI_CLASS] = ELFCLASS64;
    eh.e_ident[EI_DATA] = ELFDATA2LSB;
    eh.e_machine = EM_X86_64;
    eh.e_phentsize = sizeof(Elf64_Phdr);
    eh.e_phoff = sizeof(eh);
    eh.e_phnum = 10;
    memcpy(buf, &eh, sizeof(eh));
    cr_assert_eq(jl_elf_parse(buf, sizeof(buf), info), -ENOEXEC, "program headers out of bounds");

    /* One PT_INTERP whose string runs past the file. */
    eh.e_phnum = 1;
    memcpy(buf, &eh, sizeof(eh));
    Elf64_Phdr ph = {.p_type = PT_INTERP, .p_offset = 200, .p_filesz = 100};
    memcpy(buf + sizeof(eh), &ph, sizeof(ph));
    cr_assert_eq(jl_elf_parse(buf, sizeof(buf), info), -ENOEXEC, "PT_INTERP out of bounds");
    ph.p_filesz = 10;
    memset(buf + 200, 'x', 10); /* in bounds but not NUL-terminated */
    memcpy(buf + sizeof(eh), &ph, sizeof(ph));
    cr_assert_eq(jl_elf_parse(buf, sizeof(buf), info), -ENOEXEC, "PT_INTERP without its NUL");
    memcpy(buf + 200, "/ld.so", 7);
    cr_assert_eq(jl_elf_parse(buf, sizeof(buf), info), 0);
    cr_assert_str_eq(info->interp, "/ld.so");
    cr_assert_eq(info->dynamic, 0);
    free(info);

    struct jl_elf_deps *d = malloc(sizeof(*d));
    cr_assert_neq(jl_elf_deps("/etc/hostname", d, &err), 0);
    cr_assert(strstr(err.text, "not an x86-64 ELF") != NULL, "%s", err.text);
    free(d);
}
