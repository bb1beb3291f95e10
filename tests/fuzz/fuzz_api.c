/*
 * The API's request path below HTTP: the route table, body validation, the
 * handlers and the controller's state machine, driven as tests/unit/api_fixture.c
 * does (a controller that never starts a VM). One input is up to 16 requests,
 * separated by NUL bytes, each "METHOD /path\nBODY". Bodies are defused
 * (fuzz_defuse.h); InstanceStart and /snapshot/load, which would create a VM,
 * are skipped. Every answer must be a 2xx, or a 4xx/5xx with exactly
 * {"fault_message": "<one line>"}.
 */
#include <fcntl.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/controller.h"
#include "api/routes.h"
#include "core/log.h"
#include "tests/fuzz/fuzz_defuse.h"
#include "vm/runner.h"
#include "vm/vm.h"

static struct runner runner;
static int devnull = -1; /* where the handlers' log lines go: a PUT /logger without a path raises the level only */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    struct errmsg e;
    devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (devnull < 0) {
        perror("/dev/null");
        abort();
    }
    log_set_output(devnull, "fuzz", 0);
    log_set_level(LOG_ERROR);
    json_object_seed(1);
    if (runner_init(&runner, &e)) {
        fprintf(stderr, "fuzz_api: runner_init: %s\n", e.text);
        abort();
    }
    return 0;
}

static void check_reply(const struct api_reply *r)
{
    if (r->status >= 200 && r->status < 300)
        return;
    json_t *o = r->body ? json_loads(r->body, 0, NULL) : NULL;
    const char *m = json_string_value(json_object_get(o, "fault_message"));
    if (!o || json_object_size(o) != 1 || !m) {
        fprintf(stderr, "status %u without a fault_message body: %s\n", r->status, r->body ? r->body : "(none)");
        abort();
    }
    for (const char *p = m; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            fprintf(stderr, "control byte in a fault_message: %s\n", r->body);
            abort();
        }
    json_decref(o);
}

/*
 * A body that would start a VM: skip it. Otherwise the defused body to send, malloc'd, or NULL: send it as is
 * (it is not JSON, or names no file Ember would write: the API then parses the very bytes the fuzzer made).
 */
static bool defuse_body(const char *path, const char *body, size_t len, char **out)
{
    *out = NULL;
    if (!strncmp(path, "/snapshot/load", 14))
        return false;
    json_t *o = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
    if (!o)
        return true;
    const char *action = json_string_value(json_object_get(o, "action_type"));
    bool ok = !action || strcmp(action, "InstanceStart") != 0;
    if (ok && fuzz_defuse(o))
        *out = json_dumps(o, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(o);
    return ok;
}

static void one_request(struct controller *ctl, const char *req, size_t len)
{
    const char *nl = memchr(req, '\n', len);
    size_t head = nl ? (size_t)(nl - req) : len;
    const char *sp = memchr(req, ' ', head);
    if (!sp)
        return;
    char method[32], path[1100];
    size_t mlen = (size_t)(sp - req), plen = head - mlen - 1;
    if (mlen >= sizeof(method) || plen >= sizeof(path))
        return;
    memcpy(method, req, mlen);
    method[mlen] = '\0';
    memcpy(path, sp + 1, plen);
    path[plen] = '\0';
    if (strlen(method) != mlen || strlen(path) != plen) /* the HTTP layer never passes a NUL in these */
        return;
    const char *body = nl ? nl + 1 : "";
    size_t blen = nl ? len - head - 1 : 0;
    char *defused;
    if (!defuse_body(path, body, blen, &defused))
        return;
    struct api_reply r = {0, NULL};
    api_handle(ctl, method, path, defused ? defused : body, defused ? strlen(defused) : blen, &r);
    check_reply(&r);
    free(r.body);
    free(defused);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct controller ctl;
    struct vm *vm = vm_new();
    if (!vm)
        return 0;
    ctl_init(&ctl, &runner, vm, "fuzz");
    const char *p = (const char *)data, *end = p + size;
    for (int i = 0; i < 16 && p < end; i++) {
        const char *z = memchr(p, '\0', (size_t)(end - p));
        size_t n = z ? (size_t)(z - p) : (size_t)(end - p);
        one_request(&ctl, p, n);
        p += n + 1;
    }
    ctl_destroy(&ctl);
    vm_free(vm);
    log_set_output(devnull, "fuzz", 0); /* a defused PUT /logger pointed it at its own /dev/null fd, now closed */
    log_set_level(LOG_ERROR);
    return 0;
}
