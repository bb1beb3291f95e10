#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cmd/cli.h"
#include "devices/mmds/store.h"

/* The usage text is laid out as it prints. */
/* clang-format off */
void cli_usage(FILE *out)
{
    fputs("usage: ember --kernel PATH [--initrd PATH] [--cmdline \"ARGS\"] [--vcpus N] [--mem-mib M]\n"
          "             [--drive SPEC]... [--net SPEC]...\n"
          "       ember --api-sock PATH [--id ID]           (configure and start over the API)\n"
          "       ember --config-file FILE [--no-api | --api-sock PATH] [--id ID]\n"
          "       ember --snapshot-load STATE (--mem FILE | --mem-uffd SOCKET) [--resume]\n"
          "             [--net-override IFACE=TAP]... [--track-dirty-pages] [--no-api | --api-sock PATH]\n"
          "             [--boot pvh|linux] [--host-compat auto|on|off] [--kernel-decompress auto|host|guest]\n"
          "             [--log-level error|warn|info|debug] [--mmds-size-limit BYTES] [--metadata FILE]\n"
          "             [--stats] [--help] [--version]\n"
          "\n"
          "  --kernel PATH       ELF vmlinux or bzImage to boot\n"
          "  --initrd PATH       initial ramdisk (cpio, optionally compressed)\n"
          "  --cmdline ARGS      kernel command line (default: \"" EMBER_DEFAULT_CMDLINE "\")\n"
          "  --vcpus N           number of vCPUs (default " EMBER_STR(EMBER_DEFAULT_VCPUS) ")\n"
          "  --mem-mib M         guest RAM in MiB (default " EMBER_STR(EMBER_DEFAULT_MEM_MIB) ")\n"
          "  --boot pvh|linux    entry for an ELF with a PVH note (default pvh)\n"
          "  --host-compat MODE  kernel arguments for software-KVM (kvm-pvm) hosts (default auto)\n"
          "  --kernel-decompress auto|host|guest\n"
          "                      who unpacks a bzImage: host = Ember loads the vmlinux inside it\n"
          "                      (no KASLR), guest = its own decompressor; auto = host on kvm-pvm\n"
          "  --stats             print exit and interpreter counters when the VM ends\n"
          "  --drive id=ID,path=FILE[,root][,ro][,io_engine=sync|async]\n"
          "                      a virtio-blk disk (repeatable; the root drive becomes /dev/vda)\n"
          "  --net id=ID,tap=TAP[,mac=XX:XX:XX:XX:XX:XX]\n"
          "                      a virtio-net NIC on a host tap (repeatable)\n"
          "  --api-sock PATH     serve Firecracker's REST API on this Unix socket\n"
          "  --config-file FILE  boot at once from a Firecracker-shaped JSON file\n"
          "  --no-api            with --config-file or --snapshot-load: no API socket\n"
          "  --snapshot-load STATE  restore the snapshot whose state file is STATE (PUT /snapshot/load)\n"
          "  --mem FILE          its memory file, mapped copy-on-write (backend File)\n"
          "  --mem-uffd SOCKET   or a page-fault handler listening on SOCKET (backend Uffd)\n"
          "  --resume            run the restored guest at once (else it waits, paused, for PATCH /vm on --api-sock)\n"
          "  --net-override IFACE=TAP  the restored NIC IFACE on another host tap (repeatable)\n"
          "  --track-dirty-pages dirty page tracking in the restored VM (for Diff snapshots)\n"
          "  --mmds-size-limit BYTES  the MMDS data store's limit, serialized (default " EMBER_STR(MMDS_DEFAULT_SIZE_LIMIT) ")\n"
          "  --metadata FILE     a JSON file: the MMDS data store's content at start (as PUT /mmds)\n"
          "  --id ID             instance id (GET /, logs); default anonymous-instance\n"
          "  --no-seccomp        do not filter system calls (debugging only)\n"
          "  --seccomp-print     print each thread's system-call policy and exit\n"
          "\n"
          "The guest's serial console is on stdout; stdin feeds it when it is a terminal.\n"
          "Exit status: 0 guest reset/shutdown or SIGINT/SIGTERM, 1 setup error, 2 guest crash,\n"
          "152 bad JSON configuration file, 153 bad arguments.\n",
          out);
}
/* clang-format on */

/* Splits "k=v,k2,k3=v3": returns the next key (value in *val, NULL if none). */
static char *next_kv(char **cursor, char **val)
{
    char *s = *cursor;
    if (!s || !*s)
        return NULL;
    char *comma = strchr(s, ',');
    if (comma) {
        *comma = '\0';
        *cursor = comma + 1;
    } else {
        *cursor = NULL;
    }
    char *eq = strchr(s, '=');
    *val = NULL;
    if (eq) {
        *eq = '\0';
        *val = eq + 1;
    }
    return s;
}

int cli_parse_drive(char *spec, struct blk_config *d, struct errmsg *err)
{
    memset(d, 0, sizeof(*d));
    d->engine = BLK_ENGINE_SYNC;
    char *cur = spec, *key, *val;
    while ((key = next_kv(&cur, &val))) {
        if (strcmp(key, "id") == 0 && val) {
            d->id = val;
        } else if (strcmp(key, "path") == 0 && val && *val) {
            d->path = val;
        } else if (strcmp(key, "root") == 0 && !val) {
            d->root = true;
        } else if (strcmp(key, "ro") == 0 && !val) {
            d->read_only = true;
        } else if (strcmp(key, "io_engine") == 0 && val) {
            if (strcasecmp(val, "sync") == 0)
                d->engine = BLK_ENGINE_SYNC;
            else if (strcasecmp(val, "async") == 0)
                d->engine = BLK_ENGINE_ASYNC;
            else
                return err_set(err, -EINVAL, "--drive: io_engine '%s' must be sync or async", val);
        } else {
            return err_set(err, -EINVAL,
                           "--drive: unknown or malformed key '%s' (keys: id=, path=, root, ro, io_engine=)", key);
        }
    }
    if (!d->id || !vm_config_valid_id(d->id))
        return err_set(err, -EINVAL, "--drive: id '%s' must be 1-64 characters of [A-Za-z0-9_]", d->id ? d->id : "");
    if (!d->path)
        return err_set(err, -EINVAL, "--drive %s: path= is required", d->id);
    return 0;
}

int cli_parse_net(char *spec, struct net_config *n, struct errmsg *err)
{
    memset(n, 0, sizeof(*n));
    char *cur = spec, *key, *val;
    while ((key = next_kv(&cur, &val))) {
        if (strcmp(key, "id") == 0 && val) {
            n->id = val;
        } else if (strcmp(key, "tap") == 0 && val && *val) {
            n->tap = val;
        } else if (strcmp(key, "mac") == 0 && val) {
            if (vm_config_parse_mac(val, n->mac))
                return err_set(err, -EINVAL, "--net: mac '%s' must look like 06:00:ac:10:00:02", val);
            if (n->mac[0] & 1)
                return err_set(err, -EINVAL, "--net: mac '%s' is a multicast address", val);
            n->has_mac = true;
        } else {
            return err_set(err, -EINVAL, "--net: unknown or malformed key '%s' (keys: id=, tap=, mac=)", key);
        }
    }
    if (!n->id || !vm_config_valid_id(n->id))
        return err_set(err, -EINVAL, "--net: id '%s' must be 1-64 characters of [A-Za-z0-9_]", n->id ? n->id : "");
    if (!n->tap)
        return err_set(err, -EINVAL, "--net %s: tap= is required", n->id);
    return 0;
}

void cli_free(struct cli_opts *o) { vm_config_release(&o->vm); }

/* Parses one --drive from a scratch copy of its spec, then gives the config its own strings. */
static int add_drive(struct vm_config *vm, const char *arg, struct errmsg *err)
{
    if (vm->nr_drives >= EMBER_MAX_DRIVES)
        return err_set(err, -EINVAL, "--drive: at most %d drives", EMBER_MAX_DRIVES);
    char *spec = strdup(arg);
    if (!spec)
        return err_set(err, -ENOMEM, "out of memory");
    struct blk_config d;
    int rc = cli_parse_drive(spec, &d, err);
    for (unsigned i = 0; !rc && i < vm->nr_drives; i++) {
        // NOLINTNEXTLINE(clang-analyzer-core.NonNullParamChecker): cli_parse_drive succeeds only with an id
        if (strcmp(vm->drives[i].id, d.id) == 0)
            rc = err_set(err, -EINVAL, "--drive: id '%s' given twice", d.id);
        else if (d.root && vm->drives[i].root)
            rc = err_set(err, -EINVAL, "--drive %s: only one drive can be the root", d.id);
    }
    if (!rc) {
        struct blk_config *slot = &vm->drives[vm->nr_drives++]; /* counted at once: release frees what is set */
        *slot = d;
        slot->id = slot->path = NULL;
        if (vm_config_set_str(&slot->id, d.id) || vm_config_set_str(&slot->path, d.path))
            rc = err_set(err, -ENOMEM, "out of memory");
    }
    free(spec);
    return rc;
}

static int add_net(struct vm_config *vm, const char *arg, struct errmsg *err)
{
    if (vm->nr_nets >= EMBER_MAX_NETS)
        return err_set(err, -EINVAL, "--net: at most %d network interfaces", EMBER_MAX_NETS);
    char *spec = strdup(arg);
    if (!spec)
        return err_set(err, -ENOMEM, "out of memory");
    struct net_config n;
    int rc = cli_parse_net(spec, &n, err);
    for (unsigned i = 0; !rc && i < vm->nr_nets; i++)
        // NOLINTNEXTLINE(clang-analyzer-core.NonNullParamChecker): cli_parse_net succeeds only with an id
        if (strcmp(vm->nets[i].id, n.id) == 0)
            rc = err_set(err, -EINVAL, "--net: id '%s' given twice", n.id);
    if (!rc) {
        struct net_config *slot = &vm->nets[vm->nr_nets++];
        *slot = n;
        slot->id = slot->tap = NULL;
        if (vm_config_set_str(&slot->id, n.id) || vm_config_set_str(&slot->tap, n.tap))
            rc = err_set(err, -ENOMEM, "out of memory");
    }
    free(spec);
    return rc;
}

/* A string option: the config keeps its own copy. */
static int set_str(const char **slot, const char *arg, struct errmsg *err)
{
    return vm_config_set_str(slot, arg) ? err_set(err, -ENOMEM, "out of memory") : 0;
}

/* Strict unsigned parse: digits only, in [min, max]. */
static int parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    if (!s || !isdigit((unsigned char)*s))
        return -EINVAL; /* digits only: strtoull would accept blanks and signs */
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
    enum {
        OPT_KERNEL = 256,
        OPT_INITRD,
        OPT_CMDLINE,
        OPT_VCPUS,
        OPT_MEM,
        OPT_BOOT,
        OPT_COMPAT,
        OPT_LOG,
        OPT_STATS,
        OPT_HELP,
        OPT_VERSION,
        OPT_DRIVE,
        OPT_NET,
        OPT_API_SOCK,
        OPT_CONFIG_FILE,
        OPT_NO_API,
        OPT_ID,
        OPT_NO_SECCOMP,
        OPT_SECCOMP_PRINT,
        OPT_DECOMPRESS,
        OPT_SNAP_LOAD,
        OPT_SNAP_MEM,
        OPT_SNAP_UFFD,
        OPT_SNAP_RESUME,
        OPT_NET_OVERRIDE,
        OPT_TRACK_DIRTY,
        OPT_MMDS_LIMIT,
        OPT_METADATA,
    };
    static const struct option opts[] = {
        {"kernel", required_argument, NULL, OPT_KERNEL},
        {"initrd", required_argument, NULL, OPT_INITRD},
        {"cmdline", required_argument, NULL, OPT_CMDLINE},
        {"vcpus", required_argument, NULL, OPT_VCPUS},
        {"mem-mib", required_argument, NULL, OPT_MEM},
        {"boot", required_argument, NULL, OPT_BOOT},
        {"host-compat", required_argument, NULL, OPT_COMPAT},
        {"kernel-decompress", required_argument, NULL, OPT_DECOMPRESS},
        {"log-level", required_argument, NULL, OPT_LOG},
        {"stats", no_argument, NULL, OPT_STATS},
        {"drive", required_argument, NULL, OPT_DRIVE},
        {"net", required_argument, NULL, OPT_NET},
        {"api-sock", required_argument, NULL, OPT_API_SOCK},
        {"config-file", required_argument, NULL, OPT_CONFIG_FILE},
        {"no-api", no_argument, NULL, OPT_NO_API},
        {"id", required_argument, NULL, OPT_ID},
        {"no-seccomp", no_argument, NULL, OPT_NO_SECCOMP},
        {"seccomp-print", no_argument, NULL, OPT_SECCOMP_PRINT},
        {"snapshot-load", required_argument, NULL, OPT_SNAP_LOAD},
        {"mem", required_argument, NULL, OPT_SNAP_MEM},
        {"mem-uffd", required_argument, NULL, OPT_SNAP_UFFD},
        {"resume", no_argument, NULL, OPT_SNAP_RESUME},
        {"net-override", required_argument, NULL, OPT_NET_OVERRIDE},
        {"track-dirty-pages", no_argument, NULL, OPT_TRACK_DIRTY},
        {"mmds-size-limit", required_argument, NULL, OPT_MMDS_LIMIT},
        {"metadata", required_argument, NULL, OPT_METADATA},
        {"help", no_argument, NULL, OPT_HELP},
        {"version", no_argument, NULL, OPT_VERSION},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof(*o));
    vm_config_defaults(&o->vm);
    o->log_level = LOG_WARN;
    optind = 0; /* reset getopt so the parser can run more than once (tests) */
    opterr = 0;
    int c, rc;
    uint64_t v;
    /* optopt is only set for unknown short options: clear it so a stale value is not reported. */
    while ((optopt = 0, c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (c) {
        case OPT_KERNEL:
            if ((rc = set_str(&o->vm.kernel_path, optarg, err)))
                return rc;
            break;
        case OPT_INITRD:
            if ((rc = set_str(&o->vm.initrd_path, optarg, err)))
                return rc;
            break;
        case OPT_CMDLINE:
            if ((rc = set_str(&o->vm.cmdline, optarg, err)))
                return rc;
            break;
        case OPT_VCPUS:
            if (parse_uint(optarg, 1, EMBER_MAX_VCPUS, &v))
                return err_set(err, -EINVAL, "--vcpus '%s': must be a whole number from 1 to %d", optarg,
                               EMBER_MAX_VCPUS);
            o->vm.vcpus = (unsigned)v;
            break;
        case OPT_MEM:
            if (parse_uint(optarg, 1, EMBER_MAX_MEM_MIB, &v))
                return err_set(err, -EINVAL, "--mem-mib '%s': must be a whole number of MiB from 1 to %d", optarg,
                               EMBER_MAX_MEM_MIB);
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
        case OPT_DECOMPRESS:
            if (strcmp(optarg, "auto") == 0)
                o->vm.decompress = KDECOMP_AUTO;
            else if (strcmp(optarg, "host") == 0)
                o->vm.decompress = KDECOMP_HOST;
            else if (strcmp(optarg, "guest") == 0)
                o->vm.decompress = KDECOMP_GUEST;
            else
                return err_set(err, -EINVAL, "--kernel-decompress '%s': must be auto, host or guest", optarg);
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
                return err_set(err, -EINVAL, "--log-level '%s': must be " LOG_CLI_LEVEL_NAMES, optarg);
            break;
        case OPT_STATS: o->vm.print_stats = 1; break;
        case OPT_DRIVE:
            if ((rc = add_drive(&o->vm, optarg, err)))
                return rc;
            break;
        case OPT_NET:
            if ((rc = add_net(&o->vm, optarg, err)))
                return rc;
            break;
        case OPT_API_SOCK: o->api_sock = optarg; break;
        case OPT_CONFIG_FILE: o->config_file = optarg; break;
        case OPT_NO_API: o->no_api = 1; break;
        case OPT_ID: o->instance_id = optarg; break;
        case OPT_NO_SECCOMP: o->no_seccomp = 1; break;
        case OPT_SNAP_LOAD: o->snapshot_load = optarg; break;
        case OPT_SNAP_MEM: o->snapshot_mem = optarg; break;
        case OPT_SNAP_UFFD: o->snapshot_uffd = optarg; break;
        case OPT_SNAP_RESUME: o->snapshot_resume = 1; break;
        case OPT_TRACK_DIRTY: o->track_dirty_pages = 1; break;
        case OPT_METADATA: o->mmds_metadata = optarg; break;
        case OPT_MMDS_LIMIT:
            if (parse_uint(optarg, 1, EMBER_MAX_MMDS_SIZE_LIMIT, &v))
                return err_set(err, -EINVAL, "--mmds-size-limit '%s': must be a whole number of bytes from 1 to %d",
                               optarg, EMBER_MAX_MMDS_SIZE_LIMIT);
            o->vm.mmds_size_limit = v;
            break;
        case OPT_NET_OVERRIDE:
            if (!strchr(optarg, '=') || *optarg == '=' || !strchr(optarg, '=')[1])
                return err_set(err, -EINVAL, "--net-override '%s': must be IFACE=TAP", optarg);
            if (o->nr_net_overrides == EMBER_MAX_NETS)
                return err_set(err, -EINVAL, "--net-override: at most %d", EMBER_MAX_NETS);
            o->net_override[o->nr_net_overrides++] = optarg;
            break;
        case OPT_SECCOMP_PRINT: o->seccomp_print = 1; return 0;
        case OPT_HELP: o->help = 1; return 0;
        case OPT_VERSION: o->version = 1; return 0;
        case ':': return err_set(err, -EINVAL, "%s needs a value", argv[optind - 1]);
        default:
            if (optopt > 0 && optopt < 128 && isprint(optopt))
                return err_set(err, -EINVAL, "unknown option '-%c' (see --help)", optopt);
            if (optopt >= OPT_KERNEL)
                return err_set(err, -EINVAL, "'%s': this option takes no value (see --help)", argv[optind - 1]);
            return err_set(err, -EINVAL, "unknown argument '%s' (see --help)", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return err_set(err, -EINVAL, "unexpected argument '%s' (see --help)", argv[optind]);
    /* The jailer's rule (jailer/args.c), which passes its --id on: it names files, logs and GET / answers. */
    size_t id_len = o->instance_id ? strlen(o->instance_id) : 1;
    bool id_ok = id_len >= 1 && id_len <= 64;
    for (size_t i = 0; id_ok && o->instance_id && i < id_len; i++)
        id_ok = isalnum((unsigned char)o->instance_id[i]) || o->instance_id[i] == '-';
    if (!id_ok)
        return err_set(err, -EINVAL, "--id '%s': must be 1-64 characters of [A-Za-z0-9-]", o->instance_id);
    if (o->vm.kernel_path && o->config_file)
        return err_set(err, -EINVAL, "--kernel and --config-file are alternatives: give one");
    if (o->no_api && o->api_sock)
        return err_set(err, -EINVAL, "--no-api and --api-sock contradict each other");
    if (o->snapshot_load) {
        if (o->vm.kernel_path || o->config_file)
            return err_set(err, -EINVAL,
                           "--snapshot-load restores a described VM: no --kernel or --config-file with it");
        if (!o->snapshot_mem == !o->snapshot_uffd)
            return err_set(err, -EINVAL, "--snapshot-load needs exactly one of --mem FILE and --mem-uffd SOCKET");
        /* Else they would be dropped without a word (or, drives and NICs, make the load fail as "configured"). */
        if (o->vm.initrd_path || o->vm.cmdline || o->vm.nr_drives || o->vm.nr_nets ||
            o->vm.vcpus != EMBER_DEFAULT_VCPUS || o->vm.mem_mib != EMBER_DEFAULT_MEM_MIB)
            return err_set(err, -EINVAL,
                           "--snapshot-load takes the machine, drives and NICs from the snapshot: no --vcpus, "
                           "--mem-mib, --initrd, --cmdline, --drive or --net with it (--net-override IFACE=TAP "
                           "puts a NIC on another tap)");
        /* A VM restored paused waits for PATCH /vm: without the API nothing could ever resume it. */
        if (!o->snapshot_resume && !o->api_sock)
            return err_set(err, -EINVAL,
                           "--snapshot-load without --resume leaves the VM paused: add --resume, or --api-sock PATH "
                           "to resume it with PATCH /vm");
    } else if (o->snapshot_mem || o->snapshot_uffd || o->snapshot_resume || o->nr_net_overrides ||
               o->track_dirty_pages) {
        return err_set(err, -EINVAL,
                       "--mem, --mem-uffd, --resume, --net-override and --track-dirty-pages go with --snapshot-load");
    }
    /* Firecracker serves its API at this path unless told --no-api; Kata's jailed start relies on it. */
    if (o->config_file && !o->no_api && !o->api_sock)
        o->api_sock = "/run/firecracker.socket";
    if (o->no_api && !o->config_file && !o->vm.kernel_path && !o->snapshot_load)
        return err_set(err, -EINVAL, "--no-api needs --config-file (or --kernel, or --snapshot-load)");
    if (!o->vm.kernel_path && !o->config_file && !o->api_sock && !o->snapshot_load)
        return err_set(err, -EINVAL,
                       "--kernel is required (or --config-file, or --api-sock to configure over the API; see --help)");
    if (!o->instance_id)
        o->instance_id = "anonymous-instance";
    return 0;
}
