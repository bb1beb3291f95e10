/*
 * The Uffd memory backend of a snapshot load: guest RAM stays anonymous and
 * untouched, every region is registered with one userfaultfd, and a handler
 * process (tools/snapshot/uffd_handler.c, or any handler written for
 * Firecracker) receives the region list and the userfaultfd and fills pages
 * as the guest, KVM or Ember's devices fault on them.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/uffd_msg.h"
#include "vm/snapshot_mem.h"

static int register_regions(const struct guest_mem *gm, int uffd, struct errmsg *err)
{
    struct uffdio_api api = {.api = UFFD_API};
    if (ioctl(uffd, UFFDIO_API, &api) < 0)
        return err_set(err, -errno, "userfaultfd: UFFDIO_API: %s", strerror(errno));
    for (int i = 0; i < gm->nr_regions; i++) {
        struct uffdio_register reg = {
            .range = {.start = (uint64_t)(uintptr_t)gm->regions[i].host, .len = gm->regions[i].size},
            .mode = UFFDIO_REGISTER_MODE_MISSING,
        };
        if (ioctl(uffd, UFFDIO_REGISTER, &reg) < 0)
            return err_set(err, -errno, "userfaultfd: cannot register guest memory region %d: %s", i, strerror(errno));
    }
    return 0;
}

static int connect_handler(const char *path, struct errmsg *err)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(a.sun_path))
        return err_set(err, -ENAMETOOLONG, "Uffd backend_path '%s': longer than a Unix socket path may be", path);
    memcpy(a.sun_path, path, strlen(path) + 1);
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return err_set(err, -errno, "socket: %s", strerror(errno));
    if (connect(s, (struct sockaddr *)&a, sizeof(a)) < 0) {
        int rc = -errno;
        close(s);
        return err_set(err, rc, "Uffd backend_path '%s': no page-fault handler listens there: %s", path, strerror(-rc));
    }
    return s;
}

int snapshot_mem_uffd(const struct guest_mem *gm, const char *sock_path, int *uffd, int *sock, struct errmsg *err)
{
    int s = connect_handler(sock_path, err);
    if (s < 0)
        return s;
    int u = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    if (u < 0) {
        int rc = -errno;
        close(s);
        return err_set(err, rc, "userfaultfd: %s%s", strerror(-rc),
                       rc == -EPERM ? " (vm.unprivileged_userfaultfd is 0: run as root or with CAP_SYS_PTRACE)" : "");
    }
    int rc = register_regions(gm, u, err);
    struct uffd_region r[GUEST_MEM_MAX_REGIONS];
    uint64_t off = 0;
    for (int i = 0; i < gm->nr_regions; i++) {
        r[i] = (struct uffd_region){(uint64_t)(uintptr_t)gm->regions[i].host, gm->regions[i].size, off,
                                    GUEST_PAGE_SIZE};
        off += gm->regions[i].size;
    }
    char msg[UFFD_MSG_MAX_LEN];
    if (!rc && uffd_msg_encode(r, (unsigned)gm->nr_regions, msg, sizeof(msg)) < 0)
        rc = err_set(err, -EINVAL, "cannot encode the region list for the page-fault handler");
    if (!rc && (rc = uffd_msg_send(s, msg, u)))
        err_set(err, rc, "Uffd backend_path '%s': cannot hand the userfaultfd to the handler: %s", sock_path,
                strerror(-rc));
    if (rc) {
        close(u);
        close(s);
        return rc;
    }
    *uffd = u;
    *sock = s; /* kept open: the handler sees it close when the VM goes */
    return 0;
}
