/* The interpreter's view of guest memory: operand addresses and checked linear accesses. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "interp/guest_walk.h"
#include "interp/interp_cpu.h"

__u64 *interp_gpr(struct kvm_regs *r, unsigned n)
{
    __u64 *const map[16] = {&r->rax, &r->rcx, &r->rdx, &r->rbx, &r->rsp, &r->rbp, &r->rsi, &r->rdi,
                            &r->r8,  &r->r9,  &r->r10, &r->r11, &r->r12, &r->r13, &r->r14, &r->r15};
    return map[n & 15];
}

unsigned interp_cpl(const struct interp_cpu *c)
{
    if (c->mode == MODE_REAL16)
        return 0;
    return c->sregs.cs.selector & 3u;
}

int interp_raise(struct interp_cpu *c, uint8_t vector, int has_error, uint32_t error)
{
    c->event.pending = 1;
    c->event.vector = vector;
    c->event.has_error = (uint8_t)(has_error != 0);
    c->event.error = error;
    return 1;
}

int interp_fail(struct interp_cpu *c, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->why, sizeof(c->why), fmt, ap);
    va_end(ap);
    return rc;
}

int interp_operand_address(struct interp_cpu *c, const struct insn *in, uint64_t *lin, int *ss)
{
    if (!in->has_modrm || (in->modrm >> 6) == 3)
        return interp_fail(c, -EINVAL, "instruction has no memory operand");
    if (in->addr_size == 2)
        return interp_fail(c, -EOPNOTSUPP, "16-bit addressing is not supported by the interpreter");
    struct kvm_regs *r = &c->regs;
    unsigned mod = in->modrm >> 6, rm = in->modrm & 7;
    uint64_t ea = (uint64_t)in->disp;
    int stack = 0;
    if (in->has_sib) {
        unsigned base = (in->sib & 7) | ((in->rex & 1u) << 3);
        unsigned index = ((in->sib >> 3) & 7) | ((in->rex & 2u) << 2);
        unsigned scale = in->sib >> 6;
        if (!(mod == 0 && (in->sib & 7) == 5)) {
            ea += *interp_gpr(r, base);
            stack = base == 4 || base == 5; /* rsp, rbp (not r12, r13) */
        }
        if (index != 4)
            ea += *interp_gpr(r, index) << scale;
    } else if (mod == 0 && rm == 5) {
        if (c->mode == MODE_LONG64)
            ea += r->rip + in->len; /* RIP-relative: from the next instruction */
    } else {
        ea += *interp_gpr(r, insn_rm(in));
        stack = insn_rm(in) == 5; /* rbp */
    }
    if (in->addr_size == 4)
        ea &= 0xffffffffULL;
    /* In long mode only FS and GS have a base; in 32-bit mode every segment may. */
    const struct kvm_segment *seg = stack ? &c->sregs.ss : &c->sregs.ds;
    switch (in->seg) {
    case 0x26: seg = &c->sregs.es; break;
    case 0x2e: seg = &c->sregs.cs; break;
    case 0x36: seg = &c->sregs.ss; break;
    case 0x3e: seg = &c->sregs.ds; break;
    case 0x64: seg = &c->sregs.fs; break;
    case 0x65: seg = &c->sregs.gs; break;
    }
    if (c->mode != MODE_LONG64 || seg == &c->sregs.fs || seg == &c->sregs.gs)
        ea += seg->base;
    if (c->mode != MODE_LONG64)
        ea &= 0xffffffffULL;
    *lin = ea;
    *ss = seg == &c->sregs.ss;
    return 0;
}

static int canonical(uint64_t lin) { return (uint64_t)((int64_t)(lin << 16) >> 16) == lin; }

/* Checks the linear range and translates the page holding `lin`: 0, 1 (fault raised) or < 0. */
static int translate(struct interp_cpu *c, uint64_t lin, int ss, unsigned len, unsigned access, uint64_t *gpa)
{
    if (c->mode == MODE_LONG64 && (!canonical(lin) || !canonical(lin + len - 1)))
        return interp_raise(c, ss ? VEC_SS : VEC_GP, 1, 0);
    if (interp_cpl(c) == 3)
        access |= GW_USER;
    if (c->regs.rflags & RFLAGS_AC)
        access |= GW_AC;
    uint32_t pfec = 0;
    int rc = guest_translate_access(c->gm, &c->sregs, lin, access, gpa, &pfec);
    if (rc == -EFAULT) {
        interp_raise(c, VEC_PF, 1, pfec);
        c->event.set_cr2 = 1;
        c->event.cr2 = lin;
        return 1;
    }
    if (rc == -EOPNOTSUPP)
        return interp_fail(c, rc, "guest paging mode not supported by the page walker (CR0 %#llx CR4 %#llx EFER %#llx)",
                           (unsigned long long)c->sregs.cr0, (unsigned long long)c->sregs.cr4,
                           (unsigned long long)c->sregs.efer);
    if (rc)
        return interp_fail(c, rc, "a page table for linear address %#llx lies outside guest RAM",
                           (unsigned long long)lin);
    return 0;
}

static unsigned page_chunk(uint64_t lin, unsigned len)
{
    unsigned room = 0x1000 - (unsigned)(lin & 0xfff);
    return len < room ? len : room;
}

static void *host_ptr(struct interp_cpu *c, uint64_t lin, uint64_t gpa, unsigned len)
{
    void *p = gm_ptr(c->gm, gpa, len);
    if (!p)
        interp_fail(c, -EFAULT, "linear address %#llx maps to guest-physical %#llx, which is not RAM",
                    (unsigned long long)lin, (unsigned long long)gpa);
    return p;
}

static int read_checked(struct interp_cpu *c, uint64_t lin, int ss, void *dst, unsigned len, unsigned access)
{
    uint8_t *out = dst;
    while (len) {
        unsigned chunk = page_chunk(lin, len);
        uint64_t gpa;
        int rc = translate(c, lin, ss, chunk, access, &gpa);
        if (rc)
            return rc;
        const void *p = host_ptr(c, lin, gpa, chunk);
        if (!p)
            return -EFAULT;
        memcpy(out, p, chunk);
        out += chunk;
        lin += chunk;
        len -= chunk;
        if (c->mode != MODE_LONG64)
            lin &= 0xffffffffULL;
    }
    return 0;
}

int interp_read(struct interp_cpu *c, uint64_t lin, int ss, void *dst, unsigned len)
{
    return read_checked(c, lin, ss, dst, len, 0);
}

int interp_read_for_write(struct interp_cpu *c, uint64_t lin, int ss, void *dst, unsigned len)
{
    return read_checked(c, lin, ss, dst, len, GW_WRITE);
}

#define WRITE_MAX_PAGES 8

int interp_write(struct interp_cpu *c, uint64_t lin, int ss, const void *src, unsigned len)
{
    uint8_t *dst[WRITE_MAX_PAGES];
    unsigned size[WRITE_MAX_PAGES], n = 0;
    uint64_t at = lin;
    /* Every page first: a fault leaves memory untouched. */
    for (unsigned left = len; left;) {
        if (n == WRITE_MAX_PAGES)
            return interp_fail(c, -E2BIG, "write of %u bytes spans too many pages", len);
        unsigned chunk = page_chunk(at, left);
        uint64_t gpa;
        int rc = translate(c, at, ss, chunk, GW_WRITE, &gpa);
        if (rc)
            return rc;
        dst[n] = host_ptr(c, at, gpa, chunk);
        if (!dst[n])
            return -EFAULT;
        size[n++] = chunk;
        at += chunk;
        left -= chunk;
        if (c->mode != MODE_LONG64)
            at &= 0xffffffffULL;
    }
    const uint8_t *s = src;
    for (unsigned k = 0; k < n; k++) {
        memcpy(dst[k], s, size[k]);
        s += size[k];
    }
    return 0;
}

int interp_map_write(struct interp_cpu *c, uint64_t lin, int ss, unsigned len, void **host)
{
    if (page_chunk(lin, len) != len)
        return interp_fail(c, -EINVAL, "access at %#llx crosses a page", (unsigned long long)lin);
    uint64_t gpa;
    int rc = translate(c, lin, ss, len, GW_WRITE, &gpa);
    if (rc)
        return rc;
    *host = host_ptr(c, lin, gpa, len);
    return *host ? 0 : -EFAULT;
}

unsigned interp_fetch(struct interp_cpu *c, uint8_t *buf, unsigned max)
{
    uint64_t lin = c->regs.rip + (c->mode == MODE_LONG64 ? 0 : c->sregs.cs.base);
    if (c->mode != MODE_LONG64)
        lin &= 0xffffffffULL;
    else if (!canonical(lin))
        return 0;
    unsigned got = 0;
    unsigned access = GW_FETCH | (interp_cpl(c) == 3 ? GW_USER : 0);
    while (got < max) {
        unsigned chunk = page_chunk(lin, max - got);
        uint64_t gpa;
        uint32_t pfec;
        if (guest_translate_access(c->gm, &c->sregs, lin, access, &gpa, &pfec))
            break;
        const void *p = gm_ptr(c->gm, gpa, chunk);
        if (!p)
            break;
        memcpy(buf + got, p, chunk);
        got += chunk;
        lin += chunk;
    }
    return got;
}
