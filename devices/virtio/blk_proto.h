/*
 * virtio-blk as the driver sees it (virtio 1.2, 5.2): feature bits, the
 * request header and its types, status codes, and the configuration space
 * layout. Shared by the device model, the tests and the benchmark.
 */
#ifndef EMBER_VIRTIO_BLK_PROTO_H
#define EMBER_VIRTIO_BLK_PROTO_H

/* Feature bits. */
#define VIRTIO_BLK_F_SEG_MAX 2
#define VIRTIO_BLK_F_RO 5
#define VIRTIO_BLK_F_FLUSH 9

/* Request header: le32 type, le32 reserved, le64 sector; then data, then one status byte. */
#define VIRTIO_BLK_REQ_HDR_LEN 16
#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_T_GET_ID 8

#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_IOERR 1
#define VIRTIO_BLK_S_UNSUPP 2

#define VIRTIO_BLK_SECTOR_SIZE 512
#define VIRTIO_BLK_ID_BYTES 20 /* GET_ID answer: the id, NUL-padded, not terminated at 20 */

/* Configuration space offsets. */
#define VIRTIO_BLK_CFG_CAPACITY 0 /* le64, in 512-byte sectors */
#define VIRTIO_BLK_CFG_SIZE_MAX 8 /* le32 */
#define VIRTIO_BLK_CFG_SEG_MAX 12 /* le32 */

#endif
