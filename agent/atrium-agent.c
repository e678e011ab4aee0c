/*
 * atrium-agent: the platform's process inside a local workspace sandbox.
 *
 * The sandbox's network namespace holds only loopback. The control plane
 * (host root) binds two Unix sockets in a root-only directory and passes the
 * listening descriptors in; this agent
 *   - relays each connection on the HTTP socket to the app's TCP port on
 *     127.0.0.1 (Jupyter, or a custom app),
 *   - hands each connection on the SSH socket to a fresh `sshd -i` running as
 *     the workspace user,
 *   - runs the app with its output on a pipe, and writes that output to the
 *     log descriptor, which it keeps below a size cap so a chatty or hostile
 *     app cannot fill the host's disk.
 * It exits when the app exits (the sandbox then stops) and forwards SIGTERM
 * to the app and to open SSH sessions. It is deliberately small: one process,
 * no allocation per byte, well under a megabyte resident.
 *
 * On the host, `atrium-agent relay` moves the bytes of upgraded connections
 * (WebSockets through the proxy) for the control plane, so that no byte of
 * a long-lived stream crosses its event loop; see relay() below.
 *
 * Usage, inside the sandbox:
 *   atrium-agent --log-fd N --http-fd N --ssh-fd N [--port P] [--log-max BYTES] [-- app args...]
 * and on the host, as root, to create what it is given and start the sandbox:
 *   atrium-agent launch --log FILE --http SOCK --ssh SOCK -- runc run --preserve-fds 3 ...
 * `launch` opens the log file, binds and listens on both Unix sockets (mode
 * 0600, in the caller's root-only directory), places them at descriptors 3,
 * 4 and 5 and execs the command. Binding here rather than in the control
 * plane keeps the listening sockets out of the control plane's own process,
 * so nothing there accepts on them or unlinks them when it exits.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
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

static int log_fd = -1;
static off_t log_off = 0;
static off_t log_max = 1 << 20;
static pid_t app_pid = -1;

/* Appends to the log, keeping only the newest half when the cap is reached. */
static void log_write(const char *data, size_t n) {
    if (log_fd < 0 || n == 0) return;
    if ((off_t)n > log_max / 2) { data += n - log_max / 2; n = log_max / 2; }
    if (log_off + (off_t)n > log_max) {
        static char keep[1 << 19];
        off_t half = log_max / 2 < (off_t)sizeof keep ? log_max / 2 : (off_t)sizeof keep;
        ssize_t got = pread(log_fd, keep, half, log_off - half);
        if (got < 0) got = 0;
        if (pwrite(log_fd, keep, got, 0) < 0) return;
        log_off = got;
        if (ftruncate(log_fd, log_off) < 0) return;
    }
    ssize_t w = pwrite(log_fd, data, n, log_off);
    if (w > 0) log_off += w;
}

static void logf_(const char *fmt, ...) {
    char line[512];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    int k = strftime(line, sizeof line, "[atrium %H:%M:%S] ", &tm);
    va_list ap;
    va_start(ap, fmt);
    k += vsnprintf(line + k, sizeof line - k - 1, fmt, ap);
    va_end(ap);
    if (k > (int)sizeof line - 2) k = sizeof line - 2;
    line[k++] = '\n';
    log_write(line, k);
}

static void nonblock(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

/* One relayed connection: two sockets, one buffer per direction. */
struct pipe_ { char buf[BUF]; size_t len, off; int eof; };
struct conn { int fd[2]; struct pipe_ dir[2]; int connecting, closed; struct conn *next_dead; long id; unsigned long long moved[2]; uint32_t mask[2]; };
/* An epoll registration names a connection and which of its two sockets. */
struct tag { struct conn *c; int side; };
enum { TAG_HTTP = 1, TAG_SSH, TAG_SIG, TAG_APP, TAG_CTL };

static int ep;
static struct tag fixed_tags[6];

/* Sets what each socket waits for; the kernel is asked only when that changes,
 * which in a steady stream (read, then written out at once) is never. */
static void update(struct conn *c, struct tag *tags) {
    for (int s = 0; s < 2; s++) {
        if (c->fd[s] < 0) continue;
        struct epoll_event ev = { .events = 0, .data.ptr = &tags[s] };
        /* read side s when the buffer toward the other side has room */
        if (!c->dir[s].eof && c->dir[s].len == 0 && !(s == 1 && c->connecting)) ev.events |= EPOLLIN;
        /* write side s when the other direction has bytes for it, or while connecting */
        if (c->dir[1 - s].len > c->dir[1 - s].off || (s == 1 && c->connecting)) ev.events |= EPOLLOUT;
        if (ev.events == c->mask[s]) continue;
        c->mask[s] = ev.events;
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd[s], &ev);
    }
}

/* Closed connections are freed only after the whole batch of events is handled:
 * a later event in the same batch may still name the other socket of the pair. */
static struct conn *dead;

static void close_conn(struct conn *c) {
    if (c->closed) return;
    for (int s = 0; s < 2; s++) if (c->fd[s] >= 0) { epoll_ctl(ep, EPOLL_CTL_DEL, c->fd[s], NULL); close(c->fd[s]); c->fd[s] = -1; }
    c->closed = 1;
    /* a relayed connection: tell the control plane what it carried */
    if (c->id > 0) dprintf(1, "closed %ld %llu %llu\n", c->id, c->moved[0], c->moved[1]);
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
    tags[0] = (struct tag){ c, 0 }; tags[1] = (struct tag){ c, 1 };
    struct epoll_event ev = { .events = 0, .data.ptr = &tags[0] };
    epoll_ctl(ep, EPOLL_CTL_ADD, a, &ev);
    ev.data.ptr = &tags[1];
    epoll_ctl(ep, EPOLL_CTL_ADD, b, &ev);
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
    if (s == 1 && c->connecting) {
        int err = 0; socklen_t l = sizeof err;
        getsockopt(c->fd[1], SOL_SOCKET, SO_ERROR, &err, &l);
        if (err || (events & (EPOLLERR | EPOLLHUP))) { close_conn(c); return; }
        c->connecting = 0;
    }
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        struct pipe_ *p = &c->dir[s];
        if (p->len == 0 && !p->eof) {
            ssize_t n = read(c->fd[s], p->buf, BUF);
            if (n > 0) { p->len = n; p->off = 0; c->moved[s] += n; }
            else if (n == 0 || (errno != EAGAIN && errno != EINTR)) { p->eof = 1; shutdown(c->fd[1 - s], SHUT_WR); }
        }
    }
    for (int d = 0; d < 2; d++) {
        struct pipe_ *p = &c->dir[d];
        while (p->off < p->len) {
            ssize_t n = write(c->fd[1 - d], p->buf + p->off, p->len - p->off);
            if (n > 0) p->off += n;
            else if (n < 0 && (errno == EAGAIN || errno == EINTR)) break;
            else { close_conn(c); return; }
        }
        if (p->off == p->len) p->len = p->off = 0;
    }
    if (c->dir[0].eof && c->dir[1].eof && c->dir[0].len == 0 && c->dir[1].len == 0) { close_conn(c); return; }
    update(c, tags);
}

static void accept_ssh(int lfd, int close_from) {
    for (;;) {
        int a = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (a < 0) return;
        pid_t pid = fork();
        if (pid == 0) {
            sigset_t none; sigemptyset(&none); sigprocmask(SIG_SETMASK, &none, NULL);
            dup2(a, 0); dup2(a, 1);
            int devnull = open("/dev/null", O_WRONLY);
            if (devnull >= 0) dup2(devnull, 2);
            for (int fd = 3; fd < close_from + 8; fd++) close(fd);
            execl("/usr/sbin/sshd", "sshd", "-i", "-f", "/etc/ssh/sshd_config", (char *)NULL);
            _exit(127);
        }
        close(a);
    }
}

static int number(const char *s) { char *end; long v = strtol(s, &end, 10); if (*end || v < 0 || v > 1 << 30) { fprintf(stderr, "bad number %s\n", s); exit(2); } return (int)v; }

static int listen_unix(const char *path) {
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof addr.sun_path) { fprintf(stderr, "socket path too long: %s\n", path); exit(2); }
    strcpy(addr.sun_path, path);
    unlink(path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
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

static int launch(int argc, char **argv) {
    const char *log = NULL, *http = NULL, *ssh = NULL;
    int cmd = -1;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--")) { cmd = i + 1; break; }
        if (i + 1 >= argc) { fprintf(stderr, "missing value for %s\n", argv[i]); return 2; }
        if (!strcmp(argv[i], "--log")) log = argv[++i];
        else if (!strcmp(argv[i], "--http")) http = argv[++i];
        else if (!strcmp(argv[i], "--ssh")) ssh = argv[++i];
        else { fprintf(stderr, "unknown option %s\n", argv[i]); return 2; }
    }
    if (!log || !http || !ssh || cmd < 0 || cmd >= argc) { fprintf(stderr, "usage: atrium-agent launch --log FILE --http SOCK --ssh SOCK -- command...\n"); return 2; }
    /* O_NOFOLLOW: the run directory is root-only, but never follow a link when acting as root */
    int lfd = open(log, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (lfd < 0) { fprintf(stderr, "cannot open %s: %s\n", log, strerror(errno)); return 1; }
    int hfd = listen_unix(http), sfd = listen_unix(ssh);
    /* move all three above 5 first so placing one never clobbers another */
    int l2 = fcntl(lfd, F_DUPFD_CLOEXEC, 10), h2 = fcntl(hfd, F_DUPFD_CLOEXEC, 10), s2 = fcntl(sfd, F_DUPFD_CLOEXEC, 10);
    close(lfd); close(hfd); close(sfd);
    place(l2, 3); place(h2, 4); place(s2, 5);
    /* runc run -d hands its own stdio to the sandbox: give it nothing of ours (runc reports through its --log) */
    int devnull = open("/dev/null", O_RDWR);
    if (devnull >= 0) { dup2(devnull, 0); dup2(devnull, 1); dup2(devnull, 2); if (devnull > 5) close(devnull); }
    execvp(argv[cmd], &argv[cmd]);
    fprintf(stderr, "cannot run %s: %s\n", argv[cmd], strerror(errno));
    return 127;
}

/*
 * `atrium-agent relay`, started by the control plane (its parent). Each line
 * on stdin, "ID FD_A FD_B", names two connected sockets among the parent's
 * descriptors; the relay takes copies with pidfd_getfd (root, its own
 * parent), answers "took ID" (or "failed ID"), after which the parent closes
 * its copies, and moves bytes both ways until both sides end, then prints
 * "closed ID A_TO_B B_TO_A". It exits when stdin closes: the control plane is
 * gone, and every relayed connection ends with it.
 */
static int relay(void) {
    signal(SIGPIPE, SIG_IGN);
    int pidfd = (int)syscall(SYS_pidfd_open, getppid(), 0);
    if (pidfd < 0) { fprintf(stderr, "atrium-agent relay: pidfd_open: %s\n", strerror(errno)); return 1; }
    ep = epoll_create1(EPOLL_CLOEXEC);
    nonblock(0);
    fixed_tags[TAG_CTL] = (struct tag){ NULL, TAG_CTL };
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &fixed_tags[TAG_CTL] };
    epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev);
    static char line[4096];
    size_t have = 0;
    struct epoll_event events[MAX_EVENTS];
    for (;;) {
        int n = epoll_wait(ep, events, MAX_EVENTS, -1);
        if (n < 0 && errno != EINTR) return 1;
        for (int i = 0; i < n; i++) {
            struct tag *t = events[i].data.ptr;
            if (t->c) { on_conn(t, events[i].events); continue; }
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
                        if (add_conn(a, b, 0, id)) { dprintf(1, "took %ld\n", id); start = nl + 1; continue; }
                    }
                    if (a >= 0) close(a);
                    if (b >= 0) close(b);
                    dprintf(1, "failed %ld\n", id);
                }
                start = nl + 1;
            }
            have = line + have - start;
            memmove(line, start, have);
            if (have == sizeof line - 1) have = 0;
        }
        reap_dead();
    }
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "launch")) return launch(argc, argv);
    if (argc > 1 && !strcmp(argv[1], "relay")) return relay();
    int http_fd = -1, ssh_fd = -1, port = 8888, app_at = -1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--")) { app_at = i + 1; break; }
        if (i + 1 >= argc) { fprintf(stderr, "missing value for %s\n", argv[i]); return 2; }
        if (!strcmp(argv[i], "--log-fd")) log_fd = number(argv[++i]);
        else if (!strcmp(argv[i], "--http-fd")) http_fd = number(argv[++i]);
        else if (!strcmp(argv[i], "--ssh-fd")) ssh_fd = number(argv[++i]);
        else if (!strcmp(argv[i], "--port")) port = number(argv[++i]);
        else if (!strcmp(argv[i], "--log-max")) log_max = number(argv[++i]);
        else { fprintf(stderr, "unknown option %s\n", argv[i]); return 2; }
    }
    if (log_fd >= 0) { struct stat st; if (fstat(log_fd, &st) == 0) log_off = st.st_size; fcntl(log_fd, F_SETFD, FD_CLOEXEC); }
    ep = epoll_create1(EPOLL_CLOEXEC);

    sigset_t mask; sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD); sigaddset(&mask, SIGTERM); sigaddset(&mask, SIGINT); sigaddset(&mask, SIGHUP);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
    int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    fixed_tags[TAG_SIG] = (struct tag){ NULL, TAG_SIG };
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &fixed_tags[TAG_SIG] };
    epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);
    int maxfd = sfd > ep ? sfd : ep;
    if (http_fd >= 0) { nonblock(http_fd); fcntl(http_fd, F_SETFD, FD_CLOEXEC); fixed_tags[TAG_HTTP] = (struct tag){ NULL, TAG_HTTP }; ev.data.ptr = &fixed_tags[TAG_HTTP]; epoll_ctl(ep, EPOLL_CTL_ADD, http_fd, &ev); if (http_fd > maxfd) maxfd = http_fd; }
    if (ssh_fd >= 0) { nonblock(ssh_fd); fcntl(ssh_fd, F_SETFD, FD_CLOEXEC); fixed_tags[TAG_SSH] = (struct tag){ NULL, TAG_SSH }; ev.data.ptr = &fixed_tags[TAG_SSH]; epoll_ctl(ep, EPOLL_CTL_ADD, ssh_fd, &ev); if (ssh_fd > maxfd) maxfd = ssh_fd; }

    int app_out = -1;
    if (app_at > 0 && app_at < argc) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0) { logf_("cannot create a pipe: %s", strerror(errno)); return 1; }
        app_pid = fork();
        if (app_pid == 0) {
            setpgid(0, 0);
            sigset_t none; sigemptyset(&none); sigprocmask(SIG_SETMASK, &none, NULL);
            signal(SIGPIPE, SIG_DFL);
            int devnull = open("/dev/null", O_RDONLY);
            if (devnull >= 0) dup2(devnull, 0);
            dup2(p[1], 1); dup2(p[1], 2);
            execvp(argv[app_at], &argv[app_at]);
            fprintf(stderr, "cannot run %s: %s\n", argv[app_at], strerror(errno));
            _exit(127);
        }
        close(p[1]);
        app_out = p[0];
        nonblock(app_out);
        fixed_tags[TAG_APP] = (struct tag){ NULL, TAG_APP };
        ev.data.ptr = &fixed_tags[TAG_APP];
        epoll_ctl(ep, EPOLL_CTL_ADD, app_out, &ev);
        if (app_out > maxfd) maxfd = app_out;
        logf_("started %s (pid %d)", argv[app_at], app_pid);
    }

    int stopping = 0, app_status = -1;
    struct epoll_event events[MAX_EVENTS];
    for (;;) {
        int n = epoll_wait(ep, events, MAX_EVENTS, -1);
        if (n < 0 && errno != EINTR) return 1;
        for (int i = 0; i < n; i++) {
            struct tag *t = events[i].data.ptr;
            if (t->c) { on_conn(t, events[i].events); continue; }
            if (t == &fixed_tags[TAG_HTTP]) accept_http(http_fd, port);
            else if (t == &fixed_tags[TAG_SSH]) accept_ssh(ssh_fd, maxfd);
            else if (t == &fixed_tags[TAG_APP]) {
                static char buf[BUF];
                ssize_t r;
                while ((r = read(app_out, buf, sizeof buf)) > 0) log_write(buf, r);
                if (r == 0) { epoll_ctl(ep, EPOLL_CTL_DEL, app_out, NULL); close(app_out); app_out = -1; }
            } else if (t == &fixed_tags[TAG_SIG]) {
                struct signalfd_siginfo si;
                while (read(sfd, &si, sizeof si) == sizeof si) {
                    if (si.ssi_signo == SIGCHLD) {
                        int st; pid_t pid;
                        while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
                            if (pid == app_pid) {
                                app_status = st;
                                if (WIFEXITED(st)) logf_("app exited with status %d", WEXITSTATUS(st));
                                else if (WIFSIGNALED(st)) logf_("app killed by signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
                            }
                        }
                    } else if (!stopping) {
                        stopping = 1;
                        logf_("stopping (signal %d)", si.ssi_signo);
                        if (app_pid > 0) kill(-app_pid, SIGTERM);
                        kill(0, SIGTERM);
                        if (app_pid <= 0) return 0;
                    }
                }
            }
        }
        reap_dead();
        if (app_status != -1) {
            /* the app may have left children holding its output open: take what is there and go */
            if (app_out >= 0) { static char buf[BUF]; ssize_t r; while ((r = read(app_out, buf, sizeof buf)) > 0) log_write(buf, r); }
            if (!stopping) kill(0, SIGTERM);
            return WIFEXITED(app_status) ? (WEXITSTATUS(app_status) ? WEXITSTATUS(app_status) : (stopping ? 0 : 1)) : 128 + WTERMSIG(app_status);
        }
    }
}
