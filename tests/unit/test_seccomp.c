/*
 * seccomp: a filter compiled ahead (seccomp_precompile) and installed from
 * the compiled program behaves like one compiled at install time: allowed
 * calls work, a forbidden one ends the process with EXIT_BAD_SYSCALL. Each
 * case runs in a child, since a filter cannot be removed.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vm/seccomp.h"

/* In a child: optionally precompile, install the vCPU filter, make one allowed and one forbidden call. */
static int child_status(int precompile)
{
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        struct errmsg e;
        seccomp_set_enabled(1);
        if (precompile && seccomp_precompile(THREAD_VCPU, &e))
            _exit(10);
        if (seccomp_install(THREAD_VCPU, &e))
            _exit(11);
        if (syscall(SYS_gettid) <= 0) /* allowed for every thread */
            _exit(12);
        syscall(SYS_getppid); /* allowed for none */
        _exit(13);
    }
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    return st;
}

Test(seccomp, precompiled_filter_allows_and_forbids_like_the_compiled_one)
{
    seccomp_set_enabled(1);
    if (!seccomp_enabled())
        cr_skip_test("seccomp is off in sanitizer builds (their runtime needs calls the filters forbid)");
    int st = child_status(1);
    cr_assert(WIFEXITED(st), "child status %#x", st);
    cr_assert_eq(WEXITSTATUS(st), EXIT_BAD_SYSCALL, "precompiled: exit %d", WEXITSTATUS(st));
    st = child_status(0);
    cr_assert(WIFEXITED(st), "child status %#x", st);
    cr_assert_eq(WEXITSTATUS(st), EXIT_BAD_SYSCALL, "compiled at install: exit %d", WEXITSTATUS(st));
}

Test(seccomp, precompile_is_a_no_op_when_disabled)
{
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        struct errmsg e;
        seccomp_set_enabled(0);
        if (seccomp_precompile(THREAD_VMM, &e) || seccomp_install(THREAD_VMM, &e))
            _exit(1);
        syscall(SYS_getppid); /* no filter: allowed */
        _exit(0);
    }
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x", st);
}
