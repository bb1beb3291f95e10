/* Running the build's host tools from unit tests (tests/unit/tool_fixture.h). */
#include "tests/unit/tool_fixture.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef EMBER_TOOLS_DIR /* the Makefile passes the build directory; this is for tools that do not (lint) */
#define EMBER_TOOLS_DIR "build"
#endif

void tool_start(struct tool_run *t, const char *name, const char *const *args)
{
    const char *dir = getenv("EMBER_TOOLS_DIR");
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir && *dir ? dir : EMBER_TOOLS_DIR, name);
    cr_assert_eq(access(path, X_OK), 0, "%s: %s (make build/unit-tests builds the tools first)", path, strerror(errno));
    const char *argv[16] = {path};
    size_t n = 1;
    for (; args[n - 1]; n++)
        cr_assert_lt(n, sizeof(argv) / sizeof(argv[0]) - 1);
    memcpy(argv + 1, args, (n - 1) * sizeof(*args));
    argv[n] = NULL;

    snprintf(t->out_path, sizeof(t->out_path), "/tmp/ember-tool-out-XXXXXX");
    int out = mkostemp(t->out_path, O_CLOEXEC);
    cr_assert_geq(out, 0);
    t->out[0] = '\0';
    fflush(NULL);
    t->pid = fork();
    cr_assert_geq(t->pid, 0);
    if (t->pid == 0) {
        if (dup2(out, STDOUT_FILENO) < 0 || dup2(out, STDERR_FILENO) < 0)
            _exit(126);
        execv(path, (char *const *)argv);
        _exit(127);
    }
    close(out);
}

int tool_wait(struct tool_run *t, int timeout_ms)
{
    int pidfd = (int)syscall(SYS_pidfd_open, t->pid, 0);
    cr_assert_geq(pidfd, 0, "pidfd_open: %s", strerror(errno));
    struct pollfd p = {.fd = pidfd, .events = POLLIN};
    int ready;
    do
        ready = poll(&p, 1, timeout_ms);
    while (ready < 0 && errno == EINTR);
    close(pidfd);
    if (ready == 0)
        kill(t->pid, SIGKILL);
    int status = 0;
    cr_assert_eq(waitpid(t->pid, &status, 0), t->pid);

    FILE *f = fopen(t->out_path, "r");
    cr_assert_not_null(f);
    size_t len = fread(t->out, 1, sizeof(t->out) - 1, f);
    t->out[len] = '\0';
    fclose(f);
    unlink(t->out_path);
    cr_assert_neq(ready, 0, "the tool did not finish within %d ms; it printed:\n%s", timeout_ms, t->out);
    cr_assert(WIFEXITED(status), "the tool died of signal %d; it printed:\n%s", WTERMSIG(status), t->out);
    cr_assert_null(strstr(t->out, "Sanitizer"), "the tool's sanitizer reported:\n%s", t->out);
    return WEXITSTATUS(status);
}

int tool_run(struct tool_run *t, const char *name, const char *const *args, int timeout_ms)
{
    tool_start(t, name, args);
    return tool_wait(t, timeout_ms);
}
