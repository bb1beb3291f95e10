/*
 * vsock-helper: the guest side of Ember's vsock tests (libc only, built
 * static into the guest root filesystem by deploy/guest/build.sh).
 *
 *   vsock-helper listen PORT [CTLPORT]
 *                               accept AF_VSOCK streams on PORT, echo each
 *                               back (one process per connection), forever.
 *                               A connection that ends in an error prints
 *                               "vsock-helper: connection from host port N:
 *                               ..." on stderr. With CTLPORT, a control
 *                               service there takes one line per connection:
 *                                 KILL N  SIGKILL the echo process serving
 *                                         the connection from host port N
 *                                         (answers "killed PID" or "none")
 *                                 LIST    "ports: N..." (live connections)
 *   vsock-helper listen-tcp PORT
 *                               the same echo over TCP (any address): the
 *                               benchmark's TCP side, so both transports
 *                               are served by the same program
 *   vsock-helper connect PORT   connect to the host (CID 2) port PORT, send
 *                               stdin (then half-close), copy what comes
 *                               back to stdout until the host closes
 *   vsock-helper http-bench IPV4 PATH N
 *                               N sequential HTTP GETs of /PATH from IPV4:80
 *                               (the MMDS benchmark), one connection each;
 *                               prints the rate and the latencies
 *
 * Exit status 0 on success, 1 with a message on stderr otherwise.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/vm_sockets.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
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

static int echo(int fd, unsigned peer_port)
{
    static char buf[65536];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n == 0)
            return 0;
        if (n < 0 && errno == EINTR)
            continue;
        /* Said on the console: how a test sees the guest's end of a connection reset under it. */
        if (n < 0 || write_all(fd, buf, (size_t)n)) {
            fprintf(stderr, "vsock-helper: connection from host port %u: %s: %s\n", peer_port,
                    n < 0 ? "read" : "write", strerror(errno));
            return 1;
        }
    }
}

static int listen_on(int family, unsigned port)
{
    int l = socket(family, SOCK_STREAM, 0);
    if (l < 0)
        return -1;
    struct sockaddr_vm svm = {.svm_family = AF_VSOCK, .svm_port = port, .svm_cid = VMADDR_CID_ANY};
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int one = 1;
    if (family == AF_INET)
        setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr *sa = family == AF_INET ? (struct sockaddr *)&sin : (struct sockaddr *)&svm;
    socklen_t len = family == AF_INET ? sizeof(sin) : sizeof(svm);
    if (bind(l, sa, len) < 0 || listen(l, 128) < 0) {
        close(l);
        return -1;
    }
    return l;
}

/* The echo processes alive, by the host port of their connection (for KILL and LIST). */
#define MAX_CHILDREN 1024
static struct child {
    pid_t pid;
    unsigned peer_port;
} children[MAX_CHILDREN];

static void on_sigchld(int sig)
{
    (void)sig; /* only interrupts poll(), so the loop reaps */
}

static void reap(void)
{
    pid_t pid;
    while ((pid = waitpid(-1, NULL, WNOHANG)) > 0)
        for (int i = 0; i < MAX_CHILDREN; i++)
            if (children[i].pid == pid)
                children[i].pid = 0;
}

/* One control request: a line within 2 s, one answer line. */
static void control(int c)
{
    char line[64];
    size_t len = 0;
    while (len < sizeof(line) - 1 && !memchr(line, '\n', len)) {
        struct pollfd p = {.fd = c, .events = POLLIN};
        if (poll(&p, 1, 2000) <= 0)
            break;
        ssize_t n = read(c, line + len, sizeof(line) - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    line[len] = 0;
    char out[8192] = "none\n";
    unsigned port;
    if (sscanf(line, "KILL %u", &port) == 1) {
        for (int i = 0; i < MAX_CHILDREN; i++)
            if (children[i].pid && children[i].peer_port == port && kill(children[i].pid, SIGKILL) == 0) {
                snprintf(out, sizeof(out), "killed %d\n", (int)children[i].pid);
                break;
            }
    } else if (!strncmp(line, "LIST", 4)) {
        size_t o = (size_t)snprintf(out, sizeof(out), "ports:");
        for (int i = 0; i < MAX_CHILDREN && o < sizeof(out) - 16; i++)
            if (children[i].pid)
                o += (size_t)snprintf(out + o, sizeof(out) - o, " %u", children[i].peer_port);
        snprintf(out + o, sizeof(out) - o, "\n");
    }
    (void)write_all(c, out, strlen(out));
}

static int do_listen(int family, unsigned port, long ctl_port)
{
    int l = listen_on(family, port);
    if (l < 0)
        return die("listening on the echo port");
    int ctl = ctl_port >= 0 ? listen_on(AF_VSOCK, (unsigned)ctl_port) : -1;
    if (ctl_port >= 0 && ctl < 0)
        return die("listening on the control port");
    struct sigaction sa = {.sa_handler = on_sigchld}; /* no SA_RESTART: poll returns EINTR */
    sigaction(SIGCHLD, &sa, NULL);
    for (;;) {
        reap();
        struct pollfd p[2] = {{.fd = l, .events = POLLIN}, {.fd = ctl, .events = POLLIN}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            return die("poll");
        }
        if (p[1].revents) {
            int c = accept(ctl, NULL, NULL);
            if (c >= 0) {
                control(c);
                close(c);
            }
        }
        if (!p[0].revents)
            continue;
        struct sockaddr_storage peer_sa = {0};
        socklen_t plen = sizeof(peer_sa);
        int c = accept(l, (struct sockaddr *)&peer_sa, &plen);
        if (c < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EAGAIN)
                continue;
            return die("accept");
        }
        unsigned peer_port = family == AF_INET ? ntohs(((struct sockaddr_in *)&peer_sa)->sin_port)
                                               : ((struct sockaddr_vm *)&peer_sa)->svm_port;
        pid_t pid = fork();
        if (pid == 0) {
            close(l);
            if (ctl >= 0)
                close(ctl);
            _exit(echo(c, peer_port));
        }
        for (int i = 0; pid > 0 && i < MAX_CHILDREN; i++)
            if (!children[i].pid) {
                children[i] = (struct child){.pid = pid, .peer_port = peer_port};
                break;
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

static double mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* One GET: true when the answer is a whole 200 (read to the server's close). */
static bool http_get(const struct sockaddr_in *sa, const char *req, size_t req_len)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0)
        return false;
    bool ok = false;
    if (connect(s, (const struct sockaddr *)sa, sizeof(*sa)) == 0 && !write_all(s, req, req_len)) {
        char buf[4096];
        size_t got = 0;
        ssize_t n;
        while ((n = read(s, buf + (got < 16 ? got : 16), sizeof(buf) - 16)) > 0)
            got += (size_t)n;
        ok = n == 0 && got >= 12 && !strncmp(buf, "HTTP/1.", 7) && !strncmp(buf + 8, " 200", 4);
    }
    close(s);
    return ok;
}

static int do_http_bench(const char *addr, const char *path, long n)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(80)};
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1 || n <= 0) {
        fprintf(stderr, "vsock-helper: http-bench needs an IPv4 address and a count\n");
        return 2;
    }
    char req[512];
    int len = snprintf(req, sizeof(req), "GET /%s HTTP/1.1\r\nHost: %s\r\nAccept: */*\r\n\r\n", path, addr);
    if (len < 0 || len >= (int)sizeof(req))
        return 2;
    double *lat = calloc((size_t)n, sizeof(double));
    if (!lat)
        return die("calloc");
    long ok = 0;
    double t0 = mono_us();
    for (long i = 0; i < n; i++) {
        double t = mono_us();
        ok += http_get(&sa, req, (size_t)len);
        lat[i] = mono_us() - t;
    }
    double secs = (mono_us() - t0) / 1e6;
    qsort(lat, (size_t)n, sizeof(double), cmp_double);
    printf("%ld requests, %ld ok, %.0f req/s, latency us median %.0f p90 %.0f min %.0f\n", n, ok, (double)n / secs,
           lat[n / 2], lat[n * 9 / 10], lat[0]);
    free(lat);
    return ok == n ? 0 : 1;
}

/* A decimal port (32 bits), or -1. */
static long parse_port(const char *s)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    return *s && !*end && !errno && v <= 0xffffffffUL ? (long)v : -1;
}

int main(int argc, char **argv)
{
    if (argc == 5 && !strcmp(argv[1], "http-bench"))
        return do_http_bench(argv[2], argv[3], strtol(argv[4], NULL, 10));
    long port = argc >= 3 ? parse_port(argv[2]) : -1;
    long ctl_port = argc == 4 ? parse_port(argv[3]) : -1;
    bool is_listen = argc >= 3 && !strcmp(argv[1], "listen");
    if (argc == 3 && !strcmp(argv[1], "listen-tcp") && port >= 0 && port <= 65535)
        return do_listen(AF_INET, (unsigned)port, -1);
    if (port < 0 || argc > (is_listen ? 4 : 3) || (argc == 4 && ctl_port < 0)) {
        fprintf(stderr, "usage: vsock-helper listen PORT [CTLPORT] | listen-tcp PORT | connect PORT | http-bench IPV4 PATH N\n");
        return 2;
    }
    if (is_listen)
        return do_listen(AF_VSOCK, (unsigned)port, ctl_port);
    if (!strcmp(argv[1], "connect"))
        return do_connect((unsigned)port);
    fprintf(stderr, "vsock-helper: unknown mode '%s'\n", argv[1]);
    return 2;
}
