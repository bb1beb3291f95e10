/* cli: command-line parsing, values and error messages. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "tests/unit/cli_fixture.h"

static void fini(void) { cli_free(&o); }

TestSuite(cli, .fini = fini);

Test(cli, full_command_line)
{
    PARSE("--kernel", "/boot/vmlinux", "--initrd", "/boot/initrd", "--cmdline", "console=ttyS0 quiet", "--vcpus", "4",
          "--mem-mib", "512", "--boot", "linux", "--host-compat", "off", "--log-level", "debug", "--stats");
    cr_assert_eq(rc, 0, "%s", err.text);
    cr_assert_str_eq(o.vm.kernel_path, "/boot/vmlinux");
    cr_assert_str_eq(o.vm.initrd_path, "/boot/initrd");
    cr_assert_str_eq(o.vm.cmdline, "console=ttyS0 quiet");
    cr_assert_eq(o.vm.vcpus, 4);
    cr_assert_eq(o.vm.mem_mib, 512);
    cr_assert_eq(o.vm.use_pvh, 0);
    cr_assert_eq(o.vm.host_compat, HOST_COMPAT_OFF);
    cr_assert_eq(o.log_level, LOG_DEBUG);
    cr_assert_eq(o.vm.print_stats, 1);
    cr_assert_eq(o.help, 0);
    cr_assert_eq(o.version, 0);
}

Test(cli, defaults)
{
    PARSE("--kernel", "k");
    cr_assert_eq(rc, 0, "%s", err.text);
    cr_assert_str_eq(o.vm.kernel_path, "k");
    cr_assert_null(o.vm.initrd_path);
    cr_assert_null(o.vm.cmdline);
    cr_assert_eq(o.vm.vcpus, 1);
    cr_assert_eq(o.vm.mem_mib, 128);
    cr_assert_eq(o.vm.use_pvh, 1);
    cr_assert_eq(o.vm.host_compat, HOST_COMPAT_AUTO);
    cr_assert_eq(o.vm.print_stats, 0);
    cr_assert_eq(o.log_level, LOG_WARN);
    cr_assert_eq(o.vm.nr_drives, 0);
    cr_assert_eq(o.vm.nr_nets, 0);
}

Test(cli, equals_form_and_reparse)
{
    PARSE("--kernel=a", "--vcpus=3");
    cr_assert_eq(rc, 0, "%s", err.text);
    cr_assert_str_eq(o.vm.kernel_path, "a");
    cr_assert_eq(o.vm.vcpus, 3);
    /* The parser resets getopt: a second parse starts from scratch. */
    PARSE("--kernel", "b");
    cr_assert_eq(rc, 0, "%s", err.text);
    cr_assert_str_eq(o.vm.kernel_path, "b");
    cr_assert_eq(o.vm.vcpus, 1);
}

/* ------------------------------------------------------ refused command lines */

#define MAX_ARGS 24

/* The arguments after "ember" (NULL-terminated) and what the message must mention. */
struct bad_cli {
    const char *args[MAX_ARGS];
    const char *frag1, *frag2;
};

static void parse_args(const char *const *args)
{
    char *argv[MAX_ARGS + 2] = {"ember"};
    int argc = 1;
    for (; args[argc - 1]; argc++)
        argv[argc] = (char *)args[argc - 1];
    cli_free(&o);
    memset(&err, 0, sizeof(err));
    rc = cli_parse(argc, argv, &o, &err);
}

static void expect_all_refused(const struct bad_cli *cases, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        parse_args(cases[i].args);
        cr_expect_eq(rc, -EINVAL, "case %u (%s ...): rc %d (message: %s)", i, cases[i].args[0], rc, err.text);
        cr_expect(strstr(err.text, cases[i].frag1) != NULL, "case %u: message '%s' should mention '%s'", i, err.text,
                  cases[i].frag1);
        if (cases[i].frag2)
            cr_expect(strstr(err.text, cases[i].frag2) != NULL, "case %u: message '%s' should mention '%s'", i,
                      err.text, cases[i].frag2);
    }
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* A string option given twice keeps the last; the config owns copies (ASan: the first is freed). */
Test(cli, repeated_string_options)
{
    PARSE("--kernel", "a", "--kernel", "b", "--cmdline", "x", "--cmdline", "y", "--initrd", "i", "--initrd", "j");
    cr_assert_eq(rc, 0, "%s", err.text);
    cr_expect_str_eq(o.vm.kernel_path, "b");
    cr_expect_str_eq(o.vm.cmdline, "y");
    cr_expect_str_eq(o.vm.initrd_path, "j");
}

/* The one table of level names (core/log): what --log-level and PUT /logger each take. */
Test(cli, log_level_names)
{
    static const struct {
        const char *name;
        int cli, api; /* expected level, or -1: refused */
        const char *spelling;
    } cases[] = {
        {"error", LOG_ERROR, LOG_ERROR, "Error"},
        {"WARN", LOG_WARN, -1, NULL},
        {"warning", LOG_WARN, LOG_WARN, "Warning"},
        {"Info", LOG_INFO, LOG_INFO, "Info"},
        {"debug", LOG_DEBUG, LOG_DEBUG, "Debug"},
        {"trace", -1, LOG_DEBUG, "Trace"},
        {"Off", -1, LOG_ERROR, "Off"},
        {"loud", -1, -1, NULL},
        {"", -1, -1, NULL},
    };
    for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        enum log_level lv = LOG_DEBUG;
        const char *spelling = NULL;
        int r = log_parse_level(cases[i].name, &lv);
        cr_expect_eq(r ? -1 : (int)lv, cases[i].cli, "--log-level %s", cases[i].name);
        r = log_parse_api_level(cases[i].name, &lv, &spelling);
        cr_expect_eq(r ? -1 : (int)lv, cases[i].api, "PUT /logger level %s", cases[i].name);
        if (!r)
            cr_expect_str_eq(spelling, cases[i].spelling);
    }
}

Test(cli, missing_kernel)
{
    static const struct bad_cli cases[] = {{{"--vcpus", "2"}, "--kernel", NULL}};
    expect_all_refused(cases, N(cases));
}

Test(cli, bad_numbers)
{
    static const struct bad_cli cases[] = {
        {{"--kernel", "k", "--vcpus", "0"}, "--vcpus", "'0'"},
        {{"--kernel", "k", "--vcpus", "33"}, "--vcpus", "'33'"},
        {{"--kernel", "k", "--vcpus", "-1"}, "--vcpus", "'-1'"},
        {{"--kernel", "k", "--vcpus", "2x"}, "--vcpus", "'2x'"},
        {{"--kernel", "k", "--vcpus", ""}, "--vcpus", "''"},
        {{"--kernel", "k", "--vcpus", "+2"}, "--vcpus", "'+2'"},
        {{"--kernel", "k", "--vcpus", "0x2"}, "--vcpus", "'0x2'"},
        {{"--kernel", "k", "--vcpus", "18446744073709551617"}, "--vcpus", NULL},
        {{"--kernel", "k", "--vcpus="}, "--vcpus", NULL},
        /* Digits only: strtoull alone would skip leading blanks and take a sign (a bug once). */
        {{"--kernel", "k", "--vcpus", " 2"}, "--vcpus", NULL},
        {{"--kernel", "k", "--vcpus", "\t+3"}, "--vcpus", NULL},
        {{"--kernel", "k", "--mem-mib", "0"}, "--mem-mib", "'0'"},
        {{"--kernel", "k", "--mem-mib", "1048577"}, "--mem-mib", NULL},
        {{"--kernel", "k", "--mem-mib", "lots"}, "--mem-mib", "'lots'"},
        {{"--kernel", "k", "--mem-mib", "1.5"}, "--mem-mib", NULL},
        {{"--kernel", "k", "--mem-mib", "128M"}, "--mem-mib", NULL},
        {{"--kernel", "k", "--mem-mib", "99999999999999999999999"}, "--mem-mib", NULL},
    };
    expect_all_refused(cases, N(cases));
}

Test(cli, bad_options_and_values)
{
    static const struct bad_cli cases[] = {
        {{"--kernel", "k", "--bogus"}, "--bogus", NULL},
        {{"--kernel", "k", "-x"}, "-x", NULL},
        {{"--kernel", "k", "--stats=yes"}, "--stats", NULL},
        /* A grouped short option: getopt has not advanced optind, so the option itself must be named (a bug once). */
        {{"--kernel", "k", "-xy"}, "-x", NULL},
        {{"--kernel", "k", "stray"}, "stray", NULL},
        {{"--vcpus", "2", "--kernel"}, "--kernel", NULL},
        {{"--kernel", "k", "--mem-mib"}, "--mem-mib", NULL},
        {{"--kernel", "k", "--cmdline"}, "--cmdline", NULL},
        {{"--kernel", "k", "--boot", "PVH"}, "--boot", "'PVH'"},
        {{"--kernel", "k", "--boot", ""}, "--boot", NULL},
        {{"--kernel", "k", "--host-compat", "yes"}, "--host-compat", "'yes'"},
        {{"--kernel", "k", "--log-level", "loud"}, "--log-level", "'loud'"},
    };
    expect_all_refused(cases, N(cases));
}

/* --------------------------------------------------- accepted values, one field each */

static long vcpus_of(void) { return o.vm.vcpus; }
static long mem_of(void) { return (long)o.vm.mem_mib; }
static long pvh_of(void) { return o.vm.use_pvh; }
static long compat_of(void) { return o.vm.host_compat; }
static long log_level_of(void) { return o.log_level; }

Test(cli, accepted_values)
{
    static const struct {
        const char *args[MAX_ARGS];
        long (*field)(void);
        long want;
    } cases[] = {
        {{"--kernel", "k", "--vcpus", "1"}, vcpus_of, 1},
        {{"--kernel", "k", "--vcpus", "32"}, vcpus_of, 32},
        {{"--kernel", "k", "--mem-mib", "1048576"}, mem_of, 1048576},
        {{"--kernel", "k", "--boot", "pvh"}, pvh_of, 1},
        {{"--kernel", "k", "--boot", "linux"}, pvh_of, 0},
        {{"--kernel", "k", "--host-compat", "on"}, compat_of, HOST_COMPAT_ON},
        {{"--kernel", "k", "--host-compat", "off"}, compat_of, HOST_COMPAT_OFF},
        {{"--kernel", "k", "--host-compat", "auto"}, compat_of, HOST_COMPAT_AUTO},
        {{"--kernel", "k", "--log-level", "error"}, log_level_of, LOG_ERROR},
    };
    for (unsigned i = 0; i < N(cases); i++) {
        parse_args(cases[i].args);
        cr_expect_eq(rc, 0, "case %u (%s %s): %s", i, cases[i].args[2], cases[i].args[3], err.text);
        cr_expect_eq(cases[i].field(), cases[i].want, "case %u (%s %s): got %ld, want %ld", i, cases[i].args[2],
                     cases[i].args[3], cases[i].field(), cases[i].want);
    }
}

Test(cli, help_and_version_need_no_kernel)
{
    PARSE("--help");
    cr_assert_eq(rc, 0);
    cr_assert_eq(o.help, 1);
    PARSE("--version");
    cr_assert_eq(rc, 0);
    cr_assert_eq(o.version, 1);
    cr_assert_eq(o.help, 0);
    PARSE("--vcpus", "4", "--help", "--vcpus", "bad");
    cr_assert_eq(rc, 0, "help stops parsing");
    cr_assert_eq(o.help, 1);
}

Test(cli, usage_mentions_options)
{
    char buf[4096] = {0};
    FILE *f = fmemopen(buf, sizeof(buf) - 1, "w");
    cr_assert_not_null(f);
    cli_usage(f);
    fclose(f);
    static const char *const names[] = {"--kernel", "--initrd",      "--cmdline",   "--vcpus", "--mem-mib",
                                        "--boot",   "--host-compat", "--log-level", "--stats", "--drive",
                                        "--net",    "--help",        "--version"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        cr_assert(strstr(buf, names[i]) != NULL, "usage lacks %s", names[i]);
}

Test(cli, drives)
{
    PARSE("--kernel", "k", "--drive", "id=rootfs,path=/img/root.ext4,root,ro,io_engine=async", "--drive",
          "id=data_1,path=/img/data");
    cr_assert_eq(rc, 0, "%s", err.text);
    cr_assert_eq(o.vm.nr_drives, 2);
    const struct blk_config *d = &o.vm.drives[0];
    cr_assert_str_eq(d->id, "rootfs");
    cr_assert_str_eq(d->path, "/img/root.ext4");
    cr_assert(d->root);
    cr_assert(d->read_only);
    cr_assert_eq(d->engine, BLK_ENGINE_ASYNC);
    d = &o.vm.drives[1];
    cr_assert_str_eq(d->id, "data_1");
    cr_assert_not(d->root);
    cr_assert_not(d->read_only);
    cr_assert_eq(d->engine, BLK_ENGINE_SYNC);
}

Test(cli, drive_errors)
{
    static const struct bad_cli cases[] = {
        {{"--kernel", "k", "--drive", "path=/x"}, "--drive", "id"},
        {{"--kernel", "k", "--drive", "id=a-b,path=/x"}, "--drive", "a-b"},
        {{"--kernel", "k", "--drive", "id=a"}, "--drive", "path"},
        {{"--kernel", "k", "--drive", "id=a,path="}, "--drive", NULL},
        {{"--kernel", "k", "--drive", "id=a,path=/x,speed=fast"}, "--drive", "speed"},
        {{"--kernel", "k", "--drive", "id=a,path=/x,io_engine=magic"}, "--drive", "magic"},
        {{"--kernel", "k", "--drive", "id=a,path=/x,root=1"}, "--drive", "root"},
        {{"--kernel", "k", "--drive", "id=a,path=/x", "--drive", "id=a,path=/y"}, "--drive", "'a'"},
        {{"--kernel", "k", "--drive", "id=a,path=/x,root", "--drive", "id=b,path=/y,root"}, "--drive", "root"},
    };
    expect_all_refused(cases, N(cases));
}

/* --drive up to EMBER_MAX_DRIVES, one more is refused with the limit in the message. */
Test(cli, too_many_drives)
{
    char *argv[3 + 2 * (EMBER_MAX_DRIVES + 1)] = {"ember", "--kernel", "k"};
    char specs[EMBER_MAX_DRIVES + 1][32];
    int argc = 3;
    for (int i = 0; i <= EMBER_MAX_DRIVES; i++) {
        snprintf(specs[i], sizeof(specs[i]), "id=d%d,path=/x", i);
        argv[argc++] = "--drive";
        argv[argc++] = specs[i];
    }
    char limit[16];
    snprintf(limit, sizeof(limit), "%d", EMBER_MAX_DRIVES);
    cli_free(&o);
    memset(&err, 0, sizeof(err));
    rc = cli_parse(argc - 2, argv, &o, &err);
    cr_assert_eq(rc, 0, "%d drives: %s", EMBER_MAX_DRIVES, err.text);
    cli_free(&o);
    memset(&err, 0, sizeof(err));
    rc = cli_parse(argc, argv, &o, &err);
    cr_assert_eq(rc, -EINVAL);
    cr_expect(strstr(err.text, "--drive") && strstr(err.text, limit), "message: %s", err.text);
}

Test(cli, nets)
{
    PARSE("--kernel", "k", "--net", "id=eth0,tap=tap0,mac=06:00:AC:10:00:02", "--net", "id=eth1,tap=tap1");
    cr_assert_eq(rc, 0, "%s", err.text);
    cr_assert_eq(o.vm.nr_nets, 2);
    cr_assert_str_eq(o.vm.nets[0].id, "eth0");
    cr_assert_str_eq(o.vm.nets[0].tap, "tap0");
    cr_assert(o.vm.nets[0].has_mac);
    static const uint8_t mac[6] = {0x06, 0x00, 0xac, 0x10, 0x00, 0x02};
    cr_assert_eq(memcmp(o.vm.nets[0].mac, mac, 6), 0);
    cr_assert_not(o.vm.nets[1].has_mac);
}

Test(cli, net_errors)
{
    static const struct bad_cli cases[] = {
        {{"--kernel", "k", "--net", "id=eth0"}, "--net", "tap"},
        {{"--kernel", "k", "--net", "tap=tap0"}, "--net", "id"},
        {{"--kernel", "k", "--net", "id=eth0,tap=tap0,mac=01:00:5e:00:00:01"}, "--net", "multicast"},
        {{"--kernel", "k", "--net", "id=eth0,tap=tap0,mac=06:00:ac:10:00"}, "--net", "mac"},
        {{"--kernel", "k", "--net", "id=eth0,tap=tap0,mac=06:00:ac:10:00:02:03"}, "--net", "mac"},
        {{"--kernel", "k", "--net", "id=eth0,tap=tap0,mac=6:0:ac:10:0:2"}, "--net", "mac"},
        {{"--kernel", "k", "--net", "id=eth0,tap=tap0", "--net", "id=eth0,tap=tap1"}, "--net", "eth0"},
        {{"--kernel", "k", "--net", "id=eth0,tap=tap0,mtu=9000"}, "--net", "mtu"},
    };
    expect_all_refused(cases, N(cases));
}

Test(cli, valid_ids)
{
    cr_assert(vm_config_valid_id("a"));
    cr_assert(vm_config_valid_id("Root_FS_1"));
    cr_assert_not(vm_config_valid_id(""));
    cr_assert_not(vm_config_valid_id("a-b"));
    cr_assert_not(vm_config_valid_id("a b"));
    cr_assert_not(vm_config_valid_id("é"));
    char id[66];
    memset(id, 'x', 64);
    id[64] = '\0';
    cr_assert(vm_config_valid_id(id), "64 characters");
    id[64] = 'x';
    id[65] = '\0';
    cr_assert_not(vm_config_valid_id(id), "65 characters");
}

/* --id follows the jailer's rule (issue #16: invalid UTF-8 made GET / answer 500); the message quotes it escaped. */
Test(cli, instance_id_rule)
{
    static const struct bad_cli cases[] = {
        {{"--api-sock", "s", "--id", ""}, "--id", "[A-Za-z0-9-]"},
        {{"--api-sock", "s", "--id", "a_b"}, "--id", "'a_b'"},
        {{"--api-sock", "s", "--id", "vm\xff"}, "--id", "'vm\\xff'"},
        {{"--api-sock", "s", "--id", "caf\xc3\xa9"}, "--id", NULL},
        {{"--api-sock", "s", "--id", "a\nb"}, "'a\\x0ab'", NULL},
        {{"--api-sock", "s", "--id", "x/y"}, "--id", NULL},
        {{"--api-sock", "s", "--id", "12345678901234567890123456789012345678901234567890123456789012345"},
         "--id",
         NULL},
    };
    expect_all_refused(cases, N(cases));
    PARSE("--api-sock", "s", "--id", "1234567890123456789012345678901234567890123456789012345678901234");
    cr_expect_eq(rc, 0, "%s", err.text);
    PARSE("--api-sock", "s", "--id", "my-VM-01");
    cr_expect_eq(rc, 0, "%s", err.text);
    cr_expect_str_eq(o.instance_id, "my-VM-01");
}

/* Firecracker's default: a config file without --api-sock or --no-api still gets the API (Kata relies on it). */
Test(cli, config_file_defaults_to_firecrackers_api_socket)
{
    PARSE("--config-file", "vm.json");
    cr_assert_eq(rc, 0, "%s", err.text);
    cr_expect_str_eq(o.api_sock, "/run/firecracker.socket");
    PARSE("--config-file", "vm.json", "--no-api");
    cr_assert_eq(rc, 0, "%s", err.text);
    cr_expect_null(o.api_sock);
    PARSE("--kernel", "k");
    cr_assert_eq(rc, 0, "%s", err.text);
    cr_expect_null(o.api_sock, "ember's own --kernel mode keeps no API unless asked");
}
