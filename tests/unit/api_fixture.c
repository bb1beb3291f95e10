/* The API tests' shared fixture: a controller that never starts a VM, temporary files, request helpers. */
#include "tests/unit/api_fixture.h"

#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/routes.h"

struct runner runner;
struct vm *vm;
struct controller ctl;
struct api_reply rep;

static char dir[64];
char kernel[128], initrd[128], notkernel[128], missing[128], logfile[128], metf[128];
char disk[10][128];

static void make_file(const char *path, const char *content)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "cannot create %s", path);
    fputs(content, f);
    fclose(f);
}

void api_fx_setup(void)
{
    struct errmsg e;
    cr_assert_eq(runner_init(&runner, &e), 0, "runner_init: %s", e.text);
    vm = vm_new();
    cr_assert_not_null(vm);
    ctl_init(&ctl, &runner, vm, "test-id");
    rep.status = 0;
    rep.body = NULL;
    snprintf(dir, sizeof(dir), "/tmp/ember-api-unit-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(kernel, sizeof(kernel), "%s/vmlinux", dir);
    snprintf(initrd, sizeof(initrd), "%s/initrd", dir);
    snprintf(notkernel, sizeof(notkernel), "%s/notakernel", dir);
    snprintf(missing, sizeof(missing), "%s/does-not-exist", dir);
    snprintf(logfile, sizeof(logfile), "%s/log", dir);
    snprintf(metf, sizeof(metf), "%s/metrics", dir);
    make_file(kernel, "not really a kernel, but readable\n");
    make_file(initrd, "initrd\n");
    make_file(notkernel, "this is not a kernel at all\n");
    for (int i = 0; i < 10; i++) {
        snprintf(disk[i], sizeof(disk[i]), "%s/disk%d.img", dir, i);
        make_file(disk[i], "disk");
    }
}

void api_fx_teardown(void)
{
    free(rep.body);
    rep.body = NULL;
    ctl_destroy(&ctl);
    vm_free(vm);
    vm = NULL;
    runner_finish(&runner);
    const char *files[] = {kernel, initrd, notkernel, logfile, metf};
    for (unsigned i = 0; i < sizeof(files) / sizeof(files[0]); i++)
        unlink(files[i]);
    for (int i = 0; i < 10; i++)
        unlink(disk[i]);
    rmdir(dir);
}

unsigned req_len(const char *method, const char *path, const char *body, size_t len)
{
    free(rep.body);
    rep.body = NULL;
    rep.status = 0;
    api_handle(&ctl, method, path, body ? body : "", len, &rep);
    return rep.status;
}

unsigned req(const char *method, const char *path, const char *body)
{
    return req_len(method, path, body, body ? strlen(body) : 0);
}

const char *fmt(const char *f, ...)
{
    static char buf[64][4096]; /* a ring: a case table uses many at once */
    static int n;
    char *b = buf[n++ % 64];
    va_list ap;
    va_start(ap, f);
    vsnprintf(b, sizeof(buf[0]), f, ap);
    va_end(ap);
    return b;
}

bool fault_ok(const char *what, const char *frag1, const char *frag2)
{
    bool ok = rep.status == 400;
    cr_expect(ok, "%s: status %u, want 400 (body %s)", what, rep.status, rep.body ? rep.body : "(none)");
    if (!rep.body) {
        cr_expect(false, "%s: no body; want {\"fault_message\": ...}", what);
        return false;
    }
    json_error_t je;
    json_t *o = json_loads(rep.body, 0, &je);
    if (!o) {
        cr_expect(false, "%s: body is not JSON: %s", what, rep.body);
        return false;
    }
    json_t *m = json_object_get(o, "fault_message");
    bool shape = json_is_object(o) && json_object_size(o) == 1 && json_is_string(m);
    cr_expect(shape, "%s: body %s is not exactly {\"fault_message\": string}", what, rep.body);
    ok &= shape;
    const char *text = json_is_string(m) ? json_string_value(m) : "";
    if (frag1 && !strstr(text, frag1)) {
        cr_expect(false, "%s: fault_message '%s' should mention '%s'", what, text, frag1);
        ok = false;
    }
    if (frag2 && !strstr(text, frag2)) {
        cr_expect(false, "%s: fault_message '%s' should mention '%s'", what, text, frag2);
        ok = false;
    }
    json_decref(o);
    return ok;
}

bool fault(const char *method, const char *path, const char *body, const char *frag1, const char *frag2)
{
    char what[600];
    snprintf(what, sizeof(what), "%s %.100s %.200s", method, path, body ? body : "(no body)");
    req(method, path, body);
    return fault_ok(what, frag1, frag2);
}

void expect_204(const char *method, const char *path, const char *body)
{
    unsigned st = req(method, path, body);
    cr_expect_eq(st, 204, "%s %s %s: status %u (body %s)", method, path, body ? body : "", st,
                 rep.body ? rep.body : "(none)");
    cr_expect_null(rep.body, "%s %s: a 204 has no body, got %s", method, path, rep.body);
}

json_t *get_json(const char *path)
{
    unsigned st = req("GET", path, NULL);
    cr_assert_eq(st, 200, "GET %s: status %u (body %s)", path, st, rep.body ? rep.body : "(none)");
    cr_assert_not_null(rep.body);
    json_error_t je;
    json_t *o = json_loads(rep.body, 0, &je);
    cr_assert_not_null(o, "GET %s: body is not JSON: %s", path, rep.body);
    cr_assert(json_is_object(o), "GET %s: body is not an object: %s", path, rep.body);
    return o;
}

json_int_t int_of(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    cr_assert(json_is_integer(v), "'%s' is not an integer", key);
    return json_integer_value(v);
}

int bool_of(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    cr_assert(json_is_boolean(v), "'%s' is not a boolean", key);
    return json_is_true(v);
}

const char *str_of(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    cr_assert(json_is_string(v), "'%s' is not a string", key);
    return json_string_value(v);
}

const char *drive_body(const char *id, bool root, const char *path)
{
    return fmt("{\"drive_id\":\"%s\",\"is_root_device\":%s,\"path_on_host\":\"%s\"}", id, root ? "true" : "false",
               path);
}

void run_cases(const struct bad_case *c, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        fault(c[i].method, c[i].path, c[i].body, c[i].frag1, c[i].frag2);
}
