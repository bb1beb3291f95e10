/*
 * virtio-blk's image file (virtio_blk_fixture.h): the lock that keeps two
 * writers (or a writer and readers) off one image, errors naming the file,
 * and swapping the image under a running device.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "devices/virtio/virtio.h"
#include "tests/unit/virtio_blk_fixture.h"

/* ---- the image lock ---- */

Test(blk, second_writer_refused_by_lock)
{
    make_image(4096);
    struct blk_config cfg = {.id = "d0", .path = blkfx.img, .engine = BLK_ENGINE_SYNC};
    struct virtio_blk *a = NULL, *b = NULL;
    struct errmsg err = {{0}};
    cr_assert_eq(virtio_blk_create(&a, &cfg, &err), 0, "%s", err.text);
    cfg.id = "d1";
    int rc = virtio_blk_create(&b, &cfg, &err);
    cr_assert_lt(rc, 0);
    cr_assert_not_null(strstr(err.text, "lock"), "message: %s", err.text);
    cr_assert_not_null(strstr(err.text, "d1"), "the message names the drive: %s", err.text);
    /* A reader is refused too while a writer holds the image. */
    cfg.read_only = true;
    cr_assert_lt(virtio_blk_create(&b, &cfg, &err), 0);
    virtio_blk_free(a);
    /* Released with the device. */
    cfg.read_only = false;
    cr_assert_eq(virtio_blk_create(&b, &cfg, &err), 0, "%s", err.text);
    virtio_blk_free(b);
    unlink(blkfx.img);
}

Test(blk, readers_share_the_image)
{
    make_image(4096);
    struct blk_config cfg = {.id = "r0", .path = blkfx.img, .read_only = true, .engine = BLK_ENGINE_ASYNC};
    struct virtio_blk *a = NULL, *b = NULL, *c = NULL;
    struct errmsg err = {{0}};
    cr_assert_eq(virtio_blk_create(&a, &cfg, &err), 0, "%s", err.text);
    cfg.engine = BLK_ENGINE_SYNC;
    cr_assert_eq(virtio_blk_create(&b, &cfg, &err), 0, "%s", err.text);
    cfg.read_only = false;
    cr_assert_lt(virtio_blk_create(&c, &cfg, &err), 0, "a writer is refused while readers hold it");
    cr_assert_not_null(strstr(err.text, "lock"), "message: %s", err.text);
    virtio_blk_free(a);
    virtio_blk_free(b);
    unlink(blkfx.img);
}

Test(blk, missing_image_named_in_error)
{
    struct blk_config cfg = {.id = "gone", .path = "/nonexistent/ember.img", .engine = BLK_ENGINE_SYNC};
    struct virtio_blk *b = NULL;
    struct errmsg err = {{0}};
    cr_assert_lt(virtio_blk_create(&b, &cfg, &err), 0);
    cr_assert_not_null(strstr(err.text, "/nonexistent/ember.img"), "%s", err.text);
}

/* ---- drive swap ---- */

BOTH(swap_image_takes_the_lock_and_signals_config_change)
{
    blk_start(e);
    char first[sizeof(blkfx.img)];
    memcpy(first, blkfx.img, sizeof(blkfx.img));
    make_image(2 * FILE_SIZE); /* blkfx.img now names the new, larger image */
    uint32_t gen = vfx_rd(VIRTIO_MMIO_CONFIG_GENERATION);
    int before = vfx.pulses;
    struct errmsg err = {{0}};
    cr_assert_eq(virtio_blk_swap_image(blkfx.blk, blkfx.img, &err), 0, "%s", err.text);
    unlink(first);
    cr_assert_eq(virtio_blk_capacity_sectors(blkfx.blk), 2 * FILE_SIZE / 512);
    cr_assert_neq(vfx_rd(VIRTIO_MMIO_CONFIG_GENERATION), gen, "the driver re-reads the capacity");
    cr_assert(vfx_rd(VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_INT_CONFIG);
    cr_assert_gt(vfx.pulses, before);
    cr_assert_str_eq(virtio_blk_id(blkfx.blk), "ember-disk-0");
    /* The lock was released, and the new image serves past the old end. */
    post_req(0, T_IN, FILE_SIZE / 512 + 1, 512);
    kick_until(1);
    cr_assert_eq(status_of(0), S_OK);
    check_pattern(g_at(DATA_GPA(0), 512), FILE_SIZE + 512, 512);

    cr_assert_lt(virtio_blk_swap_image(blkfx.blk, "/nonexistent/ember.img", &err), 0);
    cr_assert_not_null(strstr(err.text, "/nonexistent/ember.img"), "%s", err.text);
    cr_assert_eq(virtio_blk_capacity_sectors(blkfx.blk), 2 * FILE_SIZE / 512, "a failed swap keeps the image");
}
