/* err_quote (core/errmsg.c, issue #16): input quoted into one-line messages can neither split nor forge a line. */
#include <criterion/criterion.h>
#include <string.h>

#include "core/errmsg.h"

static const char *q(const char *in, size_t len, size_t cap)
{
    static char out[512];
    return err_quote_n(out, cap, in, len);
}
#define Q(lit) q(lit, sizeof(lit) - 1, 512)

Test(errmsg, printable_and_utf8_pass_through)
{
    cr_assert_str_eq(Q("plain /path-1_x"), "plain /path-1_x");
    cr_assert_str_eq(Q("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"), "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
}

Test(errmsg, control_bytes_escaped)
{
    cr_assert_str_eq(Q("I\nfo"), "I\\x0afo");
    cr_assert_str_eq(Q("a\rb\tc\x1b[31m\x7f"), "a\\x0db\\x09c\\x1b[31m\\x7f");
    cr_assert_str_eq(Q("nul\0byte"), "nul\\x00byte");
}

Test(errmsg, invalid_utf8_escaped)
{
    cr_assert_str_eq(Q("\xff"), "\\xff");
    cr_assert_str_eq(Q("\xc3"), "\\xc3");                   /* cut sequence */
    cr_assert_str_eq(Q("\xc0\xaf"), "\\xc0\\xaf");          /* overlong '/' */
    cr_assert_str_eq(Q("\xed\xa0\x80"), "\\xed\\xa0\\x80"); /* UTF-16 surrogate */
    cr_assert_str_eq(Q("\xf4\x90\x80\x80"), "\\xf4\\x90\\x80\\x80");
    cr_assert_str_eq(Q("\xe2\x82x"), "\\xe2\\x82x");
}

Test(errmsg, cut_to_fit_never_mid_escape)
{
    cr_assert_str_eq(q("abcdefgh", 8, 9), "abcdefgh");
    cr_assert_str_eq(q("abcdefghi", 9, 9), "abcde...");
    cr_assert_str_eq(q("ab\n\n\n\n", 6, 9), "ab...");
    cr_assert_str_eq(q("abcd\xc3\xa9", 6, 7), "abcd\xc3\xa9");
    cr_assert_str_eq(q("x", 1, 1), "");
    cr_assert_str_eq(err_quote((char[8]){0}, 8, NULL), "");
    /* Whatever the input, the output is printable or UTF-8 and fits. */
    char in[256];
    for (int i = 0; i < 256; i++)
        in[i] = (char)i;
    for (size_t cap = 1; cap < 40; cap++) {
        const char *out = q(in, sizeof(in), cap);
        cr_assert_lt(strlen(out), cap);
        for (const char *p = out; *p; p++)
            cr_assert((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f, "cap %zu: '%s'", cap, out);
    }
}
