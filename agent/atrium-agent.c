/*
 * atrium-agent: the platform's process inside a local workspace sandbox, and
 * its two helpers on the host.
 *
 * Inside the sandbox it is PID 1. The sandbox's network namespace holds only
 * loopback. The host binds two Unix sockets in a root-only directory and
 * passes the listening descriptors in, with the write end of a pipe to the
 * host-side log writer; this agent
 *   - relays each connection on the HTTP socket to the app's TCP port on
 *     127.0.0.1 (Jupyter, or a custom app),
 *   - hands each connection on the SSH socket to a fresh `sshd -i` running as
 *     the workspace user,
 *   - runs the app with its output on a pipe of its own, and forwards that
 *     output to the log pipe, never blocking on it (what does not fit is
 *     dropped and counted), with its own lines marked (see platform_line).
 * It reaps every orphan, exits when the app exits (the sandbox then stops)
 * and passes SIGTERM to every process in the sandbox.
 *
 * Code in the workspace runs as the same uid as this agent. The agent makes
 * itself non-dumpable first thing, so that code can neither read nor write
 * its memory (/proc/1/mem) nor open its descriptors (/proc/1/fd): the
 * listening sockets and the log pipe stay the platform's. The app and sshd
 * get none of them (all close-on-exec). The log file itself is never inside
 * the sandbox: only the host-side writer holds it.
 *
 * Usage, inside the sandbox:
 *   atrium-agent --out-fd N --http-fd N --ssh-fd N [--port P] [-- app args...]
 * and on the host, as root, to create what it is given and start the sandbox:
 *   atrium-agent launch --log FILE --writer-pid FILE --http SOCK --ssh SOCK
 *                       [--log-max BYTES] [--log-rate BYTES] -- runc run --preserve-fds 3 ...
 * `launch` opens the log file, makes the log pipe, binds and listens on both
 * Unix sockets (mode 0600, in the caller's root-only directory), starts the
 * log writer (below), places the pipe's write end and the sockets at
 * descriptors 3, 4 and 5 and execs the command. Binding here rather than in
 * the control plane keeps the listening sockets out of the control plane's
 * own process, so nothing there accepts on them or unlinks them when it exits.
 *
 * The log writer is a host process of its own (root, outside the sandbox,
 * in a session of its own so it outlives a restart of the control plane):
 * it reads the log pipe and appends to the log file, keeping it below
 * --log-max by dropping the oldest half, and reads no faster than
 * --log-rate bytes a second, so a workspace that floods its output costs
 * the host a bounded amount of work. Its pid is in --writer-pid while it
 * runs; it removes that file when the pipe has closed and everything is
 * written.
 *
 * On the host, `atrium-agent relay` moves the bytes of upgraded connections
 * (WebSockets through the proxy) for the control plane, so that no byte of
 * a long-lived stream crosses its event loop; see relay() below.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#define BUF 65536
#define MAX_EVENTS 64
/* A line the platform writes into a workspace's log starts with this byte
 * (ASCII record separator); the agent replaces it in the app's output, so an
 * app cannot write a line that passes for the platform's. */
#define PLATFORM_MARK '\x1e'

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void nonblock(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

static int number(const char *s) { char *end; long v = strtol(s, &end, 10); if (*end || v < 0 || v > 1 << 30) { fprintf(stderr, "bad number %s\n", s); exit(2); } return (int)v; }

/* ---------------------------------------------------------------------------
 * The output the agent forwards to the log pipe.
 */

static int out_fd = -1;
/* whether what was last forwarded ended a line: a platform line must start one */
static int at_line_start = 1;
static unsigned long long dropped;

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

static void platform_line(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    platform_write(2000, fmt, ap);
    va_end(ap);
}

/* A note that never waits: it is sent when there is room, else later. */
static int platform_note(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int sent = platform_write(0, fmt, ap);
    va_end(ap);
    return sent;
}

/* Forwards a chunk of the app's output, the platform's mark replaced. */
static void forward_output(const char *data, size_t n) {
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

/* ---------------------------------------------------------------------------
 * Relayed connections: two sockets, one buffer per direction. Used by the
 * agent for HTTP inside the sandbox and by `relay` on the host.
 */

struct pipe_ { char buf[BUF]; size_t len, off; int eof; };
struct conn {
    int fd[2];
    struct pipe_ dir[2];          /* dir[s]: read from side s, to be written to the other side */
    int connecting, closed;
    uint32_t mask[2];             /* what each socket is registered for */
    int registered[2];
    long id;
    unsigned long long moved[2];
    long long last_moved;         /* when a byte last moved either way */
    long long waiting_since[2];   /* when dir[s] last had no bytes waiting, or last moved some */
    struct conn *prev, *next;     /* every open connection, for the timeouts */
    struct conn *next_dead;
};
/* An epoll registration names a connection and which of its two sockets. */
struct tag { struct conn *c; int side; };
enum { TAG_HTTP = 1, TAG_SSH, TAG_SIG, TAG_APP, TAG_CTL, TAG_OUT, TAG_COUNT };

static int ep;
static struct tag fixed_tags[TAG_COUNT];
static struct conn *conns;
/* relay only: a tunnel with bytes waiting that its receiver has not taken for
 * this long, or that moved nothing either way for that long, is closed (0: never) */
static long long stall_ms, idle_ms;

static void say(const char *fmt, ...);

/* Sets what each socket waits for. A socket that waits for nothing is taken
 * out of epoll altogether: epoll reports hang-up and error whatever the mask,
 * so a hung-up socket left in while its bytes cannot move would be reported
 * again at once, for ever. The kernel is asked only when something changes,
 * which in a steady stream (read, then written out at once) is never. */
static void update(struct conn *c, struct tag *tags) {
    for (int s = 0; s < 2; s++) {
        if (c->fd[s] < 0) continue;
        uint32_t want = 0;
        /* read side s when the buffer toward the other side has room */
        if (!c->dir[s].eof && c->dir[s].len == 0 && !(s == 1 && c->connecting)) want |= EPOLLIN;
        /* write side s when the other direction has bytes for it, or while connecting */
        if (c->dir[1 - s].len > c->dir[1 - s].off || (s == 1 && c->connecting)) want |= EPOLLOUT;
        if (want == 0) {
            if (c->registered[s]) { epoll_ctl(ep, EPOLL_CTL_DEL, c->fd[s], NULL); c->registered[s] = 0; }
            continue;
        }
        if (c->registered[s] && want == c->mask[s]) continue;
        struct epoll_event ev = { .events = want, .data.ptr = &tags[s] };
        epoll_ctl(ep, c->registered[s] ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd[s], &ev);
        c->registered[s] = 1;
        c->mask[s] = want;
    }
}

/* Closed connections are freed only after the whole batch of events is handled:
 * a later event in the same batch may still name the other socket of the pair. */
static struct conn *dead;

static void close_conn(struct conn *c) {
    if (c->closed) return;
    /* taken out of epoll first: a relayed socket's registration outlives close() while the control plane still holds its own copy */
    for (int s = 0; s < 2; s++) if (c->fd[s] >= 0) { if (c->registered[s]) epoll_ctl(ep, EPOLL_CTL_DEL, c->fd[s], NULL); close(c->fd[s]); c->fd[s] = -1; }
    c->closed = 1;
    if (c->prev) c->prev->next = c->next; else conns = c->next;
    if (c->next) c->next->prev = c->prev;
    /* a relayed connection: tell the control plane what it carried */
    if (c->id > 0) say("closed %ld %llu %llu\n", c->id, c->moved[0], c->moved[1]);
    c->next_dead = dead;
    dead = c;
}

static void reap_dead(void) {
    while (dead) { struct conn *c = dead; dead = c->next_dead; free(c); }
}

/* Starts relaying between two non-blocking sockets this process owns (`b` still connecting, or not). */
static struct conn *add_conn(int a, int b, int connecting, long id) {
    struct conn *c = calloc(1, sizeof *c + 2 * sizeof(struct tag));
    if (!c) return NULL;
    struct tag *tags = (struct tag *)(c + 1);
    c->fd[0] = a; c->fd[1] = b; c->connecting = connecting; c->id = id;
    c->last_moved = c->waiting_since[0] = c->waiting_since[1] = now_ms();
    tags[0] = (struct tag){ c, 0 }; tags[1] = (struct tag){ c, 1 };
    c->next = conns;
    if (conns) conns->prev = c;
    conns = c;
    update(c, tags);
    return c;
}

static void accept_http(int lfd, int port) {
    for (;;) {
        int a = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (a < 0) return;
        int b = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        if (b < 0 || (connect(b, (struct sockaddr *)&to, sizeof to) < 0 && errno != EINPROGRESS)) {
            close(a); if (b >= 0) close(b); continue;
        }
        if (!add_conn(a, b, 1, 0)) { close(a); close(b); }
    }
}

static void on_conn(struct tag *t, uint32_t events) {
    struct conn *c = t->c;
    if (c->closed) return;
    struct tag *tags = (struct tag *)(c + 1);
    int s = t->side;
    /* an error on either socket (a reset, a refused connect) ends the pair */
    if (events & EPOLLERR) { close_conn(c); return; }
    if (s == 1 && c->connecting) {
        int err = 0; socklen_t l = sizeof err;
        getsockopt(c->fd[1], SOL_SOCKET, SO_ERROR, &err, &l);
        if (err || (events & EPOLLHUP)) { close_conn(c); return; }
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
            else { close_conn(c); return; }
        }
        if (p->off == p->len) p->len = p->off = 0;
    }
    if (c->dir[0].eof && c->dir[1].eof && c->dir[0].len == 0 && c->dir[1].len == 0) { close_conn(c); return; }
    update(c, tags);
}

/* Closes tunnels whose receiver stopped taking bytes, and idle ones. */
static void expire(long long now) {
    for (struct conn *c = conns, *next; c; c = next) {
        next = c->next;
        int stalled = 0;
        for (int d = 0; d < 2; d++) if (c->dir[d].len > c->dir[d].off && now - c->waiting_since[d] >= stall_ms) stalled = 1;
        if ((stall_ms > 0 && stalled) || (idle_ms > 0 && now - c->last_moved >= idle_ms)) close_conn(c);
    }
}

static void accept_ssh(int lfd) {
    for (;;) {
        int a = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (a < 0) return;
        pid_t pid = fork();
        if (pid == 0) {
            sigset_t none; sigemptyset(&none); sigprocmask(SIG_SETMASK, &none, NULL);
            dup2(a, 0); dup2(a, 1);
            int devnull = open("/dev/null", O_WRONLY);
            if (devnull >= 0) dup2(devnull, 2);
            /* every other descriptor of the agent's is close-on-exec */
            execl("/usr/sbin/sshd", "sshd", "-i", "-f", "/etc/ssh/sshd_config", (char *)NULL);
            _exit(127);
        }
        close(a);
    }
}

/* ---------------------------------------------------------------------------
 * `launch` and the log writer, on the host.
 */

static int listen_unix(const char *path) {
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof addr.sun_path) { fprintf(stderr, "socket path too long: %s\n", path); exit(2); }
    strcpy(addr.sun_path, path);
    unlink(path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    mode_t old = umask(0177);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(fd, 512) < 0) {
        fprintf(stderr, "cannot listen on %s: %s\n", path, strerror(errno));
        exit(1);
    }
    umask(old);
    return fd;
}

static void place(int fd, int at) {
    if (fd == at) { fcntl(fd, F_SETFD, 0); return; }
    if (dup2(fd, at) < 0) { perror("dup2"); exit(1); }
    close(fd);
}

/* Appends to the log, keeping only the newest half when the cap is reached. */
static void log_append(int fd, off_t *off, off_t max, const char *data, size_t n) {
    if (n == 0) return;
    if ((off_t)n > max / 2) { data += n - max / 2; n = max / 2; }
    if (*off + (off_t)n > max) {
        static char keep[1 << 19];
        off_t half = max / 2 < (off_t)sizeof keep ? max / 2 : (off_t)sizeof keep;
        ssize_t got = pread(fd, keep, half, *off - half);
        if (got < 0) got = 0;
        if (pwrite(fd, keep, got, 0) < 0) return;
        *off = got;
        if (ftruncate(fd, *off) < 0) return;
    }
    ssize_t w = pwrite(fd, data, n, *off);
    if (w > 0) *off += w;
}

/* The log writer: pipe → file, capped, at most `rate` bytes a second. */
static int log_writer(int log_fd, int in, off_t max, long rate, const char *pid_file) {
    /* a writer left from the sandbox's previous run finishes first: one writer per file */
    flock(log_fd, LOCK_EX);
    struct stat st;
    off_t off = fstat(log_fd, &st) == 0 ? st.st_size : 0;
    static char buf[BUF];
    double tokens = rate;
    long long last = now_ms();
    for (;;) {
        long long now = now_ms();
        tokens += (double)(now - last) * rate / 1000.0;
        if (tokens > rate) tokens = rate;
        last = now;
        if (tokens < 4096) {
            long long wait = (long long)((4096 - tokens) * 1000.0 / rate) + 1;
            struct timespec ts = { wait / 1000, (wait % 1000) * 1000000 };
            nanosleep(&ts, NULL);
            continue;
        }
        size_t want = tokens < BUF ? (size_t)tokens : BUF;
        ssize_t n = read(in, buf, want);
        if (n == 0) break;
        if (n < 0) { if (errno == EINTR) continue; break; }
        tokens -= n;
        log_append(log_fd, &off, max, buf, n);
    }
    /* the file names this writer until a newer run of the sandbox names its own */
    char mine[32], named[32] = "";
    int k = snprintf(mine, sizeof mine, "%d\n", (int)getpid());
    int pf = open(pid_file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (pf >= 0) { ssize_t r = read(pf, named, sizeof named - 1); if (r > 0) named[r] = 0; close(pf); }
    if (!strncmp(named, mine, k)) unlink(pid_file);
    return 0;
}

static int launch(int argc, char **argv) {
    const char *log = NULL, *writer_pid = NULL, *http = NULL, *ssh = NULL;
    long log_max = 1 << 20, log_rate = 2 << 20;
    int cmd = -1;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--")) { cmd = i + 1; break; }
        if (i + 1 >= argc) { fprintf(stderr, "missing value for %s\n", argv[i]); return 2; }
        if (!strcmp(argv[i], "--log")) log = argv[++i];
        else if (!strcmp(argv[i], "--writer-pid")) writer_pid = argv[++i];
        else if (!strcmp(argv[i], "--http")) http = argv[++i];
        else if (!strcmp(argv[i], "--ssh")) ssh = argv[++i];
        else if (!strcmp(argv[i], "--log-max")) log_max = number(argv[++i]);
        else if (!strcmp(argv[i], "--log-rate")) log_rate = number(argv[++i]);
        else { fprintf(stderr, "unknown option %s\n", argv[i]); return 2; }
    }
    if (!log || !writer_pid || !http || !ssh || cmd < 0 || cmd >= argc || log_max < 4096 || log_rate < 4096) {
        fprintf(stderr, "usage: atrium-agent launch --log FILE --writer-pid FILE --http SOCK --ssh SOCK [--log-max BYTES] [--log-rate BYTES] -- command...\n");
        return 2;
    }
    /* O_NOFOLLOW: the run directory is root-only, but never follow a link when acting as root */
    int lfd = open(log, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (lfd < 0) { fprintf(stderr, "cannot open %s: %s\n", log, strerror(errno)); return 1; }
    int out[2];
    if (pipe2(out, O_CLOEXEC) < 0) { perror("pipe"); return 1; }
    /* room for bursts while the writer keeps to its rate */
    fcntl(out[0], F_SETPIPE_SZ, 1 << 20);
    int hfd = listen_unix(http), sfd = listen_unix(ssh);
    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (devnull < 0) { perror("/dev/null"); return 1; }
    pid_t writer = fork();
    if (writer < 0) { perror("fork"); return 1; }
    if (writer == 0) {
        setsid();
        dup2(devnull, 0); dup2(devnull, 1); dup2(devnull, 2);
        close(out[1]); close(hfd); close(sfd);
        _exit(log_writer(lfd, out[0], log_max, log_rate, writer_pid));
    }
    int pf = open(writer_pid, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (pf >= 0) { dprintf(pf, "%d\n", writer); close(pf); }
    close(out[0]); close(lfd);
    /* move all three above 5 first so placing one never clobbers another */
    int o2 = fcntl(out[1], F_DUPFD_CLOEXEC, 10), h2 = fcntl(hfd, F_DUPFD_CLOEXEC, 10), s2 = fcntl(sfd, F_DUPFD_CLOEXEC, 10);
    close(out[1]); close(hfd); close(sfd);
    place(o2, 3); place(h2, 4); place(s2, 5);
    /* runc run -d hands its own stdio to the sandbox: give it nothing of ours (runc reports through its --log) */
    dup2(devnull, 0); dup2(devnull, 1); dup2(devnull, 2);
    execvp(argv[cmd], &argv[cmd]);
    fprintf(stderr, "cannot run %s: %s\n", argv[cmd], strerror(errno));
    return 127;
}

/* ---------------------------------------------------------------------------
 * `relay`, on the host.
 */

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
        epoll_ctl(ep, want ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, 1, &ev);
        outq_registered = want;
    }
}

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
 * both ways until both sides end, then prints "closed ID A_TO_B B_TO_A". A
 * tunnel is closed early when bytes wait for a receiver that has taken none
 * for the stall timeout, or when nothing moved either way for the idle
 * timeout (0: never). It exits when stdin closes: the control plane is
 * gone, and every relayed connection ends with it.
 */
static int relay(int argc, char **argv) {
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
    ep = epoll_create1(EPOLL_CLOEXEC);
    nonblock(0);
    nonblock(1);
    fixed_tags[TAG_CTL] = (struct tag){ NULL, TAG_CTL };
    fixed_tags[TAG_OUT] = (struct tag){ NULL, TAG_OUT };
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &fixed_tags[TAG_CTL] };
    epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev);
    static char line[4096];
    size_t have = 0;
    struct epoll_event events[MAX_EVENTS];
    long long swept = now_ms();
    for (;;) {
        int timed = (stall_ms > 0 || idle_ms > 0) && conns != NULL;
        int n = epoll_wait(ep, events, MAX_EVENTS, timed ? 1000 : -1);
        if (n < 0 && errno != EINTR) return 1;
        for (int i = 0; i < n; i++) {
            struct tag *t = events[i].data.ptr;
            if (t->c) { on_conn(t, events[i].events); continue; }
            if (t == &fixed_tags[TAG_OUT]) { flush_said(); continue; }
            ssize_t r = read(0, line + have, sizeof line - 1 - have);
            if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) return 0;
            if (r < 0) continue;
            have += r;
            char *start = line, *nl;
            while ((nl = memchr(start, '\n', line + have - start))) {
                *nl = 0;
                long id; int fa, fb;
                if (sscanf(start, "%ld %d %d", &id, &fa, &fb) == 3 && id > 0) {
                    int a = (int)syscall(SYS_pidfd_getfd, pidfd, fa, 0), b = (int)syscall(SYS_pidfd_getfd, pidfd, fb, 0);
                    if (a >= 0 && b >= 0) {
                        fcntl(a, F_SETFD, FD_CLOEXEC); fcntl(b, F_SETFD, FD_CLOEXEC);
                        nonblock(a); nonblock(b);
                        if (add_conn(a, b, 0, id)) { say("took %ld\n", id); start = nl + 1; continue; }
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
        reap_dead();
        long long now = now_ms();
        if (timed && now - swept >= 1000) { expire(now); swept = now; reap_dead(); }
    }
}

/* ---------------------------------------------------------------------------
 * The agent, PID 1 of a sandbox.
 */

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "launch")) return launch(argc, argv);
    if (argc > 1 && !strcmp(argv[1], "relay")) return relay(argc, argv);
    /* before anything else: code of the workspace's uid must not reach into this process */
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) { perror("prctl"); return 1; }
    int http_fd = -1, ssh_fd = -1, port = 8888, app_at = -1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--")) { app_at = i + 1; break; }
        if (i + 1 >= argc) { fprintf(stderr, "missing value for %s\n", argv[i]); return 2; }
        if (!strcmp(argv[i], "--out-fd")) out_fd = number(argv[++i]);
        else if (!strcmp(argv[i], "--http-fd")) http_fd = number(argv[++i]);
        else if (!strcmp(argv[i], "--ssh-fd")) ssh_fd = number(argv[++i]);
        else if (!strcmp(argv[i], "--port")) port = number(argv[++i]);
        else { fprintf(stderr, "unknown option %s\n", argv[i]); return 2; }
    }
    if (out_fd >= 0) { nonblock(out_fd); fcntl(out_fd, F_SETFD, FD_CLOEXEC); }
    ep = epoll_create1(EPOLL_CLOEXEC);

    sigset_t mask; sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD); sigaddset(&mask, SIGTERM); sigaddset(&mask, SIGINT); sigaddset(&mask, SIGHUP);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
    int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    fixed_tags[TAG_SIG] = (struct tag){ NULL, TAG_SIG };
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &fixed_tags[TAG_SIG] };
    epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);
    if (http_fd >= 0) { nonblock(http_fd); fcntl(http_fd, F_SETFD, FD_CLOEXEC); fixed_tags[TAG_HTTP] = (struct tag){ NULL, TAG_HTTP }; ev.data.ptr = &fixed_tags[TAG_HTTP]; epoll_ctl(ep, EPOLL_CTL_ADD, http_fd, &ev); }
    if (ssh_fd >= 0) { nonblock(ssh_fd); fcntl(ssh_fd, F_SETFD, FD_CLOEXEC); fixed_tags[TAG_SSH] = (struct tag){ NULL, TAG_SSH }; ev.data.ptr = &fixed_tags[TAG_SSH]; epoll_ctl(ep, EPOLL_CTL_ADD, ssh_fd, &ev); }

    pid_t app_pid = -1;
    int app_out = -1;
    if (app_at > 0 && app_at < argc) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0) { platform_line("cannot create a pipe: %s", strerror(errno)); return 1; }
        app_pid = fork();
        if (app_pid == 0) {
            setpgid(0, 0);
            sigset_t none; sigemptyset(&none); sigprocmask(SIG_SETMASK, &none, NULL);
            signal(SIGPIPE, SIG_DFL);
            int devnull = open("/dev/null", O_RDONLY);
            if (devnull >= 0) dup2(devnull, 0);
            dup2(p[1], 1); dup2(p[1], 2);
            execvp(argv[app_at], &argv[app_at]);
            /* still this process's descriptors: the log pipe carries the reason, marked */
            platform_line("cannot run %s: %s", argv[app_at], strerror(errno));
            _exit(127);
        }
        close(p[1]);
        app_out = p[0];
        nonblock(app_out);
        fixed_tags[TAG_APP] = (struct tag){ NULL, TAG_APP };
        ev.data.ptr = &fixed_tags[TAG_APP];
        epoll_ctl(ep, EPOLL_CTL_ADD, app_out, &ev);
        platform_line("started %s (pid %d)", argv[app_at], app_pid);
    }

    int stopping = 0, app_status = -1;
    struct epoll_event events[MAX_EVENTS];
    static char buf[BUF];
    for (;;) {
        int n = epoll_wait(ep, events, MAX_EVENTS, -1);
        if (n < 0 && errno != EINTR) return 1;
        for (int i = 0; i < n; i++) {
            struct tag *t = events[i].data.ptr;
            if (t->c) { on_conn(t, events[i].events); continue; }
            if (t == &fixed_tags[TAG_HTTP]) accept_http(http_fd, port);
            else if (t == &fixed_tags[TAG_SSH]) accept_ssh(ssh_fd);
            else if (t == &fixed_tags[TAG_APP]) {
                ssize_t r;
                while ((r = read(app_out, buf, sizeof buf)) > 0) forward_output(buf, r);
                if (r == 0) { epoll_ctl(ep, EPOLL_CTL_DEL, app_out, NULL); close(app_out); app_out = -1; }
            } else if (t == &fixed_tags[TAG_SIG]) {
                struct signalfd_siginfo si;
                while (read(sfd, &si, sizeof si) == sizeof si) {
                    if (si.ssi_signo == SIGCHLD) {
                        /* PID 1 reaps every orphan in the sandbox, not only its own children */
                        int st; pid_t pid;
                        while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
                            if (pid != app_pid) continue;
                            app_status = st;
                        }
                    } else if (!stopping) {
                        stopping = 1;
                        platform_line("stopping (signal %d)", si.ssi_signo);
                        /* every process in the sandbox but this one */
                        kill(-1, SIGTERM);
                        if (app_pid <= 0) return 0;
                    }
                }
            }
        }
        reap_dead();
        if (app_status != -1) {
            /* the app may have left children holding its output open: take what is there and go */
            if (app_out >= 0) { ssize_t r; while ((r = read(app_out, buf, sizeof buf)) > 0) forward_output(buf, r); }
            if (WIFEXITED(app_status)) platform_line("app exited with status %d", WEXITSTATUS(app_status));
            else if (WIFSIGNALED(app_status)) platform_line("app killed by signal %d (%s)", WTERMSIG(app_status), strsignal(WTERMSIG(app_status)));
            if (!stopping) kill(-1, SIGTERM);
            return WIFEXITED(app_status) ? (WEXITSTATUS(app_status) ? WEXITSTATUS(app_status) : (stopping ? 0 : 1)) : 128 + WTERMSIG(app_status);
        }
    }
}
