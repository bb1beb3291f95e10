/* API routing: the route table's paths and ids, unimplemented endpoints, unknown methods and paths, error bodies. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "tests/unit/api_fixture.h"

TestSuite(api_routing, .init = api_fx_setup, .fini = api_fx_teardown);

Test(api_routing, ids)
{
    /* Path id and body id must match. */
    fault("PUT", "/drives/rootfs", drive_body("other", true, disk[0]), "id from the path does not match", NULL);
    fault("PUT", "/network-interfaces/eth0", "{\"iface_id\":\"eth1\",\"host_dev_name\":\"tap0\"}",
          "id from the path does not match", NULL);
    /* Ids outside [A-Za-z0-9_]{1,64}, the same in path and body. */
    static const char *const bad_ids[] = {"a-b",  "a.b",
                                          "a b",  "d\xc3\xa9j\xc3\xa0",
                                          "x%41", "a1234567890123456789012345678901234567890123456789012345678901234"};
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
    expect_204("PUT", fmt("/network-interfaces/%s", id64),
               fmt("{\"iface_id\":\"%s\",\"host_dev_name\":\"tap9\"}", id64));
    /* No id in the path, or more than one segment, is not a route. */
    fault("PUT", "/drives/", drive_body("d", false, disk[0]), "Invalid request method and/or path", NULL);
    fault("PUT", "/drives", drive_body("d", false, disk[0]), "Invalid request method and/or path", NULL);
    fault("PUT", "/drives/a/b", drive_body("a", false, disk[0]), "Invalid request method and/or path", NULL);
    fault("PUT", "/network-interfaces/", "{\"iface_id\":\"n\",\"host_dev_name\":\"tap0\"}",
          "Invalid request method and/or path", NULL);
}

Test(api_routing, unimplemented_endpoints)
{
    const struct bad_case cases[] = {
        {"PATCH", "/balloon/hinting/start", "{}", "not implement", "/balloon/hinting"},
        {"GET", "/balloon/hinting/status", NULL, "not implement", "/balloon/hinting"},
        {"PUT", "/pmem/p0", "{\"id\":\"p0\",\"path_on_host\":\"x\"}", "not implement", "/pmem"},
        {"PATCH", "/pmem/p0", "{\"id\":\"p0\"}", "not implement", "/pmem"},
        {"PUT", "/hotplug/memory", "{\"total_size_mib\":1024}", "not implement", "/hotplug"},
        {"GET", "/hotplug/memory", NULL, "not implement", "/hotplug"},
        /* Even with no or a malformed body, the answer says what is missing. */
        {"PATCH", "/balloon/hinting/stop", NULL, "not implement", NULL},
    };
    run_cases(cases, N(cases));
    cr_expect_eq(ctl.state, CTL_NOT_STARTED);
}

Test(api_routing, unknown_path_or_method)
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
        {"PUT", "/machine-config/", "{\"vcpu_count\":1,\"mem_size_mib\":128}", "Invalid request method and/or path",
         NULL},
        {"GET", "/machine-config/extra", NULL, "Invalid request method and/or path", NULL},
        {"GET", "", NULL, "Invalid request method and/or path", NULL},
        {"GET", "//", NULL, "Invalid request method and/or path", NULL},
    };
    run_cases(cases, N(cases));
}

/* The path is checked before the body: an unknown route with no or a bad body still says so. */
Test(api_routing, unknown_path_checked_before_body)
{
    const struct bad_case cases[] = {
        {"PUT", "/nope", NULL, "Invalid request method and/or path", NULL},
        {"PATCH", "/nope", "{", "Invalid request method and/or path", NULL},
        {"GET", "/nope", "{}", "Invalid request method and/or path", NULL},
        {"POST", "/nope", NULL, "Invalid request method and/or path", NULL},
    };
    run_cases(cases, N(cases));
}

/* Whatever bytes a client puts in the path, the error body is valid JSON. */
Test(api_routing, error_body_is_json_for_any_path)
{
    const struct bad_case cases[] = {
        {"GET", "/\xff\xfe", NULL, "Invalid request method and/or path", NULL},
        {"PUT", "/drives/\xc3", drive_body("x", false, disk[0]), NULL, NULL},
    };
    run_cases(cases, N(cases));
}

/* Long user-supplied text in a message is cut, but the body stays valid JSON (and UTF-8). */
Test(api_routing, long_messages_stay_json)
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
