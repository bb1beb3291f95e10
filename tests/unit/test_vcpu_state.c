/* vcpu_state, vm_state: the KVM structures' sections round-trip, and hostile sections are refused by name. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/le.h"
#include "vm/vcpu_state.h"
#include "vm/vm_state.h"

/* Every byte of p set from a seed, so a field copied to the wrong place shows. */
static void fill(void *p, size_t n, uint8_t seed)
{
    uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)(seed + i * 7);
}

static struct vcpu_state *synthetic_vcpu(uint32_t xsave_size, uint32_t nr_cpuid, uint32_t nr_msrs)
{
    struct vcpu_state *s = calloc(1, sizeof(*s));
    cr_assert_not_null(s);
    fill(&s->regs, sizeof(s->regs), 1);
    fill(&s->sregs, sizeof(s->sregs), 2);
    fill(&s->fpu, sizeof(s->fpu), 3);
    fill(&s->xcrs, sizeof(s->xcrs), 4);
    s->xcrs.nr_xcrs = 1;
    fill(&s->lapic, sizeof(s->lapic), 5);
    fill(&s->events, sizeof(s->events), 6);
    s->mp_state.mp_state = KVM_MP_STATE_HALTED;
    fill(&s->debugregs, sizeof(s->debugregs), 8);
    if (xsave_size) {
        s->xsave = malloc(xsave_size);
        cr_assert_not_null(s->xsave);
        fill(s->xsave, xsave_size, 9);
        s->xsave_size = xsave_size;
    }
    s->nr_cpuid = nr_cpuid;
    fill(s->cpuid, nr_cpuid * sizeof(s->cpuid[0]), 10);
    s->nr_msrs = nr_msrs;
    for (uint32_t i = 0; i < nr_msrs; i++)
        s->msrs[i] = (struct kvm_msr_entry){.index = 0x4b564d00 + i, .data = 0x1000 * i + 1};
    return s;
}

static void expect_same_vcpu(const struct vcpu_state *a, const struct vcpu_state *b)
{
    cr_expect_eq(memcmp(&a->regs, &b->regs, sizeof(a->regs)), 0, "regs");
    cr_expect_eq(memcmp(&a->sregs, &b->sregs, sizeof(a->sregs)), 0, "sregs");
    cr_expect_eq(memcmp(&a->fpu, &b->fpu, sizeof(a->fpu)), 0, "fpu");
    cr_expect_eq(memcmp(&a->xcrs, &b->xcrs, sizeof(a->xcrs)), 0, "xcrs");
    cr_expect_eq(memcmp(&a->lapic, &b->lapic, sizeof(a->lapic)), 0, "lapic");
    cr_expect_eq(memcmp(&a->events, &b->events, sizeof(a->events)), 0, "events");
    cr_expect_eq(memcmp(&a->mp_state, &b->mp_state, sizeof(a->mp_state)), 0, "mp_state");
    cr_expect_eq(memcmp(&a->debugregs, &b->debugregs, sizeof(a->debugregs)), 0, "debugregs");
    cr_assert_eq(a->xsave_size, b->xsave_size);
    if (a->xsave_size)
        cr_expect_eq(memcmp(a->xsave, b->xsave, a->xsave_size), 0, "xsave");
    cr_assert_eq(a->nr_cpuid, b->nr_cpuid);
    cr_expect_eq(memcmp(a->cpuid, b->cpuid, a->nr_cpuid * sizeof(a->cpuid[0])), 0, "cpuid");
    cr_assert_eq(a->nr_msrs, b->nr_msrs);
    for (uint32_t i = 0; i < a->nr_msrs; i++)
        cr_expect(a->msrs[i].index == b->msrs[i].index && a->msrs[i].data == b->msrs[i].data, "msr %u", i);
}

static void encode_vcpu(const struct vcpu_state *s, uint32_t index, struct state_writer *w)
{
    state_writer_init(w);
    cr_assert_eq(vcpu_state_encode(s, index, w), 0);
}

static int decode_vcpu(const uint8_t *buf, size_t len, uint32_t index, struct vcpu_state *out, struct errmsg *err)
{
    struct state_reader r;
    state_reader_init(&r, buf, len);
    return vcpu_state_decode(&r, index, out, err);
}

static void expect_vcpu_refused(const uint8_t *buf, size_t len, uint32_t index, const char *needle, const char *what)
{
    struct vcpu_state *out = malloc(sizeof(*out));
    cr_assert_not_null(out);
    struct errmsg err = {{0}};
    int rc = decode_vcpu(buf, len, index, out, &err);
    cr_assert_eq(rc, -EINVAL, "%s: refused (got %d)", what, rc);
    cr_assert_neq(err.text[0], '\0', "%s: with a message", what);
    if (needle)
        cr_assert(strstr(err.text, needle) != NULL, "%s: '%s' in '%s'", what, needle, err.text);
    cr_assert_null(out->xsave, "%s: nothing left allocated", what);
    free(out);
}

Test(vcpu_state, round_trip_with_xsave_cpuid_and_msrs)
{
    const uint32_t sizes[] = {0, 4096, 11008};
    for (unsigned k = 0; k < 3; k++) {
        struct vcpu_state *s = synthetic_vcpu(sizes[k], 40, 100);
        struct state_writer w;
        encode_vcpu(s, 3, &w);
        struct vcpu_state *out = malloc(sizeof(*out));
        cr_assert_not_null(out);
        struct errmsg err = {{0}};
        struct state_reader r;
        state_reader_init(&r, w.buf, w.len);
        cr_assert_eq(vcpu_state_decode(&r, 3, out, &err), 0, "%s", err.text);
        cr_expect_eq(r.pos, w.len, "whole section consumed");
        expect_same_vcpu(s, out);
        /* Encoding what was decoded gives the same bytes. */
        struct state_writer w2;
        encode_vcpu(out, 3, &w2);
        cr_assert(w2.len == w.len && memcmp(w.buf, w2.buf, w.len) == 0, "re-encoding is identical");
        state_writer_free(&w);
        state_writer_free(&w2);
        vcpu_state_free(s);
        vcpu_state_free(out);
        free(s);
        free(out);
    }
}

Test(vcpu_state, every_truncation_and_wrong_index_refused)
{
    struct vcpu_state *s = synthetic_vcpu(4096, 3, 4);
    struct state_writer w;
    encode_vcpu(s, 1, &w);
    for (size_t cut = 0; cut < w.len; cut++) {
        /* Cut inside the body with the section length fixed up, so the field checks (not state_open) see it. */
        uint8_t *buf = malloc(w.len);
        cr_assert_not_null(buf);
        memcpy(buf, w.buf, w.len);
        const size_t head = 1 + 4 + 4 + 4;
        if (cut >= head)
            le_st32(buf + head - 4, (uint32_t)(cut - head));
        expect_vcpu_refused(buf, cut, 1, NULL, "truncated");
        free(buf);
    }
    expect_vcpu_refused(w.buf, w.len, 2, "holds vCPU 1 instead", "wrong vCPU");
    state_writer_free(&w);
    vcpu_state_free(s);
    free(s);
}

/* Offset of the u32 after the fixed structures and the XSAVE area, in a section for `s`. */
static size_t after_structs(const struct vcpu_state *s)
{
    return 13 + 4 + 8 * 4 + sizeof(s->regs) + sizeof(s->sregs) + sizeof(s->fpu) + sizeof(s->xcrs) + sizeof(s->lapic) +
           sizeof(s->events) + sizeof(s->mp_state) + sizeof(s->debugregs);
}

Test(vcpu_state, hostile_counts_and_sizes_refused)
{
    struct vcpu_state *s = synthetic_vcpu(4096, 2, 2);
    struct state_writer w;
    encode_vcpu(s, 0, &w);
    uint8_t *bad = malloc(w.len);
    cr_assert_not_null(bad);
    size_t xsave_at = after_structs(s), cpuid_at = xsave_at + 4 + 4096;
    size_t msrs_at = cpuid_at + 4 + 2 * sizeof(s->cpuid[0]);

    /* A structure whose recorded size is not this Ember's (registers: first blob after the index). */
    memcpy(bad, w.buf, w.len);
    le_st32(bad + 17, sizeof(s->regs) + 8);
    expect_vcpu_refused(bad, w.len, 0, "registers of", "regs size");

    const uint32_t xsizes[] = {4095, 100, VCPU_STATE_MAX_XSAVE + 64, 4097, UINT32_MAX};
    for (unsigned i = 0; i < 5; i++) {
        memcpy(bad, w.buf, w.len);
        le_st32(bad + xsave_at, xsizes[i]);
        expect_vcpu_refused(bad, w.len, 0, "XSAVE area of", "xsave size");
    }
    memcpy(bad, w.buf, w.len);
    le_st32(bad + xsave_at, 8192); /* plausible size, but longer than what follows */
    expect_vcpu_refused(bad, w.len, 0, "truncated in its XSAVE", "xsave past the end");

    memcpy(bad, w.buf, w.len);
    le_st32(bad + cpuid_at, VCPU_STATE_MAX_CPUID + 1);
    expect_vcpu_refused(bad, w.len, 0, "CPUID entries", "cpuid count");
    memcpy(bad, w.buf, w.len);
    le_st32(bad + cpuid_at, 3);
    expect_vcpu_refused(bad, w.len, 0, NULL, "cpuid count past the end");

    memcpy(bad, w.buf, w.len);
    le_st32(bad + msrs_at, VCPU_STATE_MAX_MSRS + 1);
    expect_vcpu_refused(bad, w.len, 0, "MSRs (at most", "msr count");
    memcpy(bad, w.buf, w.len);
    le_st32(bad + msrs_at, UINT32_MAX);
    expect_vcpu_refused(bad, w.len, 0, "MSRs (at most", "msr count huge");
    memcpy(bad, w.buf, w.len);
    le_st32(bad + msrs_at, 1);
    expect_vcpu_refused(bad, w.len, 0, "unexpected bytes", "msr count short");

    /* Too many XCRs for struct kvm_xcrs. */
    memcpy(bad, w.buf, w.len);
    size_t xcrs_at = 17 + 4 * 3 + sizeof(s->regs) + sizeof(s->sregs) + sizeof(s->fpu) + 4;
    le_st32(bad + xcrs_at, KVM_MAX_XCRS + 1);
    expect_vcpu_refused(bad, w.len, 0, "XCRs", "xcr count");
    free(bad);
    state_writer_free(&w);
    vcpu_state_free(s);
    free(s);
}

Test(vcpu_state, xsave_fits_the_host_or_is_refused)
{
    struct vcpu_state *s = synthetic_vcpu(4096, 0, 0);
    struct errmsg err = {{0}};
    cr_assert_eq(vcpu_state_fit_xsave(s, 4096, &err), 0);
    cr_assert_eq(vcpu_state_fit_xsave(s, 11008, &err), 0, "a larger host area is zero-padded");
    cr_assert_eq(s->xsave_size, 11008);
    cr_expect_eq(s->xsave[4095], (uint8_t)(9 + 4095 * 7));
    for (uint32_t i = 4096; i < 11008; i++)
        cr_assert_eq(s->xsave[i], 0);
    cr_expect_eq(vcpu_state_fit_xsave(s, 4096, &err), -EINVAL, "a smaller host area is refused");
    cr_expect(strstr(err.text, "11008 bytes, this host's KVM takes 4096") != NULL, "%s", err.text);
    cr_expect_eq(vcpu_state_fit_xsave(s, 0, &err), -EINVAL, "a host without XSAVE");
    vcpu_state_free(s);
    cr_expect_eq(vcpu_state_fit_xsave(s, 0, &err), 0, "no XSAVE saved, none needed");
    free(s);
}

Test(vcpu_state, msr_filter_keeps_what_a_snapshot_carries)
{
    uint32_t list[] = {0x10,
                       0x11,
                       0x12,
                       0x1b,
                       0x3b,
                       0x17b,
                       0x186 /* PMU evtsel */,
                       0x277,
                       0x6e0,
                       0x480 /* VMX basic */,
                       0x4b564d00,
                       0x4b564d01,
                       0x4b564d06,
                       0x4b564d07,
                       0x40000000 /* Hyper-V */,
                       0xc0000080,
                       0xc0000103,
                       0xc0000104};
    uint32_t n = vcpu_state_filter_msrs(list, sizeof(list) / sizeof(list[0]));
    const uint32_t want[] = {0x10,  0x11,       0x12,       0x1b,       0x3b,       0x277,
                             0x6e0, 0x4b564d00, 0x4b564d01, 0x4b564d06, 0xc0000080, 0xc0000103};
    cr_assert_eq(n, sizeof(want) / sizeof(want[0]));
    for (uint32_t i = 0; i < n; i++)
        cr_expect_eq(list[i], want[i], "entry %u: %#x", i, list[i]);
    cr_expect(!vcpu_state_msr_wanted(0xffffffff));
}

static void synthetic_vm(struct vm_kvm_state *s)
{
    fill(s, sizeof(*s), 0x40);
    s->pic_master.chip_id = KVM_IRQCHIP_PIC_MASTER;
    s->pic_slave.chip_id = KVM_IRQCHIP_PIC_SLAVE;
    s->ioapic.chip_id = KVM_IRQCHIP_IOAPIC;
}

Test(vm_state, round_trip_and_hostile_sections)
{
    struct vm_kvm_state s, out;
    synthetic_vm(&s);
    struct state_writer w;
    state_writer_init(&w);
    cr_assert_eq(vm_state_encode(&s, &w), 0);
    struct state_reader r;
    struct errmsg err = {{0}};
    state_reader_init(&r, w.buf, w.len);
    cr_assert_eq(vm_state_decode(&r, &out, &err), 0, "%s", err.text);
    cr_expect_eq(r.pos, w.len);
    /* Compared through their encoding: the structures have padding memcmp must not judge. */
    struct state_writer w2;
    state_writer_init(&w2);
    cr_assert_eq(vm_state_encode(&out, &w2), 0);
    cr_expect(w2.len == w.len && memcmp(w.buf, w2.buf, w.len) == 0, "decoded state re-encodes identically");
    state_writer_free(&w2);

    uint8_t *bad = malloc(w.len + 1);
    cr_assert_not_null(bad);
    const size_t head = 1 + 2 + 4 + 4;
    for (size_t cut = 0; cut < w.len; cut++) {
        memcpy(bad, w.buf, w.len);
        if (cut >= head)
            le_st32(bad + head - 4, (uint32_t)(cut - head));
        state_reader_init(&r, bad, cut);
        cr_assert_eq(vm_state_decode(&r, &out, &err), -EINVAL, "cut %zu", cut);
    }
    /* A PIC of the wrong size, and a swapped chip id. */
    memcpy(bad, w.buf, w.len);
    le_st32(bad + head, sizeof(s.pic_master) - 1);
    state_reader_init(&r, bad, w.len);
    cr_expect_eq(vm_state_decode(&r, &out, &err), -EINVAL);
    cr_expect(strstr(err.text, "PIC master of") != NULL, "%s", err.text);
    memcpy(bad, w.buf, w.len);
    le_st32(bad + head + 4 + offsetof(struct kvm_irqchip, chip_id), KVM_IRQCHIP_IOAPIC);
    state_reader_init(&r, bad, w.len);
    cr_expect_eq(vm_state_decode(&r, &out, &err), -EINVAL);
    cr_expect(strstr(err.text, "interrupt controller ids") != NULL, "%s", err.text);
    free(bad);
    state_writer_free(&w);
}

Test(vm_state, clock_flags_from_the_saving_host_are_dropped)
{
    struct kvm_clock_data saved = {.clock = 123456789,
                                   .flags = KVM_CLOCK_TSC_STABLE | KVM_CLOCK_REALTIME | KVM_CLOCK_HOST_TSC,
                                   .realtime = 42,
                                   .host_tsc = 99};
    struct kvm_clock_data c = vm_state_clock_to_set(&saved, false);
    cr_expect_eq(c.clock, 123456789);
    cr_expect_eq(c.flags, 0);
    cr_expect_eq(c.realtime, 0);
    cr_expect_eq(c.host_tsc, 0);
    c = vm_state_clock_to_set(&saved, true);
    cr_expect_eq(c.flags, KVM_CLOCK_REALTIME);
    cr_expect_eq(c.realtime, 42);
    saved.flags = KVM_CLOCK_TSC_STABLE;
    c = vm_state_clock_to_set(&saved, true);
    cr_expect_eq(c.flags, 0, "no realtime saved: nothing to advance by");
}
