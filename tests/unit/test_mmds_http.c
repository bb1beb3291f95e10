/* The MMDS HTTP side: request framing, V1 and V2 answers, tokens, formats, hostile requests; --mmds-size-limit. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cli.h"
#include "devices/mmds/http.h"

#define SEC 1000000000ull

static struct mmds_store *store;

static void setup(void)
{
    cr_assert_eq(mmds_store_new(&store, 0), 0);
    json_t *d = json_loads("{\"latest\":{\"meta-data\":{\"ami-id\":\"ami-1\",\"n\":7}}}", 0, NULL);
    struct errmsg e;
    cr_assert_eq(mmds_store_put(store, d, &e), 0);
    json_decref(d);
}

static void teardown(void) { mmds_store_free(store); }

TestSuite(mmds_http, .init = setup, .fini = teardown);

/* The answer to req at now_ns: status code, and the body in body (NUL-terminated). */
static unsigned ask(const char *req, uint64_t now_ns, char *body, size_t cap)
{
    char *out;
    size_t len;
    cr_assert_eq(mmds_http_answer(store, req, strlen(req), now_ns, &out, &len), 0);
    cr_assert(len > 12 && strncmp(out, "HTTP/1.", 7) == 0, "%.*s", (int)len, out);
    unsigned status = (unsigned)strtoul(out + 9, NULL, 10);
    const char *b = memmem(out, len, "\r\n\r\n", 4);
    cr_assert(b);
    b += 4;
    size_t blen = len - (size_t)(b - out);
    char cl[64];
    snprintf(cl, sizeof(cl), "Content-Length: %zu\r\n", blen);
    cr_expect(memmem(out, len, cl, strlen(cl)), "Content-Length matches the body");
    snprintf(body, cap, "%.*s", (int)blen, b);
    free(out);
    return status;
}

Test(mmds_http, request_framing)
{
    cr_expect_eq(mmds_http_request_length("GET / HTTP/1.1\r\nHost: x\r\n", 25), 0);
    const char *r = "GET / HTTP/1.1\r\nHost: x\r\n\r\nextra";
    cr_expect_eq(mmds_http_request_length(r, strlen(r)), 27);
    const char *lf = "GET / HTTP/1.0\n\n";
    cr_expect_eq(mmds_http_request_length(lf, strlen(lf)), 16);
    const char *body = "PUT /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nabc";
    cr_expect_eq(mmds_http_request_length(body, strlen(body)), 0, "body not all there");
    const char *body2 = "PUT /x HTTP/1.1\r\ncontent-length:5\r\n\r\nabcde";
    cr_expect_eq(mmds_http_request_length(body2, strlen(body2)), (long)strlen(body2));
    const char *bad = "PUT /x HTTP/1.1\r\nContent-Length: -5\r\n\r\n";
    cr_expect_eq(mmds_http_request_length(bad, strlen(bad)), -EINVAL);
    const char *huge = "PUT /x HTTP/1.1\r\nContent-Length: 999999999\r\n\r\n";
    cr_expect_eq(mmds_http_request_length(huge, strlen(huge)), -E2BIG);
    static char flood[MMDS_HTTP_MAX_REQUEST + 10];
    memset(flood, 'A', sizeof(flood));
    cr_expect_eq(mmds_http_request_length(flood, sizeof(flood)), -E2BIG);
    cr_expect_eq(mmds_http_request_length(flood, 100), 0);
}

Test(mmds_http, v1_get_formats)
{
    char b[256];
    cr_expect_eq(ask("GET /latest/meta-data/ HTTP/1.1\r\n\r\n", 0, b, sizeof(b)), 200);
    cr_expect_str_eq(b, "ami-id\nn");
    cr_expect_eq(ask("GET http://169.254.169.254/latest/meta-data/ami-id HTTP/1.0\r\n\r\n", 0, b, sizeof(b)), 200);
    cr_expect_str_eq(b, "ami-1");
    cr_expect_eq(ask("GET /latest/meta-data?x=1 HTTP/1.1\r\naccept: application/json\r\n\r\n", 0, b, sizeof(b)), 200);
    cr_expect_str_eq(b, "{\"ami-id\":\"ami-1\",\"n\":7}");
    cr_expect_eq(ask("GET /latest/meta-data/n HTTP/1.1\r\n\r\n", 0, b, sizeof(b)), 501);
    cr_expect_eq(ask("GET /latest/nothing HTTP/1.1\r\n\r\n", 0, b, sizeof(b)), 404);
    /* V1 answers with a wrong token too. */
    cr_expect_eq(ask("GET /latest/meta-data/ami-id HTTP/1.1\r\nX-metadata-token: nope\r\n\r\n", 0, b, sizeof(b)), 200);
    cr_expect_eq(ask("DELETE / HTTP/1.1\r\n\r\n", 0, b, sizeof(b)), 405);
    struct mmds_settings set = {.version = MMDS_V1, .ipv4 = MMDS_DEFAULT_IPV4, .imds_compat = true};
    mmds_store_configure(store, &set);
    cr_expect_eq(ask("GET /latest/meta-data HTTP/1.1\r\nAccept: application/json\r\n\r\n", 0, b, sizeof(b)), 200);
    cr_expect_str_eq(b, "ami-id\nn", "imds_compat: text whatever Accept says");
}

Test(mmds_http, v2_token_flow)
{
    struct mmds_settings set = {.version = MMDS_V2, .ipv4 = MMDS_DEFAULT_IPV4};
    mmds_store_configure(store, &set);
    char b[256], tok[MMDS_TOKEN_CHARS + 1], req[512];
    cr_expect_eq(ask("GET /latest/meta-data/ami-id HTTP/1.1\r\n\r\n", 0, b, sizeof(b)), 401);
    cr_expect_eq(ask("PUT /latest/api/token HTTP/1.1\r\n\r\n", 0, b, sizeof(b)), 400, "no TTL");
    cr_expect_eq(ask("PUT /latest/api/token HTTP/1.1\r\nX-metadata-token-ttl-seconds: 0\r\n\r\n", 0, b, sizeof(b)),
                 400);
    cr_expect_eq(ask("PUT /latest/api/token HTTP/1.1\r\nX-metadata-token-ttl-seconds: 21601\r\n\r\n", 0, b, sizeof(b)),
                 400);
    cr_expect_eq(ask("PUT /latest/api/token HTTP/1.1\r\nX-metadata-token-ttl-seconds: 1x\r\n\r\n", 0, b, sizeof(b)),
                 400);
    cr_expect_eq(ask("PUT /latest/api/token HTTP/1.1\r\nX-Forwarded-For: 1.2.3.4\r\n"
                     "X-metadata-token-ttl-seconds: 60\r\n\r\n",
                     0, b, sizeof(b)),
                 400);
    cr_expect_eq(ask("PUT /latest/other HTTP/1.1\r\nX-metadata-token-ttl-seconds: 60\r\n\r\n", 0, b, sizeof(b)), 404);
    cr_assert_eq(ask("PUT //latest/api//token HTTP/1.1\r\nX-aws-ec2-metadata-token-ttl-seconds: 60\r\n\r\n", 10 * SEC,
                     tok, sizeof(tok)),
                 200);
    cr_expect_eq(strlen(tok), MMDS_TOKEN_CHARS);
    snprintf(req, sizeof(req), "GET /latest/meta-data/ami-id HTTP/1.1\r\nX-metadata-token: %s\r\n\r\n", tok);
    cr_expect_eq(ask(req, 11 * SEC, b, sizeof(b)), 200);
    cr_expect_str_eq(b, "ami-1");
    cr_expect_eq(ask(req, 70 * SEC, b, sizeof(b)), 401, "expired");
    snprintf(req, sizeof(req), "GET /latest/meta-data/ami-id HTTP/1.1\r\nX-aws-ec2-metadata-token: %s\r\n\r\n", tok);
    cr_expect_eq(ask(req, 11 * SEC, b, sizeof(b)), 200);
    cr_expect_eq(ask("GET / HTTP/1.1\r\nX-metadata-token: 0123\r\n\r\n", 11 * SEC, b, sizeof(b)), 401);
    cr_expect_eq(ask("POST / HTTP/1.1\r\n\r\n", 0, b, sizeof(b)), 405);
}

Test(mmds_http, malformed_requests_get_400)
{
    char b[256];
    static const char *const bad[] = {
        "\r\n\r\n",
        "GET\r\n\r\n",
        "GET /\r\n\r\n",
        " / HTTP/1.1\r\n\r\n",
        "GET / HTTP/2.0\r\n\r\n",
        "GET / HTTP/1.1x\r\n\r\n",
        "GET nopath HTTP/1.1\r\n\r\n",
        "GET http://host HTTP/1.1\r\n\r\n",
        "AVERYVERYLONGMETHODNAME / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1",
        "",
    };
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_expect_eq(ask(bad[i], 0, b, sizeof(b)), 400, "request %u: %s", i, bad[i]);
    char *out;
    size_t len;
    cr_assert_eq(mmds_http_error(413, "too long", &out, &len), 0);
    cr_expect(strncmp(out, "HTTP/1.1 413 ", 13) == 0);
    free(out);
}

Test(mmds_http, cli_size_limit)
{
    struct cli_opts o;
    struct errmsg e;
    char *ok[] = {"ember", "--api-sock", "/tmp/s", "--mmds-size-limit", "100000", NULL};
    cr_assert_eq(cli_parse(5, ok, &o, &e), 0, "%s", e.text);
    cr_expect_eq(o.vm.mmds_size_limit, 100000);
    cli_free(&o);
    char *meta[] = {"ember", "--api-sock", "/tmp/s", "--metadata", "/tmp/m.json", NULL};
    cr_assert_eq(cli_parse(5, meta, &o, &e), 0, "%s", e.text);
    cr_expect_str_eq(o.mmds_metadata, "/tmp/m.json");
    cli_free(&o);
    char *bad[] = {"ember", "--api-sock", "/tmp/s", "--mmds-size-limit", "0", NULL};
    cr_expect_eq(cli_parse(5, bad, &o, &e), -EINVAL);
    cr_expect(strstr(e.text, "--mmds-size-limit"), "%s", e.text);
    cli_free(&o);
}
