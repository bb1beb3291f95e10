/*
 * --config-file contents (api/config_file.c): JSON parsing and every section's
 * handler, on a controller that never starts a VM. Paths Ember would write
 * are defused (fuzz_defuse.h). The error must be one line.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/config_file.h"
#include "api/controller.h"
#include "core/log.h"
#include "tests/fuzz/fuzz_defuse.h"
#include "vm/runner.h"
#include "vm/vm.h"

static struct runner runner;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    struct errmsg e;
    log_set_level(LOG_ERROR);
    json_object_seed(1);
    if (runner_init(&runner, &e)) {
        fprintf(stderr, "fuzz_config: runner_init: %s\n", e.text);
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *root = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    if (!root)
        return 0;
    fuzz_defuse(root);
    static struct controller ctl;
    struct vm *vm = vm_new();
    if (vm) {
        ctl_init(&ctl, &runner, vm, "fuzz");
        struct errmsg err = {{0}};
        if (api_apply_config(&ctl, root, &err) && (!err.text[0] || strchr(err.text, '\n'))) {
            fprintf(stderr, "a config error that is empty or not one line: '%s'\n", err.text);
            abort();
        }
        ctl_destroy(&ctl);
        vm_free(vm);
    }
    json_decref(root);
    log_set_output(-1, "fuzz", 0);
    log_set_level(LOG_ERROR);
    return 0;
}
