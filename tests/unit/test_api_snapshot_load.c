/*
 * PUT /snapshot/load with bodies that are right and files that are not: every
 * answer a 400 naming the file and what is wrong with it, and after every one
 * the process as it was before the request (expect_untouched). With no KVM
 * here, a load whose files are all good fails at /dev/kvm, after the
 * snapshot's description went through the API's handlers.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/unit/snapshot_fixture.h"

#define RAM (128 * MiB)

/* No .timeout: criterion's timeout watcher leaks under LeakSanitizer now and then (alarm() guards the FIFO case). */
TestSuite(api_snapshot_load, .init = snap_fx_setup, .fini = snap_fx_teardown);

/* Where a load with good files stops here: no KVM (the message then names /dev/kvm), or, on a KVM host, later. */
static const char *kvm_frag(void) { return access("/dev/kvm", F_OK) == 0 ? NULL : "/dev/kvm"; }

static int open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    cr_assert_not_null(d);
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

/* Sends the load and checks its fault, then that nothing changed. */
static void load_fails(const char *what, const char *body, const char *frag1, const char *frag2, const char *serial)
{
    req("PUT", "/snapshot/load", body);
    fault_ok(what, frag1, frag2);
    expect_untouched(what, serial);
}

static void flip_byte(const char *path, off_t off)
{
    int fd = open(path, O_RDWR);
    cr_assert_geq(fd, 0);
    unsigned char b;
    cr_assert_eq(pread(fd, &b, 1, off), 1);
    b ^= 0x5a;
    cr_assert_eq(pwrite(fd, &b, 1, off), 1);
    close(fd);
}

Test(api_snapshot_load, bad_state_files)
{
    char s[128], m[128], dir[128];
    snprintf(s, sizeof(s), "%s", snap_file("state"));
    snprintf(m, sizeof(m), "%s", snap_file("mem"));
    snprintf(dir, sizeof(dir), "%s", snap_file("a-directory"));
    make_sparse(m, RAM);
    const char *cfg = config_json(1, 128, "[]", "[]");

    load_fails("missing state file", load_body(s, m, ""), s, "cannot open it", NULL);
    make_sparse(s, 0);
    load_fails("empty state file", load_body(s, m, ""), s, "is empty", NULL);
    write_state(s, RAM, 1, cfg);
    cr_assert_eq(truncate(s, 20), 0);
    load_fails("state file cut in its header", load_body(s, m, ""), s, "truncated", NULL);
    write_state(s, RAM, 1, cfg);
    struct stat st;
    cr_assert_eq(stat(s, &st), 0);
    cr_assert_eq(truncate(s, st.st_size - 7), 0);
    load_fails("state file cut short", load_body(s, m, ""), s, "truncated", NULL);
    write_state(s, RAM, 1, cfg);
    flip_byte(s, st.st_size / 2);
    load_fails("state file with a byte changed", load_body(s, m, ""), s, "checksum mismatch", NULL);
    write_state(s, RAM, 1, cfg);
    flip_byte(s, 0);
    load_fails("state file without its magic", load_body(s, m, ""), s, "not an Ember snapshot", NULL);
    cr_assert_eq(mkdir(dir, 0700), 0);
    load_fails("state file that is a directory", load_body(dir, m, ""), dir, "not a regular file", NULL);
    /* Well-formed files whose first section is not the description. */
    write_state_raw(s, RAM, 1, "vm", 1, cfg, strlen(cfg), (uint32_t)strlen(cfg));
    load_fails("state file without a config section", load_body(s, m, ""), s, "'vm' instead", NULL);
    write_state_raw(s, RAM, 1, "config", 2, cfg, strlen(cfg), (uint32_t)strlen(cfg));
    load_fails("config section of a later version", load_body(s, m, ""), s, "format version 2", NULL);
}

Test(api_snapshot_load, bad_memory_files)
{
    char s[128], m[128];
    snprintf(s, sizeof(s), "%s", snap_file("state"));
    snprintf(m, sizeof(m), "%s", snap_file("mem"));
    write_state(s, RAM, 1, config_json(1, 128, "[]", "[]"));

    load_fails("missing memory file", load_body(s, m, ""), m, "cannot open it", NULL);
    make_sparse(m, RAM - 4096);
    load_fails("short memory file", load_body(s, m, ""), m, "truncated", NULL);
    make_sparse(m, RAM + 4096);
    load_fails("long memory file", load_body(s, m, ""), m, "another snapshot", NULL);
    /* The deprecated mem_file_path is the same File backend. */
    load_fails("long memory file (mem_file_path)", fmt("{\"snapshot_path\":\"%s\",\"mem_file_path\":\"%s\"}", s, m), m,
               "another snapshot", NULL);
    cr_assert_eq(unlink(m), 0);
    cr_assert_eq(mkdir(m, 0700), 0);
    load_fails("memory file that is a directory", load_body(s, m, ""), m, "not a regular file", NULL);
    cr_assert_eq(rmdir(m), 0);
    cr_assert_eq(mkfifo(m, 0600), 0);
    /* Nobody writes the FIFO: opening it must not wait (SIGALRM ends the test if it does). */
    alarm(10);
    load_fails("memory file that is a FIFO", load_body(s, m, ""), m, "not a regular file", NULL);
    alarm(0);
}

Test(api_snapshot_load, bad_descriptions)
{
    char s[128], m[128];
    snprintf(s, sizeof(s), "%s", snap_file("state"));
    snprintf(m, sizeof(m), "%s", snap_file("mem"));
    make_sparse(m, RAM);
    const char *good = config_json(1, 128, "[]", "[]");
    size_t len = strlen(good);

    write_state_raw(s, RAM, 1, "config", 1, good, len, (uint32_t)len + 1);
    load_fails("config length one too many", load_body(s, m, ""), s, "malformed", NULL);
    write_state_raw(s, RAM, 1, "config", 1, good, len, (uint32_t)len - 1);
    load_fails("config length one too few", load_body(s, m, ""), s, "malformed", NULL);
    write_state_raw(s, RAM, 1, "config", 1, good, len, 0xffffffffu);
    load_fails("config length huge", load_body(s, m, ""), s, "malformed", NULL);
    char with_nul[512];
    snprintf(with_nul, sizeof(with_nul), "%s", good);
    with_nul[5] = '\0';
    write_state_raw(s, RAM, 1, "config", 1, with_nul, len, (uint32_t)len);
    load_fails("config with a NUL byte", load_body(s, m, ""), s, "NUL byte", NULL);
    write_state(s, RAM, 1, "{\"machine-config\":");
    load_fails("config that is not JSON", load_body(s, m, ""), s, "not a JSON object", NULL);
    write_state(s, RAM, 1, "[1,2]");
    load_fails("config that is an array", load_body(s, m, ""), s, "not a JSON object", NULL);
    write_state(s, RAM, 1, config_json(0, 128, "[]", "[]"));
    load_fails("config with 0 vCPUs", load_body(s, m, ""), s, "`vcpu_count`", NULL);
    write_state(s, RAM, 1, config_json(1, 128, fmt("[%s]", drive_body("rootfs", true, missing)), "[]"));
    load_fails("config naming a missing drive file", load_body(s, m, ""), "Drive file", missing, NULL);
    write_state(s, RAM, 1, config_json(1, 128, "[]", "[{\"iface_id\":\"eth0\",\"host_dev_name\":\"tap0\"}]"));
    load_fails("override of an unknown interface",
               load_body(s, m, ",\"network_overrides\":[{\"iface_id\":\"eth9\",\"host_dev_name\":\"tap9\"}]"),
               "no network interface 'eth9'", NULL, NULL);
    write_state(s, RAM, 1, good);
    load_fails("override with no interfaces",
               load_body(s, m, ",\"network_overrides\":[{\"iface_id\":\"eth0\",\"host_dev_name\":\"tap9\"}]"),
               "no network interface 'eth0'", NULL, NULL);
    /* The header and the description disagree: the description was applied, then compared. */
    write_state(s, RAM, 2, good);
    load_fails("header with 2 vCPUs, config 1", load_body(s, m, ""), s, "2 vCPU(s) and 128 MiB, its configuration 1",
               NULL);
    write_state(s, RAM, 1, config_json(1, 256, "[]", "[]"));
    load_fails("header with 128 MiB, config 256", load_body(s, m, ""), s, "its configuration 1 and 256 MiB", NULL);
}

/* Every file good: the load stops at /dev/kvm, after the description was applied, and rolls all of it back. */
Test(api_snapshot_load, good_files_stop_at_kvm)
{
    char s[128], m[128], serial[128];
    snprintf(s, sizeof(s), "%s", snap_file("state"));
    snprintf(m, sizeof(m), "%s", snap_file("mem"));
    snprintf(serial, sizeof(serial), "%s", snap_file("serial.out"));
    make_sparse(m, RAM);
    /* A stored boot source and logger are not re-applied (Firecracker restores neither). */
    char *cfg = strdup(config_json(1, 128, fmt("[%s]", drive_body("rootfs", true, disk[0])),
                                   "[{\"iface_id\":\"eth0\",\"host_dev_name\":\"tap0\",\"guest_mac\":"
                                   "\"06:00:ac:10:00:02\"}]"));
    cr_assert_not_null(cfg);
    cfg[strlen(cfg) - 1] = '\0';
    write_state(s, RAM, 1,
                fmt("%s,\"boot-source\":{\"kernel_image_path\":\"%s\"},\"logger\":{\"log_path\":\"%s\"}}", cfg, missing,
                    missing));
    free(cfg);
    expect_204("PUT", "/serial", fmt("{\"serial_out_path\":\"%s\"}", serial));
    int fds = open_fds();
    load_fails("good files", load_body(s, m, ""), kvm_frag(), NULL, serial);
    load_fails("good files, resumed, dirty pages tracked",
               load_body(s, m, ",\"resume_vm\":true,\"track_dirty_pages\":true,\"clock_realtime\":true"), kvm_frag(),
               NULL, serial);
    load_fails("good files, deprecated fields",
               fmt("{\"snapshot_path\":\"%s\",\"mem_file_path\":\"%s\",\"enable_diff_snapshots\":true}", s, m),
               kvm_frag(), NULL, serial);
    cr_expect_eq(open_fds(), fds, "a failed load left file descriptors open");
    cr_expect_eq(ctl.latencies.load_snapshot, 0);
    cr_expect_eq(access(missing, F_OK), -1, "the stored logger's file was created");
    /* And the process can still be configured and booted the usual way. */
    expect_204("PUT", "/boot-source", fmt("{\"kernel_image_path\":\"%s\"}", kernel));
    expect_204("PUT", "/drives/rootfs", drive_body("rootfs", true, disk[1]));
    json_t *c = get_json("/vm/config");
    cr_expect_str_eq(str_of(json_array_get(json_object_get(c, "drives"), 0), "path_on_host"), disk[1]);
    json_decref(c);
}

/* What the command line set that no API request does (ctl_take_config) survives a failed load. */
Test(api_snapshot_load, command_line_settings_survive)
{
    char s[128], m[128];
    snprintf(s, sizeof(s), "%s", snap_file("state"));
    snprintf(m, sizeof(m), "%s", snap_file("mem"));
    make_sparse(m, RAM);
    write_state(s, RAM, 1, config_json(1, 128, "[]", "[]"));
    ctl.cfg.host_compat = HOST_COMPAT_OFF;
    ctl.cfg.use_pvh = 0;
    ctl.cfg.decompress = KDECOMP_HOST;
    ctl.cfg.print_stats = 1;
    load_fails("good files", load_body(s, m, ",\"track_dirty_pages\":true"), kvm_frag(), NULL, NULL);
    cr_expect_eq(ctl.cfg.host_compat, HOST_COMPAT_OFF);
    cr_expect_eq(ctl.cfg.use_pvh, 0);
    cr_expect_eq(ctl.cfg.decompress, KDECOMP_HOST);
    cr_expect_eq(ctl.cfg.print_stats, 1);
    cr_expect_eq(ctl.cfg.track_dirty_pages, 0);
}

/*
 * A network override replaces host_dev_name before the description goes
 * through the handlers: seen in the handlers' own check (two NICs on one tap)
 * and in the log line the override writes.
 */
Test(api_snapshot_load, network_override_is_applied)
{
    char s[128], m[128];
    snprintf(s, sizeof(s), "%s", snap_file("state"));
    snprintf(m, sizeof(m), "%s", snap_file("mem"));
    make_sparse(m, RAM);
    write_state(s, RAM, 1,
                config_json(1, 128, "[]",
                            "[{\"iface_id\":\"eth0\",\"host_dev_name\":\"tapa\"},"
                            "{\"iface_id\":\"eth1\",\"host_dev_name\":\"tapb\"}]"));
    load_fails("eth0 moved onto eth1's tap",
               load_body(s, m, ",\"network_overrides\":[{\"iface_id\":\"eth0\",\"host_dev_name\":\"tapb\"}]"),
               "host device name tapb is already in use", NULL, NULL);
    load_fails("eth0 and eth1 swap taps",
               load_body(s, m,
                         ",\"network_overrides\":[{\"iface_id\":\"eth0\",\"host_dev_name\":\"tapb\"},"
                         "{\"iface_id\":\"eth1\",\"host_dev_name\":\"tapa\"}]"),
               kvm_frag(), NULL, NULL);

    write_state(s, RAM, 1, config_json(1, 128, "[]", "[{\"iface_id\":\"eth0\",\"host_dev_name\":\"old\"}]"));
    expect_204("PUT", "/logger", fmt("{\"log_path\":\"%s\",\"level\":\"Info\"}", logfile));
    load_fails("eth0 from tap old to new",
               load_body(s, m, ",\"network_overrides\":[{\"iface_id\":\"eth0\",\"host_dev_name\":\"new\"}]"),
               kvm_frag(), NULL, NULL);
    char log[8192] = "";
    FILE *f = fopen(logfile, "r");
    cr_assert_not_null(f);
    size_t n = fread(log, 1, sizeof(log) - 1, f);
    log[n] = '\0';
    fclose(f);
    cr_expect(strstr(log, "network interface 'eth0' on host tap 'new' (the snapshot's: 'old')"),
              "the log does not show the override: %s", log);
}
