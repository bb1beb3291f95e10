/*
 * The rate limiter and entropy requests (api_fixture.h): PUT bodies with
 * rate_limiter objects, GET /vm/config showing them back, PUT /entropy and
 * the config file's "entropy", and hostile limiter values answered with a
 * 400 that names the field.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "api/config_file.h"
#include "tests/unit/api_fixture.h"

TestSuite(api_limits, .init = api_fx_setup, .fini = api_fx_teardown);

#define N(a) (sizeof(a) / sizeof((a)[0]))

static json_t *bucket_of(json_t *item, const char *limiter, const char *bucket)
{
    return json_object_get(json_object_get(item, limiter), bucket);
}

Test(api_limits, drive_and_nic_limiters_show_in_vm_config)
{
    expect_204("PUT", "/drives/rootfs",
               fmt("{\"drive_id\":\"rootfs\",\"is_root_device\":true,\"path_on_host\":\"%s\",\"rate_limiter\":"
                   "{\"bandwidth\":{\"size\":1048576,\"one_time_burst\":4096,\"refill_time\":100},"
                   "\"ops\":{\"size\":100,\"refill_time\":1000}}}",
                   disk[0]));
    expect_204("PUT", "/network-interfaces/eth0",
               "{\"iface_id\":\"eth0\",\"host_dev_name\":\"tap0\",\"rx_rate_limiter\":{\"bandwidth\":{\"size\":10,"
               "\"refill_time\":10}},\"tx_rate_limiter\":{\"ops\":{\"size\":5,\"refill_time\":50}}}");
    const struct blk_config *d = &ctl_config(&ctl)->drives[0];
    cr_assert_eq(d->rate_limiter.bandwidth.size, 1048576);
    cr_assert_eq(d->rate_limiter.bandwidth.one_time_burst, 4096);
    cr_assert_eq(d->rate_limiter.bandwidth.refill_time_ms, 100);
    cr_assert_eq(d->rate_limiter.ops.size, 100);
    json_t *c = get_json("/vm/config");
    json_t *drive = json_array_get(json_object_get(c, "drives"), 0);
    cr_assert_eq(int_of(bucket_of(drive, "rate_limiter", "bandwidth"), "size"), 1048576);
    cr_assert_eq(int_of(bucket_of(drive, "rate_limiter", "bandwidth"), "one_time_burst"), 4096);
    cr_assert_eq(int_of(bucket_of(drive, "rate_limiter", "ops"), "refill_time"), 1000);
    json_t *nic = json_array_get(json_object_get(c, "network-interfaces"), 0);
    cr_assert_eq(int_of(bucket_of(nic, "rx_rate_limiter", "bandwidth"), "size"), 10);
    cr_assert_null(bucket_of(nic, "rx_rate_limiter", "ops"));
    cr_assert_eq(int_of(bucket_of(nic, "tx_rate_limiter", "ops"), "size"), 5);
    cr_assert_null(json_object_get(c, "entropy"));
    json_decref(c);
    /* A PUT without a limiter takes it away; a zero-size bucket limits nothing and is not shown. */
    expect_204("PUT", "/drives/rootfs",
               fmt("{\"drive_id\":\"rootfs\",\"is_root_device\":true,\"path_on_host\":\"%s\",\"rate_limiter\":"
                   "{\"ops\":{\"size\":0,\"refill_time\":1000}}}",
                   disk[0]));
    c = get_json("/vm/config");
    cr_assert_null(json_object_get(json_array_get(json_object_get(c, "drives"), 0), "rate_limiter"));
    json_decref(c);
}

Test(api_limits, entropy_device_pre_boot)
{
    expect_204("PUT", "/entropy", "{}");
    json_t *c = get_json("/vm/config");
    cr_assert(json_is_object(json_object_get(c, "entropy")));
    json_decref(c);
    expect_204("PUT", "/entropy", "{\"rate_limiter\":{\"bandwidth\":{\"size\":1000,\"refill_time\":100}}}");
    cr_assert(ctl_config(&ctl)->has_entropy);
    cr_assert_eq(ctl_config(&ctl)->entropy.rate_limiter.bandwidth.size, 1000);
    c = get_json("/vm/config");
    cr_assert_eq(int_of(bucket_of(json_object_get(c, "entropy"), "rate_limiter", "bandwidth"), "size"), 1000);
    json_decref(c);
    ctl.state = CTL_RUNNING;
    cr_assert(fault("PUT", "/entropy", "{}", "", NULL));
    ctl.state = CTL_NOT_STARTED;
}

Test(api_limits, entropy_from_the_config_file)
{
    json_error_t je;
    json_t *root = json_loads("{\"entropy\":{\"rate_limiter\":{\"ops\":{\"size\":2,\"refill_time\":10}}}}", 0, &je);
    struct errmsg e;
    cr_assert_eq(api_apply_config(&ctl, root, &e), 0, "%s", e.text);
    json_decref(root);
    cr_assert(ctl_config(&ctl)->has_entropy);
    cr_assert_eq(ctl_config(&ctl)->entropy.rate_limiter.ops.size, 2);
    root = json_loads("{\"entropy\":{\"rate_limiter\":{\"ops\":{\"size\":2}}}}", 0, &je);
    cr_assert_neq(api_apply_config(&ctl, root, &e), 0);
    cr_assert(strstr(e.text, "entropy") && strstr(e.text, "refill_time"), "%s", e.text);
    json_decref(root);
}

Test(api_limits, hostile_limiter_values)
{
    static const char *const bad[][3] = {
        {"{\"bandwidth\":{\"size\":-1,\"refill_time\":100}}", "`rate_limiter.bandwidth`", "between 0 and"},
        {"{\"bandwidth\":{\"size\":100,\"refill_time\":-5}}", "`rate_limiter.bandwidth`", "`refill_time`"},
        {"{\"ops\":{\"size\":1.5,\"refill_time\":100}}", "`rate_limiter.ops`", "type"},
        {"{\"ops\":{\"size\":\"10\",\"refill_time\":100}}", "`rate_limiter.ops`", "type"},
        {"{\"ops\":{\"refill_time\":100}}", "`rate_limiter.ops`", "missing field `size`"},
        {"{\"ops\":{\"size\":100}}", "`rate_limiter.ops`", "missing field `refill_time`"},
        {"{\"ops\":{\"size\":1,\"refill_time\":1,\"one_time_burst\":-1}}", "`rate_limiter.ops`", "`one_time_burst`"},
        {"{\"ops\":{\"size\":1,\"refill_time\":1,\"burst\":1}}", "`rate_limiter.ops`", "unknown field `burst`"},
        {"{\"ops\":5}", "`rate_limiter.ops`", "TokenBucket"},
        {"{\"iops\":{}}", "`rate_limiter`", "unknown field `iops`"},
        {"[]", "`rate_limiter`", "RateLimiter"},
        {"\"fast\"", "`rate_limiter`", "type"},
    };
    for (unsigned i = 0; i < N(bad); i++) {
        const char *body =
            fmt("{\"drive_id\":\"d\",\"is_root_device\":false,\"path_on_host\":\"%s\",\"rate_limiter\":%s}", disk[0],
                bad[i][0]);
        cr_expect(fault("PUT", "/drives/d", body, bad[i][1], bad[i][2]), "case %u: %s", i, bad[i][0]);
        cr_expect(fault("PUT", "/entropy", fmt("{\"rate_limiter\":%s}", bad[i][0]), bad[i][1], bad[i][2]), "case %u",
                  i);
    }
    cr_expect(fault("PUT", "/network-interfaces/n",
                    "{\"iface_id\":\"n\",\"host_dev_name\":\"tap0\",\"tx_rate_limiter\":{\"ops\":{\"size\":-1,"
                    "\"refill_time\":1}}}",
                    "`tx_rate_limiter.ops`", NULL));
    /* The largest int64 values are accepted; beyond them JSON itself is refused. */
    expect_204("PUT", "/entropy",
               "{\"rate_limiter\":{\"bandwidth\":{\"size\":9223372036854775807,\"one_time_burst\":9223372036854775807,"
               "\"refill_time\":9223372036854775807}}}");
    cr_expect(fault("PUT", "/entropy", "{\"rate_limiter\":{\"ops\":{\"size\":9223372036854775808,\"refill_time\":1}}}",
                    "JSON", NULL));
    cr_assert_eq(ctl_config(&ctl)->nr_drives, 0, "no refused drive was added");
}
