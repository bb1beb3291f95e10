/* The snapshot API tests' fixture: snapshot files made by hand, and the check that a failed load changed nothing. */
#include "tests/unit/snapshot_fixture.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/snapshot_file.h"
#include "core/state.h"

static char snapdir[64];

void snap_fx_setup(void)
{
    api_fx_setup();
    snprintf(snapdir, sizeof(snapdir), "/tmp/ember-snap-api-XXXXXX");
    cr_assert_not_null(mkdtemp(snapdir));
}

void snap_fx_teardown(void)
{
    DIR *d = opendir(snapdir);
    cr_assert_not_null(d);
    for (struct dirent *e; (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            unlinkat(dirfd(d), e->d_name, e->d_type == DT_DIR ? AT_REMOVEDIR : 0);
    closedir(d);
    rmdir(snapdir);
    api_fx_teardown();
}

const char *snap_file(const char *name) { return fmt("%s/%s", snapdir, name); }

void write_state_raw(const char *path, uint64_t mem_bytes, uint32_t vcpus, const char *section, uint32_t version,
                     const void *text, size_t len, uint32_t declared)
{
    struct state_writer w;
    state_writer_init(&w);
    size_t mark = state_begin(&w, section, version);
    state_put_u32(&w, declared);
    state_put_bytes(&w, text, len);
    cr_assert_eq(state_end(&w, mark), 0);
    struct snapshot_header h;
    snapshot_header_init(&h, mem_bytes, vcpus);
    struct errmsg e;
    cr_assert_eq(snapshot_file_write(path, &h, w.buf, w.len, &e), 0, "snapshot_file_write: %s", e.text);
    state_writer_free(&w);
}

void write_state(const char *path, uint64_t mem_bytes, uint32_t vcpus, const char *json)
{
    write_state_raw(path, mem_bytes, vcpus, "config", 1, json, strlen(json), (uint32_t)strlen(json));
}

void make_sparse(const char *path, uint64_t bytes)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    cr_assert_geq(fd, 0, "cannot create %s", path);
    cr_assert_eq(ftruncate(fd, (off_t)bytes), 0);
    close(fd);
}

const char *config_json(unsigned vcpus, uint64_t mem_mib, const char *drives, const char *nets)
{
    return fmt("{\"machine-config\":{\"vcpu_count\":%u,\"mem_size_mib\":%llu,\"smt\":false,"
               "\"track_dirty_pages\":false,\"huge_pages\":\"None\"},\"drives\":%s,\"network-interfaces\":%s}",
               vcpus, (unsigned long long)mem_mib, drives, nets);
}

const char *load_body(const char *state, const char *mem, const char *extra)
{
    return fmt("{\"snapshot_path\":\"%s\",\"mem_backend\":{\"backend_type\":\"File\",\"backend_path\":\"%s\"}%s}",
               state, mem, extra);
}

void expect_untouched(const char *what, const char *serial)
{
    cr_expect_eq(ctl.state, CTL_NOT_STARTED, "%s: state %s", what, ctl_state_name(&ctl));
    json_t *i = get_json("/");
    cr_expect_str_eq(str_of(i, "state"), "Not started", "%s", what);
    json_decref(i);
    json_t *c = get_json("/vm/config");
    json_t *m = json_object_get(c, "machine-config");
    cr_expect_eq(int_of(m, "vcpu_count"), 1, "%s: vcpu_count", what);
    cr_expect_eq(int_of(m, "mem_size_mib"), 128, "%s: mem_size_mib", what);
    cr_expect_eq(bool_of(m, "smt"), 0, "%s: smt", what);
    cr_expect_eq(bool_of(m, "track_dirty_pages"), 0, "%s: track_dirty_pages", what);
    cr_expect_null(json_object_get(c, "boot-source"), "%s: a boot source appeared", what);
    cr_expect_eq(json_array_size(json_object_get(c, "drives")), 0, "%s: drives left: %s", what, rep.body);
    cr_expect_eq(json_array_size(json_object_get(c, "network-interfaces")), 0, "%s: NICs left", what);
    json_decref(c);
    cr_expect_not(ctl.configured, "%s: ctl.configured is set", what);
    cr_expect_not(ctl.restored, "%s: ctl.restored is set", what);
    cr_expect_eq(ctl.cfg.nr_drives + ctl.cfg.nr_nets, 0, "%s", what);
    if (serial)
        cr_expect(ctl.cfg.serial_out_path && strcmp(ctl.cfg.serial_out_path, serial) == 0,
                  "%s: the serial output was '%s', is '%s'", what, serial,
                  ctl.cfg.serial_out_path ? ctl.cfg.serial_out_path : "(none)");
    else
        cr_expect_null(ctl.cfg.serial_out_path, "%s: a serial output appeared", what);
    /* Still configurable; then back to the same defaults, and unconfigured, for the next load. */
    expect_204("PUT", "/machine-config", "{\"vcpu_count\":2,\"mem_size_mib\":256}");
    c = get_json("/machine-config");
    cr_expect_eq(int_of(c, "vcpu_count"), 2, "%s: PUT /machine-config after the load", what);
    json_decref(c);
    expect_204("PUT", "/machine-config", "{\"vcpu_count\":1,\"mem_size_mib\":128}");
    ctl.configured = false;
}
