/*
 * Running the host tools the build made (ember-uffd-handler, ember-snapshot-merge)
 * from unit tests, no Test() here: started with their output in a file, waited
 * for with a deadline, their exit status and output checked.
 */
#ifndef EMBER_TEST_TOOL_FIXTURE_H
#define EMBER_TEST_TOOL_FIXTURE_H

#include <stddef.h>
#include <sys/types.h>

struct tool_run {
    pid_t pid;
    char out_path[64]; /* the tool's stdout and stderr, until tool_wait reads them */
    char out[8192];    /* what the tool printed (cut to fit), after tool_wait */
};

/*
 * Starts the build's tool `name` (its directory: $EMBER_TOOLS_DIR, else the one
 * `make` built the tests for) with args (NULL-terminated, without argv[0]).
 * Asserts that the tool exists: `make build/unit-tests` builds it first.
 */
void tool_start(struct tool_run *t, const char *name, const char *const *args);

/*
 * Waits up to timeout_ms for the tool (killed and asserted against if it takes
 * longer), reads its output into t->out, asserts that no sanitizer spoke, and
 * returns its exit status.
 */
int tool_wait(struct tool_run *t, int timeout_ms);

/* tool_start, then tool_wait. */
int tool_run(struct tool_run *t, const char *name, const char *const *args, int timeout_ms);

#endif
