#include "core/event_loop.h"

#include <errno.h>
#include <stdbool.h>
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
    /*
     * vCPU threads add fds too (a device activated by the driver's status
     * write): claim a slot atomically, fill it, then arm it in epoll.
     */
    for (int i = 0; i < EVLOOP_MAX_HANDLERS; i++) {
        struct evloop_handler *h = &l->handlers[i];
        int free_fd = -1;
        if (!__atomic_compare_exchange_n(&h->fd, &free_fd, -2, false, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
            continue;
        h->cb = cb;
        h->opaque = opaque;
        __atomic_store_n(&h->fd, fd, __ATOMIC_RELEASE);
        struct epoll_event ev = {.events = events, .data.ptr = h};
        if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
            int e = errno;
            __atomic_store_n(&h->fd, -1, __ATOMIC_RELEASE);
            return -e;
        }
        return 0;
    }
    return -ENOSPC;
}

static struct evloop_handler *find(struct event_loop *l, int fd)
{
    for (int i = 0; i < EVLOOP_MAX_HANDLERS; i++)
        if (__atomic_load_n(&l->handlers[i].fd, __ATOMIC_ACQUIRE) == fd)
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
    __atomic_store_n(&h->fd, -1, __ATOMIC_RELEASE);
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
        if (__atomic_load_n(&h->fd, __ATOMIC_ACQUIRE) >= 0) /* removed meanwhile: skip */
            h->cb(h->opaque, evs[i].events);
    }
    return n;
}
