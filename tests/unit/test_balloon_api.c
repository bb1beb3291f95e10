/* The balloon's endpoints and config-file section: accepted and refused bodies, the phase rules, GET bodies. */
#include <criterion/criterion.h>
#include <string.h>

#include "api/config_file.h"
#include "tests/unit/api_fixture.h"

TestSuite(balloon_api, .init = api_fx_setup, .fini = api_fx_teardown);

Test(balloon_api, put_then_get)
{
    expect_204("PUT", "/balloon", "{\"amount_mib\":16,\"deflate_on_oom\":true,\"stats_polling_interval_s\":1}");
    /* A second PUT replaces it; the unsupported features are accepted when off. */
    expect_204("PUT", "/balloon",
               "{\"amount_mib\":32,\"deflate_on_oom\":false,\"free_page_hinting\":false,\"free_page_reporting\":null}");
    json_t *b = get_json("/balloon");
    cr_assert_eq(int_of(b, "amount_mib"), 32);
    cr_assert_eq(bool_of(b, "deflate_on_oom"), 0);
    cr_assert_eq(int_of(b, "stats_polling_interval_s"), 0);
    json_decref(b);
    json_t *all = get_json("/vm/config");
    json_t *v = json_object_get(all, "balloon");
    cr_assert(json_is_object(v));
    cr_assert_eq(int_of(v, "amount_mib"), 32);
    json_decref(all);
    cr_assert(ctl_config(&ctl)->has_balloon);
    cr_assert(ctl.configured, "a balloon is a boot resource: no snapshot load after it");
}

Test(balloon_api, bad_bodies)
{
    const struct bad_case cases[] = {
        {"PUT", "/balloon", "{\"deflate_on_oom\":true}", "missing field `amount_mib`", NULL},
        {"PUT", "/balloon", "{\"amount_mib\":1}", "missing field `deflate_on_oom`", NULL},
        {"PUT", "/balloon", "{\"amount_mib\":-1,\"deflate_on_oom\":true}", "`amount_mib`", NULL},
        {"PUT", "/balloon", "{\"amount_mib\":\"1\",\"deflate_on_oom\":true}", "`amount_mib`", NULL},
        {"PUT", "/balloon", "{\"amount_mib\":4294967296,\"deflate_on_oom\":true}", "`amount_mib`", NULL},
        {"PUT", "/balloon", "{\"amount_mib\":129,\"deflate_on_oom\":true}", "too large", "128 MiB"},
        {"PUT", "/balloon", "{\"amount_mib\":1,\"deflate_on_oom\":1}", "`deflate_on_oom`", NULL},
        {"PUT", "/balloon", "{\"amount_mib\":1,\"deflate_on_oom\":true,\"stats_polling_interval_s\":65536}",
         "`stats_polling_interval_s`", NULL},
        {"PUT", "/balloon", "{\"amount_mib\":1,\"deflate_on_oom\":true,\"free_page_hinting\":true}",
         "free page hinting", "`free_page_hinting`"},
        {"PUT", "/balloon", "{\"amount_mib\":1,\"deflate_on_oom\":true,\"free_page_reporting\":true}",
         "free page reporting", "`free_page_reporting`"},
        {"PUT", "/balloon", "{\"amount_mib\":1,\"deflate_on_oom\":true,\"bogus\":1}", "unknown field `bogus`", NULL},
        {"PUT", "/balloon", "{", "Invalid JSON", NULL},
        {"GET", "/balloon/statistics", NULL, "not supported before starting", NULL},
        {"PATCH", "/balloon", "{\"amount_mib\":1}", "not supported before starting", NULL},
        {"PATCH", "/balloon/statistics", "{\"stats_polling_interval_s\":1}", "not supported before starting", NULL},
        {"PATCH", "/balloon/hinting/start", "{}", "not implement", "/balloon/hinting"},
    };
    run_cases(cases, N(cases));
    cr_assert_not(ctl_config(&ctl)->has_balloon);
}

/* Firecracker's two size rules: the balloon no larger than the memory, the memory no smaller than the balloon. */
Test(balloon_api, balloon_and_memory_sizes_agree)
{
    expect_204("PUT", "/machine-config", "{\"vcpu_count\":1,\"mem_size_mib\":256}");
    fault("PUT", "/balloon", "{\"amount_mib\":257,\"deflate_on_oom\":false}", "too large", "256 MiB");
    cr_assert_not(ctl_config(&ctl)->has_balloon);
    expect_204("PUT", "/balloon", "{\"amount_mib\":256,\"deflate_on_oom\":false}");
    expect_204("PUT", "/balloon", "{\"amount_mib\":200,\"deflate_on_oom\":false}");
    fault("PUT", "/machine-config", "{\"vcpu_count\":1,\"mem_size_mib\":199}",
          "smaller than the previously set balloon device target size", "amount_mib 200");
    fault("PATCH", "/machine-config", "{\"mem_size_mib\":128}", "smaller than the previously set balloon", "128");
    cr_assert_eq(ctl_config(&ctl)->mem_mib, 256, "a refused change leaves the memory size alone");
    expect_204("PATCH", "/machine-config", "{\"mem_size_mib\":200}");
    expect_204("PUT", "/machine-config", "{\"vcpu_count\":2,\"mem_size_mib\":1024}");
    cr_assert_eq(ctl_config(&ctl)->mem_mib, 1024);
    fault("PUT", "/balloon", "{\"amount_mib\":1025,\"deflate_on_oom\":false}", "too large", "1024 MiB");
    json_t *b = get_json("/balloon");
    cr_assert_eq(int_of(b, "amount_mib"), 200, "a refused PUT /balloon leaves the one before");
    json_decref(b);
    /* The same rule inside a config file: machine-config is applied first, so the balloon is checked against it. */
    json_t *root = json_loads("{\"machine-config\":{\"vcpu_count\":1,\"mem_size_mib\":64},"
                              "\"balloon\":{\"amount_mib\":65,\"deflate_on_oom\":true}}",
                              0, NULL);
    struct errmsg err = {{0}};
    cr_assert_neq(api_apply_config(&ctl, root, &err), 0);
    cr_assert(strstr(err.text, "smaller than the previously set balloon") || strstr(err.text, "too large"), "%s",
              err.text);
    json_decref(root);
}

Test(balloon_api, get_without_a_balloon)
{
    fault("GET", "/balloon", NULL, "No balloon device found", NULL);
    fault("GET", "/balloon", "{}", "no body", NULL);
}

Test(balloon_api, after_boot_rules)
{
    ctl.state = CTL_RUNNING;
    fault("PUT", "/balloon", "{\"amount_mib\":1,\"deflate_on_oom\":true}", "not supported after starting", NULL);
    fault("PATCH", "/balloon", "{\"amount_mib\":1}", "No balloon device found", NULL);
    fault("PATCH", "/balloon/statistics", "{\"stats_polling_interval_s\":1}", "No balloon device found", NULL);
    fault("GET", "/balloon/statistics", NULL, "No balloon device found", NULL);
    ctl.state = CTL_NOT_STARTED;
    expect_204("PUT", "/balloon", "{\"amount_mib\":8,\"deflate_on_oom\":true}");
    ctl.state = CTL_RUNNING;
    const struct bad_case cases[] = {
        {"PATCH", "/balloon", "{}", "missing field `amount_mib`", NULL},
        {"PATCH", "/balloon", "{\"amount_mib\":1,\"deflate_on_oom\":true}", "unknown field `deflate_on_oom`", NULL},
        {"PATCH", "/balloon", "{\"amount_mib\":1000}", "too large", NULL},
        {"PATCH", "/balloon/statistics", "{}", "missing field `stats_polling_interval_s`", NULL},
        {"PATCH", "/balloon/statistics", "{\"stats_polling_interval_s\":-1}", "`stats_polling_interval_s`", NULL},
        /* The simulated VM has no devices: the running balloon is not found (a real one refuses the switch). */
        {"PATCH", "/balloon/statistics", "{\"stats_polling_interval_s\":1}", "No balloon device found", NULL},
        {"GET", "/balloon/statistics", NULL, "Statistics for the balloon device are not enabled", NULL},
        {"PATCH", "/balloon", "{\"amount_mib\":4}", "No balloon device found", NULL},
    };
    run_cases(cases, N(cases));
    json_t *b = get_json("/balloon");
    cr_assert_eq(int_of(b, "amount_mib"), 8, "a refused PATCH changes nothing");
    json_decref(b);
    ctl.state = CTL_NOT_STARTED;
}

Test(balloon_api, config_file_section)
{
    json_t *root =
        json_loads("{\"machine-config\":{\"vcpu_count\":1,\"mem_size_mib\":512},"
                   "\"balloon\":{\"amount_mib\":300,\"deflate_on_oom\":true,\"stats_polling_interval_s\":5}}",
                   0, NULL);
    struct errmsg err = {{0}};
    cr_assert_eq(api_apply_config(&ctl, root, &err), 0, "%s", err.text);
    json_decref(root);
    const struct vm_config *cfg = ctl_config(&ctl);
    cr_assert(cfg->has_balloon);
    cr_assert_eq(cfg->balloon.amount_mib, 300, "checked against the machine-config of the same file");
    cr_assert(cfg->balloon.deflate_on_oom);
    cr_assert_eq(cfg->balloon.stats_polling_interval_s, 5);
    root = json_loads("{\"balloon\":{\"amount_mib\":1,\"deflate_on_oom\":true,\"free_page_hinting\":true}}", 0, NULL);
    cr_assert_neq(api_apply_config(&ctl, root, &err), 0);
    cr_assert(strstr(err.text, "\"balloon\"") && strstr(err.text, "free_page_hinting"), "%s", err.text);
    json_decref(root);
}
