#include "x86/cpu_template.h"

#include <cpuid.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/*
 * The static templates, as Firecracker defines them (docs/cpu-templates.md has
 * what each bit is). Each row: leaf, subleaf, KVM flags, register, the bits the
 * template decides, their values. T2, T2S, T2CL and T2A share their leaf 1, 7
 * and 0xD rows: the instruction set of an AWS T2 (Haswell-EP) guest. T2S is T2
 * plus an MSR.
 */
#define SIG 1 /* KVM_CPUID_FLAG_SIGNIFCANT_INDEX: the leaf has subleaves */

static const struct cpuid_modifier t2_cpuid[] = {
    /* family 6 model 0x3F stepping 2 */
    {0x1, 0, 0, CPUID_EAX, 0x0fff3fff, 0x000306f2},
    /* off: DTES64 MONITOR DS-CPL VMX SMX EIST TM2 CNXT-ID SDBG xTPR PDCM DCA */
    {0x1, 0, 0, CPUID_ECX, 0x0004cdfc, 0},
    /* on: MCE MTRR; off: PSN DS ACPI SS TM IA64 PBE */
    {0x1, 0, 0, CPUID_EDX, 0xe8641080, 0x00001080},
    /* on: ERMS; off: SGX HLE RTM RDT-M MPX RDT-A RDSEED ADX CLFLUSHOPT CLWB PT SHA, all AVX-512 */
    {0x7, 0, SIG, CPUID_EBX, 0xffefda14, 0x00000200},
    /* off: UMIP PKU OSPKE GFNI VAES VPCLMULQDQ LA57 RDPID SGX_LC, the AVX-512 extensions */
    {0x7, 0, SIG, CPUID_ECX, 0x40415f5e, 0},
    /* off: AVX512_4VNNIW AVX512_4FMAPS FSRM AVX512_VP2INTERSECT */
    {0x7, 0, SIG, CPUID_EDX, 0x0000011c, 0},
    /* XSAVE components off: MPX (3, 4), AVX-512 (5-7), PKRU (9) */
    {0xd, 0, SIG, CPUID_EAX, 0x000002f8, 0},
    /* off: XSAVEC XGETBV1 XSAVES */
    {0xd, 1, SIG, CPUID_EAX, 0x0000000e, 0},
    /* off: PREFETCHW, MONITORX */
    {0x80000001, 0, 0, CPUID_ECX, 0x20000100, 0},
    /* off: 1 GiB pages */
    {0x80000001, 0, 0, CPUID_EDX, 0x04000000, 0},
    /* off: WBNOINVD */
    {0x80000008, 0, 0, CPUID_EBX, 0x00000200, 0},
};

/* T2's first eight rows, then more of AMD's extended leaf off. */
static const struct cpuid_modifier t2cl_cpuid[] = {
    {0x1, 0, 0, CPUID_EAX, 0x0fff3fff, 0x000306f2},
    {0x1, 0, 0, CPUID_ECX, 0x0004cdfc, 0},
    {0x1, 0, 0, CPUID_EDX, 0xe8641080, 0x00001080},
    {0x7, 0, SIG, CPUID_EBX, 0xffefda14, 0x00000200},
    {0x7, 0, SIG, CPUID_ECX, 0x40415f5e, 0},
    {0x7, 0, SIG, CPUID_EDX, 0x0000011c, 0},
    {0xd, 0, SIG, CPUID_EAX, 0x000002f8, 0},
    {0xd, 1, SIG, CPUID_EAX, 0x0000000e, 0},
    /* off: SSE4A MisAlignSse PREFETCHW MONITORX */
    {0x80000001, 0, 0, CPUID_ECX, 0x200001c0, 0},
    /* off: MmxExt, the AMD copies of MMX and FXSR, FFXSR, 1 GiB pages */
    {0x80000001, 0, 0, CPUID_EDX, 0x07c00000, 0},
    /* off: WBNOINVD */
    {0x80000008, 0, 0, CPUID_EBX, 0x00000200, 0},
};

/* T2's first eight rows (an AMD guest with T2CL's instruction set), then AMD's extended leaves. */
static const struct cpuid_modifier t2a_cpuid[] = {
    {0x1, 0, 0, CPUID_EAX, 0x0fff3fff, 0x000306f2},
    {0x1, 0, 0, CPUID_ECX, 0x0004cdfc, 0},
    {0x1, 0, 0, CPUID_EDX, 0xe8641080, 0x00001080},
    {0x7, 0, SIG, CPUID_EBX, 0xffefda14, 0x00000200},
    {0x7, 0, SIG, CPUID_ECX, 0x40415f5e, 0},
    {0x7, 0, SIG, CPUID_EDX, 0x0000011c, 0},
    {0xd, 0, SIG, CPUID_EAX, 0x000002f8, 0},
    {0xd, 1, SIG, CPUID_EAX, 0x0000000e, 0},
    /* off: SVM SSE4A MisAlignSse 3DNowPrefetch MONITORX */
    {0x80000001, 0, 0, CPUID_ECX, 0x200001c4, 0},
    /* off: MmxExt FFXSR Page1GB */
    {0x80000001, 0, 0, CPUID_EDX, 0x06400000, 0},
    /* off: CLZERO WBNOINVD; on: RstrFpErrPtrs IbrsPreferred IbrsSameMode EferLmsleUnsupported */
    {0x80000008, 0, 0, CPUID_EBX, 0x001c0205, 0x001c0004},
};

/* An AWS C3 (Ivy Bridge-EP) guest: T2's set less FMA, MOVBE, AVX2, BMI1/2, INVPCID, LZCNT. */
static const struct cpuid_modifier c3_cpuid[] = {
    /* family 6 model 0x3E stepping 4 */
    {0x1, 0, 0, CPUID_EAX, 0x0fff3fff, 0x000306e4},
    /* off: DTES64 MONITOR DS-CPL VMX TM2 CNXT-ID SDBG FMA xTPR PDCM MOVBE */
    {0x1, 0, 0, CPUID_ECX, 0x0040dd3c, 0},
    /* on: MCE MTRR; off: PSN DS ACPI SS TM PBE */
    {0x1, 0, 0, CPUID_EDX, 0xa8641080, 0x00001080},
    /* off: SGX BMI1 HLE AVX2 BMI2 INVPCID RTM RDT-M MPX RDT-A RDSEED ADX CLFLUSHOPT CLWB PT SHA, all AVX-512 */
    {0x7, 0, SIG, CPUID_EBX, 0xffafdd3c, 0},
    /* off: AVX512_VBMI UMIP PKU OSPKE AVX512_VNNI AVX512_VPOPCNTDQ LA57 RDPID SGX_LC */
    {0x7, 0, SIG, CPUID_ECX, 0x4041481e, 0},
    /* off: AVX512_4VNNIW AVX512_4FMAPS */
    {0x7, 0, SIG, CPUID_EDX, 0x0000000c, 0},
    {0xd, 0, SIG, CPUID_EAX, 0x000002f8, 0},
    {0xd, 1, SIG, CPUID_EAX, 0x0000000e, 0},
    /* off: LZCNT, PREFETCHW */
    {0x80000001, 0, 0, CPUID_ECX, 0x00000120, 0},
    {0x80000001, 0, 0, CPUID_EDX, 0x04000000, 0},
};

#define MSR_IA32_ARCH_CAPABILITIES 0x10a

/* T2S: a fixed IA32_ARCH_CAPABILITIES, the mitigations Skylake and Cascade Lake both have, and FB_CLEAR. */
static const struct msr_modifier t2s_msrs[] = {
    {MSR_IA32_ARCH_CAPABILITIES, ~0ULL, 0x0c0a0c4c},
};
/* T2CL: the host's mitigation bits pass through; the control and reserved bits are cleared. */
static const struct msr_modifier t2cl_msrs[] = {
    {MSR_IA32_ARCH_CAPABILITIES, 0xffffffffe2f51e00ULL, 0},
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const struct cpu_template statics[] = {
    [CPU_TEMPLATE_C3] = {"C3", CPU_VENDOR_INTEL, c3_cpuid, N(c3_cpuid), NULL, 0, NULL, 0},
    [CPU_TEMPLATE_T2] = {"T2", CPU_VENDOR_INTEL, t2_cpuid, N(t2_cpuid), NULL, 0, NULL, 0},
    [CPU_TEMPLATE_T2S] = {"T2S", CPU_VENDOR_INTEL, t2_cpuid, N(t2_cpuid), t2s_msrs, N(t2s_msrs), NULL, 0},
    [CPU_TEMPLATE_T2CL] = {"T2CL", CPU_VENDOR_INTEL, t2cl_cpuid, N(t2cl_cpuid), t2cl_msrs, N(t2cl_msrs), NULL, 0},
    [CPU_TEMPLATE_T2A] = {"T2A", CPU_VENDOR_AMD, t2a_cpuid, N(t2a_cpuid), NULL, 0, NULL, 0},
};

int cpu_template_from_name(const char *name, enum cpu_template_id *id)
{
    if (strcmp(name, "None") == 0) {
        *id = CPU_TEMPLATE_NONE;
        return 0;
    }
    for (unsigned i = 0; i < N(statics); i++)
        if (statics[i].name && strcmp(name, statics[i].name) == 0) {
            *id = (enum cpu_template_id)i;
            return 0;
        }
    return -EINVAL;
}

const char *cpu_template_name(enum cpu_template_id id)
{
    if (id == CPU_TEMPLATE_CUSTOM)
        return "custom";
    return id > CPU_TEMPLATE_NONE && (unsigned)id < N(statics) ? statics[id].name : "None";
}

const struct cpu_template *cpu_template_static(enum cpu_template_id id)
{
    return id > CPU_TEMPLATE_NONE && (unsigned)id < N(statics) ? &statics[id] : NULL;
}

static void vendor_text(uint32_t ebx, uint32_t ecx, uint32_t edx, char vendor[13])
{
    memcpy(vendor, &ebx, 4);
    memcpy(vendor + 4, &edx, 4);
    memcpy(vendor + 8, &ecx, 4);
    vendor[12] = '\0';
}

void cpuid_vendor(const struct kvm_cpuid2 *c, char vendor[13])
{
    vendor[0] = '\0';
    for (uint32_t i = 0; i < c->nent; i++)
        if (c->entries[i].function == 0)
            vendor_text(c->entries[i].ebx, c->entries[i].ecx, c->entries[i].edx, vendor);
}

void host_cpu_vendor(char vendor[13])
{
    unsigned a, b, c, d;
    if (!__get_cpuid(0, &a, &b, &c, &d)) {
        vendor[0] = '\0';
        return;
    }
    vendor_text(b, c, d, vendor);
}

int cpu_template_check_vendor(const struct cpu_template *t, const char *vendor, struct errmsg *err)
{
    if (!t->vendor || strcmp(t->vendor, vendor) == 0)
        return 0;
    const char *host = strcmp(vendor, CPU_VENDOR_AMD) == 0     ? "AMD"
                       : strcmp(vendor, CPU_VENDOR_INTEL) == 0 ? "Intel"
                                                               : "unknown";
    return err_set(err, -EINVAL,
                   "CPU vendor mismatched between actual CPU and CPU template: %s is a template for %s CPUs, this "
                   "host's CPU is %s (%s).",
                   t->name, strcmp(t->vendor, CPU_VENDOR_AMD) == 0 ? "AMD" : "Intel", host,
                   vendor[0] ? vendor : "no vendor string");
}

struct kvm_cpuid_entry2 *cpuid_find(struct kvm_cpuid2 *c, uint32_t leaf, uint32_t subleaf)
{
    for (uint32_t i = 0; i < c->nent; i++)
        if (c->entries[i].function == leaf && c->entries[i].index == subleaf)
            return &c->entries[i];
    return NULL;
}

static uint32_t *cpuid_reg_of(struct kvm_cpuid_entry2 *e, enum cpuid_reg r)
{
    switch (r) {
    case CPUID_EAX: return &e->eax;
    case CPUID_EBX: return &e->ebx;
    case CPUID_ECX: return &e->ecx;
    default: return &e->edx;
    }
}

int cpu_template_apply_cpuid(const struct cpu_template *t, struct kvm_cpuid2 *c, struct errmsg *err)
{
    char vendor[13];
    cpuid_vendor(c, vendor);
    int rc = cpu_template_check_vendor(t, vendor, err);
    if (rc)
        return rc;
    for (size_t i = 0; i < t->n_cpuid; i++) {
        const struct cpuid_modifier *m = &t->cpuid[i];
        struct kvm_cpuid_entry2 *e = cpuid_find(c, m->leaf, m->subleaf);
        if (!e)
            return err_set(err, -EINVAL,
                           "CPU template %s changes CPUID leaf %#x subleaf %#x, which this host's KVM does not offer.",
                           t->name, m->leaf, m->subleaf);
        e->flags = m->flags;
        uint32_t *r = cpuid_reg_of(e, m->reg);
        *r = (*r & ~m->mask) | (m->value & m->mask);
    }
    return 0;
}

int cpu_bitmap_parse(const char *text, unsigned bits, uint64_t *mask, uint64_t *value, struct errmsg *err)
{
    const char *p = strncmp(text, "0b", 2) == 0 ? text + 2 : text;
    uint64_t m = 0, v = 0;
    unsigned n = 0;
    for (const char *q = p; *q; q++) {
        if (*q == '_')
            continue;
        if (*q != '0' && *q != '1' && *q != 'x')
            return err_set(err, -EINVAL, "'%c' at position %zu is not 0, 1, x or _",
                           isprint((unsigned char)*q) ? *q : '?', (size_t)(q - text));
        if (++n > bits)
            return err_set(err, -EINVAL, "more than %u bits", bits);
        m <<= 1;
        v <<= 1;
        if (*q != 'x')
            m |= 1;
        if (*q == '1')
            v |= 1;
    }
    if (n == 0)
        return err_set(err, -EINVAL, "no bits (expected \"0b\" and up to %u characters of 0, 1 and x)", bits);
    *mask = m;
    *value = v;
    return 0;
}

int cpu_number_parse(const char *text, uint64_t max, uint64_t *out, struct errmsg *err)
{
    int base = 10;
    const char *p = text;
    if (strncmp(p, "0x", 2) == 0 || strncmp(p, "0X", 2) == 0)
        base = 16, p += 2;
    else if (strncmp(p, "0b", 2) == 0)
        base = 2, p += 2;
    if (!*p)
        return err_set(err, -EINVAL, "'%s' has no digits", text);
    uint64_t v = 0;
    for (; *p; p++) {
        int d = isdigit((unsigned char)*p) ? *p - '0' : isxdigit((unsigned char)*p) ? tolower(*p) - 'a' + 10 : 99;
        if (d >= base)
            return err_set(err, -EINVAL, "'%s' is not a number (use \"0x\" hex, \"0b\" binary or decimal digits)",
                           text);
        if ((uint64_t)d > max || v > (max - (uint64_t)d) / (uint64_t)base)
            return err_set(err, -EINVAL, "'%s' is over %#llx", text, (unsigned long long)max);
        v = v * (uint64_t)base + (uint64_t)d;
    }
    *out = v;
    return 0;
}

void cpu_template_free(struct cpu_template *t)
{
    if (!t)
        return;
    free((void *)t->cpuid);
    free((void *)t->msrs);
    free((void *)t->caps);
    free(t);
}
