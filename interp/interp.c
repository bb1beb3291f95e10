/*
 * The interpreter's KVM side: on an emulation failure, take a snapshot of the
 * vCPU (registers, and for the instructions that need them the FPU, XSAVE
 * image, XCR0, IA32_XSS: the row's needs in insn_table.h), run its routine,
 * write back what changed, deliver the exception the instruction raised, if
 * any, and let the vCPU resume.
 */
#include "interp/interp.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#include "interp/guest_walk.h"
#include "interp/insn.h"
#include "interp/interp_cpu.h"
#include "core/log.h"

static enum cpu_mode cpu_mode_of(const struct kvm_sregs *s)
{
    if (!(s->cr0 & 1))
        return MODE_REAL16;
    if ((s->efer & 0x400) && s->cs.l)
        return MODE_LONG64;
    return s->cs.db ? MODE_PROT32 : MODE_PROT16;
}

static const char *mode_name(enum cpu_mode m)
{
    static const char *const n[] = {"real", "16-bit protected", "32-bit protected", "64-bit long"};
    return n[m];
}

static void hex_bytes(const uint8_t *b, unsigned n, char *out, size_t outlen)
{
    size_t pos = 0;
    out[0] = '\0';
    for (unsigned i = 0; i < n && pos + 4 < outlen; i++)
        pos += (size_t)snprintf(out + pos, outlen - pos, "%s%02x", i ? " " : "", b[i]);
}

/* Run-ahead budget per exit: interrupts wait at most a few milliseconds. */
#define RUNAHEAD_MAX 2048

static struct xstate_layout host_layout;
static pthread_once_t host_layout_once = PTHREAD_ONCE_INIT;
static void host_layout_init(void) { xstate_layout_host(&host_layout); }

static const char *vector_name(uint8_t v)
{
    switch (v) {
    case VEC_BP: return "#BP";
    case VEC_UD: return "#UD";
    case VEC_NM: return "#NM";
    case VEC_SS: return "#SS";
    case VEC_GP: return "#GP";
    case VEC_PF: return "#PF";
    case VEC_MF: return "#MF";
    default: return "exception";
    }
}

static int inject(const struct interp_vcpu *v, struct kvm_sregs *sregs, const struct interp_event *e)
{
    if (e->set_cr2) {
        sregs->cr2 = e->cr2;
        if (ioctl(v->fd, KVM_SET_SREGS, sregs) < 0)
            return -errno;
    }
    struct kvm_vcpu_events ev;
    if (ioctl(v->fd, KVM_GET_VCPU_EVENTS, &ev) < 0)
        return -errno;
    ev.exception.injected = 1;
    ev.exception.nr = e->vector;
    ev.exception.has_error_code = e->has_error;
    ev.exception.error_code = e->error;
    ev.flags = 0;
    if (ioctl(v->fd, KVM_SET_VCPU_EVENTS, &ev) < 0)
        return -errno;
    return 0;
}

static int get_xcr0(const struct interp_vcpu *v, uint64_t *xcr0)
{
    struct kvm_xcrs x;
    memset(&x, 0, sizeof(x));
    if (ioctl(v->fd, KVM_GET_XCRS, &x) < 0)
        return -errno;
    *xcr0 = 1; /* x87 only, XCR0's value at reset */
    for (unsigned i = 0; i < x.nr_xcrs && i < KVM_MAX_XCRS; i++)
        if (x.xcrs[i].xcr == 0)
            *xcr0 = x.xcrs[i].value;
    return 0;
}

static int set_xcr0(const struct interp_vcpu *v, uint64_t xcr0)
{
    struct kvm_xcrs x;
    memset(&x, 0, sizeof(x));
    x.nr_xcrs = 1;
    x.xcrs[0].xcr = 0;
    x.xcrs[0].value = xcr0;
    return ioctl(v->fd, KVM_SET_XCRS, &x) < 0 ? -errno : 0;
}

struct one_msr {
    struct kvm_msrs hdr;
    struct kvm_msr_entry e;
};

/* An MSR's value, or 0 when KVM does not know it. */
static uint64_t get_msr(const struct interp_vcpu *v, uint32_t index)
{
    struct one_msr m;
    memset(&m, 0, sizeof(m));
    m.hdr.nmsrs = 1;
    m.e.index = index;
    return ioctl(v->fd, KVM_GET_MSRS, &m) == 1 ? m.e.data : 0;
}

static int set_msr(const struct interp_vcpu *v, uint32_t index, uint64_t value)
{
    struct one_msr m;
    memset(&m, 0, sizeof(m));
    m.hdr.nmsrs = 1;
    m.e.index = index;
    m.e.data = value;
    int n = ioctl(v->fd, KVM_SET_MSRS, &m);
    return n == 1 ? 0 : n < 0 ? -errno : -EINVAL;
}

int interp_emulation_failure(const struct interp_vcpu *v, struct errmsg *err)
{
    struct kvm_run *run = v->run;
    struct interp_cpu c;
    memset(&c, 0, sizeof(c));
    if (ioctl(v->fd, KVM_GET_REGS, &c.regs) < 0 || ioctl(v->fd, KVM_GET_SREGS, &c.sregs) < 0)
        return err_set(err, -errno, "vCPU %d: cannot read registers after an emulation failure", v->id);
    enum cpu_mode mode = cpu_mode_of(&c.sregs);
    uint64_t rip = c.regs.rip;

    uint8_t bytes[INSN_MAX_LEN];
    unsigned n = 0;
    if (run->emulation_failure.ndata >= 1 &&
        (run->emulation_failure.flags & KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES) &&
        run->emulation_failure.insn_size > 0) {
        n = run->emulation_failure.insn_size;
        if (n > INSN_MAX_LEN)
            n = INSN_MAX_LEN;
        memcpy(bytes, run->emulation_failure.insn_bytes, n);
    } else {
        /* KVM gave no bytes: fetch them through the guest's own page tables. */
        uint64_t lin = c.sregs.cs.base + rip;
        if (mode != MODE_LONG64)
            lin &= 0xffffffffULL;
        n = INSN_MAX_LEN;
        while (n && guest_read_linear(v->mem, &c.sregs, lin, bytes, n))
            n--; /* the instruction may end right before an unmapped page */
    }
    char hex[64];
    hex_bytes(bytes, n, hex, sizeof(hex));

    struct insn in;
    if (n == 0 || insn_decode(bytes, n, mode, &in))
        return err_set(err, -ENOSYS,
                       "vCPU %d: guest instruction at RIP %#llx (%s mode, bytes [%s]) cannot be run by the host's KVM "
                       "nor by Ember's interpreter",
                       v->id, (unsigned long long)rip, mode_name(mode), n ? hex : "unreadable");

    pthread_once(&host_layout_once, host_layout_init);
    c.mode = mode;
    c.gm = v->mem;
    c.xl = &host_layout;
    c.rng = interp_host_rng;
    struct kvm_xsave xsave;
    unsigned needs = interp_needs(in.kind);
    const char *what = interp_insn_name(in.kind);
    if (needs & INTERP_NEED_FPU) {
        struct kvm_fpu fpu;
        if (ioctl(v->fd, KVM_GET_FPU, &fpu) < 0)
            return err_set(err, -errno, "vCPU %d: KVM_GET_FPU failed: %s", v->id, strerror(errno));
        c.fcw = fpu.fcw;
        c.fsw = fpu.fsw;
    }
    if (needs & INTERP_NEED_XSAVE) {
        if (ioctl(v->fd, KVM_GET_XSAVE, &xsave) < 0)
            return err_set(err, -errno, "vCPU %d: %s at RIP %#llx: KVM_GET_XSAVE failed: %s", v->id, what,
                           (unsigned long long)rip, strerror(errno));
        c.xsave = (uint8_t *)xsave.region;
    }
    if (needs & INTERP_NEED_XCR0) {
        int rc = get_xcr0(v, &c.xcr0);
        if (rc)
            return err_set(err, rc, "vCPU %d: %s at RIP %#llx: KVM_GET_XCRS failed: %s", v->id, what,
                           (unsigned long long)rip, strerror(-rc));
    }
    if (needs & INTERP_NEED_XSS)
        c.xss = get_msr(v, MSR_IA32_XSS);
    if (needs & INTERP_NEED_TSC_AUX)
        c.tsc_aux = get_msr(v, MSR_TSC_AUX);

    int rc = interp_exec(&c, &in);
    if (rc < 0)
        return err_set(err, rc, "vCPU %d: %s at RIP %#llx (%s mode, bytes [%s]) cannot be interpreted: %s", v->id, what,
                       (unsigned long long)rip, mode_name(mode), hex, c.why);
    v->insn_counts[in.kind]++;
    if (!c.event.pending && interp_starts_runahead(in.kind))
        interp_run_ahead(&c, RUNAHEAD_MAX, v->insn_counts);

    if (c.xsave_dirty && ioctl(v->fd, KVM_SET_XSAVE, &xsave) < 0)
        return err_set(err, -errno, "vCPU %d: %s at RIP %#llx: KVM_SET_XSAVE failed: %s", v->id, what,
                       (unsigned long long)rip, strerror(errno));
    if (c.xcr0_dirty && (rc = set_xcr0(v, c.xcr0)))
        return err_set(err, rc, "vCPU %d: XSETBV at RIP %#llx: KVM_SET_XCRS refused XCR0 %#llx: %s", v->id,
                       (unsigned long long)rip, (unsigned long long)c.xcr0, strerror(-rc));
    if (c.msr_dirty && (rc = set_msr(v, c.msr_index, c.msr_value)))
        return err_set(err, rc, "vCPU %d: %s at RIP %#llx: KVM_SET_MSRS refused MSR %#x := %#llx", v->id, what,
                       (unsigned long long)rip, c.msr_index, (unsigned long long)c.msr_value);
    if (ioctl(v->fd, KVM_SET_REGS, &c.regs) < 0)
        return err_set(err, -errno, "vCPU %d: KVM_SET_REGS failed: %s", v->id, strerror(errno));
    if (c.event.pending) {
        if (c.event.vector != VEC_BP)
            log_debug("vCPU %d: %s at RIP %#llx raises %s (error code %#x%s)", v->id, what, (unsigned long long)rip,
                      vector_name(c.event.vector), c.event.error, c.event.set_cr2 ? ", CR2 set" : "");
        if ((rc = inject(v, &c.sregs, &c.event)))
            return err_set(err, rc, "vCPU %d: injecting %s after %s at RIP %#llx failed: %s", v->id,
                           vector_name(c.event.vector), what, (unsigned long long)rip, strerror(-rc));
    }
    return 0;
}
