/*
 * benchtool: the timing-critical parts of `make bench` (perf/bench.sh).
 *
 *   sockup N SOCK QMP CMD...      N times: fork+exec CMD, poll connect(SOCK) in
 *                                 a tight loop; QMP=1 also reads until the QMP
 *                                 greeting arrives. Prints one "us" per run.
 *   load SOCK CLIENTS PER OUT [RATE]
 *                                 CLIENTS threads each make PER requests,
 *                                 alternating GET / and PUT /machine-config
 *                                 (one connection per request). Without RATE
 *                                 each sends its next request when the last is
 *                                 answered (closed loop: measures saturation);
 *                                 with RATE the requests of all clients are
 *                                 sent on a fixed schedule of RATE per second
 *                                 in total (open loop: the latency a client
 *                                 sees at that load). Writes every latency
 *                                 (us) to OUT; prints a summary line.
 *   apistart N SOCK LOG KERNEL CMDLINE EMBER [ARGS...]
 *                                 N times: start ember --api-sock SOCK --stats,
 *                                 PUT /boot-source, then time the PUT /actions
 *                                 InstanceStart round trip. stderr of each run
 *                                 goes to LOG.<i>. Prints per run the round
 *                                 trip, when the request was sent and when
 *                                 the socket first accepted (us after fork).
 *   launch N PAR CMD...           run CMD N times, PAR at once; prints the wall
 *                                 time, launches/s and each run's latency.
 *   firstout N CMD...             start N copies of CMD at once; time each to
 *                                 its first byte on stdout, then stop them all.
 *
 * Built by perf/bench.sh: cc -O2 -pthread -o BIN perf/lib/benchtool.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/lib/http_unix.h"

static long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

/* A one-shot tool: running out of memory ends it. */
static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p) {
        fprintf(stderr, "benchtool: out of memory\n");
        exit(2);
    }
    return p;
}

/*
 * Connects to SOCK as soon as it accepts, started at t0 by PID, and stores in
 * *t_up when connect() succeeded. The wait must not take the CPU from the
 * process being timed (this host has 2 cores and a busy-polling loop made
 * ember's own start-up wait for the scheduler), so it sleeps on inotify until
 * the socket file appears, then retries connect() with 20 us naps for the few
 * microseconds between bind() and listen(). One inotify instance serves every
 * run: closing one waits for an SRCU grace period (~20 ms here), which must
 * not land between connect() and the clock reading.
 * Returns the fd, or -1 when PID exits or after 10 s.
 */
static int dial_when_up(const char *sock, long t0, pid_t pid, long *t_up)
{
    static int in = -2;
    char dir[108], *slash;
    snprintf(dir, sizeof(dir), "%s", sock);
    slash = strrchr(dir, '/');
    if (slash)
        *(slash == dir ? slash + 1 : slash) = '\0';
    else
        snprintf(dir, sizeof(dir), ".");
    if (in == -2)
        in = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (in >= 0)
        inotify_add_watch(in, dir, IN_CREATE); /* the same watch again if already there */
    int fd = -1;
    char ev[4096];
    while (in >= 0 && read(in, ev, sizeof(ev)) > 0)
        ; /* events of earlier runs */
    while (now_ns() - t0 < 10000000000L) {
        if (access(sock, F_OK) == 0) {
            fd = http_unix_dial(sock, 10);
            if (fd >= 0) {
                *t_up = now_ns();
                break;
            }
            usleep(20);
        } else if (in >= 0) {
            struct pollfd p = {.fd = in, .events = POLLIN};
            poll(&p, 1, 5); /* woken by the create; the timeout only to notice an exit */
            while (read(in, ev, sizeof(ev)) > 0)
                ;
        } else {
            usleep(20);
        }
        int st;
        if (pid > 0 && waitpid(pid, &st, WNOHANG) == pid)
            break;
    }
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

/* Sends req to sock (Connection: close); the HTTP status or -1. */
static int exchange(const char *sock, const char *req, size_t len)
{
    char resp[8192];
    return http_unix_exchange(sock, 10, req, len, resp, sizeof(resp));
}

/* ---- sockup */
static int sockup(int n, const char *sock, int qmp, char **cmd)
{
    int fails = 0;
    for (int i = 0; i < n; i++) {
        unlink(sock);
        long t0 = now_ns();
        pid_t pid = spawn(cmd, NULL);
        long up = -1, t_up = 0;
        int fd = dial_when_up(sock, t0, pid, &t_up);
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
                up = t_up - t0;
            }
            close(fd);
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
static int l_per, l_clients;
static double l_rate; /* requests/s over all clients (open loop), 0 = closed loop */
static long l_start_ns;
static long *l_lat;
static int *l_st;
static pthread_barrier_t l_go;

static void *client(void *arg)
{
    long idx = (long)arg;
    char get[512], put[512];
    int ng = http_unix_request(get, sizeof(get), "GET", "/", "");
    int np = http_unix_request(put, sizeof(put), "PUT", "/machine-config", "{\"vcpu_count\":1,\"mem_size_mib\":128}");
    pthread_barrier_wait(&l_go);
    for (int i = 0; i < l_per; i++) {
        int is_put = (i + idx) & 1;
        if (l_rate > 0) {
            /* Open loop: request k of all clients is due at k / rate, whatever the answers before it did. */
            long due = l_start_ns + (long)(((double)i * l_clients + (double)idx) * 1e9 / l_rate);
            struct timespec ts = {due / 1000000000L, due % 1000000000L};
            while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
                ;
        }
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

static int load(const char *sock, int clients, int per, const char *out, double rate)
{
    l_sock = sock, l_per = per, l_clients = clients, l_rate = rate;
    l_start_ns = now_ns() + 50000000L; /* after every thread is up */
    int total = clients * per;
    l_lat = xcalloc((size_t)total, sizeof(long));
    l_st = xcalloc((size_t)total, sizeof(int));
    pthread_t *t = xcalloc((size_t)clients, sizeof(pthread_t));
    pthread_barrier_init(&l_go, NULL, (unsigned)clients);
    long t0 = now_ns();
    for (long i = 0; i < clients; i++)
        pthread_create(&t[i], NULL, client, (void *)i);
    for (int i = 0; i < clients; i++)
        pthread_join(t[i], NULL);
    long wall = now_ns() - t0;
    free(t);
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
    int p50 = total / 2, p99 = (int)((long)total * 99 / 100); /* indices: integer division meant */
    printf("requests=%d ok=%d bad=%d p50_us=%.1f p99_us=%.1f max_us=%.1f wall_ms=%.1f rps=%.0f\n", total, ok, bad,
           l_lat[p50] / 1000.0, l_lat[p99] / 1000.0, l_lat[total - 1] / 1000.0, wall / 1e6, total / (wall / 1e9));
    free(l_lat);
    free(l_st);
    l_lat = NULL;
    l_st = NULL;
    return bad ? 1 : 0;
}

/* ---- apistart */
static int apistart(int n, const char *sock, const char *log, const char *kernel, const char *cmdline, char **ember)
{
    int fails = 0;
    int argc = 0;
    while (ember[argc])
        argc++;
    char **argv = xcalloc((size_t)argc + 6, sizeof(char *));
    for (int i = 0; i < argc; i++)
        argv[i] = ember[i];
    argv[argc] = "--api-sock";
    argv[argc + 1] = (char *)sock;
    argv[argc + 2] = "--stats";
    argv[argc + 3] = "--log-level";
    argv[argc + 4] = "info";
    char body[4096], req[8192];
    snprintf(body, sizeof(body), "{\"kernel_image_path\":\"%s\",\"boot_args\":\"%s\"}", kernel, cmdline);
    int nb = http_unix_request(req, sizeof(req), "PUT", "/boot-source", body);
    char act[512];
    int na = http_unix_request(act, sizeof(act), "PUT", "/actions", "{\"action_type\":\"InstanceStart\"}");
    for (int i = 0; i < n; i++) {
        char lp[4096];
        snprintf(lp, sizeof(lp), "%s.%d", log, i);
        unlink(sock);
        long t0 = now_ns();
        pid_t pid = spawn(argv, lp);
        long t_up = 0;
        int fd = dial_when_up(sock, t0, pid, &t_up);
        long tup = t_up - t0;
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
    free(argv);
    return fails ? 1 : 0;
}

/* ---- launch */
static int launch(int n, int par, char **cmd)
{
    long *start = xcalloc((size_t)n, sizeof(long));
    long *lat = xcalloc((size_t)n, sizeof(long));
    pid_t *pids = xcalloc((size_t)n, sizeof(pid_t));
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
    free(start);
    free(lat);
    free(pids);
    return bad ? 1 : 0;
}

/* ---- firstout */
/*
 * Launches N copies of CMD back to back (all running at once), each with its
 * stdout on a pipe, and times each from its fork to the first byte it prints
 * (for the tiny guest's `idle` test: the guest's first console line, so the
 * VM is built and its vCPU has run). Then SIGTERMs them all and waits.
 * Prints "wall_ms=W launched=N up=U per_s=R stop_ms=S" and each latency (us).
 */
static int firstout(int n, char **cmd)
{
    long *start = xcalloc((size_t)n, sizeof(long)), *lat = xcalloc((size_t)n, sizeof(long));
    pid_t *pids = xcalloc((size_t)n, sizeof(pid_t));
    struct pollfd *pf = xcalloc((size_t)n, sizeof(struct pollfd));
    long t0 = now_ns();
    for (int i = 0; i < n; i++) {
        int pp[2];
        pf[i].fd = -1;
        if (pipe2(pp, O_CLOEXEC) < 0)
            continue;
        start[i] = now_ns();
        pids[i] = fork();
        if (pids[i] == 0) {
            int dn = open("/dev/null", O_RDWR);
            dup2(dn, 0);
            dup2(pp[1], 1);
            dup2(dn, 2);
            execvp(cmd[0], cmd);
            _exit(127);
        }
        close(pp[1]);
        pf[i].fd = pp[0];
        pf[i].events = POLLIN;
    }
    int up = 0;
    long last = t0;
    while (up < n && now_ns() - t0 < 60000000000L) {
        if (poll(pf, (nfds_t)n, 1000) <= 0)
            continue;
        long t = now_ns();
        for (int i = 0; i < n; i++) {
            if (pf[i].fd < 0 || !(pf[i].revents & (POLLIN | POLLHUP)))
                continue;
            char b[256];
            ssize_t r = read(pf[i].fd, b, sizeof(b));
            if (r > 0) {
                lat[i] = t - start[i];
                up++;
                last = t;
            }
            close(pf[i].fd); /* one byte is enough; ember's later writes get EPIPE, which it ignores */
            pf[i].fd = -1;
        }
    }
    long wall = last - t0;
    long s0 = now_ns();
    for (int i = 0; i < n; i++)
        if (pids[i] > 0)
            kill(pids[i], SIGTERM);
    int bad = 0;
    for (int i = 0; i < n; i++) {
        int st;
        if (pids[i] > 0 && (waitpid(pids[i], &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0))
            bad++;
        if (pf[i].fd >= 0)
            close(pf[i].fd);
    }
    long stop = now_ns() - s0;
    printf("wall_ms=%.3f launched=%d up=%d per_s=%.1f stop_ms=%.1f bad_exit=%d\n", wall / 1e6, n, up, up / (wall / 1e9),
           stop / 1e6, bad);
    for (int i = 0; i < n; i++)
        if (lat[i])
            printf("%.1f\n", lat[i] / 1000.0);
    free(start);
    free(lat);
    free(pids);
    free(pf);
    return up == n ? 0 : 1;
}

/* A whole decimal integer in [min, max], or false. */
static bool parse_int(const char *s, int min, int max, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno || v < min || v > max)
        return false;
    *out = (int)v;
    return true;
}

/* A finite number >= 0 (the whole string), or false. */
static bool parse_rate(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno || !isfinite(v) || v < 0)
        return false;
    *out = v;
    return true;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    int n, qmp, clients, per, par;
    double rate = 0;
    if (argc >= 6 && !strcmp(argv[1], "sockup") && parse_int(argv[2], 0, INT_MAX, &n) && parse_int(argv[4], 0, 1, &qmp))
        return sockup(n, argv[3], qmp, argv + 5);
    /* at least one request (the summary reads the slowest), and no more than an int counts */
    if ((argc == 6 || argc == 7) && !strcmp(argv[1], "load") && parse_int(argv[3], 1, INT_MAX, &clients) &&
        parse_int(argv[4], 1, INT_MAX / clients, &per) && (argc == 6 || parse_rate(argv[6], &rate)))
        return load(argv[2], clients, per, argv[5], rate);
    if (argc >= 8 && !strcmp(argv[1], "apistart") && parse_int(argv[2], 0, INT_MAX, &n))
        return apistart(n, argv[3], argv[4], argv[5], argv[6], argv + 7);
    if (argc >= 4 && !strcmp(argv[1], "firstout") && parse_int(argv[2], 0, INT_MAX, &n))
        return firstout(n, argv + 3);
    if (argc >= 5 && !strcmp(argv[1], "launch") && parse_int(argv[2], 0, INT_MAX, &n) &&
        parse_int(argv[3], 1, INT_MAX, &par))
        return launch(n, par, argv + 4);
    fprintf(stderr, "usage: see the comment at the top of perf/lib/benchtool.c\n");
    return 2;
}
