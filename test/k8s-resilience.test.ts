import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { stringify } from 'yaml';
import { loadKubernetes, type ClusterSet, type KubeClient, type KubeObject } from '../src/runtime/index.js';
import { ADMIN_PASSWORD, startServer, waitUntil, type TestServer } from './helpers.js';
import { addNodes, addVolumes, installAtrium, startControlPlane, type ControlPlane } from './k8s/env.js';

// What Atrium survives on a real control plane: its API server killed and
// restarted under its watches, and Atrium itself killed with SIGKILL while it
// applies, then started again on the same database.

const { createKubeClient, loadKubeConfig } = await loadKubernetes();
let cp: ControlPlane;
let admin: KubeClient;
let atriumKubeconfig: string;
const dir = mkdtempSync(join(tmpdir(), 'atrium-k8s-resilience-'));

const PROFILE = { name: 'tiny', displayName: 'Tiny', environment: 'shell', cpu: { guarantee: '10m', limit: '100m' }, memory: { guarantee: '16Mi', limit: '64Mi' }, storage: '1Gi' };

before(async () => {
  cp = await startControlPlane();
  admin = createKubeClient(loadKubeConfig({ kubeconfig: cp.kubeconfig }));
  atriumKubeconfig = await installAtrium(cp);
  await addVolumes(cp, 12);
  await addNodes(cp, [{ name: 'node-1', cpu: '16', memory: '64Gi' }]);
});
after(async () => {
  await cp?.close();
  rmSync(dir, { recursive: true, force: true });
});

const cluster = () => ({ name: 'test', kubeconfig: atriumKubeconfig, endpoint: 'apiserver' });

async function phaseOf(t: { call: TestServer['call'] }, token: string, ws: string): Promise<string | undefined> {
  return (await t.call('GET', `/api/v1/teams/admin/workspaces/${ws}`, { token })).body?.phase as string | undefined;
}

test('watches survive a killed and restarted API server: the expired resume is relisted and the next transition is seen', async () => {
  const t = await startServer({ flags: { 'runtime.kind': 'kubernetes', 'runtime.stopGrace': '1s', profiles: [PROFILE], 'kubernetes.clusters': [cluster()] } });
  // the one cluster of the set Atrium runs its clusters as
  const runtime = (t.server.runtime as ClusterSet).clusters[0]!;
  assert.equal((await t.call('POST', '/api/v1/teams/admin/workspaces', { token: t.adminToken, body: { name: 'steady', profile: 'tiny' } })).status, 201);
  await waitUntil('steady running', async () => (await phaseOf(t, t.adminToken, 'steady')) === 'running');
  const relists = runtime.relists;

  await cp.kill('kube-apiserver', { hard: true });
  await waitUntil('Atrium to see the API server gone', () => runtime.unreachable !== null, { timeoutMs: 30_000 });
  const unknown = await waitUntil('steady unknown while its cluster cannot be reached', async () => {
    const w = (await t.call('GET', '/api/v1/teams/admin/workspaces/steady', { token: t.adminToken })).body as { phase: string; reason: string };
    return w.phase === 'unknown' ? w : undefined;
  }, { timeoutMs: 30_000 });
  assert.match(unknown.reason, /cluster test cannot be reached/);
  await cp.resume('kube-apiserver');
  await waitUntil('the watches back', () => runtime.unreachable === null, { timeoutMs: 60_000, last: () => runtime.unreachable });
  await waitUntil('steady running again', async () => (await phaseOf(t, t.adminToken, 'steady')) === 'running', { timeoutMs: 60_000 });
  // the restarted API server's watch cache starts after the versions the watches held: they relist rather than miss anything
  await waitUntil('a relist after the restart', () => runtime.relists > relists, { timeoutMs: 60_000 });

  const stop = await t.call('POST', '/api/v1/teams/admin/workspaces/steady/stop', { token: t.adminToken });
  assert.ok(stop.status < 300, JSON.stringify(stop.body));
  await waitUntil('steady stopped, seen through the resumed watches', async () => (await phaseOf(t, t.adminToken, 'steady')) === 'stopped', { timeoutMs: 60_000 });
  assert.ok((await t.call('DELETE', '/api/v1/teams/admin/workspaces/steady?purge=true', { token: t.adminToken })).status < 300);
  await waitUntil('steady deleted', async () => (await t.call('GET', '/api/v1/teams/admin/workspaces/steady', { token: t.adminToken })).status === 404);
  await t.server.close();
});

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createNetServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

test('Atrium killed with SIGKILL mid-apply converges after a restart, with nothing orphaned', async () => {
  const port = await freePort();
  const data = join(dir, 'data');
  const config = join(dir, 'atrium.yaml');
  writeFileSync(config, stringify({
    listen: { host: '127.0.0.1', port },
    ssh: { port: 0 },
    dataDir: data,
    database: `sqlite:${join(dir, 'atrium.db')}`,
    admin: { password: ADMIN_PASSWORD },
    logLevel: 'warn',
    runtime: { kind: 'kubernetes', stopGrace: '1s' },
    profiles: [PROFILE],
    kubernetes: { clusters: [cluster()] },
  }));
  const url = `http://127.0.0.1:${port}`;
  const serve = (): ChildProcess => spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', 'serve', '--config', config], { stdio: ['ignore', 'ignore', 'inherit'] });
  const call = async (method: string, path: string, token?: string, body?: unknown) => {
    const res = await fetch(url + path, { method, headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { body: JSON.stringify(body) } : {}) });
    const answer: any = await res.json().catch(() => undefined);
    return { status: res.status, body: answer };
  };

  let child = serve();
  await waitUntil('Atrium up', () => fetch(`${url}/healthz`).then((r) => r.ok, () => false), { timeoutMs: 60_000 });
  const token = (await call('POST', '/api/v1/auth/login', undefined, { username: 'admin', password: ADMIN_PASSWORD, token: { name: 'crash' } })).body.token as string;
  // several starts at once, and SIGKILL while their objects are being applied
  for (const name of ['c1', 'c2', 'c3', 'c4']) assert.equal((await call('POST', '/api/v1/teams/admin/workspaces', token, { name, profile: 'tiny' })).status, 201);
  await waitUntil('some objects applied', async () => (await admin.get<{ items: unknown[] }>('/apis/apps/v1/namespaces/atrium-admin/statefulsets')).items.length > 0, { timeoutMs: 30_000, everyMs: 20 });
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));

  child = serve();
  try {
    await waitUntil('Atrium up again', () => fetch(`${url}/healthz`).then((r) => r.ok, () => false), { timeoutMs: 60_000 });
    for (const name of ['c1', 'c2', 'c3', 'c4']) {
      await waitUntil(`${name} running after the restart`, async () => (await call('GET', `/api/v1/teams/admin/workspaces/${name}`, token)).body?.phase === 'running', { timeoutMs: 90_000 });
    }
    // deleting two leaves nothing of them behind; the others keep exactly their own objects
    for (const name of ['c3', 'c4']) assert.ok((await call('DELETE', `/api/v1/teams/admin/workspaces/${name}?purge=true`, token)).status < 300);
    for (const name of ['c3', 'c4']) await waitUntil(`${name} gone`, async () => (await call('GET', `/api/v1/teams/admin/workspaces/${name}`, token)).status === 404, { timeoutMs: 60_000 });
    const managed = 'labelSelector=app.kubernetes.io%2Fcomponent%3Dworkspace';
    let names = new Set<string>();
    await waitUntil('only c1 and c2 have objects', async () => {
      names = new Set<string>();
      for (const path of ['/apis/apps/v1/namespaces/atrium-admin/statefulsets', '/api/v1/namespaces/atrium-admin/services', '/api/v1/namespaces/atrium-admin/secrets', '/api/v1/namespaces/atrium-admin/persistentvolumeclaims', '/api/v1/namespaces/atrium-admin/pods']) {
        for (const o of (await admin.get<{ items: KubeObject[] }>(`${path}?${managed}`)).items) {
          const ws = o.metadata.labels?.['atrium.dev/workspace'] ?? '?';
          // this test's workspaces, c1 to c4, and whatever has no workspace at all
          if (/^c\d$|^\?$/.test(ws) && !(o.metadata as { deletionTimestamp?: string }).deletionTimestamp) names.add(`${o.kind ?? path.split('/').at(-1)!}/${o.metadata.labels?.['atrium.dev/workspace'] ?? '?'}`);
        }
      }
      return [...names].every((n) => /\/c[12]$/.test(n)) && [...names].some((n) => n.endsWith('/c1'));
    }, { timeoutMs: 60_000, last: () => [...names] });
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
});
