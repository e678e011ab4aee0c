/*
 * `launch` and the log writer, on the host. As root, to create what the
 * sandbox is given and start it:
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
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"

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

int launch_main(int argc, char **argv) {
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
