/* interp: the XSAVE family (XSAVE, XSAVEOPT, XSAVEC, XSAVES, XRSTOR, XRSTORS, XGETBV, XSETBV). */
#include "test_interp_fixture.h"

TestSuite(xsave, .init = fx_setup, .fini = fx_teardown);

#define AREA 0x10000ULL /* 64-byte aligned, two pages of room */

static void fill(uint8_t *p, unsigned len, uint8_t seed)
{
    for (unsigned i = 0; i < len; i++)
        p[i] = (uint8_t)(seed + i * 7);
}

static int same(const uint8_t *a, const uint8_t *b, unsigned len) { return memcmp(a, b, len) == 0; }

/* An image with distinct bytes everywhere that matters and a valid MXCSR. */
static void image_pattern(uint64_t xinuse)
{
    fill(fx_img, 416, 0x11);
    fx_st32(fx_img + 24, 0x1fa0);  /* MXCSR */
    fx_st32(fx_img + 28, 0xffff);  /* MXCSR_MASK */
    fill(fx_img + 576, 256, 0x22); /* YMM_Hi128 */
    fill(fx_img + 832, 64, 0x33);  /* opmask */
    fill(fx_img + 896, 512, 0x44); /* ZMM_Hi256 */
    fill(fx_img + 1408, 1024, 0x55);
    fx_st64(fx_img + 512, xinuse);
}

static void set_mask(uint64_t m)
{
    fx_cpu.regs.rax = (m & 0xffffffff) | 0xabcdef0000000000ULL; /* upper halves are ignored */
    fx_cpu.regs.rdx = (m >> 32) | 0x1234567800000000ULL;
}

Test(xsave, standard_form_saves_requested_components)
{
    image_pattern(0x7);
    uint8_t *area = fx_ram + AREA;
    memset(area, 0xaa, 4096);
    fx_cpu.regs.rdi = AREA;
    set_mask(~0ULL);
    cr_assert_eq(FX_RUN(0x48, 0x0f, 0xae, 0x27), 0); /* xsave64 [rdi] */
    fx_expect_done(4);
    cr_assert(same(area, fx_img, 416), "legacy region (x87, MXCSR, XMM)");
    for (unsigned i = 416; i < 512; i++)
        cr_assert_eq(area[i], 0xaa, "byte %u of the legacy region is not written", i);
    cr_assert_eq(fx_ld64(area + 512), 0xaaaaaaaaaaaaaaafULL, "XSTATE_BV: RFBM bits = XINUSE, others kept");
    for (unsigned i = 520; i < 576; i++)
        cr_assert_eq(area[i], 0xaa, "header byte %u is left alone", i);
    cr_assert(same(area + 576, fx_img + 576, 256), "AVX state at its CPUID offset");
    cr_assert_eq(area[832], 0xaa, "AVX-512 not enabled in XCR0: not written");
    cr_assert_not(fx_cpu.xsave_dirty, "a save does not change the vCPU");
}

Test(xsave, standard_form_rfbm_subset_keeps_other_header_bits)
{
    image_pattern(0x7);
    uint8_t *area = fx_ram + AREA;
    memset(area, 0, 4096);
    fx_st64(area + 512, 0x6); /* SSE and AVX marked in use by an earlier save */
    fx_cpu.regs.rdi = AREA;
    set_mask(0x1);
    cr_assert_eq(FX_RUN(0x48, 0x0f, 0xae, 0x27), 0);
    fx_expect_done(4);
    cr_assert(same(area, fx_img, 24), "x87 control/status/pointers");
    cr_assert(same(area + 32, fx_img + 32, 128), "x87 registers");
    cr_assert_eq(fx_ld32(area + 24), 0, "MXCSR only with SSE or AVX requested");
    cr_assert_eq(area[160], 0, "XMM not requested");
    cr_assert_eq(fx_ld64(area + 512), 0x7, "bit 0 set from XINUSE, bits 1-2 kept");

    /* Only AVX requested: MXCSR goes with it, XMM does not. */
    memset(area, 0, 4096);
    set_mask(0x4);
    cr_assert_eq(FX_RUN(0x48, 0x0f, 0xae, 0x27), 0);
    cr_assert_eq(fx_ld32(area + 24), 0x1fa0);
    cr_assert_eq(area[160], 0);
    cr_assert(same(area + 576, fx_img + 576, 256));
    cr_assert_eq(fx_ld64(area + 512), 0x4);
}

Test(xsave, xsaveopt_writes_like_xsave)
{
    image_pattern(0x3);
    uint8_t *area = fx_ram + AREA;
    fx_cpu.regs.rdi = AREA;
    set_mask(0x7);
    cr_assert_eq(FX_RUN(0x48, 0x0f, 0xae, 0x37), 0); /* xsaveopt64 [rdi] */
    fx_expect_done(4);
    cr_assert(same(area, fx_img, 416));
    cr_assert_eq(fx_ld64(area + 512), 0x3, "AVX requested but in its initial state");
}

Test(xsave, legacy_32bit_pointer_format_without_rex_w)
{
    image_pattern(0x3);
    uint8_t *area = fx_ram + AREA;
    memset(area, 0xaa, 1024);
    fx_cpu.regs.rdi = AREA;
    set_mask(0x3);
    cr_assert_eq(FX_RUN(0x0f, 0xae, 0x27), 0); /* xsave [rdi] */
    fx_expect_done(3);
    cr_assert(same(area + 8, fx_img + 8, 4), "FIP offset");
    cr_assert_eq(fx_ld32(area + 12), 0, "FCS (unknown to KVM's image) written as 0");
    cr_assert(same(area + 16, fx_img + 16, 4), "FDP offset");
    cr_assert_eq(fx_ld32(area + 20), 0, "FDS written as 0");

    /* XRSTOR without REX.W zero-extends the 32-bit pointers. */
    fx_st32(area + 12, 0xffff);
    fx_st32(area + 24, 0x1f80);
    memset(area + 512, 0, 64); /* (the save kept the 0xaa header bits it does not own) */
    fx_st64(area + 512, 0x3);
    fx_cpu.regs.rip = FX_CODE;
    cr_assert_eq(FX_RUN(0x0f, 0xae, 0x2f), 0); /* xrstor [rdi] */
    fx_expect_done(3);
    cr_assert_eq(fx_ld64(fx_img + 8), fx_ld32(area + 8));
    cr_assert_eq(fx_ld64(fx_img + 16), fx_ld32(area + 16));
}

Test(xsave, compacted_form_xsavec)
{
    fx_cpu.xcr0 = 0xe7;
    image_pattern(0xe3); /* AVX (bit 2) in its initial state */
    uint8_t *area = fx_ram + AREA;
    memset(area, 0xaa, 8192);
    fx_cpu.regs.rdi = AREA;
    set_mask(~0ULL);
    cr_assert_eq(FX_RUN(0x48, 0x0f, 0xc7, 0x27), 0); /* xsavec64 [rdi] */
    fx_expect_done(4);
    cr_assert_eq(fx_ld64(area + 512), 0xe3, "XSTATE_BV");
    cr_assert_eq(fx_ld64(area + 520), 0x80000000000000e7ULL, "XCOMP_BV = RFBM | bit 63");
    for (unsigned i = 528; i < 576; i++)
        cr_assert_eq(area[i], 0xaa, "header byte %u is left alone", i);
    /* The layout follows XCOMP_BV (RFBM), not XINUSE: AVX keeps its 256 bytes. */
    cr_assert_eq(area[576], 0xaa, "AVX in its initial state: not written");
    cr_assert(same(area + 832, fx_img + 832, 64), "opmask right after AVX");
    cr_assert(same(area + 896, fx_img + 896, 512), "ZMM_Hi256");
    cr_assert(same(area + 1408, fx_img + 1408, 1024), "Hi16_ZMM");
    cr_assert_eq(area[2432], 0xaa, "nothing past the area");
}

Test(xsave, compacted_offsets_follow_alignment)
{
    cr_assert_eq(xstate_area_size(&fx_xl, 0x7, 0), 832);
    cr_assert_eq(xstate_area_size(&fx_xl, 0x3, 0), 576, "legacy region and header");
    cr_assert_eq(xstate_area_size(&fx_xl, 0xe7, 0), 2432);
    fx_xl.align64[5] = 1;
    cr_assert_eq(xstate_compacted_offset(&fx_xl, 0xe7, 2), 576);
    cr_assert_eq(xstate_compacted_offset(&fx_xl, 0xe7, 5), 832, "already aligned");
    cr_assert_eq(xstate_compacted_offset(&fx_xl, 0xe3, 5), 576, "AVX absent from XCOMP_BV");
    fx_xl.size[2] = 200;
    cr_assert_eq(xstate_compacted_offset(&fx_xl, 0xe7, 5), 832, "776 rounded up to 64");
    cr_assert_eq(xstate_compacted_offset(&fx_xl, 0xe7, 6), 896);
    fx_xl.align64[5] = 0;
    cr_assert_eq(xstate_compacted_offset(&fx_xl, 0xe7, 5), 776);
    cr_assert_eq(xstate_area_size(&fx_xl, 0xe7, 1), 776 + 64 + 512 + 1024);
}

Test(xsave, compacted_round_trip)
{
    fx_cpu.xcr0 = 0xe7;
    image_pattern(0xe7);
    uint8_t saved[XSAVE_IMAGE_SIZE];
    memcpy(saved, fx_img, sizeof(saved));
    fx_cpu.regs.rdi = AREA;
    set_mask(~0ULL);
    cr_assert_eq(FX_RUN(0x48, 0x0f, 0xc7, 0x2f), 0); /* xsaves64 [rdi] */
    fx_expect_done(4);
    memset(fx_img, 0x5a, sizeof(fx_img));
    fx_st64(fx_img + 512, 0);
    fx_cpu.regs.rip = FX_CODE;
    cr_assert_eq(FX_RUN(0x48, 0x0f, 0xc7, 0x1f), 0); /* xrstors64 [rdi] */
    fx_expect_done(4);
    cr_assert(fx_cpu.xsave_dirty);
    cr_assert(same(fx_img, saved, 28), "x87 and MXCSR restored");
    cr_assert(same(fx_img + 32, saved + 32, 416 - 32), "x87 and XMM registers restored");
    cr_assert(same(fx_img + 576, saved + 576, 2432 - 576), "extended components restored");
    cr_assert_eq(fx_ld64(fx_img + 512), 0xe7);
}

Test(xsave, standard_xrstor_loads_and_initialises)
{
    uint8_t *area = fx_ram + AREA;
    fill(area, 2432, 0x66);
    fx_st32(area + 24, 0x1f00); /* MXCSR in memory */
    fx_st64(area + 512, 0x5);   /* x87 and AVX from memory, SSE initialised */
    memset(area + 520, 0, 56);
    image_pattern(0x7);
    fx_st64(fx_img + 512, 0x80); /* a component outside RFBM stays as it was */
    uint8_t before[XSAVE_IMAGE_SIZE];
    memcpy(before, fx_img, sizeof(before));
    fx_cpu.regs.rdi = AREA;
    set_mask(0x7);
    cr_assert_eq(FX_RUN(0x48, 0x0f, 0xae, 0x2f), 0); /* xrstor64 [rdi] */
    fx_expect_done(4);
    cr_assert(same(fx_img, area, 24), "x87 loaded");
    cr_assert(same(fx_img + 32, area + 32, 128), "x87 registers loaded");
    cr_assert_eq(fx_ld32(fx_img + 24), 0x1f00, "standard form: MXCSR loaded with SSE/AVX requested");
    for (unsigned i = 160; i < 416; i++)
        cr_assert_eq(fx_img[i], 0, "XMM initialised (byte %u)", i);
    cr_assert(same(fx_img + 576, area + 576, 256), "AVX loaded");
    cr_assert(same(fx_img + 832, before + 832, 1600), "AVX-512 outside RFBM untouched");
    cr_assert_eq(fx_ld64(fx_img + 512), 0x87, "requested components now in use");
    cr_assert(fx_cpu.xsave_dirty);
}

Test(xsave, x87_initial_state)
{
    uint8_t *area = fx_ram + AREA;
    memset(area, 0, 1024);
    image_pattern(0x3);
    fx_cpu.regs.rdi = AREA;
    set_mask(0x1);
    cr_assert_eq(FX_RUN(0x48, 0x0f, 0xae, 0x2f), 0);
    fx_expect_done(4);
    cr_assert_eq(fx_img[0] | fx_img[1] << 8, 0x37f, "FCW");
    for (unsigned i = 2; i < 24; i++)
        cr_assert_eq(fx_img[i], 0, "byte %u", i);
    for (unsigned i = 32; i < 160; i++)
        cr_assert_eq(fx_img[i], 0, "ST byte %u", i);
    cr_assert_eq(fx_ld32(fx_img + 24), 0x1fa0, "MXCSR untouched when only x87 is requested");
    cr_assert_eq(fx_img[160], (uint8_t)(0x11 + 160 * 7), "XMM untouched");
}

Test(xsave, compacted_xrstor_initialises_mxcsr_with_sse)
{
    uint8_t *area = fx_ram + AREA;
    memset(area, 0, 1024);
    fx_st32(area + 24, 0x1f00);
    fx_st64(area + 512, 0x1);
    fx_st64(area + 520, 0x8000000000000007ULL);
    image_pattern(0x7);
    fx_cpu.regs.rdi = AREA;
    set_mask(0x7);
    cr_assert_eq(FX_RUN(0x48, 0x0f, 0xae, 0x2f), 0);
    fx_expect_done(4);
    cr_assert_eq(fx_ld32(fx_img + 24), 0x1f80, "SSE initialised: MXCSR to its default");
    for (unsigned i = 576; i < 832; i++)
        cr_assert_eq(fx_img[i], 0, "AVX initialised");
}

Test(xsave, compacted_xrstor_reads_compacted_offsets)
{
    fx_cpu.xcr0 = 0xe7;
    uint8_t *area = fx_ram + AREA;
    memset(area, 0, 4096);
    fx_st32(area + 24, 0x1f80);
    fx_st64(area + 512, 0x21);                  /* x87 and opmask */
    fx_st64(area + 520, 0x8000000000000023ULL); /* x87, SSE, opmask: opmask right at 576 */
    fill(area + 576, 64, 0x77);
    image_pattern(0xe7);
    fx_cpu.regs.rdi = AREA;
    set_mask(0xe7);
    cr_assert_eq(FX_RUN(0x48, 0x0f, 0xae, 0x2f), 0);
    fx_expect_done(4);
    cr_assert(same(fx_img + 832, area + 576, 64), "opmask from the compacted offset");
    for (unsigned i = 896; i < 2432; i++)
        cr_assert_eq(fx_img[i], 0, "ZMM components initialised (byte %u)", i);
}

static void expect_gp_unchanged(const uint8_t *before)
{
    fx_expect_fault(VEC_GP, 1, 0);
    cr_assert(same(fx_img, before, XSAVE_IMAGE_SIZE), "a faulting XRSTOR changes nothing");
    cr_assert_not(fx_cpu.xsave_dirty);
}

Test(xsave, xrstor_header_checks)
{
    uint8_t *area = fx_ram + AREA;
    image_pattern(0x7);
    uint8_t before[XSAVE_IMAGE_SIZE];
    memcpy(before, fx_img, sizeof(before));
    fx_cpu.regs.rdi = AREA;
    set_mask(0x7);
    struct {
        uint64_t bv, xcomp, word2;
        uint32_t mxcsr;
        const char *what;
    } cases[] = {
        {0x8, 0, 0, 0x1f80, "standard: XSTATE_BV bit not in XCR0"},
        {0x1, 0x1, 0, 0x1f80, "standard: XCOMP_BV not 0"},
        {0x1, 0, 0x1, 0x1f80, "standard: header bytes 16-23 not 0"},
        {0x3, 0, 0, 0x10000, "MXCSR reserved bit"},
        {0x1, 0x8000000000000009ULL, 0, 0x1f80, "compacted: XCOMP_BV bit not in XCR0"},
        {0x3, 0x8000000000000001ULL, 0, 0x1f80, "compacted: XSTATE_BV bit not in XCOMP_BV"},
        {0x1, 0x8000000000000001ULL, 0x1, 0x1f80, "compacted: header bytes 16-63 not 0"},
    };
    for (unsigned k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        memset(area, 0, 1024);
        fx_st32(area + 24, cases[k].mxcsr);
        fx_st64(area + 512, cases[k].bv);
        fx_st64(area + 520, cases[k].xcomp);
        fx_st64(area + 528, cases[k].word2);
        fx_cpu.regs.rip = FX_CODE;
        cr_assert_eq(FX_RUN(0x48, 0x0f, 0xae, 0x2f), 0, "%s", cases[k].what);
        cr_assert_eq(fx_cpu.event.vector, VEC_GP, "%s", cases[k].what);
        expect_gp_unchanged(before);
    }
    /* Byte 40 of the header: reserved in the compacted form only. */
    memset(area, 0, 1024);
    fx_st32(area + 24, 0x1f80);
    fx_st64(area + 512, 0x1);
    area[512 + 40] = 1;
    cr_assert_eq(FX_RUN(0x48, 0x0f, 0xae, 0x2f), 0);
    fx_expect_done(4);
}

Test(xsave, xrstors_needs_compacted_form_and_cpl0)
{
    uint8_t *area = fx_ram + AREA;
    memset(area, 0, 1024);
    fx_st32(area + 24, 0x1f80);
    fx_st64(area + 512, 0x1);
    image_pattern(0x7);
    uint8_t before[XSAVE_IMAGE_SIZE];
    memcpy(before, fx_img, sizeof(before));
    fx_cpu.regs.rdi = AREA;
    set_mask(0x7);
    cr_assert_eq(FX_RUN(0x48, 0x0f, 0xc7, 0x1f), 0);
    expect_gp_unchanged(before);

    fx_st64(area + 520, 0x8000000000000001ULL);
    fx_cpu.sregs.cs.selector = 0x33; /* CPL 3 */
    cr_assert_eq(FX_RUN(0x48, 0x0f, 0xc7, 0x1f), 0);
    expect_gp_unchanged(before);
    cr_assert_eq(FX_RUN(0x48, 0x0f, 0xc7, 0x2f), 0, "xsaves at CPL 3");
    fx_expect_fault(VEC_GP, 1, 0);
    fx_cpu.sregs.cs.selector = 0x10;
    cr_assert_eq(FX_RUN(0x48, 0x0f, 0xc7, 0x1f), 0);
    fx_expect_done(4);
}

Test(xsave, supervisor_components_are_refused)
{
    fx_cpu.xss = 0x800; /* CET_U */
    fx_xl.xss_mask = 0x1800;
    fx_cpu.regs.rdi = AREA;
    set_mask(~0ULL);
    cr_assert_lt(FX_RUN(0x48, 0x0f, 0xc7, 0x2f), 0);
    cr_assert(strstr(fx_cpu.why, "IA32_XSS") != NULL, "%s", fx_cpu.why);
    cr_assert_eq(fx_cpu.regs.rip, FX_CODE);
    cr_assert_not(fx_cpu.event.pending);
    set_mask(0x7); /* not requested: fine */
    cr_assert_eq(FX_RUN(0x48, 0x0f, 0xc7, 0x2f), 0);
    fx_expect_done(4);
}

Test(xsave, alignment_ud_and_nm)
{
    fx_cpu.regs.rdi = AREA + 32;
    set_mask(0x7);
    cr_assert_eq(FX_RUN(0x48, 0x0f, 0xae, 0x27), 0);
    fx_expect_fault(VEC_GP, 1, 0);
    cr_assert_eq(FX_RUN(0x48, 0x0f, 0xae, 0x2f), 0);
    fx_expect_fault(VEC_GP, 1, 0);

    fx_cpu.regs.rdi = AREA;
    fx_cpu.sregs.cr4 &= ~CR4_OSXSAVE;
    cr_assert_eq(FX_RUN(0x48, 0x0f, 0xae, 0x27), 0);
    fx_expect_fault(VEC_UD, 0, 0);
    cr_assert_eq(FX_RUN(0x0f, 0x01, 0xd0), 0, "xgetbv");
    fx_expect_fault(VEC_UD, 0, 0);
    fx_cpu.sregs.cr4 |= CR4_OSXSAVE;

    fx_xl.xsavec = 0;
    cr_assert_eq(FX_RUN(0x48, 0x0f, 0xc7, 0x27), 0, "xsavec on a CPU without it");
    fx_expect_fault(VEC_UD, 0, 0);
    fx_xl.xsavec = 1;

    fx_cpu.sregs.cr0 |= CR0_TS;
    cr_assert_eq(FX_RUN(0x48, 0x0f, 0xae, 0x2f), 0);
    fx_expect_fault(VEC_NM, 0, 0);
}

Test(xsave, page_faults)
{
    set_mask(0x7);
    /* Area in a page that is not present: the save faults on write, the restore on read. */
    fx_cpu.regs.rdi = FX_NOTPRESENT;
    cr_assert_eq(FX_RUN(0x48, 0x0f, 0xae, 0x27), 0);
    fx_expect_pf(FX_NOTPRESENT, PFEC_W);
    cr_assert_eq(FX_RUN(0x48, 0x0f, 0xae, 0x2f), 0);
    fx_expect_pf(FX_NOTPRESENT, 0);
    /* Read-only page: a save is a protection fault. */
    fx_cpu.regs.rdi = FX_READONLY;
    cr_assert_eq(FX_RUN(0x48, 0x0f, 0xae, 0x27), 0);
    fx_expect_pf(FX_READONLY, PFEC_P | PFEC_W);
    /* Area running into the not-present page: CR2 is the first byte there; nothing written. */
    fx_cpu.regs.rdi = FX_NOTPRESENT - 512;
    memset(fx_ram + FX_NOTPRESENT - 512, 0xaa, 512);
    image_pattern(0x7);
    cr_assert_eq(FX_RUN(0x48, 0x0f, 0xae, 0x27), 0);
    fx_expect_pf(FX_NOTPRESENT, PFEC_W);
    cr_assert_eq(fx_ram[FX_NOTPRESENT - 512], 0xaa, "no partial write");
    /* CPL 3 saving into a supervisor page. */
    fx_cpu.sregs.cs.selector = 0x33;
    fx_cpu.regs.rdi = AREA;
    cr_assert_eq(FX_RUN(0x48, 0x0f, 0xae, 0x27), 0);
    fx_expect_pf(AREA, PFEC_P | PFEC_W | PFEC_U);
    fx_cpu.regs.rdi = FX_USER;
    cr_assert_eq(FX_RUN(0x48, 0x0f, 0xae, 0x27), 0);
    fx_expect_done(4);
}

Test(xsave, area_spanning_two_pages_not_contiguous)
{
    /* Area at 0x53e00: the legacy region in page 0x53000, the header and AVX state in page
     * 0x54000, which maps to physical 0x60000 (not 0x54000). */
    image_pattern(0x7);
    fx_set_entry(FX_PT, FX_USER_RO >> 12, FX_USER_RO | P_ | RW_);
    uint64_t at = FX_REMAPPED - 0x200;
    fx_cpu.regs.rdi = at;
    set_mask(0x7);
    cr_assert_eq(FX_RUN(0x48, 0x0f, 0xae, 0x27), 0);
    fx_expect_done(4);
    cr_assert(same(fx_ram + at, fx_img, 416), "legacy region in the first page");
    cr_assert_eq(fx_ld64(fx_ram + FX_REMAP_TARGET), 0x7, "XSTATE_BV at physical 0x60000");
    cr_assert(same(fx_ram + FX_REMAP_TARGET + 0x40, fx_img + 576, 256), "AVX state at physical 0x60040");
    cr_assert_eq(fx_ld64(fx_ram + FX_REMAPPED), 0, "nothing at the identity address");

    /* And back: XRSTOR reads the same split area. */
    memset(fx_img, 0, sizeof(fx_img));
    fx_cpu.regs.rip = FX_CODE;
    cr_assert_eq(FX_RUN(0x48, 0x0f, 0xae, 0x2f), 0);
    fx_expect_done(4);
    cr_assert(same(fx_img + 576, fx_ram + FX_REMAP_TARGET + 0x40, 256));
}

Test(xsave, xgetbv)
{
    fx_cpu.xcr0 = 0xe7;
    fx_st64(fx_img + 512, 0x23);
    fx_cpu.regs.rcx = 0xffffffff00000000ULL; /* ECX = 0 */
    fx_cpu.regs.rax = fx_cpu.regs.rdx = ~0ULL;
    cr_assert_eq(FX_RUN(0x0f, 0x01, 0xd0), 0);
    fx_expect_done(3);
    cr_assert_eq(fx_cpu.regs.rax, 0xe7);
    cr_assert_eq(fx_cpu.regs.rdx, 0);
    fx_cpu.regs.rip = FX_CODE;
    fx_cpu.regs.rcx = 1;
    cr_assert_eq(FX_RUN(0x0f, 0x01, 0xd0), 0);
    fx_expect_done(3);
    cr_assert_eq(fx_cpu.regs.rax, 0x23, "XCR0 & XINUSE");
    fx_cpu.regs.rip = FX_CODE;
    fx_cpu.regs.rcx = 2;
    cr_assert_eq(FX_RUN(0x0f, 0x01, 0xd0), 0);
    fx_expect_fault(VEC_GP, 1, 0);
    fx_xl.xgetbv1 = 0;
    fx_cpu.regs.rcx = 1;
    cr_assert_eq(FX_RUN(0x0f, 0x01, 0xd0), 0);
    fx_expect_fault(VEC_GP, 1, 0);
}

Test(xsave, xsetbv)
{
    fx_cpu.regs.rcx = 0;
    fx_cpu.regs.rdx = 0;
    fx_cpu.regs.rax = 0xe7;
    cr_assert_eq(FX_RUN(0x0f, 0x01, 0xd1), 0);
    fx_expect_done(3);
    cr_assert(fx_cpu.xcr0_dirty);
    cr_assert_eq(fx_cpu.xcr0, 0xe7);
    static const uint64_t bad[] = {0x6, 0x5, 0x27, 0xe3, 0x8 | 0x7, 0x1ULL << 32 | 0x7};
    for (unsigned k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        fx_cpu.regs.rip = FX_CODE;
        fx_cpu.regs.rax = bad[k] & 0xffffffff;
        fx_cpu.regs.rdx = bad[k] >> 32;
        cr_assert_eq(FX_RUN(0x0f, 0x01, 0xd1), 0);
        fx_expect_fault(VEC_GP, 1, 0);
        cr_assert_not(fx_cpu.xcr0_dirty, "XCR0 %#llx refused", (unsigned long long)bad[k]);
    }
    fx_cpu.regs.rax = 0x3;
    fx_cpu.regs.rdx = 0;
    fx_cpu.regs.rcx = 1;
    cr_assert_eq(FX_RUN(0x0f, 0x01, 0xd1), 0);
    fx_expect_fault(VEC_GP, 1, 0);
    fx_cpu.regs.rcx = 0;
    fx_cpu.sregs.cs.selector = 0x33;
    cr_assert_eq(FX_RUN(0x0f, 0x01, 0xd1), 0);
    fx_expect_fault(VEC_GP, 1, 0);
}
