#include "vm/config.h"

#include <ctype.h>
#include <string.h>

void vm_config_defaults(struct vm_config *c)
{
    memset(c, 0, sizeof(*c));
    c->vcpus = 1;
    c->mem_mib = 128;
    c->host_compat = HOST_COMPAT_AUTO;
    c->use_pvh = 1;
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
