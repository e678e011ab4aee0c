/*
 * `atrium-agent pipe`: the byte mover behind `atrium ssh --stdio` on a
 * person's machine. OpenSSH runs the tunnel as its ProxyCommand and talks to
 * it through stdin and stdout; the CLI makes the authenticated HTTP upgrade,
 * then hands the upgraded socket to this process as descriptor 3. From then
 * on the bytes go stdin → socket and socket → stdout with splice(2) (through
 * the kernel, never copied into a process) where it can, read/write where it
 * cannot. The socket's end of input closes stdout; stdin's end shuts the
 * socket's writing side (half-close, as SSH expects); it exits when both
 * ways are done, or when either side fails.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent.h"

#define CHUNK (1 << 20)

/* One direction: from `in` to `out`, through a kernel pipe when splice works. */
struct way {
    int in, out;
    int pipe[2];          /* the kernel buffer between them (splice), or -1 */
    size_t pending;       /* bytes in that pipe, not yet written out */
    char *buf;            /* the read/write fallback */
    size_t off, len;
    int done;
};

/* Moves what it can without blocking; returns -1 on a failure, 1 when the input ended and everything was written. */
static int step(struct way *w) {
    for (;;) {
        if (w->pipe[0] >= 0) {
            if (w->pending > 0) {
                ssize_t n = splice(w->pipe[0], NULL, w->out, NULL, w->pending, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
                if (n < 0) return errno == EAGAIN ? 0 : -1;
                w->pending -= (size_t)n;
                continue;
            }
            ssize_t n = splice(w->in, NULL, w->pipe[1], NULL, CHUNK, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
            if (n == 0) return 1;
            if (n < 0) {
                if (errno == EAGAIN) return 0;
                if (errno == EINVAL) { close(w->pipe[0]); close(w->pipe[1]); w->pipe[0] = w->pipe[1] = -1; continue; } /* not spliceable: copy instead */
                return -1;
            }
            w->pending = (size_t)n;
            continue;
        }
        if (w->off < w->len) {
            ssize_t n = write(w->out, w->buf + w->off, w->len - w->off);
            if (n < 0) return errno == EAGAIN ? 0 : -1;
            w->off += (size_t)n;
            continue;
        }
        ssize_t n = read(w->in, w->buf, CHUNK);
        if (n == 0) return 1;
        if (n < 0) return errno == EAGAIN ? 0 : -1;
        w->off = 0;
        w->len = (size_t)n;
    }
}

int pipe_main(int argc, char **argv) {
    (void)argv;
    if (argc != 2) { fprintf(stderr, "usage: atrium-agent pipe (with the upgraded socket as descriptor 3)\n"); return 2; }
    signal(SIGPIPE, SIG_IGN);
    static char up_buf[CHUNK], down_buf[CHUNK];
    struct way up = { .in = 0, .out = 3, .buf = up_buf }, down = { .in = 3, .out = 1, .buf = down_buf };
    struct way *ways[2] = { &up, &down };
    for (int i = 0; i < 2; i++) {
        if (pipe2(ways[i]->pipe, O_NONBLOCK | O_CLOEXEC) < 0) ways[i]->pipe[0] = ways[i]->pipe[1] = -1;
        else fcntl(ways[i]->pipe[1], F_SETPIPE_SZ, CHUNK);
    }
    for (int fd = 0; fd <= 3; fd++) if (fd != 2) nonblock(fd);
    while (!up.done || !down.done) {
        for (int i = 0; i < 2; i++) {
            struct way *w = ways[i];
            if (w->done) continue;
            int r = step(w);
            if (r < 0) return 1;
            if (r == 1) {
                w->done = 1;
                if (w == &up) shutdown(3, SHUT_WR); else close(1);
            }
        }
        if (down.done && up.done) break;
        /* the peer closed the socket: what stdin still has has nowhere to go */
        if (down.done && !up.done) break;
        struct pollfd p[4];
        int n = 0;
        for (int i = 0; i < 2; i++) {
            struct way *w = ways[i];
            if (w->done) continue;
            int writing = w->pipe[0] >= 0 ? w->pending > 0 : w->off < w->len;
            p[n++] = (struct pollfd){ .fd = writing ? w->out : w->in, .events = writing ? POLLOUT : POLLIN };
        }
        if (poll(p, n, -1) < 0 && errno != EINTR) return 1;
    }
    return 0;
}
