import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { HOST_KEY, SETTINGS, TEAM, workspaceSpec } from '../../../../test/k8s/fixtures.js';
import {
  jupyterToken, renderAll, renderClusterScope, renderDatasetClaim, renderStatefulSet, renderTeam, renderVolumeClaim, renderWorkspace, renderYaml, toYaml, withoutSecretData,
  type KubeObject, type WorkspaceInput,
} from './index.js';

/** Golden files sit beside this test; `ATRIUM_UPDATE_GOLDEN=1` rewrites them after a deliberate change. */
function golden(name: string, objects: KubeObject[]): void {
  const file = fileURLToPath(new URL(`./golden/${name}.yaml`, import.meta.url));
  const text = toYaml(objects);
  if (process.env.ATRIUM_UPDATE_GOLDEN === '1') writeFileSync(file, text);
  assert.equal(text, readFileSync(file, 'utf8'), `${name}.yaml differs from what the renderers make (ATRIUM_UPDATE_GOLDEN=1 rewrites it)`);
}

const standard: WorkspaceInput = { spec: workspaceSpec(), running: true };
const gpu: WorkspaceInput = {
  spec: workspaceSpec({ id: 'w_0002', name: 'train', basePath: '/w/ml/train/', gpu: { count: 2, type: 'a100' }, egress: 'public', image: 'registry.example/ml/pytorch:2.4' }),
  running: true,
  storageClass: 'fast-ssd',
};
const sandboxed: WorkspaceInput = {
  spec: workspaceSpec({ id: 'w_0003', team: 'secure', name: 'vault', basePath: '/w/secure/vault/', tier: 'sandboxed', environment: { kind: 'shell' } }),
  running: false,
};

test('golden: a standard Jupyter workspace', () => golden('workspace-standard', renderWorkspace(SETTINGS, standard)));
test('golden: a GPU workspace with public egress, its own image and storage class', () => golden('workspace-gpu', renderWorkspace(SETTINGS, gpu)));
test('golden: a stopped sandboxed shell workspace', () => golden('workspace-sandboxed', renderWorkspace(SETTINGS, sandboxed)));
test('golden: a team with members, quota, a mesh and the read-only member role', () =>
  golden('team', renderTeam({ ...SETTINGS, mesh: { principal: 'cluster.local/ns/atrium/sa/atrium' }, memberReadOnly: { userPrefix: 'oidc:' } }, TEAM)));
test('golden: the cluster-scoped objects', () => golden('cluster', renderClusterScope(SETTINGS)));

test('every object carries Atrium\'s labels, and every namespaced one sits in the team\'s namespace', () => {
  const all = renderAll({ ...SETTINGS, mesh: { principal: 'p' }, memberReadOnly: { userPrefix: '' } }, [
    { team: TEAM, workspaces: [standard, gpu] },
    { team: { ...TEAM, name: 'secure', sensitive: true }, workspaces: [sandboxed] },
  ]);
  const clusterScoped = new Set(['Namespace', 'RuntimeClass', 'ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding']);
  for (const o of all) {
    assert.equal(o.metadata.labels?.['app.kubernetes.io/managed-by'], 'atrium', `${o.kind}/${o.metadata.name}`);
    if (clusterScoped.has(o.kind)) assert.equal(o.metadata.namespace, undefined);
    else assert.match(o.metadata.namespace ?? '', /^atrium-(ml|secure)$/, `${o.kind}/${o.metadata.name}`);
    if (o.metadata.namespace) assert.equal(o.metadata.labels?.['atrium.dev/team'], o.metadata.namespace.slice('atrium-'.length));
  }
  // the YAML stream parses back to the same objects
  const back = parseAllDocuments(toYaml(all)).map((d) => d.toJS() as KubeObject);
  assert.deepEqual(back, JSON.parse(JSON.stringify(all)));
});

test('the pod meets Pod Security restricted: non-root uid 1000, fsGroup 100, no escalation, no capabilities, RuntimeDefault seccomp', () => {
  for (const w of [standard, gpu, sandboxed]) {
    const pod = (renderStatefulSet(SETTINGS, w) as any).spec.template.spec;
    assert.deepEqual(pod.securityContext, { runAsNonRoot: true, runAsUser: 1000, runAsGroup: 100, fsGroup: 100, seccompProfile: { type: 'RuntimeDefault' } });
    const c = pod.containers[0];
    assert.equal(c.securityContext.allowPrivilegeEscalation, false);
    assert.deepEqual(c.securityContext.capabilities, { drop: ['ALL'] });
    assert.equal(pod.automountServiceAccountToken, false);
    for (const v of pod.volumes) assert.ok(v.persistentVolumeClaim || v.secret || v.projected, `volume ${v.name} is of a kind restricted allows`);
  }
});

test('requests are the guarantee and limits the limit; GPUs go to both with the pool\'s selector and tolerations', () => {
  const pod = (renderStatefulSet(SETTINGS, gpu) as any).spec.template.spec;
  const r = pod.containers[0].resources;
  assert.deepEqual(r.requests, { cpu: '1', memory: '2Gi', 'nvidia.com/gpu': '2' });
  assert.deepEqual(r.limits, { cpu: '2', memory: '4Gi', 'nvidia.com/gpu': '2' });
  assert.deepEqual(pod.nodeSelector, { 'atrium.dev/gpu': 'a100' });
  assert.deepEqual(pod.tolerations, [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }]);
  assert.equal((renderStatefulSet(SETTINGS, standard) as any).spec.template.spec.nodeSelector, undefined);
  assert.throws(() => renderStatefulSet(SETTINGS, { ...gpu, spec: { ...gpu.spec, gpu: { count: 1, type: 'h100' } } }), /no GPU node pool of type h100/);
});

test('stopped is replicas 0; the sandboxed tier names its RuntimeClass; egress is a pod label the policies select', () => {
  const sts = (w: WorkspaceInput) => (renderStatefulSet(SETTINGS, w) as any).spec;
  assert.equal(sts(standard).replicas, 1);
  assert.equal(sts(sandboxed).replicas, 0);
  assert.equal(sts(sandboxed).template.spec.runtimeClassName, 'atrium-sandboxed');
  assert.equal(sts(standard).template.spec.runtimeClassName, undefined);
  assert.equal(sts(gpu).template.metadata.labels['atrium.dev/egress'], 'public');
  assert.equal(sts(standard).template.metadata.labels['atrium.dev/egress'], 'none');
});

test('public egress excepts private, link-local and metadata ranges; DNS for all', () => {
  const policies = renderTeam(SETTINGS, TEAM).filter((o) => o.kind === 'NetworkPolicy') as any[];
  const pub = policies.find((p) => p.metadata.name === 'atrium-public-egress');
  const v4 = pub.spec.egress[0].to[0].ipBlock;
  assert.equal(v4.cidr, '0.0.0.0/0');
  for (const r of ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '169.254.0.0/16', '100.64.0.0/10']) assert.ok(v4.except.includes(r), r);
  const deny = policies.find((p) => p.metadata.name === 'atrium-default-deny');
  assert.deepEqual(deny.spec, { podSelector: {}, policyTypes: ['Ingress', 'Egress'] });
  const ingress = policies.find((p) => p.metadata.name === 'atrium-ingress');
  assert.deepEqual(ingress.spec.ingress[0].ports.map((p: any) => p.port), [8888, 2222]);
  assert.ok(ingress.spec.ingress[0].from, 'the API field is from, not the client model\'s _from');
});

test('the Jupyter token is secret-derived and per workspace', () => {
  const a = jupyterToken(standard.spec);
  assert.match(a, /^[0-9a-f]{64}$/);
  assert.notEqual(a, jupyterToken({ ssh: { ...standard.spec.ssh, hostKey: `${HOST_KEY}x` } }));
  const secret = renderWorkspace(SETTINGS, standard).find((o) => o.kind === 'Secret') as any;
  assert.equal(secret.stringData.jupyter_token, a);
  assert.equal(secret.stringData.authorized_keys, `${standard.spec.ssh.authorizedKeys[0]}\n`);
});

test('the LimitRange uses the API\'s field name default, not the client model\'s _default', () => {
  const lr = renderTeam(SETTINGS, TEAM).find((o) => o.kind === 'LimitRange') as any;
  assert.deepEqual(lr.spec.limits[0].default, { cpu: '500m', memory: '512Mi' });
  assert.equal(lr.spec.limits[0]._default, undefined);
});

test('without Secret data: a Secret keeps its metadata and type and says what Atrium writes; every other object is unchanged', () => {
  const objects = renderAll(SETTINGS, [{ team: TEAM, workspaces: [standard] }]);
  const out = withoutSecretData(objects);
  assert.equal(out.length, objects.length);
  for (const [i, o] of out.entries()) if (o.kind !== 'Secret') assert.equal(o, objects[i]);
  const secret = out.find((o) => o.kind === 'Secret')!;
  assert.deepEqual(Object.keys(secret), ['apiVersion', 'kind', 'metadata', 'type']);
  assert.equal(secret.metadata.name, 'ws-lab-access');
  assert.equal(secret.metadata.annotations?.['atrium.dev/data'], 'written by Atrium, not rendered: authorized_keys, jupyter_token, ssh_host_ed25519_key');
  assert.equal(secret.metadata.annotations?.['atrium.dev/workspace-id'], standard.spec.id);
  assert.doesNotMatch(toYaml(out), /PRIVATE KEY|jupyter_token:/);
  // the rendered objects themselves are left as they were
  assert.ok((objects.find((o) => o.kind === 'Secret') as any).stringData.ssh_host_ed25519_key.includes('PRIVATE KEY'));
});

test('renderYaml writes a team at a time what toYaml writes of renderAll, Secrets without their data unless asked', () => {
  const teams = [
    { team: TEAM, workspaces: [standard, gpu] },
    { team: { ...TEAM, name: 'secure', sensitive: true }, workspaces: [sandboxed] },
  ];
  assert.equal(renderYaml(SETTINGS, teams), toYaml(withoutSecretData(renderAll(SETTINGS, teams))));
  assert.equal(renderYaml(SETTINGS, teams, { secretData: true }), toYaml(renderAll(SETTINGS, teams)));
  assert.equal(renderYaml(SETTINGS, teams, { clusterScope: false }), toYaml(withoutSecretData(renderAll(SETTINGS, teams, { clusterScope: false }))));
  assert.equal(renderYaml(SETTINGS, []), toYaml(withoutSecretData(renderClusterScope(SETTINGS))));
});

test('allowed ranges: a NetworkPolicy of the workspace\'s own, selecting its pod; none without them; public only by its label', () => {
  const lake = renderWorkspace(SETTINGS, { spec: workspaceSpec({ egress: { allow: ['10.20.0.0/16', '10.30.0.0/16'] } }), running: true });
  const policy = lake.find((o) => o.kind === 'NetworkPolicy') as any;
  assert.equal(policy.metadata.name, 'ws-lab-egress');
  assert.deepEqual(policy.spec.podSelector, { matchLabels: { 'atrium.dev/workspace': 'lab' } });
  assert.deepEqual(policy.spec.policyTypes, ['Egress']);
  assert.deepEqual(policy.spec.egress, [{ to: [{ ipBlock: { cidr: '10.20.0.0/16' } }, { ipBlock: { cidr: '10.30.0.0/16' } }] }]);
  const podLabels = (o: any) => o.spec.template.metadata.labels;
  assert.equal(podLabels(lake.find((o) => o.kind === 'StatefulSet'))['atrium.dev/egress'], 'none', 'no public egress without public: true');
  const both = renderWorkspace(SETTINGS, { spec: workspaceSpec({ egress: { public: true, allow: ['10.20.0.0/16'] } }), running: true });
  assert.equal(podLabels(both.find((o) => o.kind === 'StatefulSet'))['atrium.dev/egress'], 'public');
  assert.equal(renderWorkspace(SETTINGS, standard).filter((o) => o.kind === 'NetworkPolicy').length, 0);
});

test('volumes: the team\'s by their claim, datasets by the claim in the team\'s namespace, read-only where the spec says', () => {
  const spec = workspaceSpec({
    volumes: [
      { id: 'v_1', team: 'ml', name: 'corpus', path: '/home/jovyan/corpus', readOnly: false, sizeBytes: 2 ** 30 },
      { id: 'v_2', team: 'data', name: 'census', path: '/data/census', readOnly: true, sizeBytes: 2 ** 30 },
    ],
  });
  const sts = renderWorkspace(SETTINGS, { spec, running: true }).find((o) => o.kind === 'StatefulSet')!;
  const pod = (sts.spec as { template: { spec: { volumes: any[]; containers: any[] } } }).template.spec;
  const claims = pod.volumes.filter((v) => v.persistentVolumeClaim && v.name !== 'home').map((v) => v.persistentVolumeClaim);
  assert.deepEqual(claims, [{ claimName: 'vol-corpus' }, { claimName: 'ds-data-census', readOnly: true }]);
  assert.deepEqual(pod.containers[0].volumeMounts.slice(-2), [
    { name: 'volume-0', mountPath: '/home/jovyan/corpus' },
    { name: 'volume-1', mountPath: '/data/census', readOnly: true },
  ]);
  const claim = renderVolumeClaim({ ...SETTINGS, volumeStorageClass: 'cephfs' }, { team: 'ml', name: 'corpus', sizeBytes: 2 ** 30 });
  assert.deepEqual(claim.spec, { accessModes: ['ReadWriteMany'], storageClassName: 'cephfs', resources: { requests: { storage: '1Gi' } } });
  const source: KubeObject = { apiVersion: 'v1', kind: 'PersistentVolume', metadata: { name: 'pv-9' }, spec: { capacity: { storage: '1Gi' }, nfs: { server: 'nfs.example', path: '/exports/census' }, accessModes: ['ReadWriteMany'], claimRef: { namespace: 'atrium-data', name: 'vol-census' }, storageClassName: 'nfs', persistentVolumeReclaimPolicy: 'Delete' } };
  const [pv, pvc] = renderDatasetClaim(SETTINGS, { team: 'data', name: 'census', sizeBytes: 2 ** 30 }, 'ml', source);
  assert.deepEqual(pv!.spec, { capacity: { storage: '1Gi' }, nfs: { server: 'nfs.example', path: '/exports/census' }, accessModes: ['ReadOnlyMany'], persistentVolumeReclaimPolicy: 'Retain', storageClassName: '', claimRef: { namespace: 'atrium-ml', name: 'ds-data-census' } });
  assert.equal((pvc!.spec as { volumeName: string }).volumeName, pv!.metadata.name);
  assert.equal(pvc!.metadata.namespace, 'atrium-ml');
});
