/* Command-line parsing for `ember`. */
#ifndef EMBER_CLI_H
#define EMBER_CLI_H

#include <stdio.h>

#include "config.h"
#include "errmsg.h"
#include "log.h"

struct cli_opts {
    struct vm_config vm;
    enum log_level log_level;
    int help;
    int version;
};

/* 0 on success; -EINVAL with a message naming the bad argument. */
int cli_parse(int argc, char **argv, struct cli_opts *o, struct errmsg *err);
void cli_usage(FILE *out);

#endif
