/* Ember test guest: declarations shared by the guest's C files.
 *
 * The guest is freestanding: no libc, identity-mapped, one address space.
 * Every line it prints starts with "EMBER-TEST: " (see README.md). */
#ifndef GUEST__GUEST_H
#define GUEST__GUEST_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "layout.h"

#define __noreturn __attribute__((noreturn))
#define __printf(a, b) __attribute__((format(printf, a, b)))

/* Port I/O. */
static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}
static inline void outw(uint16_t port, uint16_t v)
{
	__asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port));
}
static inline void outl(uint16_t port, uint32_t v)
{
	__asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}
static inline uint8_t inb(uint16_t port)
{
	uint8_t v;
	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}
static inline uint16_t inw(uint16_t port)
{
	uint16_t v;
	__asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}
static inline uint32_t inl(uint16_t port)
{
	uint32_t v;
	__asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

/* MMIO: volatile so each access is exactly one load/store of that size. */
static inline uint32_t mmio_read32(uintptr_t addr)
{
	return *(volatile uint32_t *)addr;
}
static inline void mmio_write32(uintptr_t addr, uint32_t v)
{
	*(volatile uint32_t *)addr = v;
}

static inline void cpu_relax(void)
{
	__asm__ volatile("pause" ::: "memory");
}

/* lib.c: the few string helpers the guest needs (gcc may also call
 * memset/memcpy on its own, so those must exist). */
void *memset(void *s, int c, size_t n);
void *memcpy(void *dst, const void *src, size_t n);
size_t strlen(const char *s);
int strncmp(const char *a, const char *b, size_t n);

/* console.c: COM1 output. say() prints one whole "EMBER-TEST: ..." line;
 * console_printf() prints raw text (no prefix, no newline). */
void console_putc(char c);
void console_printf(const char *fmt, ...) __printf(1, 2);
void console_vprintf(const char *fmt, va_list ap);
void say(const char *fmt, ...) __printf(1, 2);
/* A delay that scales with real time on any KVM: each UART status read is
 * a PIO exit to the monitor (a few microseconds), unlike a bare loop whose
 * speed differs 1000x between emulated and hardware guests. */
void console_delay(unsigned long reads);

/* bootinfo.c: what the monitor handed over, from either boot protocol. */
enum boot_kind { BOOT_LINUX64 = 1, BOOT_PVH = 2 };
struct mem_range {
	uint64_t addr;
	uint64_t size;
	uint32_t type; /* e820 type: 1 = usable RAM */
};
void bootinfo_init(unsigned kind, uintptr_t info);
const char *boot_kind_name(void);
const char *boot_cmdline(void); /* never NULL; "" when absent */
int cmdline_has(const char *word); /* 1 when WORD is a whole word of the command line */
unsigned boot_mem_count(void);
int boot_mem_entry(unsigned i, struct mem_range *out);
const char *bootinfo_error(void); /* NULL when the handed-over data looked valid */

/* main.c: ending a test. Both print the verdict and reset the machine. */
void pass(void) __noreturn;
void fail(const char *fmt, ...) __noreturn __printf(1, 2);
void machine_reset(void) __noreturn;

/* traps.c: an IDT whose every exception fails the test, unless a test
 * installed a hook for that vector and the hook returns nonzero. */
struct trap_frame {
	uint64_t rax, rcx, rdx, rsi, rdi, r8, r9, r10, r11;
	uint64_t vector, error;
	uint64_t rip, cs, rflags, rsp, ss; /* pushed by the CPU */
};
typedef int (*trap_hook)(struct trap_frame *f);
void traps_init(void);
void traps_load(void);
void traps_set_hook(unsigned vector, trap_hook hook);

/* mptable.c: the CPUs listed in the MP table. */
struct mp_cpus {
	unsigned count;          /* enabled processor entries */
	uint8_t apic_id[MAX_CPUS];
	int bsp_index;           /* entry flagged as BSP, or -1 */
};
const char *mptable_read(struct mp_cpus *out); /* NULL or why it failed */

/* test-smp.c: wakes every AP in the MP table; each then runs work(apic_id)
 * (0: halts). Returns the number of CPUs. lock()/unlock(): the print lock. */
unsigned smp_start_aps(void (*work)(unsigned apic_id));
void lock(void);
void unlock(void);

/* The tests: each ends with pass() or fail(). */
void test_hello(void) __noreturn;
void test_unclaimed(void) __noreturn;
void test_smp(void) __noreturn;
void test_triple(void) __noreturn;
void test_int3(void) __noreturn;
void test_popcnt(void) __noreturn;
void test_fwait(void) __noreturn;
void test_cmpxchg16b(void) __noreturn;
void test_xsave(void) __noreturn;
void test_rdrand(void) __noreturn;
void test_smap_fsgs(void) __noreturn;
void test_avx512(void) __noreturn;
void test_counter(void) __noreturn;

#endif
