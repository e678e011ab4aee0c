import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { loadKubernetes, type KubeClient } from '../src/runtime/index.js';
import { startServer, waitUntil, type TestServer } from './helpers.js';
import { addNodes, portForwardTo, addVolumes, installAtrium, startControlPlane, type ControlPlane } from './k8s/env.js';
import { freePort, USERS_GID, writeSecret } from './k8s/pod.js';
import { run } from './sandbox.js';

// End to end through the API server: Atrium's cluster has `endpoint: apiserver`,
// and KWOK sends the workspace pod's ports to real local processes: the
// workspace image's entrypoint with the agent, Jupyter and sshd, given the
// pod's Secret. The proxy runs 6*7 in a kernel and the SSH gateway runs a
// command, both through pods/portforward.

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const { createKubeClient, loadKubeConfig } = await loadKubernetes();
let cp: ControlPlane;
let admin: KubeClient;
let t: TestServer;
let work: string;
let pod: ChildProcess | undefined;
let atriumKubeconfig: string;

function rootCheck(): void {
  if (process.getuid?.() !== 0) throw new Error('the end-to-end Kubernetes access test runs the workspace as a user of its own and needs root; CI runs it as root');
}

before(async () => {
  rootCheck();
  // the SSH gateway signs in to every workspace as jovyan: the pod's user, here a user of this machine
  if ((await run('id', ['-u', 'jovyan'])).code !== 0) {
    const made = await run('useradd', ['--system', '--gid', String(USERS_GID), '--shell', '/bin/bash', '--no-create-home', 'jovyan']);
    if (made.code !== 0 && (await run('id', ['-u', 'jovyan'])).code !== 0) assert.fail(`useradd jovyan: ${made.stderr}`);
  }
  work = mkdtempSync(join(tmpdir(), 'atrium-k8s-access-'));
  chmodSync(work, 0o755);
  cp = await startControlPlane();
  admin = createKubeClient(loadKubeConfig({ kubeconfig: cp.kubeconfig }));
  atriumKubeconfig = await installAtrium(cp);
  await addVolumes(cp, 1);
  await addNodes(cp, [{ name: 'node-1', cpu: '8', memory: '32Gi' }]);
});
after(async () => {
  pod?.kill('SIGTERM');
  await cp?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** Runs the image's entrypoint as the pod would, with the Secret Atrium wrote for the workspace. */
async function runPod(ns: string, name: string, prefix: string): Promise<{ http: number; ssh: number }> {
  const secret = await admin.get<{ data: Record<string, string> }>(`/api/v1/namespaces/${ns}/secrets/${name}-access`);
  const files = Object.fromEntries(Object.entries(secret.data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
  const dir = join(work, name);
  const [home, tmp, secretDir] = [join(dir, 'home'), join(dir, 'tmp'), join(dir, 'secret')];
  const uid = Number((await run('id', ['-u', 'jovyan'])).stdout.trim());
  for (const d of [home, tmp]) {
    mkdirSync(d, { recursive: true });
    chownSync(d, uid, USERS_GID);
  }
  writeSecret(secretDir, files);
  const bin = join(work, 'bin');
  mkdirSync(bin, { recursive: true, mode: 0o755 });
  const cc = await run('sh', ['-c', `cc -O2 -o ${bin}/atrium-agent ${ROOT}agent/*.c`]);
  assert.equal(cc.code, 0, cc.stderr);
  const [http, ssh, app] = [await freePort(), await freePort(), await freePort()];
  pod = spawn(join(ROOT, 'deploy/images/workspace/entrypoint.sh'), [], {
    uid,
    gid: USERS_GID,
    cwd: home,
    stdio: 'ignore',
    env: {
      PATH: `${bin}:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
      HOME: home,
      TMPDIR: tmp,
      LANG: 'C.UTF-8',
      NB_PREFIX: prefix,
      ATRIUM_ENVIRONMENT: 'jupyter',
      ATRIUM_SECRET_DIR: secretDir,
      ATRIUM_HTTP_PORT: `127.0.0.1:${http}`,
      ATRIUM_SSH_PORT: `127.0.0.1:${ssh}`,
      ATRIUM_APP_PORT: String(app),
    },
  });
  return { http, ssh };
}

function raw(path: string, opts: { host: string; method?: string; body?: string; headers?: Record<string, string> }): Promise<{ status: number; body: string }> {
  const url = new URL(t.url);
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: url.port, path, method: opts.method ?? 'GET', headers: { host: opts.host, ...opts.headers }, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

function execute(url: string, headers: Record<string, string>, code: string): Promise<string> {
  const socket = new WebSocket(url, { headers });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no result from the kernel')), 30_000);
    socket.on('open', () => socket.send(JSON.stringify({
      header: { msg_id: 'e1', username: 'test', session: 's1', msg_type: 'execute_request', version: '5.3', date: new Date().toISOString() },
      parent_header: {}, metadata: {}, channel: 'shell',
      content: { code, silent: false, store_history: false, user_expressions: {}, allow_stdin: false, stop_on_error: true },
    })));
    socket.on('message', (data) => {
      const m = JSON.parse((data as Buffer).toString()) as { parent_header?: { msg_id?: string }; msg_type: string; content: { data: Record<string, string> } };
      if (m.parent_header?.msg_id === 'e1' && m.msg_type === 'execute_result') {
        clearTimeout(timer);
        socket.close();
        resolve(m.content.data['text/plain']!);
      }
    });
    socket.on('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    socket.on('error', reject);
  });
}

test('through pods/portforward: the proxy runs 6*7 in a kernel and the SSH gateway runs a command', async () => {
  // started here, not in before(): the server lives as long as the test that registers its teardown
  t = await startServer({
    flags: {
      'runtime.kind': 'kubernetes',
      profiles: [{ name: 'lab', displayName: 'Lab', environment: 'jupyter', cpu: { guarantee: '100m', limit: '1' }, memory: { guarantee: '128Mi', limit: '1Gi' }, storage: '1Gi' }],
      'kubernetes.clusters': [{ name: 'test', kubeconfig: atriumKubeconfig, endpoint: 'apiserver' }],
    },
  });
  const created = await t.call('POST', '/api/v1/teams/admin/workspaces', { token: t.adminToken, body: { name: 'nb', profile: 'lab' } });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  await waitUntil('the pod scheduled', () => admin.get('/api/v1/namespaces/atrium-admin/pods/ws-nb-0').then(() => true, () => false));
  const ports = await runPod('atrium-admin', 'ws-nb', '/w/admin/nb/');
  await portForwardTo(cp, 'atrium-admin', 'ws-nb-0', 8888, { address: '127.0.0.1', port: ports.http });
  await portForwardTo(cp, 'atrium-admin', 'ws-nb-0', 2222, { address: '127.0.0.1', port: ports.ssh });
  await waitUntil('nb running', async () => (await t.call('GET', '/api/v1/teams/admin/workspaces/nb', { token: t.adminToken })).body.phase === 'running');

  const port = new URL(t.url).port;
  const host = `nb--admin.localhost:${port}`;
  const auth = { authorization: `Bearer ${t.adminToken}` };
  // Jupyter takes a moment after its port opens
  const kernel = await waitUntil('a kernel through the proxy', async () => {
    const r = await raw('/w/admin/nb/api/kernels', { host, method: 'POST', body: '{"name":"python3"}', headers: { ...auth, origin: `http://${host}`, 'content-type': 'application/json' } });
    return r.status === 201 ? (JSON.parse(r.body) as { id: string }) : undefined;
  }, { timeoutMs: 60_000, everyMs: 500 });
  assert.equal(await execute(`ws://127.0.0.1:${port}/w/admin/nb/api/kernels/${kernel.id}/channels`, { host, origin: `http://${host}`, ...auth }, '6*7'), '42');

  // the SSH gateway, with the person's registered key, through the same port-forward
  const keyFile = join(work, 'id_test');
  assert.equal((await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', keyFile])).code, 0);
  const key = await t.call('POST', '/api/v1/me/ssh-keys', { token: t.adminToken, body: { name: 'test', publicKey: readFileSync(`${keyFile}.pub`, 'utf8').trim() } });
  assert.equal(key.status, 201, JSON.stringify(key.body));
  const sshInfo = (await t.call('GET', '/api/v1/me/ssh', { token: t.adminToken })).body as { gateway: { port: number } };
  const out = await run('ssh', ['-F', '/dev/null', '-i', keyFile, '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', '-p', String(sshInfo.gateway.port), 'admin.nb@127.0.0.1', 'echo hello from $(id -un)'], 60_000);
  assert.equal(out.code, 0, out.stderr);
  assert.equal(out.stdout.trim(), 'hello from jovyan');
});
