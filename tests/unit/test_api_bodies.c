/* API request bodies: JSON syntax, field types, unknown and missing fields, ranges and enum values. */
#include <criterion/criterion.h>
#include <string.h>

#include "tests/unit/api_fixture.h"

TestSuite(api_bodies, .init = api_fx_setup, .fini = api_fx_teardown);

Test(api_bodies, malformed_json)
{
    static const char *const bodies[] = {
        "{",
        "}",
        "{\"vcpu_count\": }",
        "{\"vcpu_count\": 2,}",
        "{'vcpu_count': 2}",
        "nul",
        "{} trailing",
        "{}{}",
        "{\"vcpu_count\": 2, \"vcpu_count\": 2, \"mem_size_mib\": 128}", /* duplicate key */
        "{\"vcpu_count\": 0x10, \"mem_size_mib\": 128}",
        "{\"vcpu_count\": 99999999999999999999999, \"mem_size_mib\": 128}",
        "{\"a\": \"\xff\xfe\"}", /* invalid UTF-8 */
        "   ",
    };
    for (unsigned i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
        fault("PUT", "/machine-config", bodies[i], "Invalid JSON body", NULL);
    /* A NUL byte inside the body (length-delimited, not a C string). */
    req_len("PUT", "/machine-config", "{}\0{}", 5);
    fault_ok("PUT /machine-config {}\\0{}", "Invalid JSON body", NULL);
    /* Nothing was applied. */
    json_t *m = get_json("/machine-config");
    cr_expect_eq(int_of(m, "vcpu_count"), 1);
    json_decref(m);
}

Test(api_bodies, non_object_bodies)
{
    static const char *const bodies[] =
        {"[]", "[1, 2]", "\"text\"", "5", "null", "true", "[{\"action_type\": \"InstanceStart\"}]"};
    static const char *const paths[][2] = {{"PUT", "/machine-config"}, {"PATCH", "/machine-config"},
                                           {"PUT", "/boot-source"},    {"PUT", "/drives/rootfs"},
                                           {"PUT", "/actions"},        {"PUT", "/logger"},
                                           {"PUT", "/metrics"},        {"PUT", "/network-interfaces/eth0"}};
    for (unsigned p = 0; p < sizeof(paths) / sizeof(paths[0]); p++)
        for (unsigned i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
            fault(paths[p][0], paths[p][1], bodies[i], "Invalid JSON body", NULL);
    cr_expect_eq(ctl.state, CTL_NOT_STARTED);
}

Test(api_bodies, empty_body_on_put_and_patch)
{
    static const char *const reqs[][2] = {
        {"PUT", "/machine-config"},
        {"PATCH", "/machine-config"},
        {"PUT", "/boot-source"},
        {"PUT", "/drives/rootfs"},
        {"PATCH", "/drives/rootfs"},
        {"PUT", "/network-interfaces/eth0"},
        {"PATCH", "/network-interfaces/eth0"},
        {"PUT", "/actions"},
        {"PATCH", "/vm"},
        {"PUT", "/logger"},
        {"PUT", "/metrics"},
        {"PUT", "/serial"},
    };
    for (unsigned i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++)
        fault(reqs[i][0], reqs[i][1], NULL, "empty", NULL);
}

Test(api_bodies, body_on_get)
{
    static const char *const paths[] = {"/", "/version", "/machine-config", "/vm/config"};
    for (unsigned i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
        fault("GET", paths[i], "{}", "GET", "no body");
}

Test(api_bodies, wrong_types_pre_boot)
{
    const struct bad_case cases[] = {
        {"PUT", "/machine-config", "{\"vcpu_count\":\"2\",\"mem_size_mib\":128}", "`vcpu_count`", "type"},
        {"PUT", "/machine-config", "{\"vcpu_count\":2.0,\"mem_size_mib\":128}", "`vcpu_count`", "type"},
        {"PUT", "/machine-config", "{\"vcpu_count\":true,\"mem_size_mib\":128}", "`vcpu_count`", "type"},
        {"PUT", "/machine-config", "{\"vcpu_count\":[2],\"mem_size_mib\":128}", "`vcpu_count`", "type"},
        {"PUT", "/machine-config", "{\"vcpu_count\":2,\"mem_size_mib\":\"128\"}", "`mem_size_mib`", "type"},
        {"PUT", "/machine-config", "{\"vcpu_count\":2,\"mem_size_mib\":128.5}", "`mem_size_mib`", "type"},
        {"PUT", "/machine-config", "{\"vcpu_count\":2,\"mem_size_mib\":128,\"smt\":\"true\"}", "`smt`", "type"},
        {"PUT", "/machine-config", "{\"vcpu_count\":2,\"mem_size_mib\":128,\"smt\":1}", "`smt`", "type"},
        {"PUT", "/machine-config", "{\"vcpu_count\":2,\"mem_size_mib\":128,\"track_dirty_pages\":\"no\"}",
         "`track_dirty_pages`", "type"},
        {"PUT", "/machine-config", "{\"vcpu_count\":2,\"mem_size_mib\":128,\"huge_pages\":2}", "`huge_pages`", "type"},
        {"PUT", "/machine-config", "{\"vcpu_count\":2,\"mem_size_mib\":128,\"cpu_template\":false}", "`cpu_template`",
         "type"},
        {"PATCH", "/machine-config", "{\"vcpu_count\":\"4\"}", "`vcpu_count`", "type"},
        {"PATCH", "/machine-config", "{\"mem_size_mib\":{}}", "`mem_size_mib`", "type"},
        {"PATCH", "/machine-config", "{\"smt\":\"yes\"}", "`smt`", "type"},
        {"PUT", "/boot-source", "{\"kernel_image_path\":5}", "`kernel_image_path`", "type"},
        {"PUT", "/boot-source", fmt("{\"kernel_image_path\":\"%s\",\"boot_args\":5}", kernel), "`boot_args`", "type"},
        {"PUT", "/boot-source", fmt("{\"kernel_image_path\":\"%s\",\"initrd_path\":false}", kernel), "`initrd_path`",
         "type"},
        {"PUT", "/boot-source", "{\"kernel_image_path\":\"a\\u0000b\"}", "Invalid JSON body",
         NULL}, /* NUL in a string */
        {"PUT", "/drives/d", fmt("{\"drive_id\":1,\"is_root_device\":false,\"path_on_host\":\"%s\"}", disk[0]),
         "`drive_id`", "type"},
        {"PUT", "/drives/d", "{\"drive_id\":\"d\",\"is_root_device\":false,\"path_on_host\":1}", "`path_on_host`",
         "type"},
        {"PUT", "/drives/d", fmt("{\"drive_id\":\"d\",\"is_root_device\":\"true\",\"path_on_host\":\"%s\"}", disk[0]),
         "`is_root_device`", "type"},
        {"PUT", "/drives/d",
         fmt("{\"drive_id\":\"d\",\"is_root_device\":false,\"is_read_only\":\"no\",\"path_on_host\":\"%s\"}", disk[0]),
         "`is_read_only`", "type"},
        {"PUT", "/drives/d",
         fmt("{\"drive_id\":\"d\",\"is_root_device\":false,\"partuuid\":7,\"path_on_host\":\"%s\"}", disk[0]),
         "`partuuid`", "type"},
        {"PUT", "/drives/d",
         fmt("{\"drive_id\":\"d\",\"is_root_device\":false,\"cache_type\":7,\"path_on_host\":\"%s\"}", disk[0]),
         "`cache_type`", "type"},
        {"PUT", "/drives/d",
         fmt("{\"drive_id\":\"d\",\"is_root_device\":false,\"io_engine\":true,\"path_on_host\":\"%s\"}", disk[0]),
         "`io_engine`", "type"},
        {"PUT", "/drives/d",
         fmt("{\"drive_id\":\"d\",\"is_root_device\":false,\"rate_limiter\":\"x\",\"path_on_host\":\"%s\"}", disk[0]),
         "`rate_limiter`", NULL},
        {"PUT", "/drives/d",
         fmt("{\"drive_id\":\"d\",\"is_root_device\":false,\"socket\":1,\"path_on_host\":\"%s\"}", disk[0]), "`socket`",
         "type"},
        {"PUT", "/network-interfaces/n", "{\"iface_id\":1,\"host_dev_name\":\"tap0\"}", "`iface_id`", "type"},
        {"PUT", "/network-interfaces/n", "{\"iface_id\":\"n\",\"host_dev_name\":0}", "`host_dev_name`", "type"},
        {"PUT", "/network-interfaces/n", "{\"iface_id\":\"n\",\"host_dev_name\":\"tap0\",\"guest_mac\":6}",
         "`guest_mac`", "type"},
        {"PUT", "/network-interfaces/n", "{\"iface_id\":\"n\",\"host_dev_name\":\"tap0\",\"mtu\":\"1500\"}", "`mtu`",
         NULL},
        {"PUT", "/network-interfaces/n", "{\"iface_id\":\"n\",\"host_dev_name\":\"tap0\",\"rx_rate_limiter\":1}",
         "`rx_rate_limiter`", NULL},
        {"PUT", "/network-interfaces/n", "{\"iface_id\":\"n\",\"host_dev_name\":\"tap0\",\"tx_rate_limiter\":[]}",
         "`tx_rate_limiter`", NULL},
        {"PUT", "/logger", "{\"log_path\":1}", "`log_path`", "type"},
        {"PUT", "/logger", "{\"level\":3}", "`level`", "type"},
        {"PUT", "/logger", "{\"show_level\":\"yes\"}", "`show_level`", "type"},
        {"PUT", "/logger", "{\"show_log_origin\":0}", "`show_log_origin`", "type"},
        {"PUT", "/logger", "{\"module\":[]}", "`module`", "type"},
        {"PUT", "/metrics", "{\"metrics_path\":12}", "`metrics_path`", "type"},
        {"PUT", "/metrics", fmt("{\"metrics_path\":\"%s\",\"emit_id\":\"yes\"}", metf), "`emit_id`", "type"},
        {"PUT", "/serial", "{\"serial_out_path\":1}", "`serial_out_path`", "type"},
        {"PUT", "/serial", "{\"rate_limiter\":5}", "`rate_limiter`", NULL},
        {"PUT", "/actions", "{\"action_type\":1}", "`action_type`", "type"},
        {"PUT", "/actions", "{\"action_type\":null}", "`action_type`", "missing"},
    };
    run_cases(cases, N(cases));
    /* None of them changed anything. */
    json_t *c = get_json("/vm/config");
    cr_expect_eq(json_array_size(json_object_get(c, "drives")), 0);
    cr_expect_eq(json_array_size(json_object_get(c, "network-interfaces")), 0);
    cr_expect_null(json_object_get(c, "boot-source"));
    cr_expect_null(json_object_get(c, "logger"));
    cr_expect_null(json_object_get(c, "metrics"));
    json_decref(c);
}

/* Metrics.properties is documented as an object of strings; anything else is bad input. */
Test(api_bodies, metrics_properties_type)
{
    const struct bad_case cases[] = {
        {"PUT", "/metrics", fmt("{\"metrics_path\":\"%s\",\"properties\":5}", metf), "`properties`", NULL},
        {"PUT", "/metrics", fmt("{\"metrics_path\":\"%s\",\"properties\":{\"a\":1}}", metf), "`properties`", NULL},
    };
    run_cases(cases, N(cases));
}

Test(api_bodies, unknown_fields)
{
    const struct bad_case cases[] = {
        {"PUT", "/machine-config", "{\"vcpu_count\":2,\"mem_size_mib\":128,\"bogus\":1}", "`bogus`", "unknown field"},
        {"PATCH", "/machine-config", "{\"vcpus\":2}", "`vcpus`", "unknown field"},
        {"PUT", "/boot-source", fmt("{\"kernel_image_path\":\"%s\",\"kernel\":\"x\"}", kernel), "`kernel`",
         "unknown field"},
        {"PUT", "/drives/d",
         fmt("{\"drive_id\":\"d\",\"is_root_device\":false,\"path_on_host\":\"%s\",\"ro\":true}", disk[0]), "`ro`",
         "unknown field"},
        {"PUT", "/network-interfaces/n", "{\"iface_id\":\"n\",\"host_dev_name\":\"tap0\",\"mac\":\"x\"}", "`mac`",
         "unknown field"},
        {"PUT", "/logger", "{\"path\":\"/tmp/x\"}", "`path`", "unknown field"},
        {"PUT", "/metrics", fmt("{\"metrics_path\":\"%s\",\"period\":1}", metf), "`period`", "unknown field"},
        {"PUT", "/serial", "{\"out\":\"x\"}", "`out`", "unknown field"},
        {"PUT", "/actions", "{\"action_type\":\"InstanceStart\",\"now\":true}", "`now`", "unknown field"},
        {"PUT", "/actions", "{\"type\":\"InstanceStart\"}", "`type`", "unknown field"},
    };
    run_cases(cases, N(cases));
    cr_expect_eq(ctl.state, CTL_NOT_STARTED);
}

Test(api_bodies, out_of_range_and_bad_enum_values)
{
    const struct bad_case cases[] = {
        {"PUT", "/machine-config", "{\"vcpu_count\":0,\"mem_size_mib\":128}", "`vcpu_count`", "between 1 and 32"},
        {"PUT", "/machine-config", "{\"vcpu_count\":33,\"mem_size_mib\":128}", "`vcpu_count`", "between 1 and 32"},
        {"PUT", "/machine-config", "{\"vcpu_count\":-1,\"mem_size_mib\":128}", "`vcpu_count`", NULL},
        {"PUT", "/machine-config", "{\"vcpu_count\":4294967297,\"mem_size_mib\":128}", "`vcpu_count`", NULL},
        {"PUT", "/machine-config", "{\"vcpu_count\":1,\"mem_size_mib\":0}", "`mem_size_mib`", NULL},
        {"PUT", "/machine-config", "{\"vcpu_count\":1,\"mem_size_mib\":-128}", "`mem_size_mib`", NULL},
        {"PUT", "/machine-config", "{\"vcpu_count\":1,\"mem_size_mib\":1048577}", "`mem_size_mib`", NULL},
        {"PATCH", "/machine-config", "{\"vcpu_count\":0}", "`vcpu_count`", NULL},
        {"PATCH", "/machine-config", "{\"mem_size_mib\":0}", "`mem_size_mib`", NULL},
        {"PUT", "/machine-config", "{\"vcpu_count\":3,\"mem_size_mib\":128,\"smt\":true}", "vCPU number", "SMT"},
        {"PUT", "/machine-config", "{\"vcpu_count\":2,\"mem_size_mib\":128,\"huge_pages\":\"2M\"}", "`huge_pages`",
         NULL},
        {"PUT", "/machine-config", "{\"vcpu_count\":2,\"mem_size_mib\":128,\"huge_pages\":\"Transparent\"}",
         "`huge_pages`", NULL},
        {"PUT", "/machine-config", "{\"vcpu_count\":2,\"mem_size_mib\":128,\"cpu_template\":\"T3\"}", "`cpu_template`",
         NULL},
        {"PUT", "/drives/d",
         fmt("{\"drive_id\":\"d\",\"is_root_device\":false,\"cache_type\":\"Fast\",\"path_on_host\":\"%s\"}", disk[0]),
         "`cache_type`", "Fast"},
        {"PUT", "/drives/d",
         fmt("{\"drive_id\":\"d\",\"is_root_device\":false,\"io_engine\":\"sync\",\"path_on_host\":\"%s\"}", disk[0]),
         "`io_engine`", NULL},
        {"PUT", "/drives/d",
         fmt("{\"drive_id\":\"d\",\"is_root_device\":true,\"partuuid\":\"abc\",\"path_on_host\":\"%s\"}", disk[0]),
         "`partuuid`", NULL},
        {"PUT", "/drives/d",
         fmt("{\"drive_id\":\"d\",\"is_root_device\":false,\"socket\":\"/tmp/vhost.sock\",\"path_on_host\":\"%s\"}",
             disk[0]),
         "`socket`", NULL},
        {"PUT", "/drives/d",
         fmt("{\"drive_id\":\"d\",\"is_root_device\":false,\"rate_limiter\":{\"bandwidth\":{\"size\":1}},"
             "\"path_on_host\":\"%s\"}",
             disk[0]),
         "`rate_limiter.bandwidth`", "missing field `refill_time`"},
        {"PUT", "/network-interfaces/n", "{\"iface_id\":\"n\",\"host_dev_name\":\"tap0\",\"mtu\":1500}", "`mtu`", NULL},
        {"PUT", "/network-interfaces/n", "{\"iface_id\":\"n\",\"host_dev_name\":\"\"}", "`host_dev_name`", NULL},
        {"PUT", "/network-interfaces/n", "{\"iface_id\":\"n\",\"host_dev_name\":\"tap0123456789abc\"}",
         "`host_dev_name`", NULL},
        {"PUT", "/logger", "{\"level\":\"Loud\"}", "`level`", "Loud"},
        {"PUT", "/actions", "{\"action_type\":\"Reboot\"}", "`action_type`", "Reboot"},
        {"PUT", "/actions", "{\"action_type\":\"instancestart\"}", "`action_type`", NULL},
    };
    run_cases(cases, N(cases));
    json_t *m = get_json("/machine-config");
    cr_expect_eq(int_of(m, "vcpu_count"), 1);
    cr_expect_eq(int_of(m, "mem_size_mib"), 128);
    json_decref(m);
}

Test(api_bodies, boot_args_length)
{
    static char body[8192];
    char args[4097];
    memset(args, 'x', sizeof(args) - 1);
    args[4096] = '\0';
    snprintf(body, sizeof(body), "{\"kernel_image_path\":\"%s\",\"boot_args\":\"%s\"}", kernel, args);
    fault("PUT", "/boot-source", body, "`boot_args`", NULL);
    args[4095] = '\0'; /* 4095 characters fit */
    snprintf(body, sizeof(body), "{\"kernel_image_path\":\"%s\",\"boot_args\":\"%s\"}", kernel, args);
    expect_204("PUT", "/boot-source", body);
    json_t *c = get_json("/vm/config");
    cr_expect_eq(strlen(str_of(json_object_get(c, "boot-source"), "boot_args")), 4095);
    json_decref(c);
}

Test(api_bodies, guest_mac_validation)
{
    static const char *const bad_macs[] = {
        "06:00:ac:10:00",       /* too short */
        "06:00:ac:10:00:02:03", /* too long */
        "06-00-ac-10-00-02",    /* wrong separator */
        "zz:00:ac:10:00:02",    /* not hex */
        "06:00:ac:10:00:0g",
        "01:00:5e:00:00:01", /* multicast */
        "ff:ff:ff:ff:ff:ff", /* broadcast */
        "06:00:ac:10:00: 2", /* a space is not a hex digit */
        "06:00:ac:10:0x:02", /* nor is a 0x prefix */
        "",
    };
    for (unsigned i = 0; i < N(bad_macs); i++)
        fault("PUT", "/network-interfaces/n",
              fmt("{\"iface_id\":\"n\",\"host_dev_name\":\"tap0\",\"guest_mac\":\"%s\"}", bad_macs[i]), "`guest_mac`",
              NULL);
    expect_204("PUT", "/network-interfaces/n",
               "{\"iface_id\":\"n\",\"host_dev_name\":\"tap0\",\"guest_mac\":\"06:00:AC:10:00:02\"}");
}

Test(api_bodies, missing_required_fields)
{
    const struct bad_case cases[] = {
        {"PUT", "/machine-config", "{}", "missing field", "`vcpu_count`"},
        {"PUT", "/machine-config", "{\"vcpu_count\":2}", "missing field", "`mem_size_mib`"},
        {"PUT", "/machine-config", "{\"mem_size_mib\":256}", "missing field", "`vcpu_count`"},
        {"PUT", "/machine-config", "{\"vcpu_count\":null,\"mem_size_mib\":256}", "missing field", "`vcpu_count`"},
        {"PUT", "/boot-source", "{}", "missing field", "`kernel_image_path`"},
        {"PUT", "/boot-source", "{\"boot_args\":\"console=ttyS0\"}", "missing field", "`kernel_image_path`"},
        {"PUT", "/drives/d", "{}", "missing field", "`drive_id`"},
        {"PUT", "/drives/d", fmt("{\"drive_id\":\"d\",\"path_on_host\":\"%s\"}", disk[0]), "missing field",
         "`is_root_device`"},
        {"PUT", "/drives/d", "{\"drive_id\":\"d\",\"is_root_device\":false}", "missing field", "`path_on_host`"},
        {"PUT", "/network-interfaces/n", "{}", "missing field", "`iface_id`"},
        {"PUT", "/network-interfaces/n", "{\"iface_id\":\"n\"}", "missing field", "`host_dev_name`"},
        {"PUT", "/metrics", "{}", "missing field", "`metrics_path`"},
        {"PUT", "/actions", "{}", "missing field", "`action_type`"},
    };
    run_cases(cases, N(cases));
}
