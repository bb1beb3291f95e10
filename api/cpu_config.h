/*
 * CPU templates through the API: machine-config's cpu_template (a static one,
 * for this host's vendor) and PUT /cpu-config (Firecracker's custom template
 * JSON, x86_64 part), both before boot; the last one set is the VM's.
 */
#ifndef EMBER_API_CPU_CONFIG_H
#define EMBER_API_CPU_CONFIG_H

#include <jansson.h>

#include "api/controller.h"
#include "core/errmsg.h"
#include "x86/cpu_template.h"

/*
 * Firecracker's CustomCpuTemplate object: kvm_capabilities ["N" | "!N"], cpuid_modifiers [{leaf, subleaf, flags,
 * modifiers: [{register, bitmap}]}], msr_modifiers [{addr, bitmap}]. Strict: unknown fields, wrong types and bad
 * numbers or bitmaps are refused with a message naming the field (e.g. `cpuid_modifiers[0].modifiers[1].bitmap`).
 * 0 and *out (cpu_template_free) or -EINVAL.
 */
int cpu_config_parse(json_t *o, struct cpu_template **out, struct errmsg *e);
/* machine-config's cpu_template: a name (cpu_template_from_name) whose vendor is this host's (vendor: NULL for the
 * CPU this runs on). 0 and *id, or -EINVAL with Firecracker-style messages. */
int cpu_template_check_request(const char *name, const char *vendor, enum cpu_template_id *id, struct errmsg *e);

/* Pre-boot: the VM gets static template id (CPU_TEMPLATE_NONE: none), replacing a custom one. */
int ctl_set_cpu_template(struct controller *c, enum cpu_template_id id, struct errmsg *err);
/* Pre-boot: the VM gets custom template t (c owns it from here, also on error). */
int ctl_set_cpu_config(struct controller *c, struct cpu_template *t, struct errmsg *err);

/* PUT /cpu-config. */
int api_put_cpu_config(struct controller *c, json_t *body, const char *id, struct errmsg *err);
/* A config file's "cpu-config": the template object, or the path of a file holding it (as Firecracker's). */
int api_config_cpu_config(struct controller *c, json_t *value, struct errmsg *err);

#endif
