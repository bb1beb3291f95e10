/* What a VM is made of, however it was described (CLI now; API/config file later). */
#ifndef EMBER_CONFIG_H
#define EMBER_CONFIG_H

#include <stdint.h>

#include "devices/virtio/blk.h"
#include "devices/virtio/net.h"

enum host_compat_mode { HOST_COMPAT_AUTO, HOST_COMPAT_ON, HOST_COMPAT_OFF };
/* Who decompresses a bzImage: auto = Ember on kvm-pvm hosts (minutes of emulated
 * guest code saved), the guest elsewhere (its decompressor also does KASLR). */
enum kernel_decompress_mode { KDECOMP_AUTO, KDECOMP_HOST, KDECOMP_GUEST };

/* One UART, and an i8042 with a keyboard port only: what the platform has. */
#define EMBER_DEFAULT_CMDLINE "console=ttyS0 reboot=k panic=1 8250.nr_uarts=1 i8042.noaux i8042.nomux"
#define EMBER_MAX_VCPUS 32
#define EMBER_MAX_DRIVES 8
#define EMBER_MAX_NETS 4

struct vm_config {
    const char *kernel_path;
    const char *initrd_path;
    const char *cmdline;       /* NULL: EMBER_DEFAULT_CMDLINE */
    unsigned vcpus;
    uint64_t mem_mib;
    enum host_compat_mode host_compat;
    int use_pvh;               /* take the PVH entry when the ELF has one */
    enum kernel_decompress_mode decompress;
    int print_stats;           /* exit counters on stderr at the end */
    const char *serial_out_path; /* NULL: the console goes to stdout */
    struct blk_config drives[EMBER_MAX_DRIVES];
    unsigned nr_drives;
    struct net_config nets[EMBER_MAX_NETS];
    unsigned nr_nets;
};

void vm_config_defaults(struct vm_config *c);
/* Device ids: [A-Za-z0-9_]{1,64}, as Firecracker's API requires. */
int vm_config_valid_id(const char *id);

#endif
