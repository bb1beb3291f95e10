/* PUT /vsock and the "vsock" config-file section: accepted bodies, refused ones, and GET /vm/config showing it. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/config_file.h"
#include "core/log.h"
#include "tests/unit/api_fixture.h"

TestSuite(vsock_api, .init = api_fx_setup, .fini = api_fx_teardown);

Test(vsock_api, put_then_get_vm_config)
{
    expect_204("PUT", "/vsock", "{\"guest_cid\":3,\"uds_path\":\"/tmp/v.sock\"}");
    /* A second PUT replaces it; the deprecated vsock_id is accepted. */
    expect_204("PUT", "/vsock", "{\"vsock_id\":\"vsock0\",\"guest_cid\":52,\"uds_path\":\"/tmp/w.sock\"}");
    json_t *all = get_json("/vm/config");
    json_t *v = json_object_get(all, "vsock");
    cr_assert(json_is_object(v));
    cr_assert_eq(int_of(v, "guest_cid"), 52);
    cr_assert_str_eq(str_of(v, "uds_path"), "/tmp/w.sock");
    json_decref(all);
    cr_assert_eq(ctl_config(&ctl)->vsock.guest_cid, 52);
}

Test(vsock_api, bad_bodies)
{
    const struct bad_case cases[] = {
        {"PUT", "/vsock", "{\"uds_path\":\"/tmp/v.sock\"}", "`guest_cid`", NULL},
        {"PUT", "/vsock", "{\"guest_cid\":3}", "`uds_path`", NULL},
        {"PUT", "/vsock", "{\"guest_cid\":-1,\"uds_path\":\"/tmp/v.sock\"}", "`guest_cid`", NULL},
        {"PUT", "/vsock", "{\"guest_cid\":3.5,\"uds_path\":\"/tmp/v.sock\"}", "`guest_cid`", NULL},
        {"PUT", "/vsock", "{\"guest_cid\":4294967296,\"uds_path\":\"/tmp/v.sock\"}", "`guest_cid`", NULL},
        {"PUT", "/vsock", "{\"guest_cid\":\"3\",\"uds_path\":\"/tmp/v.sock\"}", "`guest_cid`", NULL},
        {"PUT", "/vsock", "{\"guest_cid\":3,\"uds_path\":\"\"}", "`uds_path`", NULL},
        {"PUT", "/vsock", "{\"guest_cid\":3,\"uds_path\":5}", "`uds_path`", NULL},
        {"PUT", "/vsock", "{\"guest_cid\":3,\"uds_path\":\"/tmp/v.sock\",\"bogus\":1}", "unknown field `bogus`", NULL},
        {"PUT", "/vsock", "{", "Invalid JSON", NULL},
    };
    run_cases(cases, N(cases));
    cr_assert_null(ctl_config(&ctl)->vsock.uds_path);
}

/* Firecracker takes any u32 guest_cid (firecracker-containerd sends 0); the ones vsock(7) reserves get one warning. */
Test(vsock_api, reserved_cids_accepted_with_a_warning)
{
    char path[] = "/tmp/ember-vsock-log-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    log_set_output(fd, "vsock-test", 0);
    const unsigned long long cids[] = {0, 1, 2, 3, 4294967294ULL, 4294967295ULL};
    for (size_t i = 0; i < N(cids); i++) {
        expect_204("PUT", "/vsock", fmt("{\"guest_cid\":%llu,\"uds_path\":\"/tmp/v.sock\"}", cids[i]));
        cr_assert_eq(ctl_config(&ctl)->vsock.guest_cid, cids[i]);
    }
    log_set_output(-1, "anonymous-instance", 0);
    char buf[4096] = {0};
    cr_assert_gt(pread(fd, buf, sizeof(buf) - 1, 0), 0);
    close(fd);
    unlink(path);
    int lines = 0;
    for (const char *l = buf; (l = strstr(l, "guest_cid ")); l++)
        lines++;
    cr_assert_eq(lines, 4, "one warning per reserved CID: %s", buf);
    cr_assert(strstr(buf, "guest_cid 0 is reserved") && strstr(buf, "guest_cid 4294967295 is reserved"), "%s", buf);
    cr_assert_null(strstr(buf, "guest_cid 3 "), "%s", buf);
}

Test(vsock_api, long_uds_path_refused)
{
    char path[200];
    memset(path, 'a', sizeof(path) - 1);
    path[0] = '/';
    path[sizeof(path) - 1] = '\0';
    fault("PUT", "/vsock", fmt("{\"guest_cid\":3,\"uds_path\":\"%s\"}", path), "`uds_path`", "1 to 96 bytes");
}

Test(vsock_api, after_boot_refused)
{
    ctl.state = CTL_RUNNING;
    cr_assert_eq(req("PUT", "/vsock", "{\"guest_cid\":3,\"uds_path\":\"/tmp/v.sock\"}"), 400);
    ctl.state = CTL_NOT_STARTED;
}

Test(vsock_api, config_file_section)
{
    json_t *root = json_loads("{\"vsock\":{\"guest_cid\":7,\"uds_path\":\"/tmp/c.sock\"}}", 0, NULL);
    struct errmsg err = {{0}};
    cr_assert_eq(api_apply_config(&ctl, root, &err), 0, "%s", err.text);
    json_decref(root);
    cr_assert_eq(ctl_config(&ctl)->vsock.guest_cid, 7);
    cr_assert_str_eq(ctl_config(&ctl)->vsock.uds_path, "/tmp/c.sock");
}

/* firecracker-containerd's CID through a config file too (the section goes through the same handler). */
Test(vsock_api, config_file_cid_0)
{
    json_t *root = json_loads("{\"vsock\":{\"guest_cid\":0,\"uds_path\":\"firecracker.vsock\"}}", 0, NULL);
    struct errmsg err = {{0}};
    cr_assert_eq(api_apply_config(&ctl, root, &err), 0, "%s", err.text);
    json_decref(root);
    cr_assert_eq(ctl_config(&ctl)->vsock.guest_cid, 0);
    cr_assert_str_eq(ctl_config(&ctl)->vsock.uds_path, "firecracker.vsock");
}
