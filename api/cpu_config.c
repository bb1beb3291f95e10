#include "api/cpu_config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/fields.h"
#include "core/log.h"
#include "core/path_open.h"

#define MAX_CPU_CONFIG_FILE (1 << 20) /* a template file is a few KiB; more is not one */

/* "Invalid value for field `<field>`: <reason>", the reason formatted. */
static int bad_field(struct errmsg *e, const char *kind, const char *field, const char *fmt, ...)
{
    char reason[sizeof(e->text)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    return err_set(e, -EINVAL, "Invalid %s for field `%s`: %s", kind, field, reason);
}

static json_t *array_field(json_t *o, const char *key, const char *field, struct errmsg *e, int *rc)
{
    json_t *v = json_object_get(o, key);
    *rc = 0;
    if (!v || json_is_null(v))
        return NULL;
    if (!json_is_array(v))
        *rc = bad_field(e, "type", field, "expected an array.");
    return v;
}

/* A string field holding a number ("0x..", "0b.." or decimal) up to max. */
static int number_field(json_t *o, const char *key, const char *field, uint64_t max, uint64_t *out, struct errmsg *e)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return err_set(e, -EINVAL, "missing field `%s`", field);
    if (!json_is_string(v))
        return bad_field(e, "type", field, "expected a string such as \"0x7\".");
    struct errmsg why;
    if (cpu_number_parse(json_string_value(v), max, out, &why))
        return bad_field(e, "value", field, "%s.", why.text);
    return 0;
}

static int bitmap_field(json_t *o, const char *field, unsigned bits, uint64_t *mask, uint64_t *value, struct errmsg *e)
{
    json_t *v = json_object_get(o, "bitmap");
    if (!v || json_is_null(v))
        return err_set(e, -EINVAL, "missing field `%s`", field);
    if (!json_is_string(v))
        return bad_field(e, "type", field, "expected a string \"0b\" and %u characters of 0, 1 and x.", bits);
    struct errmsg why;
    if (strlen(json_string_value(v)) != json_string_length(v) ||
        cpu_bitmap_parse(json_string_value(v), bits, mask, value, &why))
        return bad_field(e, "value", field, "%s.",
                         strlen(json_string_value(v)) != json_string_length(v) ? "contains a NUL character" : why.text);
    return 0;
}

static int check_keys(json_t *o, const char *field, const char *const *keys, struct errmsg *e)
{
    if (!json_is_object(o))
        return bad_field(e, "type", field, "expected an object.");
    struct errmsg why;
    if (field_check_known(o, keys, &why))
        return err_set(e, -EINVAL, "`%s`: %s", field, why.text);
    return 0;
}

static int parse_caps(json_t *arr, struct kvm_cap_modifier *caps, struct errmsg *e)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        char field[64];
        snprintf(field, sizeof(field), "kvm_capabilities[%zu]", i);
        if (!json_is_string(v))
            return bad_field(e, "type", field, "expected a string such as \"121\" or \"!121\".");
        const char *s = json_string_value(v);
        caps[i].remove = s[0] == '!';
        uint64_t n;
        struct errmsg why;
        const char *digits = s + caps[i].remove;
        if (digits[0] < '0' || digits[0] > '9' || strncmp(digits, "0x", 2) == 0 || strncmp(digits, "0b", 2) == 0 ||
            cpu_number_parse(digits, UINT32_MAX, &n, &why))
            return bad_field(e, "value", field, "'%s' is not a KVM capability number (\"N\" or \"!N\", decimal).", s);
        caps[i].cap = (uint32_t)n;
    }
    return 0;
}

static int parse_register(json_t *o, const char *field, enum cpuid_reg *reg, struct errmsg *e)
{
    static const char *const names[] = {"eax", "ebx", "ecx", "edx"};
    json_t *v = json_object_get(o, "register");
    char f[128];
    snprintf(f, sizeof(f), "%s.register", field);
    if (!v || json_is_null(v))
        return err_set(e, -EINVAL, "missing field `%s`", f);
    for (int r = 0; json_is_string(v) && r < 4; r++)
        if (strcmp(json_string_value(v), names[r]) == 0) {
            *reg = (enum cpuid_reg)r;
            return 0;
        }
    return bad_field(e, "value", f, "Invalid CPUID register. Must be one of [eax, ebx, ecx, edx].");
}

/* One cpuid_modifiers element into rows (one per register modifier, or one that changes no bit). */
static int parse_leaf(json_t *o, size_t index, struct cpuid_modifier *rows, size_t *n, struct errmsg *e)
{
    static const char *const keys[] = {"leaf", "subleaf", "flags", "modifiers", NULL};
    static const char *const reg_keys[] = {"register", "bitmap", NULL};
    char field[64], f[96];
    snprintf(field, sizeof(field), "cpuid_modifiers[%zu]", index);
    int rc = check_keys(o, field, keys, e);
    uint64_t leaf = 0, subleaf = 0, flags = 0;
    snprintf(f, sizeof(f), "%s.leaf", field);
    if (!rc)
        rc = number_field(o, "leaf", f, UINT32_MAX, &leaf, e);
    snprintf(f, sizeof(f), "%s.subleaf", field);
    if (!rc)
        rc = number_field(o, "subleaf", f, UINT32_MAX, &subleaf, e);
    snprintf(f, sizeof(f), "%s.flags", field);
    json_t *fl = rc ? NULL : json_object_get(o, "flags");
    if (!rc && (!fl || json_is_null(fl)))
        rc = err_set(e, -EINVAL, "missing field `%s`", f);
    if (!rc && !json_is_integer(fl))
        rc = bad_field(e, "type", f, "expected an unsigned integer (KVM's CPUID entry flags).");
    if (!rc && (json_integer_value(fl) < 0 || json_integer_value(fl) > (json_int_t)UINT32_MAX))
        rc = bad_field(e, "value", f, "must be between 0 and %u.", UINT32_MAX);
    if (!rc)
        flags = (uint64_t)json_integer_value(fl);
    snprintf(f, sizeof(f), "%s.modifiers", field);
    json_t *mods = rc ? NULL : json_object_get(o, "modifiers");
    if (!rc && (!mods || json_is_null(mods)))
        rc = err_set(e, -EINVAL, "missing field `%s`", f);
    if (!rc && !json_is_array(mods))
        rc = bad_field(e, "type", f, "expected an array.");
    if (rc)
        return rc;
    struct cpuid_modifier row = {.leaf = (uint32_t)leaf, .subleaf = (uint32_t)subleaf, .flags = (uint32_t)flags};
    rows[(*n)++] = row; /* the leaf must exist and takes the flags even with no register modifier */
    size_t i;
    json_t *m;
    json_array_foreach(mods, i, m)
    {
        char mf[96], bf[112];
        snprintf(mf, sizeof(mf), "%s.modifiers[%zu]", field, i);
        snprintf(bf, sizeof(bf), "%s.bitmap", mf);
        uint64_t mask = 0, value = 0;
        if ((rc = check_keys(m, mf, reg_keys, e)) || (rc = parse_register(m, mf, &row.reg, e)) ||
            (rc = bitmap_field(m, bf, 32, &mask, &value, e)))
            return rc;
        row.mask = (uint32_t)mask;
        row.value = (uint32_t)value;
        if (i == 0)
            rows[*n - 1] = row;
        else
            rows[(*n)++] = row;
    }
    return 0;
}

static int parse_msr(json_t *o, size_t index, struct msr_modifier *m, struct errmsg *e)
{
    static const char *const keys[] = {"addr", "bitmap", NULL};
    char field[64], f[96];
    snprintf(field, sizeof(field), "msr_modifiers[%zu]", index);
    int rc = check_keys(o, field, keys, e);
    uint64_t addr = 0;
    snprintf(f, sizeof(f), "%s.addr", field);
    if (!rc)
        rc = number_field(o, "addr", f, UINT32_MAX, &addr, e);
    snprintf(f, sizeof(f), "%s.bitmap", field);
    if (!rc)
        rc = bitmap_field(o, f, 64, &m->mask, &m->value, e);
    m->addr = (uint32_t)addr;
    return rc;
}

int cpu_config_parse(json_t *o, struct cpu_template **out, struct errmsg *e)
{
    /* reg_modifiers and vcpu_features are aarch64's: on x86_64 they are unknown fields, as in Firecracker. */
    static const char *const keys[] = {"kvm_capabilities", "cpuid_modifiers", "msr_modifiers", NULL};
    if (!json_is_object(o))
        return err_set(e, -EINVAL, "the CPU configuration must be a JSON object");
    int rc = field_check_known(o, keys, e);
    if (rc)
        return rc;
    int r1, r2, r3;
    json_t *caps = array_field(o, "kvm_capabilities", "kvm_capabilities", e, &r1);
    json_t *leaves = r1 ? NULL : array_field(o, "cpuid_modifiers", "cpuid_modifiers", e, &r2);
    json_t *msrs = r1 || r2 ? NULL : array_field(o, "msr_modifiers", "msr_modifiers", e, &r3);
    if (r1 || r2 || r3)
        return -EINVAL;
    size_t n_rows = 0;
    size_t i;
    json_t *v;
    json_array_foreach(leaves, i, v)
    {
        json_t *mods = json_is_object(v) ? json_object_get(v, "modifiers") : NULL;
        n_rows += json_is_array(mods) && json_array_size(mods) ? json_array_size(mods) : 1;
    }
    struct cpu_template *t = calloc(1, sizeof(*t));
    struct cpuid_modifier *rows = calloc(n_rows ? n_rows : 1, sizeof(*rows));
    struct msr_modifier *m = calloc(json_array_size(msrs) + 1, sizeof(*m));
    struct kvm_cap_modifier *c = calloc(json_array_size(caps) + 1, sizeof(*c));
    if (t) {
        t->name = "custom";
        t->cpuid = rows, t->msrs = m, t->caps = c;
    }
    if (!t || !rows || !m || !c) {
        if (!t)
            free(rows), free(m), free(c);
        cpu_template_free(t);
        return err_set(e, -ENOMEM, "out of memory");
    }
    rc = caps ? parse_caps(caps, c, e) : 0;
    t->n_caps = json_array_size(caps);
    json_array_foreach(leaves, i, v)
    {
        if (rc || (rc = parse_leaf(v, i, rows, &t->n_cpuid, e)))
            break;
    }
    json_array_foreach(msrs, i, v)
    {
        if (rc || (rc = parse_msr(v, i, &m[i], e)))
            break;
        t->n_msrs = i + 1;
    }
    if (rc) {
        cpu_template_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

int cpu_template_check_request(const char *name, const char *vendor, enum cpu_template_id *id, struct errmsg *e)
{
    char host[13];
    if (!vendor) {
        host_cpu_vendor(host);
        vendor = host;
    }
    if (strcmp(name, "V1N1") == 0)
        return err_set(e, -EINVAL,
                       "Invalid value for field `cpu_template`: V1N1 is an aarch64 (ARM) template; this "
                       "host is x86_64.");
    if (cpu_template_from_name(name, id))
        return err_set(e, -EINVAL,
                       "Invalid value for field `cpu_template`: '%s' must be one of None, C3, T2, T2S, T2CL, T2A.",
                       name);
    const struct cpu_template *t = cpu_template_static(*id);
    struct errmsg why;
    if (t && cpu_template_check_vendor(t, vendor, &why))
        return err_set(e, -EINVAL, "Invalid value for field `cpu_template`: %s", why.text);
    return 0;
}

int ctl_set_cpu_template(struct controller *c, enum cpu_template_id id, struct errmsg *err)
{
    int rc = ctl_check_phase(c, CTL_PRE_BOOT, err);
    if (rc)
        return rc;
    /* The custom template stays allocated (a snapshot load's copy of the config may still point to it). */
    c->cfg.cpu_template = id;
    return 0;
}

int ctl_set_cpu_config(struct controller *c, struct cpu_template *t, struct errmsg *err)
{
    if (!t)
        return err_set(err, -EINVAL, "no CPU template");
    int rc = ctl_check_phase(c, CTL_PRE_BOOT, err);
    if (rc) {
        cpu_template_free(t);
        return rc;
    }
    cpu_template_free(c->cfg.cpu_config);
    c->cfg.cpu_config = t;
    c->cfg.cpu_template = CPU_TEMPLATE_CUSTOM;
    log_info("custom CPU template: %zu CPUID, %zu MSR and %zu KVM capability modifiers", t->n_cpuid, t->n_msrs,
             t->n_caps);
    return 0;
}

int api_put_cpu_config(struct controller *c, json_t *body, const char *id, struct errmsg *err)
{
    (void)id;
    struct cpu_template *t = NULL;
    int rc = ctl_check_phase(c, CTL_PRE_BOOT, err);
    if (!rc)
        rc = cpu_config_parse(body, &t, err);
    return rc ? rc : ctl_set_cpu_config(c, t, err);
}

/* The JSON of a template file (path), read without blocking on a FIFO: 0 and *out, or -errno. */
static int load_template_file(const char *path, json_t **out, struct errmsg *err)
{
    struct stat st;
    int fd = path_open_noblock(path, O_RDONLY | O_CLOEXEC, &st);
    if (fd < 0)
        return err_set(err, fd, "CPU template file '%s' cannot be opened: %s", path, strerror(-fd));
    if (!S_ISREG(st.st_mode) || st.st_size > MAX_CPU_CONFIG_FILE) {
        close(fd);
        return err_set(err, -EINVAL, "CPU template file '%s' must be a regular file of at most %d bytes", path,
                       MAX_CPU_CONFIG_FILE);
    }
    json_error_t je;
    *out = json_loadfd(fd, JSON_REJECT_DUPLICATES, &je);
    close(fd);
    if (!*out)
        return err_set(err, -EINVAL, "CPU template file '%s': %s (line %d, column %d)", path, je.text, je.line,
                       je.column);
    return 0;
}

int api_config_cpu_config(struct controller *c, json_t *value, struct errmsg *err)
{
    if (json_is_object(value))
        return api_put_cpu_config(c, value, NULL, err);
    if (!json_is_string(value))
        return err_set(err, -EINVAL, "must be a CPU template object or the path of a file holding one");
    json_t *o = NULL;
    int rc = load_template_file(json_string_value(value), &o, err);
    if (rc)
        return rc;
    rc = api_put_cpu_config(c, o, NULL, err);
    json_decref(o);
    return rc;
}
