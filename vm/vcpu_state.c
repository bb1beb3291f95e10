#include "vm/vcpu_state.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "core/log.h"

#define VCPU_STATE_VERSION 1

void vcpu_state_free(struct vcpu_state *s)
{
    free(s->xsave);
    s->xsave = NULL;
    s->xsave_size = 0;
}

/* A fixed-size KVM structure: u32 length, bytes. */
static void put_blob(struct state_writer *w, const void *p, uint32_t n)
{
    state_put_u32(w, n);
    state_put_bytes(w, p, n);
}

int vcpu_state_encode(const struct vcpu_state *s, uint32_t index, struct state_writer *w)
{
    size_t mark = state_begin(w, "vcpu", VCPU_STATE_VERSION);
    state_put_u32(w, index);
    put_blob(w, &s->regs, sizeof(s->regs));
    put_blob(w, &s->sregs, sizeof(s->sregs));
    put_blob(w, &s->fpu, sizeof(s->fpu));
    put_blob(w, &s->xcrs, sizeof(s->xcrs));
    put_blob(w, &s->lapic, sizeof(s->lapic));
    put_blob(w, &s->events, sizeof(s->events));
    put_blob(w, &s->mp_state, sizeof(s->mp_state));
    put_blob(w, &s->debugregs, sizeof(s->debugregs));
    put_blob(w, s->xsave, s->xsave ? s->xsave_size : 0);
    uint32_t nr_cpuid = s->nr_cpuid < VCPU_STATE_MAX_CPUID ? s->nr_cpuid : VCPU_STATE_MAX_CPUID;
    state_put_u32(w, nr_cpuid);
    state_put_bytes(w, s->cpuid, nr_cpuid * sizeof(s->cpuid[0]));
    uint32_t nr_msrs = s->nr_msrs < VCPU_STATE_MAX_MSRS ? s->nr_msrs : VCPU_STATE_MAX_MSRS;
    state_put_u32(w, nr_msrs);
    for (uint32_t i = 0; i < nr_msrs; i++) {
        state_put_u32(w, s->msrs[i].index);
        state_put_u64(w, s->msrs[i].data);
    }
    return state_end(w, mark);
}

/* Reads a fixed-size structure whose recorded length must be exactly n. */
static int get_blob(struct state_reader *r, void *p, uint32_t n, uint32_t index, const char *what, struct errmsg *err)
{
    uint32_t len = state_get_u32(r);
    if (r->err)
        return err_set(err, -EINVAL, "vcpu %u state: the image is truncated before its %s", index, what);
    if (len != n)
        return err_set(err, -EINVAL, "vcpu %u state: %s of %u bytes, this Ember's is %u bytes", index, what, len, n);
    state_get_bytes(r, p, n);
    return r->err ? err_set(err, -EINVAL, "vcpu %u state: the image is truncated in its %s", index, what) : 0;
}

int vcpu_state_decode(struct state_reader *r, uint32_t index, struct vcpu_state *s, struct errmsg *err)
{
    memset(s, 0, sizeof(*s));
    struct state_reader b;
    uint32_t version;
    int rc = state_open(r, "vcpu", VCPU_STATE_VERSION, &version, &b, err);
    if (rc)
        return rc;
    uint32_t got = state_get_u32(&b);
    if (b.err)
        return err_set(err, -EINVAL, "vcpu %u state: the image is truncated", index);
    if (got != index)
        return err_set(err, -EINVAL, "vcpu %u state: the section holds vCPU %u instead", index, got);
    if ((rc = get_blob(&b, &s->regs, sizeof(s->regs), index, "registers", err)) ||
        (rc = get_blob(&b, &s->sregs, sizeof(s->sregs), index, "special registers", err)) ||
        (rc = get_blob(&b, &s->fpu, sizeof(s->fpu), index, "FPU state", err)) ||
        (rc = get_blob(&b, &s->xcrs, sizeof(s->xcrs), index, "XCRs", err)) ||
        (rc = get_blob(&b, &s->lapic, sizeof(s->lapic), index, "local APIC", err)) ||
        (rc = get_blob(&b, &s->events, sizeof(s->events), index, "pending events", err)) ||
        (rc = get_blob(&b, &s->mp_state, sizeof(s->mp_state), index, "MP state", err)) ||
        (rc = get_blob(&b, &s->debugregs, sizeof(s->debugregs), index, "debug registers", err)))
        return rc;
    if (s->xcrs.nr_xcrs > KVM_MAX_XCRS)
        return err_set(err, -EINVAL, "vcpu %u state: %u XCRs (at most %d)", index, s->xcrs.nr_xcrs, KVM_MAX_XCRS);

    uint32_t xsave = state_get_u32(&b);
    if (xsave != 0 && (xsave < VCPU_STATE_MIN_XSAVE || xsave > VCPU_STATE_MAX_XSAVE || xsave % 64))
        return err_set(err, -EINVAL, "vcpu %u state: an XSAVE area of %u bytes (0, or %u to %u in 64-byte steps)",
                       index, xsave, VCPU_STATE_MIN_XSAVE, VCPU_STATE_MAX_XSAVE);
    if (xsave > b.len - b.pos)
        return err_set(err, -EINVAL, "vcpu %u state: the image is truncated in its XSAVE area", index);
    if (xsave) {
        s->xsave = malloc(xsave);
        if (!s->xsave)
            return err_set(err, -ENOMEM, "out of memory");
        s->xsave_size = xsave;
        state_get_bytes(&b, s->xsave, xsave);
    }

    rc = -EINVAL;
    uint32_t n = state_get_u32(&b);
    if (n > VCPU_STATE_MAX_CPUID) {
        err_set(err, rc, "vcpu %u state: %u CPUID entries (at most %d)", index, n, VCPU_STATE_MAX_CPUID);
        goto fail;
    }
    s->nr_cpuid = n;
    state_get_bytes(&b, s->cpuid, n * sizeof(s->cpuid[0]));
    n = state_get_u32(&b);
    if (n > VCPU_STATE_MAX_MSRS) {
        err_set(err, rc, "vcpu %u state: %u MSRs (at most %d)", index, n, VCPU_STATE_MAX_MSRS);
        goto fail;
    }
    s->nr_msrs = n;
    for (uint32_t i = 0; i < n; i++) {
        s->msrs[i].index = state_get_u32(&b);
        s->msrs[i].data = state_get_u64(&b);
    }
    if ((rc = state_close(&b, "vcpu", err)))
        goto fail;
    return 0;
fail:
    vcpu_state_free(s);
    return rc;
}

struct msr_range {
    uint32_t base, count;
};

/*
 * The MSRs a snapshot carries, as Firecracker's SERIALIZABLE_MSR_RANGES
 * (src/vmm/src/arch/x86_64/msr.rs) plus the original kvm-clock pair (0x11,
 * 0x12) that guests without the new kvm-clock feature bit use, and IA32_XSS.
 * KVM_GET_MSR_INDEX_LIST also lists PMU, VMX, MCE and Hyper-V MSRs that
 * KVM_GET_MSRS may refuse for this guest's CPUID: those are left out.
 */
static const struct msr_range wanted_msrs[] = {
    {0x0, 2},        /* P5_MC_ADDR, P5_MC_TYPE */
    {0x10, 1},       /* TSC */
    {0x11, 2},       /* KVM_WALL_CLOCK, KVM_SYSTEM_TIME (kvm-clock, original) */
    {0x17, 1},       /* PLATFORM_ID */
    {0x1b, 1},       /* APICBASE */
    {0x2a, 1},       /* EBL_CR_POWERON */
    {0x2c, 1},       /* EBC_FREQUENCY_ID */
    {0x34, 1},       /* SMI_COUNT */
    {0x3a, 2},       /* FEAT_CTL, TSC_ADJUST */
    {0x48, 2},       /* SPEC_CTRL, PRED_CMD */
    {0x79, 1},       /* UCODE_WRITE */
    {0x8b, 1},       /* UCODE_REV */
    {0x9e, 1},       /* SMBASE */
    {0xcd, 2},       /* FSB_FREQ, PLATFORM_INFO */
    {0xe2, 1},       /* PKG_CST_CONFIG_CONTROL */
    {0xe7, 2},       /* MPERF, APERF */
    {0xfe, 1},       /* MTRRcap */
    {0x10a, 1},      /* ARCH_CAPABILITIES: CPU templates T2S and T2CL set it (Firecracker saves a template's MSRs) */
    {0x11e, 1},      /* BBL_CR_CTL3 */
    {0x140, 1},      /* MISC_FEATURES_ENABLES */
    {0x174, 3},      /* SYSENTER_CS, _ESP, _EIP */
    {0x179, 2},      /* MCG_CAP, MCG_STATUS (MCG_CTL 0x17b left out, as Firecracker) */
    {0x198, 1},      /* PERF_STATUS */
    {0x1a0, 1},      /* MISC_ENABLE */
    {0x1a4, 1},      /* MISC_FEATURE_CONTROL */
    {0x1aa, 1},      /* MISC_PWR_MGMT */
    {0x1ad, 2},      /* TURBO_RATIO_LIMIT, _LIMIT1 */
    {0x1d9, 1},      /* DEBUGCTL */
    {0x1db, 4},      /* LASTBRANCH/LASTINT FROM/TO IP */
    {0x1fc, 1},      /* POWER_CTL */
    {0x200, 0x100},  /* MTRRs and PAT */
    {0x3fc, 3},      /* CORE_C3/C6/C7_RESIDENCY */
    {0x400, 0x80},   /* MC0_CTL.. */
    {0x606, 1},      /* RAPL_POWER_UNIT */
    {0x60a, 3},      /* PKGC3/6/7_IRTL */
    {0x610, 2},      /* PKG_POWER_LIMIT, PKG_ENERGY_STATUS */
    {0x613, 2},      /* PKG_PERF_STATUS, PKG_POWER_INFO */
    {0x618, 2},      /* DRAM_POWER_LIMIT, DRAM_ENERGY_STATUS */
    {0x61b, 2},      /* DRAM_PERF_STATUS, DRAM_POWER_INFO */
    {0x648, 5},      /* CONFIG_TDP_*, TURBO_ACTIVATION_RATIO */
    {0x6e0, 1},      /* TSC_DEADLINE */
    {0x800, 0x400},  /* x2APIC */
    {0xda0, 1},      /* XSS */
    {0x4b564d00, 7}, /* kvm-clock (new), async PF, steal time, PV EOI, poll control, async PF interrupt */
    {0xc0000080, 5}, /* EFER, STAR, LSTAR, CSTAR, SYSCALL_MASK */
    {0xc0000100, 4}, /* FS_BASE, GS_BASE, KERNEL_GS_BASE, TSC_AUX */
    {0xc0010015, 1}, /* K7_HWCR */
};

bool vcpu_state_msr_wanted(uint32_t index)
{
    for (size_t i = 0; i < sizeof(wanted_msrs) / sizeof(wanted_msrs[0]); i++)
        if (index - wanted_msrs[i].base < wanted_msrs[i].count)
            return true;
    return false;
}

uint32_t vcpu_state_filter_msrs(uint32_t *indices, uint32_t n)
{
    uint32_t kept = 0;
    for (uint32_t i = 0; i < n; i++)
        if (vcpu_state_msr_wanted(indices[i]))
            indices[kept++] = indices[i];
    return kept;
}

int vcpu_state_fit_xsave(struct vcpu_state *s, uint32_t host_size, struct errmsg *err)
{
    if (s->xsave_size == 0)
        return 0;
    if (host_size == 0)
        return err_set(err, -EINVAL,
                       "the snapshot carries an XSAVE area and this host's KVM has no XSAVE: restore it on a host "
                       "with the same CPU features");
    if (s->xsave_size > host_size)
        return err_set(err, -EINVAL,
                       "the snapshot's XSAVE area is %u bytes, this host's KVM takes %u: it was taken on a CPU with "
                       "state components (e.g. AMX) this host does not have",
                       s->xsave_size, host_size);
    if (s->xsave_size < host_size) {
        uint8_t *p = realloc(s->xsave, host_size);
        if (!p)
            return err_set(err, -ENOMEM, "out of memory");
        memset(p + s->xsave_size, 0, host_size - s->xsave_size);
        s->xsave = p;
        s->xsave_size = host_size;
    }
    return 0;
}

uint32_t vcpu_state_host_xsave_size(int kvm_fd, int vm_fd)
{
    if (ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE) <= 0)
        return 0;
    int size = ioctl(vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
    return size > (int)VCPU_STATE_MIN_XSAVE ? (uint32_t)size : VCPU_STATE_MIN_XSAVE;
}

int vcpu_state_msr_list(int kvm_fd, uint32_t *indices, uint32_t max, uint32_t *nr, struct errmsg *err)
{
    *nr = 0;
    struct kvm_msr_list *list = calloc(1, sizeof(*list) + VCPU_STATE_MAX_MSRS * 2 * sizeof(uint32_t));
    if (!list)
        return err_set(err, -ENOMEM, "out of memory");
    list->nmsrs = VCPU_STATE_MAX_MSRS * 2;
    if (ioctl(kvm_fd, KVM_GET_MSR_INDEX_LIST, list) < 0) {
        int rc = -errno;
        free(list);
        return err_set(err, rc, "KVM_GET_MSR_INDEX_LIST: %s", strerror(-rc));
    }
    uint32_t n = vcpu_state_filter_msrs(list->indices, list->nmsrs);
    if (n > max) {
        free(list);
        return err_set(err, -E2BIG, "the host's KVM lists %u MSRs to save, more than Ember's %u", n, max);
    }
    memcpy(indices, list->indices, n * sizeof(uint32_t));
    *nr = n;
    free(list);
    return 0;
}

/* One ioctl, its failure named after the vCPU and the request. */
static int vcpu_ioctl(int fd, unsigned long req, void *arg, const char *name, uint32_t index, struct errmsg *err)
{
    if (ioctl(fd, req, arg) < 0) {
        int rc = -errno;
        return err_set(err, rc, "vcpu %u: %s: %s", index, name, strerror(-rc));
    }
    return 0;
}

/* KVM_GET_MSRS, dropping each MSR the vCPU refuses: KVM stops at the first one it cannot read. */
static int save_msrs(int fd, uint32_t index, const uint32_t *indices, uint32_t n, struct vcpu_state *s,
                     struct errmsg *err)
{
    if (n > VCPU_STATE_MAX_MSRS)
        return err_set(err, -E2BIG, "vcpu %u: %u MSRs to save, more than Ember's %d", index, n, VCPU_STATE_MAX_MSRS);
    struct kvm_msrs *m = calloc(1, sizeof(*m) + n * sizeof(m->entries[0]));
    if (!m)
        return err_set(err, -ENOMEM, "out of memory");
    s->nr_msrs = 0;
    uint32_t next = 0;
    while (next < n) {
        m->nmsrs = n - next;
        for (uint32_t i = 0; i < m->nmsrs; i++)
            m->entries[i] = (struct kvm_msr_entry){.index = indices[next + i]};
        int got = ioctl(fd, KVM_GET_MSRS, m);
        if (got < 0) {
            int rc = -errno;
            free(m);
            return err_set(err, rc, "vcpu %u: KVM_GET_MSRS: %s", index, strerror(-rc));
        }
        memcpy(&s->msrs[s->nr_msrs], m->entries, (size_t)got * sizeof(m->entries[0]));
        s->nr_msrs += (uint32_t)got;
        next += (uint32_t)got + 1; /* skips the refused one, if any */
    }
    free(m);
    return 0;
}

int vcpu_state_save(int fd, uint32_t index, const uint32_t *msr_indices, uint32_t nr_msrs, uint32_t xsave_size,
                    struct vcpu_state *s, struct errmsg *err)
{
    memset(s, 0, sizeof(*s));
    int rc;
    if ((rc = vcpu_ioctl(fd, KVM_GET_REGS, &s->regs, "KVM_GET_REGS", index, err)) ||
        (rc = vcpu_ioctl(fd, KVM_GET_SREGS, &s->sregs, "KVM_GET_SREGS", index, err)) ||
        (rc = vcpu_ioctl(fd, KVM_GET_FPU, &s->fpu, "KVM_GET_FPU", index, err)) ||
        (rc = vcpu_ioctl(fd, KVM_GET_LAPIC, &s->lapic, "KVM_GET_LAPIC", index, err)) ||
        (rc = vcpu_ioctl(fd, KVM_GET_VCPU_EVENTS, &s->events, "KVM_GET_VCPU_EVENTS", index, err)) ||
        (rc = vcpu_ioctl(fd, KVM_GET_MP_STATE, &s->mp_state, "KVM_GET_MP_STATE", index, err)) ||
        (rc = vcpu_ioctl(fd, KVM_GET_DEBUGREGS, &s->debugregs, "KVM_GET_DEBUGREGS", index, err)))
        return rc;
    if (xsave_size) {
        if (xsave_size < VCPU_STATE_MIN_XSAVE || xsave_size > VCPU_STATE_MAX_XSAVE)
            return err_set(err, -EINVAL, "vcpu %u: an XSAVE area of %u bytes", index, xsave_size);
        s->xsave = calloc(1, xsave_size);
        if (!s->xsave)
            return err_set(err, -ENOMEM, "out of memory");
        s->xsave_size = xsave_size;
        /* KVM_GET_XSAVE copies only the legacy 4 KiB; XSAVE2 the size KVM_CAP_XSAVE2 reported. */
        if (xsave_size > VCPU_STATE_MIN_XSAVE)
            rc = vcpu_ioctl(fd, KVM_GET_XSAVE2, s->xsave, "KVM_GET_XSAVE2", index, err);
        else
            rc = vcpu_ioctl(fd, KVM_GET_XSAVE, s->xsave, "KVM_GET_XSAVE", index, err);
        if (!rc)
            rc = vcpu_ioctl(fd, KVM_GET_XCRS, &s->xcrs, "KVM_GET_XCRS", index, err);
        if (rc)
            goto fail;
    }
    struct kvm_cpuid2 *cpuid = calloc(1, sizeof(*cpuid) + sizeof(s->cpuid));
    if (!cpuid) {
        rc = err_set(err, -ENOMEM, "out of memory");
        goto fail;
    }
    cpuid->nent = VCPU_STATE_MAX_CPUID;
    rc = vcpu_ioctl(fd, KVM_GET_CPUID2, cpuid, "KVM_GET_CPUID2", index, err);
    if (!rc) {
        s->nr_cpuid = cpuid->nent < VCPU_STATE_MAX_CPUID ? cpuid->nent : VCPU_STATE_MAX_CPUID;
        memcpy(s->cpuid, cpuid->entries, s->nr_cpuid * sizeof(s->cpuid[0]));
    }
    free(cpuid);
    if (!rc)
        rc = save_msrs(fd, index, msr_indices, nr_msrs, s, err);
    if (!rc)
        return 0;
fail:
    vcpu_state_free(s);
    return rc;
}

static int restore_cpuid(int fd, uint32_t index, const struct vcpu_state *s, struct errmsg *err)
{
    struct kvm_cpuid2 *cpuid = calloc(1, sizeof(*cpuid) + s->nr_cpuid * sizeof(s->cpuid[0]));
    if (!cpuid)
        return err_set(err, -ENOMEM, "out of memory");
    cpuid->nent = s->nr_cpuid;
    memcpy(cpuid->entries, s->cpuid, s->nr_cpuid * sizeof(s->cpuid[0]));
    int rc = vcpu_ioctl(fd, KVM_SET_CPUID2, cpuid, "KVM_SET_CPUID2 (the snapshot's CPU features)", index, err);
    free(cpuid);
    return rc;
}

static int restore_msrs(int fd, uint32_t index, const struct vcpu_state *s, struct errmsg *err)
{
    struct kvm_msrs *m = calloc(1, sizeof(*m) + s->nr_msrs * sizeof(m->entries[0]));
    if (!m)
        return err_set(err, -ENOMEM, "out of memory");
    m->nmsrs = s->nr_msrs;
    memcpy(m->entries, s->msrs, s->nr_msrs * sizeof(m->entries[0]));
    int rc = 0, set = ioctl(fd, KVM_SET_MSRS, m);
    if (set < 0)
        rc = err_set(err, -errno, "vcpu %u: KVM_SET_MSRS: %s", index, strerror(errno));
    else if ((uint32_t)set < s->nr_msrs)
        rc = err_set(err, -EINVAL,
                     "vcpu %u: this host's KVM refused MSR %#x = %#llx: the snapshot was taken on a host whose CPU "
                     "or KVM differs",
                     index, s->msrs[set].index, (unsigned long long)s->msrs[set].data);
    free(m);
    return rc;
}

/*
 * The order matters. Firecracker (vcpu.rs restore_state) sets CPUID first,
 * the LAPIC before the MSRs and the events last; QEMU puts MP state and
 * events after the LAPIC too. What KVM requires:
 * - CPUID first: KVM checks CR4 bits in SREGS, the XSAVE components, and
 *   MSR writes (SPEC_CTRL, TSC_DEADLINE, XSS...) against the guest's CPUID.
 * - SREGS before REGS and before the LAPIC: SREGS sets the mode (CR0, CR4,
 *   EFER) the registers belong to, and its APIC base switches the LAPIC
 *   between xAPIC and x2APIC, which rewrites LAPIC registers (APIC ID, LDR).
 * - XSAVE and XCRS after CPUID (checked against the features it enables).
 * - LAPIC before the MSRs: KVM ignores a TSC_DEADLINE write unless the LAPIC
 *   timer is already in TSC-deadline mode.
 * - MP state and pending events last: earlier calls (SREGS's interrupt
 *   bitmap, the LAPIC) can queue or clear events; nothing may touch them after.
 */
int vcpu_state_restore(int fd, uint32_t index, struct vcpu_state *s, uint32_t host_xsave_size, struct errmsg *err)
{
    int rc = vcpu_state_fit_xsave(s, host_xsave_size, err);
    if (rc)
        return rc;
    if ((rc = restore_cpuid(fd, index, s, err)) ||
        (rc = vcpu_ioctl(fd, KVM_SET_SREGS, &s->sregs, "KVM_SET_SREGS", index, err)) ||
        (rc = vcpu_ioctl(fd, KVM_SET_REGS, &s->regs, "KVM_SET_REGS", index, err)))
        return rc;
    if (s->xsave_size) {
        if ((rc = vcpu_ioctl(fd, KVM_SET_XSAVE, s->xsave, "KVM_SET_XSAVE", index, err)) ||
            (rc = vcpu_ioctl(fd, KVM_SET_XCRS, &s->xcrs, "KVM_SET_XCRS", index, err)))
            return rc;
    } else if ((rc = vcpu_ioctl(fd, KVM_SET_FPU, &s->fpu, "KVM_SET_FPU", index, err))) {
        return rc;
    }
    if ((rc = vcpu_ioctl(fd, KVM_SET_LAPIC, &s->lapic, "KVM_SET_LAPIC", index, err)) ||
        (rc = restore_msrs(fd, index, s, err)) ||
        (rc = vcpu_ioctl(fd, KVM_SET_DEBUGREGS, &s->debugregs, "KVM_SET_DEBUGREGS", index, err)) ||
        (rc = vcpu_ioctl(fd, KVM_SET_MP_STATE, &s->mp_state, "KVM_SET_MP_STATE", index, err)) ||
        (rc = vcpu_ioctl(fd, KVM_SET_VCPU_EVENTS, &s->events, "KVM_SET_VCPU_EVENTS", index, err)))
        return rc;
    return 0;
}

/* "0x31 0xec": the vectors whose bit is set in one of the LAPIC's 8 x 32-bit vector registers at `reg`. */
static void lapic_vectors(const struct kvm_lapic_state *l, unsigned reg, char *buf, size_t len)
{
    size_t n = 0;
    buf[0] = 0;
    for (unsigned v = 0; v < 256 && n < len; v++) {
        uint32_t word;
        memcpy(&word, l->regs + reg + (v / 32) * 0x10, sizeof(word));
        if (word & (1u << (v % 32)))
            n += (size_t)snprintf(buf + n, len - n, " %#x", v);
    }
    if (!buf[0])
        snprintf(buf, len, " none");
}

void vcpu_state_log_interrupts(int fd, uint32_t index)
{
    struct kvm_lapic_state lapic;
    struct kvm_vcpu_events ev;
    struct kvm_mp_state mp;
    struct kvm_regs regs;
    if (ioctl(fd, KVM_GET_LAPIC, &lapic) < 0 || ioctl(fd, KVM_GET_VCPU_EVENTS, &ev) < 0 ||
        ioctl(fd, KVM_GET_MP_STATE, &mp) < 0 || ioctl(fd, KVM_GET_REGS, &regs) < 0) {
        log_debug("vCPU %u: its interrupt state cannot be read: %s", index, strerror(errno));
        return;
    }
    char isr[160], irr[160];
    lapic_vectors(&lapic, 0x100, isr, sizeof(isr));
    lapic_vectors(&lapic, 0x200, irr, sizeof(irr));
    uint32_t tpr;
    memcpy(&tpr, lapic.regs + 0x80, sizeof(tpr));
    log_debug("vCPU %u: RIP %#llx, RFLAGS %#llx, MP state %u; LAPIC TPR %#x, in service:%s, requested:%s; KVM "
              "injecting %s vector %#x, NMI pending %u",
              index, (unsigned long long)regs.rip, (unsigned long long)regs.rflags, mp.mp_state, tpr, isr, irr,
              ev.interrupt.injected ? "yes" : "no", ev.interrupt.nr, ev.nmi.pending);
}
