#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

void vm_config_defaults(struct vm_config *c)
{
    memset(c, 0, sizeof(*c));
    c->vcpus = 1;
    c->mem_mib = 128;
    c->host_compat = HOST_COMPAT_AUTO;
    c->use_pvh = 1;
}

void cli_usage(FILE *out)
{
    fputs("usage: ember --kernel PATH [--initrd PATH] [--cmdline \"ARGS\"] [--vcpus N] [--mem-mib M]\n"
          "             [--boot pvh|linux] [--host-compat auto|on|off] [--log-level error|warn|info|debug]\n"
          "             [--stats] [--help] [--version]\n"
          "\n"
          "  --kernel PATH       ELF vmlinux or bzImage to boot\n"
          "  --initrd PATH       initial ramdisk (cpio, optionally compressed)\n"
          "  --cmdline ARGS      kernel command line (default: \"" EMBER_DEFAULT_CMDLINE "\")\n"
          "  --vcpus N           number of vCPUs (default 1)\n"
          "  --mem-mib M         guest RAM in MiB (default 128)\n"
          "  --boot pvh|linux    entry for an ELF with a PVH note (default pvh)\n"
          "  --host-compat MODE  kernel arguments for software-KVM (kvm-pvm) hosts (default auto)\n"
          "  --stats             print exit and interpreter counters when the VM ends\n"
          "\n"
          "The guest's serial console is on stdout; stdin feeds it when it is a terminal.\n"
          "Exit status: 0 guest reset/shutdown or SIGINT/SIGTERM, 1 setup error, 2 guest crash,\n"
          "153 bad arguments.\n",
          out);
}

/* Strict unsigned parse: digits only, in [min, max]. */
static int parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    if (!s || !*s || *s == '-' || *s == '+')
        return -EINVAL;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return -EINVAL;
    *out = v;
    return 0;
}

int cli_parse(int argc, char **argv, struct cli_opts *o, struct errmsg *err)
{
    enum { OPT_KERNEL = 256, OPT_INITRD, OPT_CMDLINE, OPT_VCPUS, OPT_MEM, OPT_BOOT,
           OPT_COMPAT, OPT_LOG, OPT_STATS, OPT_HELP, OPT_VERSION };
    static const struct option opts[] = {
        {"kernel", required_argument, NULL, OPT_KERNEL},
        {"initrd", required_argument, NULL, OPT_INITRD},
        {"cmdline", required_argument, NULL, OPT_CMDLINE},
        {"vcpus", required_argument, NULL, OPT_VCPUS},
        {"mem-mib", required_argument, NULL, OPT_MEM},
        {"boot", required_argument, NULL, OPT_BOOT},
        {"host-compat", required_argument, NULL, OPT_COMPAT},
        {"log-level", required_argument, NULL, OPT_LOG},
        {"stats", no_argument, NULL, OPT_STATS},
        {"help", no_argument, NULL, OPT_HELP},
        {"version", no_argument, NULL, OPT_VERSION},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof(*o));
    vm_config_defaults(&o->vm);
    o->log_level = LOG_WARN;
    optind = 0; /* reset getopt so the parser can run more than once (tests) */
    opterr = 0;
    int c;
    uint64_t v;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (c) {
        case OPT_KERNEL:
            o->vm.kernel_path = optarg;
            break;
        case OPT_INITRD:
            o->vm.initrd_path = optarg;
            break;
        case OPT_CMDLINE:
            o->vm.cmdline = optarg;
            break;
        case OPT_VCPUS:
            if (parse_uint(optarg, 1, EMBER_MAX_VCPUS, &v))
                return err_set(err, -EINVAL, "--vcpus '%s': must be a whole number from 1 to %d",
                               optarg, EMBER_MAX_VCPUS);
            o->vm.vcpus = (unsigned)v;
            break;
        case OPT_MEM:
            /* 1 TiB ceiling: far above any microVM, far below address-space trouble. */
            if (parse_uint(optarg, 1, 1ULL << 20, &v))
                return err_set(err, -EINVAL, "--mem-mib '%s': must be a whole number of MiB from 1 to 1048576",
                               optarg);
            o->vm.mem_mib = v;
            break;
        case OPT_BOOT:
            if (strcmp(optarg, "pvh") == 0)
                o->vm.use_pvh = 1;
            else if (strcmp(optarg, "linux") == 0)
                o->vm.use_pvh = 0;
            else
                return err_set(err, -EINVAL, "--boot '%s': must be pvh or linux", optarg);
            break;
        case OPT_COMPAT:
            if (strcmp(optarg, "auto") == 0)
                o->vm.host_compat = HOST_COMPAT_AUTO;
            else if (strcmp(optarg, "on") == 0)
                o->vm.host_compat = HOST_COMPAT_ON;
            else if (strcmp(optarg, "off") == 0)
                o->vm.host_compat = HOST_COMPAT_OFF;
            else
                return err_set(err, -EINVAL, "--host-compat '%s': must be auto, on or off", optarg);
            break;
        case OPT_LOG:
            if (log_parse_level(optarg, &o->log_level))
                return err_set(err, -EINVAL, "--log-level '%s': must be error, warn, info or debug", optarg);
            break;
        case OPT_STATS:
            o->vm.print_stats = 1;
            break;
        case OPT_HELP:
            o->help = 1;
            return 0;
        case OPT_VERSION:
            o->version = 1;
            return 0;
        case ':':
            return err_set(err, -EINVAL, "%s needs a value", argv[optind - 1]);
        default:
            return err_set(err, -EINVAL, "unknown argument '%s' (see --help)", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return err_set(err, -EINVAL, "unexpected argument '%s' (see --help)", argv[optind]);
    if (!o->vm.kernel_path)
        return err_set(err, -EINVAL, "--kernel is required (see --help)");
    return 0;
}
