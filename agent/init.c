/*
 * The agent, PID 1 of a local sandbox, or the process under tini in a
 * workspace image:
 *   atrium-agent [--out-fd N] (--http-fd N | --http-listen [ADDR:]PORT)
 *                (--ssh-fd N | --ssh-listen [ADDR:]PORT) [--sshd-config FILE]
 *                [--port P] [-- app args...]
 *
 * In a local sandbox, whose network namespace holds only loopback, the host
 * binds two Unix sockets in a root-only directory and passes the listening
 * descriptors in (--http-fd, --ssh-fd), with the write end of a pipe to the
 * host-side log writer (--out-fd; see launch.c). In a workspace image (a
 * Kubernetes pod) the agent listens on TCP itself (--http-listen,
 * --ssh-listen) and writes to its own stdout, which is the container's log.
 * Either way this agent
 *   - relays each HTTP connection to the app's TCP port on 127.0.0.1
 *     (Jupyter, or a custom app); a port it listens on itself opens only
 *     once the app accepts connections, so that reaching it means reaching
 *     the app (a pod's readiness probe),
 *   - hands each SSH connection to a fresh `sshd -i` running as the agent's
 *     own user (the workspace user), with --sshd-config (default
 *     /etc/ssh/sshd_config),
 *   - runs the app with its output on a pipe of its own, and forwards that
 *     output to the log, never blocking on it (what does not fit is
 *     dropped and counted), with its own lines marked (see output.c).
 * It reaps every orphan, exits when the app exits (the sandbox or pod then
 * stops) and passes SIGTERM to every process below it. As PID 1 that is
 * every process in the sandbox, and the kernel kills what is left when the
 * agent exits. Anywhere else (under tini, or run by hand) the agent makes
 * itself a child subreaper, so that orphans are its own children, signals
 * only its descendants, and exits once they are all gone, killing those
 * still there after STOP_GRACE_MS: it never leaves a process behind.
 *
 * Code in the workspace runs as the same uid as this agent. The agent makes
 * itself non-dumpable first thing, so that code can neither read nor write
 * its memory (/proc/PID/mem) nor open its descriptors (/proc/PID/fd): the
 * listening sockets and the log pipe stay the platform's. The app and sshd
 * get none of them (all close-on-exec). The log file itself is never inside
 * the sandbox: only the host-side writer holds it.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <unistd.h>

#include "agent.h"

/* How long processes have between SIGTERM and SIGKILL when the agent is not
 * PID 1: well below the grace Atrium gives a workspace pod (10 s), so that
 * stragglers are ended by the agent, which says so in the log, rather than
 * by the kubelet. */
#define STOP_GRACE_MS 5000
/* how often, until the app accepts connections, the agent tries: with
 * --http-listen every 200 ms; with --http-fd (a local sandbox, where the
 * control plane's readiness check waits on the socket) every 5 ms at first,
 * then every twentieth of the time the app has taken so far, at most 50 ms:
 * a few per cent of the start at worst, and few wake-ups of a busy machine */
#define APP_PROBE_MS 200
#define APP_PROBE_FD_MIN_MS 5
#define APP_PROBE_FD_MAX_MS 50

/* the agent's own epoll registrations, besides the relayed connections' */
enum { TAG_HTTP, TAG_SSH, TAG_SIG, TAG_APP, TAG_COUNT };

/* Connected TCP sockets carry relayed bytes as they come: the sender already
 * chose how to cut them, and Nagle's algorithm would hold back the small
 * writes of interactive traffic. (On a Unix socket this fails, harmlessly.) */
static void no_delay(int fd) { int one = 1; setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); }

static void accept_http(struct conn_set *set, int lfd, int port) {
    for (;;) {
        int a = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (a < 0) return;
        int b = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        if (b < 0 || (connect(b, (struct sockaddr *)&to, sizeof to) < 0 && errno != EINPROGRESS)) {
            close(a); if (b >= 0) close(b); continue;
        }
        no_delay(a); no_delay(b);
        if (!add_conn(set, a, b, 1, 0)) { close(a); close(b); }
    }
}

static void accept_ssh(int lfd, const char *sshd_config) {
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
            execl("/usr/sbin/sshd", "sshd", "-i", "-f", sshd_config, (char *)NULL);
            _exit(127);
        }
        close(a);
    }
}

/* Binds a TCP socket to `[ADDR:]PORT`: ADDR an IPv4 address or a bracketed
 * IPv6 one; without it, every address of both families (IPv4 alone where
 * the kernel has no IPv6), as a pod may have an address of either. Sets
 * *port. The caller listens when it is ready to: until then, connections
 * are refused. */
static int bind_tcp(const char *given, int *port) {
    const char *spec = given, *colon = strrchr(spec, ':'), *p = colon ? colon + 1 : spec;
    char host[64] = "";
    if (colon) {
        size_t n = colon - spec;
        if (n >= 2 && spec[0] == '[' && spec[n - 1] == ']') { spec++; n -= 2; }
        if (n >= sizeof host) { fprintf(stderr, "bad address %s\n", given); exit(2); }
        memcpy(host, spec, n);
        host[n] = 0;
    }
    *port = number(p);
    if (*port < 1 || *port > 65535) { fprintf(stderr, "bad port %s\n", p); exit(2); }
    union { struct sockaddr sa; struct sockaddr_in in; struct sockaddr_in6 in6; } addr;
    memset(&addr, 0, sizeof addr);
    socklen_t len;
    int family;
    if (!host[0] || inet_pton(AF_INET6, host, &addr.in6.sin6_addr) == 1) {
        family = AF_INET6; len = sizeof addr.in6;
        addr.in6.sin6_family = AF_INET6; addr.in6.sin6_port = htons(*port);
    } else if (inet_pton(AF_INET, host, &addr.in.sin_addr) == 1) {
        family = AF_INET; len = sizeof addr.in;
        addr.in.sin_family = AF_INET; addr.in.sin_port = htons(*port);
    } else { fprintf(stderr, "bad address %s\n", host); exit(2); }
    for (;;) {
        int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1, zero = 0;
        if (fd >= 0) {
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
            if (family == AF_INET6 && !host[0]) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
            if (bind(fd, &addr.sa, len) == 0) return fd;
        }
        int err = errno;
        if (fd >= 0) close(fd);
        /* every address, on a kernel without IPv6: IPv4's */
        if (family == AF_INET6 && !host[0] && (err == EAFNOSUPPORT || err == EADDRNOTAVAIL)) {
            family = AF_INET; len = sizeof addr.in;
            memset(&addr, 0, sizeof addr);
            addr.in.sin_family = AF_INET; addr.in.sin_port = htons(*port); addr.in.sin_addr.s_addr = htonl(INADDR_ANY);
            continue;
        }
        fprintf(stderr, "cannot listen on %s: %s\n", given, strerror(err));
        exit(1);
    }
}

/* Whether the app accepts connections on 127.0.0.1:port (waiting at most a
 * moment: on loopback a connection is taken or refused at once). */
static int app_accepts(int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return 0;
    struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int ok = connect(fd, (struct sockaddr *)&to, sizeof to) == 0;
    if (!ok && errno == EINPROGRESS) {
        struct pollfd p = { .fd = fd, .events = POLLOUT };
        int err = 0; socklen_t l = sizeof err;
        ok = poll(&p, 1, APP_PROBE_MS) == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l) == 0 && err == 0;
    }
    close(fd);
    return ok;
}

/* Signals every process below this one; returns how many (as PID 1: -1, not counted).
 * As PID 1 of a sandbox that is every other process there (kill -1). Anywhere
 * else -1 would reach every process of this uid, or of the whole machine for
 * root: the agent signals only its descendants, found by walking /proc (as a
 * child subreaper, orphans among them are its own children, so none escapes
 * the walk). */
static int signal_rest(int sig) {
    if (getpid() == 1) { kill(-1, sig); return -1; }
    DIR *d = opendir("/proc");
    if (!d) return 0;
    struct proc_ { pid_t pid, ppid; int below; } *procs = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end || pid <= 0) continue;
        char path[64], stat[512];
        snprintf(path, sizeof path, "/proc/%ld/stat", pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        ssize_t r = read(fd, stat, sizeof stat - 1);
        close(fd);
        if (r <= 0) continue;
        stat[r] = 0;
        /* "pid (comm) state ppid ...", where comm may hold spaces and parentheses */
        char *paren = strrchr(stat, ')');
        int ppid;
        if (!paren || sscanf(paren + 1, " %*c %d", &ppid) != 1) continue;
        if (n == cap) {
            struct proc_ *more = realloc(procs, (cap = cap ? cap * 2 : 256) * sizeof *procs);
            if (!more) break;
            procs = more;
        }
        procs[n++] = (struct proc_){ (pid_t)pid, (pid_t)ppid, 0 };
    }
    closedir(d);
    /* a process is below this one when its parent is this one, or below it */
    pid_t self = getpid();
    for (int changed = 1; changed; ) {
        changed = 0;
        for (size_t i = 0; i < n; i++) {
            if (procs[i].below) continue;
            int below = procs[i].ppid == self;
            for (size_t j = 0; !below && j < n; j++) below = procs[j].below && procs[j].pid == procs[i].ppid;
            if (below) { procs[i].below = 1; changed = 1; }
        }
    }
    int count = 0;
    for (size_t i = 0; i < n; i++) if (procs[i].below && kill(procs[i].pid, sig) == 0) count++;
    free(procs);
    return count;
}

/* Reaps every child that has ended (orphans included, once they are this
 * process's), noting the app's status; returns whether any child is left. */
static int reap(pid_t app_pid, int *app_status) {
    int st; pid_t pid;
    while ((pid = waitpid(-1, &st, WNOHANG)) > 0) if (pid == app_pid) *app_status = st;
    return !(pid < 0 && errno == ECHILD);
}

/* Takes a listening socket: non-blocking, close-on-exec, watched by epoll. */
static void watch_listener(int ep, int fd, struct tag *tag) {
    nonblock(fd);
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = tag };
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

int init_main(int argc, char **argv) {
    /* before anything else: code of the workspace's uid must not reach into this process */
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) { perror("prctl"); return 1; }
    int out_fd = -1, http_fd = -1, ssh_fd = -1, port = 8888, app_at = -1, http_port = 0;
    const char *http_listen = NULL, *ssh_listen = NULL, *sshd_config = "/etc/ssh/sshd_config";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--")) { app_at = i + 1; break; }
        if (i + 1 >= argc) { fprintf(stderr, "missing value for %s\n", argv[i]); return 2; }
        if (!strcmp(argv[i], "--out-fd")) out_fd = number(argv[++i]);
        else if (!strcmp(argv[i], "--http-fd")) http_fd = number(argv[++i]);
        else if (!strcmp(argv[i], "--ssh-fd")) ssh_fd = number(argv[++i]);
        else if (!strcmp(argv[i], "--http-listen")) http_listen = argv[++i];
        else if (!strcmp(argv[i], "--ssh-listen")) ssh_listen = argv[++i];
        else if (!strcmp(argv[i], "--sshd-config")) sshd_config = argv[++i];
        else if (!strcmp(argv[i], "--port")) port = number(argv[++i]);
        else { fprintf(stderr, "unknown option %s\n", argv[i]); return 2; }
    }
    if ((http_listen && http_fd >= 0) || (ssh_listen && ssh_fd >= 0)) { fprintf(stderr, "give either --http-fd or --http-listen, and either --ssh-fd or --ssh-listen\n"); return 2; }
    if (http_listen) http_fd = bind_tcp(http_listen, &http_port);
    if (ssh_listen) {
        int ssh_port;
        ssh_fd = bind_tcp(ssh_listen, &ssh_port);
        if (listen(ssh_fd, 512) < 0) { fprintf(stderr, "cannot listen on %s: %s\n", ssh_listen, strerror(errno)); return 1; }
    }
    /* the agent would relay each connection to itself, for ever */
    if (http_listen && http_port == port) { fprintf(stderr, "the app's port %d is the one --http-listen takes: give the app another (--port)\n", port); return 2; }
    /* Without a log pipe, the log is stdout (a container's log), through a
     * copy above 2: the app's and sshd's standard descriptors are set up in
     * the forked child, where this copy still names the log. */
    if (out_fd < 0 && (out_fd = fcntl(1, F_DUPFD_CLOEXEC, 3)) < 0) { perror("stdout"); return 1; }
    output_open(out_fd);
    int pid1 = getpid() == 1;
    /* orphans below the agent become its children, not tini's or init's: it reaps them, and knows what to stop */
    if (!pid1 && prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) { perror("prctl"); return 1; }
    /* HTTP connections only: their ids are 0, and nobody is told of their close */
    struct conn_set set = { .ep = epoll_create1(EPOLL_CLOEXEC) };
    static struct tag fixed_tags[TAG_COUNT];
    for (int k = 0; k < TAG_COUNT; k++) fixed_tags[k] = (struct tag){ NULL, k };

    sigset_t mask; sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD); sigaddset(&mask, SIGTERM); sigaddset(&mask, SIGINT); sigaddset(&mask, SIGHUP);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
    int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &fixed_tags[TAG_SIG] };
    epoll_ctl(set.ep, EPOLL_CTL_ADD, sfd, &ev);
    /* With --http-listen the HTTP port opens only once the app accepts
     * connections: a connection that reaches the port reaches the app, and a
     * readiness check on the port (a pod's tcpSocket probe) is one on the app.
     * With --http-fd and an app, connections wait in the socket's backlog
     * until the app accepts them: the control plane's readiness check is one
     * connection that waits, not one every few milliseconds through the agent. */
    int http_waiting = http_listen != NULL || (http_fd >= 0 && app_at > 0 && app_at < argc && port > 0);
    long long app_started = now_ms();
    int probe_ms = http_listen ? APP_PROBE_MS : APP_PROBE_FD_MIN_MS;
    if (http_fd >= 0 && !http_waiting) watch_listener(set.ep, http_fd, &fixed_tags[TAG_HTTP]);
    if (ssh_fd >= 0) watch_listener(set.ep, ssh_fd, &fixed_tags[TAG_SSH]);
    if (ssh_listen) platform_line("listening for SSH on %s", ssh_listen);

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
        ev.data.ptr = &fixed_tags[TAG_APP];
        epoll_ctl(set.ep, EPOLL_CTL_ADD, app_out, &ev);
        platform_line("started %s (pid %d)", argv[app_at], app_pid);
    }

    int stopping = 0, killed = 0, app_status = -1, app_reported = 0, code = 0;
    long long kill_at = 0, probe_at = 0;
    struct epoll_event events[MAX_EVENTS];
    static char buf[BUF];
    for (;;) {
        /* while stopping, not as PID 1: look every 100 ms for the last process gone, and for the grace's end */
        int n = epoll_wait(set.ep, events, MAX_EVENTS, stopping && !pid1 ? 100 : http_waiting ? probe_ms : -1);
        if (n < 0 && errno != EINTR) return 1;
        int begin_stop = 0;
        for (int i = 0; i < n; i++) {
            struct tag *t = events[i].data.ptr;
            if (t->c) { on_conn(&set, t, events[i].events); continue; }
            if (t == &fixed_tags[TAG_HTTP]) accept_http(&set, http_fd, port);
            else if (t == &fixed_tags[TAG_SSH]) accept_ssh(ssh_fd, sshd_config);
            else if (t == &fixed_tags[TAG_APP]) {
                ssize_t r;
                while ((r = read(app_out, buf, sizeof buf)) > 0) forward_output(buf, r);
                if (r == 0) { epoll_ctl(set.ep, EPOLL_CTL_DEL, app_out, NULL); close(app_out); app_out = -1; }
            } else if (t == &fixed_tags[TAG_SIG]) {
                struct signalfd_siginfo si;
                while (read(sfd, &si, sizeof si) == sizeof si) {
                    /* the agent reaps every orphan below it, not only its own children */
                    if (si.ssi_signo == SIGCHLD) reap(app_pid, &app_status);
                    else if (!stopping && !begin_stop) {
                        platform_line("stopping (signal %d)", si.ssi_signo);
                        begin_stop = 1;
                    }
                }
            }
        }
        reap_dead(&set);
        if (http_waiting && !stopping && !begin_stop && now_ms() >= probe_at) {
            if (!http_listen) {
                long long waited = (now_ms() - app_started) / 20;
                probe_ms = waited < APP_PROBE_FD_MIN_MS ? APP_PROBE_FD_MIN_MS : waited > APP_PROBE_FD_MAX_MS ? APP_PROBE_FD_MAX_MS : (int)waited;
            }
            probe_at = now_ms() + probe_ms;
            if (app_accepts(port)) {
                http_waiting = 0;
                if (!http_listen) watch_listener(set.ep, http_fd, &fixed_tags[TAG_HTTP]);
                else if (listen(http_fd, 512) < 0) { platform_line("cannot listen on %s: %s", http_listen, strerror(errno)); begin_stop = 1; code = 1; }
                else {
                    watch_listener(set.ep, http_fd, &fixed_tags[TAG_HTTP]);
                    platform_line("listening for HTTP on %s, relayed to 127.0.0.1:%d", http_listen, port);
                }
            }
        }
        if (app_status != -1 && !app_reported) {
            app_reported = 1;
            /* the app may have left children holding its output open: take what is there */
            if (app_out >= 0) { ssize_t r; while ((r = read(app_out, buf, sizeof buf)) > 0) forward_output(buf, r); }
            if (WIFEXITED(app_status)) platform_line("app exited with status %d", WEXITSTATUS(app_status));
            else if (WIFSIGNALED(app_status)) platform_line("app killed by signal %d (%s)", WTERMSIG(app_status), strsignal(WTERMSIG(app_status)));
            /* an app that exits by itself, even with status 0, is a failure: the workspace was meant to run */
            code = WIFEXITED(app_status) ? (WEXITSTATUS(app_status) ? WEXITSTATUS(app_status) : (stopping || begin_stop ? 0 : 1)) : 128 + WTERMSIG(app_status);
            if (!stopping) begin_stop = 1;
        }
        if (begin_stop) {
            stopping = 1;
            kill_at = now_ms() + STOP_GRACE_MS;
            /* no new connections while stopping */
            if (http_fd >= 0) { if (!http_waiting) epoll_ctl(set.ep, EPOLL_CTL_DEL, http_fd, NULL); close(http_fd); http_fd = -1; }
            http_waiting = 0;
            if (ssh_fd >= 0) { epoll_ctl(set.ep, EPOLL_CTL_DEL, ssh_fd, NULL); close(ssh_fd); ssh_fd = -1; }
            signal_rest(SIGTERM);
        }
        /* as PID 1, what is left ends with the agent: the kernel kills the rest of the sandbox */
        if (pid1 && stopping && (app_reported || app_pid <= 0)) return code;
        if (stopping && !pid1) {
            if (!reap(app_pid, &app_status) && (app_reported || app_pid <= 0)) return code;
            if (!killed && now_ms() >= kill_at) {
                killed = 1;
                int left = signal_rest(SIGKILL);
                if (left > 0) platform_line("%d processes still running %d s after SIGTERM: killed", left, STOP_GRACE_MS / 1000);
            }
        }
    }
}
