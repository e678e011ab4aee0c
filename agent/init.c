/*
 * The agent, PID 1 of a sandbox:
 *   atrium-agent --out-fd N --http-fd N --ssh-fd N [--port P] [-- app args...]
 *
 * The sandbox's network namespace holds only loopback. The host binds two
 * Unix sockets in a root-only directory and passes the listening
 * descriptors in, with the write end of a pipe to the host-side log writer
 * (see launch.c); this agent
 *   - relays each connection on the HTTP socket to the app's TCP port on
 *     127.0.0.1 (Jupyter, or a custom app),
 *   - hands each connection on the SSH socket to a fresh `sshd -i` running as
 *     the workspace user,
 *   - runs the app with its output on a pipe of its own, and forwards that
 *     output to the log pipe, never blocking on it (what does not fit is
 *     dropped and counted), with its own lines marked (see output.c).
 * It reaps every orphan, exits when the app exits (the sandbox then stops)
 * and passes SIGTERM to every process in the sandbox.
 *
 * Code in the workspace runs as the same uid as this agent. The agent makes
 * itself non-dumpable first thing, so that code can neither read nor write
 * its memory (/proc/1/mem) nor open its descriptors (/proc/1/fd): the
 * listening sockets and the log pipe stay the platform's. The app and sshd
 * get none of them (all close-on-exec). The log file itself is never inside
 * the sandbox: only the host-side writer holds it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <unistd.h>

#include "agent.h"

/* the agent's own epoll registrations, besides the relayed connections' */
enum { TAG_HTTP, TAG_SSH, TAG_SIG, TAG_APP, TAG_COUNT };

static void accept_http(struct conn_set *set, int lfd, int port) {
    for (;;) {
        int a = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (a < 0) return;
        int b = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        if (b < 0 || (connect(b, (struct sockaddr *)&to, sizeof to) < 0 && errno != EINPROGRESS)) {
            close(a); if (b >= 0) close(b); continue;
        }
        if (!add_conn(set, a, b, 1, 0)) { close(a); close(b); }
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

int init_main(int argc, char **argv) {
    /* before anything else: code of the workspace's uid must not reach into this process */
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) { perror("prctl"); return 1; }
    int out_fd = -1, http_fd = -1, ssh_fd = -1, port = 8888, app_at = -1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--")) { app_at = i + 1; break; }
        if (i + 1 >= argc) { fprintf(stderr, "missing value for %s\n", argv[i]); return 2; }
        if (!strcmp(argv[i], "--out-fd")) out_fd = number(argv[++i]);
        else if (!strcmp(argv[i], "--http-fd")) http_fd = number(argv[++i]);
        else if (!strcmp(argv[i], "--ssh-fd")) ssh_fd = number(argv[++i]);
        else if (!strcmp(argv[i], "--port")) port = number(argv[++i]);
        else { fprintf(stderr, "unknown option %s\n", argv[i]); return 2; }
    }
    output_open(out_fd);
    /* HTTP connections only: their ids are 0, and nobody is told of their close */
    struct conn_set set = { .ep = epoll_create1(EPOLL_CLOEXEC) };
    static struct tag fixed_tags[TAG_COUNT];

    sigset_t mask; sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD); sigaddset(&mask, SIGTERM); sigaddset(&mask, SIGINT); sigaddset(&mask, SIGHUP);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
    int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    fixed_tags[TAG_SIG] = (struct tag){ NULL, TAG_SIG };
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &fixed_tags[TAG_SIG] };
    epoll_ctl(set.ep, EPOLL_CTL_ADD, sfd, &ev);
    if (http_fd >= 0) { nonblock(http_fd); fcntl(http_fd, F_SETFD, FD_CLOEXEC); fixed_tags[TAG_HTTP] = (struct tag){ NULL, TAG_HTTP }; ev.data.ptr = &fixed_tags[TAG_HTTP]; epoll_ctl(set.ep, EPOLL_CTL_ADD, http_fd, &ev); }
    if (ssh_fd >= 0) { nonblock(ssh_fd); fcntl(ssh_fd, F_SETFD, FD_CLOEXEC); fixed_tags[TAG_SSH] = (struct tag){ NULL, TAG_SSH }; ev.data.ptr = &fixed_tags[TAG_SSH]; epoll_ctl(set.ep, EPOLL_CTL_ADD, ssh_fd, &ev); }

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
        epoll_ctl(set.ep, EPOLL_CTL_ADD, app_out, &ev);
        platform_line("started %s (pid %d)", argv[app_at], app_pid);
    }

    int stopping = 0, app_status = -1;
    struct epoll_event events[MAX_EVENTS];
    static char buf[BUF];
    for (;;) {
        int n = epoll_wait(set.ep, events, MAX_EVENTS, -1);
        if (n < 0 && errno != EINTR) return 1;
        for (int i = 0; i < n; i++) {
            struct tag *t = events[i].data.ptr;
            if (t->c) { on_conn(&set, t, events[i].events); continue; }
            if (t == &fixed_tags[TAG_HTTP]) accept_http(&set, http_fd, port);
            else if (t == &fixed_tags[TAG_SSH]) accept_ssh(ssh_fd);
            else if (t == &fixed_tags[TAG_APP]) {
                ssize_t r;
                while ((r = read(app_out, buf, sizeof buf)) > 0) forward_output(buf, r);
                if (r == 0) { epoll_ctl(set.ep, EPOLL_CTL_DEL, app_out, NULL); close(app_out); app_out = -1; }
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
        reap_dead(&set);
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
