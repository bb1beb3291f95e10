/* The configuration: PUTs and GET bodies, drives and interfaces, and config files (api_apply_config). */
#include <criterion/criterion.h>
#include <string.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/unit/api_fixture.h"
#include "api/config_file.h"
#include "api/handlers.h"
#include "core/version.h"

TestSuite(api_config, .init = api_fx_setup, .fini = api_fx_teardown);

static int apply_text(struct controller *c, const char *text, struct errmsg *e)
{
    json_error_t je;
    json_t *root = json_loads(text, JSON_DECODE_ANY, &je);
    cr_assert_not_null(root, "test config is not JSON: %s (%s)", je.text, text);
    int rc = api_apply_config(c, root, e);
    json_decref(root);
    return rc;
}

Test(api_config, get_root_shape)
{
    json_t *o = get_json("/");
    cr_expect_eq(json_object_size(o), 4, "body %s", rep.body);
    cr_expect_str_eq(str_of(o, "id"), "test-id");
    cr_expect_str_eq(str_of(o, "state"), "Not started");
    cr_expect_str_eq(str_of(o, "app_name"), "ember");
    cr_expect_str_eq(str_of(o, "vmm_version"), EMBER_VERSION_STRING);
    json_decref(o);
    o = get_json("/version");
    cr_expect_str_eq(str_of(o, "firecracker_version"), EMBER_FIRECRACKER_API_VERSION);
    json_decref(o);
}

/* One step of a machine-config history: a request that must succeed (fault NULL) or fail naming `fault`, then
 * what GET /machine-config must show; -1 (or no method) leaves that part out. */
struct mc_step {
    const char *method, *body, *fault;
    int vcpus, mem, smt, dirty;
};

Test(api_config, machine_config_put_patch_get)
{
    static const struct mc_step steps[] = {
        {NULL, NULL, NULL, 1, 128, 0, 0}, /* the defaults */
        {"PUT",
         "{\"vcpu_count\":2,\"mem_size_mib\":256,\"smt\":true,\"track_dirty_pages\":true,\"huge_pages\":\"None\","
         "\"cpu_template\":\"None\"}",
         NULL, 2, 256, 1, 1},
        /* PATCH changes only what it names. */
        {"PATCH", "{\"mem_size_mib\":512}", NULL, 2, 512, 1, 1},
        /* A PATCH that would break the SMT rule with the kept smt=true fails whole. */
        {"PATCH", "{\"vcpu_count\":3,\"mem_size_mib\":64}", "SMT", 2, 512, -1, -1},
        /* PUT resets the omitted optional fields to their defaults. */
        {"PUT", "{\"vcpu_count\":3,\"mem_size_mib\":64}", NULL, 3, 64, 0, 0},
        /* A failed PUT changes nothing. */
        {"PUT", "{\"vcpu_count\":4,\"mem_size_mib\":0}", "`mem_size_mib`", -1, -1, -1, -1},
        {"PUT", "{\"vcpu_count\":4,\"mem_size_mib\":128,\"smt\":\"x\"}", "`smt`", 3, 64, -1, -1},
        /* The limits themselves are accepted; an empty PATCH changes nothing. */
        {"PUT", "{\"vcpu_count\":32,\"mem_size_mib\":1}", NULL, -1, -1, -1, -1},
        {"PATCH", "{\"track_dirty_pages\":true}", NULL, 32, 1, -1, 1},
    };
    for (unsigned i = 0; i < N(steps); i++) {
        const struct mc_step *st = &steps[i];
        if (st->method && st->fault)
            fault(st->method, "/machine-config", st->body, st->fault, NULL);
        else if (st->method)
            expect_204(st->method, "/machine-config", st->body);
        if (st->vcpus < 0 && st->mem < 0 && st->smt < 0 && st->dirty < 0)
            continue;
        json_t *m = get_json("/machine-config");
        if (st->vcpus >= 0)
            cr_expect_eq(int_of(m, "vcpu_count"), st->vcpus, "step %u", i);
        if (st->mem >= 0)
            cr_expect_eq(int_of(m, "mem_size_mib"), st->mem, "step %u", i);
        if (st->smt >= 0)
            cr_expect_eq(bool_of(m, "smt"), st->smt, "step %u", i);
        if (st->dirty >= 0)
            cr_expect_eq(bool_of(m, "track_dirty_pages"), st->dirty, "step %u", i);
        json_decref(m);
    }
}

Test(api_config, vm_config_reflects_puts)
{
    json_t *c = get_json("/vm/config");
    cr_expect_not_null(json_object_get(c, "machine-config"));
    cr_expect(json_is_array(json_object_get(c, "drives")));
    cr_expect(json_is_array(json_object_get(c, "network-interfaces")));
    json_decref(c);

    expect_204("PUT", "/machine-config", "{\"vcpu_count\":2,\"mem_size_mib\":300}");
    expect_204("PUT", "/boot-source",
               fmt("{\"kernel_image_path\":\"%s\",\"boot_args\":\"console=ttyS0 quiet\",\"initrd_path\":\"%s\"}",
                   kernel, initrd));
    expect_204("PUT", "/drives/rootfs", drive_body("rootfs", true, disk[0]));
    expect_204("PUT", "/drives/scratch",
               fmt("{\"drive_id\":\"scratch\",\"is_root_device\":false,\"is_read_only\":true,\"path_on_host\":\"%s\","
                   "\"io_engine\":\"Async\",\"rate_limiter\":null,\"partuuid\":null}",
                   disk[1]));
    expect_204("PUT", "/network-interfaces/eth0",
               "{\"iface_id\":\"eth0\",\"host_dev_name\":\"tap0\",\"guest_mac\":\"06:00:ac:10:00:02\"}");
    expect_204("PUT", "/logger", fmt("{\"log_path\":\"%s\",\"level\":\"Warning\",\"show_level\":true}", logfile));
    expect_204("PUT", "/metrics", fmt("{\"metrics_path\":\"%s\"}", metf));

    c = get_json("/vm/config");
    json_t *m = json_object_get(c, "machine-config");
    cr_expect_eq(int_of(m, "vcpu_count"), 2);
    cr_expect_eq(int_of(m, "mem_size_mib"), 300);
    json_t *b = json_object_get(c, "boot-source");
    cr_assert_not_null(b);
    cr_expect_str_eq(str_of(b, "kernel_image_path"), kernel);
    cr_expect_str_eq(str_of(b, "boot_args"), "console=ttyS0 quiet");
    cr_expect_str_eq(str_of(b, "initrd_path"), initrd);
    json_t *d = json_object_get(c, "drives");
    cr_assert_eq(json_array_size(d), 2);
    cr_expect_str_eq(str_of(json_array_get(d, 0), "drive_id"), "rootfs");
    cr_expect(bool_of(json_array_get(d, 0), "is_root_device"));
    cr_expect_str_eq(str_of(json_array_get(d, 1), "drive_id"), "scratch");
    cr_expect_str_eq(str_of(json_array_get(d, 1), "path_on_host"), disk[1]);
    cr_expect(bool_of(json_array_get(d, 1), "is_read_only"));
    cr_expect_str_eq(str_of(json_array_get(d, 1), "io_engine"), "Async");
    json_t *n = json_object_get(c, "network-interfaces");
    cr_assert_eq(json_array_size(n), 1);
    cr_expect_str_eq(str_of(json_array_get(n, 0), "iface_id"), "eth0");
    cr_expect_str_eq(str_of(json_array_get(n, 0), "host_dev_name"), "tap0");
    cr_expect_str_eq(str_of(json_array_get(n, 0), "guest_mac"), "06:00:ac:10:00:02");
    json_t *l = json_object_get(c, "logger");
    cr_assert_not_null(l);
    cr_expect_str_eq(str_of(l, "log_path"), logfile);
    cr_expect_str_eq(str_of(l, "level"), "Warning");
    cr_expect(bool_of(l, "show_level"));
    json_t *mt = json_object_get(c, "metrics");
    cr_assert_not_null(mt);
    cr_expect_str_eq(str_of(mt, "metrics_path"), metf);
    /* What GET /vm/config returns is a valid --config-file: it applies to a fresh controller as-is. */
    struct controller other;
    ctl_init(&other, &runner, vm, "other");
    struct errmsg e;
    int rc = api_apply_config(&other, c, &e);
    cr_expect_eq(rc, 0, "GET /vm/config does not apply as a config file: %s", e.text);
    json_t *again = api_full_config(&other);
    cr_expect(json_equal(again, c), "round trip changed the configuration");
    json_decref(again);
    ctl_destroy(&other);
    json_decref(c);
    /* The metrics and log files exist with owner-only permissions. */
    struct stat st;
    cr_expect_eq(stat(metf, &st), 0);
    cr_expect_eq(st.st_mode & 0777, 0600);
    cr_expect_eq(stat(logfile, &st), 0);
    cr_expect_eq(st.st_mode & 0777, 0600);
}

/* The logger level is case-insensitive on input; GET /vm/config shows the documented spelling. */
Test(api_config, logger_level_normalised)
{
    expect_204("PUT", "/logger", "{\"level\":\"debug\"}");
    json_t *c = get_json("/vm/config");
    cr_expect_str_eq(str_of(json_object_get(c, "logger"), "level"), "Debug");
    json_decref(c);
    expect_204("PUT", "/logger", "{\"level\":\"WARNING\"}");
    c = get_json("/vm/config");
    cr_expect_str_eq(str_of(json_object_get(c, "logger"), "level"), "Warning");
    json_decref(c);
}

Test(api_config, logger_metrics_serial_accept)
{
    expect_204("PUT", "/logger",
               fmt("{\"log_path\":\"%s\",\"level\":\"Info\",\"show_level\":false,"
                   "\"show_log_origin\":false,\"module\":\"api_server\"}",
                   logfile));
    expect_204("PUT", "/logger", "{}"); /* all optional */
    expect_204("PUT", "/metrics", fmt("{\"metrics_path\":\"%s\",\"emit_id\":false}", metf));
    expect_204("PUT", "/serial", "{\"serial_out_path\":\"/tmp/ember-unit-serial.out\"}");
    expect_204("PUT", "/serial", "{}");
    fault("PUT", "/logger", "{\"log_path\":\"/nonexistent-dir/log\"}", "/nonexistent-dir/log", NULL);
    fault("PUT", "/metrics", "{\"metrics_path\":\"/nonexistent-dir/m\"}", "/nonexistent-dir/m", NULL);
}

Test(api_config, missing_files)
{
    const struct bad_case cases[] = {
        {"PUT", "/boot-source", fmt("{\"kernel_image_path\":\"%s\"}", missing), "Kernel", missing},
        {"PUT", "/boot-source", fmt("{\"kernel_image_path\":\"%s\",\"initrd_path\":\"%s\"}", kernel, missing), "Initrd",
         missing},
        {"PUT", "/drives/rootfs", drive_body("rootfs", true, missing), "Drive", missing},
        {"PUT", "/boot-source", "{\"kernel_image_path\":\"\"}", "Kernel", NULL},
    };
    run_cases(cases, N(cases));
    /* Nothing half-applied. */
    json_t *c = get_json("/vm/config");
    cr_expect_null(json_object_get(c, "boot-source"));
    cr_expect_eq(json_array_size(json_object_get(c, "drives")), 0);
    json_decref(c);
    /* A boot source with an initrd, then without: the initrd is gone. */
    expect_204("PUT", "/boot-source", fmt("{\"kernel_image_path\":\"%s\",\"initrd_path\":\"%s\"}", kernel, initrd));
    c = get_json("/vm/config");
    cr_expect_str_eq(str_of(json_object_get(c, "boot-source"), "initrd_path"), initrd);
    json_decref(c);
    expect_204("PUT", "/boot-source", fmt("{\"kernel_image_path\":\"%s\"}", kernel));
    c = get_json("/vm/config");
    cr_expect_null(json_object_get(json_object_get(c, "boot-source"), "initrd_path"));
    cr_expect_null(json_object_get(json_object_get(c, "boot-source"), "boot_args"));
    json_decref(c);
}

Test(api_config, drives_root_replace_and_limit)
{
    expect_204("PUT", "/drives/rootfs", drive_body("rootfs", true, disk[0]));
    fault("PUT", "/drives/second", drive_body("second", true, disk[1]), "root block device already exists", NULL);
    expect_204("PUT", "/drives/data", drive_body("data", false, disk[1]));
    /* Making another drive the root while one exists is refused too. */
    fault("PUT", "/drives/data", drive_body("data", true, disk[1]), "root block device already exists", NULL);
    /* PUT on an existing id replaces it in place (path, flags). */
    expect_204("PUT", "/drives/rootfs",
               fmt("{\"drive_id\":\"rootfs\",\"is_root_device\":true,\"is_read_only\":true,\"path_on_host\":\"%s\","
                   "\"io_engine\":\"Async\",\"cache_type\":\"Writeback\"}",
                   disk[2]));
    json_t *c = get_json("/vm/config");
    json_t *d = json_object_get(c, "drives");
    cr_assert_eq(json_array_size(d), 2);
    json_t *d0 = json_array_get(d, 0), *d1 = json_array_get(d, 1);
    cr_expect_str_eq(str_of(d0, "drive_id"), "rootfs");
    cr_expect_str_eq(str_of(d0, "path_on_host"), disk[2]);
    cr_expect(bool_of(d0, "is_root_device"));
    cr_expect(bool_of(d0, "is_read_only"));
    cr_expect_str_eq(str_of(d0, "io_engine"), "Async");
    cr_expect_str_eq(str_of(d0, "cache_type"), "Writeback");
    cr_expect_str_eq(str_of(d1, "drive_id"), "data");
    cr_expect_not(bool_of(d1, "is_root_device"));
    cr_expect_not(bool_of(d1, "is_read_only"));
    cr_expect_str_eq(str_of(d1, "io_engine"), "Sync");
    cr_expect_str_eq(str_of(d1, "cache_type"), "Unsafe");
    json_decref(c);
    /* The root can move: un-root it, then root another. */
    expect_204("PUT", "/drives/rootfs", drive_body("rootfs", false, disk[0]));
    expect_204("PUT", "/drives/data", drive_body("data", true, disk[1]));
    /* Up to EMBER_MAX_DRIVES (16; Kata Containers sends 9). */
    for (int i = 2; i < EMBER_MAX_DRIVES; i++)
        expect_204("PUT", fmt("/drives/d%d", i), drive_body(fmt("d%d", i), false, disk[i % 10]));
    fault("PUT", "/drives/d16", drive_body("d16", false, disk[8]), "Too many drives", NULL);
    /* Replacing one when full still works. */
    expect_204("PUT", "/drives/d15", drive_body("d15", false, disk[9]));
}

Test(api_config, network_interfaces_duplicates_and_limit)
{
    expect_204("PUT", "/network-interfaces/eth0",
               "{\"iface_id\":\"eth0\",\"host_dev_name\":\"tap0\",\"guest_mac\":\"06:00:ac:10:00:02\"}");
    fault("PUT", "/network-interfaces/eth1", "{\"iface_id\":\"eth1\",\"host_dev_name\":\"tap0\"}", "tap0", "in use");
    fault("PUT", "/network-interfaces/eth1",
          "{\"iface_id\":\"eth1\",\"host_dev_name\":\"tap1\",\"guest_mac\":\"06:00:ac:10:00:02\"}", "06:00:ac:10:00:02",
          "in use");
    /* The same interface id replaces itself, keeping its tap and MAC legal. */
    expect_204("PUT", "/network-interfaces/eth0",
               "{\"iface_id\":\"eth0\",\"host_dev_name\":\"tap0\",\"guest_mac\":\"06:00:ac:10:00:02\"}");
    expect_204("PUT", "/network-interfaces/eth0", "{\"iface_id\":\"eth0\",\"host_dev_name\":\"tapA\"}");
    /* tap0 and the MAC are free again. */
    expect_204("PUT", "/network-interfaces/eth1",
               "{\"iface_id\":\"eth1\",\"host_dev_name\":\"tap0\",\"guest_mac\":\"06:00:ac:10:00:02\"}");
    json_t *c = get_json("/vm/config");
    json_t *n = json_object_get(c, "network-interfaces");
    cr_assert_eq(json_array_size(n), 2);
    cr_expect_str_eq(str_of(json_array_get(n, 0), "host_dev_name"), "tapA");
    cr_expect_null(json_object_get(json_array_get(n, 0), "guest_mac"));
    cr_expect_str_eq(str_of(json_array_get(n, 1), "guest_mac"), "06:00:ac:10:00:02");
    json_decref(c);
    expect_204("PUT", "/network-interfaces/eth2", "{\"iface_id\":\"eth2\",\"host_dev_name\":\"tap2\"}");
    expect_204("PUT", "/network-interfaces/eth3", "{\"iface_id\":\"eth3\",\"host_dev_name\":\"tap3\"}");
    fault("PUT", "/network-interfaces/eth4", "{\"iface_id\":\"eth4\",\"host_dev_name\":\"tap4\"}",
          "Too many network interfaces", NULL);
}

Test(api_config, apply_config_good)
{
    struct errmsg e = {{0}};
    const char *cfg = fmt(
        "{\"boot-source\":{\"kernel_image_path\":\"%s\",\"boot_args\":\"console=ttyS0\",\"initrd_path\":\"%s\"},"
        "\"drives\":[{\"drive_id\":\"rootfs\",\"path_on_host\":\"%s\",\"is_root_device\":true,\"is_read_only\":false},"
        "{\"drive_id\":\"data\",\"path_on_host\":\"%s\",\"is_root_device\":false,\"io_engine\":\"Async\"}],"
        "\"machine-config\":{\"vcpu_count\":2,\"mem_size_mib\":256,\"smt\":false},"
        "\"network-interfaces\":[{\"iface_id\":\"eth0\",\"host_dev_name\":\"tap0\",\"guest_mac\":\"06:00:ac:10:00:02\"}"
        "],"
        "\"logger\":{\"log_path\":\"%s\",\"level\":\"Info\"},"
        "\"metrics\":{\"metrics_path\":\"%s\"},"
        "\"balloon\":null,\"vsock\":null,\"mmds-config\":null,\"entropy\":null,\"cpu-config\":null}",
        kernel, initrd, disk[0], disk[1], logfile, metf);
    cr_assert_eq(apply_text(&ctl, cfg, &e), 0, "%s", e.text);
    const struct vm_config *vc = ctl_config(&ctl);
    cr_assert_not_null(vc->kernel_path);
    cr_expect_str_eq(vc->kernel_path, kernel);
    cr_expect_not_null(vc->initrd_path);
    cr_expect_str_eq(vc->cmdline, "console=ttyS0");
    cr_expect_eq(vc->vcpus, 2);
    cr_expect_eq(vc->mem_mib, 256);
    cr_expect_eq(vc->nr_drives, 2);
    cr_expect(vc->drives[0].root);
    cr_expect_eq(vc->drives[1].engine, BLK_ENGINE_ASYNC);
    cr_expect_eq(vc->nr_nets, 1);
    cr_expect(ctl.logger_set);
    cr_expect_not_null(ctl.metrics_path);
    cr_expect_eq(ctl.state, CTL_NOT_STARTED);
    /* The minimum: a boot source alone. */
    struct controller other;
    ctl_init(&other, &runner, vm, "other");
    cr_expect_eq(apply_text(&other, fmt("{\"boot-source\":{\"kernel_image_path\":\"%s\"}}", kernel), &e), 0, "%s",
                 e.text);
    cr_expect_eq(ctl_config(&other)->vcpus, 1);
    cr_expect_eq(ctl_config(&other)->mem_mib, 128);
    ctl_destroy(&other);
}

Test(api_config, apply_config_bad)
{
    struct {
        const char *text, *frag1, *frag2;
    } cases[] = {
        {"[]", "JSON object", NULL},
        {"5", "JSON object", NULL},
        {"{\"boot_source\":{}}", "`boot_source`", "unknown field"},
        {"{\"balloon\":{\"amount_mib\":1}}", "balloon", "`deflate_on_oom`"},
        {"{\"vsock\":{\"guest_cid\":-1,\"uds_path\":\"/tmp/v\"}}", "vsock", "guest_cid"},
        {"{\"mmds-config\":{\"network_interfaces\":[]}}", "mmds-config", "is empty"},
        {"{\"entropy\":{\"rate_limiter\":5}}", "entropy", "`rate_limiter`"},
        {"{\"cpu-config\":5}", "cpu-config", "CPU template object"},
        {"{\"pmem\":[]}", "pmem", "not implemented"},
        {"{\"memory-hotplug\":{}}", "memory-hotplug", "not implemented"},
        {"{\"machine-config\":5}", "machine-config", "object"},
        {"{\"machine-config\":{\"vcpu_count\":2}}", "machine-config", "`mem_size_mib`"},
        {"{\"machine-config\":{\"vcpu_count\":0,\"mem_size_mib\":128}}", "machine-config", "`vcpu_count`"},
        {"{\"boot-source\":{}}", "boot-source", "`kernel_image_path`"},
        {fmt("{\"boot-source\":{\"kernel_image_path\":\"%s\"}}", missing), "boot-source", missing},
        {"{\"boot-source\":[]}", "boot-source", "object"},
        {"{\"drives\":{}}", "drives", "array"},
        {"{\"drives\":[5]}", "drives", "[0]"},
        {fmt("{\"drives\":[{\"drive_id\":\"a\",\"path_on_host\":\"%s\",\"is_root_device\":true},"
             "{\"drive_id\":\"b\",\"path_on_host\":\"%s\",\"is_root_device\":true}]}",
             disk[0], disk[1]),
         "drives\"[1]", "root block device"},
        {fmt("{\"drives\":[{\"drive_id\":\"a-b\",\"path_on_host\":\"%s\",\"is_root_device\":true}]}", disk[0]),
         "`drive_id`", NULL},
        {fmt("{\"drives\":[{\"drive_id\":\"a\",\"path_on_host\":\"%s\",\"is_root_device\":true}]}", missing), "drives",
         missing},
        {"{\"network-interfaces\":[{\"iface_id\":\"eth0\"}]}", "network-interfaces", "`host_dev_name`"},
        {"{\"network-interfaces\":[{\"iface_id\":\"a\",\"host_dev_name\":\"tap0\"},"
         "{\"iface_id\":\"b\",\"host_dev_name\":\"tap0\"}]}",
         "network-interfaces\"[1]", "tap0"},
        {"{\"network-interfaces\":\"eth0\"}", "network-interfaces", "array"},
        {"{\"logger\":{\"level\":\"Loud\"}}", "logger", "`level`"},
        {"{\"metrics\":{}}", "metrics", "`metrics_path`"},
        {"{\"serial\":{\"serial_out_path\":5}}", "serial", "`serial_out_path`"},
    };
    for (unsigned i = 0; i < N(cases); i++) {
        struct controller c;
        ctl_init(&c, &runner, vm, "cfg");
        struct errmsg e = {{0}};
        int rc = apply_text(&c, cases[i].text, &e);
        cr_expect_lt(rc, 0, "config %s: rc %d (%s)", cases[i].text, rc, e.text);
        cr_expect(strstr(e.text, cases[i].frag1) != NULL, "config %s: message '%s' should mention '%s'", cases[i].text,
                  e.text, cases[i].frag1);
        if (cases[i].frag2)
            cr_expect(strstr(e.text, cases[i].frag2) != NULL, "config %s: message '%s' should mention '%s'",
                      cases[i].text, e.text, cases[i].frag2);
        cr_expect_eq(c.state, CTL_NOT_STARTED);
        ctl_destroy(&c);
    }
}

/* --config-file: the file is read and applied whole; errors name the file and the section. */
Test(api_config, load_config_file)
{
    const char *path = fmt("%s.json", metf);
    const struct {
        const char *text, *frag1, *frag2; /* frag1 NULL: loads */
    } cases[] = {
        {fmt("{\"boot-source\":{\"kernel_image_path\":\"%s\"},\"machine-config\":{\"vcpu_count\":2,\"mem_size_mib\":64}"
             "}",
             kernel),
         NULL, NULL},
        {"{\"machine-config\":{\"vcpu_count\":2,\"mem_size_mib\":64}}", "\"boot-source\" is missing", path},
        {"{\"boot-source\":", "config file", "line"},
        {"{\"boot-source\":{\"kernel_image_path\":5}}", "\"boot-source\": Invalid type", "`kernel_image_path`"},
    };
    for (unsigned i = 0; i < N(cases); i++) {
        FILE *f = fopen(path, "w");
        cr_assert_not_null(f);
        fputs(cases[i].text, f);
        fclose(f);
        struct controller c;
        ctl_init(&c, &runner, vm, "cfg");
        struct errmsg e = {{0}};
        int rc = api_load_config_file(&c, path, &e);
        if (!cases[i].frag1) {
            cr_expect_eq(rc, 0, "%s: %s", cases[i].text, e.text);
            cr_expect_eq(ctl_config(&c)->vcpus, 2);
            cr_expect_str_eq(ctl_config(&c)->kernel_path, kernel);
        } else {
            cr_expect_lt(rc, 0, "%s loaded", cases[i].text);
            cr_expect(strstr(e.text, cases[i].frag1) && strstr(e.text, cases[i].frag2),
                      "%s: message '%s' should mention '%s' and '%s'", cases[i].text, e.text, cases[i].frag1,
                      cases[i].frag2);
        }
        ctl_destroy(&c);
    }
    unlink(path);
}

/* A command-line description handed to the controller shows in GET /vm/config like an API one. */
Test(api_config, command_line_config_taken_over)
{
    struct vm_config cli;
    vm_config_defaults(&cli);
    cr_assert_eq(vm_config_set_str(&cli.kernel_path, kernel), 0);
    cli.vcpus = 2;
    cli.drives[0] = (struct blk_config){.root = true};
    cr_assert_eq(vm_config_set_str(&cli.drives[0].id, "rootfs") | vm_config_set_str(&cli.drives[0].path, disk[0]), 0);
    cli.nr_drives = 1;
    cli.nets[0] = (struct net_config){.has_mac = true, .mac = {0x06, 0, 0xac, 0x10, 0, 0x02}};
    cr_assert_eq(vm_config_set_str(&cli.nets[0].id, "eth0") | vm_config_set_str(&cli.nets[0].tap, "tap0"), 0);
    cli.nr_nets = 1;
    ctl_take_config(&ctl, &cli);
    cr_expect_null(cli.kernel_path, "the strings moved to the controller");
    cr_expect_eq(cli.nr_drives, 0);
    json_t *c = get_json("/vm/config");
    cr_expect_str_eq(str_of(json_object_get(c, "boot-source"), "kernel_image_path"), kernel);
    cr_expect_eq(int_of(json_object_get(c, "machine-config"), "vcpu_count"), 2);
    json_t *d = json_array_get(json_object_get(c, "drives"), 0);
    cr_expect_str_eq(str_of(d, "drive_id"), "rootfs");
    cr_expect_str_eq(str_of(d, "cache_type"), "Unsafe");
    cr_expect_str_eq(str_of(json_array_get(json_object_get(c, "network-interfaces"), 0), "guest_mac"),
                     "06:00:ac:10:00:02");
    json_decref(c);
    /* The API changes it like any other: the replaced strings are freed (ASan). */
    expect_204("PUT", "/drives/rootfs", drive_body("rootfs", true, disk[1]));
    expect_204("PUT", "/boot-source", fmt("{\"kernel_image_path\":\"%s\"}", kernel));
}
