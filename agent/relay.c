/*
 * `relay`, on the host: moves the bytes of upgraded connections (WebSockets
 * through the proxy) for the control plane, so that no byte of a long-lived
 * stream crosses its event loop; see relay_main() below.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "agent.h"

/* the relay's own epoll registrations, besides the tunnels' */
enum { TAG_CTL, TAG_OUT, TAG_COUNT };

static struct conn_set tunnels;
static struct tag fixed_tags[TAG_COUNT];

/* What the relay tells the control plane, queued so that a control plane slow
 * to read never holds up a tunnel: stdout is non-blocking. */
static char *outq;
static size_t outq_len, outq_cap;
static int outq_registered;
/* a control plane that has not read this much is not reading at all */
#define OUTQ_MAX (4 << 20)

static void flush_said(void) {
    while (outq_len > 0) {
        ssize_t w = write(1, outq, outq_len);
        if (w > 0) { memmove(outq, outq + w, outq_len - w); outq_len -= w; continue; }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && errno == EAGAIN) break;
        exit(0); /* the control plane is gone, and its tunnels with it */
    }
    int want = outq_len > 0;
    if (want != outq_registered) {
        struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = &fixed_tags[TAG_OUT] };
        epoll_ctl(tunnels.ep, want ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, 1, &ev);
        outq_registered = want;
    }
}

__attribute__((format(printf, 1, 2)))
static void say(const char *fmt, ...) {
    char line[128];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (k <= 0) return;
    if ((size_t)k >= sizeof line) k = sizeof line - 1;
    if (outq_len + k > outq_cap) {
        if (outq_len + k > OUTQ_MAX) { fprintf(stderr, "atrium-agent relay: the control plane stopped reading; exiting\n"); exit(1); }
        size_t cap = outq_cap ? outq_cap * 2 : 4096;
        while (cap < outq_len + k) cap *= 2;
        char *q = realloc(outq, cap);
        if (!q) exit(1);
        outq = q; outq_cap = cap;
    }
    memcpy(outq + outq_len, line, k);
    outq_len += k;
    flush_said();
}

/* A tunnel closed: tell the control plane what it carried. */
static void tunnel_closed(const struct conn *c) {
    if (c->id > 0) say("closed %ld %llu %llu\n", c->id, c->moved[0], c->moved[1]);
}

/* Closes tunnels whose receiver stopped taking bytes for `stall_ms`, and
 * those idle for `idle_ms` (0: never). */
static void expire(long long now, long long stall_ms, long long idle_ms) {
    for (struct conn *c = tunnels.conns, *next; c; c = next) {
        next = c->next;
        int stalled = 0;
        for (int d = 0; d < 2; d++) if (c->dir[d].len > c->dir[d].off && now - c->waiting_since[d] >= stall_ms) stalled = 1;
        if ((stall_ms > 0 && stalled) || (idle_ms > 0 && now - c->last_moved >= idle_ms)) close_conn(&tunnels, c);
    }
}

static long seconds_option(const char *flag, const char *value) {
    char *end;
    long v = strtol(value, &end, 10);
    if (*end || v < 0 || v > 1 << 24) { fprintf(stderr, "atrium-agent relay: bad value for %s: %s\n", flag, value); exit(2); }
    return v;
}

/*
 * `atrium-agent relay [--stall-timeout S] [--idle-timeout S]`, started by
 * the control plane (its parent). Each line on stdin, "ID FD_A FD_B", names
 * two connected sockets among the parent's descriptors; the relay takes
 * copies with pidfd_getfd (root, its own parent), answers "took ID" (or
 * "failed ID"), after which the parent closes its copies, and moves bytes
 * both ways until both sides end, then prints "closed ID A_TO_B B_TO_A";
 * a line "close ID" ends that tunnel at once. A
 * tunnel is closed early when bytes wait for a receiver that has taken none
 * for the stall timeout, or when nothing moved either way for the idle
 * timeout (0: never). It exits when stdin closes: the control plane is
 * gone, and every relayed connection ends with it.
 */
int relay_main(int argc, char **argv) {
    /* a tunnel with bytes waiting that its receiver has not taken for
     * this long, or that moved nothing either way for that long, is closed (0: never) */
    long long stall_ms = 0, idle_ms = 0;
    for (int i = 2; i < argc; i++) {
        if (i + 1 >= argc) { fprintf(stderr, "atrium-agent relay: missing value for %s\n", argv[i]); return 2; }
        if (!strcmp(argv[i], "--stall-timeout")) stall_ms = seconds_option(argv[i], argv[i + 1]) * 1000LL;
        else if (!strcmp(argv[i], "--idle-timeout")) idle_ms = seconds_option(argv[i], argv[i + 1]) * 1000LL;
        else { fprintf(stderr, "atrium-agent relay: unknown option %s\n", argv[i]); return 2; }
        i++;
    }
    signal(SIGPIPE, SIG_IGN);
    int pidfd = (int)syscall(SYS_pidfd_open, getppid(), 0);
    if (pidfd < 0) { fprintf(stderr, "atrium-agent relay: pidfd_open: %s\n", strerror(errno)); return 1; }
    tunnels.ep = epoll_create1(EPOLL_CLOEXEC);
    tunnels.closed = tunnel_closed;
    nonblock(0);
    nonblock(1);
    fixed_tags[TAG_CTL] = (struct tag){ NULL, TAG_CTL };
    fixed_tags[TAG_OUT] = (struct tag){ NULL, TAG_OUT };
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &fixed_tags[TAG_CTL] };
    epoll_ctl(tunnels.ep, EPOLL_CTL_ADD, 0, &ev);
    static char line[4096];
    size_t have = 0;
    struct epoll_event events[MAX_EVENTS];
    long long swept = now_ms();
    for (;;) {
        int timed = (stall_ms > 0 || idle_ms > 0) && tunnels.conns != NULL;
        int n = epoll_wait(tunnels.ep, events, MAX_EVENTS, timed ? 1000 : -1);
        if (n < 0 && errno != EINTR) return 1;
        for (int i = 0; i < n; i++) {
            struct tag *t = events[i].data.ptr;
            if (t->c) { on_conn(&tunnels, t, events[i].events); continue; }
            if (t == &fixed_tags[TAG_OUT]) { flush_said(); continue; }
            ssize_t r = read(0, line + have, sizeof line - 1 - have);
            if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) return 0;
            if (r < 0) continue;
            have += r;
            char *start = line, *nl;
            while ((nl = memchr(start, '\n', line + have - start))) {
                *nl = 0;
                long id; int fa, fb;
                if (sscanf(start, "close %ld", &id) == 1 && id > 0) {
                    /* the control plane ends a tunnel (its person lost the right to it) */
                    for (struct conn *c = tunnels.conns; c; c = c->next) if (c->id == id) { close_conn(&tunnels, c); break; }
                    start = nl + 1;
                    continue;
                }
                if (sscanf(start, "%ld %d %d", &id, &fa, &fb) == 3 && id > 0) {
                    int a = (int)syscall(SYS_pidfd_getfd, pidfd, fa, 0), b = (int)syscall(SYS_pidfd_getfd, pidfd, fb, 0);
                    if (a >= 0 && b >= 0) {
                        fcntl(a, F_SETFD, FD_CLOEXEC); fcntl(b, F_SETFD, FD_CLOEXEC);
                        nonblock(a); nonblock(b);
                        if (add_conn(&tunnels, a, b, 0, id)) { say("took %ld\n", id); start = nl + 1; continue; }
                    }
                    if (a >= 0) close(a);
                    if (b >= 0) close(b);
                    say("failed %ld\n", id);
                }
                start = nl + 1;
            }
            have = line + have - start;
            memmove(line, start, have);
            if (have == sizeof line - 1) have = 0;
        }
        reap_dead(&tunnels);
        long long now = now_ms();
        if (timed && now - swept >= 1000) { expire(now, stall_ms, idle_ms); swept = now; reap_dead(&tunnels); }
    }
}
