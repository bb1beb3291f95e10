/*
 * ember-uffd-handler SOCKET_PATH MEM_FILE: the page-fault handler for
 * `PUT /snapshot/load` with `mem_backend.backend_type = "Uffd"`, speaking
 * Firecracker's protocol (core/uffd_msg.h), so it serves Ember and Firecracker
 * alike. It listens on SOCKET_PATH, accepts one VMM, receives the regions and
 * the userfaultfd, then fills each page the guest touches from MEM_FILE (zeros
 * for pages the VMM removed) until the VMM goes away. docs/snapshot-tools.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/errmsg.h"
#include "core/uffd_msg.h"
#include "tools/snapshot/uffd_serve.h"

#define PROG "ember-uffd-handler"
/* Firecracker connects and sends in one go: a VMM silent this long after connecting is stuck. */
#define MESSAGE_TIMEOUT_MS 10000

static void usage(FILE *to)
{
    fprintf(to, "usage: " PROG " [--wait-for-exit] SOCKET_PATH MEM_FILE\n"
                "Serves the page faults of one VMM loading a snapshot with a \"Uffd\" memory backend\n"
                "(Firecracker's protocol): listens on SOCKET_PATH, accepts one connection, receives\n"
                "the guest memory regions and the userfaultfd, and fills each page the guest touches\n"
                "from MEM_FILE (with zeros for pages the VMM removed, e.g. by the balloon).\n"
                "It exits 0 when the VMM closes the connection or exits, 1 on any error.\n"
                "  --wait-for-exit  keep serving after the connection closes, until the VMM process\n"
                "                   exits (Firecracker before 1.12 closes it right after sending)\n"
                "  --help           this text\n");
}

struct mem_file {
    const void *data;
    uint64_t size;
};

static int map_file(const char *path, struct mem_file *f, struct errmsg *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return err_set(err, -errno, "cannot open memory file %s: %s", path, strerror(errno));
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) < 0)
        rc = err_set(err, -errno, "cannot stat %s: %s", path, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        rc = err_set(err, -EINVAL, "memory file %s is not a regular file", path);
    else if (st.st_size == 0)
        rc = err_set(err, -EINVAL, "memory file %s is empty", path);
    if (!rc) {
        /* Private and read-only: the file is never written, and only the pages the guest touches are read. */
        void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE | MAP_NORESERVE, fd, 0);
        if (p == MAP_FAILED)
            rc = err_set(err, -errno, "cannot map %s: %s", path, strerror(errno));
        else
            *f = (struct mem_file){.data = p, .size = (uint64_t)st.st_size};
    }
    close(fd);
    return rc;
}

static int listen_on(const char *path, struct errmsg *err)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path))
        return err_set(err, -ENAMETOOLONG, "socket path %s is longer than %zu bytes", path, sizeof(sa.sun_path) - 1);
    strcpy(sa.sun_path, path);
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return err_set(err, -errno, "socket: %s", strerror(errno));
    if (bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(s, 1) < 0) {
        int e = errno;
        close(s);
        return err_set(err, -e, "cannot listen on %s: %s%s", path, strerror(e),
                       e == EADDRINUSE ? " (remove the stale socket or pick another path)" : "");
    }
    return s;
}

/* Accepts the VMM, then closes and removes the listening socket: a second VMM is refused at once. */
static int accept_vmm(int listener, const char *path, struct errmsg *err)
{
    struct sockaddr_un peer;
    socklen_t peer_len;
    int c;
    do {
        peer_len = sizeof(peer);
        c = accept4(listener, (struct sockaddr *)&peer, &peer_len, SOCK_CLOEXEC);
    } while (c < 0 && errno == EINTR);
    int e = errno;
    close(listener);
    unlink(path);
    return c < 0 ? err_set(err, -e, "accepting the VMM's connection on %s failed: %s", path, strerror(e)) : c;
}

/* The kernel names a userfaultfd's inode "[userfaultfd]": anything else is refused before use. */
static int check_is_uffd(int fd, struct errmsg *err)
{
    char link[64], target[64];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, target, sizeof(target) - 1);
    if (n < 0)
        return err_set(err, -errno, "cannot inspect the received descriptor: %s", strerror(errno));
    target[n] = '\0';
    if (strcmp(target, "anon_inode:[userfaultfd]"))
        return err_set(err, -EBADF, "the VMM sent %s, not a userfaultfd", target);
    /* Events are read until the queue is empty; poll() on a blocking uffd reports only POLLERR. */
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return err_set(err, -errno, "cannot make the userfaultfd non-blocking: %s", strerror(errno));
    return 0;
}

/* A descriptor that becomes readable when the VMM (the socket's peer) exits. */
static int watch_peer(int sock, struct errmsg *err)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);
    if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || cred.pid <= 0)
        return err_set(err, -ESRCH, "--wait-for-exit: the VMM's process id is not visible from here");
    int fd = (int)syscall(SYS_pidfd_open, cred.pid, 0);
    if (fd < 0)
        return err_set(err, -errno, "--wait-for-exit: pidfd_open(%d): %s", (int)cred.pid, strerror(errno));
    return fd;
}

/* Receives and checks the regions and the userfaultfd: the uffd, or -errno with a message. */
static int receive(int sock, const struct mem_file *f, const char *file_name, struct uffd_region *r, unsigned *n,
                   struct errmsg *err)
{
    struct pollfd p = {.fd = sock, .events = POLLIN};
    int ready = poll(&p, 1, MESSAGE_TIMEOUT_MS);
    if (ready <= 0)
        return err_set(err, ready ? -errno : -ETIMEDOUT, "the VMM connected but sent no regions within %d s",
                       MESSAGE_TIMEOUT_MS / 1000);
    char *buf = malloc(UFFD_MSG_MAX_LEN);
    if (!buf)
        return err_set(err, -ENOMEM, "out of memory");
    int uffd = -1;
    int rc = uffd_msg_recv(sock, buf, UFFD_MSG_MAX_LEN, &uffd, err);
    if (rc >= 0)
        rc = uffd_msg_parse(buf, (size_t)rc, r, UFFD_MSG_MAX_REGIONS, n, err);
    free(buf);
    if (!rc)
        rc = uffd_regions_fit_file(r, *n, f->size, file_name, err);
    if (!rc)
        rc = check_is_uffd(uffd, err);
    if (rc && uffd >= 0)
        close(uffd);
    return rc ? rc : uffd;
}

/* Answers faults until the VMM goes: 0 then, or -errno with a message. */
static int serve(struct uffd_server *s, int sock, int pidfd, struct errmsg *err)
{
    bool watch_sock = true;
    for (;;) {
        struct pollfd p[3] = {{.fd = s->uffd, .events = POLLIN},
                              {.fd = watch_sock ? sock : -1, .events = POLLRDHUP},
                              {.fd = pidfd, .events = POLLIN}};
        if (poll(p, 3, -1) < 0) {
            if (errno == EINTR)
                continue;
            return err_set(err, -errno, "poll: %s", strerror(errno));
        }
        if (p[0].revents & POLLERR)
            return err_set(err, -EPROTO, "the userfaultfd reports an error (the VMM did not initialise it?)");
        if (p[0].revents & POLLIN) {
            int rc = uffd_server_drain(s, err);
            if (rc)
                return rc > 0 ? 0 : rc;
        }
        if (p[0].revents & POLLHUP || p[2].revents)
            return 0;
        if (p[1].revents) {
            if (pidfd < 0)
                return 0;
            watch_sock = false; /* --wait-for-exit: the pidfd says when the VMM is gone */
        }
    }
}

int main(int argc, char **argv)
{
    bool wait_for_exit = false;
    int first = 1;
    for (; first < argc && argv[first][0] == '-' && argv[first][1]; first++) {
        if (!strcmp(argv[first], "--help") || !strcmp(argv[first], "-h")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(argv[first], "--wait-for-exit")) {
            wait_for_exit = true;
        } else if (!strcmp(argv[first], "--")) {
            first++;
            break;
        } else {
            fprintf(stderr, PROG ": unknown option %s\n", argv[first]);
            usage(stderr);
            return 1;
        }
    }
    if (argc - first != 2) {
        usage(stderr);
        return 1;
    }
    const char *sock_path = argv[first], *file_name = argv[first + 1];

    struct errmsg err = {{0}};
    struct mem_file f = {0};
    struct uffd_region regions[UFFD_MSG_MAX_REGIONS];
    unsigned n = 0;
    struct uffd_server s;
    int listener = -1, sock = -1, uffd = -1, pidfd = -1, rc;
    bool server_up = false;
    if ((rc = map_file(file_name, &f, &err)) < 0 || (rc = listener = listen_on(sock_path, &err)) < 0 ||
        (rc = sock = accept_vmm(listener, sock_path, &err)) < 0 ||
        (rc = uffd = receive(sock, &f, file_name, regions, &n, &err)) < 0 ||
        (wait_for_exit && (rc = pidfd = watch_peer(sock, &err)) < 0))
        goto out;
    if ((rc = uffd_server_init(&s, uffd, f.data, f.size, file_name, regions, n, &err)) < 0)
        goto out;
    server_up = true;
    fprintf(stderr, PROG ": serving %u region(s) of %s on %s\n", n, file_name, sock_path);
    rc = serve(&s, sock, pidfd, &err);
    fprintf(stderr,
            PROG ": %s: %" PRIu64 " fault(s) served, %" PRIu64 " page(s) copied, %" PRIu64 " page(s) zeroed, %" PRIu64
                 " already present, %" PRIu64 " remove event(s)\n",
            rc ? "stopping" : "the VMM has gone", s.stats.faults, s.stats.pages_copied, s.stats.pages_zeroed,
            s.stats.races, s.stats.removes);
out:
    if (rc < 0)
        fprintf(stderr, PROG ": %s\n", err.text);
    if (server_up)
        uffd_server_destroy(&s);
    if (pidfd >= 0)
        close(pidfd);
    if (uffd >= 0)
        close(uffd);
    if (sock >= 0)
        close(sock);
    if (f.data)
        munmap((void *)f.data, f.size);
    return rc < 0 ? 1 : 0;
}
