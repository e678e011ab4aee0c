import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { waitUntil } from './helpers.js';
import { freePort, writeSecret } from './k8s/pod.js';
import { run } from './sandbox.js';

/**
 * The default workspace image (deploy/images/workspace) without a container
 * engine: its entrypoint and a freshly built agent run as plain processes,
 * as an unprivileged user of their own with gid 100, as in a pod (uid 1000,
 * fsGroup 100), with a Secret laid out as the kubelet lays one out. Running
 * as that user, not root, is what production does, and what the entrypoint
 * has to get right: sshd -i as the signed-in user itself, keys it may read
 * but not own, and an agent that is neither PID 1 nor allowed to signal
 * anyone else's processes. The host's own Jupyter and sshd (Debian's, as in
 * the image) stand in for the image's.
 *
 * The cases share that user and run one after another: "nothing is left"
 * means no process of that uid is left.
 */

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const USER = 'atrium-image-test';
const USERS_GID = 100;
/** the Jupyter token in each workspace's Secret */
const TOKEN = 'secret-token-of-this-workspace';
/** Debian's default PATH, as in the image, with the built agent and entrypoint first */
const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

function available(): true | string {
  if (process.getuid?.() !== 0) {
    if (process.env.CI) throw new Error('the workspace image suite needs root (to run as a user of its own); CI runs it as root');
    return 'needs root to run the entrypoint as a user of its own';
  }
  for (const tool of ['/usr/bin/jupyter-notebook', '/usr/sbin/sshd', '/usr/bin/ssh', '/usr/bin/ssh-keygen', '/usr/bin/cc']) {
    try {
      lstatSync(tool);
    } catch {
      return `needs ${tool} (scripts/deps.sh installs it)`;
    }
  }
  return true;
}

type Result = { code: number; stdout: string; stderr: string };

let work: string;
let bin: string;
let uid: number;
let generation = 0;

/** An ed25519 key pair made by ssh-keygen: the private key's path, and the public key's `type base64` fields. */
async function newKey(path: string): Promise<{ file: string; pub: string }> {
  const r = await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'test@atrium', '-f', path]);
  assert.equal(r.code, 0, r.stderr);
  return { file: path, pub: readFileSync(`${path}.pub`, 'utf8').split(' ').slice(0, 2).join(' ') };
}

/** The pids of the processes whose real uid is `owner`. */
function processesOf(owner: number): Array<{ pid: number; name: string }> {
  const found: Array<{ pid: number; name: string }> = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const status = readFileSync(`/proc/${entry}/status`, 'utf8');
      if (new RegExp(`^Uid:\\s+${owner}\\s`, 'm').test(status)) found.push({ pid: Number(entry), name: /^Name:\s+(.*)$/m.exec(status)?.[1] ?? '?' });
    } catch {
      // gone while we looked
    }
  }
  return found;
}

/** An HTTP GET on loopback, on a connection of its own. */
function get(port: number, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers, agent: false, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** Runs `command` in the workspace with the real OpenSSH client, pinning the host key to `hostKey`. */
function ssh(port: number, key: string, hostKey: string, command: string): Promise<Result> {
  const knownHosts = join(work, `known_hosts-${port}-${++generation}`);
  writeFileSync(knownHosts, `[127.0.0.1]:${port} ${hostKey}\n`);
  const args = ['-F', '/dev/null', '-i', key, '-o', 'IdentitiesOnly=yes', '-o', 'IdentityAgent=none', '-o', 'BatchMode=yes', '-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'LogLevel=ERROR', '-p', String(port), `${USER}@127.0.0.1`, '--', command];
  return new Promise((resolve) => {
    const child = spawn('ssh', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

/** Whether a TCP connection to a loopback port is refused. */
function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = connect(port, '127.0.0.1');
    c.on('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
    c.on('connect', () => {
      c.destroy();
      resolve(false);
    });
  });
}

interface Workspace {
  child: ChildProcessWithoutNullStreams;
  http: number;
  ssh: number;
  prefix: string;
  home: string;
  secret: string;
  hostKey: string;
  /** what the entrypoint wrote to stdout (the container's log) and stderr so far */
  stdout(): string;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
}

/** Starts the entrypoint as the image does (tini's child, here the test's), as the test user, on free loopback ports. */
async function startWorkspace(name: string, env: Record<string, string>, args: string[] = []): Promise<Workspace> {
  const dir = join(work, name);
  const home = join(dir, 'home');
  const tmp = join(dir, 'tmp');
  const secret = join(dir, 'secret');
  for (const d of [dir, home, tmp]) mkdirSync(d, { recursive: true });
  for (const d of [home, tmp]) chownSync(d, uid, USERS_GID);
  chmodSync(dir, 0o755);
  const hostKey = await newKey(join(dir, 'host_key'));
  writeSecret(secret, { ssh_host_ed25519_key: readFileSync(hostKey.file, 'utf8'), authorized_keys: readFileSync(join(work, 'client.pub'), 'utf8'), jupyter_token: `${TOKEN}\n` });
  const [http, sshPort, app] = [await freePort(), await freePort(), await freePort()];
  const prefix = `/w/team/${name}/`;
  const child = spawn(join(bin, 'atrium-entrypoint'), args, {
    uid,
    gid: USERS_GID,
    cwd: home,
    env: {
      PATH: `${bin}:${SYSTEM_PATH}`,
      HOME: home,
      TMPDIR: tmp,
      LANG: 'C.UTF-8',
      NB_PREFIX: prefix,
      ATRIUM_SECRET_DIR: secret,
      ATRIUM_HTTP_PORT: `127.0.0.1:${http}`,
      ATRIUM_SSH_PORT: `127.0.0.1:${sshPort}`,
      ATRIUM_APP_PORT: String(app),
      ...env,
    },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  child.stdin.end();
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, at: Date.now() })));
  return { child, http, ssh: sshPort, prefix, home, secret, hostKey: hostKey.pub, stdout: () => stdout, stderr: () => stderr, exited };
}

/** Sends SIGTERM and returns how long the entrypoint took to exit, and how. */
async function stop(ws: Workspace): Promise<{ ms: number; code: number | null }> {
  const sent = Date.now();
  ws.child.kill('SIGTERM');
  const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`still running 20 s after SIGTERM; log:\n${ws.stdout()}`)), 20_000).unref());
  const end = await Promise.race([ws.exited, timeout]);
  return { ms: end.at - sent, code: end.code };
}

/** Runs `6*7` in a new kernel over the kernel's WebSocket, through the agent. */
async function runInKernel(ws: Workspace, token: string): Promise<string> {
  const kernel = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: ws.http, method: 'POST', path: `${ws.prefix}api/kernels`, headers: { authorization: `token ${token}`, 'content-type': 'application/json' }, agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    req.end(JSON.stringify({ name: 'python3' }));
  });
  assert.equal(kernel.status, 201, kernel.body);
  const id = (JSON.parse(kernel.body) as { id: string }).id;
  const socket = new WebSocket(`ws://127.0.0.1:${ws.http}${ws.prefix}api/kernels/${id}/channels`, { headers: { authorization: `token ${token}` } });
  try {
    return await new Promise<string>((resolve, reject) => {
      // a kernel's first execution starts Python and IPython: seconds, or much more on a loaded machine
      const timer = setTimeout(() => reject(new Error('no result from the kernel')), 120_000);
      socket.on('open', () =>
        socket.send(JSON.stringify({
          header: { msg_id: 'exec-1', username: 'test', session: 's1', msg_type: 'execute_request', version: '5.3', date: new Date().toISOString() },
          parent_header: {}, metadata: {}, channel: 'shell',
          content: { code: '6*7', silent: false, store_history: false, user_expressions: {}, allow_stdin: false, stop_on_error: true },
        })),
      );
      socket.on('message', (raw) => {
        const m = JSON.parse((raw as Buffer).toString());
        if (m.parent_header?.msg_id === 'exec-1' && m.msg_type === 'execute_result') {
          clearTimeout(timer);
          resolve(m.content.data['text/plain']);
        }
      });
      socket.on('error', reject);
    });
  } finally {
    socket.close();
  }
}

/** Kills whatever a failed case left of the test user's processes, and waits for them to be gone, so that the next case starts clean. */
async function killLeftovers(): Promise<void> {
  for (const p of processesOf(uid)) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await waitUntil('the test user\'s processes gone', () => processesOf(uid).length === 0, { timeoutMs: 10_000 }).catch(() => undefined);
}

const skip = available();

test('the workspace image: entrypoint and agent as a pod runs them', { skip: skip === true ? false : skip }, async (suite) => {
  {
    const existing = await run('id', ['-u', USER]);
    if (existing.code !== 0) {
      const made = await run('useradd', ['--system', '--gid', String(USERS_GID), '--shell', '/bin/bash', '--create-home', '--home-dir', `/var/lib/${USER}`, USER]);
      // another run may have made it in between
      if (made.code !== 0 && (await run('id', ['-u', USER])).code !== 0) assert.fail(`useradd: ${made.stderr}`);
    }
    uid = Number((await run('id', ['-u', USER])).stdout.trim());
    assert.deepEqual(processesOf(uid), [], `processes of ${USER} from an earlier run are still there`);
    work = mkdtempSync(join(tmpdir(), 'atrium-image-'));
    chmodSync(work, 0o755);
    after(async () => {
      await killLeftovers();
      rmSync(work, { recursive: true, force: true });
    });
    bin = join(work, 'bin');
    mkdirSync(bin, { mode: 0o755 });
    // as the image's build stage builds it, warnings included
    const cc = await run('sh', ['-c', `cc -O2 -Wall -Wextra -Werror -o ${bin}/atrium-agent ${ROOT}agent/*.c`]);
    assert.equal(cc.code, 0, cc.stderr);
    assert.equal(cc.stderr, '', 'the agent compiles without warnings');
    // as the Containerfile copies it
    copyFileSync(join(ROOT, 'deploy/images/workspace/entrypoint.sh'), join(bin, 'atrium-entrypoint'));
    chmodSync(join(bin, 'atrium-entrypoint'), 0o755);
    await newKey(join(work, 'client'));
  }
  const client = join(work, 'client');

  await suite.test('jupyter: the token guards Jupyter through the agent, a kernel runs, SSH signs in with the Secret\'s keys, the log is stdout, SIGTERM leaves nothing', async () => {
    const started = Date.now();
    const ws = await startWorkspace('lab', { ATRIUM_ENVIRONMENT: 'jupyter' });
    try {
      const status = await waitUntil('Jupyter answering through the agent', async () => {
        const r = await get(ws.http, `${ws.prefix}api/status`, { authorization: `token ${TOKEN}` }).catch(() => undefined);
        return r?.status === 200 ? r : undefined;
      }, { timeoutMs: 60_000, everyMs: 200, last: () => ws.stdout() + ws.stderr() });
      suite.diagnostic(`Jupyter answered ${Date.now() - started} ms after the entrypoint started`);
      assert.equal(typeof JSON.parse(status.body).started, 'string');
      assert.equal((await get(ws.http, `${ws.prefix}api/status`)).status, 403, 'without the token Jupyter refuses');
      assert.equal((await get(ws.http, `${ws.prefix}api/status`, { authorization: 'token wrong' })).status, 403, 'with another token too');

      const kernelStart = Date.now();
      assert.equal(await runInKernel(ws, TOKEN), '42');
      suite.diagnostic(`6*7 in a new kernel: ${Date.now() - kernelStart} ms`);

      const id = await ssh(ws.ssh, client, ws.hostKey, 'id -u && echo ok');
      assert.equal(id.stdout, `${uid}\nok\n`, id.stderr);
      assert.equal(id.code, 0);
      // sessions get the container's environment, less the Jupyter token
      const env = await ssh(ws.ssh, client, ws.hostKey, 'echo "$NB_PREFIX|${JUPYTER_TOKEN-none}|$ATRIUM_ENVIRONMENT"');
      assert.equal(env.stdout, `${ws.prefix}|none|jupyter\n`, env.stderr);
      // the host key is the Secret's: a client that knows another refuses to go on
      const other = await newKey(join(work, 'other-host-key'));
      const mismatch = await ssh(ws.ssh, client, other.pub, 'echo in');
      assert.notEqual(mismatch.code, 0);
      assert.equal(mismatch.stdout, '');
      assert.match(mismatch.stderr, /host key/i);

      // a key added to the Secret reaches the next connection, without a restart; the one taken out no longer signs in
      const second = await newKey(join(work, 'client-2'));
      writeSecret(ws.secret, { ssh_host_ed25519_key: readFileSync(join(work, 'lab', 'host_key'), 'utf8'), authorized_keys: `${second.pub} second@atrium\n`, jupyter_token: `${TOKEN}\n` });
      assert.equal((await ssh(ws.ssh, second.file, ws.hostKey, 'echo second')).stdout, 'second\n');
      const removed = await ssh(ws.ssh, client, ws.hostKey, 'echo first');
      assert.notEqual(removed.code, 0);
      assert.equal(removed.stdout, '');

      // a process left behind on purpose, in a session of its own: an orphan the agent must end
      const orphan = await ssh(ws.ssh, second.file, ws.hostKey, 'setsid sleep 300 </dev/null >/dev/null 2>&1 & echo started');
      assert.equal(orphan.stdout, 'started\n', orphan.stderr);
      await waitUntil('the orphaned sleep', () => processesOf(uid).some((p) => p.name === 'sleep'));

      // the container's log: the agent's lines marked, Jupyter's own lines as they came
      const out = ws.stdout();
      assert.match(out, /\x1e\[atrium \d\d:\d\d:\d\d\] started jupyter-notebook \(pid \d+\)\n/);
      assert.match(out, /\x1e\[atrium [^\]]+\] listening for HTTP on 127\.0\.0\.1:\d+, relayed to 127\.0\.0\.1:\d+\n/);
      assert.match(out, /\[I [\d:.]+ NotebookApp\] Jupyter Notebook 6[\d.]* is running at:/);
      assert.match(out, /Kernel started: /);
      assert.ok(!out.includes(TOKEN), 'the token is never in the log');
      assert.equal(ws.stderr(), '');

      const stopped = await stop(ws);
      suite.diagnostic(`SIGTERM to exit: ${stopped.ms} ms`);
      assert.equal(stopped.code, 0, ws.stdout());
      assert.ok(stopped.ms < 5000, `stopped in ${stopped.ms} ms`);
      assert.match(ws.stdout(), /\x1e\[atrium [^\]]+\] stopping \(signal 15\)\n/);
      assert.doesNotMatch(ws.stdout(), /still running/, 'everything ended on SIGTERM, nothing had to be killed');
      assert.deepEqual(processesOf(uid), [], 'nothing of the workspace is left: Jupyter, its kernel, sshd, the orphan');
      assert.ok(await refused(ws.http) && await refused(ws.ssh), 'the ports are closed');
    } finally {
      await killLeftovers();
    }
  });

  await suite.test('shell: SSH only, no app, and SIGTERM leaves nothing', async () => {
    const ws = await startWorkspace('box', { ATRIUM_ENVIRONMENT: 'shell' });
    try {
      await waitUntil('the agent listening for SSH', () => ws.stdout().includes('listening for SSH'), { last: () => ws.stdout() + ws.stderr() });
      const id = await ssh(ws.ssh, client, ws.hostKey, 'id -u && echo ok');
      assert.equal(id.stdout, `${uid}\nok\n`, id.stderr);
      assert.ok(await refused(ws.http), 'no HTTP port without an app');
      assert.doesNotMatch(ws.stdout(), /listening for HTTP|started /);
      // a session still open when the workspace stops
      const session = ssh(ws.ssh, client, ws.hostKey, 'echo open; sleep 300');
      await waitUntil('the open session', () => processesOf(uid).some((p) => p.name === 'sleep'));
      const stopped = await stop(ws);
      assert.equal(stopped.code, 0, ws.stdout());
      assert.ok(stopped.ms < 5000, `stopped in ${stopped.ms} ms`);
      assert.equal((await session).stdout, 'open\n');
      assert.deepEqual(processesOf(uid), []);
    } finally {
      await killLeftovers();
    }
  });

  await suite.test('a process that ignores SIGTERM is killed after the agent\'s grace, and nothing is left', async () => {
    const ws = await startWorkspace('stubborn', { ATRIUM_ENVIRONMENT: 'shell' });
    try {
      await waitUntil('the agent listening for SSH', () => ws.stdout().includes('listening for SSH'), { last: () => ws.stdout() + ws.stderr() });
      const r = await ssh(ws.ssh, client, ws.hostKey, "setsid sh -c 'trap \"\" TERM HUP; sleep 300' </dev/null >/dev/null 2>&1 & echo started");
      assert.equal(r.stdout, 'started\n', r.stderr);
      await waitUntil('the stubborn sleep', () => processesOf(uid).some((p) => p.name === 'sleep'));
      const stopped = await stop(ws);
      suite.diagnostic(`SIGTERM to exit, with a process ignoring it: ${stopped.ms} ms`);
      assert.equal(stopped.code, 0, ws.stdout());
      assert.ok(stopped.ms >= 4500 && stopped.ms < 10_000, `stopped in ${stopped.ms} ms: SIGKILL 5 s after SIGTERM, within the pod's 10 s`);
      assert.match(ws.stdout(), /\x1e\[atrium [^\]]+\] 2 processes still running 5 s after SIGTERM: killed\n/);
      assert.deepEqual(processesOf(uid), []);
    } finally {
      await killLeftovers();
    }
  });

  await suite.test('custom: the container\'s arguments are the app, relayed from the HTTP port; the app exiting ends the workspace with its status', async () => {
    // binds its port once the test says so, serves until asked to quit, then exits with status 3, leaving a process of its own behind
    const app = `
import os, subprocess, time
from http.server import BaseHTTPRequestHandler, HTTPServer
subprocess.Popen(['setsid', 'sleep', '300'])
print('custom app starting', flush=True)
while not os.path.exists('go'):
    time.sleep(0.05)
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        body = ('custom app at ' + self.path).encode()
        self.send_response(200)
        self.send_header('content-length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        if self.path.endswith('/quit'):
            print('quitting', flush=True)
            os._exit(3)
    def log_message(self, *args):
        pass
server = HTTPServer(('127.0.0.1', int(os.environ['ATRIUM_APP_PORT'])), H)
print('custom app ready', flush=True)
server.serve_forever()
`;
    const ws = await startWorkspace('web', { ATRIUM_ENVIRONMENT: 'custom' }, ['python3', '-u', '-c', app]);
    try {
      await waitUntil('the custom app starting', () => ws.stdout().includes('custom app starting\n'), { last: () => ws.stdout() + ws.stderr() });
      // SSH is there at once; the HTTP port only once the app takes connections (a readiness probe on it is one on the app)
      assert.equal((await ssh(ws.ssh, client, ws.hostKey, 'echo ok')).stdout, 'ok\n');
      assert.ok(await refused(ws.http), 'the HTTP port is closed while the app is not listening');
      writeFileSync(join(ws.home, 'go'), '');
      await waitUntil('the HTTP port open', () => ws.stdout().includes('listening for HTTP'), { last: () => ws.stdout() + ws.stderr() });
      assert.match(ws.stdout(), /custom app ready\n(.*\n)?\x1e\[atrium [^\]]+\] listening for HTTP on 127\.0\.0\.1:\d+, relayed to 127\.0\.0\.1:\d+\n/);
      const r = await get(ws.http, `${ws.prefix}hello`);
      assert.deepEqual(r, { status: 200, body: `custom app at ${ws.prefix}hello` });
      await get(ws.http, `${ws.prefix}quit`).catch(() => undefined);
      const end = await Promise.race([ws.exited, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('still running after its app exited')), 20_000).unref())]);
      assert.equal(end.code, 3, ws.stdout());
      assert.match(ws.stdout(), /quitting\n\x1e\[atrium [^\]]+\] app exited with status 3\n/);
      assert.deepEqual(processesOf(uid), [], 'the app\'s orphan is gone too');
    } finally {
      await killLeftovers();
    }
  });

  await suite.test('a misconfigured workspace stops at once with a marked reason', async () => {
    const bad = await startWorkspace('bad', { ATRIUM_ENVIRONMENT: 'notebook' });
    assert.equal((await bad.exited).code, 2);
    assert.match(bad.stdout(), /^\x1e\[atrium [^\]]+\] ATRIUM_ENVIRONMENT must be jupyter, shell or custom \(got notebook\)\n$/);
    const noCommand = await startWorkspace('nocmd', { ATRIUM_ENVIRONMENT: 'custom' });
    assert.equal((await noCommand.exited).code, 2);
    assert.match(noCommand.stdout(), /custom environment needs its command/);
    assert.deepEqual(processesOf(uid), []);
  });
});
