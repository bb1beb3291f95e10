/* Ember test guest: "smp" - every CPU in the MP table comes up.
 *
 * The BSP wakes each AP the MultiProcessor Specification way, INIT, SIPI,
 * SIPI through its xAPIC ICR. Each AP runs ap-trampoline.S (real mode ->
 * long mode), then ap_main(): under a spinlock it prints "ap <id> up" and
 * bumps a shared counter with a locked add. The BSP waits, bounded, for
 * the counter to reach N-1. smp_start_aps() is that start-up for other
 * tests: their APs then run the given work instead of halting. */
#include "guest.h"

#define LAPIC_BASE   0xfee00000UL
#define LAPIC_ID     0x020
#define LAPIC_SVR    0x0f0
#define LAPIC_ICR_LO 0x300
#define LAPIC_ICR_HI 0x310

#define SVR_ENABLE   0x100
#define ICR_PENDING  0x1000       /* delivery status: send pending */
#define ICR_INIT     0x4500       /* INIT, level assert */
#define ICR_STARTUP  0x4600       /* start-up IPI; low byte = vector */

/* Delays in UART status reads (console_delay): ~8 us each on kvm-pvm,
 * ~1-2 us on hardware KVM. The MP spec asks for 10 ms after INIT and
 * 200 us after a SIPI; the timeout is a few seconds of real time
 * (measured: 250000 reads take ~4.5 s on kvm-pvm). */
#define DELAY_AFTER_INIT  1250
#define DELAY_AFTER_SIPI  25
#define AP_WAIT_READS     250000

extern const char ap_trampoline[], ap_trampoline_end[];

static volatile uint32_t ap_count;
static volatile uint32_t print_lock;
static void (*volatile ap_work)(unsigned apic_id);

void lock(void)
{
	while (__atomic_exchange_n(&print_lock, 1, __ATOMIC_ACQUIRE))
		while (print_lock)
			cpu_relax();
}

void unlock(void)
{
	__atomic_store_n(&print_lock, 0, __ATOMIC_RELEASE);
}

static uint32_t lapic_read(unsigned reg)
{
	return mmio_read32(LAPIC_BASE + reg);
}

static void lapic_write(unsigned reg, uint32_t v)
{
	mmio_write32(LAPIC_BASE + reg, v);
}

static void send_ipi(uint8_t apic_id, uint32_t icr)
{
	for (unsigned i = 0; i < 1000 && (lapic_read(LAPIC_ICR_LO) & ICR_PENDING); i++)
		cpu_relax();
	lapic_write(LAPIC_ICR_HI, (uint32_t)apic_id << 24);
	lapic_write(LAPIC_ICR_LO, icr); /* writing the low half sends */
}

/* Runs on each AP, from ap-trampoline.S, on its own stack. */
void ap_main(unsigned apic_id) __noreturn;
void ap_main(unsigned apic_id)
{
	traps_load();
	lock();
	say("ap %u up", apic_id);
	__atomic_fetch_add(&ap_count, 1, __ATOMIC_SEQ_CST); /* lock add */
	unlock();
	if (ap_work)
		ap_work(apic_id);
	for (;;)
		__asm__ volatile("cli; hlt");
}

unsigned smp_start_aps(void (*work)(unsigned apic_id))
{
	size_t tramp_len = ap_trampoline_end - ap_trampoline;
	struct mp_cpus cpus;
	const char *err;
	unsigned bsp_id, aps = 0;
	unsigned long waited;

	err = mptable_read(&cpus);
	if (err)
		fail("%s", err);
	bsp_id = lapic_read(LAPIC_ID) >> 24;
	say("mp table: %u cpus, this cpu (bsp) has apic id %u", cpus.count, bsp_id);

	for (unsigned i = 0; i < cpus.count; i++) {
		if (cpus.apic_id[i] == bsp_id)
			continue;
		if (cpus.apic_id[i] >= MAX_CPUS)
			fail("ap apic id %u: the guest has stacks for ids < %u",
			     cpus.apic_id[i], MAX_CPUS);
		aps++;
	}
	if (aps != cpus.count - 1)
		fail("the bsp's apic id %u is not in the mp table", bsp_id);

	if (tramp_len > 4096)
		fail("ap trampoline is %lu bytes, more than a page", tramp_len);
	memcpy((void *)AP_TRAMPOLINE_ADDR, ap_trampoline, tramp_len);

	ap_work = work;
	lapic_write(LAPIC_SVR, SVR_ENABLE | 0xff);
	for (unsigned i = 0; i < cpus.count; i++) {
		uint8_t id = cpus.apic_id[i];

		if (id == bsp_id)
			continue;
		send_ipi(id, ICR_INIT);
		console_delay(DELAY_AFTER_INIT);
		send_ipi(id, ICR_STARTUP | AP_SIPI_VECTOR);
		console_delay(DELAY_AFTER_SIPI);
		send_ipi(id, ICR_STARTUP | AP_SIPI_VECTOR);
		console_delay(DELAY_AFTER_SIPI);
	}

	for (waited = 0; ap_count != aps && waited < AP_WAIT_READS; waited++)
		console_delay(1);
	if (ap_count != aps)
		fail("%u of %u aps came up before the timeout", ap_count, aps);
	return cpus.count;
}

void test_smp(void)
{
	unsigned n = smp_start_aps(0);

	lock();
	say("smp: %u cpus up", n);
	pass(); /* resets with the lock held: nothing may print after PASS */
}
