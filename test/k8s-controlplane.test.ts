/**
 * The test control plane (test/k8s/env.ts) is a real Kubernetes: the real
 * scheduler places pods on KWOK nodes, the real controller manager runs
 * StatefulSets, the real API server enforces Pod Security, and port-forward
 * and logs through it reach real local things. Two control planes run side by
 * side, and a client gets through again after the API server is killed.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { AppsV1Api, ApiException, CoreV1Api, KubeConfig, Log, PortForward, RbacAuthorizationV1Api, type V1Pod } from '@kubernetes/client-node';
import type WebSocket from 'ws';
import { addNodes, criLog, logsFrom, portForwardTo, serviceAccountKubeconfig, startControlPlane, type ControlPlane } from './k8s/env.js';
import { waitUntil } from './wait.js';

const KWOK_TOLERATION = { key: 'kwok.x-k8s.io/node', operator: 'Exists', effect: 'NoSchedule' } as const;

function fakePod(name: string, extra: Partial<NonNullable<V1Pod['spec']>> = {}): V1Pod {
  return {
    metadata: { name },
    spec: {
      nodeSelector: { type: 'kwok' },
      tolerations: [KWOK_TOLERATION],
      containers: [{ name: 'main', image: 'registry.invalid/atrium/workspace:test', ports: [{ containerPort: 8080 }] }],
      ...extra,
    },
  };
}

describe('Kubernetes control plane for tests', () => {
  let cp: ControlPlane;
  let other: ControlPlane;
  let core: CoreV1Api;
  let apps: AppsV1Api;
  let ns = 0;

  /** A fresh namespace per test, so tests do not see each other's objects. */
  async function namespace(labels: Record<string, string> = {}): Promise<string> {
    const name = `t${++ns}-${Date.now().toString(36)}`;
    await core.createNamespace({ body: { metadata: { name, labels } } });
    // the ServiceAccount admission plugin refuses pods until `default` exists
    await waitUntil(`ServiceAccount default in ${name}`, () => core.readNamespacedServiceAccount({ namespace: name, name: 'default' }).then(() => true, () => false));
    return name;
  }

  async function runningPod(namespaceName: string, pod: V1Pod): Promise<V1Pod> {
    await core.createNamespacedPod({ namespace: namespaceName, body: pod });
    const name = pod.metadata!.name!;
    let last: V1Pod | undefined;
    return waitUntil(
      `pod ${namespaceName}/${name} Running`,
      async () => {
        last = await core.readNamespacedPod({ namespace: namespaceName, name });
        return last.status?.phase === 'Running' && last;
      },
      { timeoutMs: 30_000, last: () => last?.status },
    );
  }

  before(async () => {
    // two at once, as multi-cluster tests start them
    [cp, other] = await Promise.all([startControlPlane({ name: 'east' }), startControlPlane({ name: 'west' })]);
    core = cp.kc.makeApiClient(CoreV1Api);
    apps = cp.kc.makeApiClient(AppsV1Api);
    await addNodes(cp, [
      { name: 'kwok-cpu-0', cpu: 4, memory: '16Gi' },
      { name: 'kwok-gpu-0', cpu: 16, memory: '64Gi', gpus: 2, labels: { 'atrium.dev/gpu': 'true' }, taints: [{ key: 'nvidia.com/gpu', value: 'present', effect: 'NoSchedule' }] },
    ]);
  });
  after(async () => {
    await Promise.all([cp?.close(), other?.close()]);
  });

  test('two control planes run side by side, each its own cluster', async () => {
    assert.notEqual(cp.server, other.server);
    const ns1 = await namespace();
    const otherCore = other.kc.makeApiClient(CoreV1Api);
    await assert.rejects(otherCore.readNamespace({ name: ns1 }), (err: unknown) => err instanceof ApiException && err.code === 404);
    assert.equal((await otherCore.listNode()).items.length, 0);
  });

  test('the scheduler places pods on KWOK nodes by selector, resources and taints, and KWOK runs them', async () => {
    const name = await namespace();
    const cpuPod = await runningPod(name, fakePod('cpu'));
    assert.equal(cpuPod.spec?.nodeName, 'kwok-cpu-0', 'the GPU node is tainted, so a pod without the toleration lands on the CPU node');
    assert.ok(cpuPod.status?.conditions?.some((c) => c.type === 'PodScheduled' && c.status === 'True'));
    assert.ok(cpuPod.status?.podIP, 'KWOK gives the pod an IP');

    const gpuPod = await runningPod(
      name,
      fakePod('gpu', {
        tolerations: [KWOK_TOLERATION, { key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }],
        containers: [{ name: 'main', image: 'registry.invalid/atrium/workspace:test', resources: { limits: { 'nvidia.com/gpu': '1' } } }],
      }),
    );
    assert.equal(gpuPod.spec?.nodeName, 'kwok-gpu-0');

    // more GPUs than any node has: the real scheduler leaves it Pending and says why
    await core.createNamespacedPod({ namespace: name, body: fakePod('too-big', { containers: [{ name: 'main', image: 'x', resources: { limits: { 'nvidia.com/gpu': '3' } } }] }) });
    const message = await waitUntil('the scheduler to report too-big unschedulable', async () => {
      const p = await core.readNamespacedPod({ namespace: name, name: 'too-big' });
      const c = p.status?.conditions?.find((x) => x.type === 'PodScheduled' && x.status === 'False');
      return c?.message;
    });
    assert.match(message, /Insufficient nvidia\.com\/gpu/);
  });

  test('the controller manager runs a StatefulSet: one replica makes its pod, scaling to 0 removes it', async () => {
    const name = await namespace();
    const labels = { app: 'ws' };
    await apps.createNamespacedStatefulSet({
      namespace: name,
      body: {
        metadata: { name: 'ws' },
        spec: { replicas: 1, serviceName: 'ws', selector: { matchLabels: labels }, template: { metadata: { labels }, spec: fakePod('ignored').spec! } },
      },
    });
    await waitUntil('pod ws-0 Running', async () => {
      const p = await core.readNamespacedPod({ namespace: name, name: 'ws-0' }).catch(() => undefined);
      return p?.status?.phase === 'Running';
    });
    await apps.patchNamespacedStatefulSetScale({ namespace: name, name: 'ws', body: [{ op: 'replace', path: '/spec/replicas', value: 0 }] });
    await waitUntil('pod ws-0 to be gone', async () => (await core.listNamespacedPod({ namespace: name })).items.length === 0);
  });

  test('the API server enforces Pod Security: a privileged pod is refused in a restricted namespace', async () => {
    const name = await namespace({ 'pod-security.kubernetes.io/enforce': 'restricted', 'pod-security.kubernetes.io/enforce-version': 'latest' });
    const privileged = fakePod('privileged', { containers: [{ name: 'main', image: 'x', securityContext: { privileged: true } }] });
    await assert.rejects(core.createNamespacedPod({ namespace: name, body: privileged }), (err: unknown) => {
      assert.ok(err instanceof ApiException, String(err));
      assert.equal(err.code, 403);
      assert.match((JSON.parse(String(err.body)) as { message: string }).message, /violates PodSecurity "restricted:latest": privileged/);
      return true;
    });
    const compliant = fakePod('compliant', {
      securityContext: { runAsNonRoot: true, runAsUser: 1000, seccompProfile: { type: 'RuntimeDefault' } },
      containers: [{ name: 'main', image: 'x', securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } } }],
    });
    await runningPod(name, compliant);
  });

  test('a ServiceAccount kubeconfig has that ServiceAccount’s rights only', async () => {
    const name = await namespace();
    const kc = await serviceAccountKubeconfig(cp, name, 'default');
    const saConfig = new KubeConfig();
    saConfig.loadFromFile(kc);
    const saCore = saConfig.makeApiClient(CoreV1Api);
    await assert.rejects(saCore.listNamespacedPod({ namespace: name }), (err: unknown) => err instanceof ApiException && err.code === 403 && String(err.body).includes(`system:serviceaccount:${name}:default`));
    await cp.kc.makeApiClient(RbacAuthorizationV1Api).createNamespacedRoleBinding({
      namespace: name,
      body: { metadata: { name: 'default-view' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'view' }, subjects: [{ kind: 'ServiceAccount', name: 'default', namespace: name }] },
    });
    await waitUntil('the RoleBinding to take effect', () => saCore.listNamespacedPod({ namespace: name }).then(() => true, () => false), { timeoutMs: 10_000 });
    await assert.rejects(saCore.listNamespacedPod({ namespace: 'default' }), (err: unknown) => err instanceof ApiException && err.code === 403);
  });

  test('port-forward through the API server (WebSocket, client-node PortForward) reaches a real local server via KWOK', async () => {
    const name = await namespace();
    await runningPod(name, fakePod('web'));
    const echo: Server = createServer((socket) => socket.pipe(socket));
    echo.listen(0, '127.0.0.1');
    await once(echo, 'listening');
    try {
      const { port } = echo.address() as AddressInfo;
      await portForwardTo(cp, name, 'web', 8080, { address: '127.0.0.1', port });

      const input = new PassThrough();
      const output = new PassThrough();
      let received = '';
      output.on('data', (b: Buffer) => (received += b.toString('utf8')));
      const ws = (await new PortForward(cp.kc).portForward(name, 'web', [8080], output, null, input)) as WebSocket;
      assert.equal(ws.protocol, 'v4.channel.k8s.io', 'the API server passes the WebSocket through to KWOK as it is');
      input.write('hello through the API server\n');
      await waitUntil('the echo to come back', () => received === 'hello through the API server\n', { timeoutMs: 10_000, last: () => received });
      ws.close();
    } finally {
      echo.close();
    }
  });

  test('pod logs through the API server come from the file KWOK is given', async () => {
    const name = await namespace();
    await runningPod(name, fakePod('logs'));
    const file = join(cp.dir, 'logs-pod.log');
    writeFileSync(file, criLog(['first line', 'second line']));
    await logsFrom(cp, name, 'logs', file);

    assert.equal(await core.readNamespacedPodLog({ namespace: name, name: 'logs', container: 'main' }), 'first line\nsecond line\n');

    let streamed = '';
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        streamed += chunk.toString('utf8');
        done();
      },
    });
    await new Log(cp.kc).log(name, 'logs', 'main', sink, { tailLines: 1 });
    await waitUntil('the streamed log line', () => streamed === 'second line\n', { timeoutMs: 10_000, last: () => streamed });
  });

  test('after the API server is killed and resumed, a client gets through again and the cluster works on', async () => {
    const name = await namespace();
    await core.listNamespacedPod({ namespace: name });
    await cp.kill('kube-apiserver', { hard: true });
    await assert.rejects(core.listNamespacedPod({ namespace: name }), /ECONNREFUSED|connect/);
    await cp.resume('kube-apiserver');
    // the same client object, its connections gone with the old process
    assert.deepEqual((await core.listNamespacedPod({ namespace: name })).items, []);
    // scheduler, controller manager and KWOK found the new API server on their own
    const pod = await runningPod(name, fakePod('after-restart'));
    assert.ok(pod.spec?.nodeName);
  });
});
