/* The interpreter's routines on a vCPU snapshot (no KVM here: see interp.c for that). */
#include <cpuid.h>
#include <errno.h>
#include <string.h>

#include "interp/interp_cpu.h"

/* ---- host side of RDRAND/RDSEED and the atomics ---- */

static int host_has(unsigned leaf, unsigned reg, unsigned bit)
{
    unsigned r[4] = {0, 0, 0, 0};
    if (__get_cpuid_max(0, NULL) < leaf)
        return 0;
    __cpuid_count(leaf, 0, r[0], r[1], r[2], r[3]);
    return (r[reg] >> bit) & 1;
}

int interp_host_rng(int seed, uint64_t *out)
{
    /* The guest sees the host's CPUID, so the host has what the guest was told exists.
     * (Racing vCPU threads compute the same values.) */
    static _Atomic int have_rdrand = -1, have_rdseed = -1;
    if (have_rdrand < 0) {
        have_rdseed = host_has(7, 1, 18);
        have_rdrand = host_has(1, 2, 30);
    }
    for (int tries = 0; tries < (seed ? 1 : 10); tries++) {
        uint64_t v;
        uint8_t ok = 0;
        if (seed && have_rdseed)
            __asm__ volatile("rdseed %0; setc %1" : "=r"(v), "=qm"(ok) : : "cc");
        else if (!seed && have_rdrand)
            __asm__ volatile("rdrand %0; setc %1" : "=r"(v), "=qm"(ok) : : "cc");
        if (ok) {
            *out = v;
            return 1;
        }
    }
    return 0; /* what the guest then sees is CF=0: "no entropy now, retry" */
}

struct u128 {
    uint64_t lo, hi;
};

/* lock cmpxchg16b on host memory (16-byte aligned); lo and hi receive what memory held. */
static int host_cas16(void *p, uint64_t *lo, uint64_t *hi, uint64_t nlo, uint64_t nhi)
{
    uint8_t ok;
    struct u128 *m = p;
    __asm__ volatile("lock cmpxchg16b %1\n\tsete %0"
                     : "=q"(ok), "+m"(*m), "+a"(*lo), "+d"(*hi)
                     : "b"(nlo), "c"(nhi)
                     : "memory", "cc");
    return ok;
}

/* lock cmpxchg on 8 bytes of host memory (any alignment); old receives what memory held. */
static int host_cas8(void *p, uint64_t *old, uint64_t desired)
{
    uint8_t ok;
    struct {
        uint8_t b[8];
    } *m = p;
    __asm__ volatile("lock cmpxchgq %3, %1\n\tsete %0"
                     : "=q"(ok), "+m"(*m), "+a"(*old)
                     : "r"(desired)
                     : "memory", "cc");
    return ok;
}

/* ---- routines (rows of insn_table.h) ---- */

/* A trap: the #BP handler sees RIP after the INT3, as on hardware. */
int interp_run_int3(struct interp_cpu *c, const struct insn *in)
{
    c->regs.rip += in->len;
    c->rip_written = 1;
    interp_raise(c, VEC_BP, 0, 0);
    return 0;
}

int interp_run_fwait(struct interp_cpu *c, const struct insn *in)
{
    (void)in;
    return fwait_pending_exception(c->fsw, c->fcw) ? interp_raise(c, VEC_MF, 0, 0) : 0;
}

int interp_run_popcnt(struct interp_cpu *c, const struct insn *in)
{
    uint64_t src = 0;
    if (insn_rm_is_reg(in)) {
        src = *interp_gpr(&c->regs, insn_rm(in));
    } else {
        uint64_t lin;
        int ss;
        int rc = interp_operand_address(c, in, &lin, &ss);
        if (!rc)
            rc = interp_read(c, lin, ss, &src, in->opsize);
        if (rc)
            return rc;
    }
    uint64_t rflags = c->regs.rflags;
    uint64_t count = popcnt_exec(src, in->opsize, &rflags);
    c->regs.rflags = rflags;
    __u64 *dst = interp_gpr(&c->regs, insn_reg(in));
    *dst = gpr_merge(*dst, count, in->opsize);
    return 0;
}

int interp_run_cmpxchg(struct interp_cpu *c, const struct insn *in)
{
    unsigned size = in->kind == INSN_CMPXCHG16B ? 16 : 8;
    uint64_t lin;
    int ss;
    int rc = interp_operand_address(c, in, &lin, &ss);
    if (rc)
        return rc;
    if (size == 16 && (lin & 15))
        return interp_raise(c, VEC_GP, 1, 0);
    struct kvm_regs *r = &c->regs;
    uint64_t m_lo, m_hi = 0;
    void *p;
    rc = interp_map_write(c, lin, ss, size, &p);
    if (rc == -EINVAL && size == 8) {
        /* A CMPXCHG8B split across two pages: not atomic here (two separate host mappings). */
        uint8_t buf[8];
        if ((rc = interp_read_for_write(c, lin, ss, buf, 8)))
            return rc;
        memcpy(&m_lo, buf, 8);
        uint64_t expected = (r->rax & 0xffffffffULL) | (r->rdx << 32);
        if (m_lo == expected) {
            uint64_t desired = (r->rbx & 0xffffffffULL) | (r->rcx << 32);
            if ((rc = interp_write(c, lin, ss, &desired, 8)))
                return rc;
        }
    } else if (rc) {
        return rc;
    } else if (size == 16) {
        m_lo = r->rax;
        m_hi = r->rdx;
        host_cas16(p, &m_lo, &m_hi, r->rbx, r->rcx);
    } else {
        m_lo = (r->rax & 0xffffffffULL) | (r->rdx << 32);
        host_cas8(p, &m_lo, (r->rbx & 0xffffffffULL) | (r->rcx << 32));
    }
    uint64_t lo = r->rax, hi = r->rdx, rflags = r->rflags;
    if (!cmpxchg_exec(size, &lo, &hi, m_lo, m_hi, &rflags)) {
        r->rax = lo;
        r->rdx = hi;
    }
    r->rflags = rflags;
    return 0;
}

int interp_run_rdrand(struct interp_cpu *c, const struct insn *in)
{
    uint64_t v = 0, rflags = c->regs.rflags;
    int ok = c->rng ? c->rng(in->kind == INSN_RDSEED, &v) : 0;
    uint64_t res = rdrand_exec(ok, v, in->opsize, &rflags);
    c->regs.rflags = rflags;
    __u64 *dst = interp_gpr(&c->regs, insn_rm(in));
    *dst = gpr_merge(*dst, res, in->opsize);
    return 0;
}

/* CLAC/STAC: CPL 0 with CR4.SMAP only. */
int interp_run_clac_stac(struct interp_cpu *c, const struct insn *in)
{
    if (!(c->sregs.cr4 & CR4_SMAP) || interp_cpl(c) != 0)
        return interp_raise(c, VEC_UD, 0, 0);
    if (in->kind == INSN_STAC)
        c->regs.rflags |= RFLAGS_AC;
    else
        c->regs.rflags &= ~RFLAGS_AC;
    return 0;
}

/* RDFSBASE, RDGSBASE, WRFSBASE, WRGSBASE (64-bit mode, CR4.FSGSBASE). */
int interp_run_fsgsbase(struct interp_cpu *c, const struct insn *in)
{
    if (c->mode != MODE_LONG64 || !(c->sregs.cr4 & CR4_FSGSBASE))
        return interp_raise(c, VEC_UD, 0, 0);
    int gs = in->kind == INSN_RDGSBASE || in->kind == INSN_WRGSBASE;
    struct kvm_segment *seg = gs ? &c->sregs.gs : &c->sregs.fs;
    __u64 *reg = interp_gpr(&c->regs, insn_rm(in));
    unsigned size = in->opsize == 8 ? 8 : 4;
    if (in->kind == INSN_RDFSBASE || in->kind == INSN_RDGSBASE) {
        *reg = size == 8 ? seg->base : seg->base & 0xffffffffULL;
        return 0;
    }
    uint64_t base = size == 8 ? *reg : *reg & 0xffffffffULL;
    if ((uint64_t)((int64_t)(base << 16) >> 16) != base)
        return interp_raise(c, VEC_GP, 1, 0); /* not canonical */
    seg->base = base;
    c->msr_dirty = 1;
    c->msr_index = gs ? MSR_GS_BASE : MSR_FS_BASE;
    c->msr_value = base;
    return 0;
}

/* RDPID: IA32_TSC_AUX into a register (64-bit in long mode, where the upper half is 0). */
int interp_run_rdpid(struct interp_cpu *c, const struct insn *in)
{
    __u64 *reg = interp_gpr(&c->regs, insn_rm(in));
    *reg = c->mode == MODE_LONG64 ? (c->tsc_aux & 0xffffffffULL) : gpr_merge(*reg, c->tsc_aux, 4);
    return 0;
}

/* General registers with x86's 8-bit rule: without REX, 4-7 are AH, CH, DH, BH. */
static uint64_t reg_read(struct kvm_regs *r, unsigned n, unsigned size, int rex)
{
    if (size == 1 && !rex && n >= 4 && n < 8)
        return (*interp_gpr(r, n - 4) >> 8) & 0xff;
    uint64_t v = *interp_gpr(r, n);
    return size == 8 ? v : v & ((1ULL << (size * 8)) - 1);
}

static void reg_write(struct kvm_regs *r, unsigned n, unsigned size, int rex, uint64_t v)
{
    if (size == 1 && !rex && n >= 4 && n < 8) {
        __u64 *p = interp_gpr(r, n - 4);
        *p = (*p & ~0xff00ULL) | ((v & 0xff) << 8);
        return;
    }
    __u64 *p = interp_gpr(r, n);
    *p = gpr_merge(*p, v, size);
}

/* The plain instructions of a run-ahead (insn_scalar.c): register and immediate forms only. */
int interp_run_plain(struct interp_cpu *c, const struct insn *in)
{
    struct kvm_regs *r = &c->regs;
    unsigned size = in->opsize, op = in->opcode;
    int rex = in->rex != 0;
    uint64_t fl = r->rflags;
    if (in->map0f) {
        if (op == 0x1f)
            return 0; /* nop */
        if (jcc_taken(op & 15, fl)) {
            r->rip += in->len + (uint64_t)in->imm64;
            c->rip_written = 1;
        }
        return 0;
    }
    if (op == 0xeb || op == 0xe9 || (op >= 0x70 && op <= 0x7f)) {
        if (op == 0xeb || op == 0xe9 || jcc_taken(op & 15, fl)) {
            r->rip += in->len + (uint64_t)in->imm64;
            c->rip_written = 1;
        }
        return 0;
    }
    if (op == 0x90)
        return 0;
    if (op < 0x40) { /* add, sub, cmp: 00-05, 28-2D, 38-3D */
        unsigned alu = op >> 3, form = op & 7;
        uint64_t a, b;
        if (form <= 3) {
            uint64_t rm = reg_read(r, insn_rm(in), size, rex), reg = reg_read(r, insn_reg(in), size, rex);
            a = form <= 1 ? rm : reg;
            b = form <= 1 ? reg : rm;
        } else {
            a = reg_read(r, 0, size, rex);
            b = (uint64_t)in->imm64;
        }
        uint64_t res = alu_exec(alu, a, b, size, &fl);
        if (alu != 7)
            reg_write(r, form <= 1 ? insn_rm(in) : form <= 3 ? insn_reg(in) : 0, size, rex, res);
        r->rflags = fl;
        return 0;
    }
    switch (op) {
    case 0x80:
    case 0x81:
    case 0x83: {
        unsigned alu = insn_digit(in);
        uint64_t res = alu_exec(alu, reg_read(r, insn_rm(in), size, rex), (uint64_t)in->imm64, size, &fl);
        if (alu != 7)
            reg_write(r, insn_rm(in), size, rex, res);
        r->rflags = fl;
        return 0;
    }
    case 0xfe:
    case 0xff: {
        uint64_t res = alu_exec(insn_digit(in) ? 9 : 8, reg_read(r, insn_rm(in), size, rex), 1, size, &fl);
        reg_write(r, insn_rm(in), size, rex, res);
        r->rflags = fl;
        return 0;
    }
    case 0x88:
    case 0x89: reg_write(r, insn_rm(in), size, rex, reg_read(r, insn_reg(in), size, rex)); return 0;
    case 0x8a:
    case 0x8b: reg_write(r, insn_reg(in), size, rex, reg_read(r, insn_rm(in), size, rex)); return 0;
    case 0x8d: {
        struct insn ea = *in;
        ea.seg = 0; /* LEA: the effective address, no segment base */
        uint64_t lin;
        int ss;
        int rc = interp_operand_address(c, &ea, &lin, &ss);
        if (rc)
            return rc;
        reg_write(r, insn_reg(in), size, rex, lin);
        return 0;
    }
    case 0xc7: reg_write(r, insn_rm(in), size, rex, (uint64_t)in->imm64); return 0;
    }
    if (op >= 0xb0 && op <= 0xbf) {
        unsigned n = (op & 7) | ((in->rex & 1u) << 3);
        reg_write(r, n, size, rex, (uint64_t)in->imm64);
        return 0;
    }
    return interp_fail(c, -ENOSYS, "no run-ahead routine for opcode %#x", op);
}

int interp_exec(struct interp_cpu *c, const struct insn *in)
{
    memset(&c->event, 0, sizeof(c->event));
    c->why[0] = '\0';
    c->xsave_dirty = c->xcr0_dirty = c->msr_dirty = c->rip_written = 0;
    const struct interp_insn_row *row = interp_insn_row(in->kind);
    if (!row || !row->run)
        return interp_fail(c, -ENOSYS, "no routine for this instruction");
    struct kvm_regs saved = c->regs;
    int rc = row->run(c, in);
    if (rc == 0) {
        if (!c->rip_written)
            c->regs.rip += in->len;
    } else {
        /* A fault (rc 1) or a failure: the instruction did not happen. (Routines change the
         * XSAVE image only once nothing can fault any more.) */
        c->regs = saved;
        c->xsave_dirty = c->xcr0_dirty = c->msr_dirty = 0;
        if (rc < 0)
            memset(&c->event, 0, sizeof(c->event));
    }
    return rc < 0 ? rc : 0;
}

unsigned interp_run_ahead(struct interp_cpu *c, unsigned max, uint64_t *counts)
{
    int dirty = c->xsave_dirty;
    unsigned ran = 0;
    while (ran < max && !(c->regs.rflags & 0x100ULL)) { /* TF: single steps are KVM's */
        uint8_t bytes[INSN_MAX_LEN];
        unsigned n = interp_fetch(c, bytes, sizeof(bytes));
        struct insn in;
        if (!n || insn_decode_runahead(bytes, n, c->mode, &in) || !interp_runahead_ok(in.kind))
            break;
        if (interp_exec(c, &in) < 0)
            break; /* not ours after all (nothing changed): KVM runs it or reports it */
        dirty |= c->xsave_dirty;
        counts[in.kind]++;
        ran++;
        if (c->event.pending)
            break; /* a fault: RIP is on the instruction, the caller delivers it */
    }
    c->xsave_dirty = dirty;
    return ran;
}
