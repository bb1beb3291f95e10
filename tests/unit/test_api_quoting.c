/*
 * Input quoted into errors and log lines (issue #16): a value, path, id, method
 * or request path with a newline, ESC or bytes that are not UTF-8 comes back
 * escaped (\xNN), so one error stays one line and cannot forge another.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/unit/api_fixture.h"
#include "api/config_file.h"
#include "core/log.h"

TestSuite(api_quoting, .init = api_fx_setup, .fini = api_fx_teardown);

/* The last fault_message has no control byte and contains want. */
static void one_line(const char *what, const char *want)
{
    cr_assert_eq(rep.status, 400, "%s: %u %s", what, rep.status, rep.body);
    json_t *o = json_loads(rep.body, 0, NULL);
    const char *m = json_string_value(json_object_get(o, "fault_message"));
    cr_assert(m, "%s: %s", what, rep.body);
    for (const char *p = m; *p; p++)
        cr_assert((unsigned char)*p >= 0x20 && *p != 0x7f, "%s: control byte in '%s'", what, m);
    cr_assert(strstr(m, want), "%s: '%s' lacks '%s'", what, m, want);
    json_decref(o);
}

Test(api_quoting, field_values)
{
    req("PUT", "/logger", "{\"level\": \"I\\nfo\"}");
    one_line("logger level", "I\\x0afo");
    req("PUT", "/actions", "{\"action_type\": \"Start\\u001b[2J\"}");
    one_line("action_type", "Start\\x1b[2J");
    req("PUT", "/machine-config", "{\"vcpu_count\": 1, \"mem_size_mib\": 128, \"cpu_template\": \"T\\r\\nX\"}");
    one_line("cpu_template", "T\\x0d\\x0aX");
}

Test(api_quoting, paths_and_ids)
{
    req("PUT", "/boot-source", "{\"kernel_image_path\": \"/nonexistent/k\\nERROR forged\"}");
    one_line("kernel path", "/nonexistent/k\\x0aERROR forged");
    req("PUT", "/drives/a\x1b", "{\"drive_id\": \"a\\u001b\", \"is_root_device\": false, \"path_on_host\": \"/x\"}");
    one_line("drive id", "a\\x1b");
}

Test(api_quoting, method_and_path_not_found)
{
    req("GET", "/no\npe", NULL);
    one_line("path", "/no\\x0ape");
    req("G\tET", "/", NULL);
    one_line("method", "G\\x09ET");
    req("GET", "/\xff\xfe", NULL);
    one_line("non-UTF-8 path", "/\\xff\\xfe");
    req("GET", "/caf\xc3\xa9", NULL);
    one_line("UTF-8 path kept", "/caf\xc3\xa9");
}

Test(api_quoting, config_file_error_is_one_line)
{
    char path[] = "/tmp/ember-quote-cfg-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    const char cfg[] = "{\"logger\": {\"level\": \"I\\nfo\\u001b[31m\"}}";
    cr_assert_eq(write(fd, cfg, sizeof(cfg) - 1), (ssize_t)sizeof(cfg) - 1);
    close(fd);
    struct errmsg err = {{0}};
    cr_assert_neq(api_load_config_file(&ctl, path, &err), 0);
    unlink(path);
    cr_assert_null(strchr(err.text, '\n'), "%s", err.text);
    cr_assert(strstr(err.text, "I\\x0afo\\x1b[31m"), "%s", err.text);
}

Test(api_quoting, log_lines)
{
    char path[] = "/tmp/ember-quote-log-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    log_set_output(fd, "quote-test", 0);
    log_set_level(LOG_INFO);
    log_warn("drive '%s' gone", "d\nember: error: forged");
    log_warn("ends in a newline\n");
    log_set_output(-1, "anonymous-instance", 0);
    log_set_level(LOG_WARN);
    char buf[1024] = {0};
    cr_assert_gt(pread(fd, buf, sizeof(buf) - 1, 0), 0);
    close(fd);
    unlink(path);
    char *nl = strchr(buf, '\n');
    cr_assert(nl && strstr(buf, "drive 'd\\x0aember: error: forged' gone\n"), "%s", buf);
    cr_assert(strstr(nl + 1, "ends in a newline\n") && !strstr(buf, "\\x0a\n"), "%s", buf);
    cr_assert_null(strchr(strchr(nl + 1, '\n') + 1, '\n'), "three lines: %s", buf);
}
