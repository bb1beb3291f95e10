/* hostcompat: command-line assembly and the kvm-pvm compatibility switches. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vm/hostcompat.h"

/* Whether `word` appears in `s` as a whole space-separated word. */
static int has_word(const char *s, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = s; (p = strstr(p, word)) != NULL; p++)
        if ((p == s || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
            return 1;
    return 0;
}

Test(cmdline_build, joins_with_one_space)
{
    char out[64];
    cr_assert_eq(cmdline_build(out, sizeof(out), "console=ttyS0 panic=1", "nopv"), 26);
    cr_assert_str_eq(out, "console=ttyS0 panic=1 nopv");
}

Test(cmdline_build, empty_parts)
{
    char out[64];
    cr_assert_eq(cmdline_build(out, sizeof(out), "", "nopv"), 4);
    cr_assert_str_eq(out, "nopv", "no leading space");
    cr_assert_eq(cmdline_build(out, sizeof(out), "quiet", ""), 5);
    cr_assert_str_eq(out, "quiet", "no trailing space");
    cr_assert_eq(cmdline_build(out, sizeof(out), "quiet", NULL), 5);
    cr_assert_str_eq(out, "quiet");
    cr_assert_eq(cmdline_build(out, sizeof(out), "", ""), 0);
    cr_assert_str_eq(out, "");
}

Test(cmdline_build, limit_boundary_base_only)
{
    char base[32], out[32];
    memset(base, 'a', 15);
    base[15] = '\0';
    /* max counts the NUL: 15 characters need 16 bytes. */
    cr_assert_eq(cmdline_build(out, 16, base, ""), 15);
    cr_assert_str_eq(out, base);
    cr_assert_eq(cmdline_build(out, 15, base, ""), -E2BIG);
    cr_assert_eq(cmdline_build(out, 0, base, ""), -E2BIG);
    cr_assert_eq(cmdline_build(out, 1, "", ""), 0, "empty line in one byte");
}

Test(cmdline_build, limit_boundary_with_extra)
{
    char out[32];
    /* "abc def" is 7 characters. */
    cr_assert_eq(cmdline_build(out, 8, "abc", "def"), 7);
    cr_assert_str_eq(out, "abc def");
    cr_assert_eq(cmdline_build(out, 7, "abc", "def"), -E2BIG);
    cr_assert_eq(cmdline_build(out, 4, "abc", "def"), -E2BIG, "base fits, the rest does not");
}

Test(hostcompat, active_truth_table)
{
    cr_assert_eq(hostcompat_active(HOST_COMPAT_ON, 0), 1);
    cr_assert_eq(hostcompat_active(HOST_COMPAT_ON, 1), 1);
    cr_assert_eq(hostcompat_active(HOST_COMPAT_OFF, 0), 0);
    cr_assert_eq(hostcompat_active(HOST_COMPAT_OFF, 1), 0);
    cr_assert_eq(hostcompat_active(HOST_COMPAT_AUTO, 0), 0);
    cr_assert_eq(hostcompat_active(HOST_COMPAT_AUTO, 1), 1);
}

Test(hostcompat, nopv_only_for_smp)
{
    const char *up = hostcompat_cmdline(1);
    cr_assert_not_null(up);
    cr_assert_not(has_word(up, "nopv"), "UP line: %s", up);
    /* The interpreter runs XSAVE*, POPCNT, CLAC/STAC...: nothing left to hide from one CPU. */
    cr_assert_not(has_word(up, "noxsave"), "UP line: %s", up);
    cr_assert_eq(strstr(up, "clearcpuid="), NULL, "UP line: %s", up);
    cr_assert_not(has_word(hostcompat_cmdline(0), "nopv"));

    const char *smp = hostcompat_cmdline(2);
    cr_assert(has_word(smp, "nopv"), "SMP line: %s", smp);
    cr_assert_not(has_word(smp, "noxsave"));
    cr_assert(has_word(hostcompat_cmdline(32), "nopv"));
    cr_assert_eq(strstr(smp, "  "), NULL, "single spaces");
    cr_assert_neq(smp[strlen(smp) - 1], ' ');
}

/* A fake /sys/module with the named module folders. */
static void fake_sys_module(char *dir, const char *const *mods)
{
    strcpy(dir, "/tmp/ember-sysmod-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    for (; *mods; mods++) {
        char p[256];
        snprintf(p, sizeof(p), "%s/%s", dir, *mods);
        cr_assert_eq(mkdir(p, 0755), 0);
    }
}

static void remove_fake(const char *dir, const char *const *mods)
{
    for (; *mods; mods++) {
        char p[256];
        snprintf(p, sizeof(p), "%s/%s", dir, *mods);
        rmdir(p);
    }
    rmdir(dir);
}

Test(hostcompat, detection_needs_an_open_kvm_and_kvm_pvm_alone)
{
    static const char *const pvm[] = {"kvm", "kvm_pvm", NULL};
    static const char *const amd[] = {"kvm", "kvm_amd", NULL};
    static const char *const both[] = {"kvm", "kvm_pvm", "kvm_intel", NULL};
    char d[64];
    int fd = open("/dev/null", O_RDONLY); /* stands for the open /dev/kvm */
    cr_assert_geq(fd, 0);

    fake_sys_module(d, pvm);
    cr_assert_eq(hostcompat_is_pvm(fd, d), 1, "kvm_pvm alone with /dev/kvm open");
    cr_assert_eq(hostcompat_is_pvm(-1, d), 0, "no /dev/kvm opened: not a kvm-pvm host, whatever sysfs says");
    remove_fake(d, pvm);

    fake_sys_module(d, amd);
    cr_assert_eq(hostcompat_is_pvm(fd, d), 0, "kvm_amd");
    remove_fake(d, amd);

    fake_sys_module(d, both);
    cr_assert_eq(hostcompat_is_pvm(fd, d), 0, "a hardware vendor module beside kvm_pvm provides /dev/kvm");
    remove_fake(d, both);
    close(fd);
}
