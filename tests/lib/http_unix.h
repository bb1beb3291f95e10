/*
 * One HTTP/1.1-over-Unix-socket client for the C test and benchmark tools
 * (tests/lib/apiclient.c, perf/lib/benchtool.c): connect, send a whole
 * request, read the whole answer (the request says Connection: close), and
 * its status. Header-only: each tool is one `cc` command, built where it runs.
 */
#ifndef EMBER_TESTS_HTTP_UNIX_H
#define EMBER_TESTS_HTTP_UNIX_H

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

/* A connected socket with a read timeout of timeout_s seconds, or -1. */
static inline int http_unix_dial(const char *path, int timeout_s)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        close(fd);
        return -1;
    }
    struct timeval tv = {timeout_s, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

/* The status of an answer starting "HTTP/1.x NNN", or -1. */
static inline int http_unix_status(const char *resp)
{
    static const char prefix[] = "HTTP/1.";
    if (strncmp(resp, prefix, sizeof(prefix) - 1))
        return -1;
    const char *minor = resp + sizeof(prefix) - 1;
    char *end;
    (void)strtol(minor, &end, 10);
    if (end == minor)
        return -1;
    const char *code = end;
    errno = 0;
    long st = strtol(code, &end, 10);
    if (end == code || errno || st < INT_MIN || st > INT_MAX)
        return -1;
    return (int)st;
}

/*
 * Sends req on a new connection to path and reads the answer into resp
 * (NUL-terminated, cut at rsize - 1 bytes). Returns its status, or -1.
 */
static inline int http_unix_exchange(const char *path, int timeout_s, const char *req, size_t len, char *resp,
                                     size_t rsize)
{
    resp[0] = '\0';
    int fd = http_unix_dial(path, timeout_s);
    if (fd < 0)
        return -1;
    for (size_t off = 0; off < len;) {
        ssize_t w = write(fd, req + off, len - off);
        if (w <= 0) {
            close(fd);
            return -1;
        }
        off += (size_t)w;
    }
    size_t got = 0;
    while (got < rsize - 1) {
        ssize_t r = read(fd, resp + got, rsize - 1 - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    resp[got] = '\0';
    close(fd);
    return http_unix_status(resp);
}

/* Formats a request with a JSON body ("" for none); returns its length as snprintf does. */
static inline int http_unix_request(char *buf, size_t n, const char *method, const char *path, const char *body)
{
    return snprintf(buf, n,
                    "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nAccept: application/json\r\n%s"
                    "Content-Length: %zu\r\n\r\n%s",
                    method, path, *body ? "Content-Type: application/json\r\n" : "", strlen(body), body);
}

#endif
