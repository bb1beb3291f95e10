/* The controller's phases: what is refused before and after boot, InstanceStart, FlushMetrics. */
#include <criterion/criterion.h>
#include <stdio.h>

#include "tests/unit/api_fixture.h"

TestSuite(api_phases, .init = api_fx_setup, .fini = api_fx_teardown);

Test(api_phases, post_boot_only_before_boot)
{
    const char *msg = "The requested operation is not supported before starting the microVM.";
    expect_204("PUT", "/drives/rootfs", drive_body("rootfs", true, disk[0]));
    expect_204("PUT", "/network-interfaces/eth0", "{\"iface_id\":\"eth0\",\"host_dev_name\":\"tap0\"}");
    expect_204("PUT", "/metrics", fmt("{\"metrics_path\":\"%s\"}", metf));
    const struct bad_case cases[] = {
        {"PATCH", "/vm", "{\"state\":\"Paused\"}", msg, NULL},
        {"PATCH", "/vm", "{\"state\":\"Resumed\"}", msg, NULL},
        {"PATCH", "/drives/rootfs", fmt("{\"drive_id\":\"rootfs\",\"path_on_host\":\"%s\"}", disk[1]), msg, NULL},
        {"PATCH", "/network-interfaces/eth0", "{\"iface_id\":\"eth0\"}", msg, NULL},
        {"PUT", "/actions", "{\"action_type\":\"SendCtrlAltDel\"}", msg, NULL},
        {"PUT", "/actions", "{\"action_type\":\"FlushMetrics\"}", msg, NULL},
    };
    run_cases(cases, N(cases));
    cr_expect_eq(ctl.state, CTL_NOT_STARTED);
    /* The drive still has its first backing file. */
    json_t *c = get_json("/vm/config");
    cr_expect_str_eq(str_of(json_array_get(json_object_get(c, "drives"), 0), "path_on_host"), disk[0]);
    json_decref(c);
}

Test(api_phases, instance_start_without_boot_source)
{
    fault("PUT", "/actions", "{\"action_type\":\"InstanceStart\"}", "kernel", NULL);
    cr_expect_eq(ctl.state, CTL_NOT_STARTED);
    json_t *i = get_json("/");
    cr_expect_str_eq(str_of(i, "state"), "Not started");
    json_decref(i);
}

/*
 * A start that fails (a file that is no kernel) is a 400 naming the problem,
 * leaves nothing behind (ASan's leak check) and the API usable.
 */
Test(api_phases, failed_instance_start_leaves_api_usable)
{
    expect_204("PUT", "/machine-config", "{\"vcpu_count\":1,\"mem_size_mib\":16}");
    expect_204("PUT", "/boot-source", fmt("{\"kernel_image_path\":\"%s\"}", notkernel));
    req("PUT", "/actions", "{\"action_type\":\"InstanceStart\"}");
    fault_ok("InstanceStart with a text file as kernel", NULL, NULL);
    cr_expect_eq(ctl.state, CTL_NOT_STARTED);
    json_t *i = get_json("/");
    cr_expect_str_eq(str_of(i, "state"), "Not started");
    json_decref(i);
    /* Still configurable, and a second failing start fails the same way. */
    expect_204("PATCH", "/machine-config", "{\"mem_size_mib\":32}");
    req("PUT", "/actions", "{\"action_type\":\"InstanceStart\"}");
    fault_ok("second InstanceStart", NULL, NULL);
    cr_expect_eq(ctl.state, CTL_NOT_STARTED);
}

Test(api_phases, pre_boot_only_after_boot)
{
    expect_204("PUT", "/boot-source", fmt("{\"kernel_image_path\":\"%s\"}", kernel));
    ctl.state = CTL_RUNNING; /* as if InstanceStart had succeeded */
    const char *msg = "The requested operation is not supported after starting the microVM.";
    const struct bad_case cases[] = {
        {"PUT", "/machine-config", "{\"vcpu_count\":2,\"mem_size_mib\":256}", msg, NULL},
        {"PATCH", "/machine-config", "{\"vcpu_count\":2}", msg, NULL},
        {"PUT", "/boot-source", fmt("{\"kernel_image_path\":\"%s\"}", kernel), msg, NULL},
        {"PUT", "/drives/rootfs", drive_body("rootfs", true, disk[0]), msg, NULL},
        {"PUT", "/network-interfaces/eth0", "{\"iface_id\":\"eth0\",\"host_dev_name\":\"tap0\"}", msg, NULL},
        {"PUT", "/logger", "{\"level\":\"Debug\"}", msg, NULL},
        {"PUT", "/metrics", fmt("{\"metrics_path\":\"%s\"}", metf), msg, NULL},
        {"PUT", "/serial", "{\"serial_out_path\":\"/tmp/x\"}", msg, NULL},
        {"PUT", "/actions", "{\"action_type\":\"InstanceStart\"}", msg, NULL},
    };
    run_cases(cases, N(cases));
    cr_expect_eq(ctl.state, CTL_RUNNING);
    json_t *i = get_json("/");
    cr_expect_str_eq(str_of(i, "state"), "Running");
    json_decref(i);
    ctl.state = CTL_PAUSED;
    i = get_json("/");
    cr_expect_str_eq(str_of(i, "state"), "Paused");
    json_decref(i);
    fault("PUT", "/actions", "{\"action_type\":\"InstanceStart\"}", msg, NULL);
    /* GETs still answer. */
    json_t *m = get_json("/machine-config");
    json_decref(m);
    json_t *c = get_json("/vm/config");
    json_decref(c);
    ctl.state = CTL_NOT_STARTED;
}

/* Validation of the post-boot requests, up to the point where they would touch the VM. */
Test(api_phases, post_boot_validation)
{
    expect_204("PUT", "/drives/rootfs", drive_body("rootfs", true, disk[0]));
    expect_204("PUT", "/network-interfaces/eth0", "{\"iface_id\":\"eth0\",\"host_dev_name\":\"tap0\"}");
    ctl.state = CTL_RUNNING;
    const struct bad_case cases[] = {
        {"PATCH", "/vm", "{}", "missing field", "`state`"},
        {"PATCH", "/vm", "{\"state\":1}", "`state`", "type"},
        {"PATCH", "/vm", "{\"state\":\"Stopped\"}", "`state`", "Stopped"},
        {"PATCH", "/vm", "{\"state\":\"paused\"}", "`state`", NULL},
        {"PATCH", "/vm", "{\"state\":\"Paused\",\"now\":1}", "`now`", "unknown field"},
        {"PATCH", "/drives/rootfs", "{}", "missing field", "`drive_id`"},
        {"PATCH", "/drives/rootfs", "{\"drive_id\":5}", "`drive_id`", "type"},
        {"PATCH", "/drives/rootfs", "{\"drive_id\":\"other\"}", "id from the path does not match", NULL},
        {"PATCH", "/drives/rootfs", "{\"drive_id\":\"rootfs\",\"path_on_host\":5}", "`path_on_host`", "type"},
        {"PATCH", "/drives/rootfs",
         "{\"drive_id\":\"rootfs\",\"rate_limiter\":{\"ops\":{\"size\":-1,\"refill_time\":1}}}", "`rate_limiter.ops`",
         NULL},
        {"PATCH", "/drives/rootfs", "{\"drive_id\":\"rootfs\",\"is_read_only\":true}", "`is_read_only`",
         "unknown field"},
        {"PATCH", "/drives/nope", "{\"drive_id\":\"nope\",\"path_on_host\":\"/tmp/x\"}", "`drive_id`", "nope"},
        {"PATCH", "/drives/a-b", "{\"drive_id\":\"a-b\"}", "`drive_id`", NULL},
        {"PATCH", "/network-interfaces/eth0", "{}", "missing field", "`iface_id`"},
        {"PATCH", "/network-interfaces/eth0", "{\"iface_id\":false}", "`iface_id`", "type"},
        {"PATCH", "/network-interfaces/eth0", "{\"iface_id\":\"eth1\"}", "id from the path does not match", NULL},
        {"PATCH", "/network-interfaces/eth0", "{\"iface_id\":\"eth0\",\"rx_rate_limiter\":{\"bw\":{}}}",
         "`rx_rate_limiter`", "unknown field `bw`"},
        {"PATCH", "/network-interfaces/eth0", "{\"iface_id\":\"eth0\",\"tx_rate_limiter\":1}", "`tx_rate_limiter`",
         NULL},
        {"PATCH", "/network-interfaces/eth0", "{\"iface_id\":\"eth0\",\"host_dev_name\":\"tap1\"}", "`host_dev_name`",
         "unknown field"},
        {"PATCH", "/network-interfaces/nope", "{\"iface_id\":\"nope\"}", "`iface_id`", "nope"},
        {"PUT", "/actions", "{\"action_type\":\"FlushMetrics\"}", "Metrics", NULL},
        {"PUT", "/actions", "{\"action_type\":\"Pause\"}", "`action_type`", NULL},
    };
    run_cases(cases, N(cases));
    /* What is valid and does not reach the VM: a no-op PATCH of each. */
    expect_204("PATCH", "/drives/rootfs", "{\"drive_id\":\"rootfs\"}");
    expect_204("PATCH", "/drives/rootfs", "{\"drive_id\":\"rootfs\",\"rate_limiter\":{}}");
    expect_204("PATCH", "/network-interfaces/eth0", "{\"iface_id\":\"eth0\",\"rx_rate_limiter\":{}}");
    expect_204("PATCH", "/network-interfaces/eth0",
               "{\"iface_id\":\"eth0\",\"rx_rate_limiter\":null,\"tx_rate_limiter\":null}");
    cr_expect_eq(ctl.state, CTL_RUNNING);
    ctl.state = CTL_NOT_STARTED;
}

/* FlushMetrics after boot appends one JSON line per flush. */
Test(api_phases, flush_metrics_writes_a_json_line)
{
    expect_204("PUT", "/metrics", fmt("{\"metrics_path\":\"%s\"}", metf));
    ctl.state = CTL_RUNNING; /* the VM struct is all zeroes: no vCPUs, no devices */
    expect_204("PUT", "/actions", "{\"action_type\":\"FlushMetrics\"}");
    expect_204("PUT", "/actions", "{\"action_type\":\"FlushMetrics\"}");
    FILE *f = fopen(metf, "r");
    cr_assert_not_null(f);
    char line[8192];
    int lines = 0;
    while (fgets(line, sizeof(line), f)) {
        json_error_t je;
        json_t *o = json_loads(line, 0, &je);
        cr_expect_not_null(o, "metrics line %d is not JSON: %s", lines, line);
        cr_expect(json_is_integer(json_object_get(o, "utc_timestamp_ms")), "no utc_timestamp_ms in %s", line);
        json_decref(o);
        lines++;
    }
    fclose(f);
    cr_expect_eq(lines, 2);
    ctl.state = CTL_NOT_STARTED;
}
