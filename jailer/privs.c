#include "jailer/privs.h"

#include <cap-ng.h>
#include <linux/capability.h>
#include <stdbool.h>
#include <errno.h>
#include <seccomp.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

int jl_sanitize(struct errmsg *err)
{
    /* A closed 0, 1 or 2 would be reused by the next open: give it /dev/null. */
    for (int fd = 0; fd <= 2; fd++)
        if (fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
            int n = open("/dev/null", O_RDWR);
            if (n != fd)
                return err_set(err, -EBADF, "cannot put /dev/null on fd %d", fd);
        }
    if (close_range(3, ~0U, 0))
        return err_set(err, -errno, "close_range(3, ~0): %s", strerror(errno));
    if (clearenv())
        return err_set(err, -ENOMEM, "clearenv failed");
    return 0;
}

int jl_join_netns(const char *path, struct errmsg *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return err_set(err, -errno, "cannot open %s: %s", path, strerror(errno));
    int rc = setns(fd, CLONE_NEWNET) ? -errno : 0;
    close(fd);
    if (rc)
        return err_set(err, rc, "setns(%s, CLONE_NEWNET): %s", path,
                       rc == -EINVAL ? "not a network namespace" : strerror(-rc));
    return 0;
}

int jl_apply_rlimits(const struct jl_args *a, struct errmsg *err)
{
    for (size_t i = 0; i < a->n_rlimits; i++) {
        struct rlimit rl = {a->rlimits[i].value, a->rlimits[i].value};
        if (setrlimit(a->rlimits[i].resource, &rl))
            return err_set(err, -errno, "setrlimit %s=%llu: %s", a->rlimits[i].name,
                           (unsigned long long)a->rlimits[i].value, strerror(errno));
    }
    return 0;
}

int jl_drop_bounding_set(bool keep_dac, struct errmsg *err)
{
    capng_clear(CAPNG_SELECT_BOUNDS);
    if (keep_dac && capng_update(CAPNG_ADD, CAPNG_BOUNDING_SET, CAP_DAC_OVERRIDE))
        return err_set(err, -EINVAL, "capng_update(CAP_DAC_OVERRIDE) failed");
    if (capng_apply(CAPNG_SELECT_BOUNDS))
        return err_set(err, -EPERM, "capng_apply(bounding set): cannot empty the bounding set");
    return 0;
}

int jl_drop_ids(uid_t uid, gid_t gid, struct errmsg *err)
{
    if (setgroups(0, NULL))
        return err_set(err, -errno, "setgroups(0): %s", strerror(errno));
    if (setresgid(gid, gid, gid))
        return err_set(err, -errno, "setresgid(%u): %s", (unsigned)gid, strerror(errno));
    if (setresuid(uid, uid, uid))
        return err_set(err, -errno, "setresuid(%u): %s", (unsigned)uid, strerror(errno));
    /* Paranoia about the kernel's answer: there must be no way back. */
    if (uid != 0 && (setuid(0) == 0 || setgid(0) == 0))
        return err_set(err, -EPERM, "could regain root after setresuid");
    return 0;
}

/* The one capability kept (keep_dac) or none in the effective, permitted and bounding sets; none inheritable. */
static bool caps_are_only_dac(bool keep_dac)
{
    static const capng_type_t sets[] = {CAPNG_EFFECTIVE, CAPNG_PERMITTED, CAPNG_BOUNDING_SET, CAPNG_INHERITABLE};
    for (unsigned s = 0; s < sizeof(sets) / sizeof(sets[0]); s++)
        for (unsigned cap = 0; cap <= CAP_LAST_CAP; cap++) {
            bool want = keep_dac && cap == CAP_DAC_OVERRIDE && sets[s] != CAPNG_INHERITABLE;
            if ((capng_have_capability(sets[s], cap) != 0) != want)
                return false;
        }
    return true;
}

int jl_drop_caps(bool keep_dac, struct errmsg *err)
{
    capng_clear(CAPNG_SELECT_ALL);
    /* Root's exec keeps what it holds now (no_new_privs: no more than that), so it must be held here. */
    if (keep_dac && capng_update(CAPNG_ADD, CAPNG_EFFECTIVE | CAPNG_PERMITTED | CAPNG_BOUNDING_SET, CAP_DAC_OVERRIDE))
        return err_set(err, -EINVAL, "capng_update(CAP_DAC_OVERRIDE) failed");
    if (capng_apply(CAPNG_SELECT_CAPS))
        return err_set(err, -EPERM, "capng_apply(capabilities) failed");
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) && errno != EINVAL)
        return err_set(err, -errno, "clearing the ambient set: %s", strerror(errno));
    /* Read back what the kernel holds for this process. */
    if (capng_get_caps_process())
        return err_set(err, -EIO, "cannot read back the capabilities");
    if (!keep_dac && capng_have_capabilities(CAPNG_SELECT_CAPS) != CAPNG_NONE)
        return err_set(err, -EPERM, "capabilities remain after dropping them");
    if (!keep_dac && capng_have_capabilities(CAPNG_SELECT_BOUNDS) != CAPNG_NONE)
        return err_set(err, -EPERM, "the bounding set is not empty");
    if (!caps_are_only_dac(keep_dac))
        return err_set(err, -EPERM, "capabilities other than CAP_DAC_OVERRIDE remain after dropping them");
    return 0;
}

/*
 * A baseline filter for everything the jailed process will ever run,
 * inherited across execve (no_new_privs is set): calls no VMM needs and
 * an escape would want fail with EPERM. Ember adds its own, stricter,
 * per-thread filters on top; this one also covers what runs before them.
 */
int jl_baseline_filter(struct errmsg *err)
{
    static const int denied[] = {
        SCMP_SYS(ptrace),
        SCMP_SYS(mount),
        SCMP_SYS(umount2),
        SCMP_SYS(pivot_root),
        SCMP_SYS(chroot),
        SCMP_SYS(unshare),
        SCMP_SYS(setns),
        SCMP_SYS(init_module),
        SCMP_SYS(finit_module),
        SCMP_SYS(delete_module),
        SCMP_SYS(kexec_load),
        SCMP_SYS(kexec_file_load),
        SCMP_SYS(reboot),
        SCMP_SYS(bpf),
        SCMP_SYS(perf_event_open),
        SCMP_SYS(keyctl),
        SCMP_SYS(add_key),
        SCMP_SYS(request_key),
        SCMP_SYS(swapon),
        SCMP_SYS(swapoff),
        SCMP_SYS(acct),
        SCMP_SYS(settimeofday),
        SCMP_SYS(clock_settime),
        SCMP_SYS(open_by_handle_at),
        SCMP_SYS(name_to_handle_at),
        SCMP_SYS(process_vm_readv),
        SCMP_SYS(process_vm_writev),
        SCMP_SYS(userfaultfd),
        SCMP_SYS(fsopen),
        SCMP_SYS(fsmount),
        SCMP_SYS(move_mount),
        SCMP_SYS(open_tree),
    };
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (!ctx)
        return err_set(err, -ENOMEM, "seccomp baseline: cannot create a filter");
    int rc = 0;
    for (unsigned i = 0; i < sizeof(denied) / sizeof(denied[0]) && !rc; i++)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), denied[i], 0);
    /* Only Unix sockets (the API socket): no network but the tap, which is not a socket. */
    if (!rc)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socket), 1, SCMP_A0(SCMP_CMP_NE, AF_UNIX));
    if (!rc)
        rc = seccomp_load(ctx);
    seccomp_release(ctx);
    if (rc)
        return err_set(err, rc, "seccomp baseline filter: %s", strerror(-rc));
    return 0;
}

int jl_no_new_privs(struct errmsg *err)
{
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
        return err_set(err, -errno, "prctl(PR_SET_NO_NEW_PRIVS): %s", strerror(errno));
    return 0;
}
