/*
 * api/routes: the Firecracker-compatible request handler, called directly
 * (no socket): parsing, validation, phase rules, GET bodies, and the
 * config-file path (api_apply_config). Every error must be a 400 whose
 * body is exactly {"fault_message": "..."} naming what was wrong.
 *
 * No test here starts a VM: "after boot" is simulated by setting the
 * controller's state, for requests that are refused or validated before
 * they would touch the (never created) VM.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/config_file.h"
#include "api/controller.h"
#include "api/handlers.h"
#include "api/routes.h"
#include "core/version.h"
#include "api/server.h"
#include "vm/runner.h"
#include "vm/vm.h"

static struct runner runner;
static struct vm vm;
static struct controller ctl;
static struct api_reply rep;

static char dir[64];
static char kernel[128], initrd[128], notkernel[128], missing[128], logfile[128], metf[128];
static char disk[10][128];

static void make_file(const char *path, const char *content)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "cannot create %s", path);
    fputs(content, f);
    fclose(f);
}

static void setup(void)
{
    struct errmsg e;
    cr_assert_eq(runner_init(&runner, &e), 0, "runner_init: %s", e.text);
    ctl_init(&ctl, &runner, &vm, "test-id");
    rep.status = 0;
    rep.body = NULL;
    snprintf(dir, sizeof(dir), "/tmp/ember-api-unit-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(kernel, sizeof(kernel), "%s/vmlinux", dir);
    snprintf(initrd, sizeof(initrd), "%s/initrd", dir);
    snprintf(notkernel, sizeof(notkernel), "%s/notakernel", dir);
    snprintf(missing, sizeof(missing), "%s/does-not-exist", dir);
    snprintf(logfile, sizeof(logfile), "%s/log", dir);
    snprintf(metf, sizeof(metf), "%s/metrics", dir);
    make_file(kernel, "not really a kernel, but readable\n");
    make_file(initrd, "initrd\n");
    make_file(notkernel, "this is not a kernel at all\n");
    for (int i = 0; i < 10; i++) {
        snprintf(disk[i], sizeof(disk[i]), "%s/disk%d.img", dir, i);
        make_file(disk[i], "disk");
    }
}

static void teardown(void)
{
    free(rep.body);
    rep.body = NULL;
    ctl_destroy(&ctl);
    runner_finish(&runner);
    const char *files[] = {kernel, initrd, notkernel, logfile, metf};
    for (unsigned i = 0; i < sizeof(files) / sizeof(files[0]); i++)
        unlink(files[i]);
    for (int i = 0; i < 10; i++)
        unlink(disk[i]);
    rmdir(dir);
}

TestSuite(api, .init = setup, .fini = teardown);

/* One request; returns the status. body NULL means no body. */
static unsigned req_len(const char *method, const char *path, const char *body, size_t len)
{
    free(rep.body);
    rep.body = NULL;
    rep.status = 0;
    api_handle(&ctl, method, path, body ? body : "", len, &rep);
    return rep.status;
}

static unsigned req(const char *method, const char *path, const char *body)
{
    return req_len(method, path, body, body ? strlen(body) : 0);
}

/* printf-style body builder (paths of the temporary files go into bodies). */
static const char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static const char *fmt(const char *f, ...)
{
    static char buf[64][4096]; /* a ring: a case table uses many at once */
    static int n;
    char *b = buf[n++ % 64];
    va_list ap;
    va_start(ap, f);
    vsnprintf(b, sizeof(buf[0]), f, ap);
    va_end(ap);
    return b;
}

/*
 * The last reply is a 400 with exactly {"fault_message": "<text>"} and the
 * text contains frag1 and frag2 (either may be NULL). Non-fatal: reports
 * the request (what) and returns whether it held.
 */
static bool fault_ok(const char *what, const char *frag1, const char *frag2)
{
    bool ok = rep.status == 400;
    cr_expect(ok, "%s: status %u, want 400 (body %s)", what, rep.status, rep.body ? rep.body : "(none)");
    if (!rep.body) {
        cr_expect(false, "%s: no body; want {\"fault_message\": ...}", what);
        return false;
    }
    json_error_t je;
    json_t *o = json_loads(rep.body, 0, &je);
    if (!o) {
        cr_expect(false, "%s: body is not JSON: %s", what, rep.body);
        return false;
    }
    json_t *m = json_object_get(o, "fault_message");
    bool shape = json_is_object(o) && json_object_size(o) == 1 && json_is_string(m);
    cr_expect(shape, "%s: body %s is not exactly {\"fault_message\": string}", what, rep.body);
    ok &= shape;
    const char *text = json_is_string(m) ? json_string_value(m) : "";
    if (frag1 && !strstr(text, frag1)) {
        cr_expect(false, "%s: fault_message '%s' should mention '%s'", what, text, frag1);
        ok = false;
    }
    if (frag2 && !strstr(text, frag2)) {
        cr_expect(false, "%s: fault_message '%s' should mention '%s'", what, text, frag2);
        ok = false;
    }
    json_decref(o);
    return ok;
}

/* Sends the request and checks the fault. */
static bool fault(const char *method, const char *path, const char *body, const char *frag1, const char *frag2)
{
    char what[600];
    snprintf(what, sizeof(what), "%s %.100s %.200s", method, path, body ? body : "(no body)");
    req(method, path, body);
    return fault_ok(what, frag1, frag2);
}

static void expect_204(const char *method, const char *path, const char *body)
{
    unsigned st = req(method, path, body);
    cr_expect_eq(st, 204, "%s %s %s: status %u (body %s)", method, path, body ? body : "", st,
                 rep.body ? rep.body : "(none)");
    cr_expect_null(rep.body, "%s %s: a 204 has no body, got %s", method, path, rep.body);
}

/* GET and parse; the caller decrefs. */
static json_t *get_json(const char *path)
{
    unsigned st = req("GET", path, NULL);
    cr_assert_eq(st, 200, "GET %s: status %u (body %s)", path, st, rep.body ? rep.body : "(none)");
    cr_assert_not_null(rep.body);
    json_error_t je;
    json_t *o = json_loads(rep.body, 0, &je);
    cr_assert_not_null(o, "GET %s: body is not JSON: %s", path, rep.body);
    cr_assert(json_is_object(o), "GET %s: body is not an object: %s", path, rep.body);
    return o;
}

static json_int_t int_of(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    cr_assert(json_is_integer(v), "'%s' is not an integer", key);
    return json_integer_value(v);
}

static int bool_of(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    cr_assert(json_is_boolean(v), "'%s' is not a boolean", key);
    return json_is_true(v);
}

static const char *str_of(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    cr_assert(json_is_string(v), "'%s' is not a string", key);
    return json_string_value(v);
}

/* A drive body with the given id, root flag and backing file. */
static const char *drive_body(const char *id, bool root, const char *path)
{
    return fmt("{\"drive_id\":\"%s\",\"is_root_device\":%s,\"path_on_host\":\"%s\"}", id, root ? "true" : "false",
               path);
}

/* ---------------------------------------------------------------- bodies */

Test(api, malformed_json)
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

Test(api, non_object_bodies)
{
    static const char *const bodies[] = {"[]", "[1, 2]", "\"text\"", "5", "null", "true", "[{\"action_type\": \"InstanceStart\"}]"};
    static const char *const paths[][2] = {{"PUT", "/machine-config"}, {"PATCH", "/machine-config"},
                                           {"PUT", "/boot-source"},    {"PUT", "/drives/rootfs"},
                                           {"PUT", "/actions"},        {"PUT", "/logger"},
                                           {"PUT", "/metrics"},        {"PUT", "/network-interfaces/eth0"}};
    for (unsigned p = 0; p < sizeof(paths) / sizeof(paths[0]); p++)
        for (unsigned i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
            fault(paths[p][0], paths[p][1], bodies[i], "Invalid JSON body", NULL);
    cr_expect_eq(ctl.state, CTL_NOT_STARTED);
}

Test(api, empty_body_on_put_and_patch)
{
    static const char *const reqs[][2] = {
        {"PUT", "/machine-config"}, {"PATCH", "/machine-config"}, {"PUT", "/boot-source"},
        {"PUT", "/drives/rootfs"},  {"PATCH", "/drives/rootfs"},  {"PUT", "/network-interfaces/eth0"},
        {"PATCH", "/network-interfaces/eth0"}, {"PUT", "/actions"}, {"PATCH", "/vm"},
        {"PUT", "/logger"},         {"PUT", "/metrics"},          {"PUT", "/serial"},
    };
    for (unsigned i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++)
        fault(reqs[i][0], reqs[i][1], NULL, "empty", NULL);
}

Test(api, body_on_get)
{
    static const char *const paths[] = {"/", "/version", "/machine-config", "/vm/config"};
    for (unsigned i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
        fault("GET", paths[i], "{}", "GET", "no body");
}

/* ------------------------------------------------------- field validation */

struct bad_case {
    const char *method, *path, *body, *frag1, *frag2;
};

static void run_cases(const struct bad_case *c, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        fault(c[i].method, c[i].path, c[i].body, c[i].frag1, c[i].frag2);
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

Test(api, wrong_types_pre_boot)
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
        {"PUT", "/boot-source", "{\"kernel_image_path\":\"a\\u0000b\"}", "Invalid JSON body", NULL}, /* NUL in a string */
        {"PUT", "/drives/d", fmt("{\"drive_id\":1,\"is_root_device\":false,\"path_on_host\":\"%s\"}", disk[0]),
         "`drive_id`", "type"},
        {"PUT", "/drives/d", "{\"drive_id\":\"d\",\"is_root_device\":false,\"path_on_host\":1}", "`path_on_host`", "type"},
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
        {"PUT", "/network-interfaces/n", "{\"iface_id\":\"n\",\"host_dev_name\":\"tap0\",\"guest_mac\":6}", "`guest_mac`",
         "type"},
        {"PUT", "/network-interfaces/n", "{\"iface_id\":\"n\",\"host_dev_name\":\"tap0\",\"mtu\":\"1500\"}", "`mtu`", NULL},
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
Test(api, metrics_properties_type)
{
    fault("PUT", "/metrics", fmt("{\"metrics_path\":\"%s\",\"properties\":5}", metf), "`properties`", NULL);
    fault("PUT", "/metrics", fmt("{\"metrics_path\":\"%s\",\"properties\":{\"a\":1}}", metf), "`properties`", NULL);
}

Test(api, unknown_fields)
{
    const struct bad_case cases[] = {
        {"PUT", "/machine-config", "{\"vcpu_count\":2,\"mem_size_mib\":128,\"bogus\":1}", "`bogus`", "unknown field"},
        {"PATCH", "/machine-config", "{\"vcpus\":2}", "`vcpus`", "unknown field"},
        {"PUT", "/boot-source", fmt("{\"kernel_image_path\":\"%s\",\"kernel\":\"x\"}", kernel), "`kernel`",
         "unknown field"},
        {"PUT", "/drives/d", fmt("{\"drive_id\":\"d\",\"is_root_device\":false,\"path_on_host\":\"%s\",\"ro\":true}", disk[0]),
         "`ro`", "unknown field"},
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

Test(api, out_of_range_and_bad_enum_values)
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
        {"PUT", "/machine-config", "{\"vcpu_count\":2,\"mem_size_mib\":128,\"huge_pages\":\"2M\"}", "`huge_pages`", NULL},
        {"PUT", "/machine-config", "{\"vcpu_count\":2,\"mem_size_mib\":128,\"huge_pages\":\"Transparent\"}",
         "`huge_pages`", NULL},
        {"PUT", "/machine-config", "{\"vcpu_count\":2,\"mem_size_mib\":128,\"cpu_template\":\"T2\"}", "`cpu_template`",
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
         fmt("{\"drive_id\":\"d\",\"is_root_device\":false,\"rate_limiter\":{\"bandwidth\":{\"size\":1,\"refill_time\":1}},"
             "\"path_on_host\":\"%s\"}",
             disk[0]),
         "`rate_limiter`", "not implemented"},
        {"PUT", "/network-interfaces/n", "{\"iface_id\":\"n\",\"host_dev_name\":\"tap0\",\"mtu\":1500}", "`mtu`", NULL},
        {"PUT", "/network-interfaces/n", "{\"iface_id\":\"n\",\"host_dev_name\":\"\"}", "`host_dev_name`", NULL},
        {"PUT", "/network-interfaces/n", "{\"iface_id\":\"n\",\"host_dev_name\":\"tap0123456789abc\"}", "`host_dev_name`",
         NULL},
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

Test(api, boot_args_length)
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

Test(api, guest_mac_validation)
{
    static const char *const bad_macs[] = {
        "06:00:ac:10:00",       /* too short */
        "06:00:ac:10:00:02:03", /* too long */
        "06-00-ac-10-00-02",    /* wrong separator */
        "zz:00:ac:10:00:02",    /* not hex */
        "06:00:ac:10:00:0g",
        "01:00:5e:00:00:01",    /* multicast */
        "ff:ff:ff:ff:ff:ff",    /* broadcast */
        "06:00:ac:10:00: 2",    /* a space is not a hex digit */
        "06:00:ac:10:0x:02",    /* nor is a 0x prefix */
        "",
    };
    for (unsigned i = 0; i < N(bad_macs); i++)
        fault("PUT", "/network-interfaces/n",
              fmt("{\"iface_id\":\"n\",\"host_dev_name\":\"tap0\",\"guest_mac\":\"%s\"}", bad_macs[i]), "`guest_mac`",
              NULL);
    expect_204("PUT", "/network-interfaces/n", "{\"iface_id\":\"n\",\"host_dev_name\":\"tap0\",\"guest_mac\":\"06:00:AC:10:00:02\"}");
}

Test(api, missing_required_fields)
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

Test(api, ids)
{
    /* Path id and body id must match. */
    fault("PUT", "/drives/rootfs", drive_body("other", true, disk[0]), "id from the path does not match", NULL);
    fault("PUT", "/network-interfaces/eth0", "{\"iface_id\":\"eth1\",\"host_dev_name\":\"tap0\"}",
          "id from the path does not match", NULL);
    /* Ids outside [A-Za-z0-9_]{1,64}, the same in path and body. */
    static const char *const bad_ids[] = {"a-b", "a.b", "a b", "d\xc3\xa9j\xc3\xa0", "x%41",
                                          "a1234567890123456789012345678901234567890123456789012345678901234"};
    for (unsigned i = 0; i < N(bad_ids); i++) {
        char path[128];
        snprintf(path, sizeof(path), "/drives/%s", bad_ids[i]);
        fault("PUT", path, drive_body(bad_ids[i], false, disk[0]), "`drive_id`", bad_ids[i]);
        snprintf(path, sizeof(path), "/network-interfaces/%s", bad_ids[i]);
        fault("PUT", path, fmt("{\"iface_id\":\"%s\",\"host_dev_name\":\"tap0\"}", bad_ids[i]), "`iface_id`",
              bad_ids[i]);
    }
    /* An empty body id. */
    fault("PUT", "/drives/d", drive_body("", false, disk[0]), "`drive_id`", NULL);
    /* 64 characters of the allowed set is fine. */
    const char *id64 = "A123456789_1234567890123456789012345678901234567890123456789012z";
    cr_assert_eq(strlen(id64), 64);
    expect_204("PUT", fmt("/drives/%s", id64), drive_body(id64, false, disk[0]));
    expect_204("PUT", fmt("/network-interfaces/%s", id64), fmt("{\"iface_id\":\"%s\",\"host_dev_name\":\"tap9\"}", id64));
    /* No id in the path, or more than one segment, is not a route. */
    fault("PUT", "/drives/", drive_body("d", false, disk[0]), "Invalid request method and/or path", NULL);
    fault("PUT", "/drives", drive_body("d", false, disk[0]), "Invalid request method and/or path", NULL);
    fault("PUT", "/drives/a/b", drive_body("a", false, disk[0]), "Invalid request method and/or path", NULL);
    fault("PUT", "/network-interfaces/", "{\"iface_id\":\"n\",\"host_dev_name\":\"tap0\"}",
          "Invalid request method and/or path", NULL);
}

Test(api, missing_files)
{
    fault("PUT", "/boot-source", fmt("{\"kernel_image_path\":\"%s\"}", missing), "Kernel", missing);
    fault("PUT", "/boot-source", fmt("{\"kernel_image_path\":\"%s\",\"initrd_path\":\"%s\"}", kernel, missing),
          "Initrd", missing);
    fault("PUT", "/drives/rootfs", drive_body("rootfs", true, missing), "Drive", missing);
    fault("PUT", "/boot-source", "{\"kernel_image_path\":\"\"}", "Kernel", NULL);
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

Test(api, drives_root_replace_and_limit)
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
    /* Up to EMBER_MAX_DRIVES (8). */
    for (int i = 2; i < 8; i++)
        expect_204("PUT", fmt("/drives/d%d", i), drive_body(fmt("d%d", i), false, disk[i]));
    fault("PUT", "/drives/d8", drive_body("d8", false, disk[8]), "Too many drives", NULL);
    /* Replacing one when full still works. */
    expect_204("PUT", "/drives/d7", drive_body("d7", false, disk[9]));
}

Test(api, network_interfaces_duplicates_and_limit)
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

/* --------------------------------------------------------------- routing */

Test(api, unimplemented_endpoints)
{
    const struct bad_case cases[] = {
        {"PUT", "/snapshot/create", "{\"snapshot_path\":\"s\",\"mem_file_path\":\"m\"}", "not implement", "/snapshot"},
        {"PUT", "/snapshot/load", "{\"snapshot_path\":\"s\"}", "not implement", "/snapshot"},
        {"PUT", "/balloon", "{\"amount_mib\":1,\"deflate_on_oom\":true}", "not implement", "/balloon"},
        {"PATCH", "/balloon", "{\"amount_mib\":1}", "not implement", "/balloon"},
        {"GET", "/balloon", NULL, "not implement", "/balloon"},
        {"GET", "/balloon/statistics", NULL, "not implement", "/balloon"},
        {"PATCH", "/balloon/statistics", "{\"stats_polling_interval_s\":1}", "not implement", "/balloon"},
        {"PATCH", "/balloon/hinting/start", "{}", "not implement", "/balloon"},
        {"GET", "/balloon/hinting/status", NULL, "not implement", "/balloon"},
        {"PUT", "/vsock", "{\"guest_cid\":3,\"uds_path\":\"/tmp/v.sock\"}", "not implement", "/vsock"},
        {"PUT", "/mmds", "{\"latest\":{}}", "not implement", "/mmds"},
        {"PATCH", "/mmds", "{\"latest\":{}}", "not implement", "/mmds"},
        {"GET", "/mmds", NULL, "not implement", "/mmds"},
        {"PUT", "/mmds/config", "{\"network_interfaces\":[\"eth0\"]}", "not implement", "/mmds"},
        {"PUT", "/entropy", "{}", "not implement", "/entropy"},
        {"PUT", "/cpu-config", "{}", "not implement", "/cpu-config"},
        {"PUT", "/pmem/p0", "{\"id\":\"p0\",\"path_on_host\":\"x\"}", "not implement", "/pmem"},
        {"PATCH", "/pmem/p0", "{\"id\":\"p0\"}", "not implement", "/pmem"},
        {"PUT", "/hotplug/memory", "{\"total_size_mib\":1024}", "not implement", "/hotplug"},
        {"GET", "/hotplug/memory", NULL, "not implement", "/hotplug"},
        /* Even with no or a malformed body, the answer says what is missing. */
        {"PUT", "/snapshot/create", NULL, "not implement", NULL},
        {"PUT", "/vsock", "{", "not implement", NULL},
    };
    run_cases(cases, N(cases));
    cr_expect_eq(ctl.state, CTL_NOT_STARTED);
}

Test(api, unknown_path_or_method)
{
    const struct bad_case cases[] = {
        {"GET", "/nope", NULL, "Invalid request method and/or path", NULL},
        {"PUT", "/nope", "{}", "Invalid request method and/or path", NULL},
        {"PATCH", "/nope", "{}", "Invalid request method and/or path", NULL},
        {"DELETE", "/drives/rootfs", NULL, "Invalid request method and/or path", NULL},
        {"POST", "/actions", "{\"action_type\":\"InstanceStart\"}", "Invalid request method and/or path", NULL},
        {"HEAD", "/", NULL, "Invalid request method and/or path", NULL},
        {"OPTIONS", "/", NULL, "Invalid request method and/or path", NULL},
        {"GET", "/actions", NULL, "Invalid request method and/or path", NULL},
        {"GET", "/drives/rootfs", NULL, "Invalid request method and/or path", NULL},
        {"GET", "/boot-source", NULL, "Invalid request method and/or path", NULL},
        {"GET", "/logger", NULL, "Invalid request method and/or path", NULL},
        {"PATCH", "/boot-source", "{\"kernel_image_path\":\"x\"}", "Invalid request method and/or path", NULL},
        {"PUT", "/vm", "{\"state\":\"Paused\"}", "Invalid request method and/or path", NULL},
        {"PUT", "/", "{}", "Invalid request method and/or path", NULL},
        {"PUT", "/version", "{}", "Invalid request method and/or path", NULL},
        {"PUT", "/vm/config", "{}", "Invalid request method and/or path", NULL},
        {"PATCH", "/actions", "{\"action_type\":\"InstanceStart\"}", "Invalid request method and/or path", NULL},
        {"PUT", "/machine-config/", "{\"vcpu_count\":1,\"mem_size_mib\":128}", "Invalid request method and/or path", NULL},
        {"GET", "/machine-config/extra", NULL, "Invalid request method and/or path", NULL},
        {"GET", "", NULL, "Invalid request method and/or path", NULL},
        {"GET", "//", NULL, "Invalid request method and/or path", NULL},
    };
    run_cases(cases, N(cases));
}

/* The path is checked before the body: an unknown route with no or a bad body still says so. */
Test(api, unknown_path_checked_before_body)
{
    fault("PUT", "/nope", NULL, "Invalid request method and/or path", NULL);
    fault("PATCH", "/nope", "{", "Invalid request method and/or path", NULL);
    fault("GET", "/nope", "{}", "Invalid request method and/or path", NULL);
    fault("POST", "/nope", NULL, "Invalid request method and/or path", NULL);
}

/* Whatever bytes a client puts in the path, the error body is valid JSON. */
Test(api, error_body_is_json_for_any_path)
{
    fault("GET", "/\xff\xfe", NULL, "Invalid request method and/or path", NULL);
    fault("PUT", "/drives/\xc3", drive_body("x", false, disk[0]), NULL, NULL);
}

/* Long user-supplied text in a message is cut, but the body stays valid JSON (and UTF-8). */
Test(api, long_messages_stay_json)
{
    static char id[2048], body[4096];
    /* 'é' is two bytes: a cut at an odd offset would split one. */
    for (int off = 0; off < 2; off++) {
        size_t n = 0;
        if (off)
            id[n++] = 'x';
        while (n + 2 < 1500) {
            id[n++] = '\xc3';
            id[n++] = '\xa9';
        }
        id[n] = '\0';
        snprintf(body, sizeof(body), "{\"drive_id\":\"%s\",\"is_root_device\":false,\"path_on_host\":\"x\"}", id);
        fault("PUT", "/drives/d", body, "`drive_id`", NULL);
        snprintf(body, sizeof(body), "{\"kernel_image_path\":\"/nonexistent/%s\"}", id);
        fault("PUT", "/boot-source", body, "Kernel", NULL);
        snprintf(body, sizeof(body), "{\"%s\":1}", id);
        fault("PUT", "/logger", body, "unknown field", NULL);
    }
}

/* ------------------------------------------------------------ the phases */

Test(api, post_boot_only_before_boot)
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

Test(api, instance_start_without_boot_source)
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
Test(api, failed_instance_start_leaves_api_usable)
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

Test(api, pre_boot_only_after_boot)
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
Test(api, post_boot_validation)
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
        {"PATCH", "/drives/rootfs", "{\"drive_id\":\"rootfs\",\"rate_limiter\":{}}", "`rate_limiter`", NULL},
        {"PATCH", "/drives/rootfs", "{\"drive_id\":\"rootfs\",\"is_read_only\":true}", "`is_read_only`", "unknown field"},
        {"PATCH", "/drives/nope", "{\"drive_id\":\"nope\",\"path_on_host\":\"/tmp/x\"}", "`drive_id`", "nope"},
        {"PATCH", "/drives/a-b", "{\"drive_id\":\"a-b\"}", "`drive_id`", NULL},
        {"PATCH", "/network-interfaces/eth0", "{}", "missing field", "`iface_id`"},
        {"PATCH", "/network-interfaces/eth0", "{\"iface_id\":false}", "`iface_id`", "type"},
        {"PATCH", "/network-interfaces/eth0", "{\"iface_id\":\"eth1\"}", "id from the path does not match", NULL},
        {"PATCH", "/network-interfaces/eth0", "{\"iface_id\":\"eth0\",\"rx_rate_limiter\":{}}", "`rx_rate_limiter`", NULL},
        {"PATCH", "/network-interfaces/eth0", "{\"iface_id\":\"eth0\",\"tx_rate_limiter\":1}", "`tx_rate_limiter`", NULL},
        {"PATCH", "/network-interfaces/eth0", "{\"iface_id\":\"eth0\",\"host_dev_name\":\"tap1\"}", "`host_dev_name`",
         "unknown field"},
        {"PATCH", "/network-interfaces/nope", "{\"iface_id\":\"nope\"}", "`iface_id`", "nope"},
        {"PUT", "/actions", "{\"action_type\":\"FlushMetrics\"}", "Metrics", NULL},
        {"PUT", "/actions", "{\"action_type\":\"Pause\"}", "`action_type`", NULL},
    };
    run_cases(cases, N(cases));
    /* What is valid and does not reach the VM: a no-op PATCH of each. */
    expect_204("PATCH", "/drives/rootfs", "{\"drive_id\":\"rootfs\"}");
    expect_204("PATCH", "/network-interfaces/eth0",
               "{\"iface_id\":\"eth0\",\"rx_rate_limiter\":null,\"tx_rate_limiter\":null}");
    cr_expect_eq(ctl.state, CTL_RUNNING);
    ctl.state = CTL_NOT_STARTED;
}

/* FlushMetrics after boot appends one JSON line per flush. */
Test(api, flush_metrics_writes_a_json_line)
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

/* ---------------------------------------------------------- GET bodies */

Test(api, get_root_shape)
{
    json_t *o = get_json("/");
    cr_expect_eq(json_object_size(o), 4, "body %s", rep.body);
    cr_expect_str_eq(str_of(o, "id"), "test-id");
    cr_expect_str_eq(str_of(o, "state"), "Not started");
    cr_expect_str_eq(str_of(o, "app_name"), "ember");
    cr_expect_str_eq(str_of(o, "vmm_version"), EMBER_VERSION_STRING);
    json_decref(o);
    o = get_json("/version");
    cr_expect_str_eq(str_of(o, "firecracker_version"), EMBER_VERSION_STRING);
    json_decref(o);
}

Test(api, machine_config_put_patch_get)
{
    json_t *m = get_json("/machine-config");
    cr_expect_eq(int_of(m, "vcpu_count"), 1);
    cr_expect_eq(int_of(m, "mem_size_mib"), 128);
    cr_expect_not(bool_of(m, "smt"));
    cr_expect_not(bool_of(m, "track_dirty_pages"));
    json_decref(m);

    expect_204("PUT", "/machine-config",
               "{\"vcpu_count\":2,\"mem_size_mib\":256,\"smt\":true,\"track_dirty_pages\":true,\"huge_pages\":\"None\","
               "\"cpu_template\":\"None\"}");
    m = get_json("/machine-config");
    cr_expect_eq(int_of(m, "vcpu_count"), 2);
    cr_expect_eq(int_of(m, "mem_size_mib"), 256);
    cr_expect(bool_of(m, "smt"));
    cr_expect(bool_of(m, "track_dirty_pages"));
    json_decref(m);

    /* PATCH changes only what it names. */
    expect_204("PATCH", "/machine-config", "{\"mem_size_mib\":512}");
    m = get_json("/machine-config");
    cr_expect_eq(int_of(m, "vcpu_count"), 2);
    cr_expect_eq(int_of(m, "mem_size_mib"), 512);
    cr_expect(bool_of(m, "smt"));
    cr_expect(bool_of(m, "track_dirty_pages"));
    json_decref(m);
    /* A PATCH that would break the SMT rule with the kept smt=true fails whole. */
    fault("PATCH", "/machine-config", "{\"vcpu_count\":3,\"mem_size_mib\":64}", "SMT", NULL);
    m = get_json("/machine-config");
    cr_expect_eq(int_of(m, "vcpu_count"), 2);
    cr_expect_eq(int_of(m, "mem_size_mib"), 512);
    json_decref(m);

    /* PUT resets the omitted optional fields to their defaults. */
    expect_204("PUT", "/machine-config", "{\"vcpu_count\":3,\"mem_size_mib\":64}");
    m = get_json("/machine-config");
    cr_expect_eq(int_of(m, "vcpu_count"), 3);
    cr_expect_eq(int_of(m, "mem_size_mib"), 64);
    cr_expect_not(bool_of(m, "smt"));
    cr_expect_not(bool_of(m, "track_dirty_pages"));
    json_decref(m);

    /* A failed PUT changes nothing. */
    fault("PUT", "/machine-config", "{\"vcpu_count\":4,\"mem_size_mib\":0}", "`mem_size_mib`", NULL);
    fault("PUT", "/machine-config", "{\"vcpu_count\":4,\"mem_size_mib\":128,\"smt\":\"x\"}", "`smt`", NULL);
    m = get_json("/machine-config");
    cr_expect_eq(int_of(m, "vcpu_count"), 3);
    cr_expect_eq(int_of(m, "mem_size_mib"), 64);
    json_decref(m);

    /* The limits themselves are accepted; an empty PATCH changes nothing. */
    expect_204("PUT", "/machine-config", "{\"vcpu_count\":32,\"mem_size_mib\":1}");
    expect_204("PATCH", "/machine-config", "{\"track_dirty_pages\":true}");
    m = get_json("/machine-config");
    cr_expect_eq(int_of(m, "vcpu_count"), 32);
    cr_expect_eq(int_of(m, "mem_size_mib"), 1);
    cr_expect(bool_of(m, "track_dirty_pages"));
    json_decref(m);
}

Test(api, vm_config_reflects_puts)
{
    json_t *c = get_json("/vm/config");
    cr_expect_not_null(json_object_get(c, "machine-config"));
    cr_expect(json_is_array(json_object_get(c, "drives")));
    cr_expect(json_is_array(json_object_get(c, "network-interfaces")));
    json_decref(c);

    expect_204("PUT", "/machine-config", "{\"vcpu_count\":2,\"mem_size_mib\":300}");
    expect_204("PUT", "/boot-source",
               fmt("{\"kernel_image_path\":\"%s\",\"boot_args\":\"console=ttyS0 quiet\",\"initrd_path\":\"%s\"}", kernel,
                   initrd));
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
    ctl_init(&other, &runner, &vm, "other");
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
Test(api, logger_level_normalised)
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

Test(api, logger_metrics_serial_accept)
{
    expect_204("PUT", "/logger", fmt("{\"log_path\":\"%s\",\"level\":\"Info\",\"show_level\":false,"
                                     "\"show_log_origin\":false,\"module\":\"api_server\"}",
                                     logfile));
    expect_204("PUT", "/logger", "{}"); /* all optional */
    expect_204("PUT", "/metrics", fmt("{\"metrics_path\":\"%s\",\"emit_id\":false}", metf));
    expect_204("PUT", "/serial", "{\"serial_out_path\":\"/tmp/ember-unit-serial.out\"}");
    expect_204("PUT", "/serial", "{}");
    fault("PUT", "/logger", "{\"log_path\":\"/nonexistent-dir/log\"}", "/nonexistent-dir/log", NULL);
    fault("PUT", "/metrics", "{\"metrics_path\":\"/nonexistent-dir/m\"}", "/nonexistent-dir/m", NULL);
}

/* ------------------------------------------------------- api_apply_config */

static int apply_text(struct controller *c, const char *text, struct errmsg *e)
{
    json_error_t je;
    json_t *root = json_loads(text, JSON_DECODE_ANY, &je);
    cr_assert_not_null(root, "test config is not JSON: %s (%s)", je.text, text);
    int rc = api_apply_config(c, root, e);
    json_decref(root);
    return rc;
}

Test(api, apply_config_good)
{
    struct errmsg e = {{0}};
    const char *cfg = fmt(
        "{\"boot-source\":{\"kernel_image_path\":\"%s\",\"boot_args\":\"console=ttyS0\",\"initrd_path\":\"%s\"},"
        "\"drives\":[{\"drive_id\":\"rootfs\",\"path_on_host\":\"%s\",\"is_root_device\":true,\"is_read_only\":false},"
        "{\"drive_id\":\"data\",\"path_on_host\":\"%s\",\"is_root_device\":false,\"io_engine\":\"Async\"}],"
        "\"machine-config\":{\"vcpu_count\":2,\"mem_size_mib\":256,\"smt\":false},"
        "\"network-interfaces\":[{\"iface_id\":\"eth0\",\"host_dev_name\":\"tap0\",\"guest_mac\":\"06:00:ac:10:00:02\"}],"
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
    ctl_init(&other, &runner, &vm, "other");
    cr_expect_eq(apply_text(&other, fmt("{\"boot-source\":{\"kernel_image_path\":\"%s\"}}", kernel), &e), 0, "%s",
                 e.text);
    cr_expect_eq(ctl_config(&other)->vcpus, 1);
    cr_expect_eq(ctl_config(&other)->mem_mib, 128);
    ctl_destroy(&other);
}

Test(api, apply_config_bad)
{
    struct {
        const char *text, *frag1, *frag2;
    } cases[] = {
        {"[]", "JSON object", NULL},
        {"5", "JSON object", NULL},
        {"{\"boot_source\":{}}", "`boot_source`", "unknown field"},
        {"{\"balloon\":{\"amount_mib\":1,\"deflate_on_oom\":true}}", "balloon", "not implemented"},
        {"{\"vsock\":{\"guest_cid\":3,\"uds_path\":\"/tmp/v\"}}", "vsock", "not implemented"},
        {"{\"mmds-config\":{\"network_interfaces\":[]}}", "mmds-config", "not implemented"},
        {"{\"entropy\":{}}", "entropy", "not implemented"},
        {"{\"cpu-config\":{}}", "cpu-config", "not implemented"},
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
        ctl_init(&c, &runner, &vm, "cfg");
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
