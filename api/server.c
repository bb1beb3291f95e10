#include "api/server.h"

#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/log.h"

/* One request on its way from the API thread to the VMM thread and back. */
struct pending {
    const char *method, *path;
    const char *body;
    size_t len;
    struct api_reply reply;
    bool done;
    struct pending *next;
};

struct api_server {
    struct MHD_Daemon *daemon;
    pthread_t thread;
    bool thread_started;
    int wake_fd;              /* eventfd: tells the API thread to stop */
    int (*thread_init)(void); /* e.g. install the API thread's seccomp filter */
    char *path;
    int listen_fd;
    int efd;
    struct event_loop *loop;
    api_handler handler;
    void *ctx;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct pending *head, *tail;
    unsigned long requests;
    bool stopping;
};

/* Per-connection upload state. */
struct upload {
    char *buf;
    size_t len;
    bool too_big;
};

void api_reply_error(struct api_reply *r, unsigned status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    json_t *o = json_pack("{s:s}", "fault_message", msg);
    if (!o) {
        /* The message echoed client bytes that are not UTF-8: replace them so the body stays JSON. */
        for (char *p = msg; *p; p++)
            if ((unsigned char)*p >= 0x80)
                *p = '?';
        o = json_pack("{s:s}", "fault_message", msg);
    }
    free(r->body);
    r->status = status;
    r->body = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
}

unsigned long api_server_requests(const struct api_server *s) { return s->requests; }

/* VMM thread: answer everything queued. */
static void on_requests(void *opaque, uint32_t events)
{
    (void)events;
    struct api_server *s = opaque;
    uint64_t cnt;
    if (read(s->efd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
        return;
    for (;;) {
        pthread_mutex_lock(&s->lock);
        struct pending *p = s->head;
        if (p) {
            s->head = p->next;
            if (!s->head)
                s->tail = NULL;
        }
        pthread_mutex_unlock(&s->lock);
        if (!p)
            return;
        p->reply.status = 500;
        s->handler(s->ctx, p->method, p->path, p->body, p->len, &p->reply);
        pthread_mutex_lock(&s->lock);
        p->done = true;
        s->requests++;
        pthread_cond_broadcast(&s->cond);
        pthread_mutex_unlock(&s->lock);
    }
}

/* API thread: queue for the VMM thread and wait for its answer. */
static void hand_over(struct api_server *s, struct pending *p)
{
    pthread_mutex_lock(&s->lock);
    if (s->stopping) {
        pthread_mutex_unlock(&s->lock);
        api_reply_error(&p->reply, 400, "The microVM is shutting down.");
        return;
    }
    p->next = NULL;
    if (s->tail)
        s->tail->next = p;
    else
        s->head = p;
    s->tail = p;
    pthread_mutex_unlock(&s->lock);
    uint64_t one = 1;
    if (write(s->efd, &one, sizeof(one)) != sizeof(one)) {
        api_reply_error(&p->reply, 500, "internal error: cannot reach the VMM thread");
        return; /* unreachable in practice: an eventfd write of 1 cannot fail short of overflow */
    }
    pthread_mutex_lock(&s->lock);
    while (!p->done)
        pthread_cond_wait(&s->cond, &s->lock);
    pthread_mutex_unlock(&s->lock);
}

static enum MHD_Result send_reply(struct MHD_Connection *c, const struct api_reply *r)
{
    const char *body = r->body ? r->body : "";
    struct MHD_Response *resp = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    if (r->body)
        MHD_add_response_header(resp, "Content-Type", "application/json");
    enum MHD_Result ret = MHD_queue_response(c, r->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                 const char *version, const char *upload_data, size_t *upload_size, void **con_cls)
{
    (void)version;
    struct api_server *s = cls;
    struct upload *u = *con_cls;
    if (!u) {
        u = calloc(1, sizeof(*u));
        if (!u)
            return MHD_NO;
        *con_cls = u;
        /* Refuse an announced oversized body before reading any of it. */
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > API_MAX_BODY)
            u->too_big = true;
        else
            return MHD_YES;
    }
    if (*upload_size && u->too_big) {
        *upload_size = 0; /* over the limit: discard the rest, answer 413 at the end */
        return MHD_YES;
    }
    if (*upload_size) {
        if (u->len + *upload_size > API_MAX_BODY) {
            u->too_big = true;
            free(u->buf);
            u->buf = NULL;
        } else {
            char *nb = realloc(u->buf, u->len + *upload_size + 1);
            if (!nb)
                return MHD_NO;
            memcpy(nb + u->len, upload_data, *upload_size);
            u->buf = nb;
            u->len += *upload_size;
            u->buf[u->len] = '\0';
        }
        *upload_size = 0;
        return MHD_YES;
    }
    struct api_reply reply = {0, NULL};
    if (u->too_big) {
        api_reply_error(&reply, 413, "Request payload is larger than the limit of %d bytes.", API_MAX_BODY);
    } else {
        struct pending p = {.method = method, .path = url, .body = u->buf ? u->buf : "", .len = u->len};
        hand_over(s, &p);
        reply = p.reply;
    }
    enum MHD_Result ret = send_reply(c, &reply);
    free(reply.body);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode t)
{
    (void)cls, (void)c, (void)t;
    struct upload *u = *con_cls;
    if (u) {
        free(u->buf);
        free(u);
        *con_cls = NULL;
    }
}

/* A socket file nobody answers on is stale: replace it. One that answers is taken. */
static int prepare_path(const char *path, struct errmsg *err)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : err_set(err, -errno, "API socket '%s': %s", path, strerror(errno));
    if (!S_ISSOCK(st.st_mode))
        return err_set(err, -EEXIST, "API socket '%s' exists and is not a socket: remove it or choose another path",
                       path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
    int live = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    if (fd >= 0)
        close(fd);
    if (live)
        return err_set(err, -EADDRINUSE, "API socket '%s' is in use by a running process", path);
    if (unlink(path) < 0)
        return err_set(err, -errno, "API socket '%s' is stale and cannot be removed: %s", path, strerror(errno));
    log_info("replaced stale API socket %s", path);
    return 0;
}

/*
 * The API thread: our own, so it can install its own seccomp filter before
 * it reads a byte from a client. It runs MHD's epoll set and a wake eventfd.
 */
static void *api_thread(void *arg)
{
    struct api_server *s = arg;
    if (s->thread_init && s->thread_init() != 0) {
        log_error("API thread: cannot install its seccomp filter; the API is closed");
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_EPOLL_FD);
    if (!info) {
        log_error("API thread: libmicrohttpd gives no epoll fd; the API is closed");
        return NULL;
    }
    int mhd_fd = info->epoll_fd;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN};
    ev.data.fd = mhd_fd;
    epoll_ctl(ep, EPOLL_CTL_ADD, mhd_fd, &ev);
    ev.data.fd = s->wake_fd;
    epoll_ctl(ep, EPOLL_CTL_ADD, s->wake_fd, &ev);
    for (;;) {
        MHD_UNSIGNED_LONG_LONG to;
        int timeout = MHD_get_timeout(s->daemon, &to) == MHD_YES ? (int)(to > 1000 ? 1000 : to) : 1000;
        struct epoll_event evs[2];
        int n = epoll_wait(ep, evs, 2, timeout);
        bool stop = false;
        for (int i = 0; i < n; i++)
            stop |= evs[i].data.fd == s->wake_fd;
        if (stop)
            break;
        MHD_run(s->daemon);
    }
    close(ep);
    return NULL;
}

int api_server_start(struct api_server **out, const char *path, struct event_loop *loop, api_handler h, void *ctx,
                     int (*thread_init)(void), struct errmsg *err)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (!path || !*path || strlen(path) >= sizeof(a.sun_path))
        return err_set(err, -ENAMETOOLONG, "API socket path must be 1 to %zu bytes", sizeof(a.sun_path) - 1);
    int rc = prepare_path(path, err);
    if (rc)
        return rc;
    struct api_server *s = calloc(1, sizeof(*s));
    if (!s || !(s->path = strdup(path))) {
        free(s);
        return err_set(err, -ENOMEM, "out of memory");
    }
    s->loop = loop;
    s->handler = h;
    s->ctx = ctx;
    s->listen_fd = s->efd = s->wake_fd = -1;
    s->thread_init = thread_init;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
    s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    /* 0600 from birth: no window in which another user could connect. */
    mode_t old = umask(0177);
    int bound = s->listen_fd >= 0 && bind(s->listen_fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    umask(old);
    if (!bound || listen(s->listen_fd, 128) < 0) {
        rc = err_set(err, -errno, "API socket '%s': %s", path, strerror(errno));
        goto fail;
    }
    s->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (s->efd < 0 || evloop_add(loop, s->efd, EPOLLIN, on_requests, s) < 0) {
        rc = err_set(err, -EIO, "API: cannot attach to the event loop");
        goto fail;
    }
    /* TURBO: no shutdown() before close and no per-connection epoll_ctl churn, 5 of ~19
     * system calls per request (strace); requests are read whole before we answer. */
    s->daemon = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_TURBO, 0, NULL, NULL, on_access, s, MHD_OPTION_LISTEN_SOCKET,
                                 s->listen_fd, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                                 MHD_OPTION_CONNECTION_LIMIT, (unsigned)512, MHD_OPTION_CONNECTION_TIMEOUT,
                                 (unsigned)30, MHD_OPTION_END);
    if (!s->daemon) {
        rc = err_set(err, -EIO, "API: cannot start the HTTP server on '%s'", path);
        goto fail;
    }
    s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (s->wake_fd < 0 || pthread_create(&s->thread, NULL, api_thread, s) != 0) {
        rc = err_set(err, -EIO, "API: cannot start its thread");
        goto fail;
    }
    pthread_setname_np(s->thread, "ember_api");
    s->thread_started = true;
    *out = s;
    return 0;
fail:
    if (s->daemon)
        MHD_stop_daemon(s->daemon);
    if (s->wake_fd >= 0)
        close(s->wake_fd);
    if (s->efd >= 0) {
        evloop_remove(loop, s->efd);
        close(s->efd);
    }
    if (s->listen_fd >= 0) {
        close(s->listen_fd);
        unlink(path);
    }
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->cond);
    free(s->path);
    free(s);
    return rc;
}

void api_server_stop(struct api_server *s)
{
    if (!s)
        return;
    /*
     * The API thread may be waiting for the VMM thread (this one): answer
     * what is queued first so MHD_stop_daemon can join it.
     */
    pthread_mutex_lock(&s->lock);
    s->stopping = true;
    for (struct pending *p = s->head; p; p = p->next) {
        api_reply_error(&p->reply, 400, "The microVM is shutting down.");
        p->done = true;
    }
    s->head = s->tail = NULL;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    uint64_t one = 1;
    if (s->thread_started && write(s->wake_fd, &one, sizeof(one)) == sizeof(one))
        pthread_join(s->thread, NULL);
    MHD_stop_daemon(s->daemon);
    close(s->wake_fd);
    if (s->listen_fd >= 0)
        close(s->listen_fd);
    unlink(s->path);
    evloop_remove(s->loop, s->efd);
    close(s->efd);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->cond);
    free(s->path);
    free(s);
}
