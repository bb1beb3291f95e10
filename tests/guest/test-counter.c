/* Ember test guest: "counter" - a guest whose state a snapshot must keep.
 *
 * Every CPU (the APs through smp_start_aps) counts forever. The count lives
 * in a register and in memory; a second register holds the running sum
 * 1 + 2 + ... + n. Every STEP counts a CPU checks that the three agree and
 * that a rotating 4 KiB chunk of an 8 MiB pattern is intact, then prints
 * "counter cpu<id>: <n>". A snapshot taken at any moment and restored in
 * another process must continue the sequence exactly: the host-side test
 * (t_snapshot_tiny.sh) reads the lines of both processes as one sequence.
 * Never ends by itself. */
#include "guest.h"

#define STEP          (1UL << 21)
#define PATTERN_BASE  0x2000000UL /* 32 MiB: past the guest image and stacks */
#define PATTERN_SIZE  0x800000UL  /* 8 MiB */
#define CHUNK         4096UL

static volatile uint64_t mem_count[MAX_CPUS];

static uint64_t pattern(uint64_t addr)
{
	return addr * 0x9e3779b97f4a7c15UL ^ 0x5a5a5a5a5a5a5a5aUL;
}

static void check_chunk(unsigned cpu, uint64_t round)
{
	uint64_t base = PATTERN_BASE + (round * CHUNK) % PATTERN_SIZE;

	for (uint64_t a = base; a < base + CHUNK; a += 8)
		if (*(volatile uint64_t *)a != pattern(a))
			fail("cpu%u: memory at %#lx lost its pattern", cpu, a);
}

static void count(unsigned cpu) __attribute__((noreturn));
static void count(unsigned cpu)
{
	uint64_t n = 0, sum = 0;

	for (;;) {
		n++;
		sum += n;
		mem_count[cpu] = n;
		if (n % STEP)
			continue;
		/* n(n+1)/2 without overflow trouble: one of n, n+1 is even. */
		uint64_t want = (n % 2 ? n * ((n + 1) / 2) : (n / 2) * (n + 1));

		if (mem_count[cpu] != n || sum != want)
			fail("cpu%u: count %lu, memory %lu, sum %lu (want %lu)",
			     cpu, n, mem_count[cpu], sum, want);
		check_chunk(cpu, n / STEP);
		lock();
		say("counter cpu%u: %lu", cpu, n);
		unlock();
	}
}

static void ap_count_work(unsigned apic_id)
{
	count(apic_id);
}

void test_counter(void)
{
	for (uint64_t a = PATTERN_BASE; a < PATTERN_BASE + PATTERN_SIZE; a += 8)
		*(volatile uint64_t *)a = pattern(a);
	unsigned cpus = smp_start_aps(ap_count_work);

	say("counter: %u cpu(s) counting", cpus);
	count(0);
}
