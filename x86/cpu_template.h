/*
 * CPU templates: what the guest's CPUID and MSRs say, changed bit by bit from
 * what the host's KVM offers, so that hosts of different CPU models show one
 * CPU model to their guests (a snapshot taken on one then restores on another).
 * Firecracker's static templates (T2, T2S, C3, T2CL on Intel; T2A on AMD) and
 * custom ones (PUT /cpu-config) are the same thing here: a list of register
 * filters. Pure functions on a struct kvm_cpuid2 and MSR values, no KVM calls.
 */
#ifndef EMBER_CPU_TEMPLATE_H
#define EMBER_CPU_TEMPLATE_H

#include <linux/kvm.h>
#include <stddef.h>
#include <stdint.h>

#include "core/errmsg.h"

enum cpu_template_id {
    CPU_TEMPLATE_NONE,
    CPU_TEMPLATE_C3,
    CPU_TEMPLATE_T2,
    CPU_TEMPLATE_T2S,
    CPU_TEMPLATE_T2CL,
    CPU_TEMPLATE_T2A,
    CPU_TEMPLATE_CUSTOM, /* PUT /cpu-config's: no name, no static data */
};

enum cpuid_reg { CPUID_EAX, CPUID_EBX, CPUID_ECX, CPUID_EDX };

#define CPU_VENDOR_INTEL "GenuineIntel"
#define CPU_VENDOR_AMD "AuthenticAMD"

/* In one CPUID leaf/subleaf: the bits of `mask` take their value from `value`, the others stay the host's. The leaf's
 * KVM flags become `flags`. mask 0 changes no bit (a leaf the template names without a register). */
struct cpuid_modifier {
    uint32_t leaf, subleaf, flags;
    enum cpuid_reg reg;
    uint32_t mask, value;
};

/* The same for one MSR's 64 bits. */
struct msr_modifier {
    uint32_t addr;
    uint64_t mask, value;
};

/* A KVM capability a custom template requires (or, remove, says need not be checked). */
struct kvm_cap_modifier {
    uint32_t cap;
    int remove;
};

struct cpu_template {
    const char *name;   /* "T2A", or "custom" */
    const char *vendor; /* the only host vendor it applies to; NULL: any (custom templates) */
    const struct cpuid_modifier *cpuid;
    size_t n_cpuid;
    const struct msr_modifier *msrs;
    size_t n_msrs;
    const struct kvm_cap_modifier *caps;
    size_t n_caps;
};

/* "None", "C3", "T2", "T2S", "T2CL" or "T2A" (Firecracker's spelling); 0 or -EINVAL. */
int cpu_template_from_name(const char *name, enum cpu_template_id *id);
/* Firecracker's name of a static template ("None" for none, "custom" for CPU_TEMPLATE_CUSTOM). */
const char *cpu_template_name(enum cpu_template_id id);
/* The built-in template; NULL for CPU_TEMPLATE_NONE and CPU_TEMPLATE_CUSTOM. */
const struct cpu_template *cpu_template_static(enum cpu_template_id id);

/* The vendor string of CPUID leaf 0 in c ("" when c has no leaf 0). */
void cpuid_vendor(const struct kvm_cpuid2 *c, char vendor[13]);
/* The vendor string of the CPU this process runs on (KVM reports the same one to guests). */
void host_cpu_vendor(char vendor[13]);
/* 0 when t applies to a host of that vendor, else -EINVAL naming both. */
int cpu_template_check_vendor(const struct cpu_template *t, const char *vendor, struct errmsg *err);

/* The entry for leaf/subleaf (the subleaf only counts where KVM flags it significant), or NULL. */
struct kvm_cpuid_entry2 *cpuid_find(struct kvm_cpuid2 *c, uint32_t leaf, uint32_t subleaf);
/*
 * Applies t's CPUID modifiers to c in order. -EINVAL (c partly changed) when t is for another vendor or names a
 * leaf/subleaf c does not have: as in Firecracker, a template cannot add a leaf KVM does not offer.
 */
int cpu_template_apply_cpuid(const struct cpu_template *t, struct kvm_cpuid2 *c, struct errmsg *err);
static inline uint64_t msr_modifier_apply(const struct msr_modifier *m, uint64_t v)
{
    return (v & ~m->mask) | (m->value & m->mask);
}

/*
 * Firecracker's bitmap strings: an optional "0b", then at most `bits` characters, most significant first, each
 * '0' (clear), '1' (set) or 'x' (keep), '_' anywhere as a separator. Fewer characters leave the high bits kept.
 * 0, or -EINVAL with the reason in err (the caller names the field).
 */
int cpu_bitmap_parse(const char *text, unsigned bits, uint64_t *mask, uint64_t *value, struct errmsg *err);
/* A number as a string: "0x" hex, "0b" binary or decimal digits, at most max. 0 or -EINVAL with the reason. */
int cpu_number_parse(const char *text, uint64_t max, uint64_t *out, struct errmsg *err);

/* A custom template's storage (from api/cpu_config.c): frees its arrays and itself. NULL is fine. */
void cpu_template_free(struct cpu_template *t);

#endif
