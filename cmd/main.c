/*
 * ember: one process, one microVM. The VM is described on the command line,
 * in a Firecracker-shaped config file, or over the REST API; all three feed
 * the same controller, served by one control loop on this (the VMM) thread.
 */
#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/prctl.h>

#include "api/config_file.h"
#include "api/mmds_api.h"
#include "api/controller.h"
#include "api/routes.h"
#include "api/server.h"
#include "api/snapshot_api.h"
#include "cmd/cli.h"
#include "core/log.h"
#include "core/version.h"
#include "vm/runner.h"
#include "vm/seccomp.h"
#include "vm/vm.h"

#define EXIT_BAD_CONFIG 152 /* Firecracker's code for a bad JSON configuration */
#define EXIT_BAD_ARGS 153   /* Firecracker's code for argument errors */

/* Reports how the VM ended and returns ember's exit status. */
static int report_end(const struct vm *vm)
{
    int status = vm_exit_status(vm);
    if (status == 0)
        log_info("%s", vm_end_reason(vm));
    else
        fprintf(stderr, "ember: guest %s: %s\n", status == 2 ? "crashed" : "stopped on an error", vm_end_reason(vm));
    return status;
}

/* --snapshot-load: the same request PUT /snapshot/load makes, checked and applied by the same handler. */
static int load_snapshot(struct controller *ctl, const struct cli_opts *o, struct errmsg *err)
{
    json_t *body = json_pack("{s:s,s:{s:s,s:s},s:b,s:b}", "snapshot_path", o->snapshot_load, "mem_backend",
                             "backend_type", o->snapshot_mem ? "File" : "Uffd", "backend_path",
                             o->snapshot_mem ? o->snapshot_mem : o->snapshot_uffd, "resume_vm", o->snapshot_resume,
                             "track_dirty_pages", o->track_dirty_pages);
    json_t *list = json_array();
    for (unsigned i = 0; body && list && i < o->nr_net_overrides; i++) {
        const char *eq = strchr(o->net_override[i], '=');
        json_t *iface = json_stringn(o->net_override[i], (size_t)(eq - o->net_override[i]));
        json_array_append_new(list, json_pack("{s:o,s:s}", "iface_id", iface, "host_dev_name", eq + 1));
    }
    if (!body || !list) {
        json_decref(body);
        json_decref(list);
        return err_set(err, -ENOMEM, "out of memory");
    }
    json_object_set_new(body, "network_overrides", list);
    int rc = api_put_snapshot_load(ctl, body, NULL, err);
    json_decref(body);
    return rc;
}

int main(int argc, char **argv)
{
    /* Large, and the process has exactly one of each. */
    uint64_t t_start = now_ns();
    static struct runner runner;
    static struct controller ctl;
    struct cli_opts opts;
    struct errmsg err = {{0}};
    if (cli_parse(argc, argv, &opts, &err)) {
        fprintf(stderr, "ember: %s\n", err.text);
        cli_free(&opts);
        return EXIT_BAD_ARGS;
    }
    if (opts.help || opts.version || opts.seccomp_print) {
        if (opts.seccomp_print)
            seccomp_print(stdout);
        else if (opts.help)
            cli_usage(stdout);
        else
            printf("Ember v%s\n\nember %s, answering the Firecracker v%s API\n", EMBER_FIRECRACKER_API_VERSION,
                   EMBER_VERSION_STRING, EMBER_FIRECRACKER_API_VERSION);
        cli_free(&opts);
        return 0;
    }
    log_set_level(opts.log_level);
    seccomp_set_enabled(!opts.no_seccomp);
    prctl(PR_SET_NAME, "ember");
    /*
     * One malloc arena: per-thread arenas shrink by reading
     * /proc/sys/vm/overcommit_memory, an open() no filtered thread may make.
     */
    mallopt(M_ARENA_MAX, 1);
    /* No core dumps of guest memory, and no ptrace by other processes of the same uid. */
    prctl(PR_SET_DUMPABLE, 0);
    /* Time zone rules from the environment, never from /etc/localtime: filtered threads open no files. */
    setenv("TZ", "UTC0", 1);
    tzset();
    /* Seed jansson's hash now: seeding later opens /dev/urandom on a filtered thread. */
    json_object_seed(0);

    int status = 1;
    struct api_server *api = NULL;
    struct vm *vm = vm_new();
    if (!vm) {
        fprintf(stderr, "ember: out of memory\n");
        cli_free(&opts);
        return 1;
    }
    vm_set_start_time(vm, t_start);
    ctl_init(&ctl, &runner, vm, opts.instance_id);
    if (runner_init(&runner, &err)) {
        fprintf(stderr, "ember: %s\n", err.text);
        goto out;
    }
    /* A VM described on the command line or in a file boots at once; over the API, when told. */
    bool boot_now = opts.vm.kernel_path || opts.config_file;
    ctl_take_config(&ctl, &opts.vm);
    if (opts.mmds_metadata && api_load_mmds_file(&ctl, opts.mmds_metadata, &err)) {
        fprintf(stderr, "ember: %s\n", err.text);
        status = EXIT_BAD_CONFIG;
        goto out;
    }
    if (opts.config_file && api_load_config_file(&ctl, opts.config_file, &err)) {
        fprintf(stderr, "ember: %s\n", err.text);
        status = EXIT_BAD_CONFIG;
        goto out;
    }
    if (opts.api_sock &&
        api_server_start(&api, opts.api_sock, &runner.loop, api_handle, &ctl, seccomp_install_api, &err)) {
        fprintf(stderr, "ember: %s\n", err.text);
        goto out;
    }
    if (opts.api_sock)
        log_info("API listening on %s after %.3f ms", opts.api_sock, (double)(now_ns() - t_start) / 1e6);
    if (opts.api_sock && !ctl_config(&ctl)->kernel_path) {
        /*
         * While the orchestrator sends its configuration, make what no
         * configuration changes, so InstanceStart does not wait for it.
         * A failure here is not final: InstanceStart tries again and reports.
         */
        struct errmsg perr;
        /* The VMM and vCPU threads' seccomp filters (~0.1 ms each to compile); first: vm_prepare's thread loads one. */
        if (seccomp_precompile(THREAD_VMM, &perr) || seccomp_precompile(THREAD_VCPU, &perr))
            log_debug("seccomp filters not compiled ahead: %s", perr.text);
        if (vm_prepare(vm, &perr))
            log_debug("KVM objects not prepared ahead: %s", perr.text);
    }
    if (boot_now && ctl_start(&ctl, &err)) {
        fprintf(stderr, "ember: %s\n", err.text);
        goto out;
    }
    if (opts.snapshot_load && load_snapshot(&ctl, &opts, &err)) {
        fprintf(stderr, "ember: %s\n", err.text);
        goto out;
    }
    runner_loop(&runner);
    status = 0;
out:
    api_server_stop(api);
    int started = ctl.state != CTL_NOT_STARTED;
    runner_finish(&runner);
    ctl_finish(&ctl); /* the log is back on stderr for the end report */
    if (started)
        status = report_end(vm);
    ctl_destroy(&ctl); /* and the VM with it */
    vm_free(vm);
    cli_free(&opts);
    return status;
}
