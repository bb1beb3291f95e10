/*
 * Shared set-up for the interpreter's unit tests: 4 MiB of guest RAM with
 * 4-level page tables, a 64-bit CPL-0 vCPU snapshot, a synthetic XSAVE layout
 * and image. Included by each tests/unit/test_interp_*.c (static helpers).
 *
 * Linear map (identity unless said otherwise):
 *   [0, 2 MiB)      4 KiB pages, supervisor read/write, except:
 *     0x50000       not present
 *     0x51000       read-only
 *     0x52000       user read/write
 *     0x53000       user read-only
 *     0x54000       -> physical 0x60000 (so 0x53000..0x54fff is not contiguous)
 *   [2 MiB, 4 MiB)  one 2 MiB page, supervisor read/write
 * Page tables: PML4 0x1000, PDPT 0x2000, PD 0x3000, PT 0x4000.
 */
#ifndef TEST_INTERP_FIXTURE_H
#define TEST_INTERP_FIXTURE_H

#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "interp/guest_walk.h"
#include "interp/insn.h"
#include "interp/interp_cpu.h"

#define FX_RAM (4ULL << 20)
#define FX_PML4 0x1000ULL
#define FX_PDPT 0x2000ULL
#define FX_PD 0x3000ULL
#define FX_PT 0x4000ULL
#define FX_NOTPRESENT 0x50000ULL
#define FX_READONLY 0x51000ULL
#define FX_USER 0x52000ULL
#define FX_USER_RO 0x53000ULL
#define FX_REMAPPED 0x54000ULL
#define FX_REMAP_TARGET 0x60000ULL
#define FX_CODE 0x8000ULL /* RIP of the instruction under test */

#define P_ 0x1ULL
#define RW_ 0x2ULL
#define US_ 0x4ULL
#define A_ 0x20ULL
#define D_ 0x40ULL
#define PS_ 0x80ULL

static uint8_t *fx_ram;
static struct guest_mem fx_gm;
static struct interp_cpu fx_cpu;
static struct xstate_layout fx_xl;
static uint8_t fx_img[XSAVE_IMAGE_SIZE];

static inline void fx_set_entry(uint64_t table, unsigned idx, uint64_t val)
{
    memcpy(fx_ram + table + idx * 8, &val, 8);
}
static inline uint64_t fx_entry(uint64_t table, unsigned idx)
{
    uint64_t v;
    memcpy(&v, fx_ram + table + idx * 8, 8);
    return v;
}
static inline uint64_t fx_pte(uint64_t lin) { return fx_entry(FX_PT, (unsigned)(lin >> 12) & 511); }

/* Layout like a CPU with x87, SSE, AVX and AVX-512 (XCR0 0xe7), standard offsets as on AMD Zen 4. */
static inline void fx_layout(struct xstate_layout *xl)
{
    memset(xl, 0, sizeof(*xl));
    xl->xcr0_mask = 0xe7;
    xl->size[2] = 256, xl->offset[2] = 576;
    xl->size[5] = 64, xl->offset[5] = 832;
    xl->size[6] = 512, xl->offset[6] = 896;
    xl->size[7] = 1024, xl->offset[7] = 1408;
    xl->xsaveopt = xl->xsavec = xl->xgetbv1 = xl->xsaves = 1;
    xl->mxcsr_mask = 0xffff;
}

static inline uint64_t fx_ld64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}
static inline void fx_st64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static inline uint32_t fx_ld32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
static inline void fx_st32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }

static inline void fx_setup(void)
{
    fx_ram = calloc(1, FX_RAM);
    cr_assert_not_null(fx_ram);
    cr_assert_eq(guest_mem_init_with(&fx_gm, FX_RAM, fx_ram), 0);
    fx_set_entry(FX_PML4, 0, FX_PDPT | P_ | RW_ | US_);
    fx_set_entry(FX_PDPT, 0, FX_PD | P_ | RW_ | US_);
    fx_set_entry(FX_PD, 0, FX_PT | P_ | RW_ | US_);
    fx_set_entry(FX_PD, 1, 0x200000ULL | P_ | RW_ | PS_);
    for (unsigned i = 0; i < 512; i++)
        fx_set_entry(FX_PT, i, ((uint64_t)i << 12) | P_ | RW_);
    fx_set_entry(FX_PT, FX_NOTPRESENT >> 12, FX_NOTPRESENT | RW_);
    fx_set_entry(FX_PT, FX_READONLY >> 12, FX_READONLY | P_);
    fx_set_entry(FX_PT, FX_USER >> 12, FX_USER | P_ | RW_ | US_);
    fx_set_entry(FX_PT, FX_USER_RO >> 12, FX_USER_RO | P_ | US_);
    fx_set_entry(FX_PT, FX_REMAPPED >> 12, FX_REMAP_TARGET | P_ | RW_);

    memset(&fx_cpu, 0, sizeof(fx_cpu));
    struct kvm_sregs *s = &fx_cpu.sregs;
    s->cr0 = 0x80010033ULL; /* PG WP NE ET MP PE */
    s->cr3 = FX_PML4;
    s->cr4 = 0x20ULL | 0x200ULL | CR4_OSXSAVE; /* PAE OSFXSR OSXSAVE */
    s->efer = 0xd00ULL;                        /* NXE LMA LME */
    s->cs.selector = 0x10, s->cs.l = 1;
    s->ss.selector = 0x18;
    fx_cpu.regs.rip = FX_CODE;
    fx_cpu.regs.rflags = 0x2;
    fx_cpu.mode = MODE_LONG64;
    fx_cpu.gm = &fx_gm;
    fx_layout(&fx_xl);
    fx_cpu.xl = &fx_xl;
    memset(fx_img, 0, sizeof(fx_img));
    fx_cpu.xsave = fx_img;
    fx_cpu.xcr0 = 0x7;
}

static inline void fx_teardown(void) { free(fx_ram); }

/* Decodes the bytes (64-bit mode) and runs them on fx_cpu; returns interp_exec's result. */
#define FX_RUN(...)                                                                \
    ({                                                                             \
        static const uint8_t b_[] = {__VA_ARGS__};                                 \
        struct insn in_;                                                           \
        cr_assert_eq(insn_decode(b_, sizeof(b_), fx_cpu.mode, &in_), 0, "decode"); \
        interp_exec(&fx_cpu, &in_);                                                \
    })

/* The instruction completed without an exception, and RIP moved past it (len bytes). */
static inline void fx_expect_done(unsigned len)
{
    cr_assert_eq(fx_cpu.event.pending, 0, "unexpected exception %u (error %#x)", fx_cpu.event.vector,
                 fx_cpu.event.error);
    cr_assert_eq(fx_cpu.regs.rip, FX_CODE + len, "RIP %#llx", (unsigned long long)fx_cpu.regs.rip);
}

/* The instruction faulted: RIP unchanged, the given vector and error code. */
static inline void fx_expect_fault(uint8_t vector, int has_error, uint32_t error)
{
    cr_assert_eq(fx_cpu.event.pending, 1, "no exception raised");
    cr_assert_eq(fx_cpu.event.vector, vector, "vector %u, want %u", fx_cpu.event.vector, vector);
    cr_assert_eq(fx_cpu.event.has_error, has_error);
    if (has_error)
        cr_assert_eq(fx_cpu.event.error, error, "error code %#x, want %#x", fx_cpu.event.error, error);
    cr_assert_eq(fx_cpu.regs.rip, FX_CODE, "a fault leaves RIP on the instruction");
}

static inline void fx_expect_pf(uint64_t cr2, uint32_t error)
{
    fx_expect_fault(VEC_PF, 1, error);
    cr_assert(fx_cpu.event.set_cr2);
    cr_assert_eq(fx_cpu.event.cr2, cr2, "CR2 %#llx, want %#llx", (unsigned long long)fx_cpu.event.cr2,
                 (unsigned long long)cr2);
}

#endif
