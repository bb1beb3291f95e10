/*
 * virtio-vsock (devices/virtio/vsock*.c) with a guest that wrote every byte
 * of its rx, tx and event rings and of the packets it sends (fuzz_virtio.h:
 * 4 header bytes, then guest RAM): any op, CID, port, length, credit and
 * flag, as many packets as the tx ring holds. The host side is real Unix
 * sockets in a temporary directory of this process (in /dev/shm if it can): Ember's uds_path, a
 * listener at "<uds_path>_1024" for the guest's connections (accepted, read
 * and closed every run), and, if byte 2 bit 0 is set, a host client that
 * asks for guest port 1234 and sends byte 3 * 16 bytes.
 *
 * Invariants: no more stream bytes reach the host than the guest sent
 * (tx_bytes), none reach the guest beyond what the host wrote (rx_bytes); the
 * queues return what they take; no socket outlives the device.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "devices/virtio/vsock.h"
#include "devices/virtio/vsock_proto.h"
#include "tests/fuzz/fuzz_virtio.h"

#define GUEST_CID 3
#define HOST_PORT 1024u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64], uds[96];
static int listener = -1;

static void cleanup(void)
{
    char path[128];
    if (listener >= 0)
        close(listener);
    snprintf(path, sizeof(path), "%s_%u", uds, HOST_PORT);
    unlink(path);
    unlink(uds);
    rmdir(dir);
}

static int unix_socket(const char *path, bool do_listen)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    if (fd < 0)
        abort();
    if (do_listen ? bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 64)
                  : connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
        perror(path);
        abort();
    }
    return fd;
}

/* The per-process directory and the host listener for guest connections, once. */
static void setup(void)
{
    if (dir[0])
        return;
    /* tmpfs if there is one: each run's device binds (creates) its socket file, which costs more on a disk. */
    const char *tmp = getenv("TMPDIR");
    if (access("/dev/shm", W_OK) == 0)
        tmp = "/dev/shm";
    snprintf(dir, sizeof(dir), "%s/ember-fuzz-vsock-XXXXXX", tmp && *tmp && strlen(tmp) < 32 ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        abort();
    }
    snprintf(uds, sizeof(uds), "%s/v.sock", dir);
    atexit(cleanup);
    char path[128];
    snprintf(path, sizeof(path), "%s_%u", uds, HOST_PORT);
    listener = unix_socket(path, true);
    fv_quiet_log();
}

/* The next connection waiting on the (non-blocking) listener, or -1. */
static int accept_one(void)
{
    struct sockaddr_un peer;
    socklen_t len = sizeof(peer);
    return accept4(listener, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

/* Reads what is readable on fd; returns the bytes. */
static uint64_t slurp(int fd)
{
    static uint8_t buf[64 << 10];
    uint64_t got = 0;
    for (ssize_t n; (n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0;)
        got += (uint64_t)n;
    return got;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup();
    struct fuzz_guest g;
    if (fv_ram(&g, data, size))
        return 0;
    int fds = fv_count_fds();
    struct vsock_config cfg = {.guest_cid = GUEST_CID, .uds_path = uds};
    struct virtio_vsock *vs = NULL;
    struct errmsg err = {{0}};
    if (virtio_vsock_create(&vs, &cfg, &err)) {
        fprintf(stderr, "virtio_vsock_create: %s\n", err.text);
        abort();
    }
    if (evloop_init(&g.loop) ||
        virtio_mmio_init(&g.m, "vsock", &virtio_vsock_ops, vs, &g.gm, &g.loop, -1, 0xd0002000ULL, 7, fv_irq_line()))
        abort();
    int accepted[64], nacc = 0, client = -1;
    uint64_t to_host = 0, host_sent = 0;
    if (fv_driver_up(&g, fv_features(data[0], 0), data[1], 3) == 0) {
        if (data[2] & 1) {
            client = unix_socket(uds, false);
            char msg[16 + 255 * 16];
            int n = snprintf(msg, sizeof(msg), "CONNECT 1234\n");
            memset(msg + n, 'x', (size_t)data[3] * 16);
            host_sent = (uint64_t)data[3] * 16;
            if (send(client, msg, (size_t)n + host_sent, MSG_DONTWAIT) != (ssize_t)(n + host_sent))
                host_sent = 0; /* the exact count no longer matters: nothing checks rx_bytes then */
        }
        /*
         * The host's events first (its CONNECT becomes a REQUEST in the rx ring), then the guest's packets,
         * so that a RESPONSE in the tx ring can find the connection it answers.
         */
        for (int round = 0; round < 2; round++) {
            for (int i = 0; i < 4 && evloop_run_once(&g.loop, 0) > 0; i++)
                ;
            virtio_mmio_kick(&g.m, VIRTIO_VSOCK_RXQ);
            virtio_mmio_kick(&g.m, VIRTIO_VSOCK_EVENTQ);
            virtio_mmio_kick(&g.m, VIRTIO_VSOCK_TXQ);
            for (int i = 0; i < 4 && evloop_run_once(&g.loop, 0) > 0; i++)
                ;
            for (int fd; nacc < 64 && (fd = accept_one()) >= 0;)
                accepted[nacc++] = fd;
            for (int i = 0; i < nacc; i++)
                to_host += slurp(accepted[i]);
        }
        struct vsock_counters c = virtio_vsock_counters(vs);
        if (to_host > c.tx_bytes)
            fv_abort("the host got more stream bytes than the guest sent");
        if (host_sent && c.rx_bytes > host_sent)
            fv_abort("the guest got more stream bytes than the host sent");
        if (!(fv_rd(&g, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET)) {
            fv_check_queue(&g, VIRTIO_VSOCK_TXQ, 0);
            fv_check_queue(&g, VIRTIO_VSOCK_RXQ, 0);
            fv_check_queue(&g, VIRTIO_VSOCK_EVENTQ, 0);
        }
    }
    fv_teardown(&g);
    virtio_vsock_free(vs);
    evloop_destroy(&g.loop);
    fv_ram_free(&g);
    unlink(uds); /* the device leaves its socket file, as Firecracker does */
    /* What the guest connected to was closed with the device: the host sees EOF, not a hang. */
    for (int i = 0; i < nacc; i++) {
        slurp(accepted[i]);
        close(accepted[i]);
    }
    for (int fd; (fd = accept_one()) >= 0;)
        close(fd);
    if (client >= 0)
        close(client);
    if (fv_count_fds() != fds)
        fv_abort("a file descriptor outlived the device");
    return 0;
}
