/*
 * benchtool: the timing-critical parts of `make bench` (perf/bench.sh).
 *
 *   sockup N SOCK QMP CMD...      N times: fork+exec CMD, poll connect(SOCK) in
 *                                 a tight loop; QMP=1 also reads until the QMP
 *                                 greeting arrives. Prints one "us" per run.
 *   load SOCK CLIENTS PER OUT     CLIENTS threads each make PER requests,
 *                                 alternating GET / and PUT /machine-config
 *                                 (one connection per request). Writes every
 *                                 latency (us) to OUT; prints a summary line.
 *   apistart N SOCK LOG KERNEL CMDLINE EMBER [ARGS...]
 *                                 N times: start ember --api-sock SOCK --stats,
 *                                 PUT /boot-source, then time the PUT /actions
 *                                 InstanceStart round trip. stderr of each run
 *                                 goes to LOG.<i>. Prints per run the round
 *                                 trip, when the request was sent and when
 *                                 the socket first accepted (us after fork).
 *   launch N PAR CMD...           run CMD N times, PAR at once; prints the wall
 *                                 time, launches/s and each run's latency.
 *
 * Built by perf/bench.sh: cc -O2 -pthread -o BIN perf/lib/benchtool.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

static int dial(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        close(fd);
        return -1;
    }
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

static pid_t spawn(char **argv, const char *errlog)
{
    pid_t pid = fork();
    if (pid == 0) {
        int dn = open("/dev/null", O_RDWR);
        dup2(dn, 0);
        dup2(dn, 1);
        if (errlog) {
            int e = open(errlog, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            dup2(e >= 0 ? e : dn, 2);
        } else {
            dup2(dn, 2);
        }
        execvp(argv[0], argv);
        _exit(127);
    }
    return pid;
}

static void stop(pid_t pid)
{
    kill(pid, SIGTERM);
    long t0 = now_ns();
    int st;
    while (waitpid(pid, &st, WNOHANG) == 0) {
        if (now_ns() - t0 > 3000000000L) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return;
        }
        usleep(1000);
    }
}

/* Sends req; reads the whole answer (Connection: close). Returns the HTTP status or -1. */
static int exchange(const char *sock, const char *req, size_t len)
{
    char resp[8192];
    int fd = dial(sock);
    if (fd < 0)
        return -1;
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, req + off, len - off);
        if (w <= 0) {
            close(fd);
            return -1;
        }
        off += (size_t)w;
    }
    size_t got = 0;
    for (;;) {
        ssize_t r = read(fd, resp + got, sizeof(resp) - 1 - got);
        if (r <= 0)
            break;
        got += (size_t)r;
        if (got == sizeof(resp) - 1)
            break;
    }
    resp[got] = '\0';
    close(fd);
    int st;
    if (sscanf(resp, "HTTP/1.%*d %d", &st) != 1)
        return -1;
    return st;
}

static int mkreq(char *buf, size_t n, const char *method, const char *path, const char *body)
{
    return snprintf(buf, n,
                    "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nAccept: application/json\r\n%s"
                    "Content-Length: %zu\r\n\r\n%s",
                    method, path, *body ? "Content-Type: application/json\r\n" : "", strlen(body), body);
}

/* ---- sockup */
static int sockup(int n, const char *sock, int qmp, char **cmd)
{
    int fails = 0;
    for (int i = 0; i < n; i++) {
        unlink(sock);
        long t0 = now_ns();
        pid_t pid = spawn(cmd, NULL);
        long up = -1;
        while (now_ns() - t0 < 10000000000L) {
            int fd = dial(sock);
            if (fd >= 0) {
                if (qmp) {
                    char buf[4096];
                    size_t got = 0;
                    while (got < sizeof(buf) - 1) {
                        ssize_t r = read(fd, buf + got, sizeof(buf) - 1 - got);
                        if (r <= 0)
                            break;
                        got += (size_t)r;
                        buf[got] = '\0';
                        if (strstr(buf, "\"QMP\"") && strchr(buf, '\n'))
                            break;
                    }
                    buf[got] = '\0';
                    if (strstr(buf, "\"QMP\""))
                        up = now_ns() - t0;
                } else {
                    up = now_ns() - t0;
                }
                close(fd);
                break;
            }
            int st;
            if (waitpid(pid, &st, WNOHANG) == pid) {
                pid = -1;
                break;
            }
        }
        if (pid > 0)
            stop(pid);
        if (up < 0) {
            fails++;
            printf("fail\n");
        } else {
            printf("%.1f\n", up / 1000.0);
        }
        fflush(stdout);
    }
    unlink(sock);
    return fails ? 1 : 0;
}

/* ---- load */
static const char *l_sock;
static int l_per;
static long *l_lat;
static int *l_st;
static pthread_barrier_t l_go;

static void *client(void *arg)
{
    long idx = (long)arg;
    char get[512], put[512];
    int ng = mkreq(get, sizeof(get), "GET", "/", "");
    int np = mkreq(put, sizeof(put), "PUT", "/machine-config", "{\"vcpu_count\":1,\"mem_size_mib\":128}");
    pthread_barrier_wait(&l_go);
    for (int i = 0; i < l_per; i++) {
        int is_put = (i + idx) & 1;
        long t0 = now_ns();
        int st = is_put ? exchange(l_sock, put, (size_t)np) : exchange(l_sock, get, (size_t)ng);
        l_lat[idx * l_per + i] = now_ns() - t0;
        l_st[idx * l_per + i] = st;
    }
    return NULL;
}

static int cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return x < y ? -1 : x > y;
}

static int load(const char *sock, int clients, int per, const char *out)
{
    l_sock = sock, l_per = per;
    int total = clients * per;
    l_lat = calloc((size_t)total, sizeof(long));
    l_st = calloc((size_t)total, sizeof(int));
    pthread_t *t = calloc((size_t)clients, sizeof(pthread_t));
    pthread_barrier_init(&l_go, NULL, (unsigned)clients);
    long t0 = now_ns();
    for (long i = 0; i < clients; i++)
        pthread_create(&t[i], NULL, client, (void *)i);
    for (int i = 0; i < clients; i++)
        pthread_join(t[i], NULL);
    long wall = now_ns() - t0;
    int ok = 0, bad = 0;
    for (int i = 0; i < total; i++) {
        if (l_st[i] >= 200 && l_st[i] < 300)
            ok++;
        else
            bad++;
    }
    FILE *f = fopen(out, "w");
    if (f) {
        for (int i = 0; i < total; i++)
            fprintf(f, "%.1f\n", l_lat[i] / 1000.0);
        fclose(f);
    }
    qsort(l_lat, (size_t)total, sizeof(long), cmp_long);
    printf("requests=%d ok=%d bad=%d p50_us=%.1f p99_us=%.1f max_us=%.1f wall_ms=%.1f rps=%.0f\n", total, ok, bad,
           l_lat[total / 2] / 1000.0, l_lat[(total * 99) / 100] / 1000.0, l_lat[total - 1] / 1000.0, wall / 1e6,
           total / (wall / 1e9));
    return bad ? 1 : 0;
}

/* ---- apistart */
static int apistart(int n, const char *sock, const char *log, const char *kernel, const char *cmdline, char **ember)
{
    int fails = 0;
    int argc = 0;
    while (ember[argc])
        argc++;
    char **argv = calloc((size_t)argc + 6, sizeof(char *));
    for (int i = 0; i < argc; i++)
        argv[i] = ember[i];
    argv[argc] = "--api-sock";
    argv[argc + 1] = (char *)sock;
    argv[argc + 2] = "--stats";
    argv[argc + 3] = "--log-level";
    argv[argc + 4] = "info";
    char body[4096], req[8192];
    snprintf(body, sizeof(body), "{\"kernel_image_path\":\"%s\",\"boot_args\":\"%s\"}", kernel, cmdline);
    int nb = mkreq(req, sizeof(req), "PUT", "/boot-source", body);
    char act[512];
    int na = mkreq(act, sizeof(act), "PUT", "/actions", "{\"action_type\":\"InstanceStart\"}");
    for (int i = 0; i < n; i++) {
        char lp[4096];
        snprintf(lp, sizeof(lp), "%s.%d", log, i);
        unlink(sock);
        long t0 = now_ns();
        pid_t pid = spawn(argv, lp);
        int fd = -1;
        while (now_ns() - t0 < 5000000000L && (fd = dial(sock)) < 0)
            usleep(50);
        long tup = now_ns() - t0;
        if (fd >= 0)
            close(fd);
        long us = -1, offset = -1;
        if (fd >= 0 && exchange(sock, req, (size_t)nb) == 204) {
            long t1 = now_ns();
            int st = exchange(sock, act, (size_t)na);
            long t2 = now_ns();
            if (st == 204)
                us = t2 - t1, offset = t1 - t0;
        }
        /* the tiny guest resets at once; ember then exits */
        long tw = now_ns();
        int st;
        while (waitpid(pid, &st, WNOHANG) == 0) {
            if (now_ns() - tw > 5000000000L) {
                stop(pid);
                break;
            }
            usleep(200);
        }
        if (us < 0) {
            fails++;
            printf("fail\n");
        } else {
            printf("%.1f %.1f %.1f\n", us / 1000.0, offset / 1000.0, tup / 1000.0);
        }
        fflush(stdout);
    }
    unlink(sock);
    return fails ? 1 : 0;
}

/* ---- launch */
static int launch(int n, int par, char **cmd)
{
    long *start = calloc((size_t)n, sizeof(long));
    long *lat = calloc((size_t)n, sizeof(long));
    pid_t *pids = calloc((size_t)n, sizeof(pid_t));
    int next = 0, running = 0, done = 0, bad = 0;
    long t0 = now_ns();
    while (done < n) {
        while (running < par && next < n) {
            start[next] = now_ns();
            pids[next] = spawn(cmd, NULL);
            next++, running++;
        }
        int st;
        pid_t p = wait(&st);
        if (p < 0)
            break;
        long t = now_ns();
        for (int i = 0; i < next; i++)
            if (pids[i] == p) {
                lat[i] = t - start[i];
                pids[i] = 0;
            }
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            bad++;
        running--, done++;
    }
    long wall = now_ns() - t0;
    printf("wall_ms=%.3f launches=%d failed=%d per_s=%.1f\n", wall / 1e6, n, bad, n / (wall / 1e9));
    for (int i = 0; i < n; i++)
        printf("%.1f\n", lat[i] / 1000.0);
    return bad ? 1 : 0;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc >= 6 && !strcmp(argv[1], "sockup"))
        return sockup(atoi(argv[2]), argv[3], atoi(argv[4]), argv + 5);
    if (argc == 6 && !strcmp(argv[1], "load"))
        return load(argv[2], atoi(argv[3]), atoi(argv[4]), argv[5]);
    if (argc >= 8 && !strcmp(argv[1], "apistart"))
        return apistart(atoi(argv[2]), argv[3], argv[4], argv[5], argv[6], argv + 7);
    if (argc >= 5 && !strcmp(argv[1], "launch"))
        return launch(atoi(argv[2]), atoi(argv[3]), argv + 4);
    fprintf(stderr, "usage: see the comment at the top of perf/lib/benchtool.c\n");
    return 2;
}
