import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { loadKubernetes, type KubeClient } from '../src/runtime/index.js';
import { startServer, waitUntil, type TestServer } from './helpers.js';
import { addNodes, addVolumes, installAtrium, startControlPlane, type ControlPlane } from './k8s/env.js';

// Two control planes, each with its own etcd: placement by grants and
// capacity across both, a workspace kept on its cluster for life, and an
// unreachable cluster affecting only its own workspaces.

const { createKubeClient, loadKubeConfig } = await loadKubernetes();
const planes = new Map<string, { cp: ControlPlane; admin: KubeClient; kubeconfig: string }>();

async function plane(name: string, nodes: Parameters<typeof addNodes>[1]): Promise<void> {
  const cp = await startControlPlane({ name });
  const admin = createKubeClient(loadKubeConfig({ kubeconfig: cp.kubeconfig }));
  const kubeconfig = await installAtrium(cp);
  await addVolumes(cp, 6);
  await addNodes(cp, nodes);
  planes.set(name, { cp, admin, kubeconfig });
}

before(async () => {
  await Promise.all([
    plane('east', [
      { name: 'east-cpu', cpu: '10', memory: '16Gi' },
      { name: 'east-gpu', cpu: '2', memory: '64Gi', gpus: 1, labels: { 'atrium.dev/gpu': 'a100' }, taints: [{ key: 'nvidia.com/gpu', value: 'present', effect: 'NoSchedule' }] },
    ]),
    plane('west', [{ name: 'west-cpu', cpu: '16', memory: '64Gi' }]),
  ]);
});
after(async () => {
  for (const p of planes.values()) await p.cp.close();
});

const PROFILES = [
  { name: 'big', displayName: 'Big', environment: 'shell', cpu: { guarantee: '8', limit: '8' }, memory: { guarantee: '1Gi', limit: '1Gi' }, storage: '1Gi' },
  { name: 'gpu', displayName: 'GPU', environment: 'shell', cpu: { guarantee: '1', limit: '1' }, memory: { guarantee: '1Gi', limit: '1Gi' }, gpu: { count: 1, type: 'a100' }, storage: '1Gi' },
];

async function view(t: TestServer, token: string, ws: string): Promise<{ phase: string; reason: string; cluster: string }> {
  return (await t.call('GET', `/api/v1/teams/ada/workspaces/${ws}`, { token })).body as { phase: string; reason: string; cluster: string };
}

async function running(t: TestServer, token: string, ws: string): Promise<string> {
  let last: unknown;
  const w = await waitUntil(`${ws} running`, async () => {
    const v = await view(t, token, ws);
    last = v;
    return v.phase === 'running' ? v : undefined;
  }, { timeoutMs: 60_000, last: () => last });
  return w.cluster;
}

test('two clusters: placement by grants and capacity, a workspace kept on its cluster, one cluster down affecting only its own', async () => {
  const t = await startServer({
    flags: {
      'runtime.kind': 'kubernetes',
      'runtime.stopGrace': '1s',
      profiles: PROFILES,
      'defaults.quota': { cpu: '64', memory: '64Gi', storage: '20Gi', workspaces: 10, gpu: { a100: 1 } },
      'kubernetes.clusters': [
        { name: 'east', kubeconfig: planes.get('east')!.kubeconfig, endpoint: 'apiserver', gpuPools: [{ type: 'a100', nodeSelector: { 'atrium.dev/gpu': 'a100' }, tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }] }] },
        { name: 'west', kubeconfig: planes.get('west')!.kubeconfig, endpoint: 'apiserver' },
      ],
    },
  });
  const clusters = await t.call('GET', '/api/v1/clusters', { token: t.adminToken });
  assert.deepEqual(clusters.body.items, [{ name: 'east', kind: 'kubernetes' }, { name: 'west', kind: 'kubernetes' }]);
  const ada = await t.user('ada');
  const pool = await t.call('POST', '/api/v1/gpu-pools', { token: t.adminToken, body: { name: 'east-a100', gpuType: 'a100', cluster: 'east', size: 1, owner: 'ada' } });
  assert.equal(pool.status, 201, JSON.stringify(pool.body));
  const create = async (name: string, profile: string) => {
    const r = await t.call('POST', '/api/v1/teams/ada/workspaces', { token: ada, body: { name, profile } });
    assert.equal(r.status, 201, JSON.stringify(r.body));
  };

  // capacity: the cluster with the most CPU not yet guaranteed first (west 16, east 12)
  await create('b1', 'big');
  assert.equal(await running(t, ada, 'b1'), 'west');
  await create('b2', 'big');
  assert.equal(await running(t, ada, 'b2'), 'east', 'west has 8 left, east 12');
  // grants: the team's GPUs are in a pool on east only
  await create('g1', 'gpu');
  assert.equal(await running(t, ada, 'g1'), 'east');
  assert.equal((await planes.get('east')!.admin.get<{ spec: { nodeName: string } }>('/api/v1/namespaces/atrium-ada/pods/ws-g1-0')).spec.nodeName, 'east-gpu');
  for (const [name, where] of [['b1', 'west'], ['b2', 'east']] as const) {
    await planes.get(where)!.admin.get(`/apis/apps/v1/namespaces/atrium-ada/statefulsets/ws-${name}`);
    await assert.rejects(planes.get(where === 'east' ? 'west' : 'east')!.admin.get(`/apis/apps/v1/namespaces/atrium-ada/statefulsets/ws-${name}`), /not found/);
  }

  // stopped and started again, b2 stays on east (its home is there) though west has more room now
  assert.ok((await t.call('POST', '/api/v1/teams/ada/workspaces/b1/stop', { token: ada })).status < 300);
  assert.ok((await t.call('POST', '/api/v1/teams/ada/workspaces/b2/stop', { token: ada })).status < 300);
  await waitUntil('b2 stopped', async () => (await view(t, ada, 'b2')).phase === 'stopped', { timeoutMs: 60_000 });
  assert.ok((await t.call('POST', '/api/v1/teams/ada/workspaces/b2/start', { token: ada })).status < 300);
  assert.equal(await running(t, ada, 'b2'), 'east');
  assert.ok((await t.call('POST', '/api/v1/teams/ada/workspaces/b1/start', { token: ada })).status < 300);
  assert.equal(await running(t, ada, 'b1'), 'west');

  // west's API server gone: only west's workspaces are unknown, with the reason; they recover when it returns
  await planes.get('west')!.cp.kill('kube-apiserver', { hard: true });
  const unknown = await waitUntil('b1 unknown', async () => {
    const v = await view(t, ada, 'b1');
    return v.phase === 'unknown' ? v : undefined;
  }, { timeoutMs: 30_000 });
  assert.match(unknown.reason, /cluster west cannot be reached/);
  for (const ws of ['b2', 'g1']) assert.equal((await view(t, ada, ws)).phase, 'running', `${ws} on east is untouched`);
  await planes.get('west')!.cp.resume('kube-apiserver');
  await waitUntil('b1 running again', async () => (await view(t, ada, 'b1')).phase === 'running', { timeoutMs: 60_000 });
});
