#include "interp.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#include "guest_walk.h"
#include "insn.h"
#include "vm.h"

#define VEC_BP 3
#define VEC_MF 16

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

static int inject_exception(struct vcpu *v, uint8_t vector)
{
    struct kvm_vcpu_events ev;
    if (ioctl(v->fd, KVM_GET_VCPU_EVENTS, &ev) < 0)
        return -errno;
    ev.exception.injected = 1;
    ev.exception.nr = vector;
    ev.exception.has_error_code = 0;
    ev.exception.error_code = 0;
    ev.flags = 0;
    if (ioctl(v->fd, KVM_SET_VCPU_EVENTS, &ev) < 0)
        return -errno;
    return 0;
}

/* x86 encoding order (rax, rcx, rdx, rbx, rsp, rbp, rsi, rdi, r8..) into struct kvm_regs. */
static __u64 *gpr(struct kvm_regs *r, unsigned n)
{
    __u64 *const map[16] = {&r->rax, &r->rcx, &r->rdx, &r->rbx, &r->rsp, &r->rbp, &r->rsi, &r->rdi,
                               &r->r8,  &r->r9,  &r->r10, &r->r11, &r->r12, &r->r13, &r->r14, &r->r15};
    return map[n & 15];
}

/* Effective linear address of a ModRM memory operand (64-bit and 32-bit addressing). */
static int mem_operand_address(const struct insn *in, struct kvm_regs *r, const struct kvm_sregs *s,
                               enum cpu_mode mode, uint64_t *lin)
{
    if (mode == MODE_REAL16 || mode == MODE_PROT16)
        return -EOPNOTSUPP;
    unsigned mod = in->modrm >> 6, rm = in->modrm & 7;
    uint64_t ea = (uint64_t)in->disp;
    if (in->has_sib) {
        unsigned base = (in->sib & 7) | ((in->rex & 1u) << 3);
        unsigned index = ((in->sib >> 3) & 7) | ((in->rex & 2u) << 2);
        unsigned scale = in->sib >> 6;
        if (!(mod == 0 && (in->sib & 7) == 5))
            ea += *gpr(r, base);
        if (index != 4)
            ea += *gpr(r, index) << scale;
    } else if (mod == 0 && rm == 5) {
        if (mode == MODE_LONG64)
            ea += r->rip + in->len; /* RIP-relative: from the next instruction */
    } else {
        ea += *gpr(r, insn_rm(in));
    }
    if (mode != MODE_LONG64)
        ea &= 0xffffffffULL;
    /* Only FS/GS carry a base in long mode; in 32-bit mode every segment may. */
    const struct kvm_segment *seg = &s->ds;
    if (in->seg == 0x64)
        seg = &s->fs;
    else if (in->seg == 0x65)
        seg = &s->gs;
    else if (in->seg == 0x26 && mode != MODE_LONG64)
        seg = &s->es;
    else if (in->seg == 0x36 && mode != MODE_LONG64)
        seg = &s->ss;
    else if (in->seg == 0x2e && mode != MODE_LONG64)
        seg = &s->cs;
    if (mode != MODE_LONG64 || in->seg == 0x64 || in->seg == 0x65)
        ea += seg->base;
    *lin = ea;
    return 0;
}

int interp_emulation_failure(struct vcpu *v, struct errmsg *err)
{
    struct kvm_run *run = v->run;
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    if (ioctl(v->fd, KVM_GET_REGS, &regs) < 0 || ioctl(v->fd, KVM_GET_SREGS, &sregs) < 0)
        return err_set(err, -errno, "vCPU %d: cannot read registers after an emulation failure", v->id);
    enum cpu_mode mode = cpu_mode_of(&sregs);

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
        uint64_t lin = sregs.cs.base + regs.rip;
        if (mode != MODE_LONG64)
            lin &= 0xffffffffULL;
        n = INSN_MAX_LEN;
        while (n && guest_read_linear(&v->vm->alloc.mem, &sregs, lin, bytes, n))
            n--; /* the instruction may end right before an unmapped page */
    }
    char hex[64];
    hex_bytes(bytes, n, hex, sizeof(hex));

    struct insn in;
    if (n == 0 || insn_decode(bytes, n, mode, &in))
        return err_set(err, -ENOSYS,
                       "vCPU %d: guest instruction at RIP %#llx (%s mode, bytes [%s]) cannot be run by the host's KVM nor by Ember's interpreter",
                       v->id, (unsigned long long)regs.rip, mode_name(mode), n ? hex : "unreadable");

    int rc = 0;
    switch (in.kind) {
    case INSN_INT3:
        /* A trap: the #BP handler sees RIP after the INT3, as on hardware. */
        regs.rip += in.len;
        if (ioctl(v->fd, KVM_SET_REGS, &regs) < 0)
            return err_set(err, -errno, "vCPU %d: KVM_SET_REGS failed", v->id);
        rc = inject_exception(v, VEC_BP);
        break;
    case INSN_FWAIT: {
        struct kvm_fpu fpu;
        if (ioctl(v->fd, KVM_GET_FPU, &fpu) < 0)
            return err_set(err, -errno, "vCPU %d: KVM_GET_FPU failed", v->id);
        if (fwait_pending_exception(fpu.fsw, fpu.fcw)) {
            rc = inject_exception(v, VEC_MF); /* a fault: RIP stays on FWAIT */
        } else {
            regs.rip += in.len;
            if (ioctl(v->fd, KVM_SET_REGS, &regs) < 0)
                return err_set(err, -errno, "vCPU %d: KVM_SET_REGS failed", v->id);
        }
        break;
    }
    case INSN_POPCNT: {
        uint64_t src;
        if (insn_rm_is_reg(&in)) {
            src = *gpr(&regs, insn_rm(&in));
        } else {
            uint64_t lin;
            src = 0;
            rc = mem_operand_address(&in, &regs, &sregs, mode, &lin);
            if (!rc)
                rc = guest_read_linear(&v->vm->alloc.mem, &sregs, lin, &src, in.opsize);
            if (rc)
                return err_set(err, rc,
                               "vCPU %d: POPCNT at RIP %#llx (bytes [%s]): memory operand not readable",
                               v->id, (unsigned long long)regs.rip, hex);
        }
        uint64_t rflags = regs.rflags;
        uint64_t count = popcnt_exec(src, in.opsize, &rflags);
        regs.rflags = rflags;
        __u64 *dst = gpr(&regs, insn_reg(&in));
        *dst = gpr_merge(*dst, count, in.opsize);
        regs.rip += in.len;
        if (ioctl(v->fd, KVM_SET_REGS, &regs) < 0)
            return err_set(err, -errno, "vCPU %d: KVM_SET_REGS failed", v->id);
        break;
    }
    default:
        return err_set(err, -ENOSYS, "vCPU %d: no routine for [%s]", v->id, hex);
    }
    if (rc)
        return err_set(err, rc, "vCPU %d: injecting an exception failed", v->id);
    v->stats.insns[in.kind]++;
    return 0;
}
