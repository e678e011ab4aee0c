import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { startServer } from './helpers.js';
import { newPublicKey } from './keys.js';

/**
 * `GET /api/v1/clusters/{cluster}/objects`, what `atrium render kubernetes`
 * prints: rendered from the store and the config alone. The cluster's
 * kubeconfig does not even exist, and the server runs no runtime.
 */
interface Obj {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: any;
}

const find = (objects: Obj[], kind: string, name: string, namespace?: string) =>
  objects.find((o) => o.kind === kind && o.metadata.name === name && o.metadata.namespace === namespace);

test('an admin renders a cluster\'s objects as YAML or JSON, Secrets without their data unless asked; others are refused', async () => {
  const t = await startServer({ flags: { 'kubernetes.clusters': [{ name: 'east', kubeconfig: '/nonexistent' }] } });
  const admin = t.adminToken;
  const ada = await t.user('ada');
  const adaKey = newPublicKey('ada@laptop');
  assert.equal((await t.call('POST', '/api/v1/me/ssh-keys', { token: ada, body: { publicKey: adaKey } })).status, 201);
  const team = await t.call('POST', '/api/v1/teams', { token: admin, body: { name: 'ml', owner: 'ada', quota: { cpu: '8', memory: '32Gi', storage: '100Gi', workspaces: 5 } } });
  assert.equal(team.status, 201, JSON.stringify(team.body));
  const create = async (name: string, start: boolean) => {
    const r = await t.call('POST', '/api/v1/teams/ml/workspaces', { token: ada, body: { name, profile: 'standard-cpu', start } });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return r.body.id as string;
  };
  const labId = await create('lab', true);
  await create('idle', false);
  await create('gone', true);
  assert.equal((await t.call('DELETE', '/api/v1/teams/ml/workspaces/gone', { token: ada })).status, 204);

  const yamlRes = await t.call('GET', '/api/v1/clusters/east/objects?format=yaml', { token: admin });
  assert.equal(yamlRes.status, 200, String(yamlRes.body));
  assert.match(yamlRes.headers.get('content-type') ?? '', /^application\/yaml/);
  const text = yamlRes.body as string;
  assert.match(text, /^# Atrium's objects for Kubernetes cluster east\n# Secrets without their data/);
  assert.doesNotMatch(text, /PRIVATE KEY|jupyter_token:/, 'no private key or token by default');
  const docs = parseAllDocuments(text);
  for (const d of docs) assert.deepEqual(d.errors, []);
  const objects = docs.map((d) => d.toJS() as Obj);

  // cluster-scoped first, then each team (personal ones included) by name
  assert.deepEqual(objects.slice(0, 5).map((o) => o.kind), ['RuntimeClass', 'ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding', 'ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding']);
  assert.deepEqual(objects.filter((o) => o.kind === 'Namespace').map((o) => o.metadata.name), ['atrium-ada', 'atrium-admin', 'atrium-ml']);
  const policy = find(objects, 'ValidatingAdmissionPolicy', 'atrium-only-writer')!;
  assert.match(policy.spec.validations[0].expression, /^request\.userInfo\.username == 'system:serviceaccount:atrium:atrium'/, 'the default writer');
  const quota = find(objects, 'ResourceQuota', 'atrium-quota', 'atrium-ml')!;
  assert.equal(quota.spec.hard['limits.cpu'], '8');
  assert.equal(quota.spec.hard['limits.memory'], '32Gi');
  assert.equal(quota.spec.hard['requests.storage'], '100Gi');
  assert.equal(quota.spec.hard.persistentvolumeclaims, '5');
  assert.equal(find(objects, 'StatefulSet', 'ws-lab', 'atrium-ml')!.spec.replicas, 1, 'asked to run');
  assert.equal(find(objects, 'StatefulSet', 'ws-idle', 'atrium-ml')!.spec.replicas, 0, 'stopped');
  assert.ok(find(objects, 'PersistentVolumeClaim', 'home-idle', 'atrium-ml'), 'a stopped workspace keeps its home');
  assert.equal(objects.filter((o) => o.metadata.labels?.['atrium.dev/workspace'] === 'gone').length, 0, 'a deleted workspace is not rendered');
  const sts = find(objects, 'StatefulSet', 'ws-lab', 'atrium-ml')!;
  assert.equal(sts.metadata.annotations?.['atrium.dev/workspace-id'], labId);
  assert.equal(sts.spec.template.spec.containers[0].resources.limits.cpu, '2', "the profile's limit");
  assert.equal(sts.spec.template.spec.terminationGracePeriodSeconds, 10, 'the stop grace from the config');
  const secret = find(objects, 'Secret', 'ws-lab-access', 'atrium-ml')!;
  assert.deepEqual(Object.keys(secret), ['apiVersion', 'kind', 'metadata', 'type']);
  assert.match(secret.metadata.annotations!['atrium.dev/data']!, /^written by Atrium, not rendered: authorized_keys, jupyter_token, ssh_host_ed25519_key$/);

  // the same objects as a Kubernetes List, and as YAML when Accept asks for it
  const json = await t.call('GET', '/api/v1/clusters/east/objects', { token: admin });
  assert.equal(json.status, 200);
  assert.match(json.headers.get('content-type') ?? '', /^application\/json/);
  assert.equal(json.body.apiVersion, 'v1');
  assert.equal(json.body.kind, 'List');
  assert.deepEqual(json.body.items, objects);
  const accepted = await t.call('GET', '/api/v1/clusters/east/objects', { token: admin, headers: { accept: 'application/yaml' } });
  assert.equal(accepted.body, text);
  const preferJson = await t.call('GET', '/api/v1/clusters/east/objects', { token: admin, headers: { accept: 'application/json, application/yaml;q=0.5' } });
  assert.equal(preferJson.body.kind, 'List');

  // with secrets=true: the workspace's host key, its token, and who may log in; the read is audited
  const withSecrets = await t.call('GET', '/api/v1/clusters/east/objects?secrets=true', { token: admin });
  assert.equal(withSecrets.status, 200);
  const full = withSecrets.body.items.find((o: Obj) => o.kind === 'Secret' && o.metadata.name === 'ws-lab-access');
  assert.equal(full.stringData.ssh_host_ed25519_key, t.server.sshKeys.workspaceHost(labId).privateKey);
  assert.match(full.stringData.jupyter_token, /^[0-9a-f]{64}$/);
  assert.ok(full.stringData.authorized_keys.includes(`${adaKey.split(' ').slice(0, 2).join(' ')} ada`), "the owner's registered key");
  assert.equal(full.metadata.annotations['atrium.dev/data'], undefined);
  const secretsYaml = await t.call('GET', '/api/v1/clusters/east/objects?secrets=true&format=yaml', { token: admin });
  assert.match(secretsYaml.body, /^# Atrium's objects for Kubernetes cluster east\n# Secrets WITH their data/);
  assert.match(secretsYaml.body, /BEGIN OPENSSH PRIVATE KEY/);
  const audit = await t.call('GET', '/api/v1/audit?action=cluster.render', { token: admin });
  assert.equal(audit.body.items.length, 2, 'each read with secrets leaves a row; those without leave none');
  assert.deepEqual(audit.body.items.map((a: any) => [a.actor, a.target, a.details.secrets]), [['admin', 'clusters/east/objects', true], ['admin', 'clusters/east/objects', true]]);

  // one team: its namespace and workspaces, no cluster-scoped objects and no other team's
  const one = await t.call('GET', '/api/v1/clusters/east/objects?team=ml', { token: admin });
  assert.equal(one.status, 200);
  assert.ok(one.body.items.length > 0);
  assert.ok(one.body.items.every((o: Obj) => o.metadata.name === 'atrium-ml' || o.metadata.namespace === 'atrium-ml'), 'only team ml');
  assert.equal(one.body.items[0].kind, 'Namespace');

  // refusals
  assert.equal((await t.call('GET', '/api/v1/clusters/east/objects', { token: ada })).status, 403, 'a team owner is not a platform admin');
  assert.equal((await t.call('GET', '/api/v1/clusters/east/objects')).status, 401);
  const unknown = await t.call('GET', '/api/v1/clusters/west/objects', { token: admin });
  assert.equal(unknown.status, 404);
  assert.equal(unknown.body.error.code, 'not_found');
  assert.match(unknown.body.error.message, /cluster west not found; Kubernetes clusters: east/);
  assert.deepEqual(unknown.body.error.details.available, ['east']);
  const local = await t.call('GET', '/api/v1/clusters/local/objects', { token: admin });
  assert.equal(local.status, 400);
  assert.match(local.body.error.message, /cluster local is this machine.*no Kubernetes objects; Kubernetes clusters: east/);
  assert.equal((await t.call('GET', '/api/v1/clusters/east/objects?team=nope', { token: admin })).status, 404);
  assert.equal((await t.call('GET', '/api/v1/clusters/east/objects?format=xml', { token: admin })).status, 400);

  // documented: both media types, and what the Secrets hold
  const doc = (await t.call('GET', '/api/v1/openapi.json')).body;
  const op = doc.paths['/api/v1/clusters/{cluster}/objects'].get;
  assert.deepEqual(Object.keys(op.responses['200'].content), ['application/json', 'application/yaml']);
  assert.equal(op['x-atrium-admin-only'], true);
  assert.match(op.parameters.find((p: any) => p.name === 'secrets').description, /private host key/);
});

test('without Kubernetes clusters configured, every cluster is unknown', async () => {
  const t = await startServer();
  const r = await t.call('GET', '/api/v1/clusters/east/objects', { token: t.adminToken });
  assert.equal(r.status, 404);
  assert.match(r.body.error.message, /no Kubernetes cluster is configured \(kubernetes\.clusters\)/);
});
