/*
 * PUT /snapshot/create and PUT /snapshot/load through the request handler:
 * when each is allowed (Firecracker's messages) and their bodies checked
 * field by field. Loads that get as far as the files: test_api_snapshot_load.c.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tests/unit/snapshot_fixture.h"

TestSuite(api_snapshot, .init = snap_fx_setup, .fini = snap_fx_teardown);

static const char *create_body(void)
{
    return fmt("{\"snapshot_type\":\"Full\",\"snapshot_path\":\"%s\",\"mem_file_path\":\"%s\"}", snap_file("s"),
               snap_file("m"));
}

Test(api_snapshot, create_before_boot)
{
    fault("PUT", "/snapshot/create", create_body(), CTL_MSG_POST_BOOT_ONLY, NULL);
    fault("PUT", "/snapshot/create", "{}", CTL_MSG_POST_BOOT_ONLY, NULL);
    expect_untouched("create before boot", NULL);
}

Test(api_snapshot, create_on_running_vm_says_pause_first)
{
    ctl.state = CTL_RUNNING; /* as after InstanceStart */
    fault("PUT", "/snapshot/create", create_body(), "pause it first", "PATCH /vm");
    fault("PUT", "/snapshot/create",
          fmt("{\"snapshot_type\":\"Diff\",\"snapshot_path\":\"%s\",\"mem_file_path\":\"%s\"}", snap_file("s"),
              snap_file("m")),
          "pause it first", NULL);
    cr_expect_eq(ctl.state, CTL_RUNNING);
    cr_expect_eq(access(snap_file("s"), F_OK), -1, "a refused create wrote the state file");
    cr_expect_eq(access(snap_file("m"), F_OK), -1, "a refused create wrote the memory file");
}

Test(api_snapshot, create_body_errors)
{
    ctl.state = CTL_PAUSED; /* only the body can be wrong */
    const char *s = snap_file("s"), *m = snap_file("m");
    /* A 4200-byte path: too long for fmt's buffers, so its request is made here. */
    static char long_body[4400];
    int n = snprintf(long_body, sizeof(long_body), "{\"mem_file_path\":\"%s\",\"snapshot_path\":\"/", m);
    memset(long_body + n, 'a', 4199);
    snprintf(long_body + n + 4199, sizeof(long_body) - (size_t)n - 4199, "\"}");
    const struct bad_case cases[] = {
        {"PUT", "/snapshot/create", "{}", "missing field `snapshot_path`", NULL},
        {"PUT", "/snapshot/create", fmt("{\"snapshot_path\":\"%s\"}", s), "missing field `mem_file_path`", NULL},
        {"PUT", "/snapshot/create", fmt("{\"mem_file_path\":\"%s\"}", m), "missing field `snapshot_path`", NULL},
        {"PUT", "/snapshot/create", fmt("{\"snapshot_path\":\"\",\"mem_file_path\":\"%s\"}", m), "`snapshot_path`",
         "1 to 4095 bytes"},
        {"PUT", "/snapshot/create", fmt("{\"snapshot_path\":\"%s\",\"mem_file_path\":\"\"}", s), "`mem_file_path`",
         "1 to 4095 bytes"},
        {"PUT", "/snapshot/create", long_body, "`snapshot_path`", "1 to 4095 bytes"},
        {"PUT", "/snapshot/create",
         fmt("{\"snapshot_type\":\"Bogus\",\"snapshot_path\":\"%s\",\"mem_file_path\":\"%s\"}", s, m), "'Bogus'",
         "Full or Diff"},
        {"PUT", "/snapshot/create",
         fmt("{\"snapshot_type\":\"full\",\"snapshot_path\":\"%s\",\"mem_file_path\":\"%s\"}", s, m), "'full'",
         "Full or Diff"},
        {"PUT", "/snapshot/create", fmt("{\"snapshot_path\":\"%s\",\"mem_file_path\":\"%s\",\"bogus\":1}", s, m),
         "unknown field `bogus`", "`snapshot_path`"},
        {"PUT", "/snapshot/create", fmt("{\"snapshot_path\":7,\"mem_file_path\":\"%s\"}", m),
         "Invalid type for field `snapshot_path`", NULL},
        {"PUT", "/snapshot/create", fmt("{\"snapshot_path\":\"%s\",\"mem_file_path\":[]}", s),
         "Invalid type for field `mem_file_path`", NULL},
        {"PUT", "/snapshot/create",
         fmt("{\"snapshot_type\":true,\"snapshot_path\":\"%s\",\"mem_file_path\":\"%s\"}", s, m),
         "Invalid type for field `snapshot_type`", NULL},
        {"PUT", "/snapshot/create", fmt("{\"version\":1,\"snapshot_path\":\"%s\",\"mem_file_path\":\"%s\"}", s, m),
         "Invalid type for field `version`", NULL},
        {"PUT", "/snapshot/create", fmt("{\"snapshot_path\":\"a\\u0000b\",\"mem_file_path\":\"%s\"}", m),
         "Invalid JSON body", "\\u0000"}, /* refused by the parser before the field is read */
        {"PUT", "/snapshot/create", fmt("{\"snapshot_path\":\"%s\",\"mem_file_path\":\"%s\"}", s, s),
         "name the same file", s},
        {"PUT", "/snapshot/create", "[]", "expected a JSON object", NULL},
        {"PUT", "/snapshot/create", NULL, "body of the request is empty", NULL},
    };
    run_cases(cases, N(cases));
    cr_expect_eq(ctl.state, CTL_PAUSED);
    cr_expect_eq(access(s, F_OK), -1, "a refused create wrote the state file");
    cr_expect_eq(access(m, F_OK), -1, "a refused create wrote the memory file");
}

Test(api_snapshot, load_body_errors)
{
    /* fmt's ring is reused: keep the two paths, and send each request as soon as its body is made. */
    char s[128], m[128];
    snprintf(s, sizeof(s), "%s", snap_file("s"));
    snprintf(m, sizeof(m), "%s", snap_file("m"));
    char file_backend[256];
    snprintf(file_backend, sizeof(file_backend), ",\"mem_backend\":{\"backend_type\":\"File\",\"backend_path\":\"%s\"}",
             m);
    /* The body with `extra` after snapshot_path (no memory backend); with one more member beside a good backend. */
#define LOAD(extra) fmt("{\"snapshot_path\":\"%s\"%s}", s, extra)
#define WITH(member) fmt("{\"snapshot_path\":\"%s\"%s,%s}", s, file_backend, member)
#define BAD(body, frag1, frag2) fault("PUT", "/snapshot/load", body, frag1, frag2)
    const char *exactly_one = "Exactly one of `mem_backend` and `mem_file_path`";
    BAD("{}", "missing field `snapshot_path`", NULL);
    BAD(fmt("{\"snapshot_path\":\"\"%s}", file_backend), "`snapshot_path`", "1 to 4095");
    BAD(fmt("{\"snapshot_path\":3%s}", file_backend), "Invalid type for field `snapshot_path`", NULL);
    /* The memory: exactly one of the two ways. */
    BAD(LOAD(""), exactly_one, NULL);
    BAD(LOAD(",\"mem_backend\":null"), exactly_one, NULL);
    BAD(LOAD(fmt("%s,\"mem_file_path\":\"%s\"", file_backend, m)), exactly_one, NULL);
    BAD(LOAD(",\"mem_file_path\":\"\""), "`mem_file_path`", "1 to 4095");
    BAD(LOAD(",\"mem_file_path\":false"), "Invalid type for field `mem_file_path`", NULL);
    BAD(LOAD(",\"mem_backend\":\"File\""), "Invalid type for field `mem_backend`", NULL);
    BAD(LOAD(",\"mem_backend\":[]"), "Invalid type for field `mem_backend`", NULL);
    BAD(LOAD(",\"mem_backend\":{\"backend_type\":\"File\"}"), "missing field `backend_path`", NULL);
    BAD(LOAD(fmt(",\"mem_backend\":{\"backend_path\":\"%s\"}", m)), "missing field `backend_type`", NULL);
    BAD(LOAD(",\"mem_backend\":{\"backend_type\":\"File\",\"backend_path\":\"\"}"), "`backend_path`", "1 to 4095");
    BAD(LOAD(fmt(",\"mem_backend\":{\"backend_type\":\"Bogus\",\"backend_path\":\"%s\"}", m)), "'Bogus'",
        "File or Uffd");
    BAD(LOAD(fmt(",\"mem_backend\":{\"backend_type\":1,\"backend_path\":\"%s\"}", m)),
        "Invalid type for field `backend_type`", NULL);
    BAD(LOAD(fmt(",\"mem_backend\":{\"backend_type\":\"File\",\"backend_path\":\"%s\",\"size\":1}", m)),
        "unknown field `size`", "`backend_path`");
    /* network_overrides */
    BAD(WITH("\"network_overrides\":{}"), "`network_overrides`", "expected an array");
    BAD(WITH("\"network_overrides\":\"eth0\""), "`network_overrides`", "expected an array");
    BAD(WITH("\"network_overrides\":[1]"), "`network_overrides`", "expected objects");
    BAD(WITH("\"network_overrides\":[{\"iface_id\":\"eth0\"}]"), "missing field `host_dev_name`", NULL);
    BAD(WITH("\"network_overrides\":[{\"host_dev_name\":\"tap1\"}]"), "missing field `iface_id`", NULL);
    BAD(WITH("\"network_overrides\":[{\"iface_id\":\"eth0\",\"host_dev_name\":\"tap1\",\"guest_mac\":\"x\"}]"),
        "unknown field `guest_mac`", NULL);
    BAD(WITH("\"network_overrides\":[{\"iface_id\":5,\"host_dev_name\":\"tap1\"}]"),
        "Invalid type for field `iface_id`", NULL);
    BAD(WITH("\"network_overrides\":[{\"iface_id\":\"eth0\",\"host_dev_name\":\"\"}]"), "`host_dev_name`",
        "1 to 15 characters");
    BAD(WITH("\"network_overrides\":[{\"iface_id\":\"eth0\",\"host_dev_name\":\"tap456789abcdef6\"}]"),
        "`host_dev_name`", "1 to 15 characters");
    /* What Ember does not have, and plain wrong types. */
    BAD(WITH("\"vsock_override\":{\"path\":\"/tmp/v.sock\"}"), "unknown field `path`", NULL);
    BAD(WITH("\"vsock_override\":\"/tmp/v.sock\""), "`vsock_override`", "expected an object");
    BAD(WITH("\"huge_pages\":\"2M\""), "`huge_pages`", "'2M'");
    BAD(WITH("\"huge_pages\":2"), "Invalid type for field `huge_pages`", NULL);
    BAD(WITH("\"track_dirty_pages\":\"yes\""), "Invalid type for field `track_dirty_pages`", NULL);
    BAD(WITH("\"enable_diff_snapshots\":0"), "Invalid type for field `enable_diff_snapshots`", NULL);
    BAD(WITH("\"resume_vm\":1"), "Invalid type for field `resume_vm`", NULL);
    BAD(WITH("\"clock_realtime\":\"now\""), "Invalid type for field `clock_realtime`", NULL);
    BAD(WITH("\"bogus\":true"), "unknown field `bogus`", "`network_overrides`");
    BAD("[1]", "expected a JSON object", NULL);
#undef LOAD
#undef WITH
#undef BAD
    expect_untouched("load body errors", NULL);
}

/* Each boot resource, once set, forbids a load (Firecracker's message); a PUT that failed sets nothing. */
Test(api_snapshot, load_after_configuring_boot_resources)
{
    struct {
        const char *path, *body;
    } resources[] = {
        {"/machine-config", "{\"vcpu_count\":1,\"mem_size_mib\":128}"},
        {"/boot-source", NULL},
        {"/drives/rootfs", NULL},
        {"/network-interfaces/eth0", "{\"iface_id\":\"eth0\",\"host_dev_name\":\"tap0\"}"},
    };
    for (unsigned i = 0; i < N(resources); i++) {
        if (i) { /* a fresh process for each */
            snap_fx_teardown();
            snap_fx_setup();
        }
        const char *body = resources[i].body;
        if (i == 1)
            body = fmt("{\"kernel_image_path\":\"%s\"}", kernel);
        if (i == 2)
            body = drive_body("rootfs", true, disk[0]);
        expect_204("PUT", resources[i].path, body);
        fault("PUT", "/snapshot/load", load_body(snap_file("s"), snap_file("m"), ""), CTL_MSG_LOAD_NOT_ALLOWED, NULL);
        cr_expect(ctl.configured, "after PUT %s", resources[i].path);
        cr_expect_eq(ctl.state, CTL_NOT_STARTED);
    }
    /* Refused PUTs configure nothing: the load is still allowed and fails on its (missing) state file. */
    snap_fx_teardown();
    snap_fx_setup();
    fault("PUT", "/drives/rootfs", drive_body("rootfs", true, missing), "Drive file", missing);
    fault("PUT", "/boot-source", fmt("{\"kernel_image_path\":\"%s\"}", missing), "Kernel file", missing);
    fault("PUT", "/machine-config", "{\"vcpu_count\":0,\"mem_size_mib\":128}", "`vcpu_count`", NULL);
    fault("PUT", "/network-interfaces/eth0", "{\"iface_id\":\"eth0\",\"host_dev_name\":\"\"}", "`host_dev_name`", NULL);
    cr_expect_not(ctl.configured);
    fault("PUT", "/snapshot/load", load_body(snap_file("s"), snap_file("m"), ""), snap_file("s"), "cannot open");
}

/* The logger, metrics and serial output may be set first (Firecracker allows them before a load). */
Test(api_snapshot, load_after_logger_metrics_serial)
{
    const char *serial = snap_file("serial.out");
    expect_204("PUT", "/logger", fmt("{\"log_path\":\"%s\",\"level\":\"Warning\"}", logfile));
    expect_204("PUT", "/metrics", fmt("{\"metrics_path\":\"%s\"}", metf));
    expect_204("PUT", "/serial", fmt("{\"serial_out_path\":\"%s\"}", serial));
    cr_expect_not(ctl.configured);
    const char *s = snap_file("missing-state");
    fault("PUT", "/snapshot/load", load_body(s, snap_file("m"), ""), s, "cannot open");
    expect_untouched("load after logger, metrics, serial", serial);
    json_t *c = get_json("/vm/config");
    cr_expect_str_eq(str_of(json_object_get(c, "logger"), "log_path"), logfile);
    cr_expect_str_eq(str_of(json_object_get(c, "metrics"), "metrics_path"), metf);
    json_decref(c);
}

Test(api_snapshot, load_after_boot)
{
    const char *body = load_body(snap_file("s"), snap_file("m"), "");
    ctl.state = CTL_RUNNING;
    fault("PUT", "/snapshot/load", body, CTL_MSG_PRE_BOOT_ONLY, NULL);
    ctl.state = CTL_PAUSED;
    fault("PUT", "/snapshot/load", body, CTL_MSG_PRE_BOOT_ONLY, NULL);
    fault("PUT", "/snapshot/load", "{}", CTL_MSG_PRE_BOOT_ONLY, NULL);
    cr_expect_eq(ctl.state, CTL_PAUSED);
}
