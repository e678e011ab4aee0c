/*
 * The output the agent forwards to the log pipe, inside the sandbox (or to
 * its stdout, the container's log, in the workspace image): the app's, never
 * blocking on the pipe (what does not fit is dropped and counted), and the
 * platform's own lines, marked.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"

/* A line the platform writes into a workspace's log starts with this byte
 * (ASCII record separator); the agent replaces it in the app's output, so an
 * app cannot write a line that passes for the platform's. */
#define PLATFORM_MARK '\x1e'

static int out_fd = -1;
/* whether what was last forwarded ended a line: a platform line must start one */
static int at_line_start = 1;
static unsigned long long dropped;

/* Takes the log pipe's write end (left at -1: no log, and nothing is written). */
void output_open(int fd) {
    out_fd = fd;
    if (out_fd >= 0) { nonblock(out_fd); fcntl(out_fd, F_SETFD, FD_CLOEXEC); }
}

/* Writes to the non-blocking log pipe; returns how many bytes went. */
static size_t out_write(const char *data, size_t n) {
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(out_fd, data + done, n - done);
        if (w > 0) { done += w; continue; }
        if (w < 0 && errno == EINTR) continue;
        break;
    }
    if (done > 0) at_line_start = data[done - 1] == '\n';
    return done;
}

/* A line of the platform's own: marked, timestamped, on a line of its own.
 * Waits up to `wait_ms` for room in the pipe (the host reads it steadily):
 * the lines that say why a workspace stopped must not be lost. */
static int platform_write(int wait_ms, const char *fmt, va_list ap) {
    if (out_fd < 0) return 0;
    char line[600];
    int k = 0;
    if (!at_line_start) line[k++] = '\n';
    line[k++] = PLATFORM_MARK;
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    k += strftime(line + k, sizeof line - k, "[atrium %H:%M:%S] ", &tm);
    int m = vsnprintf(line + k, sizeof line - k - 1, fmt, ap);
    k += m < 0 ? 0 : m;
    if (k > (int)sizeof line - 2) k = sizeof line - 2;
    line[k++] = '\n';
    /* shorter than PIPE_BUF: the pipe takes all of it or none */
    long long deadline = now_ms() + wait_ms;
    for (;;) {
        ssize_t w = write(out_fd, line, k);
        if (w == k) { at_line_start = 1; return 1; }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && errno != EAGAIN) return 0;
        long long left = deadline - now_ms();
        if (left <= 0) return 0;
        struct pollfd p = { .fd = out_fd, .events = POLLOUT };
        poll(&p, 1, (int)left);
    }
}

void platform_line(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    platform_write(2000, fmt, ap);
    va_end(ap);
}

/* A note that never waits: it is sent when there is room, else later. */
__attribute__((format(printf, 1, 2)))
static int platform_note(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int sent = platform_write(0, fmt, ap);
    va_end(ap);
    return sent;
}

/* Forwards a chunk of the app's output, the platform's mark replaced. */
void forward_output(const char *data, size_t n) {
    static char clean[BUF * 3];
    /* at most one note a second, however long the flood */
    static long long noted;
    if (dropped > 0 && now_ms() - noted >= 1000) {
        noted = now_ms();
        if (platform_note("%llu bytes of the app's output were dropped: it wrote faster than its log is kept", dropped)) dropped = 0;
    }
    size_t k = 0;
    for (size_t i = 0; i < n && k + 3 <= sizeof clean; i++) {
        if (data[i] == PLATFORM_MARK) { memcpy(clean + k, "\xef\xbf\xbd", 3); k += 3; } /* U+FFFD */
        else clean[k++] = data[i];
    }
    size_t sent = out_write(clean, k);
    if (sent < k) dropped += k - sent;
}
