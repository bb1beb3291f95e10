#include "vm/dispatch.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#include "interp/interp.h"
#include "core/log.h"
#include "vm/vm_internal.h"

static uint64_t vcpu_rip(const struct vcpu *v)
{
    struct kvm_regs r;
    return ioctl(v->fd, KVM_GET_REGS, &r) == 0 ? r.rip : 0;
}

static uint64_t bytes_value(const uint8_t *d, uint32_t len)
{
    uint64_t v = 0;
    for (uint32_t i = 0; i < len && i < 8; i++)
        v |= (uint64_t)d[i] << (8 * i);
    return v;
}

/* Reports the first access to each unclaimed address, up to a limit, then only counts. */
static void report_unclaimed(struct dispatcher *d, struct vcpu *v, const char *space, uint64_t addr, uint32_t len,
                             int is_write, const uint8_t *data)
{
    uint64_t key = addr | (space[0] == 'M' ? 1ULL << 63 : 0);
    pthread_mutex_lock(&d->report_lock);
    int seen = 0;
    for (unsigned i = 0; i < d->nr_reported; i++)
        seen |= d->reported[i] == key;
    int report = !seen && d->nr_reported < UNCLAIMED_REPORT_LIMIT;
    if (report)
        d->reported[d->nr_reported++] = key;
    unsigned nr_reported = d->nr_reported;
    pthread_mutex_unlock(&d->report_lock);
    if (!report)
        return;
    char val[32] = "";
    if (is_write)
        snprintf(val, sizeof(val), " value %#" PRIx64, bytes_value(data, len));
    log_warn("unclaimed %s %s at %#" PRIx64 " (%u byte%s%s) from vCPU %d RIP %#" PRIx64 ": no device owns it; %s%s",
             space, is_write ? "write" : "read", addr, len, len == 1 ? "" : "s", val, v->id, vcpu_rip(v),
             is_write ? "dropped" : "reads as all-ones",
             nr_reported == UNCLAIMED_REPORT_LIMIT ? " (further new addresses only counted, see --stats)" : "");
}

static enum dispatch_result handle_pio(struct dispatcher *d, struct vcpu *v)
{
    struct kvm_run *run = v->run;
    uint32_t size = run->io.size;
    int is_write = run->io.direction == KVM_EXIT_IO_OUT;
    uint8_t *data = (uint8_t *)run + run->io.data_offset;
    /* The data area lies inside the shared run page; KVM sized it, but check anyway. */
    if (size == 0 || size > 4 || run->io.data_offset + (uint64_t)size * run->io.count > (uint64_t)v->vm->run_size) {
        vm_request_end(v->vm, VM_END_CRASH, "vCPU %d: malformed PIO exit (size %u, count %u)", v->id, size,
                       run->io.count);
        return DISPATCH_STOP;
    }
    const struct alloc_entry *e = alloc_find_pio(d->alloc, run->io.port, size);
    if (e && !e->ops)
        e = NULL; /* reserved for KVM's own devices: an exit there is unclaimed */
    for (uint32_t i = 0; i < run->io.count; i++, data += size) {
        if (!e) {
            v->stats.exits[EXIT_UNCLAIMED_PIO]++;
            if (i == 0)
                report_unclaimed(d, v, "PIO", run->io.port, size, is_write, data);
            if (!is_write)
                memset(data, 0xff, size);
        } else if (is_write) {
            e->ops->write(e->opaque, run->io.port - e->base, data, size);
        } else {
            e->ops->read(e->opaque, run->io.port - e->base, data, size);
        }
    }
    return DISPATCH_CONTINUE;
}

static enum dispatch_result handle_mmio(struct dispatcher *d, struct vcpu *v)
{
    struct kvm_run *run = v->run;
    uint32_t len = run->mmio.len;
    if (len == 0 || len > 8) {
        vm_request_end(v->vm, VM_END_CRASH, "vCPU %d: malformed MMIO exit (len %u)", v->id, len);
        return DISPATCH_STOP;
    }
    const struct alloc_entry *e = alloc_find_mmio(d->alloc, run->mmio.phys_addr, len);
    if (e && !e->ops)
        e = NULL;
    if (!e) {
        v->stats.exits[EXIT_UNCLAIMED_MMIO]++;
        report_unclaimed(d, v, "MMIO", run->mmio.phys_addr, len, run->mmio.is_write, run->mmio.data);
        if (!run->mmio.is_write)
            memset(run->mmio.data, 0xff, len);
    } else if (run->mmio.is_write) {
        e->ops->write(e->opaque, run->mmio.phys_addr - e->base, run->mmio.data, len);
    } else {
        e->ops->read(e->opaque, run->mmio.phys_addr - e->base, run->mmio.data, len);
    }
    return DISPATCH_CONTINUE;
}

static enum dispatch_result handle_internal_error(struct vcpu *v)
{
    struct kvm_run *run = v->run;
    if (run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION) {
        struct errmsg err;
        struct interp_vcpu iv = {.fd = v->fd,
                                 .id = v->id,
                                 .run = v->run,
                                 .mem = &v->vm->alloc.mem,
                                 .insn_counts = v->stats.insns};
        if (interp_emulation_failure(&iv, &err) == 0)
            return DISPATCH_CONTINUE;
        vm_request_end(v->vm, VM_END_CRASH, "%s", err.text);
        return DISPATCH_STOP;
    }
    char data[160] = "";
    size_t pos = 0;
    for (uint32_t i = 0; i < run->internal.ndata && i < 4 && pos < sizeof(data); i++)
        pos += (size_t)snprintf(data + pos, sizeof(data) - pos, " %#llx", (unsigned long long)run->internal.data[i]);
    vm_request_end(v->vm, VM_END_CRASH, "vCPU %d: KVM internal error, suberror %u at RIP %#" PRIx64 " (data:%s)", v->id,
                   run->internal.suberror, vcpu_rip(v), data);
    return DISPATCH_STOP;
}

static enum dispatch_result handle_system_event(struct vcpu *v)
{
    switch (v->run->system_event.type) {
    case KVM_SYSTEM_EVENT_SHUTDOWN: vm_request_end(v->vm, VM_END_SHUTDOWN, "guest powered off"); break;
    case KVM_SYSTEM_EVENT_RESET: vm_request_end(v->vm, VM_END_RESET, "guest reset"); break;
    default:
        vm_request_end(v->vm, VM_END_CRASH, "vCPU %d: guest system event %u (crash)", v->id, v->run->system_event.type);
        break;
    }
    return DISPATCH_STOP;
}

static const char *exit_reason_name(uint32_t r)
{
    switch (r) {
    case KVM_EXIT_UNKNOWN: return "UNKNOWN";
    case KVM_EXIT_EXCEPTION: return "EXCEPTION";
    case KVM_EXIT_DEBUG: return "DEBUG";
    case KVM_EXIT_IRQ_WINDOW_OPEN: return "IRQ_WINDOW_OPEN";
    case KVM_EXIT_FAIL_ENTRY: return "FAIL_ENTRY";
    case KVM_EXIT_SET_TPR: return "SET_TPR";
    case KVM_EXIT_TPR_ACCESS: return "TPR_ACCESS";
    case KVM_EXIT_NMI: return "NMI";
    case KVM_EXIT_X86_RDMSR: return "X86_RDMSR";
    case KVM_EXIT_X86_WRMSR: return "X86_WRMSR";
    default: return "?";
    }
}

void dispatcher_init(struct dispatcher *d, const struct allocator *alloc)
{
    d->alloc = alloc;
    pthread_mutex_init(&d->report_lock, NULL);
    d->nr_reported = 0;
}

void dispatcher_destroy(struct dispatcher *d) { pthread_mutex_destroy(&d->report_lock); }

enum dispatch_result dispatch_exit(struct dispatcher *d, struct vcpu *v)
{
    struct kvm_run *run = v->run;
    switch (run->exit_reason) {
    case KVM_EXIT_IO: v->stats.exits[EXIT_PIO]++; return handle_pio(d, v);
    case KVM_EXIT_MMIO: v->stats.exits[EXIT_MMIO]++; return handle_mmio(d, v);
    case KVM_EXIT_HLT:
        /* Only reaches us without an in-kernel LAPIC: nothing can wake the CPU. */
        v->stats.exits[EXIT_HLT]++;
        vm_request_end(v->vm, VM_END_SHUTDOWN, "vCPU %d halted", v->id);
        return DISPATCH_STOP;
    case KVM_EXIT_SHUTDOWN:
        v->stats.exits[EXIT_SHUTDOWN]++;
        vm_request_end(v->vm, VM_END_CRASH, "vCPU %d: guest triple fault (CPU shutdown) at RIP %#" PRIx64, v->id,
                       vcpu_rip(v));
        return DISPATCH_STOP;
    case KVM_EXIT_INTERNAL_ERROR: v->stats.exits[EXIT_INTERNAL]++; return handle_internal_error(v);
    case KVM_EXIT_SYSTEM_EVENT: v->stats.exits[EXIT_SYSTEM_EVENT]++; return handle_system_event(v);
    case KVM_EXIT_INTR: v->stats.exits[EXIT_INTR]++; return DISPATCH_CONTINUE;
    case KVM_EXIT_FAIL_ENTRY:
        v->stats.exits[EXIT_OTHER]++;
        vm_request_end(v->vm, VM_END_CRASH,
                       "vCPU %d: KVM could not enter the guest (hardware entry failure reason %#llx) at RIP %#" PRIx64,
                       v->id, (unsigned long long)run->fail_entry.hardware_entry_failure_reason, vcpu_rip(v));
        return DISPATCH_STOP;
    default:
        v->stats.exits[EXIT_OTHER]++;
        vm_request_end(v->vm, VM_END_CRASH, "vCPU %d: unhandled KVM exit %u (%s) at RIP %#" PRIx64, v->id,
                       run->exit_reason, exit_reason_name(run->exit_reason), vcpu_rip(v));
        return DISPATCH_STOP;
    }
}
