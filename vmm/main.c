/* ember: one process, one microVM. */
#include <errno.h>
#include <stdio.h>

#include "cli.h"
#include "log.h"
#include "runner.h"
#include "vm.h"

#define EMBER_VERSION "0.1.0"
#define EXIT_BAD_ARGS 153 /* Firecracker's code for argument errors */

/* Reports how the VM ended and returns ember's exit status. */
static int report_end(const struct vm *vm)
{
    int status = vm_exit_status(vm);
    if (status == 0)
        log_info("%s", vm->end_reason);
    else
        fprintf(stderr, "ember: guest %s: %s\n", status == 2 ? "crashed" : "stopped on an error", vm->end_reason);
    return status;
}

int main(int argc, char **argv)
{
    static struct vm vm; /* large, and the process has exactly one */
    static struct runner runner;
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

    int status = 1, ran = 0;
    if (runner_init(&runner, &err)) {
        fprintf(stderr, "ember: %s\n", err.text);
    } else if (vm_create(&vm, &opts.vm, &runner.loop, &err) || runner_start_vm(&runner, &vm, &err)) {
        fprintf(stderr, "ember: %s\n", err.text);
    } else {
        runner_loop(&runner);
        ran = 1;
    }
    runner_finish(&runner);
    if (ran)
        status = report_end(&vm);
    vm_destroy(&vm);
    cli_free(&opts);
    return status;
}
