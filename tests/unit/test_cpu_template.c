/* CPU templates: the static ones on synthetic CPUID tables, bitmaps and numbers, and the custom JSON's hostile cases.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/config_file.h"
#include "api/cpu_config.h"
#include "tests/unit/api_fixture.h"
#include "vm/vcpu_state.h"
#include "x86/cpu_template.h"

#define NLEAVES 7
static const uint32_t leaves[NLEAVES][2] = {{0, 0},   {1, 0},          {7, 0},         {0xd, 0},
                                            {0xd, 1}, {0x80000001, 0}, {0x80000008, 0}};

/* A table with the leaves the static templates name, every register `fill`, leaf 0 saying vendor. */
static struct kvm_cpuid2 *table(const char *vendor, uint32_t fill, int nleaves)
{
    struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + NLEAVES * sizeof(c->entries[0]));
    cr_assert_not_null(c);
    c->nent = (uint32_t)nleaves;
    for (int i = 0; i < nleaves; i++) {
        struct kvm_cpuid_entry2 *e = &c->entries[i];
        e->function = leaves[i][0];
        e->index = leaves[i][1];
        e->flags = (e->function == 7 || e->function == 0xd) ? 1 : 0;
        e->eax = e->ebx = e->ecx = e->edx = fill;
    }
    memcpy(&c->entries[0].ebx, vendor, 4);
    memcpy(&c->entries[0].edx, vendor + 4, 4);
    memcpy(&c->entries[0].ecx, vendor + 8, 4);
    c->entries[0].eax = 0x10;
    return c;
}

static const struct cpu_template *must_static(enum cpu_template_id id)
{
    const struct cpu_template *t = cpu_template_static(id);
    cr_assert_not_null(t);
    return t;
}

#define BIT(n) (1u << (n))

Test(cpu_template, t2a_on_amd_clears_and_sets_what_it_names)
{
    struct kvm_cpuid2 *c = table(CPU_VENDOR_AMD, 0xffffffff, NLEAVES);
    struct errmsg e = {{0}};
    cr_assert_eq(cpu_template_apply_cpuid(must_static(CPU_TEMPLATE_T2A), c, &e), 0, "%s", e.text);
    struct kvm_cpuid_entry2 *l1 = cpuid_find(c, 1, 0), *l7 = cpuid_find(c, 7, 0);
    struct kvm_cpuid_entry2 *x1 = cpuid_find(c, 0x80000001, 0), *x8 = cpuid_find(c, 0x80000008, 0);
    cr_expect_eq(l1->eax, 0xf003c6f2, "family 6 model 0x3f stepping 2 under the kept high bits: %#x", l1->eax);
    cr_expect_eq(l1->ebx, 0xffffffff, "a register the template does not name is the host's");
    cr_expect_eq(l1->ecx & (BIT(3) | BIT(5)), 0, "MONITOR and VMX off");
    /* RDSEED ADX CLFLUSHOPT CLWB SHA AVX512F off, SMAP kept, ERMS on. */
    uint32_t off7 = BIT(18) | BIT(19) | BIT(23) | BIT(24) | BIT(29) | BIT(16);
    cr_expect_eq(l7->ebx & off7, 0, "leaf 7 ebx %#x", l7->ebx);
    cr_expect(l7->ebx & BIT(20), "SMAP is not the template's");
    cr_expect(l7->ebx & BIT(9), "ERMS");
    cr_expect_eq(l7->ecx & (BIT(2) | BIT(3) | BIT(9) | BIT(10)), 0, "UMIP PKU VAES VPCLMULQDQ off");
    cr_expect_eq(x1->ecx & (BIT(2) | BIT(6) | BIT(7) | BIT(8) | BIT(29)), 0, "SVM SSE4A MisAlignSse 3DNowPrefetch");
    cr_expect_eq(x1->edx & (BIT(22) | BIT(25) | BIT(26)), 0, "MmxExt FFXSR Page1GB off");
    cr_expect(x1->edx & BIT(0), "the rest of 0x80000001 edx kept");
    cr_expect_eq(x8->ebx & (BIT(0) | BIT(9)), 0, "CLZERO WBNOINVD off");
    cr_expect_eq(cpuid_find(c, 0xd, 1)->eax & 0xe, 0, "XSAVEC XGETBV1 XSAVES off");
    cr_expect_eq(cpuid_find(c, 0xd, 0)->eax & 0x2f8, 0, "MPX, AVX-512 and PKRU state off");
    free(c);

    c = table(CPU_VENDOR_AMD, 0, NLEAVES);
    cr_assert_eq(cpu_template_apply_cpuid(must_static(CPU_TEMPLATE_T2A), c, &e), 0, "%s", e.text);
    cr_expect_eq(cpuid_find(c, 7, 0)->ebx, BIT(9), "only ERMS is set on an empty leaf 7");
    cr_expect_eq(cpuid_find(c, 1, 0)->edx, BIT(7) | BIT(12), "MCE and MTRR set");
    cr_expect_eq(cpuid_find(c, 0x80000008, 0)->ebx, 0x001c0004, "RstrFpErrPtrs, IbrsPreferred/SameMode, Lmsle");
    free(c);
}

Test(cpu_template, wrong_vendor_is_refused_naming_both)
{
    static const enum cpu_template_id intel_only[] = {CPU_TEMPLATE_C3, CPU_TEMPLATE_T2, CPU_TEMPLATE_T2S,
                                                      CPU_TEMPLATE_T2CL};
    struct kvm_cpuid2 *amd = table(CPU_VENDOR_AMD, 0xffffffff, NLEAVES);
    for (unsigned i = 0; i < 4; i++) {
        struct errmsg e = {{0}};
        cr_expect_eq(cpu_template_apply_cpuid(must_static(intel_only[i]), amd, &e), -EINVAL);
        cr_expect(strstr(e.text, "Intel") && strstr(e.text, "AuthenticAMD"), "%s", e.text);
    }
    cr_expect_eq(cpuid_find(amd, 7, 0)->ebx, 0xffffffff, "refused before any change");
    struct kvm_cpuid2 *intel = table(CPU_VENDOR_INTEL, 0xffffffff, NLEAVES);
    struct errmsg e = {{0}};
    cr_expect_eq(cpu_template_apply_cpuid(must_static(CPU_TEMPLATE_T2A), intel, &e), -EINVAL);
    cr_expect(strstr(e.text, "AMD") && strstr(e.text, "GenuineIntel"), "%s", e.text);
    free(amd);
    free(intel);
}

Test(cpu_template, intel_templates_differ_where_firecracker_has_them_differ)
{
    struct errmsg e = {{0}};
    struct kvm_cpuid2 *t2 = table(CPU_VENDOR_INTEL, 0xffffffff, NLEAVES);
    struct kvm_cpuid2 *c3 = table(CPU_VENDOR_INTEL, 0xffffffff, NLEAVES);
    struct kvm_cpuid2 *cl = table(CPU_VENDOR_INTEL, 0xffffffff, NLEAVES);
    cr_assert_eq(cpu_template_apply_cpuid(must_static(CPU_TEMPLATE_T2), t2, &e), 0, "%s", e.text);
    cr_assert_eq(cpu_template_apply_cpuid(must_static(CPU_TEMPLATE_C3), c3, &e), 0, "%s", e.text);
    cr_assert_eq(cpu_template_apply_cpuid(must_static(CPU_TEMPLATE_T2CL), cl, &e), 0, "%s", e.text);
    cr_expect(cpuid_find(t2, 7, 0)->ebx & BIT(5), "T2 keeps AVX2");
    cr_expect_eq(cpuid_find(c3, 7, 0)->ebx & (BIT(3) | BIT(5) | BIT(8)), 0, "C3: no BMI1, AVX2, BMI2");
    cr_expect_eq(cpuid_find(c3, 1, 0)->eax & 0x0fff3fff, 0x000306e4, "C3 is model 0x3e stepping 4");
    cr_expect_eq(cpuid_find(c3, 1, 0)->ecx & (BIT(12) | BIT(22)), 0, "C3: no FMA, MOVBE");
    cr_expect(cpuid_find(t2, 0x80000001, 0)->ecx & BIT(6), "T2 leaves SSE4A to the host");
    cr_expect_eq(cpuid_find(cl, 0x80000001, 0)->ecx & BIT(6), 0, "T2CL clears SSE4A");
    /* T2, T2CL and T2A share their first eight rows (leaves 1, 7 and 0xD), as in Firecracker. */
    for (unsigned i = 0; i < 8; i++) {
        const struct cpuid_modifier *a = &must_static(CPU_TEMPLATE_T2)->cpuid[i];
        const struct cpuid_modifier *b = &must_static(CPU_TEMPLATE_T2CL)->cpuid[i];
        const struct cpuid_modifier *d = &must_static(CPU_TEMPLATE_T2A)->cpuid[i];
        cr_expect(memcmp(a, b, sizeof(*a)) == 0 && memcmp(a, d, sizeof(*a)) == 0, "row %u differs", i);
    }
    cr_expect_eq(must_static(CPU_TEMPLATE_T2)->n_msrs, 0);
    cr_expect_eq(must_static(CPU_TEMPLATE_T2S)->n_cpuid, must_static(CPU_TEMPLATE_T2)->n_cpuid);
    free(t2);
    free(c3);
    free(cl);

    /* T2S fixes ARCH_CAPABILITIES; T2CL keeps the host's mitigation bits and clears the rest. */
    const struct msr_modifier *s = &must_static(CPU_TEMPLATE_T2S)->msrs[0];
    const struct msr_modifier *l = &must_static(CPU_TEMPLATE_T2CL)->msrs[0];
    cr_expect_eq(s->addr, 0x10a);
    cr_expect_eq(msr_modifier_apply(s, ~0ULL), 0x0c0a0c4c);
    cr_expect_eq(msr_modifier_apply(s, 0), 0x0c0a0c4c);
    cr_expect_eq(msr_modifier_apply(l, ~0ULL), ~0xffffffffe2f51e00ULL);
    cr_expect_eq(msr_modifier_apply(l, 0x1), 0x1, "RDCL_NO passes through");
    cr_expect(vcpu_state_msr_wanted(0x10a), "a snapshot carries the MSR T2S and T2CL set");
}

Test(cpu_template, a_leaf_the_host_lacks_is_an_error)
{
    struct kvm_cpuid2 *c = table(CPU_VENDOR_AMD, 0, NLEAVES - 1); /* no 0x80000008 */
    struct errmsg e = {{0}};
    cr_expect_eq(cpu_template_apply_cpuid(must_static(CPU_TEMPLATE_T2A), c, &e), -EINVAL);
    cr_expect(strstr(e.text, "0x80000008") != NULL, "%s", e.text);
    free(c);
}

Test(cpu_template, names)
{
    static const char *const names[] = {"None", "C3", "T2", "T2S", "T2CL", "T2A"};
    for (unsigned i = 0; i < 6; i++) {
        enum cpu_template_id id;
        cr_expect_eq(cpu_template_from_name(names[i], &id), 0, "%s", names[i]);
        cr_expect_str_eq(cpu_template_name(id), names[i]);
        cr_expect_eq(cpu_template_static(id) == NULL, i == 0);
    }
    enum cpu_template_id id;
    cr_expect_eq(cpu_template_from_name("t2", &id), -EINVAL, "names are case-sensitive, as serde's");
    cr_expect_eq(cpu_template_from_name("custom", &id), -EINVAL);
    cr_expect_eq(cpu_template_from_name("", &id), -EINVAL);
    cr_expect_null(cpu_template_static(CPU_TEMPLATE_CUSTOM));
    char v[13];
    host_cpu_vendor(v);
    cr_expect(strcmp(v, CPU_VENDOR_AMD) == 0 || strcmp(v, CPU_VENDOR_INTEL) == 0, "host vendor '%s'", v);
}

Test(cpu_template, bitmaps)
{
    uint64_t m, v;
    struct errmsg e = {{0}};
    cr_assert_eq(cpu_bitmap_parse("0bxxxx000000000011xx00011011110010", 32, &m, &v, &e), 0, "%s", e.text);
    cr_expect_eq(m, 0x0fff3fff); /* the example of Firecracker's docs */
    cr_expect_eq(v, 0x000306f2);
    cr_assert_eq(cpu_bitmap_parse("0bxxxx_0000_0000_0011_xx00_0110_1111_0010", 32, &m, &v, &e), 0, "%s", e.text);
    cr_expect_eq(m, 0x0fff3fff, "underscores separate");
    cr_assert_eq(cpu_bitmap_parse("10x", 32, &m, &v, &e), 0, "no 0b, short: the high bits are kept");
    cr_expect_eq(m, 0x6);
    cr_expect_eq(v, 0x4);
    char b64[70] = "0b";
    memset(b64 + 2, '1', 64);
    b64[66] = '\0';
    cr_assert_eq(cpu_bitmap_parse(b64, 64, &m, &v, &e), 0);
    cr_expect_eq(m, ~0ULL);
    cr_expect_eq(v, ~0ULL);
    cr_expect_eq(cpu_bitmap_parse(b64, 32, &m, &v, &e), -EINVAL, "64 bits for a 32-bit register");
    cr_expect(strstr(e.text, "more than 32 bits") != NULL, "%s", e.text);
    static const char *const bad[] = {"0b", "", "0b0000000000000000000000000000000y", "0b 1", "0bX", "0b2", "0b-1"};
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_expect_eq(cpu_bitmap_parse(bad[i], 32, &m, &v, &e), -EINVAL, "'%s' accepted", bad[i]);
}

Test(cpu_template, numbers)
{
    static const struct {
        const char *text;
        uint64_t value;
    } good[] = {{"0x7", 7}, {"0X1f", 31}, {"0b101", 5}, {"266", 266}, {"0x10a", 266}, {"0xffffffff", 0xffffffff}};
    for (unsigned i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        uint64_t v = 0;
        struct errmsg e = {{0}};
        cr_expect_eq(cpu_number_parse(good[i].text, UINT32_MAX, &v, &e), 0, "%s: %s", good[i].text, e.text);
        cr_expect_eq(v, good[i].value, "%s", good[i].text);
    }
    static const char *const bad[] = {"0x",
                                      "0x100000000",
                                      "4294967296",
                                      "-1",
                                      "+7",
                                      "7a",
                                      "0b2",
                                      " 0x1",
                                      "0x1 ",
                                      "",
                                      "x1",
                                      "0o7",
                                      "99999999999999999999999"};
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint64_t v = 0;
        struct errmsg e = {{0}};
        cr_expect_eq(cpu_number_parse(bad[i], UINT32_MAX, &v, &e), -EINVAL, "'%s' accepted as %llu", bad[i],
                     (unsigned long long)v);
    }
}

static int parse_text(const char *text, struct cpu_template **t, struct errmsg *e)
{
    json_error_t je;
    json_t *o = json_loads(text, JSON_DECODE_ANY, &je);
    cr_assert_not_null(o, "test JSON: %s (%s)", je.text, text);
    int rc = cpu_config_parse(o, t, e);
    json_decref(o);
    return rc;
}

Test(cpu_config, firecrackers_example)
{
    struct cpu_template *t = NULL;
    struct errmsg e = {{0}};
    cr_assert_eq(parse_text("{\"kvm_capabilities\": [\"!56\", \"121\"],"
                            " \"cpuid_modifiers\": [{\"leaf\": \"0x1\", \"subleaf\": \"0x0\", \"flags\": 0,"
                            "   \"modifiers\": [{\"register\": \"eax\", \"bitmap\": "
                            "\"0bxxxx000000000011xx00011011110010\"},"
                            "                   {\"register\": \"edx\", \"bitmap\": \"0b1\"}]},"
                            "  {\"leaf\": \"7\", \"subleaf\": \"0b0\", \"flags\": 1, \"modifiers\": []}],"
                            " \"msr_modifiers\": [{\"addr\": \"0x10a\", \"bitmap\": \"0b" // 64 zeros
                            "0000000000000000000000000000000000000000000000000000000000000000\"}]}",
                            &t, &e),
                 0, "%s", e.text);
    cr_assert_eq(t->n_caps, 2);
    cr_expect(t->caps[0].remove && t->caps[0].cap == 56);
    cr_expect(!t->caps[1].remove && t->caps[1].cap == 121);
    cr_assert_eq(t->n_cpuid, 3, "two register rows and one for the leaf without modifiers");
    cr_expect(t->cpuid[0].leaf == 1 && t->cpuid[0].reg == CPUID_EAX && t->cpuid[0].mask == 0x0fff3fff);
    cr_expect(t->cpuid[1].reg == CPUID_EDX && t->cpuid[1].mask == 1 && t->cpuid[1].value == 1);
    cr_expect(t->cpuid[2].leaf == 7 && t->cpuid[2].flags == 1 && t->cpuid[2].mask == 0);
    cr_assert_eq(t->n_msrs, 1);
    cr_expect(t->msrs[0].addr == 0x10a && t->msrs[0].mask == ~0ULL && t->msrs[0].value == 0);
    cr_expect_null(t->vendor, "a custom template is for any vendor");

    /* Applied over a table: the leaf takes the flags, the registers their bits. */
    struct kvm_cpuid2 *c = table(CPU_VENDOR_AMD, 0xffffffff, NLEAVES);
    cpuid_find(c, 7, 0)->flags = 0;
    cr_assert_eq(cpu_template_apply_cpuid(t, c, &e), 0, "%s", e.text);
    cr_expect_eq(cpuid_find(c, 1, 0)->eax, 0xf003c6f2);
    cr_expect_eq(cpuid_find(c, 7, 0)->flags, 1);
    free(c);
    cpu_template_free(t);

    cr_assert_eq(parse_text("{}", &t, &e), 0, "an empty template is valid");
    cr_expect(t->n_cpuid == 0 && t->n_msrs == 0 && t->n_caps == 0);
    cpu_template_free(t);
}

Test(cpu_config, hostile_documents_name_the_field)
{
    static const struct {
        const char *text, *frag1, *frag2;
    } cases[] = {
        {"[]", "JSON object", NULL},
        {"{\"reg_modifiers\": []}", "unknown field `reg_modifiers`", NULL},
        {"{\"vcpu_features\": []}", "unknown field `vcpu_features`", NULL},
        {"{\"cpuid_modifiers\": {}}", "`cpuid_modifiers`", "array"},
        {"{\"cpuid_modifiers\": [5]}", "`cpuid_modifiers[0]`", "object"},
        {"{\"cpuid_modifiers\": [{\"leaf\": \"0x1\", \"subleaf\": \"0x0\", \"flags\": 0}]}",
         "`cpuid_modifiers[0].modifiers`", "missing"},
        {"{\"cpuid_modifiers\": [{\"leaf\": 1, \"subleaf\": \"0x0\", \"flags\": 0, \"modifiers\": []}]}",
         "`cpuid_modifiers[0].leaf`", "string"},
        {"{\"cpuid_modifiers\": [{\"leaf\": \"0xzz\", \"subleaf\": \"0x0\", \"flags\": 0, \"modifiers\": []}]}",
         "`cpuid_modifiers[0].leaf`", "0xzz"},
        {"{\"cpuid_modifiers\": [{\"leaf\": \"0x1\", \"subleaf\": \"0x100000000\", \"flags\": 0, \"modifiers\": []}]}",
         "`cpuid_modifiers[0].subleaf`", NULL},
        {"{\"cpuid_modifiers\": [{\"leaf\": \"0x1\", \"subleaf\": \"0x0\", \"modifiers\": []}]}",
         "`cpuid_modifiers[0].flags`", "missing"},
        {"{\"cpuid_modifiers\": [{\"leaf\": \"0x1\", \"subleaf\": \"0x0\", \"flags\": -1, \"modifiers\": []}]}",
         "`cpuid_modifiers[0].flags`", NULL},
        {"{\"cpuid_modifiers\": [{\"leaf\": \"0x1\", \"subleaf\": \"0x0\", \"flags\": \"0\", \"modifiers\": []}]}",
         "`cpuid_modifiers[0].flags`", "integer"},
        {"{\"cpuid_modifiers\": [{\"leaf\": \"0x1\", \"subleaf\": \"0x0\", \"flags\": 0, \"modifiers\": [],"
         " \"extra\": 1}]}",
         "cpuid_modifiers[0]", "unknown field `extra`"},
        {"{\"cpuid_modifiers\": [{\"leaf\": \"0x1\", \"subleaf\": \"0x0\", \"flags\": 0, \"modifiers\": "
         "[{\"register\": \"fax\", \"bitmap\": \"0b1\"}]}]}",
         "`cpuid_modifiers[0].modifiers[0].register`", "eax, ebx, ecx, edx"},
        {"{\"cpuid_modifiers\": [{\"leaf\": \"0x1\", \"subleaf\": \"0x0\", \"flags\": 0, \"modifiers\": "
         "[{\"register\": \"eax\", \"bitmap\": \"0b1\"}, {\"register\": \"ebx\", \"bitmap\": "
         "\"0b000000000000000000000000000000000\"}]}]}",
         "`cpuid_modifiers[0].modifiers[1].bitmap`", "more than 32 bits"},
        {"{\"cpuid_modifiers\": [{\"leaf\": \"0x1\", \"subleaf\": \"0x0\", \"flags\": 0, \"modifiers\": "
         "[{\"register\": \"eax\", \"bitmap\": \"0b10z\"}]}]}",
         "`cpuid_modifiers[0].modifiers[0].bitmap`", "'z'"},
        {"{\"cpuid_modifiers\": [{\"leaf\": \"0x1\", \"subleaf\": \"0x0\", \"flags\": 0, \"modifiers\": "
         "[{\"register\": \"eax\", \"bitmap\": 5}]}]}",
         "`cpuid_modifiers[0].modifiers[0].bitmap`", "string"},
        {"{\"cpuid_modifiers\": [{\"leaf\": \"0x1\", \"subleaf\": \"0x0\", \"flags\": 0, \"modifiers\": "
         "[{\"register\": \"eax\"}]}]}",
         "`cpuid_modifiers[0].modifiers[0].bitmap`", "missing"},
        {"{\"msr_modifiers\": [{\"addr\": \"0x10a\"}]}", "`msr_modifiers[0].bitmap`", "missing"},
        {"{\"msr_modifiers\": [{\"bitmap\": \"0b1\"}]}", "`msr_modifiers[0].addr`", "missing"},
        {"{\"msr_modifiers\": [{\"addr\": \"0x10a\", \"bitmap\": \"0b1\"}, {\"addr\": 266, \"bitmap\": \"0b1\"}]}",
         "`msr_modifiers[1].addr`", "string"},
        {"{\"msr_modifiers\": [{\"addr\": \"0x10a\", \"bitmap\": "
         "\"0b00000000000000000000000000000000000000000000000000000000000000000\"}]}",
         "`msr_modifiers[0].bitmap`", "more than 64 bits"},
        {"{\"kvm_capabilities\": [\"abc\"]}", "`kvm_capabilities[0]`", "abc"},
        {"{\"kvm_capabilities\": [\"!\"]}", "`kvm_capabilities[0]`", NULL},
        {"{\"kvm_capabilities\": [\"0x10\"]}", "`kvm_capabilities[0]`", "decimal"},
        {"{\"kvm_capabilities\": [\"121\", 5]}", "`kvm_capabilities[1]`", "string"},
        {"{\"kvm_capabilities\": \"121\"}", "`kvm_capabilities`", "array"},
    };
    for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cpu_template *t = NULL;
        struct errmsg e = {{0}};
        cr_expect_eq(parse_text(cases[i].text, &t, &e), -EINVAL, "accepted: %s", cases[i].text);
        cr_expect_null(t);
        cr_expect(strstr(e.text, cases[i].frag1) != NULL, "%s: message '%s' should mention '%s'", cases[i].text, e.text,
                  cases[i].frag1);
        if (cases[i].frag2)
            cr_expect(strstr(e.text, cases[i].frag2) != NULL, "%s: message '%s' should mention '%s'", cases[i].text,
                      e.text, cases[i].frag2);
    }
}

Test(cpu_config, machine_config_template_names_are_checked_against_the_vendor)
{
    enum cpu_template_id id;
    struct errmsg e = {{0}};
    cr_expect_eq(cpu_template_check_request("T2A", CPU_VENDOR_AMD, &id, &e), 0);
    cr_expect_eq(id, CPU_TEMPLATE_T2A);
    cr_expect_eq(cpu_template_check_request("None", CPU_VENDOR_AMD, &id, &e), 0);
    cr_expect_eq(cpu_template_check_request("T2", CPU_VENDOR_INTEL, &id, &e), 0);
    cr_expect_eq(cpu_template_check_request("T2", CPU_VENDOR_AMD, &id, &e), -EINVAL);
    cr_expect(strstr(e.text, "`cpu_template`") && strstr(e.text, "AMD (AuthenticAMD)"), "%s", e.text);
    cr_expect_eq(cpu_template_check_request("T2A", CPU_VENDOR_INTEL, &id, &e), -EINVAL);
    cr_expect(strstr(e.text, "Intel (GenuineIntel)") != NULL, "%s", e.text);
    cr_expect_eq(cpu_template_check_request("V1N1", CPU_VENDOR_INTEL, &id, &e), -EINVAL);
    cr_expect(strstr(e.text, "aarch64") != NULL, "%s", e.text);
    cr_expect_eq(cpu_template_check_request("T9", CPU_VENDOR_INTEL, &id, &e), -EINVAL);
    cr_expect(strstr(e.text, "None, C3, T2, T2S, T2CL, T2A") != NULL, "%s", e.text);
}

/* ---- through the API (no VM is started: see api_fixture.h) ---- */

TestSuite(api_cpu_config, .init = api_fx_setup, .fini = api_fx_teardown);

/* This host's own template and one for the other vendor. */
static void host_templates(const char **own, const char **other)
{
    char v[13];
    host_cpu_vendor(v);
    bool amd = strcmp(v, CPU_VENDOR_AMD) == 0;
    *own = amd ? "T2A" : "T2";
    *other = amd ? "T2" : "T2A";
}

static const char *machine_get_template(void)
{
    static char name[16];
    json_t *o = get_json("/machine-config");
    json_t *t = json_object_get(o, "cpu_template");
    snprintf(name, sizeof(name), "%s", json_is_string(t) ? json_string_value(t) : "(absent)");
    json_decref(o);
    return name;
}

Test(api_cpu_config, machine_config_templates_and_cpu_config_replace_each_other)
{
    const char *own, *other;
    host_templates(&own, &other);
    cr_expect_str_eq(machine_get_template(), "(absent)", "no template: nothing shown, as Firecracker");
    expect_204("PUT", "/machine-config", fmt("{\"vcpu_count\":1,\"mem_size_mib\":128,\"cpu_template\":\"%s\"}", own));
    cr_expect_str_eq(machine_get_template(), own);
    expect_204("PUT", "/machine-config", "{\"vcpu_count\":2,\"mem_size_mib\":128}");
    cr_expect_str_eq(machine_get_template(), own, "a PUT without cpu_template keeps it (Firecracker's update)");
    fault("PUT", "/machine-config", fmt("{\"vcpu_count\":1,\"mem_size_mib\":128,\"cpu_template\":\"%s\"}", other),
          "`cpu_template`", "CPU vendor mismatched");
    cr_expect_str_eq(machine_get_template(), own, "a refused PUT changes nothing");
    cr_expect_eq(ctl.cfg.vcpus, 2);

    expect_204("PUT", "/cpu-config",
               "{\"cpuid_modifiers\":[{\"leaf\":\"0x7\",\"subleaf\":\"0x0\",\"flags\":1,"
               "\"modifiers\":[{\"register\":\"ebx\",\"bitmap\":\"0bxxxxxxxxxxxx0xxxxxxxxxxxxxxxxxxx\"}]}]}");
    cr_expect_str_eq(machine_get_template(), "(absent)", "a custom template is not shown");
    cr_expect_eq(ctl.cfg.cpu_template, CPU_TEMPLATE_CUSTOM);
    cr_assert_not_null(vm_config_cpu_template(&ctl.cfg));
    cr_expect_eq(vm_config_cpu_template(&ctl.cfg)->cpuid[0].mask, 1u << 19);
    json_t *full = get_json("/vm/config");
    json_t *cc = json_object_get(full, "cpu-config");
    cr_expect(!cc || json_is_null(cc), "GET /vm/config shows no custom template (Firecracker's is null)");
    json_decref(full);

    expect_204("PATCH", "/machine-config", fmt("{\"cpu_template\":\"%s\"}", own));
    cr_expect_str_eq(machine_get_template(), own, "a static template replaces the custom one");
    cr_expect_eq(vm_config_cpu_template(&ctl.cfg), cpu_template_static(ctl.cfg.cpu_template));
    expect_204("PATCH", "/machine-config", "{\"cpu_template\":\"None\"}");
    cr_expect_str_eq(machine_get_template(), "(absent)");
    cr_expect_null(vm_config_cpu_template(&ctl.cfg));
}

Test(api_cpu_config, hostile_bodies_and_phases)
{
    const struct bad_case cases[] = {
        {"PUT", "/cpu-config",
         "{\"cpuid_modifiers\":[{\"leaf\":\"0x7\",\"subleaf\":\"0x0\",\"flags\":1,"
         "\"modifiers\":[{\"register\":\"rax\",\"bitmap\":\"0b1\"}]}]}",
         "`cpuid_modifiers[0].modifiers[0].register`", NULL},
        {"PUT", "/cpu-config", "{\"msr_modifiers\":[{\"addr\":\"0x10a\",\"bitmap\":\"0b12\"}]}",
         "`msr_modifiers[0].bitmap`", NULL},
        {"PUT", "/cpu-config", "{\"reg_modifiers\":[]}", "unknown field", NULL},
        {"PUT", "/cpu-config", "[]", "JSON object", NULL},
        {"PUT", "/cpu-config", NULL, "empty", NULL},
        {"GET", "/cpu-config", NULL, "Invalid request method and/or path", NULL},
        {"PUT", "/machine-config", "{\"vcpu_count\":1,\"mem_size_mib\":128,\"cpu_template\":\"V1N1\"}", "aarch64",
         NULL},
        {"PUT", "/machine-config", "{\"vcpu_count\":1,\"mem_size_mib\":128,\"cpu_template\":5}", "`cpu_template`",
         NULL},
    };
    run_cases(cases, N(cases));
    cr_expect_eq(ctl.cfg.cpu_template, CPU_TEMPLATE_NONE, "nothing refused was kept");
    cr_expect_null(ctl.cfg.cpu_config);
    ctl.state = CTL_RUNNING;
    fault("PUT", "/cpu-config", "{}", "not supported after starting", NULL);
    ctl.state = CTL_NOT_STARTED;
}

Test(api_cpu_config, config_file_section_object_or_path)
{
    struct errmsg e = {{0}};
    json_t *root = json_pack("{s:{s:[{s:s,s:s,s:i,s:[]}]}}", "cpu-config", "cpuid_modifiers", "leaf", "0x1", "subleaf",
                             "0x0", "flags", 0, "modifiers");
    cr_assert_eq(api_apply_config(&ctl, root, &e), 0, "%s", e.text);
    json_decref(root);
    cr_expect_eq(ctl.cfg.cpu_template, CPU_TEMPLATE_CUSTOM);
    cr_expect_eq(ctl.cfg.cpu_config->n_cpuid, 1);

    /* A path, as Firecracker's CustomCpuTemplateOrPath. */
    char path[] = "/tmp/ember-cpu-config-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    const char *doc = "{\"msr_modifiers\":[{\"addr\":\"0x10a\",\"bitmap\":\"0b0\"}]}";
    cr_assert_eq(write(fd, doc, strlen(doc)), (ssize_t)strlen(doc));
    close(fd);
    root = json_pack("{s:s}", "cpu-config", path);
    cr_expect_eq(api_apply_config(&ctl, root, &e), 0, "%s", e.text);
    json_decref(root);
    cr_expect_eq(ctl.cfg.cpu_config->n_msrs, 1, "the file's template replaced the first one");
    unlink(path);
    root = json_pack("{s:s}", "cpu-config", path);
    cr_expect_eq(api_apply_config(&ctl, root, &e), -ENOENT);
    cr_expect(strstr(e.text, "cpu-config") && strstr(e.text, path), "%s", e.text);
    json_decref(root);
    root = json_pack("{s:{s:s}}", "cpu-config", "cpuid_modifiers", "x");
    cr_expect_eq(api_apply_config(&ctl, root, &e), -EINVAL);
    cr_expect(strstr(e.text, "\"cpu-config\"") && strstr(e.text, "`cpuid_modifiers`"), "%s", e.text);
    json_decref(root);
}
