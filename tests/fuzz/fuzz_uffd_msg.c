/* The userfaultfd handler's message (core/uffd_msg.c): parse, and every region it accepts is consistent. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/uffd_msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct uffd_region r[UFFD_MSG_MAX_REGIONS];
    unsigned n = 0;
    struct errmsg err;
    unsigned max = size ? 1 + data[0] % UFFD_MSG_MAX_REGIONS : UFFD_MSG_MAX_REGIONS;
    if (size)
        data++, size--;
    if (uffd_msg_parse((const char *)data, size, r, max, &n, &err) != 0)
        return 0;
    if (n == 0 || n > max)
        abort();
    /* What was accepted encodes again and parses to the same regions. */
    char text[UFFD_MSG_MAX_LEN];
    int len = uffd_msg_encode(r, n, text, sizeof(text));
    struct uffd_region again[UFFD_MSG_MAX_REGIONS];
    unsigned n2 = 0;
    if (len < 0 || uffd_msg_parse(text, (size_t)len, again, max, &n2, &err) != 0 || n2 != n) {
        fprintf(stderr, "an accepted message does not round-trip: %s\n", err.text);
        abort();
    }
    return 0;
}
