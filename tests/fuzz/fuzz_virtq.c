/*
 * The virtqueue walker (devices/virtio/queue.c) against a guest that writes
 * every byte of its memory: the input's first 8 bytes choose the queue (size,
 * EVENT_IDX, where its three rings are), the rest is the guest's 64 KiB of RAM
 * (descriptors, rings, indirect tables). The device pops chains, reads and
 * writes their buffers, returns them, sometimes puts one back, as blk and net do.
 */
#include <stdint.h>
#include <string.h>

#include "core/guest_mem.h"
#include "devices/virtio/queue.h"

#define RAM (64u << 10)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t ram[RAM];
    static struct virtq_chain chain;
    if (size < 8)
        return 0;
    struct guest_mem gm;
    memset(ram, 0, sizeof(ram));
    memcpy(ram, data + 8, size - 8 < RAM ? size - 8 : RAM);
    if (guest_mem_init_with(&gm, RAM, ram))
        return 0;
    struct virtq q;
    virtq_reset(&q);
    q.size = (uint16_t)(1u << (data[0] % 10)); /* 1 .. 512: above VIRTQ_MAX_SIZE must be refused */
    q.event_idx = data[1] & 1;
    q.ready = true;
    /* Ring addresses: mostly aligned and inside RAM, sometimes not. */
    q.desc_gpa = (uint64_t)(data[2] | data[3] << 8) << (data[1] & 2 ? 4 : 0);
    q.avail_gpa = (uint64_t)(data[4] | data[5] << 8) << (data[1] & 4 ? 1 : 0);
    q.used_gpa = (uint64_t)(data[6] | data[7] << 8) << (data[1] & 8 ? 2 : 0);
    if (virtq_validate(&q, &gm) == 0) {
        uint8_t buf[512];
        for (int i = 0; i < 300; i++) {
            if (!virtq_has_avail(&q, &gm))
                break;
            if (virtq_pop(&q, &gm, &chain))
                break; /* -EPROTO: the device would stop until reset */
            if (chain.readable)
                (void)virtq_chain_read(&chain, &gm, (uint64_t)(i * 7) % chain.readable, buf, sizeof(buf));
            uint32_t written = 0;
            if (chain.writable) {
                uint64_t n = chain.writable < sizeof(buf) ? chain.writable : sizeof(buf);
                if (virtq_chain_write(&chain, &gm, 0, buf, n) == 0)
                    written = (uint32_t)n;
            }
            if ((data[1] & 0x10) && i == 0) {
                virtq_unpop(&q);
                continue;
            }
            if (virtq_push(&q, &gm, chain.head, written))
                break;
            (void)virtq_should_notify(&q, &gm);
        }
        (void)virtq_rearm(&q, &gm);
    }
    guest_mem_free(&gm);
    return 0;
}
