#include "vm/vm_state.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#include "core/log.h"

#define VM_STATE_VERSION 1

static void put_blob(struct state_writer *w, const void *p, uint32_t n)
{
    state_put_u32(w, n);
    state_put_bytes(w, p, n);
}

int vm_state_encode(const struct vm_kvm_state *s, struct state_writer *w)
{
    size_t mark = state_begin(w, "vm", VM_STATE_VERSION);
    put_blob(w, &s->pic_master, sizeof(s->pic_master));
    put_blob(w, &s->pic_slave, sizeof(s->pic_slave));
    put_blob(w, &s->ioapic, sizeof(s->ioapic));
    put_blob(w, &s->pit, sizeof(s->pit));
    put_blob(w, &s->clock, sizeof(s->clock));
    return state_end(w, mark);
}

static int get_blob(struct state_reader *r, void *p, uint32_t n, const char *what, struct errmsg *err)
{
    uint32_t len = state_get_u32(r);
    if (r->err)
        return err_set(err, -EINVAL, "vm state: the image is truncated before its %s", what);
    if (len != n)
        return err_set(err, -EINVAL, "vm state: %s of %u bytes, this Ember's is %u bytes", what, len, n);
    state_get_bytes(r, p, n);
    return r->err ? err_set(err, -EINVAL, "vm state: the image is truncated in its %s", what) : 0;
}

int vm_state_decode(struct state_reader *r, struct vm_kvm_state *s, struct errmsg *err)
{
    memset(s, 0, sizeof(*s));
    struct state_reader b;
    uint32_t version;
    int rc = state_open(r, "vm", VM_STATE_VERSION, &version, &b, err);
    if (rc)
        return rc;
    if ((rc = get_blob(&b, &s->pic_master, sizeof(s->pic_master), "PIC master", err)) ||
        (rc = get_blob(&b, &s->pic_slave, sizeof(s->pic_slave), "PIC slave", err)) ||
        (rc = get_blob(&b, &s->ioapic, sizeof(s->ioapic), "IOAPIC", err)) ||
        (rc = get_blob(&b, &s->pit, sizeof(s->pit), "PIT", err)) ||
        (rc = get_blob(&b, &s->clock, sizeof(s->clock), "KVM clock", err)) || (rc = state_close(&b, "vm", err)))
        return rc;
    /* The chip ids steer KVM_SET_IRQCHIP: a swapped or garbled one would load a PIC into the IOAPIC. */
    if (s->pic_master.chip_id != KVM_IRQCHIP_PIC_MASTER || s->pic_slave.chip_id != KVM_IRQCHIP_PIC_SLAVE ||
        s->ioapic.chip_id != KVM_IRQCHIP_IOAPIC)
        return err_set(err, -EINVAL, "vm state: interrupt controller ids %u, %u, %u (expected %d, %d, %d)",
                       s->pic_master.chip_id, s->pic_slave.chip_id, s->ioapic.chip_id, KVM_IRQCHIP_PIC_MASTER,
                       KVM_IRQCHIP_PIC_SLAVE, KVM_IRQCHIP_IOAPIC);
    return 0;
}

static int vm_ioctl(int fd, unsigned long req, void *arg, const char *name, struct errmsg *err)
{
    if (ioctl(fd, req, arg) < 0) {
        int rc = -errno;
        return err_set(err, rc, "%s: %s", name, strerror(-rc));
    }
    return 0;
}

int vm_state_save(int vm_fd, struct vm_kvm_state *s, struct errmsg *err)
{
    memset(s, 0, sizeof(*s));
    s->pic_master.chip_id = KVM_IRQCHIP_PIC_MASTER;
    s->pic_slave.chip_id = KVM_IRQCHIP_PIC_SLAVE;
    s->ioapic.chip_id = KVM_IRQCHIP_IOAPIC;
    int rc;
    if ((rc = vm_ioctl(vm_fd, KVM_GET_IRQCHIP, &s->pic_master, "KVM_GET_IRQCHIP (PIC master)", err)) ||
        (rc = vm_ioctl(vm_fd, KVM_GET_IRQCHIP, &s->pic_slave, "KVM_GET_IRQCHIP (PIC slave)", err)) ||
        (rc = vm_ioctl(vm_fd, KVM_GET_IRQCHIP, &s->ioapic, "KVM_GET_IRQCHIP (IOAPIC)", err)) ||
        (rc = vm_ioctl(vm_fd, KVM_GET_PIT2, &s->pit, "KVM_GET_PIT2", err)) ||
        (rc = vm_ioctl(vm_fd, KVM_GET_CLOCK, &s->clock, "KVM_GET_CLOCK", err)))
        return rc;
    return 0;
}

struct kvm_clock_data vm_state_clock_to_set(const struct kvm_clock_data *saved, bool clock_realtime)
{
    /*
     * KVM_SET_CLOCK acts only on KVM_CLOCK_REALTIME (with `realtime`); the
     * other flags KVM_GET_CLOCK reports (TSC_STABLE, HOST_TSC) describe the
     * saving host, and kernels before 5.16 refuse any flag. Without REALTIME
     * the clock resumes at the saved value, as Firecracker does by default.
     */
    struct kvm_clock_data c = {.clock = saved->clock};
    if (clock_realtime && (saved->flags & KVM_CLOCK_REALTIME)) {
        c.flags = KVM_CLOCK_REALTIME;
        c.realtime = saved->realtime;
    }
    return c;
}

int vm_state_restore(int vm_fd, const struct vm_kvm_state *s, bool clock_realtime, struct errmsg *err)
{
    struct vm_kvm_state c = *s; /* KVM_SET_IRQCHIP takes a non-const argument */
    struct kvm_clock_data clock = vm_state_clock_to_set(&s->clock, clock_realtime);
    int rc;
    /* The PIT before the interrupt controllers it drives, the clock last, just before the vCPUs run. */
    if ((rc = vm_ioctl(vm_fd, KVM_SET_PIT2, &c.pit, "KVM_SET_PIT2", err)) ||
        (rc = vm_ioctl(vm_fd, KVM_SET_IRQCHIP, &c.pic_master, "KVM_SET_IRQCHIP (PIC master)", err)) ||
        (rc = vm_ioctl(vm_fd, KVM_SET_IRQCHIP, &c.pic_slave, "KVM_SET_IRQCHIP (PIC slave)", err)) ||
        (rc = vm_ioctl(vm_fd, KVM_SET_IRQCHIP, &c.ioapic, "KVM_SET_IRQCHIP (IOAPIC)", err)) ||
        (rc = vm_ioctl(vm_fd, KVM_SET_CLOCK, &clock, "KVM_SET_CLOCK", err)))
        return rc;
    return 0;
}

void vm_state_log_ioapic(int vm_fd, uint32_t first_pin, uint32_t last_pin)
{
    struct kvm_irqchip chip = {.chip_id = KVM_IRQCHIP_IOAPIC};
    if (ioctl(vm_fd, KVM_GET_IRQCHIP, &chip) < 0) {
        log_debug("IOAPIC: cannot be read: %s", strerror(errno));
        return;
    }
    const struct kvm_ioapic_state *io = &chip.chip.ioapic;
    for (uint32_t pin = first_pin; pin <= last_pin && pin < KVM_IOAPIC_NUM_PINS; pin++) {
        uint64_t e = io->redirtbl[pin].bits;
        if (((e >> 16) & 1) && !((e >> 14) & 1) && !((io->irr >> pin) & 1))
            continue; /* masked and idle: not in use */
        log_debug("IOAPIC pin %u: vector %#llx, to APIC %llu, %s, %s%s%s", pin, (unsigned long long)(e & 0xff),
                  (unsigned long long)(e >> 56), (e >> 15) & 1 ? "level" : "edge",
                  (e >> 16) & 1 ? "masked" : "unmasked", (e >> 14) & 1 ? ", remote IRR" : "",
                  (io->irr >> pin) & 1 ? ", line high" : "");
    }
}
