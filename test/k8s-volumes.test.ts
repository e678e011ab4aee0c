import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { loadKubernetes, type KubeClient } from '../src/runtime/index.js';
import { startServer, waitUntil, type TestServer } from './helpers.js';
import { addNodes, addVolumes, installAtrium, startControlPlane, type ControlPlane } from './k8s/env.js';

// Team volumes and datasets on a real control plane: claims in the teams'
// namespaces bound by the real PersistentVolume controller, a dataset's
// read-only volume over the storage its owner's claim is bound to, and
// workspace pods that mount them and run the profile's image with its egress.

const { createKubeClient, loadKubeConfig } = await loadKubernetes();
let cp: ControlPlane;
let admin: KubeClient;
let kubeconfig: string;

before(async () => {
  cp = await startControlPlane();
  kubeconfig = await installAtrium(cp);
  admin = createKubeClient(loadKubeConfig({ kubeconfig: cp.kubeconfig }));
  await addVolumes(cp, 4);
  await addVolumes(cp, 2, { accessModes: ['ReadWriteMany', 'ReadOnlyMany'], prefix: 'shared' });
  await addNodes(cp, [{ name: 'cpu-1', cpu: '8', memory: '32Gi' }]);
});
after(async () => cp?.close());

const get = (path: string) => admin.get<any>(path).catch(() => undefined);

test('team volumes and datasets on a real control plane', async (t) => {
  const atrium: TestServer = await startServer({
    env: { ATRIUM_LOG_LEVEL: process.env.DEBUG_LOG ?? 'fatal' },
    flags: {
      'runtime.kind': 'kubernetes',
      'runtime.stopGrace': '1s',
      profiles: [{ name: 'lab', displayName: 'Lab', environment: 'jupyter', image: 'registry.example/ml/lab:2.1', egress: 'public', cpu: { guarantee: '500m', limit: '1' }, memory: { guarantee: '512Mi', limit: '1Gi' }, storage: '1Gi' }],
      'defaults.quota': { cpu: '8', memory: '16Gi', storage: '20Gi', workspaces: 5, gpu: {} },
      'kubernetes.clusters': [{ name: 'test', kubeconfig, endpoint: 'apiserver' }],
    },
  });
  const ada = await atrium.user('ada');
  const eve = await atrium.user('eve');
  const phase = async (token: string, ref: string) => (await atrium.call('GET', `/api/v1/teams/${ref.replace('/', '/workspaces/')}`, { token })).body;

  await t.test("a team volume is a ReadWriteMany claim in the team's namespace, mounted by the team's workspace pods running the profile's image", async () => {
    assert.equal((await atrium.call('POST', '/api/v1/teams/ada/volumes', { token: ada, body: { name: 'corpus', size: '512Mi' } })).status, 201);
    const claim = await waitUntil('the claim bound', async () => {
      const c = await get('/api/v1/namespaces/atrium-ada/persistentvolumeclaims/vol-corpus');
      return c?.status?.phase === 'Bound' ? c : undefined;
    }, { timeoutMs: 60_000 });
    assert.deepEqual(claim.spec.accessModes, ['ReadWriteMany']);
    assert.equal(claim.spec.resources.requests.storage, '512Mi');
    assert.match(claim.spec.volumeName, /^shared-/);
    assert.equal((await atrium.call('POST', '/api/v1/teams/ada/workspaces', { token: ada, body: { name: 'nb', profile: 'lab', volumes: [{ volume: 'corpus', path: '/home/jovyan/corpus' }] } })).status, 201);
    await waitUntil('nb running', async () => (await phase(ada, 'ada/nb')).phase === 'running', { timeoutMs: 60_000 });
    const pod = await admin.get<any>('/api/v1/namespaces/atrium-ada/pods/ws-nb-0');
    const container = pod.spec.containers[0];
    assert.equal(container.image, 'registry.example/ml/lab:2.1');
    assert.equal(pod.metadata.labels['atrium.dev/egress'], 'public');
    const volume = pod.spec.volumes.find((v: any) => v.persistentVolumeClaim?.claimName === 'vol-corpus');
    assert.ok(volume, JSON.stringify(pod.spec.volumes));
    assert.equal(volume.persistentVolumeClaim.readOnly, undefined);
    assert.deepEqual(container.volumeMounts.find((m: any) => m.name === volume.name), { name: volume.name, mountPath: '/home/jovyan/corpus' });
  });

  await t.test("published to another team, it is a read-only claim there, over the very storage the owner's claim holds", async () => {
    const refused = await atrium.call('POST', '/api/v1/teams/eve/workspaces', { token: eve, body: { name: 'reader', profile: 'lab', volumes: [{ volume: 'ada/corpus' }] } });
    assert.equal(refused.status, 403);
    assert.equal(refused.body.error.code, 'volume_not_allowed');
    assert.equal((await atrium.call('PATCH', '/api/v1/teams/ada/volumes/corpus', { token: atrium.adminToken, body: { sharedWith: ['eve'] } })).status, 200);
    const owner = await admin.get<any>('/api/v1/namespaces/atrium-ada/persistentvolumeclaims/vol-corpus');
    const source = await admin.get<any>(`/api/v1/persistentvolumes/${owner.spec.volumeName}`);
    const claim = await waitUntil('the dataset claim bound', async () => {
      const c = await get('/api/v1/namespaces/atrium-eve/persistentvolumeclaims/ds-ada-corpus');
      return c?.status?.phase === 'Bound' ? c : undefined;
    }, { timeoutMs: 60_000 });
    assert.deepEqual(claim.spec.accessModes, ['ReadOnlyMany']);
    const pv = await admin.get<any>(`/api/v1/persistentvolumes/${claim.spec.volumeName}`);
    assert.deepEqual(pv.spec.hostPath, source.spec.hostPath, 'the same storage');
    assert.equal(pv.spec.persistentVolumeReclaimPolicy, 'Retain', "the owner's data outlives the claim");
    assert.deepEqual(pv.spec.accessModes, ['ReadOnlyMany']);
    assert.equal((await atrium.call('POST', '/api/v1/teams/eve/workspaces', { token: eve, body: { name: 'reader', profile: 'lab', volumes: [{ volume: 'ada/corpus' }] } })).status, 201);
    await waitUntil('reader running', async () => (await phase(eve, 'eve/reader')).phase === 'running', { timeoutMs: 60_000 });
    const pod = await admin.get<any>('/api/v1/namespaces/atrium-eve/pods/ws-reader-0');
    const volume = pod.spec.volumes.find((v: any) => v.persistentVolumeClaim?.claimName === 'ds-ada-corpus');
    assert.equal(volume.persistentVolumeClaim.readOnly, true);
    assert.deepEqual(pod.spec.containers[0].volumeMounts.find((m: any) => m.name === volume.name), { name: volume.name, mountPath: '/data/corpus', readOnly: true });
  });

  await t.test('withdrawn and deleted, the claims and the dataset volume go; the volume itself only once no workspace mounts it', async () => {
    assert.equal((await atrium.call('DELETE', '/api/v1/teams/eve/workspaces/reader?purge=true', { token: eve })).status, 204);
    await waitUntil('reader gone', async () => (await atrium.call('GET', '/api/v1/teams/eve/workspaces/reader', { token: eve })).status === 404, { timeoutMs: 60_000 });
    const dataset = (await admin.get<any>('/api/v1/namespaces/atrium-eve/persistentvolumeclaims/ds-ada-corpus')).spec.volumeName as string;
    assert.equal((await atrium.call('PATCH', '/api/v1/teams/ada/volumes/corpus', { token: atrium.adminToken, body: { sharedWith: [] } })).status, 200);
    await waitUntil('the dataset claim and volume deleted', async () => !(await get('/api/v1/namespaces/atrium-eve/persistentvolumeclaims/ds-ada-corpus')) && !(await get(`/api/v1/persistentvolumes/${dataset}`)), { timeoutMs: 60_000 });
    const inUse = await atrium.call('DELETE', '/api/v1/teams/ada/volumes/corpus', { token: ada });
    assert.equal(inUse.status, 409);
    assert.equal((await atrium.call('DELETE', '/api/v1/teams/ada/workspaces/nb?purge=true', { token: ada })).status, 204);
    await waitUntil('nb gone', async () => (await atrium.call('GET', '/api/v1/teams/ada/workspaces/nb', { token: ada })).status === 404, { timeoutMs: 60_000 });
    assert.equal((await atrium.call('DELETE', '/api/v1/teams/ada/volumes/corpus', { token: ada })).status, 204);
    await waitUntil('the team claim deleted', async () => {
      const c = await get('/api/v1/namespaces/atrium-ada/persistentvolumeclaims/vol-corpus');
      return !c || c.metadata.deletionTimestamp !== undefined;
    }, { timeoutMs: 60_000 });
  });
});
