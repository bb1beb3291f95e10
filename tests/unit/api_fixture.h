/*
 * The API tests' fixture (tests/unit/api_fixture.c): the request handler is
 * called directly (no socket). No test starts a VM: "after boot" is simulated
 * by setting the controller's state, for requests that are refused or
 * validated before they would touch the (never created) VM. Every error must
 * be a 400 whose body is exactly {"fault_message": "..."} naming what was wrong.
 */
#ifndef EMBER_TEST_API_FIXTURE_H
#define EMBER_TEST_API_FIXTURE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "api/controller.h"
#include "api/server.h"
#include "vm/runner.h"
#include "vm/vm.h"

extern struct runner runner;
extern struct vm *vm;
extern struct controller ctl;
extern struct api_reply rep; /* the last reply */
/* Temporary files: a readable "kernel", an initrd, a text file that is no kernel, a path that does not exist,
 * the log and metrics files, ten disk images. */
extern char kernel[128], initrd[128], notkernel[128], missing[128], logfile[128], metf[128];
extern char disk[10][128];

/* Each suite's .init and .fini. */
void api_fx_setup(void);
void api_fx_teardown(void);

/* One request; returns the status. body NULL means no body. */
unsigned req_len(const char *method, const char *path, const char *body, size_t len);
unsigned req(const char *method, const char *path, const char *body);
/* printf-style text in a ring of 64 buffers (paths of the temporary files go into bodies). */
const char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
/*
 * The last reply is a 400 with exactly {"fault_message": "<text>"} and the
 * text contains frag1 and frag2 (either may be NULL). Non-fatal: reports
 * the request (what) and returns whether it held.
 */
bool fault_ok(const char *what, const char *frag1, const char *frag2);
/* Sends the request and checks the fault. */
bool fault(const char *method, const char *path, const char *body, const char *frag1, const char *frag2);
void expect_204(const char *method, const char *path, const char *body);
/* GET and parse (must be a 200 with an object); the caller decrefs. */
json_t *get_json(const char *path);
json_int_t int_of(json_t *o, const char *key);
int bool_of(json_t *o, const char *key);
const char *str_of(json_t *o, const char *key);
/* A drive body with the given id, root flag and backing file. */
const char *drive_body(const char *id, bool root, const char *path);

/* A request that must fail, and what its fault_message must mention (frag2 may be NULL). */
struct bad_case {
    const char *method, *path, *body, *frag1, *frag2;
};
void run_cases(const struct bad_case *c, unsigned n);

#define N(a) (sizeof(a) / sizeof((a)[0]))

#endif
