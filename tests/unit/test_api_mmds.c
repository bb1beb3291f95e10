/* The MMDS endpoints: PUT/PATCH/GET /mmds (413 over the limit), PUT /mmds/config, phases, config files. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/config_file.h"
#include "api/mmds_api.h"
#include "devices/mmds/net_stack.h"
#include "devices/mmds/store.h"
#include "tests/unit/api_fixture.h"

TestSuite(api_mmds, .init = api_fx_setup, .fini = api_fx_teardown);

static void two_nics(void)
{
    expect_204("PUT", "/network-interfaces/eth0", "{\"iface_id\":\"eth0\",\"host_dev_name\":\"tap0\"}");
    expect_204("PUT", "/network-interfaces/eth1", "{\"iface_id\":\"eth1\",\"host_dev_name\":\"tap1\"}");
}

static bool body_is(const char *json)
{
    json_t *want = json_loads(json, 0, NULL), *got = rep.body ? json_loads(rep.body, 0, NULL) : NULL;
    bool same = want && got && json_equal(want, got);
    json_decref(want);
    json_decref(got);
    return same;
}

Test(api_mmds, put_patch_get)
{
    cr_expect_eq(req("GET", "/mmds", NULL), 200);
    cr_expect(body_is("{}"), "%s", rep.body);
    fault("PATCH", "/mmds", "{\"a\":1}", "not initialized", NULL);
    expect_204("PUT", "/mmds", "{\"latest\":{\"meta-data\":{\"ami-id\":\"a\",\"old\":\"x\"}}}");
    expect_204("PATCH", "/mmds", "{\"latest\":{\"meta-data\":{\"ami-id\":\"b\",\"old\":null}},\"n\":2}");
    cr_expect_eq(req("GET", "/mmds", NULL), 200);
    cr_expect(body_is("{\"latest\":{\"meta-data\":{\"ami-id\":\"b\"}},\"n\":2}"), "%s", rep.body);
    fault("PUT", "/mmds", "[1]", "Invalid JSON body", NULL);
    fault("PUT", "/mmds", "{", "Invalid JSON body", NULL);
    cr_expect_eq(req("GET", "/mmds", "{}"), 400, "GET with a body");
}

Test(api_mmds, size_limit_is_413)
{
    ctl.cfg.mmds_size_limit = 40; /* as --mmds-size-limit 40 */
    expect_204("PUT", "/mmds", "{\"k\":\"0123456789\"}");
    cr_expect_eq(req("PUT", "/mmds", "{\"k\":\"0123456789012345678901234567890123456789\"}"), 413);
    cr_expect(strstr(rep.body, "limit of 40 bytes"), "%s", rep.body);
    cr_expect_eq(req("PATCH", "/mmds", "{\"j\":\"0123456789012345678901234567890123456789\"}"), 413);
    cr_expect_eq(req("GET", "/mmds", NULL), 200);
    cr_expect(body_is("{\"k\":\"0123456789\"}"), "%s", rep.body);
}

Test(api_mmds, config_checks)
{
    fault("PUT", "/mmds/config", "{\"network_interfaces\":[\"eth0\"]}", "eth0", "not an existing network interface");
    two_nics();
    const struct bad_case cases[] = {
        {"PUT", "/mmds/config", "{}", "missing field `network_interfaces`", NULL},
        {"PUT", "/mmds/config", "{\"network_interfaces\":[]}", "is empty", NULL},
        {"PUT", "/mmds/config", "{\"network_interfaces\":\"eth0\"}", "network_interfaces", "array"},
        {"PUT", "/mmds/config", "{\"network_interfaces\":[1]}", "network_interfaces", "array"},
        {"PUT", "/mmds/config", "{\"network_interfaces\":[\"eth0\",\"eth9\"]}", "eth9", NULL},
        {"PUT", "/mmds/config", "{\"network_interfaces\":[\"eth0\"],\"version\":\"V3\"}", "`version`", "V3"},
        {"PUT", "/mmds/config", "{\"network_interfaces\":[\"eth0\"],\"ipv4_address\":\"10.0.0.1\"}", "link-local",
         NULL},
        {"PUT", "/mmds/config", "{\"network_interfaces\":[\"eth0\"],\"ipv4_address\":\"169.254.0.9\"}", "link-local",
         NULL},
        {"PUT", "/mmds/config", "{\"network_interfaces\":[\"eth0\"],\"ipv4_address\":\"169.254.1\"}", "ipv4_address",
         NULL},
        {"PUT", "/mmds/config", "{\"network_interfaces\":[\"eth0\"],\"imds_compat\":1}", "imds_compat", NULL},
        {"PUT", "/mmds/config", "{\"network_interfaces\":[\"eth0\"],\"other\":1}", "unknown field", NULL},
    };
    run_cases(cases, N(cases));
    cr_expect_null(ctl.cfg.nets[0].mmds, "a refused config changes nothing");
}

Test(api_mmds, config_applies_and_shows_in_vm_config)
{
    two_nics();
    json_t *full = get_json("/vm/config");
    cr_expect_null(json_object_get(full, "mmds-config"));
    json_decref(full);
    expect_204("PUT", "/mmds/config",
               "{\"network_interfaces\":[\"eth1\"],\"version\":\"V2\",\"ipv4_address\":\"169.254.170.2\","
               "\"imds_compat\":true}");
    cr_expect_null(ctl.cfg.nets[0].mmds);
    cr_assert_not_null(ctl.cfg.nets[1].mmds);
    struct mmds_settings set = mmds_store_settings(ctl.cfg.nets[1].mmds);
    cr_expect_eq(set.version, MMDS_V2);
    cr_expect_eq(set.ipv4, 0xA9FEAA02u);
    cr_expect(set.imds_compat);
    full = get_json("/vm/config");
    json_t *m = json_object_get(full, "mmds-config");
    cr_assert_not_null(m);
    cr_expect_str_eq(str_of(m, "version"), "V2");
    cr_expect_str_eq(str_of(m, "ipv4_address"), "169.254.170.2");
    cr_expect_eq(bool_of(m, "imds_compat"), 1);
    cr_expect_str_eq(json_string_value(json_array_get(json_object_get(m, "network_interfaces"), 0)), "eth1");
    /* The shown section applies again as it is (snapshots keep the description this way). */
    json_t *again = json_pack("{s:O}", "mmds-config", m);
    struct errmsg e;
    cr_expect_eq(api_apply_config(&ctl, again, &e), 0, "%s", e.text);
    json_decref(again);
    json_decref(full);
    /* Defaults: V1 at 169.254.169.254. */
    expect_204("PUT", "/mmds/config", "{\"network_interfaces\":[\"eth0\"]}");
    set = mmds_store_settings(ctl.cfg.nets[0].mmds);
    cr_expect_eq(set.version, MMDS_V1);
    cr_expect_eq(set.ipv4, MMDS_DEFAULT_IPV4);
    cr_expect_null(ctl.cfg.nets[1].mmds, "the new list replaces the old one");
}

Test(api_mmds, phases)
{
    two_nics();
    ctl.state = CTL_RUNNING; /* as after InstanceStart */
    fault("PUT", "/mmds/config", "{\"network_interfaces\":[\"eth0\"]}", "not supported after starting", NULL);
    expect_204("PUT", "/mmds", "{\"a\":\"1\"}");
    expect_204("PATCH", "/mmds", "{\"b\":\"2\"}");
    cr_expect_eq(req("GET", "/mmds", NULL), 200);
    cr_expect(body_is("{\"a\":\"1\",\"b\":\"2\"}"), "%s", rep.body);
    ctl.state = CTL_NOT_STARTED;
}

Test(api_mmds, config_file_section)
{
    two_nics();
    struct errmsg e;
    json_t *bad = json_loads("{\"mmds-config\":5}", 0, NULL);
    cr_expect_neq(api_apply_config(&ctl, bad, &e), 0);
    cr_expect(strstr(e.text, "mmds-config"), "%s", e.text);
    json_decref(bad);
    json_t *ok = json_loads("{\"mmds-config\":{\"network_interfaces\":[\"eth0\"],\"version\":\"V2\"}}", 0, NULL);
    cr_expect_eq(api_apply_config(&ctl, ok, &e), 0, "%s", e.text);
    json_decref(ok);
    cr_expect_not_null(ctl.cfg.nets[0].mmds);
}

Test(api_mmds, metadata_file)
{
    struct errmsg e;
    char path[] = "/tmp/ember-mmds-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    const char good[] = "{\"latest\":{\"meta-data\":{\"ami-id\":\"f\"}}}";
    cr_assert_eq(write(fd, good, sizeof(good) - 1), (ssize_t)sizeof(good) - 1);
    close(fd);
    cr_expect_eq(api_load_mmds_file(&ctl, path, &e), 0, "%s", e.text);
    cr_expect_eq(req("GET", "/mmds", NULL), 200);
    cr_expect(body_is(good), "%s", rep.body);
    fd = open(path, O_WRONLY | O_TRUNC);
    cr_assert_eq(write(fd, "[1]", 3), 3);
    close(fd);
    cr_expect_neq(api_load_mmds_file(&ctl, path, &e), 0);
    cr_expect(strstr(e.text, "JSON object"), "%s", e.text);
    unlink(path);
    cr_expect_neq(api_load_mmds_file(&ctl, path, &e), 0);
    cr_expect(strstr(e.text, "--metadata"), "%s", e.text);
    cr_expect_neq(api_load_mmds_file(&ctl, "/tmp", &e), 0);
}

/* The last line of the metrics file, parsed (the caller decrefs). */
static json_t *last_metrics_line(void)
{
    struct errmsg e;
    cr_assert_eq(ctl_flush_metrics(&ctl, &e), 0, "%s", e.text);
    FILE *f = fopen(metf, "r");
    cr_assert_not_null(f);
    char line[16384], last[16384] = "";
    while (fgets(line, sizeof(line), f))
        if (line[0] != '\n')
            strcpy(last, line);
    fclose(f);
    json_t *o = json_loads(last, 0, NULL);
    cr_assert_not_null(o, "not JSON: %s", last);
    return o;
}

/* Firecracker's "mmds" group in the metrics line: all its names, zeros before use, then what the responder counted. */
Test(api_mmds, metrics_group)
{
    expect_204("PUT", "/metrics", fmt("{\"metrics_path\":\"%s\"}", metf));
    static const char *names[] = {"rx_accepted",
                                  "rx_accepted_err",
                                  "rx_accepted_unusual",
                                  "rx_bad_eth",
                                  "rx_count",
                                  "tx_bytes",
                                  "tx_count",
                                  "tx_errors",
                                  "tx_frames",
                                  "connections_created",
                                  "connections_destroyed"};
    json_t *o = last_metrics_line();
    json_t *g = json_object_get(o, "mmds");
    cr_assert(json_is_object(g), "no mmds group");
    cr_expect_eq(json_object_size(g), 11);
    for (unsigned i = 0; i < 11; i++)
        cr_expect_eq(int_of(g, names[i]), 0, "%s", names[i]);
    json_decref(o);

    /* An ARP request for the MMDS address through a responder on the process's store: one frame in, one out. */
    expect_204("PUT", "/mmds", "{\"a\":\"b\"}");
    struct mmds_net *mn;
    cr_assert_eq(mmds_net_new(&mn, ctl.mmds, 1), 0);
    uint8_t f[42] = {0}, r[MMDS_NET_MAX_FRAME];
    memset(f, 0xff, 6);
    f[12] = 0x08, f[13] = 0x06, f[15] = 1, f[16] = 0x08, f[18] = 6, f[19] = 4, f[21] = 1;
    f[14 + 24] = 169, f[14 + 25] = 254, f[14 + 26] = 169, f[14 + 27] = 254;
    cr_assert(mmds_net_take(mn, f, sizeof(f), false, false, 0));
    cr_assert_eq(mmds_net_output(mn, r, sizeof(r)), 42);
    mmds_net_free(mn);
    o = last_metrics_line();
    g = json_object_get(o, "mmds");
    cr_expect_eq(int_of(g, "rx_accepted"), 1);
    cr_expect_eq(int_of(g, "tx_count"), 1);
    cr_expect_eq(int_of(g, "tx_frames"), 1);
    cr_expect_eq(int_of(g, "tx_bytes"), 42);
    cr_expect_eq(int_of(g, "rx_count"), 0, "no TCP");
    json_decref(o);
}
