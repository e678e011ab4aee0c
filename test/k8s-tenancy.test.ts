import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { kubernetesRender, loadKubernetes, type KubeClient, type KubeObject } from '../src/runtime/index.js';

const { renderAll, renderClusterScope, renderTeam, renderWorkspace } = kubernetesRender;
const { createKubeClient, KubeError, loadKubeConfig } = await loadKubernetes();
import { SETTINGS, TEAM, workspaceSpec } from './k8s/fixtures.js';
import { waitUntil } from './helpers.js';
import { serviceAccountKubeconfig, startControlPlane, type ControlPlane } from './k8s/env.js';

// Everything here is enforced by a real kube-apiserver (with its etcd, controller manager and scheduler):
// Atrium writes as the ServiceAccount and ClusterRole of deploy/kubernetes, never as a cluster admin.

let cp: ControlPlane;
const kubectlPath = () => join(cp.env.BIN!, 'kubectl');
let admin: KubeClient;
let atrium: KubeClient;
let kubectl: (args: string[], input?: string) => string;

const settings = { ...SETTINGS, memberReadOnly: { userPrefix: 'oidc:' } };

/** Expects the API server to refuse, and returns its message. */
async function refused(what: string, fn: () => Promise<unknown>, status: number, pattern: RegExp): Promise<string> {
  try {
    await fn();
  } catch (err) {
    assert.ok(err instanceof KubeError, `${what}: ${String(err)}`);
    assert.equal(err.status, status, `${what}: ${err.message}`);
    assert.match(err.message, pattern, what);
    return err.message;
  }
  assert.fail(`${what} was accepted`);
}

function pod(namespace: string, name: string, over: Record<string, unknown> = {}): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace },
    spec: {
      securityContext: { runAsNonRoot: true, runAsUser: 1000, seccompProfile: { type: 'RuntimeDefault' } },
      containers: [{ name: 'c', image: 'busybox', resources: { limits: { cpu: '100m', memory: '64Mi' } }, securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } } }],
      ...over,
    },
  };
}

before(async () => {
  cp = await startControlPlane();
  kubectl = (args, input) => execFileSync(kubectlPath(), ['--kubeconfig', cp.kubeconfig, ...args], { encoding: 'utf8', ...(input === undefined ? {} : { input }) });
  admin = createKubeClient(loadKubeConfig({ kubeconfig: cp.kubeconfig }));
  // Atrium's own identity, exactly as deploy/kubernetes makes it
  const manifests = kubectl(['kustomize', 'deploy/kubernetes']);
  const identity = parseAllDocuments(manifests)
    .map((d) => d.toJS() as KubeObject)
    .filter((o) => ['Namespace', 'ServiceAccount', 'ClusterRole', 'ClusterRoleBinding'].includes(o.kind));
  kubectl(['apply', '-f', '-'], identity.map((o) => JSON.stringify(o)).join('\n'));
  atrium = createKubeClient(loadKubeConfig({ kubeconfig: await serviceAccountKubeconfig(cp, 'atrium', 'atrium') }));
});
after(async () => cp?.close());

test('deploy/kubernetes builds with kustomize and every object passes the API server\'s dry run', () => {
  const out = kubectl(['apply', '--dry-run=server', '-k', 'deploy/kubernetes']);
  for (const kind of ['namespace/atrium', 'serviceaccount/atrium', 'clusterrole.rbac.authorization.k8s.io/atrium', 'deployment.apps/atrium', 'service/atrium']) assert.match(out, new RegExp(kind.replace('.', '\\.')));
});

test('every rendered object is accepted by the real API server, applied by Atrium\'s own ServiceAccount (dry run)', async () => {
  const whoami = await atrium.post<{ status: { userInfo: { username: string } } }>('/apis/authentication.k8s.io/v1/selfsubjectreviews', { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' });
  assert.equal(whoami.status.userInfo.username, 'system:serviceaccount:atrium:atrium');
  const teams = [
    { team: { ...TEAM, name: 'dry' }, workspaces: [
      { spec: workspaceSpec({ team: 'dry' }), running: true },
      { spec: workspaceSpec({ id: 'w_2', team: 'dry', name: 'train', gpu: { count: 1, type: 'a100' }, egress: 'public' }), running: true },
      { spec: workspaceSpec({ id: 'w_3', team: 'dry', name: 'vault', tier: 'sandboxed', environment: { kind: 'shell' } }), running: false },
      { spec: workspaceSpec({ id: 'w_4', team: 'dry', name: 'app', environment: { kind: 'custom', command: ['python3', '-m', 'http.server'], port: 8080 } }), running: true },
    ] },
  ];
  const objects = renderAll(settings, teams);
  // namespaced objects are checked in their namespace, so it must exist: the one real write
  await atrium.apply(objects.find((o) => o.kind === 'Namespace')!);
  // a RoleBinding is checked against the Role it names (Atrium may bind only what it holds), so the Role must exist too
  await atrium.apply(objects.find((o) => o.kind === 'Role')!);
  for (const o of objects) {
    await atrium.apply(o, { dryRun: true }).catch((err: unknown) => assert.fail(`${o.kind} ${o.metadata.name}: ${(err as Error).message}`));
  }
});

test('defence in depth, enforced by the API server: Pod Security, the admission policies and the ResourceQuota', async () => {
  for (const o of [...renderClusterScope(settings), ...renderTeam(settings, TEAM), ...renderTeam(settings, { ...TEAM, name: 'secure', sensitive: true })]) await atrium.apply(o);
  // a person with a plain `edit` binding in both team namespaces
  kubectl(['create', 'serviceaccount', 'eve', '-n', 'default']);
  for (const ns of ['atrium-ml', 'atrium-secure']) kubectl(['create', 'rolebinding', 'eve-edit', '--clusterrole=edit', '--serviceaccount=default:eve', '-n', ns]);
  const eve = createKubeClient(loadKubeConfig({ kubeconfig: await serviceAccountKubeconfig(cp, 'default', 'eve') }));
  const policy = (await atrium.get<KubeObject>('/apis/networking.k8s.io/v1/namespaces/atrium-ml/networkpolicies/atrium-default-deny'));

  // the policies take a moment to be compiled and enforced after they are created
  await waitUntil('the admission policy to refuse edit', async () => {
    // a dry run: refused or not, nothing is stored while the policy is being switched on
    const probe = { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'probe', namespace: 'atrium-ml' }, spec: { podSelector: {}, policyTypes: ['Egress'] } };
    return eve.apply(probe, { dryRun: true }).then(() => false, (err: unknown) => err instanceof KubeError && err.status === 403 && /Atrium manages this namespace/.test(err.message));
  }, { timeoutMs: 30_000, everyMs: 500 });
  await refused('an editor deleting Atrium\'s public-egress policy', () => eve.delete('/apis/networking.k8s.io/v1/namespaces/atrium-ml/networkpolicies/atrium-public-egress'), 403, /Atrium manages this namespace/);
  await refused('an editor loosening Atrium\'s default-deny policy', () =>
    eve.apply({ ...policy, metadata: { name: 'atrium-default-deny', namespace: 'atrium-ml' }, spec: { podSelector: {}, policyTypes: [] } }), 403, /Atrium manages this namespace/);
  await refused('an editor adding a NetworkPolicy of their own', () =>
    eve.apply({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'allow-all', namespace: 'atrium-ml' }, spec: { podSelector: {}, egress: [{}], policyTypes: ['Egress'] } }), 403, /Atrium manages this namespace/);
  await refused('an editor running a pod without the sandboxed class in a sensitive team', () => eve.post('/api/v1/namespaces/atrium-secure/pods', pod('atrium-secure', 'escape')), 403, /atrium-(only-writer|sandboxed-tier)/);
  await refused('an editor reading a workspace Secret by changing it', () =>
    eve.apply({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'ws-lab-access', namespace: 'atrium-ml' }, stringData: { authorized_keys: 'ssh-ed25519 AAAA eve' } }), 403, /Atrium manages this namespace/);

  // the sandboxed tier binds everyone in sensitive namespaces, cluster administrators included (each policy switches on by itself)
  await waitUntil('the sandboxed-tier policy to refuse', () =>
    admin.post('/api/v1/namespaces/atrium-secure/pods?dryRun=All', pod('atrium-secure', 'probe')).then(() => false, (err: unknown) => err instanceof KubeError && err.status === 403), { timeoutMs: 30_000, everyMs: 250 });
  await refused('a pod without the sandboxed RuntimeClass in a sensitive namespace', () => admin.post('/api/v1/namespaces/atrium-secure/pods', pod('atrium-secure', 'plain')), 403, /sandboxed RuntimeClass atrium-sandboxed/);
  // Pod Security restricted, whoever writes
  await refused('a privileged pod', () => admin.post('/api/v1/namespaces/atrium-ml/pods', pod('atrium-ml', 'root', { securityContext: {}, containers: [{ name: 'c', image: 'busybox', securityContext: { privileged: true } }] })), 403, /violates PodSecurity "restricted:latest"/);
  // the ResourceQuota holds even when Atrium's own admission is bypassed
  await waitUntil('the quota controller to fill in the quota\'s status', async () => {
    const q = await admin.get<{ status?: { hard?: Record<string, string> } }>('/api/v1/namespaces/atrium-ml/resourcequotas/atrium-quota');
    return q.status?.hard !== undefined;
  }, { timeoutMs: 30_000, everyMs: 250 });
  const big = (name: string) => {
    const p = pod('atrium-ml', name);
    (p.spec as any).containers[0].resources = { requests: { cpu: '1', memory: '64Mi' }, limits: { cpu: '10', memory: '64Mi' } };
    return p;
  };
  await refused('a container beyond the team\'s CPU quota on its own', () => admin.post('/api/v1/namespaces/atrium-ml/pods', { ...big('huge'), spec: { ...(big('huge').spec as object), containers: [{ ...(big('huge').spec as any).containers[0], resources: { limits: { cpu: '32', memory: '64Mi' } } }] } }), 403, /maximum cpu usage per Container is 16/);
  await admin.post('/api/v1/namespaces/atrium-ml/pods', big('first'));
  await refused('a pod beyond what is left of the team\'s CPU quota', () => admin.post('/api/v1/namespaces/atrium-ml/pods', big('second')), 403, /exceeded quota: atrium-quota.*limits\.cpu/);
  const gpus = pod('atrium-ml', 'too-many-gpus');
  (gpus.spec as any).containers[0].resources = { requests: { 'nvidia.com/gpu': '7' }, limits: { cpu: '100m', memory: '64Mi', 'nvidia.com/gpu': '7' } };
  await refused('a pod beyond the team\'s GPUs', () => admin.post('/api/v1/namespaces/atrium-ml/pods', gpus), 403, /exceeded quota: atrium-quota.*nvidia\.com\/gpu/);
});

test('Atrium\'s ClusterRole is enough for what it writes and no wider', async () => {
  const spec = workspaceSpec({ team: 'ml', name: 'rbac', id: 'w_rbac' });
  for (const o of renderWorkspace(settings, { spec, running: false })) await atrium.apply(o);
  await atrium.get('/api/v1/namespaces/atrium-ml/pods');
  await atrium.get('/api/v1/nodes');
  for (const [what, fn] of [
    ['exec into a pod', () => atrium.post('/api/v1/namespaces/atrium-ml/pods/ws-rbac-0/exec?command=id&stdout=true', {})],
    ['create a Deployment', () => atrium.post('/apis/apps/v1/namespaces/atrium-ml/deployments', { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'x', namespace: 'atrium-ml' }, spec: {} })],
    ['grant itself cluster-admin', () => atrium.post('/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: { name: 'atrium-admin' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' }, subjects: [{ kind: 'ServiceAccount', name: 'atrium', namespace: 'atrium' }] })],
    ['delete a node', () => atrium.delete('/api/v1/nodes/anything')],
    ['create a pod itself', () => atrium.post('/api/v1/namespaces/atrium-ml/pods', pod('atrium-ml', 'direct'))],
    ['change its own ClusterRole', () => atrium.delete('/apis/rbac.authorization.k8s.io/v1/clusterroles/atrium')],
  ] as const) {
    await refused(`Atrium trying to ${what}`, fn, 403, /forbidden/i);
  }
  // and the server-side apply conflict with another field manager is reported, not forced
  const clash = renderWorkspace(settings, { spec: workspaceSpec({ team: 'ml', name: 'clash', id: 'w_clash' }), running: false }).find((o) => o.kind === 'Service')!;
  execFileSync(kubectlPath(), ['--kubeconfig', cp.kubeconfig, 'apply', '--server-side', '--field-manager=someone-else', '-f', '-'], { input: JSON.stringify({ ...clash, spec: { clusterIP: 'None', ports: [{ name: 'web', port: 8888, targetPort: 9000, protocol: 'TCP' }] } }) });
  await refused('an apply over another manager\'s field', () => atrium.apply(clash), 409, /conflict/i);
});
