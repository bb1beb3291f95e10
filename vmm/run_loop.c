/*
 * The VMM thread's loop: starts the vCPUs, then serves the event loop
 * (device events, the VM's end, SIGINT/SIGTERM, console input) and tears
 * the vCPUs down once the VM's end is decided.
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
    /* A vanished console reader must not kill the VM: writes then fail with EPIPE. */
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

static void feed_console(struct vm *vm)
{
    unsigned n = serial_receive(&vm->serial, vm->console_in, vm->console_in_len);
    memmove(vm->console_in, vm->console_in + n, vm->console_in_len - n);
    vm->console_in_len -= n;
}

static void on_stdin(void *opaque, uint32_t events)
{
    struct vm *vm = opaque;
    (void)events;
    if (vm->console_in_len == sizeof(vm->console_in))
        return;
    ssize_t got = read(STDIN_FILENO, vm->console_in + vm->console_in_len,
                       sizeof(vm->console_in) - vm->console_in_len);
    if (got > 0) {
        vm->console_in_len += (unsigned)got;
        feed_console(vm);
    } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
        evloop_remove(&vm->loop, STDIN_FILENO); /* EOF: the console is output-only now */
    }
}

static void on_signal(void *opaque, uint32_t events)
{
    struct vm *vm = opaque;
    (void)events;
    struct signalfd_siginfo si;
    if (read(vm->signal_fd, &si, sizeof(si)) == sizeof(si))
        vm_request_end(vm, VM_END_SIGNAL, "stopped by %s", strsignal((int)si.ssi_signo));
}

static void on_stop(void *opaque, uint32_t events)
{
    (void)opaque, (void)events; /* waking the loop is all it is for */
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
    if (sfd < 0)
        return err_set(err, -errno, "signalfd: %s", strerror(errno));
    vm->signal_fd = sfd;
    rc = evloop_add(&vm->loop, vm->stop_efd, EPOLLIN, on_stop, vm);
    if (!rc)
        rc = evloop_add(&vm->loop, sfd, EPOLLIN, on_signal, vm);
    if (rc) {
        close(sfd);
        return err_set(err, rc, "event loop: %s", strerror(-rc));
    }
    if (console_raw_begin() && evloop_add(&vm->loop, STDIN_FILENO, EPOLLIN, on_stdin, vm) < 0)
        log_warn("console input unavailable: stdin cannot be polled");

    for (int i = 0; i < vm->nr_vcpus; i++) {
        rc = vcpu_start_thread(&vm->vcpus[i], err);
        if (rc) {
            vm_request_end(vm, VM_END_ERROR, "%s", err->text);
            break;
        }
    }

    while (atomic_load(&vm->end) == VM_END_NONE) {
        /* With input waiting on a full FIFO, look again shortly instead of blocking. */
        int n = evloop_run_once(&vm->loop, vm->console_in_len ? 5 : -1);
        if (n < 0) {
            vm_request_end(vm, VM_END_ERROR, "epoll_wait: %s", strerror(-n));
            break;
        }
        if (vm->console_in_len)
            feed_console(vm);
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
    evloop_remove(&vm->loop, sfd);
    close(sfd);
    return 0;
}
