/*
 * The VMM thread's loop: starts the vCPUs, then waits on one epoll set for
 * the VM's end, SIGINT/SIGTERM and console input, and tears the vCPUs down.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "console.h"
#include "log.h"
#include "vcpu.h"
#include "vm.h"

static void kick_handler(int sig) { (void)sig; }

static int setup_signals(sigset_t *stop_set, struct errmsg *err)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = kick_handler; /* no SA_RESTART: KVM_RUN must return EINTR */
    if (sigaction(VCPU_KICK_SIGNAL, &sa, NULL) < 0)
        return err_set(err, -errno, "sigaction: %s", strerror(errno));
    sigemptyset(stop_set);
    sigaddset(stop_set, SIGINT);
    sigaddset(stop_set, SIGTERM);
    /* Blocked here, and so in every vCPU thread created after: only the signalfd sees them. */
    if (pthread_sigmask(SIG_BLOCK, stop_set, NULL) != 0)
        return err_set(err, -EINVAL, "pthread_sigmask failed");
    return 0;
}

struct input_buf {
    uint8_t data[256];
    unsigned len;
};

static void feed_console(struct vm *vm, struct input_buf *in)
{
    unsigned n = serial_receive(&vm->serial, in->data, in->len);
    memmove(in->data, in->data + n, in->len - n);
    in->len -= n;
}

static void print_stats(struct vm *vm)
{
    struct exit_stats sum;
    memset(&sum, 0, sizeof(sum));
    for (int i = 0; i < vm->nr_vcpus; i++)
        exit_stats_add(&sum, &vm->vcpus[i].stats);
    char line[512];
    size_t pos = 0;
    for (int k = 0; k < EXIT_KINDS; k++)
        pos += (size_t)snprintf(line + pos, sizeof(line) - pos, "%s%s=%" PRIu64, k ? " " : "",
                                exit_kind_name((enum exit_kind)k), sum.exits[k]);
    fprintf(stderr, "ember: stats: exits: %s\n", line);
    pos = 0;
    for (int k = 0; k < INSN_KINDS; k++)
        pos += (size_t)snprintf(line + pos, sizeof(line) - pos, "%s%s=%" PRIu64, k ? " " : "",
                                interp_insn_name((enum interp_insn)k), sum.insns[k]);
    fprintf(stderr, "ember: stats: interpreted: %s\n", line);
    uint64_t first = atomic_load(&vm->t_first_run_ns);
    fprintf(stderr, "ember: stats: start to first KVM_RUN: %.3f ms; serial bytes out: %" PRIu64 "\n",
            first ? (double)(first - vm->t_start_ns) / 1e6 : -1.0, vm->serial.tx_bytes);
}

int vm_run(struct vm *vm, struct errmsg *err)
{
    sigset_t stop_set;
    int rc = setup_signals(&stop_set, err);
    if (rc)
        return rc;
    int sfd = signalfd(-1, &stop_set, SFD_CLOEXEC | SFD_NONBLOCK);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (sfd < 0 || ep < 0) {
        rc = err_set(err, -errno, "signalfd/epoll: %s", strerror(errno));
        goto out;
    }
    struct epoll_event ev = {.events = EPOLLIN};
    ev.data.fd = vm->stop_efd;
    epoll_ctl(ep, EPOLL_CTL_ADD, vm->stop_efd, &ev);
    ev.data.fd = sfd;
    epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);
    int stdin_open = console_raw_begin();
    if (stdin_open) {
        ev.data.fd = STDIN_FILENO;
        if (epoll_ctl(ep, EPOLL_CTL_ADD, STDIN_FILENO, &ev) < 0)
            stdin_open = 0;
    }

    for (int i = 0; i < vm->nr_vcpus; i++) {
        rc = vcpu_start_thread(&vm->vcpus[i], err);
        if (rc) {
            vm_request_end(vm, VM_END_ERROR, "%s", err->text);
            break;
        }
    }

    struct input_buf in = {.len = 0};
    while (atomic_load(&vm->end) == VM_END_NONE) {
        struct epoll_event evs[4];
        /* With input waiting on a full FIFO, poll again shortly instead of blocking. */
        int n = epoll_wait(ep, evs, 4, in.len ? 5 : -1);
        if (n < 0 && errno != EINTR) {
            vm_request_end(vm, VM_END_ERROR, "epoll_wait: %s", strerror(errno));
            break;
        }
        if (in.len)
            feed_console(vm, &in);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == sfd) {
                struct signalfd_siginfo si;
                if (read(sfd, &si, sizeof(si)) == sizeof(si))
                    vm_request_end(vm, VM_END_SIGNAL, "stopped by %s", strsignal((int)si.ssi_signo));
            } else if (fd == STDIN_FILENO && in.len < sizeof(in.data)) {
                ssize_t got = read(STDIN_FILENO, in.data + in.len, sizeof(in.data) - in.len);
                if (got > 0) {
                    in.len += (unsigned)got;
                    feed_console(vm, &in);
                } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
                    epoll_ctl(ep, EPOLL_CTL_DEL, STDIN_FILENO, NULL); /* EOF: console is output-only */
                }
            }
        }
    }

    for (int i = 0; i < vm->nr_vcpus; i++)
        vcpu_kick(&vm->vcpus[i]);
    for (int i = 0; i < vm->nr_vcpus; i++) {
        if (vm->vcpus[i].thread_started) {
            pthread_join(vm->vcpus[i].thread, NULL);
            vm->vcpus[i].thread_started = 0;
        }
    }
    console_restore();
    if (vm->cfg.print_stats)
        print_stats(vm);
    rc = 0;
out:
    if (ep >= 0)
        close(ep);
    if (sfd >= 0)
        close(sfd);
    return rc;
}
