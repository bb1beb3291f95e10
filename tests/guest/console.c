/* Ember test guest: output on the 16550 UART at COM1.
 *
 * Ember's UART needs no set-up for output: poll LSR for "transmit holding
 * register empty", then write THR. say() formats one line with the
 * "EMBER-TEST: " prefix the host-side tests look for. The format engine
 * knows only what the tests use: %s %c %d %u %x, the 'l' length and '#'. */
#include "guest.h"

#define COM1_THR 0x3f8
#define COM1_LSR 0x3fd
#define LSR_THRE 0x20

/* Bounded, so a missing or broken UART cannot hang the guest. */
#define THRE_POLLS 100000

void console_putc(char c)
{
	for (unsigned i = 0; i < THRE_POLLS; i++)
		if (inb(COM1_LSR) & LSR_THRE)
			break;
	outb(COM1_THR, (uint8_t)c);
}

void console_delay(unsigned long reads)
{
	while (reads--)
		(void)inb(COM1_LSR);
}

static void put_str(const char *s)
{
	while (*s)
		console_putc(*s++);
}

static void put_num(unsigned long v, unsigned base, int alt)
{
	char buf[24];
	int i = 0;

	if (alt && base == 16)
		put_str("0x");
	do {
		buf[i++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	while (i)
		console_putc(buf[--i]);
}

void console_vprintf(const char *fmt, va_list ap)
{
	for (; *fmt; fmt++) {
		int alt = 0, is_long = 0;
		unsigned long u;
		long s;

		if (*fmt != '%') {
			console_putc(*fmt);
			continue;
		}
		if (*++fmt == '#') {
			alt = 1;
			fmt++;
		}
		if (*fmt == 'l') {
			is_long = 1;
			fmt++;
		}
		switch (*fmt) {
		case 's':
			put_str(va_arg(ap, const char *));
			break;
		case 'c':
			console_putc((char)va_arg(ap, int));
			break;
		case 'd':
			s = is_long ? va_arg(ap, long) : va_arg(ap, int);
			if (s < 0) {
				console_putc('-');
				u = -(unsigned long)s;
			} else {
				u = (unsigned long)s;
			}
			put_num(u, 10, 0);
			break;
		case 'u':
		case 'x':
			u = is_long ? va_arg(ap, unsigned long) : va_arg(ap, unsigned);
			put_num(u, *fmt == 'x' ? 16 : 10, alt);
			break;
		case '%':
			console_putc('%');
			break;
		default: /* unknown conversion: show it rather than guess */
			console_putc('%');
			if (!*fmt)
				return;
			console_putc(*fmt);
		}
	}
}

void console_printf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	console_vprintf(fmt, ap);
	va_end(ap);
}

void say(const char *fmt, ...)
{
	va_list ap;

	put_str("EMBER-TEST: ");
	va_start(ap, fmt);
	console_vprintf(fmt, ap);
	va_end(ap);
	console_putc('\n');
}
