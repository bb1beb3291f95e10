/*
 * The MMDS responder as a guest drives it (devices/mmds/net_stack.c and, behind it, devices/mmds/http.c):
 * the input is a sequence of guest frames, each a 2-byte little-endian length, a flags byte (bit 0: the
 * virtio header said NEEDS_CSUM, bit 1: GSO, bit 2: V2, bit 3: IMDS compat) and the frame. After each
 * frame every answer is drained; each must fit MMDS_NET_MAX_FRAME, and a frame the cheap classifier
 * turned away must not be taken.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/mmds/net_stack.h"
#include "devices/mmds/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mmds_store *store = NULL;
    struct mmds_net *net = NULL;
    if (mmds_store_new(&store, 0) || mmds_net_new(&net, store, 1)) {
        mmds_store_free(store);
        return 0;
    }
    struct errmsg err;
    json_t *doc = json_pack("{s:{s:{s:s,s:[i,i]},s:s}}", "latest", "meta-data", "ami-id", "ami-1234", "list", 1, 2,
                            "user-data", "hello");
    if (doc) {
        mmds_store_put(store, doc, &err); /* takes a reference of its own */
        json_decref(doc);
    }
    struct mmds_settings set = {.version = MMDS_V1, .ipv4 = MMDS_DEFAULT_IPV4, .imds_compat = false};
    if (size) {
        set.version = (data[0] & 4) ? MMDS_V2 : MMDS_V1;
        set.imds_compat = (data[0] & 8) != 0;
    }
    mmds_store_configure(store, &set);
    static uint8_t out[MMDS_NET_MAX_FRAME + 64];
    uint64_t now = 1000000000ull;
    size_t pos = 0;
    while (size - pos >= 3) {
        size_t len = data[pos] | (size_t)data[pos + 1] << 8;
        uint8_t flags = data[pos + 2];
        pos += 3;
        if (len > size - pos)
            len = size - pos;
        const uint8_t *frame = data + pos;
        pos += len;
        bool wants = mmds_net_wants(net, frame, len);
        bool took = mmds_net_take(net, frame, len, flags & 1, flags & 2, now);
        if (took && !wants) {
            fprintf(stderr, "a frame the classifier turned away was taken\n");
            abort();
        }
        now += 1000000ull * (flags >> 4);
        for (int i = 0; i < 64 && mmds_net_has_output(net); i++) {
            size_t n = mmds_net_output(net, out, sizeof(out));
            if (n > MMDS_NET_MAX_FRAME) {
                fprintf(stderr, "an answer of %zu bytes\n", n);
                abort();
            }
        }
    }
    mmds_net_free(net);
    mmds_store_free(store);
    return 0;
}
