/* cli: --snapshot-load and the options that go with it (and only with it). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "tests/unit/cli_fixture.h"

/* The last parse failed with -EINVAL and a message holding frag (and frag2 when not NULL). */
static void refused(int line, const char *frag, const char *frag2)
{
    cr_expect_eq(rc, -EINVAL, "line %d: accepted; want a message with '%s'", line, frag);
    cr_expect(strstr(err.text, frag), "line %d: message '%s' should mention '%s'", line, err.text, frag);
    if (frag2)
        cr_expect(strstr(err.text, frag2), "line %d: message '%s' should mention '%s'", line, err.text, frag2);
}
#define REFUSED(frag, frag2) refused(__LINE__, frag, frag2)

static void fini(void) { cli_free(&o); }

TestSuite(cli_snapshot, .fini = fini);

Test(cli_snapshot, file_backend)
{
    PARSE("--snapshot-load", "/s/state", "--mem", "/s/mem", "--resume", "--no-api");
    cr_assert_eq(rc, 0, "%s", err.text);
    cr_expect_str_eq(o.snapshot_load, "/s/state");
    cr_expect_str_eq(o.snapshot_mem, "/s/mem");
    cr_expect_null(o.snapshot_uffd);
    cr_expect_eq(o.snapshot_resume, 1);
    cr_expect_eq(o.track_dirty_pages, 0);
    cr_expect_eq(o.nr_net_overrides, 0);
    cr_expect_eq(o.no_api, 1);
    cr_expect_null(o.vm.kernel_path);
}

Test(cli_snapshot, uffd_backend_paused_with_api)
{
    PARSE("--snapshot-load=/s/state", "--mem-uffd=/run/uffd.sock", "--api-sock", "/run/api.sock", "--track-dirty-pages",
          "--net-override", "eth0=tap7", "--net-override=eth1=tap8");
    cr_assert_eq(rc, 0, "%s", err.text);
    cr_expect_str_eq(o.snapshot_uffd, "/run/uffd.sock");
    cr_expect_null(o.snapshot_mem);
    cr_expect_eq(o.snapshot_resume, 0);
    cr_expect_eq(o.track_dirty_pages, 1);
    cr_assert_eq(o.nr_net_overrides, 2);
    cr_expect_str_eq(o.net_override[0], "eth0=tap7");
    cr_expect_str_eq(o.net_override[1], "eth1=tap8");
    cr_expect_str_eq(o.api_sock, "/run/api.sock");
}

Test(cli_snapshot, exactly_one_memory_backend)
{
    PARSE("--snapshot-load", "s", "--resume");
    REFUSED("exactly one of --mem FILE and --mem-uffd SOCKET", NULL);
    PARSE("--snapshot-load", "s", "--mem", "m", "--mem-uffd", "u", "--resume");
    REFUSED("exactly one of --mem FILE and --mem-uffd SOCKET", NULL);
    PARSE("--snapshot-load", "s", "--mem");
    REFUSED("--mem needs a value", NULL);
    PARSE("--snapshot-load");
    REFUSED("--snapshot-load needs a value", NULL);
}

Test(cli_snapshot, net_override_forms)
{
    static const char *const bad[] = {"eth0", "=tap0", "eth0=", "=", ""};
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        PARSE("--snapshot-load", "s", "--mem", "m", "--resume", "--net-override", (char *)bad[i]);
        REFUSED("--net-override", "must be IFACE=TAP");
        char quoted[32];
        snprintf(quoted, sizeof(quoted), "'%s'", bad[i]);
        cr_expect(strstr(err.text, quoted), "message '%s' should quote the argument", err.text);
    }
    /* One per NIC at most. */
    PARSE("--snapshot-load", "s", "--mem", "m", "--resume", "--net-override", "a=1", "--net-override", "b=2",
          "--net-override", "c=3", "--net-override", "d=4");
    cr_expect_eq(rc, 0, "%s", err.text);
    cr_expect_eq(o.nr_net_overrides, EMBER_MAX_NETS);
    PARSE("--snapshot-load", "s", "--mem", "m", "--resume", "--net-override", "a=1", "--net-override", "b=2",
          "--net-override", "c=3", "--net-override", "d=4", "--net-override", "e=5");
    REFUSED("--net-override", "at most 4");
}

/* Each snapshot option alone is refused: it does nothing without --snapshot-load. */
Test(cli_snapshot, options_need_snapshot_load)
{
    const char *msg = "go with --snapshot-load";
    PARSE("--kernel", "k", "--mem", "m");
    REFUSED(msg, NULL);
    PARSE("--kernel", "k", "--mem-uffd", "u");
    REFUSED(msg, NULL);
    PARSE("--api-sock", "a", "--resume");
    REFUSED(msg, NULL);
    PARSE("--api-sock", "a", "--net-override", "eth0=tap0");
    REFUSED(msg, NULL);
    PARSE("--config-file", "c", "--track-dirty-pages");
    REFUSED(msg, NULL);
}

/* The snapshot describes the machine: what would describe another is refused, not silently dropped. */
Test(cli_snapshot, conflicting_options)
{
    PARSE("--snapshot-load", "s", "--mem", "m", "--resume", "--kernel", "k");
    REFUSED("--snapshot-load", "--kernel");
    PARSE("--snapshot-load", "s", "--mem", "m", "--resume", "--config-file", "c");
    REFUSED("--snapshot-load", "--config-file");
    const char *takes = "takes the machine, drives and NICs from the snapshot";
    PARSE("--snapshot-load", "s", "--mem", "m", "--resume", "--drive", "id=root,path=/d.img,root");
    REFUSED(takes, "--drive");
    PARSE("--snapshot-load", "s", "--mem", "m", "--resume", "--net", "id=eth0,tap=tap0");
    REFUSED(takes, "--net-override");
    PARSE("--snapshot-load", "s", "--mem", "m", "--resume", "--vcpus", "2");
    REFUSED(takes, "--vcpus");
    PARSE("--snapshot-load", "s", "--mem", "m", "--resume", "--mem-mib", "256");
    REFUSED(takes, "--mem-mib");
    PARSE("--snapshot-load", "s", "--mem", "m", "--resume", "--cmdline", "quiet");
    REFUSED(takes, "--cmdline");
    PARSE("--snapshot-load", "s", "--mem", "m", "--resume", "--initrd", "i");
    REFUSED(takes, "--initrd");
    PARSE("--snapshot-load", "s", "--mem", "m", "--api-sock", "a", "--no-api");
    REFUSED("contradict", NULL);
    /* Options about the process, not the machine, are fine. */
    PARSE("--snapshot-load", "s", "--mem", "m", "--resume", "--id", "vm1", "--log-level", "debug", "--stats");
    cr_expect_eq(rc, 0, "%s", err.text);
}

/* Restored paused, the VM waits for PATCH /vm: without an API socket it would wait forever. */
Test(cli_snapshot, paused_needs_api)
{
    PARSE("--snapshot-load", "s", "--mem", "m");
    REFUSED("--resume", "--api-sock");
    PARSE("--snapshot-load", "s", "--mem", "m", "--no-api");
    REFUSED("--resume", "--api-sock");
    PARSE("--snapshot-load", "s", "--mem", "m", "--api-sock", "a");
    cr_expect_eq(rc, 0, "%s", err.text);
    PARSE("--snapshot-load", "s", "--mem", "m", "--resume");
    cr_expect_eq(rc, 0, "%s", err.text);
}
