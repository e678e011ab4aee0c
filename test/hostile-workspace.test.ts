import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { PROFILES, run, sandboxesAvailable, startSandboxServer } from './sandbox.js';

/**
 * Attacks from code running inside a workspace against the platform's own
 * processes and files, performed as that code would: real sandboxes,
 * commands run over SSH as the workspace user.
 */
const available = sandboxesAvailable();

/**
 * x86-64 code that calls fallocate(fd, 0, 0, 200 MiB) for fd 3 to 9, then
 * loops in pause(): whatever host file the process holds open grows by
 * 200 MiB, past any cap its writer keeps.
 */
const GROW_EVERY_FD = '41bc030000004489e731f631d241ba0000800cb81d0100000f0541ffc44183fc0a72e3b8220000000f05ebf7';

/**
 * Writes that code over the next instruction of every process in the
 * sandbox that the platform runs (PID 1 and the agent), through
 * /proc/<pid>/mem, as same-uid code can where a process is dumpable; the
 * code runs when the process's current system call returns.
 */
const INJECT = `
import os, sys
code = bytes.fromhex('${GROW_EVERY_FD}')
me = {os.getpid(), os.getppid()}
for pid in sorted(int(p) for p in os.listdir('/proc') if p.isdigit()):
    if pid in me:
        continue
    try:
        comm = open(f'/proc/{pid}/comm').read().strip()
    except OSError:
        continue
    if pid != 1 and comm not in ('tini', 'agent', 'atrium-agent'):
        continue
    try:
        fields = open(f'/proc/{pid}/syscall').read().split()
        pc = int(fields[-1], 16)
        with open(f'/proc/{pid}/mem', 'r+b', buffering=0) as mem:
            mem.seek(pc)
            mem.write(code)
        print(f'injected {pid} {comm}')
    except OSError as e:
        print(f'refused {pid} {comm}: {e.strerror}')
`;

test('a hostile workspace against the platform inside its sandbox', { skip: available === true ? false : available }, async (suite) => {
  const t = await startSandboxServer();
  const eve = await t.user('eve');
  await t.addKey(eve, 'eve');
  assert.equal((await t.call('POST', '/api/v1/teams/eve/workspaces', { token: eve, body: { name: 'lab', profile: 'web' } })).status, 201);
  await t.waitPhase(eve, 'eve/lab', ['running']);
  const id = await t.wsId('eve/lab');
  const runDir = join(t.dataDir, 'local', 'run', id);

  await suite.test('code written into PID 1 or the agent through /proc/<pid>/mem cannot grow the log past its cap', async () => {
    const r = await t.sh('eve/lab', `python3 -c "${INJECT.replace(/"/g, '\\"')}"`);
    assert.equal(r.code, 0, r.stderr);
    // had it run, the code would have acted within a second (PID 1 and the agent wake at least that often)
    await new Promise((resolve) => setTimeout(resolve, 2000));
    for (const f of ['app.log', 'runc.log']) {
      const size = statSync(join(runDir, f), { throwIfNoEntry: false })?.size ?? 0;
      assert.ok(size <= 1 << 20, `${f} is ${size} bytes, past the 1 MiB cap`);
    }
    assert.match(r.stdout, /refused 1 /, `PID 1 is not writable by the workspace user:\n${r.stdout}`);
    assert.doesNotMatch(r.stdout, /^injected/m, `no platform process took the code:\n${r.stdout}`);
    // the sandbox still serves
    assert.equal((await t.sh('eve/lab', 'echo alive')).stdout.trim(), 'alive');
  });
});

/**
 * An app that answers WebSocket upgrades, with a cookie for the parent
 * domain in its 101; on a path ending in /flood it then writes without
 * end, so every buffer between it and a client that has stopped reading
 * fills, whatever the timing. It closes a socket when its client does. Anything
 * else gets a plain 200, for readiness.
 */
const FLOOD_APP = `
import socket, threading
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(('127.0.0.1', 9000))
srv.listen(64)
def serve(c):
    data = b''
    while b'\\r\\n\\r\\n' not in data:
        chunk = c.recv(4096)
        if not chunk:
            return c.close()
        data += chunk
    if b'upgrade: websocket' not in data.lower():
        c.sendall(b'HTTP/1.1 200 OK\\r\\ncontent-length: 2\\r\\nconnection: close\\r\\n\\r\\nok')
        return c.close()
    c.sendall(b'HTTP/1.1 101 Switching Protocols\\r\\nupgrade: websocket\\r\\nconnection: Upgrade\\r\\nset-cookie: tossed=1; Path=/; Domain=localhost\\r\\n\\r\\n')
    try:
        if data.split(b' ')[1].endswith(b'/flood'):
            # without end: whatever the timing, every buffer on the way to a client that reads nothing fills
            while True:
                c.sendall(b'x' * 65536)
        while c.recv(65536):
            pass
    except OSError:
        pass
    c.close()
while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
`;

const FLOOD = { name: 'flood', displayName: 'Flood', environment: { kind: 'custom', command: ['/usr/bin/python3', '-u', '-c', FLOOD_APP], port: 9000 }, cpu: { guarantee: '50m', limit: '500m' }, memory: { guarantee: '32Mi', limit: '128Mi' }, storage: '16Mi' };

/** A WebSocket client that reads the 101 answer and then never reads again; it ends when its stdin closes. */
const STALLED_CLIENT = `
import socket, sys
host, port, path, token = sys.argv[1:5]
s = socket.create_connection(('127.0.0.1', int(port)))
s.sendall(f'GET {path} HTTP/1.1\\r\\nHost: {host}\\r\\nAuthorization: Bearer {token}\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\\r\\nSec-WebSocket-Version: 13\\r\\n\\r\\n'.encode())
head = b''
while b'\\r\\n\\r\\n' not in head:
    head += s.recv(1)
print(head.decode().strip().replace('\\r\\n', '|'), flush=True)
sys.stdin.read()
`;

/** CPU time (ns) a process has used, from the scheduler's own accounting. */
function cpuNs(pid: number): number {
  return Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]);
}

/** Bytes the kernel holds unsent on a process's TCP sockets (Send-Q), from `ss`. */
function tcpSendQueue(pid: number): number {
  const lines = execFileSync('ss', ['-tnpH'], { encoding: 'utf8' }).split('\n').filter((l) => l.includes(`pid=${pid},`));
  return lines.reduce((sum, l) => sum + Number(l.trim().split(/\s+/)[2] ?? 0), 0);
}

/** The tunnel relay this test process started (the server runs in-process). */
function relayPid(): number | undefined {
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
      const ppid = Number(readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]);
      if (ppid === process.pid && cmd[0]!.endsWith('atrium-agent') && cmd[1] === 'relay') return Number(p);
    } catch {
      // gone meanwhile
    }
  }
  return undefined;
}

test('a tunnel whose client stopped reading and whose workspace stopped costs the relay no CPU, and is closed', { skip: available === true ? false : available }, async () => {
  // long enough for the app's bytes to back up, the workspace to stop and the relay's CPU to be measured, however loaded the machine
  const t = await startSandboxServer({ profiles: [...PROFILES, FLOOD], 'proxy.tunnelStallTimeout': '20s' });
  const eve = await t.user('eve');
  assert.equal((await t.call('POST', '/api/v1/teams/eve/workspaces', { token: eve, body: { name: 'fl', profile: 'flood' } })).status, 201);
  await t.waitPhase(eve, 'eve/fl', ['running']);
  const port = new URL(t.url).port;
  const client = spawn('python3', ['-c', STALLED_CLIENT, `fl--eve.localhost:${port}`, port, '/w/eve/fl/flood', eve], { stdio: ['pipe', 'pipe', 'inherit'] });
  try {
    const head = await new Promise<string>((resolve) => client.stdout.once('data', (d: Buffer) => resolve(d.toString().trim())));
    assert.match(head, /^HTTP\/1\.1 101/);
    // the app's 101 went through the same filter as any answer: its cookie stays on its own origin
    assert.match(head, /\|set-cookie: tossed=1; Path=\/(\||$)/i);
    assert.doesNotMatch(head, /domain=/i);
    const open = () => /atrium_proxy_open_websockets\{team="eve",workspace="fl"\} 1/.test(t.server.proxy.metrics.render());
    assert.ok(open(), 'the tunnel is open');
    const pid = relayPid();
    assert.ok(pid, 'the tunnel went to the relay');
    // the relay holds the app's bytes: the kernel's send queue toward the client is full and stays so (the app never stops writing)
    let queued = -1;
    for (const deadline = Date.now() + 30_000; Date.now() < deadline; ) {
      const now = tcpSendQueue(pid);
      if (now > 0 && now === queued) break;
      queued = now;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    assert.ok(queued > 0, 'the bytes for the client back up at the relay');
    // the app's end goes away while its bytes wait for the client
    assert.equal((await t.call('POST', '/api/v1/teams/eve/workspaces/fl/stop', { token: eve })).status, 200);
    await t.waitPhase(eve, 'eve/fl', ['stopped']);
    const before = cpuNs(pid);
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const used = (cpuNs(pid) - before) / 1e9;
    assert.ok(used < 0.03, `the relay used ${used.toFixed(3)} s of CPU in 3 s`);
    // its bytes waited on a client that took none for the stall timeout (20 s): the tunnel is closed
    const deadline = Date.now() + 60_000;
    while (open() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
    assert.ok(!open(), 'the stalled tunnel was closed');
    assert.equal(t.server.proxy.tunnels.size, 0);
  } finally {
    client.stdin.end();
    client.kill();
  }
});

/** Opens a WebSocket that reads nothing after its answer; resolves with the answer's status line once it is in. */
function openTunnel(host: string, port: string, path: string, token: string) {
  const client = spawn('python3', ['-c', STALLED_CLIENT, host, port, path, token], { stdio: ['pipe', 'pipe', 'inherit'] });
  const status = new Promise<string>((resolve) => client.stdout.once('data', (d: Buffer) => resolve(d.toString().split('|')[0]!.trim())));
  return { status, close: () => client.stdin.end() };
}

test('WebSockets open at once are capped per person and per workspace', { skip: available === true ? false : available }, async () => {
  const t = await startSandboxServer({ profiles: [...PROFILES, FLOOD], 'proxy.maxTunnelsPerUser': 3, 'proxy.maxTunnelsPerWorkspace': 2 });
  const eve = await t.user('eve');
  for (const name of ['w1', 'w2']) assert.equal((await t.call('POST', '/api/v1/teams/eve/workspaces', { token: eve, body: { name, profile: 'flood' } })).status, 201);
  for (const name of ['w1', 'w2']) await t.waitPhase(eve, `eve/${name}`, ['running']);
  const port = new URL(t.url).port;
  const open = (ws: string) => openTunnel(`${ws}--eve.localhost:${port}`, port, `/w/eve/${ws}/socket`, eve);
  const opened: Array<ReturnType<typeof open>> = [];
  try {
    for (let i = 0; i < 2; i++) {
      opened.push(open('w1'));
      assert.match(await opened.at(-1)!.status, / 101 /);
    }
    const third = open('w1');
    opened.push(third);
    assert.match(await third.status, / 429 /, 'a workspace holds at most proxy.maxTunnelsPerWorkspace');
    opened.push(open('w2'));
    assert.match(await opened.at(-1)!.status, / 101 /, 'another workspace of the same person still opens');
    const fourth = open('w2');
    opened.push(fourth);
    assert.match(await fourth.status, / 429 /, 'a person holds at most proxy.maxTunnelsPerUser across workspaces');
    // closing one gives its place back, once the tunnel has ended
    opened[0]!.close();
    const deadline = Date.now() + 15_000;
    while (t.server.proxy.tunnels.size > 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    const again = open('w1');
    opened.push(again);
    assert.match(await again.status, / 101 /);
  } finally {
    for (const o of opened) o.close();
  }
});

/** An ssh-agent holding one key, for the test's life; resolves with its socket. */
async function startAgent(key: string): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'atrium-agent-'));
  const socket = join(dir, 'agent.sock');
  const agent = spawn('ssh-agent', ['-D', '-a', socket], { stdio: 'ignore' });
  after(() => {
    agent.kill();
    rmSync(dir, { recursive: true, force: true });
  });
  for (let i = 0; i < 100 && !existsSync(socket); i++) await new Promise((resolve) => setTimeout(resolve, 50));
  const added = await run('ssh-add', [key], 10_000, { SSH_AUTH_SOCK: socket });
  assert.equal(added.code, 0, added.stderr);
  return socket;
}

test("the owner's SSH agent reaches no workspace unless its profile allows it", { skip: available === true ? false : available }, async () => {
  const trusting = { name: 'agent-ok', displayName: 'Agent forwarding', environment: 'shell', agentForwarding: true, cpu: { guarantee: '50m', limit: '500m' }, memory: { guarantee: '32Mi', limit: '128Mi' }, storage: '16Mi' };
  const t = await startSandboxServer({ profiles: [...PROFILES, trusting] });
  const eve = await t.user('eve');
  await t.addKey(eve, 'eve');
  for (const [name, profile] of [['plain', 'tiny'], ['fwd', 'agent-ok']]) {
    assert.equal((await t.call('POST', '/api/v1/teams/eve/workspaces', { token: eve, body: { name, profile } })).status, 201);
    await t.waitPhase(eve, `eve/${name}`, ['running']);
  }
  // a key of eve's elsewhere (her laptop's agent), which code in the workspace must not get to use
  const agent = await startAgent(t.keyFile('eve'));
  const probe = 'echo "sock=${SSH_AUTH_SOCK:-none}"; ssh-add -l; echo "list=$?"';
  const plain = await t.sh('eve/plain', probe, 30_000, { agent });
  assert.match(plain.stdout, /^sock=none$/m, `no agent socket in the workspace: ${plain.stdout}${plain.stderr}`);
  assert.match(plain.stdout, /^list=2$/m, 'ssh-add finds no agent');
  const fwd = await t.sh('eve/fwd', probe, 30_000, { agent });
  assert.match(fwd.stdout, /^sock=\/tmp\/ssh-/m, `a profile that allows it forwards the agent: ${fwd.stdout}${fwd.stderr}`);
  assert.match(fwd.stdout, /ED25519/);
});
