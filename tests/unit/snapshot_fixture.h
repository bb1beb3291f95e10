/*
 * The snapshot API tests' fixture (tests/unit/snapshot_fixture.c), on top of
 * api_fixture.h: a directory for state and memory files, state files written
 * as vm/snapshot.c writes them (a "config" section first: u32 length + the
 * description's JSON text), and the check that a failed load left the
 * controller exactly as it was. No KVM: a load whose files are all good fails
 * at /dev/kvm, after the description was applied.
 */
#ifndef EMBER_TEST_SNAPSHOT_FIXTURE_H
#define EMBER_TEST_SNAPSHOT_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include "tests/unit/api_fixture.h"

#define MiB (1ull << 20)

/* api_fx_setup plus an empty directory for the snapshot files (and the reverse). */
void snap_fx_setup(void);
void snap_fx_teardown(void);
/* A path in that directory (from fmt's ring). */
const char *snap_file(const char *name);

/*
 * Writes a state file through snapshot_file_write: the header (mem_bytes,
 * vcpus), then a section `section` (version `version`) holding `declared` as
 * u32 and the len bytes of text. Nothing else follows: the load stops at
 * /dev/kvm before it would read the VM's and vCPUs' sections.
 */
void write_state_raw(const char *path, uint64_t mem_bytes, uint32_t vcpus, const char *section, uint32_t version,
                     const void *text, size_t len, uint32_t declared);
/* The usual case: a well-formed "config" section holding json. */
void write_state(const char *path, uint64_t mem_bytes, uint32_t vcpus, const char *json);
/* A sparse file of `bytes` bytes. */
void make_sparse(const char *path, uint64_t bytes);
/* A description as GET /vm/config writes it: vcpus, mem_mib, drives and NICs given as JSON array text. */
const char *config_json(unsigned vcpus, uint64_t mem_mib, const char *drives, const char *nets);
/* PUT /snapshot/load's body for the File backend (extra: more members, "" for none, e.g. ",\"resume_vm\":true"). */
const char *load_body(const char *state, const char *mem, const char *extra);

/*
 * After a failed load: state Not started, GET /vm/config shows the default
 * machine and no boot source, drives or NICs, ctl.configured and ctl.restored
 * are false, the serial output is still `serial` (NULL: none). Then proves
 * that PUT /machine-config still works and puts the controller back (the same
 * default values, ctl.configured cleared by hand) so that a table of failing
 * loads can run in one test. `what` names the case in failure reports.
 */
void expect_untouched(const char *what, const char *serial);

#endif
