/*
 * atrium-agent: the platform's process inside a workspace (a local sandbox,
 * or a container of the workspace image), and its helpers. One binary, five
 * modes:
 *   atrium-agent --out-fd N --http-fd N --ssh-fd N [--port P] [-- app args...]
 *       inside a local sandbox, as its PID 1;
 *   atrium-agent --http-listen [ADDR:]PORT --ssh-listen [ADDR:]PORT --sshd-config FILE [--port P] [-- app args...]
 *       in the workspace image, under tini, logging to stdout (init.c);
 *   atrium-agent launch --log FILE --writer-pid FILE --http SOCK --ssh SOCK ... -- runc run ...
 *       on the host, as root, to create what the sandbox is given, start the
 *       host-side log writer and start the sandbox (launch.c);
 *   atrium-agent relay [--stall-timeout S] [--idle-timeout S]
 *       on the host, moving the bytes of upgraded connections (WebSockets
 *       through the proxy) for the control plane, so that no byte of a
 *       long-lived stream crosses its event loop (relay.c);
 *   atrium-agent spawn
 *       on the host, running the local runtime's commands (runc, mkfs,
 *       mount) for the control plane, whose own fork of a large process
 *       would stall its event loop each time (spawn.c);
 *   atrium-agent pipe
 *       on a person's machine, behind `atrium ssh --stdio`: moves the SSH
 *       tunnel's bytes between OpenSSH (stdin, stdout) and the upgraded
 *       socket (descriptor 3) through the kernel (pipe.c).
 */
#include <string.h>

#include "agent.h"

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "launch")) return launch_main(argc, argv);
    if (argc > 1 && !strcmp(argv[1], "relay")) return relay_main(argc, argv);
    if (argc > 1 && !strcmp(argv[1], "pipe")) return pipe_main(argc, argv);
    if (argc > 1 && !strcmp(argv[1], "spawn")) return spawn_main(argc, argv);
    return init_main(argc, argv);
}
