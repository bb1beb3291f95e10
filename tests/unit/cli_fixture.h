/*
 * What the cli test files share: one parse's options, message and result,
 * and PARSE(...) to parse the arguments after "ember" (freeing the previous
 * parse's strings first). Each test file gets its own copy of the state.
 */
#ifndef EMBER_TEST_CLI_FIXTURE_H
#define EMBER_TEST_CLI_FIXTURE_H

#include <string.h>

#include "cmd/cli.h"

static struct cli_opts o;
static struct errmsg err;
static int rc;

#define PARSE(...)                                                                    \
    do {                                                                              \
        char *argv_[] = {"ember", __VA_ARGS__, NULL};                                 \
        cli_free(&o);                                                                 \
        memset(&err, 0, sizeof(err));                                                 \
        rc = cli_parse((int)(sizeof(argv_) / sizeof(argv_[0])) - 1, argv_, &o, &err); \
    } while (0)

#endif
