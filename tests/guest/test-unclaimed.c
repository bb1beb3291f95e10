/* Ember test guest: "unclaimed" - accesses no device claims.
 *
 * Ember must report them and carry on: reads return all-ones of the access
 * size, writes are dropped. Port 0x2000/0x2004 and 0xd0000000 (in the
 * 32-bit MMIO hole, below the LAPIC/IOAPIC) are free in Ember's layout. */
#include "guest.h"

#define PIO_WRITE_PORT 0x2000
#define PIO_READ_PORT  0x2004
#define MMIO_ADDR      0xd0000000UL

void test_unclaimed(void)
{
	uint8_t b;
	uint16_t w;
	uint32_t l, m;

	outb(PIO_WRITE_PORT, 0x5a);
	b = inb(PIO_READ_PORT);
	w = inw(PIO_READ_PORT);
	l = inl(PIO_READ_PORT);
	say("pio %#x read: 8-bit %#x 16-bit %#x 32-bit %#x", PIO_READ_PORT,
	    b, w, l);

	mmio_write32(MMIO_ADDR, 0x12345678);
	m = mmio_read32(MMIO_ADDR);
	say("mmio %#lx read: 32-bit %#x", MMIO_ADDR, m);

	if (b != 0xff || w != 0xffff || l != 0xffffffff)
		fail("unclaimed port read is not all-ones");
	if (m != 0xffffffff)
		fail("unclaimed MMIO read is not all-ones");
	pass();
}
