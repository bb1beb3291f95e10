/* Ember test guest: the string helpers a freestanding program still needs.
 * gcc may emit calls to memset/memcpy for struct copies and zeroing, so they
 * must exist even though the guest never calls them by name. */
#include "guest.h"

void *memset(void *s, int c, size_t n)
{
	unsigned char *p = s;

	while (n--)
		*p++ = (unsigned char)c;
	return s;
}

void *memcpy(void *dst, const void *src, size_t n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;

	while (n--)
		*d++ = *s++;
	return dst;
}

size_t strlen(const char *s)
{
	size_t n = 0;

	while (s[n])
		n++;
	return n;
}

int strncmp(const char *a, const char *b, size_t n)
{
	for (; n; n--, a++, b++) {
		if (*a != *b)
			return (unsigned char)*a - (unsigned char)*b;
		if (!*a)
			break;
	}
	return 0;
}

int cmdline_has(const char *word)
{
	const char *c = boot_cmdline();
	size_t n = strlen(word);

	for (const char *p = c; *p; p++)
		if ((p == c || p[-1] == ' ') && !strncmp(p, word, n) && (p[n] == ' ' || p[n] == 0))
			return 1;
	return 0;
}
