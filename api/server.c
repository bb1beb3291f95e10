#include "api/server.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "api/http_conn.h"
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
    struct http_conns conns; /* API thread only */
};

void api_reply_error(struct api_reply *r, unsigned status, const char *fmt, ...)
{
    char raw[1024], msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof(raw), fmt, ap);
    va_end(ap);
    /* One line of valid UTF-8 (so JSON) whatever the message quotes from the request. */
    json_t *o = json_pack("{s:s}", "fault_message", err_quote(msg, sizeof(msg), raw));
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

/* API thread: one request read whole by http_conn.c, answered by the VMM thread. */
static void serve(void *ctx, const char *method, const char *path, const char *body, size_t len, struct api_reply *r)
{
    struct pending p = {.method = method, .path = path, .body = body, .len = len};
    hand_over(ctx, &p);
    *r = p.reply;
}

/*
 * The API thread: our own, so it can install its own seccomp filter before
 * it reads a byte from a client. It serves the listening socket and its
 * connections until wake_fd says stop, then closes them all.
 */
static void *api_thread(void *arg)
{
    struct api_server *s = arg;
    if (s->thread_init && s->thread_init() != 0) {
        log_error("API thread: cannot install its seccomp filter; the API is closed");
        return NULL;
    }
    for (bool stop = false; !stop;) {
        struct epoll_event evs[32];
        int n = epoll_wait(s->conns.ep, evs, 32, http_conns_expire(&s->conns));
        bool incoming = false;
        for (int i = 0; i < n && !stop; i++) {
            if (evs[i].data.ptr == &s->wake_fd)
                stop = true;
            else if (evs[i].data.ptr == &s->listen_fd)
                incoming = true;
            else
                http_conns_event(&s->conns, evs[i].data.ptr, evs[i].events);
        }
        /* Last: accepting may evict (free) a connection that still had an event in evs. */
        if (incoming && !stop)
            http_conns_accept(&s->conns);
    }
    http_conns_close_all(&s->conns);
    return NULL;
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
    s->listen_fd = s->efd = s->wake_fd = s->conns.ep = s->conns.listen_fd = -1;
    s->conns.serve = serve;
    s->conns.ctx = s;
    s->thread_init = thread_init;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
    s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    /* 0600 from birth: no window in which another user could connect. */
    mode_t old = umask(0177);
    int bound = s->listen_fd >= 0 && bind(s->listen_fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    umask(old);
    if (!bound || listen(s->listen_fd, API_MAX_CONNS) < 0) {
        rc = err_set(err, -errno, "API socket '%s': %s", path, strerror(errno));
        goto fail;
    }
    s->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (s->efd < 0 || evloop_add(loop, s->efd, EPOLLIN, on_requests, s) < 0) {
        rc = err_set(err, -EIO, "API: cannot attach to the event loop");
        goto fail;
    }
    s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    s->conns.listen_fd = s->listen_fd;
    s->conns.ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = &s->listen_fd};
    struct epoll_event wev = {.events = EPOLLIN, .data.ptr = &s->wake_fd};
    if (s->wake_fd < 0 || s->conns.ep < 0 || epoll_ctl(s->conns.ep, EPOLL_CTL_ADD, s->listen_fd, &lev) < 0 ||
        epoll_ctl(s->conns.ep, EPOLL_CTL_ADD, s->wake_fd, &wev) < 0 ||
        pthread_create(&s->thread, NULL, api_thread, s) != 0) {
        rc = err_set(err, -EIO, "API: cannot start its thread");
        goto fail;
    }
    pthread_setname_np(s->thread, "fc_api"); /* Firecracker's name, for tools that look for it */
    s->thread_started = true;
    *out = s;
    return 0;
fail:
    if (s->conns.ep >= 0)
        close(s->conns.ep);
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
     * what is queued first so it can see the wake-up and end. It closes the
     * connections clients still hold itself (this thread's filter need not
     * allow it).
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
    http_conns_close_all(&s->conns); /* when the thread never ran: nothing was accepted, but be sure */
    close(s->conns.ep);
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
