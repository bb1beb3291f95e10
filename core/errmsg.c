#include "core/errmsg.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* Length of the well-formed UTF-8 sequence at s (at most n bytes), or 0 when it is not one. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    unsigned min_second = 0x80, max_second = 0xbf;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0)
            min_second = 0xa0; /* no overlong forms */
        if (c == 0xed)
            max_second = 0x9f; /* no UTF-16 surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0)
            min_second = 0x90;
        if (c == 0xf4)
            max_second = 0x8f; /* nothing above U+10FFFF */
    } else
        return 0;
    if (n < len || s[1] < min_second || s[1] > max_second)
        return 0;
    for (size_t i = 2; i < len; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    return len;
}

/* The next piece of output for s[0..n): the bytes to write into piece[4], and how much input they stand for. */
static size_t next_piece(const unsigned char *s, size_t n, char piece[4], size_t *take)
{
    static const char hex[] = "0123456789abcdef";
    if (s[0] >= 0x20 && s[0] < 0x7f) {
        piece[0] = (char)s[0];
        return *take = 1;
    }
    if (s[0] >= 0x80 && (*take = utf8_len(s, n)) > 0) {
        memcpy(piece, s, *take);
        return *take;
    }
    piece[0] = '\\', piece[1] = 'x', piece[2] = hex[s[0] >> 4], piece[3] = hex[s[0] & 15];
    *take = 1;
    return 4;
}

const char *err_quote_n(char *dst, size_t cap, const char *src, size_t len)
{
    static const char cut[] = "...";
    if (!cap)
        return dst;
    const unsigned char *s = (const unsigned char *)src;
    if (!src)
        len = 0;
    char piece[4];
    size_t take, total = 0;
    for (size_t i = 0; i < len && total < cap; i += take)
        total += next_piece(s + i, len - i, piece, &take);
    /* It all fits, or it is cut at a whole piece (never inside an escape or a character) and marked. */
    size_t room = total < cap ? cap - 1 : (cap > sizeof(cut) - 1 ? cap - sizeof(cut) : 0);
    size_t o = 0;
    for (size_t i = 0; i < len; i += take) {
        size_t plen = next_piece(s + i, len - i, piece, &take);
        if (o + plen > room)
            break;
        memcpy(dst + o, piece, plen);
        o += plen;
    }
    if (total >= cap && o + sizeof(cut) - 1 < cap) {
        memcpy(dst + o, cut, sizeof(cut) - 1);
        o += sizeof(cut) - 1;
    }
    dst[o] = '\0';
    return dst;
}

const char *err_quote(char *dst, size_t cap, const char *src)
{
    return err_quote_n(dst, cap, src, src ? strlen(src) : 0);
}

void err_vformat(struct errmsg *e, const char *fmt, va_list ap)
{
    char raw[sizeof(e->text)];
    vsnprintf(raw, sizeof(raw), fmt, ap);
    err_quote(e->text, sizeof(e->text), raw);
}
