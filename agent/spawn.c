/*
 * `atrium-agent spawn`: runs host commands for the control plane.
 *
 * Node starts a child with fork(), and the parent waits until the child has
 * called exec. fork() copies the page tables of the whole control plane (a
 * few hundred MB: milliseconds each time), and on a busy machine the wait for
 * the child to be scheduled is longer still, all of it blocking the event
 * loop. Ten sandboxes starting together run a few dozen commands (runc,
 * mkfs, mount); each stalled every request in flight. This process is small,
 * so its fork is cheap, and it waits for no child: the control plane only
 * writes a request to a pipe.
 *
 * Requests on stdin, replies on stdout, each a frame of native-endian 32-bit
 * words (both ends are on the same machine):
 *   request:  len id timeout_ms flags nstr input_len, then input_len bytes
 *             for the command's stdin, then nstr NUL-terminated strings: the
 *             file (found on PATH when it has no slash), then argv.
 *             flags: 1 = the command gets /dev/null for stdin, stdout and
 *             stderr (nothing of this process's, for commands that run as a
 *             workspace's user).
 *   reply:    len id status signal error out_len err_len, then both outputs.
 *             status: the exit code, or -1 when a signal ended it (signal)
 *             or it never ran (error: the errno of exec).
 * `len` counts the bytes after itself. A command past its timeout gets
 * SIGTERM; one writing more than 16 MiB to either stream is ended the same
 * way, its output cut there. When stdin closes (the control plane has gone),
 * the commands still running are waited for, then the process exits.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent.h"

#define MAX_OUTPUT (16u << 20)
#define MAX_REQUEST (1u << 24)

struct buf { char *data; size_t len, cap; };

struct job {
    uint32_t id;
    pid_t pid;
    int out, err, in;             /* pipes from and to the command; -1 once closed */
    struct buf stdout_, stderr_;
    const char *input; size_t input_len, input_off; char *request; /* the request frame holds the input */
    long long deadline;           /* 0: none */
    int exited, status, signal_, error, killed;
    struct job *next;
};

static struct job *jobs;
static struct buf replies;        /* replies not yet written to stdout */

static void append(struct buf *b, const void *data, size_t n) {
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n) cap *= 2;
        char *grown = realloc(b->data, cap);
        if (!grown) { perror("spawn: out of memory"); exit(1); }
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, n);
    b->len += n;
}

static void put32(struct buf *b, uint32_t v) { append(b, &v, 4); }

static void close_fd(int *fd) { if (*fd >= 0) { close(*fd); *fd = -1; } }

/* Starts one command; an exec failure comes back through a close-on-exec pipe as its errno. */
static void start_job(struct job *j, char **argv, const char *file, uint32_t flags) {
    int out[2] = { -1, -1 }, err[2] = { -1, -1 }, in[2] = { -1, -1 }, report[2];
    int quiet = flags & 1;
    if (pipe2(report, O_CLOEXEC) < 0 || (!quiet && (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0 || (j->input_len && pipe2(in, O_CLOEXEC) < 0)))) {
        j->error = errno;
        j->exited = 1;
        j->status = -1;
        return;
    }
    pid_t pid = fork();
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        int null = open("/dev/null", O_RDWR);
        dup2(quiet || in[0] < 0 ? null : in[0], 0);
        dup2(quiet ? null : out[1], 1);
        dup2(quiet ? null : err[1], 2);
        execvp(file, argv);
        int e = errno;
        if (write(report[1], &e, sizeof e) < 0) _exit(127);
        _exit(127);
    }
    close(report[1]);
    close_fd(&out[1]); close_fd(&err[1]); close_fd(&in[0]);
    if (pid < 0) {
        j->error = errno;
        j->exited = 1;
        j->status = -1;
        close_fd(&out[0]); close_fd(&err[0]); close_fd(&in[1]);
        close(report[0]);
        return;
    }
    /* the report pipe closes at exec (nothing read) or carries exec's errno */
    int e = 0;
    ssize_t n;
    while ((n = read(report[0], &e, sizeof e)) < 0 && errno == EINTR) {}
    close(report[0]);
    j->pid = pid;
    j->out = out[0];
    j->err = err[0];
    j->in = in[1];
    if (j->out >= 0) nonblock(j->out);
    if (j->err >= 0) nonblock(j->err);
    if (j->in >= 0) nonblock(j->in);
    if (n == sizeof e) {
        j->error = e;
        close_fd(&j->in);
    }
}

/* Reads one request frame (already whole in `frame`, `len` bytes after the length word) and starts it. */
static void request(char *frame, uint32_t len) {
    uint32_t *w = (uint32_t *)frame;
    struct job *j = calloc(1, sizeof *j);
    if (!j) { perror("spawn: out of memory"); exit(1); }
    j->out = j->err = j->in = -1;
    j->request = frame;
    if (len < 20) goto bad;
    j->id = w[0];
    uint32_t timeout = w[1], flags = w[2], nstr = w[3], input_len = w[4];
    if (nstr < 2 || nstr > 4096 || input_len > len - 20) goto bad;
    j->input = frame + 20;
    j->input_len = input_len;
    char **argv = calloc(nstr, sizeof *argv);
    if (!argv) { perror("spawn: out of memory"); exit(1); }
    char *p = frame + 20 + input_len, *end = frame + len;
    for (uint32_t i = 0; i < nstr; i++) {
        char *z = memchr(p, 0, (size_t)(end - p));
        if (!z) { free(argv); goto bad; }
        argv[i] = p;
        p = z + 1;
    }
    /* the first string is the file; the command's argv follows, given a terminating NULL */
    char **args = calloc(nstr, sizeof *args);
    if (!args) { perror("spawn: out of memory"); exit(1); }
    for (uint32_t i = 1; i < nstr; i++) args[i - 1] = argv[i];
    args[nstr - 1] = NULL;
    if (timeout) j->deadline = now_ms() + timeout;
    start_job(j, args, argv[0], flags);
    free(args);
    free(argv);
    j->next = jobs;
    jobs = j;
    return;
bad:
    fprintf(stderr, "spawn: malformed request\n");
    exit(2);
}

static void reply(struct job *j) {
    uint32_t len = 24 + (uint32_t)j->stdout_.len + (uint32_t)j->stderr_.len;
    put32(&replies, len);
    put32(&replies, j->id);
    put32(&replies, (uint32_t)j->status);
    put32(&replies, (uint32_t)j->signal_);
    put32(&replies, (uint32_t)j->error);
    put32(&replies, (uint32_t)j->stdout_.len);
    put32(&replies, (uint32_t)j->stderr_.len);
    if (j->stdout_.len) append(&replies, j->stdout_.data, j->stdout_.len);
    if (j->stderr_.len) append(&replies, j->stderr_.data, j->stderr_.len);
}

/* Reads what a command wrote; ends it when it writes too much. */
static void drain(struct job *j, int *fd, struct buf *b) {
    char chunk[BUF];
    for (;;) {
        ssize_t n = read(*fd, chunk, sizeof chunk);
        if (n > 0) {
            size_t room = b->len < MAX_OUTPUT ? MAX_OUTPUT - b->len : 0;
            append(b, chunk, (size_t)n < room ? (size_t)n : room);
            if ((size_t)n > room && !j->killed && j->pid > 0) { kill(j->pid, SIGTERM); j->killed = 1; }
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return;
        close_fd(fd);
        return;
    }
}

static void feed(struct job *j) {
    while (j->input_off < j->input_len) {
        ssize_t n = write(j->in, j->input + j->input_off, j->input_len - j->input_off);
        if (n > 0) { j->input_off += (size_t)n; continue; }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return;
        break;  /* the command closed its stdin */
    }
    close_fd(&j->in);
}

int spawn_main(int argc, char **argv) {
    (void)argc; (void)argv;
    signal(SIGPIPE, SIG_IGN);
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, NULL);
    int sfd = signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sfd < 0) { perror("signalfd"); return 1; }
    nonblock(0);
    nonblock(1);
    struct buf in = { 0 };
    int input_open = 1;
    for (;;) {
        /* finished jobs: exited, and both outputs read to the end */
        for (struct job **pp = &jobs; *pp;) {
            struct job *j = *pp;
            if (j->exited && j->out < 0 && j->err < 0) {
                close_fd(&j->in);
                reply(j);
                *pp = j->next;
                free(j->stdout_.data); free(j->stderr_.data); free(j->request); free(j);
            } else pp = &j->next;
        }
        if (replies.len) {
            ssize_t n = write(1, replies.data, replies.len);
            if (n < 0 && errno != EAGAIN && errno != EINTR) input_open = 0, replies.len = 0;  /* the control plane is gone */
            if (n > 0) { memmove(replies.data, replies.data + n, replies.len - (size_t)n); replies.len -= (size_t)n; }
        }
        if (!input_open && !jobs && !replies.len) return 0;

        size_t count = 0;
        for (struct job *j = jobs; j; j = j->next) count += 3;
        struct pollfd *fds = calloc(count + 3, sizeof *fds);
        struct job **owner = calloc(count + 3, sizeof *owner);
        if (!fds || !owner) { perror("spawn: out of memory"); return 1; }
        size_t n = 0;
        fds[n++] = (struct pollfd){ .fd = input_open ? 0 : -1, .events = POLLIN };
        fds[n++] = (struct pollfd){ .fd = replies.len ? 1 : -1, .events = POLLOUT };
        fds[n++] = (struct pollfd){ .fd = sfd, .events = POLLIN };
        long long now = now_ms(), wait = -1;
        for (struct job *j = jobs; j; j = j->next) {
            if (j->deadline && !j->exited && j->pid > 0) {
                if (now >= j->deadline) { if (!j->killed) { kill(j->pid, SIGTERM); j->killed = 1; } }
                else if (wait < 0 || j->deadline - now < wait) wait = j->deadline - now;
            }
            if (j->out >= 0) { owner[n] = j; fds[n++] = (struct pollfd){ .fd = j->out, .events = POLLIN }; }
            if (j->err >= 0) { owner[n] = j; fds[n++] = (struct pollfd){ .fd = j->err, .events = POLLIN }; }
            if (j->in >= 0) { owner[n] = j; fds[n++] = (struct pollfd){ .fd = j->in, .events = POLLOUT }; }
        }
        if (poll(fds, n, (int)wait) < 0 && errno != EINTR) { perror("poll"); return 1; }
        for (size_t i = 3; i < n; i++) {
            struct job *j = owner[i];
            if (!fds[i].revents) continue;
            if (fds[i].fd == j->out) drain(j, &j->out, &j->stdout_);
            else if (fds[i].fd == j->err) drain(j, &j->err, &j->stderr_);
            else if (fds[i].fd == j->in) feed(j);
        }
        free(fds);
        free(owner);
        if (sfd >= 0) {
            struct signalfd_siginfo si;
            while (read(sfd, &si, sizeof si) == sizeof si) {}
            int st;
            pid_t pid;
            while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
                for (struct job *j = jobs; j; j = j->next) {
                    if (j->pid != pid) continue;
                    j->exited = 1;
                    j->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
                    j->signal_ = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
                    if (j->error) j->status = -1;
                }
            }
        }
        /* new requests: frames may arrive split or several at once */
        if (input_open) {
            char chunk[BUF];
            for (;;) {
                ssize_t r = read(0, chunk, sizeof chunk);
                if (r > 0) { append(&in, chunk, (size_t)r); continue; }
                if (r < 0 && errno == EINTR) continue;
                if (r == 0) input_open = 0;
                break;
            }
            size_t off = 0;
            while (in.len - off >= 4) {
                uint32_t len;
                memcpy(&len, in.data + off, 4);
                if (len > MAX_REQUEST) { fprintf(stderr, "spawn: request of %u bytes\n", len); return 2; }
                if (in.len - off - 4 < len) break;
                /* each request gets its own copy, aligned for the word reads, kept until its job ends (it holds the input) */
                char *frame = malloc(len ? len : 1);
                if (!frame) { perror("spawn: out of memory"); return 1; }
                memcpy(frame, in.data + off + 4, len);
                request(frame, len);
                off += 4 + len;
            }
            memmove(in.data, in.data + off, in.len - off);
            in.len -= off;
        }
    }
}
