/* The VMM -> page-fault handler message of a Uffd snapshot load (core/uffd_msg.h). */
#include "core/uffd_msg.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int uffd_msg_encode(const struct uffd_region *r, unsigned n, char *buf, size_t len)
{
    if (n == 0 || n > UFFD_MSG_MAX_REGIONS || len == 0)
        return -EINVAL;
    size_t used = 0;
    for (unsigned i = 0; i <= n; i++) {
        int w;
        if (i == n)
            w = snprintf(buf + used, len - used, "]");
        else
            /* Both page size names, as Firecracker sends them: handlers written before 1.12 read page_size_kib. */
            w = snprintf(buf + used, len - used,
                         "%s{\"base_host_virt_addr\":%" PRIu64 ",\"size\":%" PRIu64 ",\"offset\":%" PRIu64
                         ",\"page_size\":%" PRIu64 ",\"page_size_kib\":%" PRIu64 "}",
                         i ? "," : "[", r[i].base_host_virt_addr, r[i].size, r[i].offset, r[i].page_size,
                         r[i].page_size);
        if (w < 0 || (size_t)w >= len - used)
            return -ENOSPC;
        used += (size_t)w;
    }
    return used > INT32_MAX ? -ENOSPC : (int)used;
}

int uffd_msg_send(int sock, const char *json, int uffd)
{
    size_t len = strlen(json), sent = 0;
    if (len == 0 || uffd < 0)
        return -EINVAL;
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int))];
    } ctl;
    memset(&ctl, 0, sizeof(ctl));
    while (sent < len) {
        struct iovec iov = {.iov_base = (char *)json + sent, .iov_len = len - sent};
        struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
        if (sent == 0) {
            /* The descriptor rides with the first byte; a short send continues without it. */
            m.msg_control = ctl.buf;
            m.msg_controllen = sizeof(ctl.buf);
            struct cmsghdr *c = CMSG_FIRSTHDR(&m);
            c->cmsg_level = SOL_SOCKET;
            c->cmsg_type = SCM_RIGHTS;
            c->cmsg_len = CMSG_LEN(sizeof(int));
            memcpy(CMSG_DATA(c), &uffd, sizeof(int));
        }
        ssize_t w = sendmsg(sock, &m, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        sent += (size_t)w;
    }
    return 0;
}

/* Every descriptor a control message carried: the first into *fd (if fd), the others closed; how many came. */
static int take_fds(struct msghdr *m, int *fd)
{
    int count = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS || c->cmsg_len < CMSG_LEN(0))
            continue;
        size_t nfds = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < nfds; i++) {
            int got;
            memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            if (count++ == 0 && fd)
                *fd = got;
            else
                close(got);
        }
    }
    return count;
}

int uffd_msg_recv(int sock, char *buf, size_t len, int *uffd, struct errmsg *err)
{
    if (len < 2)
        return err_set(err, -EINVAL, "uffd message: no room to receive it");
    /* Room for a few descriptors, so that a peer sending several is seen (and they are closed). */
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(4 * sizeof(int))];
    } ctl;
    struct iovec iov = {.iov_base = buf, .iov_len = len - 1};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf)};
    ssize_t got;
    do
        got = recvmsg(sock, &m, MSG_CMSG_CLOEXEC);
    while (got < 0 && errno == EINTR);
    if (got < 0)
        return err_set(err, -errno, "uffd message: receiving it failed: %s", strerror(errno));
    int fd = -1;
    int nfds = take_fds(&m, &fd);
    if (got == 0) {
        if (fd >= 0)
            close(fd);
        return err_set(err, -ECONNRESET, "uffd message: the VMM closed the connection without sending the regions");
    }
    if (m.msg_flags & MSG_CTRUNC || nfds != 1) {
        if (fd >= 0)
            close(fd);
        return err_set(err, -EBADMSG, "uffd message: expected exactly one userfaultfd with it, got %s",
                       m.msg_flags & MSG_CTRUNC ? "more than 4"
                       : nfds                   ? "several"
                                                : "none");
    }
    /* A message filling the whole buffer may have been cut: only a shorter one is known to be whole. */
    if ((size_t)got == len - 1) {
        close(fd);
        return err_set(err, -EMSGSIZE, "uffd message: longer than %zu bytes", len - 2);
    }
    buf[got] = '\0';
    *uffd = fd;
    return (int)got;
}

/* A field of region i as a non-negative integer: 0, -ENOENT when absent, -EINVAL with a message otherwise. */
static int get_u64(json_t *o, unsigned i, const char *name, uint64_t *v, struct errmsg *err)
{
    json_t *f = json_object_get(o, name);
    if (!f)
        return -ENOENT;
    if (!json_is_integer(f) || json_integer_value(f) < 0)
        return err_set(err, -EINVAL, "uffd message: region %u: \"%s\" must be a non-negative integer", i, name);
    *v = (uint64_t)json_integer_value(f);
    return 0;
}

static int parse_region(json_t *o, unsigned i, struct uffd_region *r, struct errmsg *err)
{
    if (!json_is_object(o))
        return err_set(err, -EINVAL, "uffd message: region %u is not a JSON object", i);
    static const char *const required[] = {"base_host_virt_addr", "size", "offset"};
    uint64_t *dst[] = {&r->base_host_virt_addr, &r->size, &r->offset};
    for (unsigned k = 0; k < 3; k++) {
        int rc = get_u64(o, i, required[k], dst[k], err);
        if (rc == -ENOENT)
            return err_set(err, -EINVAL, "uffd message: region %u has no \"%s\"", i, required[k]);
        if (rc)
            return rc;
    }
    uint64_t kib_named = 0;
    int rc_new = get_u64(o, i, "page_size", &r->page_size, err);
    if (rc_new && rc_new != -ENOENT)
        return rc_new;
    int rc_old = get_u64(o, i, "page_size_kib", &kib_named, err);
    if (rc_old && rc_old != -ENOENT)
        return rc_old;
    if (rc_new && rc_old)
        return err_set(err, -EINVAL, "uffd message: region %u has neither \"page_size\" nor \"page_size_kib\"", i);
    if (rc_new)
        r->page_size = kib_named;
    else if (!rc_old && kib_named != r->page_size)
        return err_set(err, -EINVAL,
                       "uffd message: region %u: page_size %" PRIu64 " and page_size_kib %" PRIu64
                       " differ (both are bytes)",
                       i, r->page_size, kib_named);

    uint64_t ps = r->page_size;
    if (ps < UFFD_MSG_MIN_PAGE_SIZE || ps > UFFD_MSG_MAX_PAGE_SIZE || (ps & (ps - 1)))
        return err_set(err, -EINVAL,
                       "uffd message: region %u: page size %" PRIu64 " is not a power of two from 4096 to %u", i, ps,
                       UFFD_MSG_MAX_PAGE_SIZE);
    if (r->size == 0)
        return err_set(err, -EINVAL, "uffd message: region %u is empty", i);
    if ((r->base_host_virt_addr | r->size) & (ps - 1))
        return err_set(err, -EINVAL,
                       "uffd message: region %u: base_host_virt_addr 0x%" PRIx64 " and size 0x%" PRIx64
                       " must be multiples of its page size 0x%" PRIx64,
                       i, r->base_host_virt_addr, r->size, ps);
    /* The file side only needs what UFFDIO_COPY needs of its source: whole small pages. */
    if (r->offset & (UFFD_MSG_MIN_PAGE_SIZE - 1))
        return err_set(err, -EINVAL, "uffd message: region %u: offset 0x%" PRIx64 " is not a multiple of %u", i,
                       r->offset, UFFD_MSG_MIN_PAGE_SIZE);
    if (r->base_host_virt_addr + r->size < r->base_host_virt_addr || r->offset + r->size < r->offset)
        return err_set(err, -EINVAL, "uffd message: region %u wraps around the end of the address or file range", i);
    return 0;
}

static bool overlap(uint64_t a, uint64_t b, uint64_t len_a, uint64_t len_b) { return a < b + len_b && b < a + len_a; }

int uffd_msg_parse(const char *json, size_t len, struct uffd_region *out, unsigned max, unsigned *n, struct errmsg *err)
{
    json_error_t jerr;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return err_set(err, -EINVAL, "uffd message: not valid JSON (%s, at byte %d)", jerr.text, jerr.position);
    int rc = 0;
    size_t count = json_is_array(root) ? json_array_size(root) : 0;
    if (!json_is_array(root))
        rc = err_set(err, -EINVAL, "uffd message: expected a JSON array of regions");
    else if (count == 0 || count > max || count > UFFD_MSG_MAX_REGIONS)
        rc = err_set(err, -EINVAL, "uffd message: %zu regions; expected 1 to %u", count,
                     max < UFFD_MSG_MAX_REGIONS ? max : UFFD_MSG_MAX_REGIONS);
    for (unsigned i = 0; !rc && i < count; i++) {
        rc = parse_region(json_array_get(root, i), i, &out[i], err);
        for (unsigned j = 0; !rc && j < i; j++) {
            if (overlap(out[i].base_host_virt_addr, out[j].base_host_virt_addr, out[i].size, out[j].size))
                rc = err_set(err, -EINVAL, "uffd message: regions %u and %u overlap in the VMM's address space", j, i);
            else if (overlap(out[i].offset, out[j].offset, out[i].size, out[j].size))
                rc = err_set(err, -EINVAL, "uffd message: regions %u and %u overlap in the memory file", j, i);
        }
    }
    json_decref(root);
    if (!rc)
        *n = (unsigned)count;
    return rc;
}
