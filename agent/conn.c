/*
 * Relayed connections: two sockets, one buffer per direction. Used by the
 * agent for HTTP inside the sandbox and by `relay` on the host.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent.h"

/* Sets what each socket waits for. A socket that waits for nothing is taken
 * out of epoll altogether: epoll reports hang-up and error whatever the mask,
 * so a hung-up socket left in while its bytes cannot move would be reported
 * again at once, for ever. The kernel is asked only when something changes,
 * which in a steady stream (read, then written out at once) is never. */
static void update(struct conn_set *set, struct conn *c, struct tag *tags) {
    for (int s = 0; s < 2; s++) {
        if (c->fd[s] < 0) continue;
        uint32_t want = 0;
        /* read side s when the buffer toward the other side has room */
        if (!c->dir[s].eof && c->dir[s].len == 0 && !(s == 1 && c->connecting)) want |= EPOLLIN;
        /* write side s when the other direction has bytes for it, or while connecting */
        if (c->dir[1 - s].len > c->dir[1 - s].off || (s == 1 && c->connecting)) want |= EPOLLOUT;
        if (want == 0) {
            if (c->registered[s]) { epoll_ctl(set->ep, EPOLL_CTL_DEL, c->fd[s], NULL); c->registered[s] = 0; }
            continue;
        }
        if (c->registered[s] && want == c->mask[s]) continue;
        struct epoll_event ev = { .events = want, .data.ptr = &tags[s] };
        epoll_ctl(set->ep, c->registered[s] ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd[s], &ev);
        c->registered[s] = 1;
        c->mask[s] = want;
    }
}

void close_conn(struct conn_set *set, struct conn *c) {
    if (c->closed) return;
    /* taken out of epoll first: a relayed socket's registration outlives close() while the control plane still holds its own copy */
    for (int s = 0; s < 2; s++) if (c->fd[s] >= 0) { if (c->registered[s]) epoll_ctl(set->ep, EPOLL_CTL_DEL, c->fd[s], NULL); close(c->fd[s]); c->fd[s] = -1; }
    c->closed = 1;
    if (c->prev) c->prev->next = c->next; else set->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    if (set->closed) set->closed(c);
    c->next_dead = set->dead;
    set->dead = c;
}

void reap_dead(struct conn_set *set) {
    while (set->dead) { struct conn *c = set->dead; set->dead = c->next_dead; free(c); }
}

/* Starts relaying between two non-blocking sockets this process owns (`b` still connecting, or not). */
struct conn *add_conn(struct conn_set *set, int a, int b, int connecting, long id) {
    struct conn *c = calloc(1, sizeof *c + 2 * sizeof(struct tag));
    if (!c) return NULL;
    struct tag *tags = (struct tag *)(c + 1);
    c->fd[0] = a; c->fd[1] = b; c->connecting = connecting; c->id = id;
    c->last_moved = c->waiting_since[0] = c->waiting_since[1] = now_ms();
    tags[0] = (struct tag){ c, 0 }; tags[1] = (struct tag){ c, 1 };
    c->next = set->conns;
    if (set->conns) set->conns->prev = c;
    set->conns = c;
    update(set, c, tags);
    return c;
}

void on_conn(struct conn_set *set, struct tag *t, uint32_t events) {
    struct conn *c = t->c;
    if (c->closed) return;
    struct tag *tags = (struct tag *)(c + 1);
    int s = t->side;
    /* an error on either socket (a reset, a refused connect) ends the pair */
    if (events & EPOLLERR) { close_conn(set, c); return; }
    if (s == 1 && c->connecting) {
        int err = 0; socklen_t l = sizeof err;
        getsockopt(c->fd[1], SOL_SOCKET, SO_ERROR, &err, &l);
        if (err || (events & EPOLLHUP)) { close_conn(set, c); return; }
        c->connecting = 0;
    }
    long long now = now_ms();
    if (events & (EPOLLIN | EPOLLHUP)) {
        struct pipe_ *p = &c->dir[s];
        if (p->len == 0 && !p->eof) {
            ssize_t n = read(c->fd[s], p->buf, BUF);
            if (n > 0) { p->len = n; p->off = 0; c->moved[s] += n; c->last_moved = now; c->waiting_since[s] = now; }
            else if (n == 0 || (errno != EAGAIN && errno != EINTR)) { p->eof = 1; shutdown(c->fd[1 - s], SHUT_WR); }
        }
    }
    for (int d = 0; d < 2; d++) {
        struct pipe_ *p = &c->dir[d];
        while (p->off < p->len) {
            ssize_t n = write(c->fd[1 - d], p->buf + p->off, p->len - p->off);
            if (n > 0) { p->off += n; c->last_moved = now; c->waiting_since[d] = now; }
            else if (n < 0 && (errno == EAGAIN || errno == EINTR)) break;
            else { close_conn(set, c); return; }
        }
        if (p->off == p->len) p->len = p->off = 0;
    }
    if (c->dir[0].eof && c->dir[1].eof && c->dir[0].len == 0 && c->dir[1].len == 0) { close_conn(set, c); return; }
    update(set, c, tags);
}
