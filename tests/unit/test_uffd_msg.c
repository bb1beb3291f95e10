/* uffd_msg: Firecracker's region message, encoded, sent with its descriptor, received and checked. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/uffd_msg.h"

TestSuite(uffd_msg);

static const struct uffd_region two[] = {
    {.base_host_virt_addr = 0x7f0000000000, .size = 0x8000, .offset = 0, .page_size = 4096},
    {.base_host_virt_addr = 0x7f1000000000, .size = 0x400000, .offset = 0x8000, .page_size = 0x200000},
};

static int parse(const char *json, struct uffd_region *out, unsigned *n, struct errmsg *err)
{
    return uffd_msg_parse(json, strlen(json), out, UFFD_MSG_MAX_REGIONS, n, err);
}

/* Asserts that json is refused with a message containing `why`. */
static void refused(const char *json, const char *why)
{
    struct uffd_region r[UFFD_MSG_MAX_REGIONS];
    unsigned n = 99;
    struct errmsg err = {{0}};
    cr_assert_eq(parse(json, r, &n, &err), -EINVAL, "accepted: %s", json);
    cr_assert_not_null(strstr(err.text, why), "for %s: message \"%s\" lacks \"%s\"", json, err.text, why);
    cr_assert_eq(n, 99, "*n set on error");
}

Test(uffd_msg, encodes_firecrackers_fields_and_parses_back)
{
    char buf[1024];
    int len = uffd_msg_encode(two, 2, buf, sizeof(buf));
    cr_assert_gt(len, 0);
    cr_assert_eq((size_t)len, strlen(buf));
    cr_assert_str_eq(buf, "[{\"base_host_virt_addr\":139637976727552,\"size\":32768,\"offset\":0,\"page_size\":4096,"
                          "\"page_size_kib\":4096},{\"base_host_virt_addr\":139706696204288,\"size\":4194304,"
                          "\"offset\":32768,\"page_size\":2097152,\"page_size_kib\":2097152}]");
    struct uffd_region back[2];
    unsigned n = 0;
    struct errmsg err = {{0}};
    cr_assert_eq(parse(buf, back, &n, &err), 0, "%s", err.text);
    cr_assert_eq(n, 2);
    cr_assert_arr_eq(back, two, sizeof(two));
}

Test(uffd_msg, encode_refuses_what_does_not_fit)
{
    char buf[64];
    cr_assert_eq(uffd_msg_encode(two, 2, buf, sizeof(buf)), -ENOSPC);
    cr_assert_eq(uffd_msg_encode(two, 0, buf, sizeof(buf)), -EINVAL);
    struct uffd_region many[UFFD_MSG_MAX_REGIONS + 1] = {{0}};
    cr_assert_eq(uffd_msg_encode(many, UFFD_MSG_MAX_REGIONS + 1, buf, sizeof(buf)), -EINVAL);
}

Test(uffd_msg, the_largest_message_fits_the_documented_bound)
{
    struct uffd_region r[UFFD_MSG_MAX_REGIONS];
    for (unsigned i = 0; i < UFFD_MSG_MAX_REGIONS; i++)
        r[i] = (struct uffd_region){.base_host_virt_addr = 0xfffffffffffff000ull - (i + 1) * 0x1000000000ull,
                                    .size = 0x1000000000ull,
                                    .offset = i * 0x1000000000ull,
                                    .page_size = 1u << 30};
    static char buf[UFFD_MSG_MAX_LEN];
    int len = uffd_msg_encode(r, UFFD_MSG_MAX_REGIONS, buf, sizeof(buf));
    cr_assert_gt(len, 0);
    cr_assert_lt(len, UFFD_MSG_MAX_LEN - 1);
}

Test(uffd_msg, parses_what_firecracker_sends_and_its_older_field)
{
    struct uffd_region r[UFFD_MSG_MAX_REGIONS];
    unsigned n = 0;
    struct errmsg err = {{0}};
    /* serde's output for Firecracker >= 1.12: both names, the same byte count. */
    cr_assert_eq(parse("[{\"base_host_virt_addr\":140000000000000,\"size\":134217728,\"offset\":0,"
                       "\"page_size\":4096,\"page_size_kib\":4096}]",
                       r, &n, &err),
                 0, "%s", err.text);
    cr_assert_eq(n, 1);
    cr_assert_eq(r[0].size, 134217728);
    cr_assert_eq(r[0].page_size, 4096);
    /* Firecracker 1.6 to 1.11: page_size_kib only (bytes, despite the name); whitespace and unknown fields. */
    cr_assert_eq(parse(" [ {\"size\": 8192, \"offset\": 4096, \"page_size_kib\": 4096, \"base_host_virt_addr\": 0,"
                       " \"future\": [1, 2]} ] ",
                       r, &n, &err),
                 0, "%s", err.text);
    cr_assert_eq(r[0].page_size, 4096);
    cr_assert_eq(r[0].offset, 4096);
    cr_assert_eq(r[0].base_host_virt_addr, 0);
}

Test(uffd_msg, accepts_64_regions_and_no_more)
{
    char json[UFFD_MSG_MAX_LEN];
    size_t used = 0;
    for (unsigned i = 0; i <= UFFD_MSG_MAX_REGIONS; i++)
        used += (size_t)snprintf(json + used, sizeof(json) - used,
                                 "%s{\"base_host_virt_addr\":%u,\"size\":4096,\"offset\":%u,\"page_size\":4096}",
                                 i ? "," : "[", i * 4096, i * 4096);
    snprintf(json + used, sizeof(json) - used, "]");
    refused(json, "65 regions; expected 1 to 64");
    /* Cut after the 64th region. */
    char *cut = strstr(json, ",{\"base_host_virt_addr\":262144,");
    cr_assert_not_null(cut);
    strcpy(cut, "]");
    struct uffd_region r[UFFD_MSG_MAX_REGIONS];
    unsigned n = 0;
    struct errmsg err = {{0}};
    cr_assert_eq(parse(json, r, &n, &err), 0, "%s", err.text);
    cr_assert_eq(n, 64);
    cr_assert_eq(r[63].offset, 63 * 4096);
    /* The caller's array bounds the count as well. */
    cr_assert_eq(uffd_msg_parse(json, strlen(json), r, 2, &n, &err), -EINVAL);
    cr_assert_not_null(strstr(err.text, "expected 1 to 2"), "%s", err.text);
}

Test(uffd_msg, refuses_hostile_messages)
{
    refused("", "not valid JSON");
    refused("[{", "not valid JSON");
    refused("[{\"base_host_virt_addr\":0,\"size\":4096,\"offset\":0,\"page_size\":4096}] x", "not valid JSON");
    refused("[{\"base_host_virt_addr\":0,\"base_host_virt_addr\":0,\"size\":4096,\"offset\":0,\"page_size\":4096}]",
            "not valid JSON");
    refused("{\"base_host_virt_addr\":0}", "expected a JSON array");
    refused("[]", "0 regions");
    refused("[7]", "region 0 is not a JSON object");
    refused("[{\"size\":4096,\"offset\":0,\"page_size\":4096}]", "region 0 has no \"base_host_virt_addr\"");
    refused("[{\"base_host_virt_addr\":0,\"offset\":0,\"page_size\":4096}]", "has no \"size\"");
    refused("[{\"base_host_virt_addr\":0,\"size\":4096,\"page_size\":4096}]", "has no \"offset\"");
    refused("[{\"base_host_virt_addr\":0,\"size\":4096,\"offset\":0}]", "neither \"page_size\" nor");
    refused("[{\"base_host_virt_addr\":-4096,\"size\":4096,\"offset\":0,\"page_size\":4096}]", "non-negative integer");
    refused("[{\"base_host_virt_addr\":0,\"size\":4096.0,\"offset\":0,\"page_size\":4096}]", "\"size\" must be");
    refused("[{\"base_host_virt_addr\":0,\"size\":\"4096\",\"offset\":0,\"page_size\":4096}]", "\"size\" must be");
    refused("[{\"base_host_virt_addr\":0,\"size\":4096,\"offset\":null,\"page_size\":4096}]", "\"offset\" must be");
    refused("[{\"base_host_virt_addr\":0,\"size\":4096,\"offset\":0,\"page_size\":true}]", "\"page_size\" must be");
    refused("[{\"base_host_virt_addr\":0,\"size\":4096,\"offset\":0,\"page_size\":4096,\"page_size_kib\":4}]",
            "differ");
    refused("[{\"base_host_virt_addr\":18446744073709551616,\"size\":4096,\"offset\":0,\"page_size\":4096}]",
            "not valid JSON");
    refused("[{\"base_host_virt_addr\":0,\"size\":6144,\"offset\":0,\"page_size\":3072}]", "not a power of two");
    refused("[{\"base_host_virt_addr\":0,\"size\":4096,\"offset\":0,\"page_size\":2048}]", "not a power of two");
    refused("[{\"base_host_virt_addr\":0,\"size\":4294967296,\"offset\":0,\"page_size\":2147483648}]",
            "not a power of two");
    refused("[{\"base_host_virt_addr\":0,\"size\":0,\"offset\":0,\"page_size\":4096}]", "region 0 is empty");
    refused("[{\"base_host_virt_addr\":0,\"size\":6144,\"offset\":0,\"page_size\":4096}]", "multiples of its page");
    refused("[{\"base_host_virt_addr\":2048,\"size\":4096,\"offset\":0,\"page_size\":4096}]", "multiples of its page");
    refused("[{\"base_host_virt_addr\":0,\"size\":4096,\"offset\":512,\"page_size\":4096}]",
            "offset 0x200 is not a multiple of 4096");
    refused("[{\"base_host_virt_addr\":0,\"size\":2097152,\"offset\":2048,\"page_size\":2097152}]",
            "offset 0x800 is not a multiple of 4096");
    refused("[{\"base_host_virt_addr\":4096,\"size\":8192,\"offset\":0,\"page_size\":4096},"
            "{\"base_host_virt_addr\":8192,\"size\":4096,\"offset\":8192,\"page_size\":4096}]",
            "regions 0 and 1 overlap in the VMM's address space");
    refused("[{\"base_host_virt_addr\":0,\"size\":8192,\"offset\":0,\"page_size\":4096},"
            "{\"base_host_virt_addr\":65536,\"size\":4096,\"offset\":4096,\"page_size\":4096}]",
            "regions 0 and 1 overlap in the memory file");
}

/* A connected stream pair: sv[0] the VMM's end, sv[1] the handler's. */
static void pair(int sv[2]) { cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0); }

static void same_file(int a, int b)
{
    struct stat sa, sb;
    cr_assert_eq(fstat(a, &sa), 0);
    cr_assert_eq(fstat(b, &sb), 0);
    cr_assert(sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino);
}

Test(uffd_msg, sends_the_text_with_the_descriptor)
{
    int sv[2];
    pair(sv);
    char json[1024];
    cr_assert_gt(uffd_msg_encode(two, 2, json, sizeof(json)), 0);
    int sent_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    cr_assert_geq(sent_fd, 0);
    cr_assert_eq(uffd_msg_send(sv[0], json, sent_fd), 0);

    char buf[UFFD_MSG_MAX_LEN];
    int fd = -1;
    struct errmsg err = {{0}};
    int len = uffd_msg_recv(sv[1], buf, sizeof(buf), &fd, &err);
    cr_assert_eq(len, (int)strlen(json), "%s", err.text);
    cr_assert_str_eq(buf, json);
    cr_assert_geq(fd, 0);
    cr_assert_neq(fd, sent_fd);
    same_file(fd, sent_fd);
    cr_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    close(fd);
    close(sent_fd);
    close(sv[0]);
    close(sv[1]);
}

Test(uffd_msg, send_reports_a_vanished_handler)
{
    int sv[2];
    pair(sv);
    close(sv[1]);
    cr_assert_eq(uffd_msg_send(sv[0], "[]", 0), -EPIPE);
    cr_assert_eq(uffd_msg_send(sv[0], "", 0), -EINVAL);
    cr_assert_eq(uffd_msg_send(sv[0], "[]", -1), -EINVAL);
    close(sv[0]);
}

/* Sends text with `nfds` copies of fd attached, as a confused or hostile VMM might. */
static void send_raw(int sock, const char *text, int fd, int nfds)
{
    int fds[3] = {fd, fd, fd};
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(fds))];
    } ctl;
    struct iovec iov = {.iov_base = (void *)text, .iov_len = strlen(text)};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
    if (nfds) {
        m.msg_control = ctl.buf;
        m.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
        memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
    }
    cr_assert_eq(sendmsg(sock, &m, 0), (ssize_t)strlen(text));
}

/* The lowest free descriptor: equal before and after means nothing was left open. */
static int next_fd(void)
{
    int fd = 0;
    while (fcntl(fd, F_GETFD) >= 0)
        fd++;
    return fd;
}

Test(uffd_msg, recv_refuses_a_message_without_exactly_one_descriptor)
{
    int sv[2];
    pair(sv);
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int free_fd = next_fd();
    char buf[256];
    int fd = -1;
    struct errmsg err = {{0}};

    send_raw(sv[0], "[]", devnull, 0);
    cr_assert_eq(uffd_msg_recv(sv[1], buf, sizeof(buf), &fd, &err), -EBADMSG);
    cr_assert_not_null(strstr(err.text, "got none"), "%s", err.text);

    send_raw(sv[0], "[]", devnull, 3);
    cr_assert_eq(uffd_msg_recv(sv[1], buf, sizeof(buf), &fd, &err), -EBADMSG);
    cr_assert_not_null(strstr(err.text, "got several"), "%s", err.text);
    cr_assert_eq(fd, -1);
    cr_assert_eq(next_fd(), free_fd, "a received descriptor was left open");

    close(sv[0]);
    cr_assert_eq(uffd_msg_recv(sv[1], buf, sizeof(buf), &fd, &err), -ECONNRESET);
    cr_assert_not_null(strstr(err.text, "closed the connection"), "%s", err.text);
    close(sv[1]);
    close(devnull);
}

Test(uffd_msg, recv_refuses_a_message_too_long_for_the_buffer)
{
    int sv[2];
    pair(sv);
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int free_fd = next_fd();
    char buf[16];
    int fd = -1;
    struct errmsg err = {{0}};
    send_raw(sv[0], "[0123456789abcdef]", devnull, 1);
    cr_assert_eq(uffd_msg_recv(sv[1], buf, sizeof(buf), &fd, &err), -EMSGSIZE);
    cr_assert_not_null(strstr(err.text, "longer than 14 bytes"), "%s", err.text);
    cr_assert_eq(next_fd(), free_fd, "the received descriptor was left open");
    close(sv[0]);
    close(sv[1]);
    close(devnull);
}
