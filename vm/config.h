/*
 * What a VM is made of, however it was described (command line, config file,
 * API): the one description the controller keeps and vm_create builds from,
 * with its defaults and limits.
 */
#ifndef EMBER_CONFIG_H
#define EMBER_CONFIG_H

#include <stdint.h>

#include "devices/virtio/balloon.h"
#include "devices/virtio/blk.h"
#include "devices/virtio/net.h"
#include "devices/virtio/rng.h"
#include "devices/virtio/vsock.h"
#include "x86/cpu_template.h"

enum host_compat_mode { HOST_COMPAT_AUTO, HOST_COMPAT_ON, HOST_COMPAT_OFF };
/* Who decompresses a bzImage: auto = Ember on kvm-pvm hosts (minutes of emulated
 * guest code saved), the guest elsewhere (its decompressor also does KASLR). */
enum kernel_decompress_mode { KDECOMP_AUTO, KDECOMP_HOST, KDECOMP_GUEST };

/* One UART, and an i8042 with a keyboard port only: what the platform has. */
#define EMBER_DEFAULT_CMDLINE "console=ttyS0 reboot=k panic=1 8250.nr_uarts=1 i8042.noaux i8042.nomux"
/* Plain numbers: the usage text quotes them (EMBER_STR). */
#define EMBER_DEFAULT_VCPUS 1
#define EMBER_DEFAULT_MEM_MIB 128
#define EMBER_MAX_VCPUS 32
/* 1 TiB: far above any microVM, far below address-space trouble. */
#define EMBER_MAX_MEM_MIB 1048576
#define EMBER_MAX_DRIVES 16 /* Kata Containers configures 9 before boot (its root + a pool of 8 for hot-plug) */
#define EMBER_MAX_NETS 4
/* The largest MMDS data store --mmds-size-limit allows (1 GiB). */
#define EMBER_MAX_MMDS_SIZE_LIMIT 1073741824
#define EMBER_STR_(x) #x
#define EMBER_STR(x) EMBER_STR_(x)

/*
 * Every string is owned by the config (vm_config_set_str copies it) and freed
 * by vm_config_release; a struct copy shares them (vm_create keeps one, so the
 * owner must outlive the VM).
 */
struct vm_config {
    const char *kernel_path; /* NULL: no boot source yet */
    const char *initrd_path;
    const char *cmdline; /* NULL: EMBER_DEFAULT_CMDLINE */
    unsigned vcpus;
    uint64_t mem_mib;
    enum host_compat_mode host_compat;
    int use_pvh; /* take the PVH entry when the ELF has one */
    enum kernel_decompress_mode decompress;
    int track_dirty_pages;       /* KVM dirty log on the RAM slots (Diff snapshots) */
    int print_stats;             /* exit counters on stderr at the end */
    const char *serial_out_path; /* NULL: the console goes to stdout */
    struct blk_config drives[EMBER_MAX_DRIVES];
    unsigned nr_drives;
    struct net_config nets[EMBER_MAX_NETS];
    unsigned nr_nets;
    int has_entropy; /* PUT /entropy: a virtio-rng device */
    struct rng_config entropy;
    struct vsock_config vsock; /* uds_path NULL: no vsock device */
    int has_balloon;           /* PUT /balloon: a virtio-balloon device */
    struct balloon_config balloon;
    uint64_t mmds_size_limit; /* --mmds-size-limit; 0: MMDS_DEFAULT_SIZE_LIMIT */
    /* machine-config cpu_template, or CPU_TEMPLATE_CUSTOM: PUT /cpu-config's, cpu_config (owned, kept when a
     * static template replaces it, so that a shallow copy of the config stays valid). The last one set wins. */
    enum cpu_template_id cpu_template;
    struct cpu_template *cpu_config;
};

/* The defaults, no strings (c's previous strings are not freed: see vm_config_release). */
void vm_config_defaults(struct vm_config *c);
/* Frees every string c owns and puts the defaults back. */
void vm_config_release(struct vm_config *c);
/* *slot = a copy of s (NULL clears it), freeing the previous one; 0 or -ENOMEM (then *slot is unchanged). */
int vm_config_set_str(const char **slot, const char *s);
/* Device ids: [A-Za-z0-9_]{1,64}, as Firecracker's API requires. */
int vm_config_valid_id(const char *id);
/* Exactly "xx:xx:xx:xx:xx:xx" in hex digits, either case; 0 or -EINVAL (multicast is the caller's call). */
int vm_config_parse_mac(const char *text, uint8_t mac[6]);
/* The CPU template the VM's vCPUs get (custom or static), NULL when none. */
const struct cpu_template *vm_config_cpu_template(const struct vm_config *c);

#endif
