import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ADMIN_PASSWORD, startServer, waitUntil, type TestServer } from './helpers.js';

/** Helpers for suites that run real sandboxes: they need root, runc and the built agent. */
export const AGENT = fileURLToPath(new URL('../dist/agent/atrium-agent', import.meta.url));
const PROXY = fileURLToPath(new URL('./ssh-proxy.mjs', import.meta.url));

/** Suites with real sandboxes run as root; in CI a missing root is an error, elsewhere a skip with the reason. */
export function sandboxesAvailable(): true | string {
  if (process.getuid?.() === 0) return true;
  if (process.env.CI) throw new Error('sandbox suites need root; CI runs them as root');
  return 'needs root to create sandboxes';
}

const ECHO_APP = `
import json, os, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    def answer(self):
        sys.stderr.write('access "%s %s %s"\\n' % (self.command, self.path, self.request_version))
        path = self.path.split('?')[0]
        ctype = 'text/plain'
        if path.endswith('/echo'):
            body = json.dumps({k.lower(): v for k, v in self.headers.items()}).encode()
            ctype = 'application/json'
            self.send_response(200)
            # every way an app might try to reach past its own origin, or to set one of Atrium's cookies
            for c in ('app=1; Path=/; Domain=localhost', 'spaced=1; Path=/; Domain =localhost', 'upper=1; DOMAIN=.localhost ; Path=/',
                      '__Host-atrium_app=forged; Path=/; Secure', '__host-ATRIUM_session=forged; Path=/; Secure', 'atrium_session=forged', 'nameless', '=atrium_session=forged'):
                self.send_header('set-cookie', c)
        elif path.endswith('.html') and os.path.isfile('/home/jovyan/' + os.path.basename(path)):
            body = open('/home/jovyan/' + os.path.basename(path), 'rb').read()
            ctype = 'text/html'
            self.send_response(200)
        else:
            body = b'not here'
            self.send_response(404)
        self.send_header('content-type', ctype)
        self.send_header('content-length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_GET = do_POST = answer
    def log_message(self, *args):
        pass
ThreadingHTTPServer(('127.0.0.1', 9000), H).serve_forever()
`;

export const PROFILES = [
  { name: 'tiny', displayName: 'Tiny', environment: 'shell', cpu: { guarantee: '50m', limit: '500m' }, memory: { guarantee: '32Mi', limit: '256Mi' }, storage: '32Mi' },
  { name: 'lab', displayName: 'Lab', environment: 'jupyter', cpu: { guarantee: '100m', limit: '1' }, memory: { guarantee: '128Mi', limit: '512Mi' }, storage: '64Mi' },
  // a small web app that logs every request line (an access log), echoes the headers it got at …/echo and serves the home's .html files
  { name: 'web', displayName: 'Web', environment: { kind: 'custom', command: ['/usr/bin/python3', '-u', '-c', ECHO_APP], port: 9000 }, cpu: { guarantee: '50m', limit: '500m' }, memory: { guarantee: '32Mi', limit: '128Mi' }, storage: '16Mi' },
  { name: 'broken', displayName: 'Broken', environment: { kind: 'custom', command: ['/bin/sh', '-c', 'echo about to fail; exit 3'], port: 9000 }, cpu: { guarantee: '50m', limit: '500m' }, memory: { guarantee: '32Mi', limit: '128Mi' }, storage: '16Mi' },
  { name: 'missing', displayName: 'Missing', environment: { kind: 'custom', command: ['/usr/bin/no-such-program'], port: 9000 }, cpu: { guarantee: '50m', limit: '500m' }, memory: { guarantee: '32Mi', limit: '128Mi' }, storage: '16Mi' },
  { name: 'vault', displayName: 'Vault', environment: 'shell', tier: 'sandboxed', cpu: { guarantee: '50m', limit: '500m' }, memory: { guarantee: '32Mi', limit: '128Mi' }, storage: '16Mi' },
  { name: 'huge', displayName: 'Huge', environment: 'shell', cpu: { guarantee: '64', limit: '64' }, memory: { guarantee: '32Mi', limit: '128Mi' }, storage: '16Mi' },
  { name: 'h100', displayName: 'H100', environment: 'shell', cpu: { guarantee: '50m', limit: '500m' }, memory: { guarantee: '32Mi', limit: '128Mi' }, gpu: { count: 1, type: 'h100' }, storage: '16Mi' },
  { name: 'online', displayName: 'Online', environment: 'shell', egress: 'public', cpu: { guarantee: '50m', limit: '500m' }, memory: { guarantee: '32Mi', limit: '128Mi' }, storage: '16Mi' },
  { name: 'gpu', displayName: 'GPU', environment: 'shell', cpu: { guarantee: '50m', limit: '500m' }, memory: { guarantee: '32Mi', limit: '128Mi' }, gpu: { count: 1, type: 'fake' }, storage: '16Mi' },
];

export interface SandboxServer extends TestServer {
  dataDir: string;
  waitPhase(token: string, ref: string, phases: string[], timeoutMs?: number): Promise<any>;
  /** Runs a shell command inside a workspace over SSH, as its user would (with the key of `user`, by default the user named like the team); `agent` forwards the ssh-agent listening there (`ssh -A`). A command still running at `timeoutMs` is killed (code -1). */
  sh(ref: string, command: string, timeoutMs?: number, opts?: { agent?: string; user?: string }): Promise<{ code: number; stdout: string; stderr: string }>;
  /** The private key `addKey` made for a user. */
  keyFile(username: string): string;
  /** Makes and registers an SSH key for a user (before their workspace starts); `sh` into their personal team's workspaces uses it. */
  addKey(token: string, username: string): Promise<void>;
  wsId(ref: string): Promise<string>;
}

/** Each test server gets its own uid range, so suites running side by side never share a host uid. */
export function uidBase(): number {
  return 3_000_000 + (process.pid % 5000) * 100 + Math.floor(Math.random() * 100) * 500_000;
}

export async function startSandboxServer(flags: Record<string, unknown> = {}): Promise<SandboxServer> {
  const dataDir = mkdtempSync(join(tmpdir(), 'atrium-sbx-'));
  const t = await startServer({
    flags: { dataDir, 'runtime.kind': 'local', 'runtime.agent': AGENT, 'runtime.stopGrace': '2s', 'runtime.readinessTimeout': '60s', 'runtime.reserve': { cpu: '0', memory: '0' }, 'runtime.uidBase': uidBase(), profiles: PROFILES, ...flags },
  });
  after(async () => {
    // stop every sandbox this server made, then its files
    const rt = t.server.runtime!;
    for (const o of await rt.inventory()) await rt.remove(o.workspaceId, { purge: true });
    // and the volumes it mounted
    await rt.syncVolumes?.([]);
    rmSync(dataDir, { recursive: true, force: true });
  });
  const keyDir = mkdtempSync(join(tmpdir(), 'atrium-keys-'));
  after(() => rmSync(keyDir, { recursive: true, force: true }));
  const refPath = (ref: string) => `/api/v1/teams/${ref.split('/')[0]}/workspaces/${ref.split('/')[1]}`;
  const wsId = async (ref: string) => (await t.call('GET', refPath(ref), { token: t.adminToken })).body.id as string;
  return {
    ...t,
    dataDir,
    wsId,
    async addKey(token, username) {
      const key = join(keyDir, username);
      await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
      const r = await t.call('POST', '/api/v1/me/ssh-keys', { token, body: { publicKey: readFileSync(`${key}.pub`, 'utf8') } });
      assert.equal(r.status, 201, JSON.stringify(r.body));
    },
    // generous: a start on a loaded machine may take most of runtime.readinessTimeout (60s) before it is running or failed
    async waitPhase(token, ref, phases, timeoutMs = 120_000) {
      const deadline = Date.now() + timeoutMs;
      let last: any;
      while (Date.now() < deadline) {
        last = (await t.call('GET', refPath(ref), { token })).body;
        if (phases.includes(last.phase)) return last;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`${ref} did not reach ${phases.join('/')} (last: ${JSON.stringify(last)})`);
    },
    keyFile: (username) => join(keyDir, username),
    async sh(ref, command, timeoutMs = 60_000, opts = {}) {
      const socket = join(dataDir, 'local', 'run', await wsId(ref), 'ssh.sock');
      const key = join(keyDir, opts.user ?? ref.split('/')[0]!);
      const agent = opts.agent === undefined ? ['-o', 'ForwardAgent=no'] : ['-o', 'ForwardAgent=yes'];
      const args = ['-F', '/dev/null', '-i', key, '-o', 'IdentitiesOnly=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', '-o', 'BatchMode=yes', ...agent, '-o', `ProxyCommand=${process.execPath} ${PROXY} ${socket}`, 'jovyan@workspace', '--', command];
      return run('ssh', args, timeoutMs, opts.agent === undefined ? {} : { SSH_AUTH_SOCK: opts.agent });
    },
  };
}

export function run(file: string, args: string[], timeoutMs = 30_000, env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: timeoutMs, maxBuffer: 16 << 20, env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));

/**
 * `atrium serve` (the built dist/main.js) as a child process on `dataDir`
 * with the config file `config`, for suites that kill it with SIGKILL and
 * start it again. `login` signs the admin in (bootstrapped with
 * ADMIN_PASSWORD); `call` talks to whichever process runs now.
 */
export function serveProcess(opts: { config: string; dataDir: string; port?: number }) {
  let server: ChildProcess | undefined;
  let url = '';
  let output = '';
  const self = {
    get url() {
      return url;
    },
    /** everything every process printed so far */
    get output() {
      return output;
    },
    start: async (): Promise<void> => {
      const s = spawn(process.execPath, [MAIN, 'serve', '--config', opts.config, '--port', String(opts.port ?? 0), '--ssh-port', '0', '--data-dir', opts.dataDir, '--admin-password', ADMIN_PASSWORD], { stdio: ['ignore', 'pipe', 'pipe'] });
      server = s;
      let out = '';
      let exited: number | string | null | undefined;
      const take = (d: Buffer) => {
        out += d.toString();
        output += d.toString();
      };
      s.stdout.on('data', take);
      s.stderr.on('data', take);
      s.once('exit', (code, signal) => (exited = code ?? signal));
      // a Node start on a loaded machine can take seconds: wait for the line that says it listens, or for it to exit
      await waitUntil('the control plane to listen', () => /running at (\S+)/.test(out) || exited !== undefined, { timeoutMs: 60_000, everyMs: 50, last: () => out });
      url = /running at (\S+)/.exec(out)?.[1] ?? assert.fail(`server did not start (exit ${exited}): ${out}`);
    },
    kill9: async (): Promise<void> => {
      const s = server;
      if (!s || s.exitCode !== null || s.signalCode !== null) return;
      s.kill('SIGKILL');
      await new Promise((r) => s.once('exit', r));
    },
    call: async (method: string, path: string, token: string, body?: unknown): Promise<{ status: number; body: any }> => {
      const res = await fetch(url + path, { method, headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { body: JSON.stringify(body) } : {}) });
      return { status: res.status, body: await res.json().catch(() => undefined) };
    },
    login: async (): Promise<string> => {
      const res = await fetch(`${url}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD, token: { name: 'test' } }) });
      return ((await res.json()) as { token: string }).token;
    },
    /** Flips about half of the admin team's `workspaces` (start ↔ stop) at once, then kills the process while it works. */
    flipAndKill: async (token: string, workspaces: string[], maxDelayMs: number): Promise<void> => {
      const flips = workspaces.filter(() => Math.random() < 0.5);
      await Promise.all(flips.map(async (n) => {
        const ws = (await self.call('GET', `/api/v1/teams/admin/workspaces/${n}`, token)).body;
        await self.call('POST', `/api/v1/teams/admin/workspaces/${n}/${ws.desired === 'running' ? 'stop' : 'start'}`, token);
      }));
      await new Promise((r) => setTimeout(r, 50 + Math.random() * maxDelayMs));
      await self.kill9();
    },
    /**
     * The admin team's workspaces once they settle after a restart. Right
     * after one the API still shows what the database said before the crash,
     * and adoption reconciles that with the sandboxes while the API answers
     * (clearing away what a crash left half-done, finishing interrupted
     * stops): this waits for the state the product gets to, every phase
     * settled and the sandboxes agreeing with it, running exactly where the
     * API says so and none on its way out. What never gets there (within
     * 3 minutes) is returned as it is, for the caller's assertions to report.
     */
    settled: async (token: string): Promise<any[]> => {
      const runcRoot = join(opts.dataDir, 'local', 'runc');
      let list: any[] = [];
      await waitUntil('the workspaces and their sandboxes to settle', async () => {
        list = (await self.call('GET', '/api/v1/teams/admin/workspaces', token)).body.items;
        const settled = list.every((w) => (w.desired === 'running' ? ['running', 'failed'] : ['stopped', 'pending']).includes(w.phase));
        const sandboxes = (JSON.parse((await run('runc', ['--root', runcRoot, 'list', '--format', 'json'])).stdout || '[]') as Array<{ id: string; status: string }> | null) ?? [];
        const same = (a: string[], b: string[]) => JSON.stringify([...a].sort()) === JSON.stringify([...b].sort());
        const agree = sandboxes.every((c) => c.status === 'running') && same(sandboxes.map((c) => c.id), list.filter((w) => w.phase === 'running').map((w) => w.id as string));
        const stopping = list.some((w) => existsSync(join(opts.dataDir, 'local', 'run', w.id, 'stopping')));
        return settled && agree && !stopping;
      }, { timeoutMs: 180_000, everyMs: 500 }).catch(() => undefined);
      return list;
    },
    /** Kills the process, then removes every sandbox and home mount it left, and the data directory. */
    cleanUp: async (): Promise<void> => {
      await self.kill9();
      const runcRoot = join(opts.dataDir, 'local', 'runc');
      for (const id of (await run('runc', ['--root', runcRoot, 'list', '-q'])).stdout.split('\n').filter(Boolean)) await run('runc', ['--root', runcRoot, 'delete', '-f', id]);
      const mnt = join(opts.dataDir, 'local', 'mnt');
      for (const id of existsSync(mnt) ? readdirSync(mnt) : []) await run('umount', ['-l', join(mnt, id)]);
      rmSync(opts.dataDir, { recursive: true, force: true });
    },
  };
  return self;
}
