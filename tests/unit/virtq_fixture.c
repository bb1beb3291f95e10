/* The virtqueue tests' shared setup (virtq_fixture.h); the tests are in test_virtq_*.c. */
#include <criterion/criterion.h>
#include <string.h>

#include "tests/unit/virtq_fixture.h"

struct virtq vq;
struct virtq_chain vq_chain;

void vq_queue_setup(uint16_t size)
{
    virtq_reset(&vq);
    vq.size = size;
    vq.ready = true;
    vq.desc_gpa = DESC_GPA;
    vq.avail_gpa = AVAIL_GPA;
    vq.used_gpa = USED_GPA;
    vfx_queue_at(0, size, DESC_GPA, AVAIL_GPA, USED_GPA);
    memset(g_at(0, 0x10000), 0, 0x10000); /* rings and indirect tables */
}

static void setup(void)
{
    vfx_ram_init(MEM);
    memset(&vq_chain, 0, sizeof(vq_chain));
    vq_queue_setup(16);
}

static void teardown(void) { vfx_ram_free(); }

/* One suite for every test_virtq_*.c file: Criterion joins tests to their suite by name. */
TestSuite(virtq, .init = setup, .fini = teardown);
