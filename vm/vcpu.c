#include "vm/vcpu.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <stdio.h>
#include <unistd.h>

#include "x86/cpu_boot.h"
#include "x86/cpu_template.h"
#include "vm/dispatch.h"
#include "core/log.h"
#include "vm/seccomp.h"
#include "vm/vm_internal.h"

#define MSR_IA32_TSC 0x10
#define MSR_IA32_SYSENTER_CS 0x174
#define MSR_IA32_SYSENTER_ESP 0x175
#define MSR_IA32_SYSENTER_EIP 0x176
#define MSR_IA32_MISC_ENABLE 0x1a0
#define MSR_MTRR_DEF_TYPE 0x2ff
#define MSR_STAR 0xc0000081
#define MSR_LSTAR 0xc0000082
#define MSR_CSTAR 0xc0000083
#define MSR_SYSCALL_MASK 0xc0000084
#define MSR_KERNEL_GS_BASE 0xc0000102

#define APIC_LVT_LINT0 0x350
#define APIC_LVT_LINT1 0x360
#define APIC_MODE_NMI 0x4
#define APIC_MODE_EXTINT 0x7

static int setup_cpuid(struct vm *vm, struct vcpu *v, struct errmsg *err)
{
    struct kvm_cpuid2 *src = vm->cpuid;
    size_t sz = sizeof(*src) + src->nent * sizeof(src->entries[0]);
    struct kvm_cpuid2 *c = malloc(sz);
    if (!c)
        return err_set(err, -ENOMEM, "out of memory");
    memcpy(c, src, sz);
    for (uint32_t i = 0; i < c->nent; i++) {
        struct kvm_cpuid_entry2 *e = &c->entries[i];
        switch (e->function) {
        case 1:
            /* Initial APIC ID, and "running under a hypervisor". */
            e->ebx = (e->ebx & 0x00ffffff) | ((uint32_t)v->id << 24);
            e->ecx |= 1u << 31;
            break;
        case 0xb:
        case 0x1f:
            e->edx = (uint32_t)v->id; /* x2APIC ID */
            break;
        }
    }
    int rc = ioctl(v->fd, KVM_SET_CPUID2, c) < 0 ? -errno : 0;
    free(c);
    if (rc)
        return err_set(err, rc, "vCPU %d: KVM_SET_CPUID2: %s", v->id, strerror(-rc));
    return 0;
}

/*
 * XCR0 starts with every user state component the guest's CPUID leaf 0xD
 * lists (x87, SSE, AVX, AVX-512, PKRU) instead of the architectural x87-only
 * reset value. A guest OS writes XCR0 before it uses XSAVE, so on hardware
 * KVM (which intercepts XSETBV) this changes nothing a guest can rely on.
 * It matters where XSETBV is not intercepted, as under QEMU's TCG emulating
 * SVM (the emulated test host, docs/testing.md): there KVM never sees the
 * guest's XSETBV and loads its own XCR0 on every VM entry, so with x87 only
 * the guest would lose its SSE/AVX state across context switches and its
 * CPUID 0xD sizes would not match the features it enabled.
 */
#define XCR0_USER_STATE 0x2e7ULL /* x87 | SSE | AVX | opmask | ZMM_Hi256 | Hi16_ZMM | PKRU */
static void setup_xcr0(struct vm *vm, struct vcpu *v)
{
    const struct kvm_cpuid2 *c = vm->cpuid;
    uint64_t mask = 0;
    int has_xsave = 0;
    for (uint32_t i = 0; i < c->nent; i++) {
        const struct kvm_cpuid_entry2 *e = &c->entries[i];
        if (e->function == 1)
            has_xsave = (e->ecx >> 26) & 1;
        else if (e->function == 0xd && e->index == 0)
            mask = ((uint64_t)e->edx << 32 | e->eax) & XCR0_USER_STATE;
    }
    /* AVX-512's three components go together, and need AVX. */
    if ((mask & 0xe0) != 0xe0 || !(mask & 4))
        mask &= ~0xe0ULL;
    if (!has_xsave || (mask & 3) != 3)
        return;
    struct kvm_xcrs x = {.nr_xcrs = 1};
    x.xcrs[0].xcr = 0;
    x.xcrs[0].value = mask;
    if (ioctl(v->fd, KVM_SET_XCRS, &x) < 0)
        log_warn("vCPU %d: KVM_SET_XCRS %#llx: %s (XCR0 stays x87-only until the guest sets it)", v->id,
                 (unsigned long long)mask, strerror(errno));
}

static int setup_msrs(struct vcpu *v, struct errmsg *err)
{
    static const struct {
        uint32_t index;
        uint64_t data;
    } init[] = {
        {MSR_IA32_SYSENTER_CS, 0},
        {MSR_IA32_SYSENTER_ESP, 0},
        {MSR_IA32_SYSENTER_EIP, 0},
        {MSR_STAR, 0},
        {MSR_LSTAR, 0},
        {MSR_CSTAR, 0},
        {MSR_SYSCALL_MASK, 0},
        {MSR_KERNEL_GS_BASE, 0},
        {MSR_IA32_TSC, 0},
        {MSR_IA32_MISC_ENABLE, 1},           /* fast string operations */
        {MSR_MTRR_DEF_TYPE, (1u << 11) | 6}, /* MTRRs on, default write-back */
    };
    enum { N = sizeof(init) / sizeof(init[0]) };
    struct {
        struct kvm_msrs hdr;
        struct kvm_msr_entry e[N];
    } m;
    memset(&m, 0, sizeof(m));
    m.hdr.nmsrs = N;
    for (int i = 0; i < N; i++) {
        m.e[i].index = init[i].index;
        m.e[i].data = init[i].data;
    }
    int n = ioctl(v->fd, KVM_SET_MSRS, &m);
    if (n < 0)
        return err_set(err, -errno, "vCPU %d: KVM_SET_MSRS: %s", v->id, strerror(errno));
    if (n < N)
        log_debug("vCPU %d: KVM accepted %d of %d boot MSRs (MSR %#x refused)", v->id, n, N, init[n].index);
    return 0;
}

int vcpu_apply_cpu_template(struct vm *vm, struct errmsg *err)
{
    const struct cpu_template *t = vm_config_cpu_template(&vm->cfg);
    if (!t)
        return 0;
    for (size_t i = 0; i < t->n_caps; i++)
        if (!t->caps[i].remove && ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, (unsigned long)t->caps[i].cap) <= 0)
            return err_set(err, -ENOTSUP, "CPU template %s: this host's KVM lacks capability %u (kvm_capabilities).",
                           t->name, t->caps[i].cap);
    /* Ember checks no capability list of its own, so a "!N" (remove N from the checks) changes nothing. */
    int rc = cpu_template_apply_cpuid(t, vm->cpuid, err);
    if (rc)
        return rc;
    log_info("CPU template %s: %zu CPUID and %zu MSR modifiers applied", t->name, t->n_cpuid, t->n_msrs);
    return 0;
}

/* The template's MSR modifiers over the values KVM gives this vCPU (its defaults and setup_msrs'). */
static int setup_template_msrs(struct vm *vm, struct vcpu *v, struct errmsg *err)
{
    const struct cpu_template *t = vm_config_cpu_template(&vm->cfg);
    for (size_t i = 0; t && i < t->n_msrs; i++) {
        const struct msr_modifier *m = &t->msrs[i];
        struct {
            struct kvm_msrs hdr;
            struct kvm_msr_entry e;
        } one;
        memset(&one, 0, sizeof(one));
        one.hdr.nmsrs = 1;
        one.e.index = m->addr;
        int n = ioctl(v->fd, KVM_GET_MSRS, &one);
        if (n != 1)
            return err_set(err, n < 0 ? -errno : -ENOTSUP,
                           "CPU template %s changes MSR %#x, which this host's KVM does not support%s%s.", t->name,
                           m->addr, n < 0 ? ": " : "", n < 0 ? strerror(errno) : "");
        uint64_t old = one.e.data;
        one.e.data = msr_modifier_apply(m, old);
        n = ioctl(v->fd, KVM_SET_MSRS, &one);
        if (n != 1)
            return err_set(err, n < 0 ? -errno : -ENOTSUP,
                           "CPU template %s: KVM refused the value %#llx for MSR %#x (it is not settable to that on "
                           "this host).",
                           t->name, (unsigned long long)one.e.data, m->addr);
        if (v->id == 0)
            log_info("CPU template %s: MSR %#x %#llx -> %#llx", t->name, m->addr, (unsigned long long)old,
                     (unsigned long long)one.e.data);
    }
    return 0;
}

static int setup_fpu_lapic(struct vcpu *v, struct errmsg *err)
{
    struct kvm_fpu fpu;
    memset(&fpu, 0, sizeof(fpu));
    fpu.fcw = 0x37f;    /* x87 default control word */
    fpu.mxcsr = 0x1f80; /* SSE exceptions masked */
    if (ioctl(v->fd, KVM_SET_FPU, &fpu) < 0)
        return err_set(err, -errno, "vCPU %d: KVM_SET_FPU: %s", v->id, strerror(errno));

    struct kvm_lapic_state lapic;
    if (ioctl(v->fd, KVM_GET_LAPIC, &lapic) < 0)
        return err_set(err, -errno, "vCPU %d: KVM_GET_LAPIC: %s", v->id, strerror(errno));
    /* LINT0 takes the PIC (ExtINT), LINT1 takes NMI: the PC wiring the MP table describes. */
    uint32_t lint0, lint1;
    memcpy(&lint0, lapic.regs + APIC_LVT_LINT0, 4);
    memcpy(&lint1, lapic.regs + APIC_LVT_LINT1, 4);
    lint0 = (lint0 & ~0x700u) | (APIC_MODE_EXTINT << 8);
    lint1 = (lint1 & ~0x700u) | (APIC_MODE_NMI << 8);
    memcpy(lapic.regs + APIC_LVT_LINT0, &lint0, 4);
    memcpy(lapic.regs + APIC_LVT_LINT1, &lint1, 4);
    if (ioctl(v->fd, KVM_SET_LAPIC, &lapic) < 0)
        return err_set(err, -errno, "vCPU %d: KVM_SET_LAPIC: %s", v->id, strerror(errno));
    return 0;
}

static int setup_boot_regs(struct vm *vm, struct vcpu *v, struct errmsg *err)
{
    struct kvm_sregs sregs;
    struct kvm_regs regs;
    if (ioctl(v->fd, KVM_GET_SREGS, &sregs) < 0)
        return err_set(err, -errno, "KVM_GET_SREGS: %s", strerror(errno));
    boot_sregs(&vm->kernel, &sregs);
    if (ioctl(v->fd, KVM_SET_SREGS, &sregs) < 0)
        return err_set(err, -errno, "KVM_SET_SREGS: %s", strerror(errno));
    boot_regs(&vm->kernel, &regs);
    if (ioctl(v->fd, KVM_SET_REGS, &regs) < 0)
        return err_set(err, -errno, "KVM_SET_REGS: %s", strerror(errno));
    return 0;
}

int vcpu_create(struct vm *vm, struct vcpu *v, int id, int boot, struct errmsg *err)
{
    memset(v, 0, sizeof(*v));
    v->vm = vm;
    v->id = id;
    v->run = MAP_FAILED;
    if (id == 0 && vm->ahead.vcpu0_fd >= 0) { /* made by vm_prepare */
        v->fd = vm->ahead.vcpu0_fd;
        v->run = vm->ahead.vcpu0_run;
        vm->ahead.vcpu0_fd = -1;
        vm->ahead.vcpu0_run = NULL;
    } else {
        v->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)id);
        if (v->fd < 0)
            return err_set(err, -errno, "cannot create vCPU %d: %s", id, strerror(errno));
        v->run = mmap(NULL, (size_t)vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
        if (v->run == MAP_FAILED)
            return err_set(err, -errno, "cannot map vCPU %d run area: %s", id, strerror(errno));
    }
    if (!boot)
        return 0; /* a snapshot's state replaces all of what follows */
    int rc = setup_cpuid(vm, v, err);
    if (!rc)
        setup_xcr0(vm, v);
    if (!rc)
        rc = setup_msrs(v, err);
    if (!rc)
        rc = setup_template_msrs(vm, v, err);
    if (!rc)
        rc = setup_fpu_lapic(v, err);
    /* Only the BSP starts at the kernel entry; APs wait for INIT/SIPI from the guest. */
    if (!rc && id == 0)
        rc = setup_boot_regs(vm, v, err);
    return rc;
}

static void name_thread(int id)
{
    char name[16];
    /* Firecracker's name: Kata Containers finds the vCPU threads by it to place them in cgroups. */
    snprintf(name, sizeof(name), "fc_vcpu %d", id);
    prctl(PR_SET_NAME, name);
}

/* A vCPU thread's life once its seccomp filter is on (filter_rc: how installing it went). */
static void *vcpu_loop(struct vcpu *v, int filter_rc, const struct errmsg *filter_err)
{
    struct vm *vm = v->vm;
    if (filter_rc) {
        vm_request_end(vm, VM_END_ERROR, "vCPU %d: %s", v->id, filter_err->text);
        gate_vcpu_ready(&vm->gate);
        return NULL;
    }
    if (gate_vcpu_ready(&vm->gate))
        return NULL;
    gate_park_if_paused(&vm->gate); /* started paused (a snapshot loaded without resume_vm) */
    if (v->id == 0) {
        uint64_t expected = 0;
        atomic_compare_exchange_strong(&vm->t_first_run_ns, &expected, now_ns());
    }
    while (atomic_load(&vm->end) == VM_END_NONE) {
        if (ioctl(v->fd, KVM_RUN, 0) < 0) {
            if (errno == EINTR || errno == EAGAIN) {
                /* EINTR: kicked (end or pause). EAGAIN: an AP left wait-for-SIPI. */
                v->stats.exits[EXIT_INTR]++;
                gate_park_if_paused(&vm->gate);
                v->run->immediate_exit = atomic_load(&vm->end) != VM_END_NONE;
                continue;
            }
            vm_request_end(vm, VM_END_ERROR, "vCPU %d: KVM_RUN failed: %s", v->id, strerror(errno));
            break;
        }
        if (dispatch_exit(&vm->dispatcher, v) == DISPATCH_STOP)
            break;
    }
    return NULL;
}

static void *vcpu_thread(void *arg)
{
    struct vcpu *v = arg;
    name_thread(v->id);
    struct errmsg err;
    /* Filtered before the guest runs a single instruction. */
    int rc = seccomp_install(THREAD_VCPU, &err);
    return vcpu_loop(v, rc, &err);
}

/*
 * A vCPU thread started before its VM exists (vm_prepare): creating a thread
 * and loading its filter are ~2 ms of a snapshot load in the emulated host.
 */
struct vcpu_standby {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct vcpu *v; /* handed over: the thread runs it */
    int cancel;     /* never handed over: the thread leaves */
    int filter_rc;
    struct errmsg filter_err;
};

static void *standby_thread(void *arg)
{
    struct vcpu_standby *s = arg;
    name_thread(0);
    s->filter_rc = seccomp_install(THREAD_VCPU, &s->filter_err);
    pthread_mutex_lock(&s->lock);
    while (!s->v && !s->cancel)
        pthread_cond_wait(&s->cond, &s->lock);
    struct vcpu *v = s->v;
    pthread_mutex_unlock(&s->lock);
    return v ? vcpu_loop(v, s->filter_rc, &s->filter_err) : NULL;
}

int vcpu_standby_start(struct vcpu_standby **out, struct errmsg *err)
{
    struct vcpu_standby *s = calloc(1, sizeof(*s));
    if (!s)
        return err_set(err, -ENOMEM, "out of memory");
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    int rc = pthread_create(&s->thread, NULL, standby_thread, s);
    if (rc) {
        pthread_cond_destroy(&s->cond);
        pthread_mutex_destroy(&s->lock);
        free(s);
        return err_set(err, -rc, "cannot start a vCPU thread ahead: %s", strerror(rc));
    }
    *out = s;
    return 0;
}

void vcpu_standby_free(struct vcpu_standby *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    int handed = s->v != NULL;
    s->cancel = 1;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->lock);
    if (!handed) /* else it is its vCPU's thread, joined by vm_stop */
        pthread_join(s->thread, NULL);
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

int vcpu_start_thread(struct vcpu *v, struct errmsg *err)
{
    struct vcpu_standby *s = v->vm->ahead.standby;
    if (v->id == 0 && s && !s->v) {
        v->thread = s->thread;
        v->thread_started = 1;
        pthread_mutex_lock(&s->lock);
        s->v = v;
        pthread_cond_signal(&s->cond);
        pthread_mutex_unlock(&s->lock);
        return 0;
    }
    int rc = pthread_create(&v->thread, NULL, vcpu_thread, v);
    if (rc)
        return err_set(err, -rc, "cannot start vCPU %d thread: %s", v->id, strerror(rc));
    v->thread_started = 1;
    return 0;
}

void vcpu_kick(struct vcpu *v)
{
    if (v->run != MAP_FAILED)
        v->run->immediate_exit = 1; /* covers a kick that lands just before KVM_RUN */
    if (v->thread_started)
        pthread_kill(v->thread, VCPU_KICK_SIGNAL);
}

void vcpu_destroy(struct vcpu *v)
{
    if (v->run && v->run != MAP_FAILED)
        munmap(v->run, (size_t)v->vm->run_size);
    if (v->fd >= 0)
        close(v->fd);
    v->fd = -1;
    v->run = MAP_FAILED;
}
