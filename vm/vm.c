/*
 * The VM's life: create (KVM objects, memory, irqchip, devices, boot
 * structures, vCPUs), start, pause/resume, the end decision, and destroy.
 */
#include "vm/vm.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "devices/i8042.h"
#include "devices/serial.h"
#include "vm/hostcompat.h"
#include "vm/seccomp.h"
#include "vm/vcpu.h"
#include "vm/vcpu_state.h"
#include "vm/virtio_devices.h"
#include "vm/vm_internal.h"
#include "vm/vm_state.h"

uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

struct vm *vm_new(void)
{
    struct vm *vm = calloc(1, sizeof(*vm));
    if (vm) {
        vm->prepared.kvm_fd = vm->prepared.vm_fd = -1;
        vm->prepared.ahead.vcpu0_fd = vm->ahead.vcpu0_fd = -1;
    }
    return vm;
}

void vm_free(struct vm *vm)
{
    if (!vm)
        return;
    vm_destroy(vm);
    free(vm);
}

void vm_set_start_time(struct vm *vm, uint64_t t_ns) { vm->t_start_ns = t_ns; }

void vm_request_end(struct vm *vm, enum vm_end end, const char *fmt, ...)
{
    int expected = VM_END_NONE;
    if (!atomic_compare_exchange_strong(&vm->end, &expected, (int)end))
        return; /* the first decision stands */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(vm->end_reason, sizeof(vm->end_reason), fmt, ap);
    va_end(ap);
    uint64_t one = 1;
    if (write(vm->stop_efd, &one, sizeof(one)) < 0)
        log_error("cannot wake the main loop: %s", strerror(errno));
}

int vm_has_ended(const struct vm *vm) { return atomic_load(&vm->end) != VM_END_NONE; }

int vm_exit_status(const struct vm *vm)
{
    switch (atomic_load(&vm->end)) {
    case VM_END_RESET:
    case VM_END_SHUTDOWN:
    case VM_END_SIGNAL: return 0;
    case VM_END_CRASH: return 2;
    default: return 1;
    }
}

const char *vm_end_reason(const struct vm *vm) { return vm->end_reason; }

int vm_stop_fd(const struct vm *vm) { return vm->stop_efd; }

int vm_build_machine(struct vm *vm, const struct vm_config *cfg, struct event_loop *loop, int mem_fd,
                     struct errmsg *err)
{
    uint64_t t0 = vm->t_start_ns;
    struct vm_kvm k = vm->prepared;
    memset(vm, 0, sizeof(*vm));
    vm->prepared = k;
    vm->ahead.vcpu0_fd = -1;
    vm->created = 1;
    vm->loop = loop;
    vm->t_start_ns = t0 ? t0 : now_ns();
    vm->cfg = *cfg;
    vm->kvm_fd = vm->vm_fd = vm->stop_efd = vm->serial_out_fd = vm->uffd = vm->uffd_sock = -1;
    atomic_init(&vm->end, VM_END_NONE);
    gate_init(&vm->gate, &vm->end);
    dispatcher_init(&vm->dispatcher, &vm->alloc);
    vm->stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (vm->stop_efd < 0)
        return err_set(err, -errno, "eventfd: %s", strerror(errno));
    int rc = vm_setup_kvm(vm, err);
    if (!rc) {
        vm->pvm_host = hostcompat_is_pvm(vm->kvm_fd, NULL);
        if (vm->pvm_host)
            log_info("host KVM is kvm-pvm (software): %s",
                     hostcompat_active(cfg->host_compat, 1)
                         ? "adding guest kernel arguments for it (--host-compat off to disable)"
                         : "host-compat arguments disabled");
    }
    if (!rc)
        rc = vm_snapshot_prepare(vm, err);
    if (!rc)
        rc = vm_setup_memory(vm, mem_fd, err);
    if (!rc)
        rc = vm_setup_irqchip(vm, err);
    if (!rc)
        rc = vm_devices_realize(vm, err);
    return rc;
}

int vm_create_vcpus(struct vm *vm, int boot, struct errmsg *err)
{
    if (boot) {
        int rc = vcpu_apply_cpu_template(vm, err);
        if (rc)
            return rc;
    }
    vm->vcpus = calloc(vm->cfg.vcpus, sizeof(*vm->vcpus));
    if (!vm->vcpus)
        return err_set(err, -ENOMEM, "out of memory");
    for (unsigned i = 0; i < vm->cfg.vcpus; i++) {
        int rc = vcpu_create(vm, &vm->vcpus[i], (int)i, boot, err);
        vm->nr_vcpus = (int)i + 1;
        if (rc)
            return rc;
    }
    return 0;
}

int vm_create(struct vm *vm, const struct vm_config *cfg, struct event_loop *loop, struct errmsg *err)
{
    int rc = vm_build_machine(vm, cfg, loop, -1, err);
    if (!rc)
        rc = vm_setup_boot(vm, err);
    return rc ? rc : vm_create_vcpus(vm, 1, err);
}

static void kick_all(void *ctx)
{
    struct vm *vm = ctx;
    for (int i = 0; i < vm->nr_vcpus; i++)
        vcpu_kick(&vm->vcpus[i]);
}

int vm_start(struct vm *vm, struct errmsg *err)
{
    int rc = 0;
    gate_arm(&vm->gate, vm->nr_vcpus);
    if (vm->start_paused)
        gate_request_pause(&vm->gate);
    for (int i = 0; i < vm->nr_vcpus && !rc; i++)
        rc = vcpu_start_thread(&vm->vcpus[i], err);
    /*
     * This thread's filter goes on while the vCPU threads install theirs (it
     * needed clone until now). Each vCPU thread then waits until every
     * thread is filtered; the last one to get there says go.
     */
    if (!rc)
        rc = seccomp_install(THREAD_VMM, err);
    if (!rc)
        gate_vmm_ready(&vm->gate);
    if (!rc && vm_has_ended(vm))
        rc = err_set(err, -EPERM, "%s", vm->end_reason);
    if (rc) {
        vm_request_end(vm, VM_END_ERROR, "%s", err->text);
        vm_stop(vm);
        return rc;
    }
    vm->running = 1;
    if (seccomp_enabled())
        log_info("seccomp: every thread filtered before the guest's first instruction");
    else
        log_warn("seccomp filtering is OFF (--no-seccomp, or a sanitizer build): for debugging only");
    return 0;
}

void vm_stop(struct vm *vm)
{
    /* Wake paused vCPUs too: they re-check `end` and leave. */
    gate_release_all(&vm->gate);
    kick_all(vm);
    for (int i = 0; i < vm->nr_vcpus; i++) {
        if (vm->vcpus[i].thread_started) {
            pthread_join(vm->vcpus[i].thread, NULL);
            vm->vcpus[i].thread_started = 0;
        }
    }
    vm->running = 0;
}

int vm_pause(struct vm *vm)
{
    if (!vm->running)
        return -EINVAL;
    gate_pause(&vm->gate, kick_all, vm);
    return 0;
}

int vm_resume(struct vm *vm)
{
    if (!vm->running)
        return -EINVAL;
    gate_resume(&vm->gate);
    return 0;
}

int vm_is_paused(struct vm *vm) { return vm->created && gate_is_paused(&vm->gate); }

int vm_replace_drive(struct vm *vm, const char *id, const char *path, struct errmsg *err)
{
    void *drive = vm_device_find(vm, &vm_virtio_blk_device_ops, id);
    if (!drive)
        return err_set(err, -ENOENT, "no drive with id '%s'", id);
    return vm_virtio_blk_replace(drive, path, err);
}

int vm_update_drive_rate_limiter(struct vm *vm, const char *id, const struct rate_limiter_update *u, struct errmsg *err)
{
    void *drive = vm_device_find(vm, &vm_virtio_blk_device_ops, id);
    if (!drive)
        return err_set(err, -ENOENT, "no drive with id '%s'", id);
    vm_virtio_blk_update_rate_limiter(drive, u);
    return 0;
}

int vm_update_net_rate_limiters(struct vm *vm, const char *id, const struct rate_limiter_update *rx,
                                const struct rate_limiter_update *tx, struct errmsg *err)
{
    void *nic = vm_device_find(vm, &vm_virtio_net_device_ops, id);
    if (!nic)
        return err_set(err, -ENOENT, "no network interface with id '%s'", id);
    vm_virtio_net_update_rate_limiters(nic, rx, tx);
    return 0;
}

int vm_balloon_set_target(struct vm *vm, uint32_t amount_mib)
{
    struct virtio_balloon *b = vm_virtio_balloon(vm_device_find(vm, &vm_virtio_balloon_device_ops, NULL));
    if (!b)
        return -ENODEV;
    virtio_balloon_set_target(b, amount_mib);
    return 0;
}

int vm_balloon_set_stats_interval(struct vm *vm, uint32_t secs, struct errmsg *err)
{
    struct virtio_balloon *b = vm_virtio_balloon(vm_device_find(vm, &vm_virtio_balloon_device_ops, NULL));
    if (!b)
        return err_set(err, -ENODEV, "No balloon device found.");
    return virtio_balloon_set_stats_interval(b, secs, err);
}

int vm_balloon_stats(struct vm *vm, struct balloon_stats *out)
{
    struct virtio_balloon *b = vm_virtio_balloon(vm_device_find(vm, &vm_virtio_balloon_device_ops, NULL));
    if (!b)
        return -ENODEV;
    virtio_balloon_stats(b, out);
    return 0;
}

int vm_ctrl_alt_del(struct vm *vm)
{
    struct i8042 *k = vm_device_find(vm, &i8042_device_ops, NULL);
    return k ? i8042_send_ctrl_alt_del(k) : -ENODEV;
}

unsigned vm_console_input(struct vm *vm, const uint8_t *buf, unsigned len)
{
    struct serial *s = vm_device_find(vm, &serial_device_ops, NULL);
    return s ? serial_receive(s, buf, len) : len; /* no UART: the input goes nowhere */
}

void vm_metrics(struct vm *vm, struct vm_metrics *m)
{
    memset(m, 0, sizeof(*m));
    for (int i = 0; i < vm->nr_vcpus; i++)
        exit_stats_add(&m->vcpu, &vm->vcpus[i].stats);
    vm_devices_metrics(vm, m);
}

void vm_print_stats(struct vm *vm)
{
    if (!vm->cfg.print_stats)
        return;
    struct vm_metrics m;
    vm_metrics(vm, &m);
    char line[512];
    size_t pos = 0;
    for (int k = 0; k < EXIT_KINDS; k++)
        pos += (size_t)snprintf(line + pos, sizeof(line) - pos, "%s%s=%" PRIu64, k ? " " : "",
                                exit_kind_name((enum exit_kind)k), m.vcpu.exits[k]);
    fprintf(stderr, "ember: stats: exits: %s\n", line);
    pos = 0;
    for (int k = 0; k < INSN_KINDS; k++)
        pos += (size_t)snprintf(line + pos, sizeof(line) - pos, "%s%s=%" PRIu64, k ? " " : "",
                                interp_insn_name((enum interp_insn)k), m.vcpu.insns[k]);
    fprintf(stderr, "ember: stats: interpreted: %s\n", line);
    uint64_t first = atomic_load(&vm->t_first_run_ns);
    /* CLOCK_MONOTONIC as well: a benchmark on the same host times its own request to it. */
    fprintf(stderr,
            "ember: stats: start to first KVM_RUN: %.3f ms (CLOCK_MONOTONIC %.6f s); serial bytes out: %" PRIu64 "\n",
            first ? (double)(first - vm->t_start_ns) / 1e6 : -1.0, (double)first / 1e9, m.serial_tx_bytes);
}

void vm_destroy(struct vm *vm)
{
    if (vm->prepared.ready)
        kvm_objects_close(&vm->prepared); /* prepared, never started */
    if (!vm->created)
        return; /* never built: its zeroed fds are not ours to close */
    vm->created = 0;
    /* What a guest that stopped making progress was waiting for (debug level: with the queues' positions). */
    if (log_get_level() >= LOG_DEBUG && vm->vm_fd >= 0) {
        for (int i = 0; i < vm->nr_vcpus; i++)
            if (vm->vcpus[i].fd >= 0)
                vcpu_state_log_interrupts(vm->vcpus[i].fd, (uint32_t)i);
        vm_state_log_ioapic(vm->vm_fd, 0, 23);
    }
    for (int i = 0; i < vm->nr_vcpus; i++)
        vcpu_destroy(&vm->vcpus[i]);
    free(vm->vcpus);
    vm->vcpus = NULL;
    vm->nr_vcpus = 0;
    vm_ahead_release(&vm->ahead, vm->run_size);
    vm_devices_teardown(vm);
    vm_snapshot_release(vm);
    alloc_destroy(&vm->alloc);
    free(vm->cpuid);
    vm->cpuid = NULL;
    if (vm->vm_fd >= 0)
        close(vm->vm_fd);
    if (vm->kvm_fd >= 0)
        close(vm->kvm_fd);
    if (vm->stop_efd >= 0)
        close(vm->stop_efd);
    vm->vm_fd = vm->kvm_fd = vm->stop_efd = -1;
    dispatcher_destroy(&vm->dispatcher);
    gate_destroy(&vm->gate);
}
