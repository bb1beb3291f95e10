/*
 * vsock-helper: the guest side of Ember's vsock tests (libc only, built
 * static into the guest root filesystem by deploy/guest/build.sh).
 *
 *   vsock-helper listen PORT    accept AF_VSOCK streams on PORT, echo each
 *                               back (one process per connection), forever
 *   vsock-helper connect PORT   connect to the host (CID 2) port PORT, send
 *                               stdin (then half-close), copy what comes
 *                               back to stdout until the host closes
 *
 * Exit status 0 on success, 1 with a message on stderr otherwise.
 */
#include <errno.h>
#include <linux/vm_sockets.h>
#include <poll.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif

static int die(const char *what)
{
    fprintf(stderr, "vsock-helper: %s: %s\n", what, strerror(errno));
    return 1;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int echo(int fd)
{
    static char buf[65536];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n == 0)
            return 0;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return 1;
        }
        if (write_all(fd, buf, (size_t)n))
            return 1;
    }
}

static int do_listen(unsigned port)
{
    int l = socket(AF_VSOCK, SOCK_STREAM, 0);
    if (l < 0)
        return die("socket(AF_VSOCK)");
    struct sockaddr_vm sa = {.svm_family = AF_VSOCK, .svm_port = port, .svm_cid = VMADDR_CID_ANY};
    if (bind(l, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        return die("bind");
    if (listen(l, 128) < 0)
        return die("listen");
    signal(SIGCHLD, SIG_IGN); /* children reaped by the kernel */
    for (;;) {
        int c = accept(l, NULL, NULL);
        if (c < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            return die("accept");
        }
        pid_t pid = fork();
        if (pid == 0) {
            close(l);
            _exit(echo(c));
        }
        close(c);
    }
}

static int do_connect(unsigned port)
{
    int s = socket(AF_VSOCK, SOCK_STREAM, 0);
    if (s < 0)
        return die("socket(AF_VSOCK)");
    struct sockaddr_vm sa = {.svm_family = AF_VSOCK, .svm_port = port, .svm_cid = VMADDR_CID_HOST};
    if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        return die("connect");
    static char buf[65536];
    bool in_open = true;
    for (;;) {
        struct pollfd p[2] = {{.fd = s, .events = POLLIN}, {.fd = in_open ? 0 : -1, .events = POLLIN}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            return die("poll");
        }
        if (p[1].revents) {
            ssize_t n = read(0, buf, sizeof(buf));
            if (n < 0 && errno != EINTR)
                return die("reading stdin");
            if (n == 0) {
                in_open = false;
                shutdown(s, SHUT_WR);
            } else if (n > 0 && write_all(s, buf, (size_t)n)) {
                return die("sending");
            }
        }
        if (p[0].revents) {
            ssize_t n = read(s, buf, sizeof(buf));
            if (n < 0 && errno != EINTR)
                return die("receiving");
            if (n == 0)
                return 0;
            if (n > 0 && write_all(1, buf, (size_t)n))
                return die("writing stdout");
        }
    }
}

int main(int argc, char **argv)
{
    char *end;
    unsigned long port = argc == 3 ? strtoul(argv[2], &end, 10) : 0;
    if (argc != 3 || !*argv[2] || *end || port > 0xffffffffUL) {
        fprintf(stderr, "usage: vsock-helper listen PORT | vsock-helper connect PORT\n");
        return 2;
    }
    if (!strcmp(argv[1], "listen"))
        return do_listen((unsigned)port);
    if (!strcmp(argv[1], "connect"))
        return do_connect((unsigned)port);
    fprintf(stderr, "vsock-helper: unknown mode '%s'\n", argv[1]);
    return 2;
}
