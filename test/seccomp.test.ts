import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sandboxesAvailable, startSandboxServer, type SandboxServer } from './sandbox.js';

/**
 * The sandbox's system-call allow-list, from both sides, in a real sandbox
 * as the workspace user: what it refuses (calls the kernel here has and
 * the list does not name), and that the work people do in a workspace
 * still works under it.
 */
const available = sandboxesAvailable();

/**
 * Calls one system call through libc with the given arguments and prints
 * `<name> ok` or `<name> errno <n>`.
 */
function call(name: string, nr: number, args: number[]): string {
  return `r = libc.syscall(${nr}, ${args.map((a) => `ctypes.c_long(${a})`).join(', ')}); print('${name}', 'ok' if r >= 0 else 'errno %d' % ctypes.get_errno())`;
}

const ATTACKS = [
  'import ctypes, socket',
  'libc = ctypes.CDLL(None, use_errno=True)',
  // vsock reaches the host's hypervisor sockets: a network namespace does not cover it
  'fd = libc.socket(40, 1, 0); print("vsock", "ok" if fd >= 0 else "errno %d" % ctypes.get_errno())',
  'fd = libc.socket(17, 3, 0); print("packet", "ok" if fd >= 0 else "errno %d" % ctypes.get_errno())',
  // calls this kernel (6.x) has and the list does not name: cachestat (451), mseal (462), listmount (458)
  call('cachestat', 451, [-1, 0, 0, 0]),
  call('mseal', 462, [0, 0, 0]),
  call('listmount', 458, [0, 0, 0, 0]),
  // refused by Docker's default profile without CAP_SYS_NICE, and by ours
  call('set_mempolicy', 238, [0, 0, 0]),
  call('mbind', 237, [0, 0, 0, 0, 0, 0]),
  call('move_pages', 279, [0, 0, 0, 0, 0, 0]),
  call('get_mempolicy', 239, [0, 0, 0, 0, 0]),
  // personality: only the values Docker allows (0x40000 would turn address randomisation off)
  call('personality_norandom', 135, [0x0040000]),
  call('personality_query', 135, [0xffffffff]),
].join('\n');

/** Python's standard library at work: threads, processes, asyncio, sqlite, TLS, and sockets of every family the list allows. */
const PYTHON = `
import asyncio, multiprocessing, os, socket, sqlite3, ssl, subprocess, tempfile, threading
def square(x): return x * x
t = threading.Thread(target=lambda: None); t.start(); t.join()
with multiprocessing.Pool(2) as p: assert p.map(square, range(5)) == [0, 1, 4, 9, 16]
assert subprocess.run(['true']).returncode == 0
assert asyncio.run(asyncio.sleep(0, result=7)) == 7
db = sqlite3.connect(os.path.join(tempfile.mkdtemp(), 'x.db')); db.execute('create table t (x)'); db.execute('insert into t values (1)'); db.commit()
ssl.create_default_context()
srv = socket.socket(); srv.bind(('127.0.0.1', 0)); srv.listen(); c = socket.create_connection(srv.getsockname()); a, _ = srv.accept(); c.sendall(b'hi'); assert a.recv(2) == b'hi'
u = socket.socketpair(socket.AF_UNIX); u[0].sendall(b'u'); assert u[1].recv(1) == b'u'
socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
print('python ok')
`;

const C_PROGRAM = `
#include <pthread.h>
#include <stdio.h>
static void *work(void *arg) { return arg; }
int main(void) { pthread_t t; void *r; pthread_create(&t, 0, work, (void *)42); pthread_join(t, &r); printf("threads %ld\\n", (long)r); return 0; }
`;

/** A shell command that runs a Python script given as text (passed in base64: no quoting to get wrong). */
const python = (script: string) => `echo ${Buffer.from(script).toString('base64')} | base64 -d | python3 -`;

test('the sandbox system-call allow-list', { skip: available === true ? false : available }, async (suite) => {
  const t: SandboxServer = await startSandboxServer();
  const sam = await t.user('sam');
  await t.addKey(sam, 'sam');
  assert.equal((await t.call('POST', '/api/v1/teams/sam/workspaces', { token: sam, body: { name: 'box', profile: 'tiny' } })).status, 201);
  await t.waitPhase(sam, 'sam/box', ['running']);

  await suite.test('refuses vsock and packet sockets, calls it does not name, memory policy and unusual personalities', async () => {
    const r = await t.sh('sam/box', python(ATTACKS));
    assert.equal(r.code, 0, r.stderr);
    const seen = Object.fromEntries(r.stdout.trim().split('\n').map((l) => [l.split(' ')[0], l.split(' ').slice(1).join(' ')]));
    // EPERM from the list; ENOSYS for a call numbered beyond every one it knows; EAFNOSUPPORT for a socket family
    for (const name of ['vsock', 'packet', 'cachestat', 'mseal', 'listmount', 'set_mempolicy', 'mbind', 'move_pages', 'get_mempolicy', 'personality_norandom']) {
      assert.match(seen[name] ?? '', /^errno (1|38|97)$/, `${name}: ${seen[name]} (all: ${r.stdout})`);
    }
    assert.equal(seen.personality_query, 'ok', 'asking for the current personality is allowed');
  });

  await suite.test('Python, gcc, git and a terminal work under it', async () => {
    const py = await t.sh('sam/box', python(PYTHON), 60_000);
    assert.match(py.stdout, /python ok/, py.stderr);
    const cc = await t.sh('sam/box', `cd ~ && echo ${Buffer.from(C_PROGRAM).toString('base64')} | base64 -d > t.c && gcc -O2 -pthread -o t t.c && ./t`, 60_000);
    assert.match(cc.stdout, /threads 42/, cc.stderr);
    const git = await t.sh('sam/box', 'cd ~ && rm -rf repo && git init -q repo && cd repo && echo hi > f && git add f && git -c user.name=s -c user.email=s@x commit -qm first && git log --oneline | wc -l', 60_000);
    assert.equal(git.stdout.trim(), '1', git.stderr);
    // an interactive terminal: a pty, job control, and a child's exit status through it
    const pty = await t.sh('sam/box', python(`import os, pty
pid, fd = pty.fork()
if pid == 0:
    os.execvp('sh', ['sh', '-c', 'tty && stty size; exit 3'])
out = b''
while True:
    try:
        chunk = os.read(fd, 1024)
    except OSError:
        break
    if not chunk:
        break
    out += chunk
print(out.decode().strip().replace(chr(13), ''), 'exit', os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
`));
    assert.match(pty.stdout.trim(), /^\/dev\/pts\/\d+\n\d+ \d+ exit 3$/, pty.stdout + pty.stderr);
  });
});
