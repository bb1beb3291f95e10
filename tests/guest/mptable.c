/* Ember test guest: the CPU list from the Intel MultiProcessor table.
 *
 * Ember puts the MP floating pointer ("_MP_") in 0x9fc00-0x9ffff; the BIOS
 * area 0xf0000-0xfffff is searched too, where firmware (QEMU's) puts it.
 * Checksums are verified: a table a Linux guest would reject fails here. */
#include "guest.h"

struct mp_floating {
	char signature[4]; /* "_MP_" */
	uint32_t config_paddr;
	uint8_t length;    /* in 16-byte units */
	uint8_t spec_rev;
	uint8_t checksum;
	uint8_t features[5];
} __attribute__((packed));

struct mp_config {
	char signature[4]; /* "PCMP" */
	uint16_t base_length;
	uint8_t spec_rev;
	uint8_t checksum;
	char oem_id[8];
	char product_id[12];
	uint32_t oem_table;
	uint16_t oem_table_size;
	uint16_t entry_count;
	uint32_t lapic_paddr;
	uint16_t ext_length;
	uint8_t ext_checksum;
	uint8_t reserved;
} __attribute__((packed));

#define MP_PROCESSOR 0 /* 20-byte entry; all other base entries are 8 */
#define MP_CPU_ENABLED 0x01
#define MP_CPU_BSP 0x02

static uint8_t sum(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint8_t s = 0;

	while (n--)
		s += *b++;
	return s;
}

static const struct mp_floating *find_floating(uintptr_t start, uintptr_t end)
{
	for (uintptr_t a = start; a + 16 <= end; a += 16) {
		const struct mp_floating *mpf = (const void *)a;

		if (!strncmp(mpf->signature, "_MP_", 4) && mpf->length == 1 &&
		    sum(mpf, 16) == 0)
			return mpf;
	}
	return NULL;
}

const char *mptable_read(struct mp_cpus *out)
{
	const struct mp_floating *mpf;
	const struct mp_config *cfg;
	const uint8_t *e, *end;
	unsigned n;

	mpf = find_floating(0x9fc00, 0xa0000);
	if (!mpf)
		mpf = find_floating(0xf0000, 0x100000);
	if (!mpf)
		return "no MP floating pointer (with a valid checksum)";
	if (!mpf->config_paddr || mpf->features[0])
		return "MP default configurations are not supported";

	cfg = (const void *)(uintptr_t)mpf->config_paddr;
	if (strncmp(cfg->signature, "PCMP", 4))
		return "MP configuration table has no PCMP signature";
	if (cfg->base_length < sizeof(*cfg) || sum(cfg, cfg->base_length))
		return "MP configuration table checksum or length is wrong";

	*out = (struct mp_cpus){ .bsp_index = -1 };
	e = (const uint8_t *)(cfg + 1);
	end = (const uint8_t *)cfg + cfg->base_length;
	/* Walk by base length, as Linux does; entry_count is only reported. */
	for (n = 0; e < end; n++) {
		size_t len = *e == MP_PROCESSOR ? 20 : 8;

		if (e + len > end)
			return "MP entries run past the table's base length";
		if (*e > 4)
			return "MP table has an unknown base entry type";
		if (*e == MP_PROCESSOR && (e[3] & MP_CPU_ENABLED)) {
			if (out->count == MAX_CPUS)
				return "MP table lists more CPUs than the guest supports";
			if (e[3] & MP_CPU_BSP)
				out->bsp_index = out->count;
			out->apic_id[out->count++] = e[1];
		}
		e += len;
	}
	if (n != cfg->entry_count)
		say("note: mp table entry_count is %u, its base length holds %u",
		    cfg->entry_count, n);
	return NULL;
}
