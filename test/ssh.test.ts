import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startServer, waitUntil } from './helpers.js';
import { PROFILES, run, sandboxesAvailable, startSandboxServer, type SandboxServer } from './sandbox.js';

/**
 * SSH into workspaces with the real OpenSSH client, through the gateway
 * (`ssh -p <port> <team>.<ws>@host`) and through the tunnel (`atrium ssh
 * --stdio` as ProxyCommand), against local-runtime sandboxes.
 */

const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const available = sandboxesAvailable();
const ROOMY = { name: 'roomy', displayName: 'Roomy', environment: 'shell', cpu: { guarantee: '100m', limit: '1' }, memory: { guarantee: '64Mi', limit: '1Gi' }, storage: '256Mi' };
const FORWARDING = { name: 'fwd', displayName: 'Agent forwarding', environment: 'shell', agentForwarding: true, cpu: { guarantee: '50m', limit: '500m' }, memory: { guarantee: '32Mi', limit: '256Mi' }, storage: '16Mi' };
const MAX_SESSIONS = 60;
/** ssh2's protocol layer, whose client side the forged-signature test bends (a module without types) */
const PROTOCOL_MODULE: string = 'ssh2/lib/protocol/Protocol.js';

type Result = { code: number; stdout: string; stderr: string };

let t: SandboxServer;
let work: string;
let gatewayPort: number;
const tokens: Record<string, string> = {};
let written = 0;

/** Runs `ssh` (or scp, sftp, rsync) with an environment, feeding `input` when given. */
function exec(file: string, args: string[], opts: { env?: Record<string, string>; input?: string; timeoutMs?: number; signal?: AbortSignal } = {}): Promise<Result> {
  return new Promise((resolve) => {
    const child = spawn(file, args, { env: { ...process.env, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    opts.signal?.addEventListener('abort', () => child.kill());
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** OpenSSH options shared by both paths: only the given key, no agent, host keys pinned from what the control plane says. */
function baseOptions(key: string, knownHosts: string): string[] {
  return ['-F', '/dev/null', '-i', key, '-o', 'IdentitiesOnly=yes', '-o', 'IdentityAgent=none', '-o', 'BatchMode=yes', '-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'LogLevel=ERROR'];
}

/** The known-hosts file for one person: the gateway's key and the host keys of every workspace they may enter. */
async function knownHostsFor(user: string): Promise<string> {
  const r = await t.call('GET', '/api/v1/me/ssh', { token: tokens[user]! });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const lines = [`[127.0.0.1]:${gatewayPort} ${r.body.gateway.hostKey}`, ...r.body.workspaces.map((w: any) => `${w.alias} ${w.hostKey}`)];
  const file = join(work, `known_hosts-${user}`);
  // sessions run side by side: each file is replaced whole, never seen half-written
  const partial = `${file}.${++written}`;
  writeFileSync(partial, `${lines.join('\n')}\n`);
  renameSync(partial, file);
  return file;
}

/** How each path is reached: the ssh arguments before the command, the destination, and the environment. */
interface Path {
  name: 'gateway' | 'tunnel';
  /** arguments for ssh (or scp/sftp/rsync's -e) naming `ref` (`team/ws`) as `user` with `key` */
  args(user: string, ref: string, key?: string): Promise<{ options: string[]; host: string; env: Record<string, string> }>;
}

const gateway: Path = {
  name: 'gateway',
  async args(user, ref, key = t.keyFile(user)) {
    const [team, ws] = ref.split('/');
    return { options: [...baseOptions(key, await knownHostsFor(user)), '-o', `Port=${gatewayPort}`], host: `${team}.${ws}@127.0.0.1`, env: {} };
  },
};

const tunnel: Path = {
  name: 'tunnel',
  async args(user, ref, key = t.keyFile(user)) {
    const [team, ws] = ref.split('/');
    const alias = `atrium.${team}.${ws}`;
    return {
      options: [...baseOptions(key, await knownHostsFor(user)), '-o', `ProxyCommand=${process.execPath} ${MAIN} ssh --stdio ${ref}`, '-o', `HostKeyAlias=${alias}`],
      host: `jovyan@${alias}`,
      env: { ATRIUM_URL: t.url, ATRIUM_TOKEN: tokens[user]!, ATRIUM_USER: user },
    };
  },
};

async function ssh(path: Path, user: string, ref: string, command: string, opts: { key?: string; extra?: string[]; input?: string; timeoutMs?: number; signal?: AbortSignal } = {}): Promise<Result> {
  const a = await path.args(user, ref, opts.key);
  const { key: _key, extra: _extra, ...rest } = opts;
  return exec('ssh', [...a.options, ...(opts.extra ?? []), a.host, '--', command], { env: a.env, ...rest });
}

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

/** A free loopback port (bound and released). */
function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** Opens a TCP connection through a SOCKS5 proxy (what VS Code does through `ssh -D`). */
function socksConnect(proxyPort: number, host: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(proxyPort, '127.0.0.1');
    let stage = 0;
    s.once('error', reject);
    s.on('connect', () => s.write(Buffer.from([5, 1, 0])));
    const onData = (d: Buffer) => {
      if (stage === 0) {
        if (d[0] !== 5 || d[1] !== 0) return reject(new Error('SOCKS: no method accepted'));
        stage = 1;
        const h = Buffer.from(host);
        s.write(Buffer.concat([Buffer.from([5, 1, 0, 3, h.length]), h, Buffer.from([port >> 8, port & 255])]));
      } else {
        s.off('data', onData);
        if (d[1] !== 0) return reject(new Error(`SOCKS: connect refused (${d[1]})`));
        // the reply's bound address, then whatever the far end already sent
        const replyLength = d[3] === 1 ? 10 : d[3] === 4 ? 22 : 7 + d[4]!;
        s.pause();
        if (d.length > replyLength) s.unshift(d.subarray(replyLength));
        resolve(s);
      }
    };
    s.on('data', onData);
  });
}

/** Reads from a socket until it closes. */
function readAll(s: Socket): Promise<string> {
  return new Promise((resolve) => {
    let out = '';
    s.on('data', (d: Buffer) => (out += d.toString()));
    s.resume();
    s.on('close', () => resolve(out));
    s.on('error', () => resolve(out));
  });
}

const metric = async (name: string): Promise<number> => {
  const r = await t.call('GET', '/metrics', { token: t.adminToken });
  const m = new RegExp(`^${name.replace(/[{}"=]/g, (c) => `\\${c}`)} (\\d+)$`, 'm').exec(String(r.body));
  return m ? Number(m[1]) : 0;
};

test('SSH into workspaces', { skip: available === true ? false : available }, async (suite) => {
  {
    t = await startSandboxServer({ profiles: [...PROFILES, ROOMY, FORWARDING], 'ssh.maxSessionsPerUser': MAX_SESSIONS, 'ssh.host': '127.0.0.1' });
    work = mkdtempSync(join(tmpdir(), 'atrium-ssh-'));
    after(() => rmSync(work, { recursive: true, force: true }));
    gatewayPort = t.server.ssh.port!;
    for (const u of ['alice', 'bob', 'vic', 'mallory']) {
      tokens[u] = await t.user(u);
      await t.addKey(tokens[u], u);
    }
    // a team whose shared workspace alice owns: bob edits, vic only views
    assert.equal((await t.call('POST', '/api/v1/teams', { token: t.adminToken, body: { name: 'ml', owner: 'alice' } })).status, 201);
    await t.call('PUT', '/api/v1/teams/ml/members/bob', { token: t.adminToken, body: { role: 'editor' } });
    await t.call('PUT', '/api/v1/teams/ml/members/vic', { token: t.adminToken, body: { role: 'viewer' } });
    const create = async (token: string, team: string, name: string, profile: string, shared = false) => {
      const r = await t.call('POST', `/api/v1/teams/${team}/workspaces`, { token, body: { name, profile, ...(shared ? { shared: true } : {}) } });
      assert.equal(r.status, 201, JSON.stringify(r.body));
    };
    await create(tokens.alice!, 'alice', 'box', 'roomy');
    await create(tokens.alice!, 'ml', 'shared', 'tiny', true);
    await create(tokens.mallory!, 'mallory', 'own', 'tiny');
    for (const [user, ref] of [['alice', 'alice/box'], ['alice', 'ml/shared'], ['mallory', 'mallory/own']] as const) await t.waitPhase(tokens[user]!, ref, ['running']);
  }

  for (const path of [gateway, tunnel]) {
    await suite.test(`${path.name}: a command's output and exit status, and a terminal whose size follows the client's`, async () => {
      const r = await ssh(path, 'alice', 'alice/box', 'echo hi; exit 3');
      assert.equal(r.stdout, 'hi\n', r.stderr);
      assert.equal(r.code, 3, r.stderr);
      const killed = await ssh(path, 'alice', 'alice/box', 'kill -TERM $$');
      assert.equal(killed.code, 255, `a command killed by a signal: ssh exits 255 (${killed.stderr})`);
      // a real terminal (a pty pair from Python) sized 40x100, resized to 50x132 while the session runs
      const a = await path.args('alice', 'alice/box');
      const driver = `
import os, pty, sys, time, fcntl, termios, struct, select
pid, fd = pty.fork()
if pid == 0:
    os.execvp('ssh', sys.argv[1:])
def size(rows, cols):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack('HHHH', rows, cols, 0, 0))
size(40, 100)
out = b''
def read_until(token, seconds):
    global out
    end = time.time() + seconds
    while token not in out and time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                out += os.read(fd, 4096)
            except OSError:
                break
read_until(b'first=', 30)
read_until(b'\\n', 5)
size(50, 132)
time.sleep(0.5)
os.write(fd, b'\\n')
read_until(b'second=', 30)
read_until(b'\\n', 5)
os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors='replace'))
`;
      const r2 = await exec('/usr/bin/python3', ['-c', driver, 'ssh', '-tt', ...a.options, a.host, 'echo first=$(stty size); read x; echo second=$(stty size) $(tty)'], { env: a.env });
      assert.match(r2.stdout, /first=40 100/, r2.stdout + r2.stderr);
      assert.match(r2.stdout, /second=50 132/, `the window change reached the workspace: ${r2.stdout}${r2.stderr}`);
      assert.match(r2.stdout, /\/dev\/pts\/\d+/, 'a pty inside the workspace');
    });

    await suite.test(`${path.name}: a 50 MiB file copied in and out with scp, sftp and rsync keeps its checksum`, async () => {
      const file = join(work, `blob-${path.name}`);
      writeFileSync(file, randomBytes(50 << 20));
      const sum = sha256(file);
      const a = await path.args('alice', 'alice/box');
      const dest = a.host;
      for (const tool of ['scp', 'sftp', 'rsync'] as const) {
        const back = join(work, `back-${path.name}-${tool}`);
        const remote = `copy-${tool}`;
        let r: Result;
        if (tool === 'scp') {
          r = await exec('scp', [...a.options, file, `${dest}:${remote}`], { env: a.env, timeoutMs: 120_000 });
          assert.equal(r.code, 0, `scp in: ${r.stderr}`);
          r = await exec('scp', [...a.options, `${dest}:${remote}`, back], { env: a.env, timeoutMs: 120_000 });
        } else if (tool === 'sftp') {
          r = await exec('sftp', [...a.options, '-b', '-', dest], { env: a.env, input: `put ${file} ${remote}\nget ${remote} ${back}\n`, timeoutMs: 120_000 });
        } else {
          const e = ['ssh', ...a.options].map((w) => (/[\s=]/.test(w) ? `'${w}'` : w)).join(' ');
          r = await exec('rsync', ['-e', e, file, `${dest}:${remote}`], { env: a.env, timeoutMs: 120_000 });
          assert.equal(r.code, 0, `rsync in: ${r.stderr}`);
          r = await exec('rsync', ['-e', e, `${dest}:${remote}`, back], { env: a.env, timeoutMs: 120_000 });
        }
        assert.equal(r.code, 0, `${tool}: ${r.stderr}`);
        assert.equal(sha256(back), sum, `${tool} over the ${path.name} keeps the bytes`);
        const inside = await ssh(path, 'alice', 'alice/box', `sha256sum ${remote}`);
        assert.equal(inside.stdout.split(' ')[0], sum, `${tool} wrote the same bytes inside`);
      }
    });

    await suite.test(`${path.name}: local port forwarding reaches a port inside the workspace`, async () => {
      const local = await freePort();
      const a = await path.args('alice', 'alice/box');
      // a server inside that answers one connection, then the session ends
      const server = `python3 -c "import socket; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('127.0.0.1', 8765)); s.listen(1); print('listening', flush=True); c,_=s.accept(); c.sendall(b'from inside ' + open('/etc/hostname','rb').read()); c.close()"`;
      const child = spawn('ssh', [...a.options, '-o', 'ExitOnForwardFailure=yes', '-L', `${local}:127.0.0.1:8765`, a.host, server], { env: { ...process.env, ...a.env } });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      try {
        await waitUntil('the server inside listens', () => out.includes('listening'), { timeoutMs: 60_000 });
        const got = await readAll(connect(local, '127.0.0.1'));
        assert.equal(got, 'from inside box\n');
      } finally {
        child.kill();
      }
      // remote forwarding is refused
      const remote = await ssh(path, 'alice', 'alice/box', 'true', { extra: ['-o', 'ExitOnForwardFailure=yes', '-R', '127.0.0.1:0:127.0.0.1:22'] });
      assert.notEqual(remote.code, 0, 'ssh -R is refused');
    });

    await suite.test(`${path.name}: an editor of a shared workspace gets in, a viewer does not`, async () => {
      const bob = await ssh(path, 'bob', 'ml/shared', 'whoami; echo $ATRIUM_WORKSPACE');
      assert.equal(bob.code, 0, bob.stderr);
      assert.equal(bob.stdout, 'jovyan\nml/shared\n');
      const vic = await ssh(path, 'vic', 'ml/shared', 'echo in');
      assert.notEqual(vic.code, 0);
      assert.equal(vic.stdout, '', 'a viewer runs nothing');
    });
  }

  await suite.test('gateway: an unregistered key, another person’s workspace and a missing workspace are refused with the same message', async () => {
    const stranger = join(work, 'stranger');
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', stranger]);
    const unknownKey = await ssh(gateway, 'alice', 'alice/box', 'echo in', { key: stranger });
    const others = await ssh(gateway, 'mallory', 'alice/box', 'echo in');
    const missing = await ssh(gateway, 'alice', 'alice/nope', 'echo in');
    for (const r of [unknownKey, others, missing]) {
      assert.equal(r.code, 255);
      assert.equal(r.stdout, '');
    }
    assert.match(unknownKey.stderr, /Permission denied \(publickey\)/);
    assert.equal(others.stderr, unknownKey.stderr, 'not yours reads as an unknown key');
    assert.equal(missing.stderr.replace('alice.nope', 'alice.box'), unknownKey.stderr, 'missing reads as an unknown key');
    // each refusal is an audit row, with the reason only admins see
    const audit = await t.call('GET', '/api/v1/audit?action=ssh.session&limit=100', { token: t.adminToken });
    const results = audit.body.items.filter((e: any) => e.details.path === 'gateway').map((e: any) => e.result);
    for (const reason of ['unknown_key', 'forbidden', 'not_found']) assert.ok(results.includes(reason), `audit has ${reason}: ${results.join(',')}`);
    assert.ok((await metric('atrium_ssh_refusals_total{path="gateway",reason="unknown_key"}')) >= 1);
  });

  await suite.test('gateway: ECDSA and RSA keys sign in too (RSA with SHA-2 signatures only)', async () => {
    for (const [type, bits] of [['ecdsa', '256'], ['ecdsa', '521'], ['rsa', '3072']] as const) {
      const key = join(work, `alice-${type}-${bits}`);
      await run('ssh-keygen', ['-q', '-t', type, '-b', bits, '-N', '', '-f', key]);
      const added = await t.call('POST', '/api/v1/me/ssh-keys', { token: tokens.alice!, body: { publicKey: readFileSync(`${key}.pub`, 'utf8') } });
      assert.equal(added.status, 201, JSON.stringify(added.body));
      const r = await ssh(gateway, 'alice', 'alice/box', 'echo in', { key });
      assert.equal(r.stdout, 'in\n', `${type} ${bits}: ${r.stderr}`);
      if (type === 'rsa') {
        const sha1 = await ssh(gateway, 'alice', 'alice/box', 'echo in', { key, extra: ['-o', 'PubkeyAcceptedAlgorithms=ssh-rsa'] });
        assert.equal(sha1.code, 255, 'an RSA signature with SHA-1 is refused');
      }
      await t.call('DELETE', `/api/v1/me/ssh-keys/${added.body.id}`, { token: tokens.alice! });
    }
  });

  await suite.test('tunnel: another person’s workspace and a missing one are refused alike; an unregistered key is refused by the workspace', async () => {
    const others = await ssh(tunnel, 'mallory', 'alice/box', 'echo in');
    const missing = await ssh(tunnel, 'mallory', 'alice/nope', 'echo in');
    assert.equal(others.stdout, '');
    assert.notEqual(others.code, 0);
    assert.match(others.stderr, /not_found: workspace alice\/box/);
    assert.equal(missing.stderr.replace('alice/nope', 'alice/box'), others.stderr);
    const stranger = join(work, 'stranger-tunnel');
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', stranger]);
    const unknownKey = await ssh(tunnel, 'alice', 'alice/box', 'echo in', { key: stranger });
    assert.equal(unknownKey.code, 255);
    assert.match(unknownKey.stderr, /Permission denied \(publickey\)/);
    // without the upgrade, the route says what it is
    const plain = await t.call('GET', '/api/v1/teams/alice/workspaces/box/ssh', { token: tokens.alice! });
    assert.equal(plain.status, 426);
    assert.equal(plain.body.error.code, 'upgrade_required');
  });

  await suite.test('a key removed, or a membership ended, is refused at the next connect on both paths', async () => {
    const second = join(work, 'alice-second');
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', second]);
    const added = await t.call('POST', '/api/v1/me/ssh-keys', { token: tokens.alice!, body: { publicKey: readFileSync(`${second}.pub`, 'utf8') } });
    assert.equal(added.status, 201);
    for (const path of [gateway, tunnel]) assert.equal((await ssh(path, 'alice', 'ml/shared', 'echo in', { key: second })).stdout, 'in\n', `${path.name}: a key added to a running workspace works at once`);
    assert.equal((await t.call('DELETE', `/api/v1/me/ssh-keys/${added.body.id}`, { token: tokens.alice! })).status, 204);
    for (const path of [gateway, tunnel]) {
      const r = await ssh(path, 'alice', 'ml/shared', 'echo in', { key: second });
      assert.equal(r.code, 255, `${path.name}: the removed key is refused: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, /Permission denied \(publickey\)/);
    }
    // bob leaves the team while he has a session open on each path: both end, and his key no longer opens the shared workspace
    const release = new AbortController();
    const open = [gateway, tunnel].map((path) => ssh(path, 'bob', 'ml/shared', 'sleep 600', { timeoutMs: 120_000, signal: release.signal }));
    await waitUntil('both sessions are open', async () => (await metric('atrium_ssh_sessions_open{path="gateway"}')) >= 1 && (await metric('atrium_ssh_sessions_open{path="tunnel"}')) >= 1);
    assert.equal((await t.call('DELETE', '/api/v1/teams/ml/members/bob', { token: t.adminToken })).status, 204);
    const ended = await Promise.race([Promise.all(open), new Promise<undefined>((r) => setTimeout(() => r(undefined), 60_000))]);
    release.abort();
    assert.ok(ended, 'open sessions end once their person may no longer enter (each would otherwise run ten minutes)');
    for (const path of [gateway, tunnel]) {
      const r = await ssh(path, 'bob', 'ml/shared', 'echo in');
      assert.notEqual(r.code, 0, `${path.name}: an ended membership is refused`);
      assert.equal(r.stdout, '');
    }
    // what the workspace's sshd holds: the gateway's key and alice's, nobody else's
    const keys = await ssh(gateway, 'alice', 'ml/shared', 'cut -d" " -f4 /etc/ssh/authorized_keys');
    assert.deepEqual(keys.stdout.trim().split('\n').sort(), ['alice', 'atrium-gateway'].sort());
    await t.call('PUT', '/api/v1/teams/ml/members/bob', { token: t.adminToken, body: { role: 'editor' } });
    assert.equal((await ssh(tunnel, 'bob', 'ml/shared', 'echo back')).stdout, 'back\n', 'and back in once he is an editor again');
  });

  await suite.test('50 concurrent sessions work, through each path; past the per-person cap a session is refused and says why', async () => {
    for (const path of [gateway, tunnel]) {
      const results = await Promise.all(Array.from({ length: 50 }, (_, i) => ssh(path, 'alice', 'alice/box', `sleep 1; echo ok-${i}`, { timeoutMs: 120_000 })));
      const failed = results.map((r, i) => ({ r, i })).filter(({ r, i }) => r.code !== 0 || r.stdout !== `ok-${i}\n`);
      assert.deepEqual(failed.map(({ r, i }) => `${i}: ${r.code} ${r.stdout}${r.stderr}`), [], `${path.name}: every session ran`);
    }
    // hold the cap's worth open, then one more
    const release = new AbortController();
    const held = Array.from({ length: MAX_SESSIONS }, () => ssh(gateway, 'alice', 'alice/box', 'sleep 600', { timeoutMs: 120_000, signal: release.signal }));
    await waitUntil('every held session is open', async () => (await metric('atrium_ssh_sessions_open{path="gateway"}')) >= MAX_SESSIONS, { timeoutMs: 90_000 });
    const over = await ssh(gateway, 'alice', 'alice/box', 'echo in');
    assert.equal(over.stdout, '');
    assert.match(over.stderr, /too many SSH sessions|you have \d+ SSH sessions open/);
    const overTunnel = await ssh(tunnel, 'alice', 'alice/box', 'echo in');
    assert.match(overTunnel.stderr, /too_many_connections/);
    release.abort();
    await Promise.all(held);
    await waitUntil('the held sessions are closed', async () => (await metric('atrium_ssh_sessions_open{path="gateway"}')) === 0);
  });

  await suite.test('a stopped workspace starts on connect, with progress on the terminal, through each path', async () => {
    for (const path of [gateway, tunnel]) {
      assert.equal((await t.call('POST', '/api/v1/teams/mallory/workspaces/own/stop', { token: tokens.mallory! })).status, 200);
      await t.waitPhase(tokens.mallory!, 'mallory/own', ['stopped']);
      const r = await ssh(path, 'mallory', 'mallory/own', 'echo up', { timeoutMs: 180_000 });
      assert.equal(r.stdout, 'up\n', `${path.name}: ${r.stderr}`);
      assert.match(r.stderr, /\[atrium\] starting workspace mallory\/own/);
    }
    const audit = await t.call('GET', '/api/v1/audit?action=workspace.start&limit=20', { token: t.adminToken });
    assert.ok(audit.body.items.some((e: any) => e.actor === 'mallory' && e.details.via === 'ssh'), 'the start is in the audit log');
  });

  await suite.test('sessions are audited, counted in /metrics and keep the workspace active', async () => {
    const before = await metric('atrium_ssh_sessions_total{path="tunnel"}');
    const r = await ssh(tunnel, 'alice', 'alice/box', 'head -c 1000000 /dev/zero');
    assert.equal(r.stdout.length, 1_000_000);
    assert.equal(await metric('atrium_ssh_sessions_total{path="tunnel"}'), before + 1);
    await waitUntil('the session end is counted', async () => (await metric('atrium_ssh_sent_bytes_total{path="tunnel"}')) >= 1_000_000);
    const audit = await t.call('GET', '/api/v1/audit?action=ssh.session&actor=alice&limit=50', { token: t.adminToken });
    const events = audit.body.items.filter((e: any) => e.result === 'ok').map((e: any) => e.details.event);
    assert.ok(events.includes('start') && events.includes('end'), `start and end rows: ${events.join(',')}`);
    // a long session is activity: the workspace's last-activity time moves while it is open
    const id = await t.wsId('alice/box');
    const seen = (await t.server.store.workspaceStates.get(id))!.lastActivityAt ?? 0;
    const held = ssh(gateway, 'alice', 'alice/box', 'sleep 3', { timeoutMs: 60_000 });
    await waitUntil('the session is open', async () => (await metric('atrium_ssh_sessions_open{path="gateway"}')) >= 1);
    await t.server.proxy.activity.flush();
    assert.ok(((await t.server.store.workspaceStates.get(id))!.lastActivityAt ?? 0) > seen, 'an open SSH session counts as activity');
    await held;
  });

  await suite.test('agent forwarding only where the profile allows it, and only for the owner', async () => {
    await t.call('POST', '/api/v1/teams/ml/workspaces', { token: tokens.alice!, body: { name: 'agentok', profile: 'fwd', shared: true } });
    await t.waitPhase(tokens.alice!, 'ml/agentok', ['running']);
    const dir = mkdtempSync(join(tmpdir(), 'atrium-agent-'));
    const sock = join(dir, 'agent.sock');
    const agent = spawn('ssh-agent', ['-D', '-a', sock], { stdio: 'ignore' });
    try {
      await waitUntil('the agent listens', () => existsSync(sock));
      const extra = join(work, 'in-agent');
      await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', extra]);
      assert.equal((await run('ssh-add', [extra], 10_000, { SSH_AUTH_SOCK: sock })).code, 0);
      const probe = 'ssh-add -l >/dev/null 2>&1; echo "list=$?"';
      const withAgent = async (user: string, ref: string) => {
        const a = await gateway.args(user, ref);
        return exec('ssh', [...a.options.map((o) => (o === 'IdentityAgent=none' ? `IdentityAgent=${sock}` : o)), '-A', a.host, probe], { env: { SSH_AUTH_SOCK: sock } });
      };
      assert.match((await withAgent('alice', 'ml/agentok')).stdout, /list=0/, "the owner's agent reaches a workspace whose profile allows it");
      assert.match((await withAgent('bob', 'ml/agentok')).stdout, /list=2/, "an editor's agent does not reach someone else's workspace");
      assert.match((await withAgent('alice', 'alice/box')).stdout, /list=2/, 'no agent where the profile does not allow it');
    } finally {
      agent.kill();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  await suite.test('atrium config-ssh writes one block that plain ssh uses, updates it in place, and a VS Code style connection works through it', async () => {
    const home = join(work, 'home-bob');
    const config = join(home, 'ssh_config');
    mkdirSync(home, { recursive: true });
    writeFileSync(config, 'ServerAliveInterval 30\n\nHost other\n  HostName 192.0.2.1\n');
    const env = { ATRIUM_URL: t.url, ATRIUM_TOKEN: tokens.bob!, ATRIUM_USER: 'bob', XDG_CONFIG_HOME: join(home, '.config') };
    const dry = await exec(process.execPath, [MAIN, 'config-ssh', '--file', config, '--dry-run'], { env });
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /^\+Host atrium\.ml\.shared$/m);
    assert.equal(readFileSync(config, 'utf8'), 'ServerAliveInterval 30\n\nHost other\n  HostName 192.0.2.1\n', '--dry-run writes nothing');
    for (let i = 0; i < 2; i++) assert.equal((await exec(process.execPath, [MAIN, 'config-ssh', '--file', config], { env })).code, 0);
    const written = readFileSync(config, 'utf8');
    assert.equal(written.match(/^# BEGIN atrium/gm)?.length, 1, 'one block after two runs');
    assert.match(written, /^Host atrium\.ml\.shared$/m);
    assert.ok(written.endsWith('ServerAliveInterval 30\n\nHost other\n  HostName 192.0.2.1\n'), 'the rest of the file is kept');
    const sshArgs = ['-F', config, '-i', t.keyFile('bob'), '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes'];
    const hi = await exec('ssh', [...sshArgs, 'atrium.ml.shared', 'echo hi'], { env });
    assert.equal(hi.stdout, 'hi\n', hi.stderr);
    // VS Code Remote-SSH: `ssh -T -D <port> host bash`, a script on stdin that starts a server on a loopback port inside and prints it, then connections through the SOCKS proxy
    const socks = await freePort();
    const script = `python3 -c "
import socket, threading
s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(4)
print('listeningOn==' + str(s.getsockname()[1]) + '==', flush=True)
c, _ = s.accept(); c.sendall(b'vscode-server ok'); c.close()
"\n`;
    const child = spawn('ssh', [...sshArgs, '-T', '-D', String(socks), 'atrium.ml.shared', 'bash'], { env: { ...process.env, ...env } });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stdin.write(script);
    try {
      const port = await waitUntil('the server inside says its port', () => /listeningOn==(\d+)==/.exec(out)?.[1], { timeoutMs: 60_000 });
      const s = await waitUntil('the SOCKS proxy is up', () => socksConnect(socks, '127.0.0.1', Number(port)).catch(() => undefined), { timeoutMs: 30_000 });
      assert.equal(await readAll(s), 'vscode-server ok');
    } finally {
      child.kill();
    }
    // --gateway writes entries for the gateway instead, as plain ssh uses them too
    assert.equal((await exec(process.execPath, [MAIN, 'config-ssh', '--file', config, '--gateway'], { env })).code, 0);
    assert.match(readFileSync(config, 'utf8'), new RegExp(`Host atrium\\.ml\\.shared\\n  HostName 127\\.0\\.0\\.1\\n  Port ${gatewayPort}\\n  User ml\\.shared`));
    assert.equal((await exec('ssh', [...sshArgs, 'atrium.ml.shared', 'echo gw'], { env })).stdout, 'gw\n');
  });
});

test('the gateway closes a connection that does not sign in, or that carries nothing, and limits failed sign-ins per address', async () => {
  const s = await startServer({ flags: { 'ssh.handshakeTimeout': '2s', 'ssh.idleTimeout': '2s', 'auth.loginAttempts': 1 } });
  const port = s.server.ssh.port!;
  const dir = mkdtempSync(join(tmpdir(), 'atrium-ssh-limits-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  // a connection that says nothing after the banner is closed
  const raw = connect(port, '127.0.0.1');
  let banner = '';
  raw.on('data', (d: Buffer) => (banner += d.toString()));
  const closed = await readAll(raw);
  assert.match(closed || banner, /^SSH-2\.0-Atrium/, 'the gateway said who it is, then closed the silent connection');

  const token = await s.user('idle');
  const key = join(dir, 'idle');
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
  assert.equal((await s.call('POST', '/api/v1/me/ssh-keys', { token, body: { publicKey: readFileSync(`${key}.pub`, 'utf8') } })).status, 201);
  assert.equal((await s.call('POST', '/api/v1/teams/idle/workspaces', { token, body: { name: 'quiet', profile: 'small' } })).status, 201);
  const opts = ['-F', '/dev/null', '-o', 'IdentitiesOnly=yes', '-o', 'IdentityAgent=none', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-p', String(port)];
  // signed in, then nothing either way: closed after the idle timeout
  const idle = await exec('ssh', [...opts, '-i', key, '-N', 'quiet@127.0.0.1'], { timeoutMs: 60_000 });
  assert.equal(idle.code, 255, `ssh -N ended by the gateway: ${idle.stderr}`);

  // ten failed sign-ins from one address (loginAttempts 1: ten per address), then even the right key is refused
  const stranger = join(dir, 'stranger');
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', stranger]);
  for (let i = 0; i < 10; i++) assert.equal((await exec('ssh', [...opts, '-i', stranger, 'quiet@127.0.0.1', 'true'])).code, 255);
  const limited = await exec('ssh', [...opts, '-i', key, 'quiet@127.0.0.1', 'true']);
  assert.equal(limited.code, 255);
  assert.match(limited.stderr, /Permission denied|Connection closed|closed by remote host/);
  const audit = await s.call('GET', '/api/v1/audit?action=ssh.session&limit=50', { token: s.adminToken });
  assert.ok(audit.body.items.some((e: any) => e.result === 'rate_limited'), 'the refusal is audited as rate_limited');
  // password sign-ins from the same address share the limit (and the SSH refusals above were real sign-ins, not scans)
  const login = await s.call('POST', '/api/v1/auth/login', { body: { username: 'idle', password: 'pw-idle-secret' } });
  assert.equal(login.status, 429);
});

test('attacks on the gateway and the tunnel: a forged signature, a malformed tunnel address', async () => {
  const s = await startServer();
  const port = s.server.ssh.port!;
  const dir = mkdtempSync(join(tmpdir(), 'atrium-ssh-attacks-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const token = await s.user('victim');
  const key = join(dir, 'victim');
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
  assert.equal((await s.call('POST', '/api/v1/me/ssh-keys', { token, body: { publicKey: readFileSync(`${key}.pub`, 'utf8') } })).status, 201);
  assert.equal((await s.call('POST', '/api/v1/teams/victim/workspaces', { token, body: { name: 'secret', profile: 'small' } })).status, 201);

  // someone holding only the victim's public key names another signature algorithm than the key's (rsa-sha2-256 for an
  // Ed25519 key) and sends garbage for a signature: a check that cannot run must not count as a good signature
  const { default: ssh2 } = await import('ssh2');
  const protocolModule: { default: { prototype: { authPK: (...a: unknown[]) => unknown } } } = await import(PROTOCOL_MODULE);
  const proto = protocolModule.default.prototype;
  const original = proto.authPK;
  proto.authPK = function (this: unknown, user: unknown, pub: unknown, algo: unknown, cb: unknown) {
    return typeof algo === 'function' ? original.call(this, user, pub, 'rsa-sha2-256', algo) : original.call(this, user, pub, 'rsa-sha2-256', cb);
  };
  const publicKey = ssh2.utils.parseKey(readFileSync(`${key}.pub`));
  class PublicOnly extends ssh2.BaseAgent {
    override getIdentities(cb: any) {
      cb(undefined, [publicKey]);
    }
    override sign(_k: any, _d: any, o: any, cb?: any) {
      (cb ?? o)(undefined, Buffer.alloc(64, 0x41));
    }
  }
  try {
    const outcome = await new Promise<string>((resolve) => {
      const c = new ssh2.Client();
      c.on('ready', () => {
        c.end();
        resolve('signed in');
      });
      c.on('error', (err) => resolve(err.message));
      c.connect({ host: '127.0.0.1', port, username: 'secret', authHandler: [{ type: 'agent', username: 'secret', agent: new PublicOnly() }] as never, hostVerifier: () => true });
    });
    assert.match(outcome, /All configured authentication methods failed/, 'a forged signature is refused');
  } finally {
    proto.authPK = original;
  }

  // a tunnel address that does not decode, sent before any sign-in, is refused and the server stays up
  const raw = connect(Number(new URL(s.url).port), '127.0.0.1');
  raw.write('GET /api/v1/teams/%E0/workspaces/x/ssh HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: ssh\r\n\r\n');
  const answer = await readAll(raw);
  assert.match(answer, /^HTTP\/1\.1 401 /, answer);
  assert.equal((await s.call('GET', '/healthz')).status, 200, 'the server answers after it');
});
