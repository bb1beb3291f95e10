/*
 * The XSAVE family: XSAVE, XSAVEOPT, XSAVEC, XSAVES, XRSTOR, XRSTORS, and
 * XGETBV/XSETBV, on KVM's XSAVE image of the vCPU (standard format, what
 * KVM_GET_XSAVE returns and KVM_SET_XSAVE takes).
 *
 * The guest's XSAVE area is in either format: standard (components at the
 * CPUID offsets) or compacted (XCOMP_BV[63] set: the components listed in
 * XCOMP_BV packed from byte 576, some 64-byte aligned). The image's
 * XSTATE_BV stands for XINUSE (which components are not in their initial
 * state); after an XRSTOR every requested component counts as in use, which
 * only costs later XSAVEs writing initial values explicitly.
 */
#include <cpuid.h>
#include <errno.h>
#include <string.h>

#include "interp/interp_cpu.h"
#include "core/le.h"

/* Legacy (FXSAVE) region. */
#define LEG_FCW 0
#define LEG_FIP 8
#define LEG_FDP 16
#define LEG_MXCSR 24
#define LEG_MXCSR_MASK 28
#define LEG_ST 32
#define LEG_XMM 160
#define MXCSR_INIT 0x1f80u
#define FCW_INIT 0x37fu

#define X_FP 0x1ULL
#define X_SSE 0x2ULL
#define X_YMM 0x4ULL

void xstate_layout_host(struct xstate_layout *xl)
{
    unsigned a, b, c, d;
    memset(xl, 0, sizeof(*xl));
    struct {
        _Alignas(16) uint8_t b[512];
    } fx;
    memset(&fx, 0, sizeof(fx));
    __asm__ volatile("fxsave %0" : "=m"(fx));
    xl->mxcsr_mask = le_ld32(fx.b + LEG_MXCSR_MASK);
    if (__get_cpuid_max(0, NULL) < 0xd)
        return;
    __cpuid_count(1, 0, a, b, c, d);
    if (!(c & (1u << 26)))
        return; /* no XSAVE */
    __cpuid_count(0xd, 0, a, b, c, d);
    xl->xcr0_mask = a | (uint64_t)d << 32;
    __cpuid_count(0xd, 1, a, b, c, d);
    xl->xsaveopt = a & 1;
    xl->xsavec = (a >> 1) & 1;
    xl->xgetbv1 = (a >> 2) & 1;
    xl->xsaves = (a >> 3) & 1;
    xl->xss_mask = c | (uint64_t)d << 32;
    for (unsigned i = 2; i < 64; i++) {
        if (!(((xl->xcr0_mask | xl->xss_mask) >> i) & 1))
            continue;
        __cpuid_count(0xd, i, a, b, c, d);
        xl->size[i] = a;
        xl->offset[i] = b; /* 0 for supervisor components: they have no standard place */
        xl->align64[i] = (c >> 1) & 1;
    }
}

uint32_t xstate_compacted_offset(const struct xstate_layout *xl, uint64_t xcomp_bv, unsigned i)
{
    uint32_t off = XSAVE_EXT;
    for (unsigned j = 2; j < i && j < 63; j++) {
        if (!((xcomp_bv >> j) & 1))
            continue;
        if (xl->align64[j])
            off = (off + 63) & ~63u;
        off += xl->size[j];
    }
    if (i < 64 && xl->align64[i])
        off = (off + 63) & ~63u;
    return off;
}

/* End of the components of `mask` in an area laid out for `xcomp_bv` (compacted) or the CPUID offsets. */
static uint32_t area_end(const struct xstate_layout *xl, uint64_t xcomp_bv, uint64_t mask, int compacted)
{
    uint32_t end = XSAVE_EXT;
    for (unsigned i = 2; i < 63; i++) {
        if (!((mask >> i) & 1))
            continue;
        uint32_t off = compacted ? xstate_compacted_offset(xl, xcomp_bv, i) : xl->offset[i];
        if (off + xl->size[i] > end)
            end = off + xl->size[i];
    }
    return end;
}

uint32_t xstate_area_size(const struct xstate_layout *xl, uint64_t mask, int compacted)
{
    return area_end(xl, mask, mask, compacted);
}

/* Where component i (>= 2) sits in the guest's area. */
static uint32_t guest_offset(const struct xstate_layout *xl, int compacted, uint64_t xcomp_bv, unsigned i)
{
    return compacted ? xstate_compacted_offset(xl, xcomp_bv, i) : xl->offset[i];
}

/* XMM registers the legacy region holds in this mode. */
static unsigned xmm_bytes(const struct interp_cpu *c) { return c->mode == MODE_LONG64 ? 256 : 128; }

/*
 * x87 state between the image (64-bit pointer format) and the guest's area.
 * Without REX.W the area uses the 32-bit format: FIP/FDP offsets with FCS/FDS
 * selectors, which KVM's image does not keep (they are written as 0).
 */
static void x87_to_area(uint8_t *area, const uint8_t *img, int rex_w)
{
    memcpy(area, img, LEG_FIP);
    if (rex_w) {
        memcpy(area + LEG_FIP, img + LEG_FIP, 16);
    } else {
        memcpy(area + LEG_FIP, img + LEG_FIP, 4);
        memset(area + LEG_FIP + 4, 0, 4);
        memcpy(area + LEG_FDP, img + LEG_FDP, 4);
        memset(area + LEG_FDP + 4, 0, 4);
    }
    memcpy(area + LEG_ST, img + LEG_ST, LEG_XMM - LEG_ST);
}

static void x87_from_area(uint8_t *img, const uint8_t *area, int rex_w)
{
    memcpy(img, area, LEG_FIP);
    if (rex_w) {
        memcpy(img + LEG_FIP, area + LEG_FIP, 16);
    } else {
        le_st64(img + LEG_FIP, le_ld32(area + LEG_FIP));
        le_st64(img + LEG_FDP, le_ld32(area + LEG_FDP));
    }
    memcpy(img + LEG_ST, area + LEG_ST, LEG_XMM - LEG_ST);
}

static void x87_init(uint8_t *img)
{
    memset(img, 0, LEG_MXCSR);
    le_st16(img + LEG_FCW, FCW_INIT); /* FSW 0, all tags empty (abridged FTW 0), pointers 0 */
    memset(img + LEG_ST, 0, LEG_XMM - LEG_ST);
}

/* XSAVE, XSAVEOPT (standard format) and XSAVEC, XSAVES (compacted). */
static int do_save(struct interp_cpu *c, const struct insn *in, uint64_t lin, int ss, uint64_t rfbm, int compacted)
{
    const struct xstate_layout *xl = c->xl;
    const uint8_t *img = c->xsave;
    uint64_t xinuse = le_ld64(img + XSAVE_HDR) & c->xcr0;
    uint64_t xcomp = rfbm | XCOMP_COMPACTED;
    uint32_t size = xstate_area_size(xl, rfbm, compacted);
    uint8_t area[XSAVE_IMAGE_SIZE];
    if (size > sizeof(area))
        return interp_fail(c, -E2BIG, "XSAVE area of %u bytes is larger than KVM's image", size);
    /* Read what is there (bytes the instruction leaves alone must stay), with write checks. */
    int rc = interp_read_for_write(c, lin, ss, area, size);
    if (rc)
        return rc;
    int rex_w = (in->rex & 8) != 0;
    if ((rfbm & X_FP) && (!compacted || (xinuse & X_FP)))
        x87_to_area(area, img, rex_w);
    if (rfbm & (X_SSE | X_YMM))
        memcpy(area + LEG_MXCSR, img + LEG_MXCSR, 8); /* MXCSR and MXCSR_MASK */
    if ((rfbm & X_SSE) && (!compacted || (xinuse & X_SSE)))
        memcpy(area + LEG_XMM, img + LEG_XMM, xmm_bytes(c));
    for (unsigned i = 2; i < 63; i++) {
        if (!((rfbm >> i) & 1) || (compacted && !((xinuse >> i) & 1)))
            continue;
        memcpy(area + guest_offset(xl, compacted, xcomp, i), img + xl->offset[i], xl->size[i]);
    }
    if (compacted) {
        le_st64(area + XSAVE_HDR, xinuse & rfbm);
        le_st64(area + XSAVE_HDR + 8, xcomp);
    } else {
        uint64_t bv = le_ld64(area + XSAVE_HDR);
        le_st64(area + XSAVE_HDR, (bv & ~rfbm) | (xinuse & rfbm));
    }
    return interp_write(c, lin, ss, area, size);
}

static int nonzero(const uint8_t *p, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        if (p[i])
            return 1;
    return 0;
}

/* XRSTOR (either format) and XRSTORS (compacted only). */
static int do_restore(struct interp_cpu *c, const struct insn *in, uint64_t lin, int ss, uint64_t rfbm, int xrstors)
{
    const struct xstate_layout *xl = c->xl;
    uint8_t *img = c->xsave;
    uint8_t area[XSAVE_IMAGE_SIZE];
    int rc = interp_read(c, lin, ss, area, XSAVE_EXT);
    if (rc)
        return rc;
    uint64_t bv = le_ld64(area + XSAVE_HDR), xcomp = le_ld64(area + XSAVE_HDR + 8);
    int compacted = (xcomp & XCOMP_COMPACTED) != 0;
    /* The header checks of the SDM (13.8): any failure is #GP(0) and changes nothing. */
    if (compacted) {
        uint64_t allowed = c->xcr0 | (xrstors ? c->xss : 0);
        if (!xl->xsavec || (xcomp & ~XCOMP_COMPACTED & ~allowed) || (bv & ~xcomp) || nonzero(area + XSAVE_HDR + 16, 48))
            return interp_raise(c, VEC_GP, 1, 0);
    } else {
        if (xrstors || (bv & ~c->xcr0) || nonzero(area + XSAVE_HDR + 8, 16))
            return interp_raise(c, VEC_GP, 1, 0);
    }
    /* The components to load from memory, and how far they reach. */
    uint64_t load = rfbm & bv;
    uint32_t size = area_end(xl, xcomp, load, compacted);
    if (size > sizeof(area))
        return interp_fail(c, -E2BIG, "XSAVE area of %u bytes is larger than KVM's image", size);
    if (size > XSAVE_EXT && (rc = interp_read(c, lin + XSAVE_EXT, ss, area + XSAVE_EXT, size - XSAVE_EXT)))
        return rc;
    /* MXCSR: the standard form loads it with SSE or AVX requested; the compacted one with SSE state. */
    int load_mxcsr = compacted ? (load & X_SSE) != 0 : (rfbm & (X_SSE | X_YMM)) != 0;
    uint32_t mxcsr = le_ld32(area + LEG_MXCSR);
    uint32_t mxcsr_mask = xl->mxcsr_mask ? xl->mxcsr_mask : 0xffbf;
    if (load_mxcsr && (mxcsr & ~mxcsr_mask))
        return interp_raise(c, VEC_GP, 1, 0);

    int rex_w = (in->rex & 8) != 0;
    if (rfbm & X_FP) {
        if (load & X_FP)
            x87_from_area(img, area, rex_w);
        else
            x87_init(img);
    }
    if (rfbm & X_SSE) {
        if (load & X_SSE)
            memcpy(img + LEG_XMM, area + LEG_XMM, xmm_bytes(c));
        else
            memset(img + LEG_XMM, 0, xmm_bytes(c));
    }
    if (load_mxcsr)
        le_st32(img + LEG_MXCSR, mxcsr);
    else if (compacted && (rfbm & X_SSE))
        le_st32(img + LEG_MXCSR, MXCSR_INIT);
    for (unsigned i = 2; i < 63; i++) {
        if (!((rfbm >> i) & 1))
            continue;
        if ((load >> i) & 1)
            memcpy(img + xl->offset[i], area + guest_offset(xl, compacted, xcomp, i), xl->size[i]);
        else
            memset(img + xl->offset[i], 0, xl->size[i]); /* every extended component's initial state is 0 */
    }
    le_st64(img + XSAVE_HDR, le_ld64(img + XSAVE_HDR) | rfbm);
    c->xsave_dirty = 1;
    return 0;
}

int interp_run_xsave(struct interp_cpu *c, const struct insn *in)
{
    const struct xstate_layout *xl = c->xl;
    enum interp_insn k = in->kind;
    int supervisor = k == INSN_XSAVES || k == INSN_XRSTORS;
    if (!(c->sregs.cr4 & CR4_OSXSAVE) || !xl->xcr0_mask || (k == INSN_XSAVEOPT && !xl->xsaveopt) ||
        (k == INSN_XSAVEC && !xl->xsavec) || (supervisor && !xl->xsaves))
        return interp_raise(c, VEC_UD, 0, 0);
    if (c->sregs.cr0 & CR0_TS)
        return interp_raise(c, VEC_NM, 0, 0);
    if (supervisor && interp_cpl(c) != 0)
        return interp_raise(c, VEC_GP, 1, 0);
    uint64_t lin;
    int ss;
    int rc = interp_operand_address(c, in, &lin, &ss);
    if (rc)
        return rc;
    if (lin & 63)
        return interp_raise(c, VEC_GP, 1, 0);
    uint64_t req = (c->regs.rdx & 0xffffffffULL) << 32 | (c->regs.rax & 0xffffffffULL);
    uint64_t rfbm = (c->xcr0 | (supervisor ? c->xss : 0)) & req;
    if (rfbm & ~c->xcr0)
        return interp_fail(c, -ENOTSUP,
                           "supervisor state components %#llx (IA32_XSS) cannot be moved through KVM's XSAVE image",
                           (unsigned long long)(rfbm & ~c->xcr0));
    for (unsigned i = 2; i < 63; i++)
        if (((rfbm >> i) & 1) && (!xl->size[i] || xl->offset[i] + xl->size[i] > XSAVE_IMAGE_SIZE))
            return interp_fail(c, -ENOTSUP, "XSAVE component %u does not fit KVM's XSAVE image", i);
    if (k == INSN_XRSTOR || k == INSN_XRSTORS)
        return do_restore(c, in, lin, ss, rfbm, k == INSN_XRSTORS);
    return do_save(c, in, lin, ss, rfbm, k == INSN_XSAVEC || k == INSN_XSAVES);
}

int interp_run_xgetbv(struct interp_cpu *c, const struct insn *in)
{
    (void)in;
    if (!(c->sregs.cr4 & CR4_OSXSAVE))
        return interp_raise(c, VEC_UD, 0, 0);
    uint32_t ecx = (uint32_t)c->regs.rcx;
    uint64_t v;
    if (ecx == 0)
        v = c->xcr0;
    else if (ecx == 1 && c->xl->xgetbv1)
        v = c->xcr0 & le_ld64(c->xsave + XSAVE_HDR); /* XINUSE */
    else
        return interp_raise(c, VEC_GP, 1, 0);
    c->regs.rax = v & 0xffffffffULL;
    c->regs.rdx = v >> 32;
    return 0;
}

int interp_run_xsetbv(struct interp_cpu *c, const struct insn *in)
{
    (void)in;
    if (!(c->sregs.cr4 & CR4_OSXSAVE))
        return interp_raise(c, VEC_UD, 0, 0);
    if (interp_cpl(c) != 0 || (uint32_t)c->regs.rcx != 0)
        return interp_raise(c, VEC_GP, 1, 0);
    uint64_t v = (c->regs.rdx & 0xffffffffULL) << 32 | (c->regs.rax & 0xffffffffULL);
    uint64_t avx512 = 0xe0;
    if (!(v & X_FP) || (v & ~c->xl->xcr0_mask) || ((v & X_YMM) && !(v & X_SSE)) ||
        ((v & avx512) && ((v & avx512) != avx512 || !(v & X_YMM))) || (((v >> 3) & 1) != ((v >> 4) & 1)) ||
        (((v >> 17) & 1) != ((v >> 18) & 1)))
        return interp_raise(c, VEC_GP, 1, 0);
    c->xcr0 = v;
    c->xcr0_dirty = 1;
    return 0;
}
