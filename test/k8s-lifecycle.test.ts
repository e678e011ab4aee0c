import assert from 'node:assert/strict';
import { join } from 'node:path';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { after, before, test } from 'node:test';
import { loadKubernetes, type KubeClient } from '../src/runtime/index.js';
import { startServer, waitUntil, type TestServer } from './helpers.js';
import { addNodes, addVolumes, criLog, installAtrium, logsFrom, startControlPlane, type ControlPlane } from './k8s/env.js';

// Workspaces through Atrium's API on a real control plane: the real scheduler
// places pods on KWOK nodes, the StatefulSet controller makes and removes them.

const { createKubeClient, loadKubeConfig } = await loadKubernetes();
let cp: ControlPlane;
let admin: KubeClient;
let atrium: TestServer;

const PROFILES = [
  { name: 'cpu', displayName: 'CPU', environment: 'jupyter', cpu: { guarantee: '500m', limit: '1' }, memory: { guarantee: '512Mi', limit: '1Gi' }, storage: '1Gi' },
  { name: 'gpu', displayName: 'GPU', environment: 'shell', cpu: { guarantee: '1', limit: '1' }, memory: { guarantee: '1Gi', limit: '1Gi' }, gpu: { count: 1, type: 'a100' }, storage: '1Gi' },
];

let atriumKubeconfig: string;

before(async () => {
  cp = await startControlPlane();
  atriumKubeconfig = await installAtrium(cp);
  admin = createKubeClient(loadKubeConfig({ kubeconfig: cp.kubeconfig }));
  await addVolumes(cp, 8);
  await addNodes(cp, [
    { name: 'cpu-1', cpu: '8', memory: '32Gi' },
    { name: 'gpu-1', cpu: '8', memory: '32Gi', gpus: 1, labels: { 'atrium.dev/gpu': 'a100' }, taints: [{ key: 'nvidia.com/gpu', value: 'present', effect: 'NoSchedule' }] },
  ]);
});
after(async () => cp?.close());

/** Atrium on the control plane; started inside the test, which owns its lifetime. */
async function startAtrium(): Promise<void> {
  atrium = await startServer({
    flags: {
      'runtime.kind': 'kubernetes',
      'runtime.stopGrace': '1s',
      profiles: PROFILES,
      'defaults.quota': { cpu: '8', memory: '16Gi', storage: '20Gi', workspaces: 5, gpu: { a100: 2 } },
      'kubernetes.clusters': [
        {
          name: 'test',
          kubeconfig: atriumKubeconfig,
          endpoint: 'apiserver',
          gpuPools: [{ type: 'a100', nodeSelector: { 'atrium.dev/gpu': 'a100' }, tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }] }],
        },
      ],
    },
  });
  await atrium.user('ada');
  const pool = await atrium.call('POST', '/api/v1/gpu-pools', { token: atrium.adminToken, body: { name: 'a100s', gpuType: 'a100', cluster: 'test', size: 2, owner: 'ada' } });
  assert.ok(pool.status === 201, JSON.stringify(pool.body));
}

/** A request that must be accepted: 2xx, or the answer in the failure. */
async function act(method: string, path: string, token: string): Promise<void> {
  const r = await atrium.call(method, path, { token });
  assert.ok(r.status >= 200 && r.status < 300, `${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
}

async function phase(token: string, ws: string): Promise<any> {
  const r = await atrium.call('GET', `/api/v1/teams/ada/workspaces/${ws}`, { token });
  return r.body;
}

/** The workspace's events so far: its event stream replays them from the start; read for a moment, then closed. */
async function eventsOf(token: string, ws: string): Promise<string[]> {
  let text = '';
  try {
    const res = await fetch(`${atrium.url}/api/v1/teams/ada/workspaces/${ws}/events`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(1500) });
    const reader = res.body!.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += Buffer.from(value).toString('utf8');
    }
  } catch {
    // the stream stays open: the timeout ends the read
  }
  return text.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5));
}

test('workspaces through Atrium on a real control plane', async (t) => {
  await startAtrium();
  await t.test('a workspace is created, runs on a KWOK node, stops (replicas 0, home kept), starts again and is deleted with purge', lifecycle);
  await t.test('a GPU workspace lands only on its pool\'s node, and waits pending with the scheduler\'s reason when the pool is full', gpuPool);
  await t.test('a team\'s changed quota and members reach its namespace at once, and a deleted team\'s namespace is deleted', teamChanges);
});

async function lifecycle(): Promise<void> {
  const ada = await atrium.call('POST', '/api/v1/auth/login', { body: { username: 'ada', password: 'pw-ada-secret', token: { name: 't1' } } }).then((r) => r.body.token as string);
  const created = await atrium.call('POST', '/api/v1/teams/ada/workspaces', { token: ada, body: { name: 'lab', profile: 'cpu' } });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  let last: unknown;
  await waitUntil('lab running', async () => { last = await phase(ada, 'lab'); return (last as any).phase === 'running'; }, { timeoutMs: 20_000, last: () => last });
  const pod = await admin.get<any>('/api/v1/namespaces/atrium-ada/pods/ws-lab-0');
  assert.equal(pod.spec.nodeName, 'cpu-1', 'the real scheduler placed it on the CPU node');
  assert.equal(pod.status.phase, 'Running');

  // the app's output through Atrium's logs endpoint, read from pods/log
  const logFile = join(mkdtempSync(join(tmpdir(), 'atrium-k8s-logs-')), 'workspace.log');
  writeFileSync(logFile, criLog(['[I 12:00:00 NotebookApp] Serving notebooks from local directory: /home/jovyan', 'second line']));
  await logsFrom(cp, 'atrium-ada', 'ws-lab-0', logFile);
  const logs = await atrium.call('GET', '/api/v1/teams/ada/workspaces/lab/logs?tail=10', { token: ada });
  assert.equal(logs.status, 200);
  assert.match(String(logs.body), /Serving notebooks from local directory: \/home\/jovyan\nsecond line/);

  await act('POST', '/api/v1/teams/ada/workspaces/lab/stop', ada);
  await waitUntil('lab stopped', async () => (await phase(ada, 'lab')).phase === 'stopped', { timeoutMs: 60_000 });
  const sts = await admin.get<any>('/apis/apps/v1/namespaces/atrium-ada/statefulsets/ws-lab');
  assert.equal(sts.spec.replicas, 0);
  await waitUntil('the pod gone', async () => admin.get('/api/v1/namespaces/atrium-ada/pods/ws-lab-0').then(() => false, () => true));
  await admin.get('/api/v1/namespaces/atrium-ada/persistentvolumeclaims/home-lab');

  await act('POST', '/api/v1/teams/ada/workspaces/lab/start', ada);
  await waitUntil('lab running again', async () => (await phase(ada, 'lab')).phase === 'running', { timeoutMs: 60_000 });

  await act('DELETE', '/api/v1/teams/ada/workspaces/lab?purge=true', ada);
  await waitUntil('lab gone', async () => (await atrium.call('GET', '/api/v1/teams/ada/workspaces/lab', { token: ada })).status === 404, { timeoutMs: 60_000 });
  for (const path of ['/apis/apps/v1/namespaces/atrium-ada/statefulsets/ws-lab', '/api/v1/namespaces/atrium-ada/persistentvolumeclaims/home-lab', '/api/v1/namespaces/atrium-ada/secrets/ws-lab-access', '/api/v1/namespaces/atrium-ada/services/ws-lab']) {
    await waitUntil(`${path} deleted`, async () => admin.get<any>(path).then((o) => o.metadata?.deletionTimestamp !== undefined, () => true));
  }
}

async function gpuPool(): Promise<void> {
  const ada = await atrium.call('POST', '/api/v1/auth/login', { body: { username: 'ada', password: 'pw-ada-secret', token: { name: 't2' } } }).then((r) => r.body.token as string);
  assert.equal((await atrium.call('POST', '/api/v1/teams/ada/workspaces', { token: ada, body: { name: 'train', profile: 'gpu' } })).status, 201);
  await waitUntil('train running', async () => (await phase(ada, 'train')).phase === 'running', { timeoutMs: 60_000 });
  assert.equal((await admin.get<any>('/api/v1/namespaces/atrium-ada/pods/ws-train-0')).spec.nodeName, 'gpu-1');

  assert.equal((await atrium.call('POST', '/api/v1/teams/ada/workspaces', { token: ada, body: { name: 'train2', profile: 'gpu' } })).status, 201);
  let last: any;
  const waiting = await waitUntil('train2 pending', async () => {
    last = await phase(ada, 'train2');
    return last.phase === 'pending' && last.reason ? last : undefined;
  }, { timeoutMs: 60_000, last: () => ({ phase: last?.phase, reason: last?.reason }) });
  assert.match(waiting.reason, /Insufficient nvidia\.com\/gpu/);
  assert.ok((await eventsOf(ada, 'train2')).some((m) => /Insufficient nvidia\.com\/gpu/.test(m)), 'the scheduler\'s reason is among the events');

  // room again: the waiting workspace runs without being asked twice
  await act('POST', '/api/v1/teams/ada/workspaces/train/stop', ada);
  await waitUntil('train2 running', async () => (await phase(ada, 'train2')).phase === 'running', { timeoutMs: 90_000 });
  assert.equal((await admin.get<any>('/api/v1/namespaces/atrium-ada/pods/ws-train2-0')).spec.nodeName, 'gpu-1');
}

async function teamChanges(): Promise<void> {
  const adminToken = atrium.adminToken;
  const quota = { cpu: '4', memory: '8Gi', storage: '10Gi', workspaces: 2 };
  assert.equal((await atrium.call('POST', '/api/v1/teams', { token: adminToken, body: { name: 'lab-b', owner: 'ada', quota } })).status, 201);
  const ada = await atrium.call('POST', '/api/v1/auth/login', { body: { username: 'ada', password: 'pw-ada-secret', token: { name: 't3' } } }).then((r) => r.body.token as string);
  assert.equal((await atrium.call('POST', '/api/v1/teams/lab-b/workspaces', { token: ada, body: { name: 'one', profile: 'cpu' } })).status, 201);
  await waitUntil('one running', async () => (await atrium.call('GET', '/api/v1/teams/lab-b/workspaces/one', { token: ada })).body.phase === 'running', { timeoutMs: 30_000 });
  const hard = async () => (await admin.get<any>('/api/v1/namespaces/atrium-lab-b/resourcequotas/atrium-quota')).spec.hard;
  assert.equal((await hard())['limits.cpu'], '4');

  // a quota change reaches the ResourceQuota with no workspace started
  const changed = await atrium.call('PATCH', '/api/v1/teams/lab-b/quota', { token: adminToken, body: { cpu: '6' } });
  assert.equal(changed.status, 200, JSON.stringify(changed.body));
  let seen: unknown;
  await waitUntil('the ResourceQuota says 6 CPUs', async () => {
    seen = await hard();
    return (seen as Record<string, string>)['limits.cpu'] === '6';
  }, { timeoutMs: 15_000, last: () => seen });

  // a team with a workspace left keeps its namespace; once it is empty and deleted, the namespace goes
  assert.equal((await atrium.call('DELETE', '/api/v1/teams/lab-b', { token: adminToken })).status, 409);
  await act('DELETE', '/api/v1/teams/lab-b/workspaces/one?purge=true', ada);
  await waitUntil('one gone', async () => (await atrium.call('GET', '/api/v1/teams/lab-b/workspaces/one', { token: ada })).status === 404, { timeoutMs: 30_000 });
  await waitUntil('the team deleted', async () => (await atrium.call('DELETE', '/api/v1/teams/lab-b', { token: adminToken })).status === 204, { timeoutMs: 15_000 });
  let ns: any;
  await waitUntil('the namespace deleted', async () => {
    ns = await admin.get<any>('/api/v1/namespaces/atrium-lab-b').catch((err: Error & { status?: number }) => {
      if (err.status === 404) return null;
      throw err;
    });
    return ns === null || Boolean(ns.metadata.deletionTimestamp);
  }, { timeoutMs: 30_000, last: () => ns?.status });
  // the teams that remain keep theirs
  assert.ok(await admin.get('/api/v1/namespaces/atrium-ada'));
}
