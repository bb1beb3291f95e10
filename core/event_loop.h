/*
 * The device event loop: one epoll set served by the VMM thread. Devices
 * register fds (ioeventfds, taps, io_uring completions) with a callback;
 * callbacks run on the VMM thread, never on a vCPU thread.
 */
#ifndef EMBER_EVENT_LOOP_H
#define EMBER_EVENT_LOOP_H

#include <stdint.h>
#include <sys/epoll.h>

#define EVLOOP_MAX_HANDLERS 64

typedef void (*evloop_cb)(void *opaque, uint32_t events);

struct evloop_handler {
    int fd;
    evloop_cb cb;
    void *opaque;
};

struct event_loop {
    int epfd;
    struct evloop_handler handlers[EVLOOP_MAX_HANDLERS];
};

int evloop_init(struct event_loop *l);
void evloop_destroy(struct event_loop *l);
/* events: EPOLLIN / EPOLLOUT / ...; returns -errno. */
int evloop_add(struct event_loop *l, int fd, uint32_t events, evloop_cb cb, void *opaque);
int evloop_modify(struct event_loop *l, int fd, uint32_t events);
int evloop_remove(struct event_loop *l, int fd);
/* Waits up to timeout_ms (-1: forever) and runs the ready callbacks; returns how many ran. */
int evloop_run_once(struct event_loop *l, int timeout_ms);

#endif
