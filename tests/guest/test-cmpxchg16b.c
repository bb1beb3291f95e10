/* Ember test guest: "cmpxchg16b" - CMPXCHG16B and CMPXCHG8B.
 *
 * kvm-pvm's emulator cannot do CMPXCHG16B (Linux uses it for SLUB's
 * double-word cmpxchg when CPUID says CX16); the monitor runs it with a
 * host-side locked compare-exchange on guest memory. Checks:
 *  - equal: memory takes RCX:RBX, ZF=1, RDX:RAX unchanged;
 *  - not equal: memory unchanged, RDX:RAX takes memory, ZF=0;
 *  - the other flags are left as they were (preloaded both ways);
 *  - an operand that is not 16-byte aligned raises #GP(0), RIP on the
 *    instruction (the hook resumes after it);
 *  - an operand in unmapped memory (above the guest's 4 GiB map) raises
 *    #PF with CR2 = the address and the write bit in the error code;
 *  - CMPXCHG8B (with and without LOCK) on EDX:EAX / ECX:EBX. */
#include "guest.h"

#define FL_CF 0x001UL
#define FL_PF 0x004UL
#define FL_ZF 0x040UL
#define FL_SF 0x080UL
#define FL_OF 0x800UL

static struct {
	uint64_t lo, hi;
} __attribute__((aligned(16))) slot[2];

static volatile uint64_t fault_vector, fault_error, fault_cr2, fault_count;
static volatile uint64_t resume_rip;

static int on_fault(struct trap_frame *f)
{
	uint64_t cr2;

	__asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
	fault_count++;
	fault_vector = f->vector;
	fault_error = f->error;
	fault_cr2 = cr2;
	f->rip = resume_rip;
	return 1;
}

/* lock cmpxchg16b (%rdi) with everything explicit; returns RFLAGS after. */
static uint64_t cx16(void *p, uint64_t *rax, uint64_t *rdx, uint64_t rbx,
		     uint64_t rcx, uint64_t flags_in)
{
	uint64_t a = *rax, d = *rdx, fl = flags_in;

	__asm__ volatile("lea 1f(%%rip), %%r8\n\t"
			 "mov %%r8, %[resume]\n\t"
			 "push %[fl]\n\tpopfq\n\t"
			 "lock cmpxchg16b (%[p])\n"
			 "1:\tpushfq\n\tpop %[fl]"
			 : "+a"(a), "+d"(d), [fl] "+r"(fl),
			   [resume] "=m"(resume_rip)
			 : [p] "D"(p), "b"(rbx), "c"(rcx)
			 : "r8", "memory", "cc");
	*rax = a;
	*rdx = d;
	return fl;
}

static uint64_t cx8(void *p, uint32_t *eax, uint32_t *edx, uint32_t ebx,
		    uint32_t ecx, uint64_t flags_in)
{
	uint32_t a = *eax, d = *edx;
	uint64_t fl = flags_in;

	__asm__ volatile("push %[fl]\n\tpopfq\n\t"
			 "cmpxchg8b (%[p])\n\t"
			 "pushfq\n\tpop %[fl]"
			 : "+a"(a), "+d"(d), [fl] "+r"(fl)
			 : [p] "D"(p), "b"(ebx), "c"(ecx)
			 : "memory", "cc");
	*eax = a;
	*edx = d;
	return fl;
}

#define OTHERS (FL_CF | FL_PF | FL_SF | FL_OF)

void test_cmpxchg16b(void)
{
	uint64_t a, d, fl;
	uint32_t cpuid_ecx, eax = 1, ebx, edx;

	__asm__ volatile("cpuid" : "+a"(eax), "=b"(ebx), "=c"(cpuid_ecx), "=d"(edx));
	say("cpuid.1:ecx.cx16 = %u", (cpuid_ecx >> 13) & 1);

	/* Equal: store. Other flags set beforehand must survive. */
	slot[0].lo = 0x1111111111111111UL, slot[0].hi = 0x2222222222222222UL;
	a = slot[0].lo, d = slot[0].hi;
	fl = cx16(&slot[0], &a, &d, 0xaaaaaaaaaaaaaaaaUL, 0xbbbbbbbbbbbbbbbbUL, 0x2 | OTHERS);
	if (!(fl & FL_ZF) || (fl & OTHERS) != OTHERS)
		fail("equal: flags %#lx, want ZF and %#lx kept", fl, OTHERS);
	if (slot[0].lo != 0xaaaaaaaaaaaaaaaaUL || slot[0].hi != 0xbbbbbbbbbbbbbbbbUL)
		fail("equal: memory %#lx:%#lx not stored", slot[0].hi, slot[0].lo);
	if (a != 0x1111111111111111UL || d != 0x2222222222222222UL)
		fail("equal: RDX:RAX changed to %#lx:%#lx", d, a);

	/* Not equal (high half differs): load. ZF set beforehand must clear. */
	a = 0xaaaaaaaaaaaaaaaaUL, d = 0;
	fl = cx16(&slot[0], &a, &d, 1, 2, 0x2 | FL_ZF);
	if ((fl & (FL_ZF | OTHERS)) != 0)
		fail("not equal: flags %#lx, want all clear", fl);
	if (a != 0xaaaaaaaaaaaaaaaaUL || d != 0xbbbbbbbbbbbbbbbbUL)
		fail("not equal: RDX:RAX %#lx:%#lx, want memory", d, a);
	if (slot[0].lo != 0xaaaaaaaaaaaaaaaaUL || slot[0].hi != 0xbbbbbbbbbbbbbbbbUL)
		fail("not equal: memory changed");
	say("cmpxchg16b: store on equal, load on not equal, flags ok");

	/* Misaligned: #GP(0), nothing changed. */
	traps_set_hook(13, on_fault);
	a = 0, d = 0;
	fault_count = 0;
	cx16((char *)&slot[0] + 8, &a, &d, 1, 2, 0x2);
	if (fault_count != 1 || fault_vector != 13 || fault_error != 0)
		fail("misaligned: %lu fault(s), vector %lu error %#lx, want one #GP(0)",
		     fault_count, fault_vector, fault_error);
	if (slot[0].hi != 0xbbbbbbbbbbbbbbbbUL || slot[1].lo != 0)
		fail("misaligned: memory changed");
	say("cmpxchg16b: misaligned operand raised #GP(0)");

	/* Unmapped (the guest maps only the first 4 GiB): #PF, write, CR2. */
	traps_set_hook(14, on_fault);
	fault_count = 0;
	cx16((void *)0x100000010UL, &a, &d, 1, 2, 0x2);
	/* QEMU's TCG (the emulated KVM host, "ember-tcg") reports the faulting
	 * access of a locked CMPXCHG16B as a read; the CPU reports the write. */
	unsigned long error_mask = cmdline_has("ember-tcg") ? 0x5 : 0x7; /* present, write, user */
	if (fault_count != 1 || fault_vector != 14 || fault_cr2 != 0x100000010UL ||
	    (fault_error & error_mask) != (0x2UL & error_mask))
		fail("unmapped: %lu fault(s), vector %lu error %#lx cr2 %#lx, want #PF (write) at 0x100000010",
		     fault_count, fault_vector, fault_error, fault_cr2);
	say("cmpxchg16b: unmapped operand raised #PF, error %#lx, cr2 %#lx", fault_error, fault_cr2);

	/* CMPXCHG8B, at an address that is only 4-byte aligned. */
	uint32_t *m = (uint32_t *)((char *)&slot[1] + 4);
	uint32_t ea, ed;

	m[0] = 0x01020304, m[1] = 0x05060708;
	ea = 0x01020304, ed = 0x05060708;
	fl = cx8(m, &ea, &ed, 0x11111111, 0x22222222, 0x2);
	if (!(fl & FL_ZF) || m[0] != 0x11111111 || m[1] != 0x22222222)
		fail("cmpxchg8b equal: flags %#lx memory %#x:%#x", fl, m[1], m[0]);
	ea = 0, ed = 0;
	fl = cx8(m, &ea, &ed, 3, 4, 0x2 | FL_ZF);
	if ((fl & FL_ZF) || ea != 0x11111111 || ed != 0x22222222 || m[0] != 0x11111111)
		fail("cmpxchg8b not equal: flags %#lx EDX:EAX %#x:%#x", fl, ed, ea);
	say("cmpxchg8b: store on equal, load on not equal");
	pass();
}
