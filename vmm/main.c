/* ember: one process, one microVM. */
#include <errno.h>
#include <stdio.h>

#include "cli.h"
#include "log.h"
#include "vm.h"

#define EMBER_VERSION "0.1.0"
#define EXIT_BAD_ARGS 153 /* Firecracker's code for argument errors */

int main(int argc, char **argv)
{
    static struct vm vm; /* large, and the process has exactly one */
    vm.t_start_ns = now_ns();
    struct cli_opts opts;
    struct errmsg err = {{0}};
    if (cli_parse(argc, argv, &opts, &err)) {
        fprintf(stderr, "ember: %s\n", err.text);
        cli_free(&opts);
        return EXIT_BAD_ARGS;
    }
    if (opts.help || opts.version) {
        if (opts.help)
            cli_usage(stdout);
        else
            printf("ember %s\n", EMBER_VERSION);
        cli_free(&opts);
        return 0;
    }
    log_set_level(opts.log_level);

    int status;
    if (vm_create(&vm, &opts.vm, &err)) {
        fprintf(stderr, "ember: %s\n", err.text);
        status = 1;
    } else if (vm_run(&vm, &err)) {
        fprintf(stderr, "ember: %s\n", err.text);
        status = 1;
    } else {
        status = vm_exit_status(&vm);
        if (status == 0)
            log_info("%s", vm.end_reason);
        else
            fprintf(stderr, "ember: guest %s: %s\n", status == 2 ? "crashed" : "stopped on an error",
                    vm.end_reason);
    }
    vm_destroy(&vm);
    cli_free(&opts);
    return status;
}
