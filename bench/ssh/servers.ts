import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { REPO_ROOT } from '../lib/paths.js';
import { freePort, onCleanup, run, startProcess, stopProcess, waitUntil, type Managed } from '../lib/proc.js';

/** `type base64`, without a comment. */
const keyOnly = (line: string) => line.trim().split(/\s+/).slice(0, 2).join(' ');

/** Resolves once something on `port` sends an SSH banner. */
function sshBanner(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(2000, () => done(false));
    s.once('data', (d: Buffer) => done(d.toString('latin1').startsWith('SSH-')));
    s.once('error', () => done(false));
  });
}

export interface PlainSshd {
  proc: Managed;
  port: number;
  /** `ssh-ed25519 AAAA…` */
  hostKey: string;
}

/**
 * The anchor: Debian's own sshd on a free loopback port, run by this
 * benchmark in the foreground with a host key made for the run and an
 * authorized_keys holding only the run's throwaway key. Root may sign in
 * with that key (prohibit-password); no PAM, as in a workspace's sshd.
 * Everything else is OpenSSH's default, ciphers included.
 */
export async function startPlainSshd(work: string, clientPublicKey: string): Promise<PlainSshd> {
  const dir = join(work, 'sshd');
  mkdirSync(dir, { mode: 0o700 });
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'atrium-bench-ssh-host', '-f', join(dir, 'host_ed25519')]);
  writeFileSync(join(dir, 'authorized_keys'), clientPublicKey, { mode: 0o600 });
  // sshd's privilege-separation directory; Debian's service makes it at boot, nothing here may have
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const port = await freePort();
  const config = join(dir, 'sshd_config');
  writeFileSync(
    config,
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${join(dir, 'host_ed25519')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'PermitRootLogin prohibit-password',
      // the work directory is under /tmp, which is world-writable: sshd would refuse the key file there
      'StrictModes no',
      'PrintMotd no',
      'PrintLastLog no',
      'PidFile none',
      'LogLevel ERROR',
      // the bastion case opens direct-tcpip channels to this same sshd (the default, said here as it matters)
      'AllowTcpForwarding yes',
      '',
    ].join('\n'),
  );
  const proc = startProcess('sshd', '/usr/sbin/sshd', ['-D', '-e', '-f', config], { logFile: join(work, 'sshd.log') });
  await waitUntil('sshd to answer', () => sshBanner(port), { timeoutMs: 15_000, proc });
  const hostKey = keyOnly(readFileSync(join(dir, 'host_ed25519.pub'), 'utf8'));
  return { proc, port, hostKey };
}

/** The profile the workspace runs with: 2 CPUs of limit, so the sandbox's sshd is not what holds a transfer back. */
export const BENCH_PROFILE = {
  name: 'bench',
  displayName: 'Bench',
  environment: 'shell',
  cpu: { guarantee: '1', limit: '2' },
  memory: { guarantee: '512Mi', limit: '2Gi' },
  storage: '2Gi',
  idleTimeout: 'never',
};

export interface AtriumForSsh {
  proc: Managed;
  url: string;
  token: string;
  username: string;
  team: string;
  workspace: string;
  workspaceId: string;
  gateway: { port: number; hostKey: string };
  /** the workspace's sshd host key, `ssh-ed25519 AAAA…` */
  workspaceHostKey: string;
  /** the sandbox's PID 1 (the agent) on the host, for its cgroup */
  sandboxPid: number;
  /** deletes the workspace (with its home) and waits for its sandbox to go; then stops the server */
  stop(): Promise<void>;
  /** when the server has exited before `stop`: how, and the end of its log */
  died(): string | undefined;
}

/**
 * `atrium serve` as root with the local runtime, on loopback, with the
 * gateway on a free port; the admin registers the run's key, and one
 * workspace of the bench profile is created and waited for until running.
 * `nodeArgs` go to node before the script (`--cpu-prof`, which
 * NODE_OPTIONS may not hold).
 */
export async function startAtrium(work: string, clientPublicKey: string, opts: { nodeArgs?: string[]; workspace: string }): Promise<AtriumForSsh> {
  const main = join(REPO_ROOT, 'dist', 'main.js');
  const agent = join(REPO_ROOT, 'dist', 'agent', 'atrium-agent');
  for (const f of [main, agent]) if (!existsSync(f)) throw new Error(`${f} is missing: build first (npm run build and the agent, or scripts/deps.sh run)`);
  const dataDir = join(work, 'atrium');
  const config = join(work, 'atrium.json');
  // a uid range of its own, away from the default (2,000,000) and the other benchmarks'
  writeFileSync(config, JSON.stringify({ profiles: [BENCH_PROFILE], runtime: { agent, reserve: { cpu: '0', memory: '0' }, uidBase: 6_300_000 }, logLevel: 'warn' }));
  const port = await freePort();
  const password = randomBytes(12).toString('hex');
  // the last resort, should deleting the workspace fail: once the server has stopped (registered first, so it runs after),
  // the sandbox and its home's mount go by hand
  onCleanup('Atrium sandboxes', async () => {
    const root = join(dataDir, 'local', 'runc');
    for (const id of (await run('runc', ['--root', root, 'list', '-q']).catch(() => '')).split('\n').filter(Boolean)) await run('runc', ['--root', root, 'delete', '-f', id]).catch(() => '');
    const mnt = join(dataDir, 'local', 'mnt');
    for (const id of existsSync(mnt) ? readdirSync(mnt) : []) await run('umount', ['-l', join(mnt, id)]).catch(() => '');
  });
  const proc = startProcess('Atrium', process.execPath, [...(opts.nodeArgs ?? []), main, 'serve', '--config', config, '--host', '127.0.0.1', '--port', String(port), '--ssh-port', '0', '--data-dir', dataDir, '--admin-password', password], { logFile: join(work, 'atrium.log') });
  const url = `http://127.0.0.1:${port}`;
  let exit: string | undefined;
  let stopping = false;
  proc.child.on('exit', (code, signal) => (exit = signal ? `killed by ${signal}` : `exited with status ${code}`));
  await waitUntil('Atrium to answer', async () => (await fetch(`${url}/healthz`)).ok, { timeoutMs: 60_000, proc });
  const login = await fetch(`${url}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password, token: { name: 'bench-ssh' } }) });
  if (!login.ok) throw new Error(`login: HTTP ${login.status}`);
  const token = ((await login.json()) as { token: string }).token;
  const call = async (method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> => {
    const send = () => fetch(url + path, { method, headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { body: JSON.stringify(body) } : {}) });
    // minutes pass between calls while ssh runs: a kept-alive connection the server closes just as it is reused fails once
    const res = await send().catch(() => send());
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : {} };
  };
  const key = await call('POST', '/api/v1/me/ssh-keys', { publicKey: clientPublicKey });
  if (key.status !== 201 && key.status !== 200) throw new Error(`registering the key: HTTP ${key.status} ${JSON.stringify(key.body)}`);
  const team = 'admin';
  const name = opts.workspace;
  const wsPath = `/api/v1/teams/${team}/workspaces/${name}`;
  const created = await call('POST', `/api/v1/teams/${team}/workspaces`, { name, profile: BENCH_PROFILE.name });
  if (created.status !== 201) throw new Error(`creating workspace ${team}/${name}: HTTP ${created.status} ${JSON.stringify(created.body)}`);
  const removeWorkspace = onCleanup(`workspace ${team}/${name}`, async () => {
    await call('DELETE', `${wsPath}?purge=true`);
    const runcRoot = join(dataDir, 'local', 'runc');
    await waitUntil('the workspace to be deleted', async () => (await call('GET', wsPath)).status === 404 && (await run('runc', ['--root', runcRoot, 'list', '-q'])).trim() === '', { timeoutMs: 60_000 });
  });
  let workspaceId: string;
  for (const deadline = Date.now() + 120_000; ; await new Promise((r) => setTimeout(r, 100))) {
    if (proc.exited) throw new Error(`Atrium exited (status ${proc.exitCode}) before the workspace ran; see ${proc.logFile}`);
    const w = await call('GET', wsPath);
    if (w.body.phase === 'failed') throw new Error(`workspace ${team}/${name} failed: ${String(w.body.reason)}; see ${proc.logFile}`);
    workspaceId = String(w.body.id);
    if (w.body.phase === 'running') break;
    if (Date.now() > deadline) throw new Error(`workspace ${team}/${name} not running after 120 s (phase ${String(w.body.phase)})`);
  }
  const access = (await call('GET', '/api/v1/me/ssh')).body;
  if (!access.gateway) throw new Error('GET /api/v1/me/ssh names no gateway');
  const mine = (access.workspaces as Array<{ team: string; name: string; hostKey: string }>).find((w) => w.team === team && w.name === name);
  if (!mine?.hostKey) throw new Error(`GET /api/v1/me/ssh has no host key for ${team}/${name}`);
  const sandboxPid = Number(readFileSync(join(dataDir, 'local', 'run', workspaceId, 'pid'), 'utf8'));
  return {
    proc,
    url,
    token,
    username: 'admin',
    team,
    workspace: name,
    workspaceId,
    gateway: { port: Number(access.gateway.port), hostKey: keyOnly(String(access.gateway.hostKey)) },
    workspaceHostKey: keyOnly(mine.hostKey),
    sandboxPid,
    async stop() {
      stopping = true;
      await removeWorkspace();
      await stopProcess(proc);
    },
    died() {
      if (!exit || stopping) return undefined;
      const tail = readFileSync(proc.logFile, 'utf8').trimEnd().split('\n').slice(-15).join('\n');
      return `atrium serve ${exit} during the run; the end of its log (${proc.logFile}):\n${tail}`;
    },
  };
}
