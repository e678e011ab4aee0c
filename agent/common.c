/*
 * Helpers of every mode.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "agent.h"

long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void nonblock(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

int number(const char *s) { char *end; long v = strtol(s, &end, 10); if (*end || v < 0 || v > 1 << 30) { fprintf(stderr, "bad number %s\n", s); exit(2); } return (int)v; }
