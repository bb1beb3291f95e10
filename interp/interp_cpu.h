/*
 * The interpreter's routines, apart from KVM: they work on a snapshot of a
 * vCPU (registers, segment/control registers, the XSAVE image, XCR0,
 * IA32_XSS) and on guest memory, and say what the caller must write back and
 * which exception, if any, the guest must receive. interp/interp.c moves that
 * snapshot in and out of KVM; unit tests build it by hand.
 */
#ifndef EMBER_INTERP_CPU_H
#define EMBER_INTERP_CPU_H

#include <linux/kvm.h>
#include <stddef.h>
#include <stdint.h>

#include "core/guest_mem.h"
#include "interp/insn.h"

#define VEC_BP 3
#define VEC_UD 6
#define VEC_NM 7
#define VEC_SS 12
#define VEC_GP 13
#define VEC_PF 14
#define VEC_MF 16

#define CR0_TS (1ULL << 3)
#define CR4_FSGSBASE (1ULL << 16)
#define CR4_OSXSAVE (1ULL << 18)
#define CR4_SMAP (1ULL << 21)
#define RFLAGS_AC (1ULL << 18)

/* KVM's XSAVE image (struct kvm_xsave): standard (non-compacted) format. */
#define XSAVE_IMAGE_SIZE 4096u
#define XSAVE_HDR 512u /* XSAVE header: XSTATE_BV at +0, XCOMP_BV at +8 */
#define XSAVE_EXT 576u /* first extended component in the compacted format */
#define XCOMP_COMPACTED (1ULL << 63)
#define MSR_IA32_XSS 0xda0
#define MSR_FS_BASE 0xc0000100
#define MSR_GS_BASE 0xc0000101
#define MSR_TSC_AUX 0xc0000103

/* The XSAVE layout of the CPU the guest sees: CPUID leaf 0xD. */
struct xstate_layout {
    uint64_t xcr0_mask;                        /* components XCR0 may enable: CPUID.(0xD,0):EDX:EAX */
    uint64_t xss_mask;                         /* components IA32_XSS may enable: CPUID.(0xD,1):EDX:ECX */
    uint32_t offset[64];                       /* standard-format offset of component i (i >= 2) */
    uint32_t size[64];                         /* size of component i (i >= 2) */
    uint8_t align64[64];                       /* component i starts 64-byte aligned in the compacted format */
    uint8_t xsaveopt, xsavec, xgetbv1, xsaves; /* CPUID.(0xD,1):EAX bits 0..3 */
    uint32_t mxcsr_mask;                       /* MXCSR bits that may be set (FXSAVE's MXCSR_MASK; 0 means 0xffbf) */
};

/* Fills the layout from the CPUID of the host, which the guest sees unchanged on kvm-pvm. */
void xstate_layout_host(struct xstate_layout *xl);
/* Offset of extended component i (>= 2) in a compacted area with the given XCOMP_BV. */
uint32_t xstate_compacted_offset(const struct xstate_layout *xl, uint64_t xcomp_bv, unsigned i);
/* Bytes an XSAVE area covering the components of `mask` takes (standard or compacted). */
uint32_t xstate_area_size(const struct xstate_layout *xl, uint64_t mask, int compacted);

/* An exception for the guest (a fault: RIP stays on the instruction; or INT3's trap). */
struct interp_event {
    int pending;
    uint8_t vector;
    uint8_t has_error;
    uint32_t error;
    int set_cr2; /* #PF: CR2 must hold cr2 */
    uint64_t cr2;
};

/* Entropy for RDRAND (seed = 0) and RDSEED (seed = 1): 1 with *out, or 0 when none now. */
typedef int (*interp_rng_fn)(int seed, uint64_t *out);
int interp_host_rng(int seed, uint64_t *out);

struct interp_cpu {
    /* In: the vCPU snapshot. */
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    enum cpu_mode mode;
    const struct guest_mem *gm;
    uint16_t fcw, fsw;  /* x87 control/status (FWAIT) */
    uint8_t *xsave;     /* XSAVE image, XSAVE_IMAGE_SIZE bytes (XSAVE family) */
    uint64_t xcr0, xss; /* XCR0 and IA32_XSS */
    uint64_t tsc_aux;   /* IA32_TSC_AUX (RDPID) */
    const struct xstate_layout *xl;
    interp_rng_fn rng;
    /* Out: what changed besides regs (always written back), and the exception to deliver. */
    int xsave_dirty, xcr0_dirty;
    int rip_written; /* the routine set RIP itself (a taken branch, INT3) */
    int msr_dirty;   /* write msr_index := msr_value (FS/GS base) */
    uint32_t msr_index;
    uint64_t msr_value;
    struct interp_event event;
    char why[200]; /* set when interp_exec returns < 0 */
};

/* What an instruction needs loaded besides regs and sregs (INTERP_NEED_*, insn_table.h). */
unsigned interp_needs(enum interp_insn kind);

/*
 * Runs one decoded instruction on the snapshot. 0: done; regs hold the result
 * (RIP advanced, or left on the instruction when event is a fault). Negative:
 * Ember cannot run it (c->why says why); nothing was changed in the guest.
 */
int interp_exec(struct interp_cpu *c, const struct insn *in);

/* Instructions after which the caller runs ahead, and those a run-ahead may run (INSN_F_*, insn_table.h). */
int interp_starts_runahead(enum interp_insn kind);
int interp_runahead_ok(enum interp_insn kind);
/*
 * Run-ahead, after an instruction for which interp_starts_runahead() holds:
 * go on with the instructions that follow while they are ones Ember runs
 * (vector ones and the plain loop control of insn_scalar.c), so a block of
 * Linux's AVX-512 BLAKE2s costs one exit instead of ~470 (an exit and
 * re-entry of kvm-pvm costs milliseconds when the guest has interrupts to
 * take). Stops at the first other instruction (left for KVM), at a fault
 * (c->event, RIP on the instruction), when RFLAGS.TF asks for single steps,
 * or after max instructions. counts[kind] is incremented per instruction;
 * c->xsave_dirty accumulates. Returns how many ran.
 */
unsigned interp_run_ahead(struct interp_cpu *c, unsigned max, uint64_t *counts);
/* Instruction bytes at RIP for a run-ahead (fetch permissions checked); 0 when none can be read. */
unsigned interp_fetch(struct interp_cpu *c, uint8_t *buf, unsigned max);

/* ---- helpers shared by the routines (interp_mem.c) ---- */

/* Current privilege level. */
unsigned interp_cpl(const struct interp_cpu *c);
/* Records a fault for the guest; returns 1 (so routines can `return interp_raise(...)`). */
int interp_raise(struct interp_cpu *c, uint8_t vector, int has_error, uint32_t error);
/* Fails with c->why set; returns rc (< 0). */
int interp_fail(struct interp_cpu *c, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Linear address of the ModRM memory operand; *ss tells whether it is SS-relative (for #SS vs #GP). */
int interp_operand_address(struct interp_cpu *c, const struct insn *in, uint64_t *lin, int *ss);
/*
 * Guest memory at a linear address with the CPU's checks (canonical form,
 * paging permissions, A/D bits). 0: done; 1: a fault was raised (c->event);
 * negative: cannot (e.g. not RAM; c->why says why). A write translates every
 * page before it stores anything.
 */
int interp_read(struct interp_cpu *c, uint64_t lin, int ss, void *dst, unsigned len);
int interp_write(struct interp_cpu *c, uint64_t lin, int ss, const void *src, unsigned len);
/* A read with a write's checks (for read-modify-write of an area the instruction then stores). */
int interp_read_for_write(struct interp_cpu *c, uint64_t lin, int ss, void *dst, unsigned len);
/* Host pointer for a write access of len bytes that stays inside one page (for atomics). */
int interp_map_write(struct interp_cpu *c, uint64_t lin, int ss, unsigned len, void **host);

/* ---- the routines the rows of INTERP_INSN_TABLE (insn_table.h) name ---- */

/*
 * A routine runs one instruction on the snapshot: 0 done (RIP is advanced by
 * interp_exec() unless the routine set rip_written); 1 a fault was raised
 * (c->event; interp_exec() undoes register changes); negative: cannot (c->why).
 */
typedef int (*interp_routine_fn)(struct interp_cpu *c, const struct insn *in);
#define INTERP_DECLARE_ROUTINE(kind, name, group, needs, flags, routine, what) \
    int routine(struct interp_cpu *c, const struct insn *in);
INTERP_INSN_TABLE(INTERP_DECLARE_ROUTINE)
#undef INTERP_DECLARE_ROUTINE

/* One row of the table, as data. */
struct interp_insn_row {
    const char *name;  /* counter name */
    const char *group; /* docs heading */
    const char *what;  /* the mnemonics it covers */
    unsigned needs;    /* INTERP_NEED_* */
    unsigned flags;    /* INSN_F_* */
    interp_routine_fn run;
};
/* The row of a kind; NULL for a value that is no kind. */
const struct interp_insn_row *interp_insn_row(enum interp_insn kind);

/* x86 encoding order (rax, rcx, rdx, rbx, rsp, rbp, rsi, rdi, r8..) into struct kvm_regs. */
__u64 *interp_gpr(struct kvm_regs *r, unsigned n);

#endif
