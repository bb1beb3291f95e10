#include "event_loop.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

int evloop_init(struct event_loop *l)
{
    memset(l, 0, sizeof(*l));
    for (int i = 0; i < EVLOOP_MAX_HANDLERS; i++)
        l->handlers[i].fd = -1;
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    return l->epfd < 0 ? -errno : 0;
}

void evloop_destroy(struct event_loop *l)
{
    if (l->epfd >= 0)
        close(l->epfd);
    l->epfd = -1;
    for (int i = 0; i < EVLOOP_MAX_HANDLERS; i++)
        l->handlers[i].fd = -1; /* nothing left to serve; remove becomes a no-op */
}

int evloop_add(struct event_loop *l, int fd, uint32_t events, evloop_cb cb, void *opaque)
{
    for (int i = 0; i < EVLOOP_MAX_HANDLERS; i++) {
        struct evloop_handler *h = &l->handlers[i];
        if (h->fd != -1)
            continue;
        struct epoll_event ev = {.events = events, .data.ptr = h};
        if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
            return -errno;
        *h = (struct evloop_handler){fd, cb, opaque};
        return 0;
    }
    return -ENOSPC;
}

static struct evloop_handler *find(struct event_loop *l, int fd)
{
    for (int i = 0; i < EVLOOP_MAX_HANDLERS; i++)
        if (l->handlers[i].fd == fd)
            return &l->handlers[i];
    return NULL;
}

int evloop_modify(struct event_loop *l, int fd, uint32_t events)
{
    struct evloop_handler *h = find(l, fd);
    if (!h)
        return -ENOENT;
    struct epoll_event ev = {.events = events, .data.ptr = h};
    return epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
}

int evloop_remove(struct event_loop *l, int fd)
{
    struct evloop_handler *h = find(l, fd);
    if (!h)
        return -ENOENT;
    epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
    h->fd = -1;
    return 0;
}

int evloop_run_once(struct event_loop *l, int timeout_ms)
{
    struct epoll_event evs[16];
    int n = epoll_wait(l->epfd, evs, 16, timeout_ms);
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    for (int i = 0; i < n; i++) {
        struct evloop_handler *h = evs[i].data.ptr;
        if (h->fd != -1)
            h->cb(h->opaque, evs[i].events);
    }
    return n;
}
