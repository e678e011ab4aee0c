/*
 * What the files of atrium-agent share: the helpers of every mode, the
 * relayed connections (conn.c) used by the agent inside the sandbox (init.c)
 * and by `relay` on the host (relay.c), the app's output to the log pipe
 * (output.c), and each mode's entry point (dispatched from main.c).
 */
#ifndef ATRIUM_AGENT_H
#define ATRIUM_AGENT_H

#include <stddef.h>
#include <stdint.h>

#define BUF 65536
#define MAX_EVENTS 64

/* common.c */
long long now_ms(void);
void nonblock(int fd);
int number(const char *s);

/* ---------------------------------------------------------------------------
 * Relayed connections (conn.c): two sockets, one buffer per direction.
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
/* An epoll registration names a connection and which of its two sockets;
 * a mode's own registrations (listening sockets, signals) have no connection. */
struct tag { struct conn *c; int side; };

/* The connections relayed through one epoll instance. */
struct conn_set {
    int ep;
    struct conn *conns;           /* every open connection */
    /* Closed connections are freed only after the whole batch of events is handled:
     * a later event in the same batch may still name the other socket of the pair. */
    struct conn *dead;
    /* told of each connection as it closes (NULL: nobody) */
    void (*closed)(const struct conn *c);
};

struct conn *add_conn(struct conn_set *set, int a, int b, int connecting, long id);
void on_conn(struct conn_set *set, struct tag *t, uint32_t events);
void close_conn(struct conn_set *set, struct conn *c);
void reap_dead(struct conn_set *set);

/* ---------------------------------------------------------------------------
 * The app's output and the platform's own lines, to the log pipe (output.c).
 */

void output_open(int fd);
void platform_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void forward_output(const char *data, size_t n);

/* ---------------------------------------------------------------------------
 * The modes.
 */

int init_main(int argc, char **argv);    /* init.c: in a workspace: PID 1 of a sandbox, or under tini in the image */
int launch_main(int argc, char **argv);  /* launch.c: `launch` and the log writer, on the host */
int relay_main(int argc, char **argv);   /* relay.c: `relay`, on the host */
int pipe_main(int argc, char **argv);    /* pipe.c: `pipe`, behind `atrium ssh --stdio` */
int spawn_main(int argc, char **argv);   /* spawn.c: `spawn`, host commands for the control plane */

#endif
