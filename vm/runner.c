#include "vm/runner.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "core/console.h"
#include "core/log.h"
#include "vm/vcpu.h"
#include "vm/vm.h"

static void kick_handler(int sig) { (void)sig; }

static void feed_console(struct runner *r)
{
    unsigned n = vm_console_input(r->vm, r->console_in, r->console_in_len);
    memmove(r->console_in, r->console_in + n, r->console_in_len - n);
    r->console_in_len -= n;
}

static void on_stdin(void *opaque, uint32_t events)
{
    struct runner *r = opaque;
    (void)events;
    if (r->console_in_len == sizeof(r->console_in))
        return;
    ssize_t got = read(STDIN_FILENO, r->console_in + r->console_in_len, sizeof(r->console_in) - r->console_in_len);
    if (got > 0) {
        r->console_in_len += (unsigned)got;
        feed_console(r);
    } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
        evloop_remove(&r->loop, STDIN_FILENO); /* EOF: the console is output-only now */
    }
}

static void on_signal(void *opaque, uint32_t events)
{
    struct runner *r = opaque;
    (void)events;
    struct signalfd_siginfo si;
    if (read(r->signal_fd, &si, sizeof(si)) != sizeof(si))
        return;
    if (r->vm)
        vm_request_end(r->vm, VM_END_SIGNAL, "stopped by %s", strsignal((int)si.ssi_signo));
    else
        r->stop_requested = true;
    log_info("%s: stopping", strsignal((int)si.ssi_signo));
}

static void on_vm_stop(void *opaque, uint32_t events)
{
    (void)opaque, (void)events; /* waking the loop is all it is for */
}

int runner_init(struct runner *r, struct errmsg *err)
{
    memset(r, 0, sizeof(*r));
    r->signal_fd = -1;
    int rc = evloop_init(&r->loop);
    if (rc)
        return err_set(err, rc, "epoll: %s", strerror(-rc));
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = kick_handler; /* no SA_RESTART: KVM_RUN must return EINTR */
    if (sigaction(VCPU_KICK_SIGNAL, &sa, NULL) < 0)
        return err_set(err, -errno, "sigaction: %s", strerror(errno));
    sigset_t stop_set;
    sigemptyset(&stop_set);
    sigaddset(&stop_set, SIGINT);
    sigaddset(&stop_set, SIGTERM);
    /* Blocked here, and so in every thread created after: only the signalfd sees them. */
    if (pthread_sigmask(SIG_BLOCK, &stop_set, NULL) != 0)
        return err_set(err, -EINVAL, "pthread_sigmask failed");
    /* A vanished console or API reader must not kill the VMM: writes fail with EPIPE instead. */
    signal(SIGPIPE, SIG_IGN);
    r->signal_fd = signalfd(-1, &stop_set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (r->signal_fd < 0)
        return err_set(err, -errno, "signalfd: %s", strerror(errno));
    rc = evloop_add(&r->loop, r->signal_fd, EPOLLIN, on_signal, r);
    if (rc)
        return err_set(err, rc, "event loop: %s", strerror(-rc));
    return 0;
}

int runner_start_vm(struct runner *r, struct vm *vm, struct errmsg *err)
{
    int rc = evloop_add(&r->loop, vm_stop_fd(vm), EPOLLIN, on_vm_stop, r);
    if (rc)
        return err_set(err, rc, "event loop: %s", strerror(-rc));
    r->vm = vm;
    if (!r->console_raw && console_raw_begin()) {
        r->console_raw = true;
        if (evloop_add(&r->loop, STDIN_FILENO, EPOLLIN, on_stdin, r) < 0)
            log_warn("console input unavailable: stdin cannot be polled");
    }
    rc = vm_start(vm, err);
    if (rc) {
        r->vm = NULL;
        evloop_remove(&r->loop, vm_stop_fd(vm));
    }
    return rc;
}

int runner_loop(struct runner *r)
{
    for (;;) {
        if (r->vm ? vm_has_ended(r->vm) : r->stop_requested)
            return 0;
        /* With input waiting on a full FIFO, look again shortly instead of blocking. */
        int n = evloop_run_once(&r->loop, r->console_in_len ? 5 : -1);
        if (n < 0) {
            if (r->vm)
                vm_request_end(r->vm, VM_END_ERROR, "epoll_wait: %s", strerror(-n));
            return n;
        }
        if (r->console_in_len && r->vm)
            feed_console(r);
    }
}

void runner_finish(struct runner *r)
{
    if (r->vm) {
        vm_stop(r->vm);
        evloop_remove(&r->loop, vm_stop_fd(r->vm));
        vm_print_stats(r->vm); /* when --stats asked for them */
        r->vm = NULL;
    }
    if (r->console_raw) {
        evloop_remove(&r->loop, STDIN_FILENO);
        console_restore();
        r->console_raw = false;
    }
    if (r->signal_fd >= 0)
        close(r->signal_fd);
    r->signal_fd = -1;
    evloop_destroy(&r->loop);
}
