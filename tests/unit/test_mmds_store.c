/* The MMDS data store: PUT, PATCH (RFC 7396), the size limit, JSON and IMDS rendering of a path, V2 tokens. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "devices/mmds/store.h"

static json_t *js(const char *text)
{
    json_error_t je;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &je);
    cr_assert(v, "bad test JSON %s: %s", text, je.text);
    return v;
}

static void expect_patch(const char *target, const char *patch, const char *want)
{
    json_t *p = js(patch), *w = js(want);
    json_t *got = mmds_merge_patch(js(target), p);
    char *text = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    cr_expect(json_equal(got, w), "patch %s onto %s: got %s, want %s", patch, target, text, want);
    free(text);
    json_decref(got);
    json_decref(p);
    json_decref(w);
}

/* The examples of RFC 7396, appendix A. */
Test(mmds_store, merge_patch_rfc7396_examples)
{
    expect_patch("{\"a\":\"b\"}", "{\"a\":\"c\"}", "{\"a\":\"c\"}");
    expect_patch("{\"a\":\"b\"}", "{\"b\":\"c\"}", "{\"a\":\"b\",\"b\":\"c\"}");
    expect_patch("{\"a\":\"b\"}", "{\"a\":null}", "{}");
    expect_patch("{\"a\":\"b\",\"b\":\"c\"}", "{\"a\":null}", "{\"b\":\"c\"}");
    expect_patch("{\"a\":[\"b\"]}", "{\"a\":\"c\"}", "{\"a\":\"c\"}");
    expect_patch("{\"a\":\"c\"}", "{\"a\":[\"b\"]}", "{\"a\":[\"b\"]}");
    expect_patch("{\"a\":{\"b\":\"c\"}}", "{\"a\":{\"b\":\"d\",\"c\":null}}", "{\"a\":{\"b\":\"d\"}}");
    expect_patch("{\"a\":[{\"b\":\"c\"}]}", "{\"a\":[1]}", "{\"a\":[1]}");
    expect_patch("[\"a\",\"b\"]", "[\"c\",\"d\"]", "[\"c\",\"d\"]");
    expect_patch("{\"a\":\"b\"}", "[\"c\"]", "[\"c\"]");
    expect_patch("{\"a\":\"foo\"}", "null", "null");
    expect_patch("{\"a\":\"foo\"}", "\"bar\"", "\"bar\"");
    expect_patch("{\"e\":null}", "{\"a\":1}", "{\"e\":null,\"a\":1}");
    expect_patch("[1,2]", "{\"a\":\"b\",\"c\":null}", "{\"a\":\"b\"}");
    expect_patch("{}", "{\"a\":{\"bb\":{\"ccc\":null}}}", "{\"a\":{\"bb\":{}}}");
}

Test(mmds_store, put_patch_get_and_limit)
{
    struct mmds_store *s;
    struct errmsg e;
    cr_assert_eq(mmds_store_new(&s, 64), 0);
    json_t *empty = mmds_store_get(s);
    cr_expect(json_is_object(empty) && json_object_size(empty) == 0, "GET before PUT is {}");
    json_decref(empty);
    json_t *p = js("{\"x\":1}");
    cr_expect_eq(mmds_store_patch(s, p, &e), -ENODATA, "PATCH before PUT");
    json_t *d = js("{\"a\":\"0123456789\"}");
    cr_assert_eq(mmds_store_put(s, d, &e), 0);
    json_decref(d);
    cr_assert_eq(mmds_store_patch(s, p, &e), 0);
    json_decref(p);
    json_t *got = mmds_store_get(s), *want = js("{\"a\":\"0123456789\",\"x\":1}");
    cr_expect(json_equal(got, want));
    json_decref(got);
    json_decref(want);
    /* 64 bytes of compact JSON: {"a":"<58 chars>"} is 66 over, 64 fits exactly. */
    char big[80];
    snprintf(big, sizeof(big), "{\"a\":\"%058d\"}", 0);
    d = js(big);
    cr_expect_eq(mmds_json_size(d), 66);
    cr_expect_eq(mmds_store_put(s, d, &e), -EFBIG);
    cr_expect(strstr(e.text, "limit of 64 bytes"), "%s", e.text);
    json_decref(d);
    snprintf(big, sizeof(big), "{\"a\":\"%056d\"}", 0);
    d = js(big);
    cr_expect_eq(mmds_store_put(s, d, &e), 0);
    json_decref(d);
    /* A PATCH that would overflow leaves the store as it was. */
    p = js("{\"b\":\"y\"}");
    cr_expect_eq(mmds_store_patch(s, p, &e), -EFBIG);
    json_decref(p);
    got = mmds_store_get(s);
    cr_expect_eq(json_object_size(got), 1);
    json_decref(got);
    mmds_store_set_limit(s, 0); /* back to the default */
    p = js("{\"b\":\"y\"}");
    cr_expect_eq(mmds_store_patch(s, p, &e), 0);
    json_decref(p);
    mmds_store_free(s);
}

static const char doc[] = "{\"latest\":{\"meta-data\":{\"ami-id\":\"ami-1\",\"reservation-id\":\"r-2\","
                          "\"network\":{\"if\":{}}},\"user-data\":\"hello\\nworld\"},"
                          "\"age\":43,\"phones\":[\"+40\",\"+44\"],\"member\":false,\"a/b\":{\"~t\":\"esc\"}}";

static int render(const char *path, bool as_json, char *buf, size_t cap)
{
    json_t *root = js(doc);
    char *out = NULL;
    size_t len = 0;
    int rc = mmds_render(root, path, as_json, &out, &len);
    json_decref(root);
    if (!rc) {
        cr_assert_eq(strlen(out), len);
        snprintf(buf, cap, "%s", out);
        free(out);
    }
    return rc;
}

Test(mmds_store, render_imds_and_json)
{
    char b[512];
    cr_assert_eq(render("/", false, b, sizeof(b)), 0);
    cr_expect_str_eq(b, "a/b/\nage\nlatest/\nmember\nphones");
    cr_assert_eq(render("/latest", false, b, sizeof(b)), 0);
    cr_expect_str_eq(b, "meta-data/\nuser-data");
    cr_assert_eq(render("/latest/meta-data/", false, b, sizeof(b)), 0);
    cr_expect_str_eq(b, "ami-id\nnetwork/\nreservation-id");
    cr_assert_eq(render("//latest//meta-data///ami-id", false, b, sizeof(b)), 0);
    cr_expect_str_eq(b, "ami-1");
    cr_assert_eq(render("/latest/user-data", false, b, sizeof(b)), 0);
    cr_expect_str_eq(b, "hello\nworld");
    cr_assert_eq(render("/latest/meta-data/network/if", false, b, sizeof(b)), 0);
    cr_expect_str_eq(b, "");
    cr_expect_eq(render("/age", false, b, sizeof(b)), -ENOTSUP);
    cr_expect_eq(render("/member", false, b, sizeof(b)), -ENOTSUP);
    cr_expect_eq(render("/phones", false, b, sizeof(b)), -ENOTSUP);
    cr_assert_eq(render("/phones/1", false, b, sizeof(b)), 0);
    cr_expect_str_eq(b, "+44");
    cr_expect_eq(render("/phones/2", false, b, sizeof(b)), -ENOENT);
    cr_expect_eq(render("/phones/01", false, b, sizeof(b)), -ENOENT);
    cr_expect_eq(render("/phones/-1", false, b, sizeof(b)), -ENOENT);
    cr_expect_eq(render("/nothing", false, b, sizeof(b)), -ENOENT);
    cr_expect_eq(render("/age/more", false, b, sizeof(b)), -ENOENT);
    cr_expect_eq(render("/a~2b", false, b, sizeof(b)), -ENOENT);
    cr_assert_eq(render("/a~1b/~0t", false, b, sizeof(b)), 0);
    cr_expect_str_eq(b, "esc");
    cr_assert_eq(render("/latest/meta-data", true, b, sizeof(b)), 0);
    cr_expect_str_eq(b, "{\"ami-id\":\"ami-1\",\"network\":{\"if\":{}},\"reservation-id\":\"r-2\"}");
    cr_assert_eq(render("/latest/meta-data/ami-id", true, b, sizeof(b)), 0);
    cr_expect_str_eq(b, "\"ami-1\"");
    cr_assert_eq(render("/age", true, b, sizeof(b)), 0);
    cr_expect_str_eq(b, "43");
    cr_assert_eq(render("/phones/", true, b, sizeof(b)), 0);
    cr_expect_str_eq(b, "[\"+40\",\"+44\"]");
}

Test(mmds_store, render_before_any_put)
{
    struct mmds_store *s;
    cr_assert_eq(mmds_store_new(&s, 0), 0);
    char *out = NULL;
    size_t len;
    cr_expect_eq(mmds_store_render(s, "/latest", false, &out, &len), -ENOENT);
    cr_expect_eq(mmds_store_render(s, "/", false, &out, &len), -ENOTSUP);
    cr_assert_eq(mmds_store_render(s, "/", true, &out, &len), 0);
    cr_expect_str_eq(out, "null");
    free(out);
    mmds_store_free(s);
}

Test(mmds_store, tokens_expire_and_are_bounded)
{
    struct mmds_store *s;
    cr_assert_eq(mmds_store_new(&s, 0), 0);
    char t[MMDS_TOKEN_CHARS + 1], first[MMDS_TOKEN_CHARS + 1];
    const uint64_t sec = 1000000000ull, t0 = 5 * sec;
    cr_expect_eq(mmds_store_new_token(s, 0, t0, t), -ERANGE);
    cr_expect_eq(mmds_store_new_token(s, MMDS_TOKEN_TTL_MAX + 1, t0, t), -ERANGE);
    cr_assert_eq(mmds_store_new_token(s, 2, t0, first), 0);
    cr_expect_eq(strlen(first), MMDS_TOKEN_CHARS);
    cr_expect(mmds_store_token_valid(s, first, t0));
    cr_expect(mmds_store_token_valid(s, first, t0 + 2 * sec - 1));
    cr_expect(!mmds_store_token_valid(s, first, t0 + 2 * sec), "expired");
    cr_expect(!mmds_store_token_valid(s, NULL, t0));
    cr_expect(!mmds_store_token_valid(s, "", t0));
    cr_expect(!mmds_store_token_valid(s, "00000000000000000000000000000000", t0), "a free slot is no token");
    char wrong[MMDS_TOKEN_CHARS + 2];
    snprintf(wrong, sizeof(wrong), "%s", first);
    wrong[0] = wrong[0] == 'a' ? 'b' : 'a';
    cr_expect(!mmds_store_token_valid(s, wrong, t0));
    snprintf(wrong, sizeof(wrong), "%sa", first);
    cr_expect(!mmds_store_token_valid(s, wrong, t0), "longer");
    snprintf(wrong, sizeof(wrong), "%s", first);
    wrong[3] = 'G';
    cr_expect(!mmds_store_token_valid(s, wrong, t0), "not hex");
    /* A flood of tokens replaces the ones closest to expiry; long-lived ones stay. */
    char keep[MMDS_TOKEN_CHARS + 1];
    cr_assert_eq(mmds_store_new_token(s, MMDS_TOKEN_TTL_MAX, t0, keep), 0);
    for (int i = 0; i < 3 * MMDS_MAX_TOKENS; i++)
        cr_assert_eq(mmds_store_new_token(s, 60, t0, t), 0);
    cr_expect(mmds_store_token_valid(s, keep, t0 + 100 * sec));
    cr_expect(mmds_store_token_valid(s, t, t0));
    mmds_store_free(s);
}
