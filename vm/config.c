#include "vm/config.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

void vm_config_defaults(struct vm_config *c)
{
    memset(c, 0, sizeof(*c));
    c->vcpus = EMBER_DEFAULT_VCPUS;
    c->mem_mib = EMBER_DEFAULT_MEM_MIB;
    c->host_compat = HOST_COMPAT_AUTO;
    c->use_pvh = 1;
}

/* The config's strings are const for its readers (vm.c, devices) and owned here. */
static void free_str(const char **slot)
{
    free((void *)*slot);
    *slot = NULL;
}

void vm_config_release(struct vm_config *c)
{
    free_str(&c->kernel_path);
    free_str(&c->initrd_path);
    free_str(&c->cmdline);
    free_str(&c->serial_out_path);
    for (unsigned i = 0; i < c->nr_drives; i++) {
        free_str(&c->drives[i].id);
        free_str(&c->drives[i].path);
    }
    for (unsigned i = 0; i < c->nr_nets; i++) {
        free_str(&c->nets[i].id);
        free_str(&c->nets[i].tap);
    }
    free_str(&c->vsock.uds_path);
    cpu_template_free(c->cpu_config);
    vm_config_defaults(c);
}

int vm_config_set_str(const char **slot, const char *s)
{
    char *copy = NULL;
    if (s && !(copy = strdup(s)))
        return -ENOMEM;
    free_str(slot);
    *slot = copy;
    return 0;
}

int vm_config_valid_id(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!(isalnum((unsigned char)id[i]) || id[i] == '_'))
            return 0;
    return 1;
}

int vm_config_parse_mac(const char *text, uint8_t mac[6])
{
    /* Checked by hand: sscanf alone would take blanks and 0x. */
    if (strlen(text) != 17)
        return -EINVAL;
    for (int i = 0; i < 17; i++)
        if (i % 3 == 2 ? text[i] != ':' : !isxdigit((unsigned char)text[i]))
            return -EINVAL;
    for (int i = 0; i < 6; i++)
        mac[i] = (uint8_t)strtoul((char[]){text[i * 3], text[i * 3 + 1], '\0'}, NULL, 16);
    return 0;
}

const struct cpu_template *vm_config_cpu_template(const struct vm_config *c)
{
    return c->cpu_template == CPU_TEMPLATE_CUSTOM ? c->cpu_config : cpu_template_static(c->cpu_template);
}
