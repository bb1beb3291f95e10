/*
 * apiclient: the API test's (tests/integration/t_api.sh) HTTP-over-Unix-socket
 * client: concurrent load with latencies, raw requests, exec-to-socket time.
 * Built by the test itself (cc -I<repo>), like perf/lib/benchtool.c.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
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

#include "tests/lib/http_unix.h"

static const char *sock_path, *method, *path, *body;
static int per_client;
static pthread_barrier_t go;
static long *lat_us; /* one per request */
static int *status;  /* one per request */
static int raw_mode; /* raw: a short read timeout (a server that waits for more is a "NO-RESPONSE") */

static long now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000L + ts.tv_nsec / 1000;
}

static int timeout_s(void) { return raw_mode ? 3 : 10; }

static int dial(void) { return http_unix_dial(sock_path, timeout_s()); }

/* Sends buf, reads the whole answer (the server closes: Connection: close); returns the status or -1. */
static int exchange(const char *buf, size_t len, char *resp, size_t rsize)
{
    return http_unix_exchange(sock_path, timeout_s(), buf, len, resp, rsize);
}

static void *client(void *arg)
{
    long idx = (long)arg;
    char req[4096], resp[8192];
    int n = http_unix_request(req, sizeof(req), method, path, body);
    pthread_barrier_wait(&go);
    for (int i = 0; i < per_client; i++) {
        long t0 = now_us();
        int st = exchange(req, (size_t)n, resp, sizeof(resp));
        lat_us[idx * per_client + i] = now_us() - t0;
        status[idx * per_client + i] = st;
    }
    return NULL;
}

static int cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return x < y ? -1 : x > y;
}

/* load SOCK METHOD PATH BODY CLIENTS PER_CLIENT */
static int load(char **argv)
{
    sock_path = argv[0], method = argv[1], path = argv[2], body = argv[3];
    char *e1, *e2;
    long clients = strtol(argv[4], &e1, 10), per = strtol(argv[5], &e2, 10);
    if (*e1 || *e2 || clients < 1 || per < 1 || clients > 10000 || per > 100000) {
        fprintf(stderr, "apiclient: CLIENTS (1-10000) and PER_CLIENT (1-100000) must be numbers\n");
        return 2;
    }
    per_client = (int)per;
    int total = (int)(clients * per);
    lat_us = calloc((size_t)total, sizeof(long));
    status = calloc((size_t)total, sizeof(int));
    pthread_t *t = calloc((size_t)clients, sizeof(pthread_t));
    if (!lat_us || !status || !t) {
        fprintf(stderr, "apiclient: out of memory\n");
        free(lat_us), free(status), free(t);
        return 2;
    }
    pthread_barrier_init(&go, NULL, (unsigned)clients);
    long t0 = now_us();
    for (long i = 0; i < clients; i++)
        pthread_create(&t[i], NULL, client, (void *)i);
    for (long i = 0; i < clients; i++)
        pthread_join(t[i], NULL);
    free(t);
    long wall = now_us() - t0;
    int c2xx = 0, c4xx = 0, c5xx = 0, fail = 0, c200 = 0, c204 = 0;
    for (int i = 0; i < total; i++) {
        c200 += status[i] == 200;
        c204 += status[i] == 204;
        c2xx += status[i] >= 200 && status[i] < 300;
        c4xx += status[i] >= 400 && status[i] < 500;
        c5xx += status[i] >= 500;
        fail += status[i] < 0;
    }
    qsort(lat_us, (size_t)total, sizeof(long), cmp_long);
    printf("requests=%d 200=%d 204=%d 2xx=%d 4xx=%d 5xx=%d failed=%d p50_us=%ld p99_us=%ld max_us=%ld wall_ms=%ld\n",
           total, c200, c204, c2xx, c4xx, c5xx, fail, lat_us[total / 2], lat_us[(total * 99) / 100], lat_us[total - 1],
           wall / 1000);
    free(lat_us);
    free(status);
    return 0;
}

/* raw SOCK: sends stdin as is, prints the answer's status line (or NO-RESPONSE). */
static int raw(char **argv)
{
    sock_path = argv[0];
    raw_mode = 1;
    static char req[1 << 20], resp[65536];
    size_t len = fread(req, 1, sizeof(req), stdin);
    int st = exchange(req, len, resp, sizeof(resp));
    if (st < 0) {
        printf("NO-RESPONSE\n");
        return 0;
    }
    char *eol = strstr(resp, "\r\n");
    if (eol)
        *eol = '\0';
    printf("%s\n", resp);
    return 0;
}

/* startup SOCK CMD ARGS...: exec, poll connect() until it succeeds; prints startup_us; SIGTERM; prints exit. */
static int startup(char **argv)
{
    sock_path = argv[0];
    long t0 = now_us();
    pid_t pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", 0);
        dup2(devnull, 0);
        execvp(argv[1], argv + 1);
        _exit(127);
    }
    long up = -1;
    int fd = -1;
    while (now_us() - t0 < 5000000L) {
        if ((fd = dial()) >= 0) {
            up = now_us() - t0;
            close(fd);
            break;
        }
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            printf("startup_us=-1 exited-early\n");
            return 1;
        }
        usleep(20);
    }
    char resp[4096];
    const char *get = "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    int gst = exchange(get, strlen(get), resp, sizeof(resp));
    kill(pid, SIGTERM);
    int st = 0;
    waitpid(pid, &st, 0);
    printf("startup_us=%ld get=%d exit=%d\n", up, gst, WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
    return up < 0;
}

int main(int argc, char **argv)
{
    if (argc >= 8 && strcmp(argv[1], "load") == 0)
        return load(argv + 2);
    if (argc == 3 && strcmp(argv[1], "raw") == 0)
        return raw(argv + 2);
    if (argc >= 4 && strcmp(argv[1], "startup") == 0)
        return startup(argv + 2);
    fprintf(stderr,
            "usage: apiclient load SOCK METHOD PATH BODY CLIENTS PER_CLIENT | raw SOCK | startup SOCK CMD...\n");
    return 2;
}
