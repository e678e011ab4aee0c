/**
 * A real Kubernetes control plane for tests (scripts/k8s-testenv.sh): etcd,
 * kube-apiserver, kube-controller-manager, kube-scheduler and KWOK as local
 * processes on loopback. KWOK plays the kubelet of fake nodes: pods are
 * scheduled for real and reported Running, but no container runs; their
 * port-forward and logs are redirected to real local things (portForwardTo,
 * logsFrom).
 *
 * @example
 * const cp = await startControlPlane();
 * after(() => cp.close());
 * await addNodes(cp, [{ name: 'n1', cpu: 4, memory: '16Gi' }]);
 * const core = cp.kc.makeApiClient(CoreV1Api);
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { ApiException, CoreV1Api, CustomObjectsApi, KubeConfig, PortForward, type V1Node, type V1Taint } from '@kubernetes/client-node';
import type WebSocket from 'ws';
import { waitUntil } from '../wait.js';

const SCRIPT = resolve(dirname(fileURLToPath(import.meta.url)), '../../scripts/k8s-testenv.sh');

export const CONTROL_PLANE_COMPONENTS = ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kwok'] as const;
export type ControlPlaneComponent = (typeof CONTROL_PLANE_COMPONENTS)[number];

export interface ControlPlane {
  /** Cluster and context name in the kubeconfig. */
  name: string;
  /** Holds the kubeconfig, certificates, and each process's args, log and pid. */
  dir: string;
  /** Admin kubeconfig (client certificate in group system:masters). */
  kubeconfig: string;
  /** The API server's URL, https://127.0.0.1:PORT. */
  server: string;
  /** Admin client configuration. */
  kc: KubeConfig;
  /** DIR/env as written by the script: ports (APISERVER_PORT, ETCD_PORT, KWOK_PORT …), BIN, KUBECONFIG. */
  env: Readonly<Record<string, string>>;
  /** Stops one component: TERM, then KILL after 10 s; `hard` sends KILL at once (a crash). */
  kill(component: ControlPlaneComponent, opts?: { hard?: boolean }): Promise<void>;
  /** Starts a killed component again with the same flags and ports, and waits until it serves. */
  resume(component: ControlPlaneComponent): Promise<void>;
  /** kill, then resume. */
  restart(component: ControlPlaneComponent): Promise<void>;
  /** Stops every process and removes DIR. Idempotent. */
  close(): Promise<void>;
}

/** Control planes of this process still running: stopped if the process exits without closing them. */
const running = new Set<string>();
process.on('exit', () => {
  for (const dir of running) spawnSync('bash', [SCRIPT, 'stop', dir], { stdio: 'ignore' });
});

function runScript(args: string[]): Promise<string> {
  return new Promise((done, fail) => {
    const child = spawn('bash', [SCRIPT, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let partial = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      err += d;
      // a cold build of the binaries takes many minutes: show its progress instead of a silent test
      const lines = (partial + d).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) if (line.startsWith('k8s-build:')) process.stderr.write(line + '\n');
    });
    child.on('error', fail);
    child.on('close', (code, signal) => {
      if (code === 0) done(out.trim());
      else fail(new Error(`scripts/k8s-testenv.sh ${args.join(' ')} failed (${signal ?? `exit ${code}`}):\n${err}`));
    });
  });
}

/** DIR/env: KEY=VALUE lines (values are plain paths, ports and URLs). */
function readEnv(file: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) env[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return env;
}

/**
 * Starts a control plane in a fresh temporary directory and resolves once it
 * is usable: /readyz ok, controllers and scheduler serving, KWOK serving, and
 * the `default` ServiceAccount made. About 5 s once the binaries are cached;
 * the first run on a machine builds them (scripts/k8s-build.sh, many minutes).
 * Several may run at once, each with its own ports.
 */
export async function startControlPlane(opts: { name?: string } = {}): Promise<ControlPlane> {
  const dir = mkdtempSync(join(tmpdir(), 'atrium-k8s-'));
  // --owner-pid: a test process killed before close() still takes its control plane with it
  const args = ['start', dir, '--owner-pid', String(process.pid), ...(opts.name ? ['--name', opts.name] : [])];
  running.add(dir);
  let kubeconfig: string;
  try {
    kubeconfig = await runScript(args);
  } catch (err) {
    running.delete(dir);
    throw err instanceof Error ? new Error(`${err.message}\n(logs kept in ${dir})`) : err;
  }
  const env = readEnv(join(dir, 'env'));
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  let closed = false;
  return {
    name: env.NAME ?? '',
    dir,
    kubeconfig,
    server: env.APISERVER ?? kc.getCurrentCluster()?.server ?? '',
    kc,
    env,
    async kill(component, o = {}) {
      await runScript(['kill', dir, component, ...(o.hard ? ['--hard'] : [])]);
    },
    async resume(component) {
      await runScript(['resume', dir, component]);
    },
    async restart(component) {
      await runScript(['restart', dir, component]);
    },
    async close() {
      if (closed) return;
      closed = true;
      await runScript(['stop', dir]);
      running.delete(dir);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface FakeNode {
  name: string;
  /** Kubernetes quantities: 4, '3500m'. */
  cpu: number | string;
  /** '16Gi'. */
  memory: string;
  /** Pod capacity; 110 as a kubelet's default. */
  pods?: number;
  /** nvidia.com/gpu capacity. */
  gpus?: number;
  labels?: Record<string, string>;
  taints?: V1Taint[];
}

/**
 * Creates nodes that KWOK manages (annotation kwok.x-k8s.io/node=fake, label
 * type=kwok), with the given capacity as both capacity and allocatable, and
 * waits until each is Ready. KWOK keeps their Leases renewed.
 */
export async function addNodes(cp: ControlPlane, nodes: FakeNode[]): Promise<V1Node[]> {
  const core = cp.kc.makeApiClient(CoreV1Api);
  await Promise.all(
    nodes.map((n) => {
      const resources: Record<string, string> = { cpu: String(n.cpu), memory: n.memory, pods: String(n.pods ?? 110) };
      if (n.gpus !== undefined) resources['nvidia.com/gpu'] = String(n.gpus);
      const body: V1Node = {
        apiVersion: 'v1',
        kind: 'Node',
        metadata: {
          name: n.name,
          annotations: { 'kwok.x-k8s.io/node': 'fake' },
          labels: { 'kubernetes.io/hostname': n.name, 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': 'amd64', ...n.labels, type: 'kwok' },
        },
        spec: { taints: n.taints },
        // a Node's status is taken as given on create; KWOK's node stage keeps capacity and allocatable
        status: { capacity: resources, allocatable: resources },
      };
      return core.createNode({ body });
    }),
  );
  const names = new Set(nodes.map((n) => n.name));
  let last: Record<string, string> = {};
  return waitUntil(
    `nodes ${[...names].join(', ')} to be Ready`,
    async () => {
      const list = await core.listNode({ labelSelector: 'type=kwok' });
      const ours = list.items.filter((n) => names.has(n.metadata?.name ?? ''));
      last = Object.fromEntries(ours.map((n) => [n.metadata?.name, n.status?.conditions?.find((c) => c.type === 'Ready')?.status ?? 'none']));
      return ours.length === names.size && ours.every((n) => n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')) && ours;
    },
    { timeoutMs: 30_000, last: () => last },
  );
}

/**
 * Writes a kubeconfig that authenticates as ServiceAccount namespace/name with
 * a token from the TokenRequest API (valid 1 h), and returns its path: a
 * client loaded from it has exactly that ServiceAccount's rights.
 */
export async function serviceAccountKubeconfig(cp: ControlPlane, namespace: string, name: string): Promise<string> {
  const core = cp.kc.makeApiClient(CoreV1Api);
  const tr = await core.createNamespacedServiceAccountToken({ namespace, name, body: { spec: { audiences: [], expirationSeconds: 3600 } } });
  const token = tr.status?.token;
  if (!token) throw new Error(`TokenRequest for ${namespace}/${name} returned no token`);
  const cluster = cp.kc.getCurrentCluster();
  if (!cluster) throw new Error('the control plane kubeconfig has no current cluster');
  const user = `system:serviceaccount:${namespace}:${name}`;
  const sa = new KubeConfig();
  sa.loadFromOptions({
    clusters: [{ name: cp.name, server: cluster.server, caData: cluster.caData, skipTLSVerify: false }],
    users: [{ name: user, token }],
    contexts: [{ name: user, cluster: cp.name, user, namespace }],
    currentContext: user,
  });
  const file = join(cp.dir, `sa-${namespace}-${name}.kubeconfig`);
  // exportConfig writes JSON, which is YAML too
  writeFileSync(file, sa.exportConfig(), { mode: 0o600 });
  return file;
}

const KWOK_GROUP = 'kwok.x-k8s.io';
const KWOK_VERSION = 'v1alpha1';

interface KwokForward {
  ports?: number[];
  target?: { address: string; port: number };
  command?: string[];
}

/**
 * The pod port portForwardTo adds to every PortForward it writes: forwarding
 * to it runs `printf NONCE` in KWOK, which tells when KWOK serves that very
 * version of the object. Probing the real target instead would open
 * connections to it that the test did not make.
 */
export const KWOK_PROBE_PORT = 65535;

function isNotFound(err: unknown): boolean {
  return err instanceof ApiException && err.code === 404;
}

/**
 * Forwards port `port` of a simulated pod to a real local address: a
 * port-forward to namespace/pod:port through the API server (kubectl
 * port-forward, client-node's PortForward) then reaches `target`. Writes the
 * pod's KWOK PortForward object (kwok.x-k8s.io/v1alpha1, named after the pod,
 * spec.forwards[].{ports, target{address, port}}), keeping forwards of other
 * ports, and resolves once KWOK serves it. The pod must be scheduled.
 */
export async function portForwardTo(cp: ControlPlane, namespace: string, pod: string, port: number, target: { address: string; port: number }): Promise<void> {
  const api = cp.kc.makeApiClient(CustomObjectsApi);
  const ref = { group: KWOK_GROUP, version: KWOK_VERSION, namespace, plural: 'portforwards', name: pod };
  let existing: any;
  try {
    existing = await api.getNamespacedCustomObject(ref);
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  const nonce = randomBytes(8).toString('hex');
  const kept = ((existing?.spec?.forwards ?? []) as KwokForward[]).filter((f) => !f.ports?.some((p) => p === port || p === KWOK_PROBE_PORT));
  const forwards: KwokForward[] = [...kept, { ports: [port], target }, { ports: [KWOK_PROBE_PORT], command: ['printf', nonce] }];
  const body = { apiVersion: `${KWOK_GROUP}/${KWOK_VERSION}`, kind: 'PortForward', metadata: { name: pod, namespace, ...(existing ? { resourceVersion: existing.metadata.resourceVersion } : {}) }, spec: { forwards } };
  if (existing) await api.replaceNamespacedCustomObject({ ...ref, body });
  else await api.createNamespacedCustomObject({ group: KWOK_GROUP, version: KWOK_VERSION, namespace, plural: 'portforwards', body });
  let last = '';
  await waitUntil(
    `KWOK to serve the port-forward of ${namespace}/${pod}:${port}`,
    async () => {
      try {
        last = await probePortForward(cp.kc, namespace, pod, KWOK_PROBE_PORT, nonce);
      } catch (err) {
        last = err instanceof Error ? err.message : String(err);
      }
      return last === nonce;
    },
    { timeoutMs: 30_000, last: () => last },
  );
}

/**
 * What a port-forward to namespace/pod:port first says: `expect` once that
 * arrived, else the error stream's text, whatever came, when it closed or after 5 s.
 */
async function probePortForward(kc: KubeConfig, namespace: string, pod: string, port: number, expect: string): Promise<string> {
  const out = new PassThrough();
  const err = new PassThrough();
  let data = '';
  let error = '';
  // with no retries client-node returns the socket itself
  const ws = (await new PortForward(kc).portForward(namespace, pod, [port], out, err, new PassThrough())) as WebSocket;
  // the probe's command has exited once it printed, but KWOK keeps the stream
  // open until the client ends it: the answer is complete when it matches
  await new Promise<void>((done) => {
    const finish = () => {
      clearTimeout(timer);
      ws.terminate();
      done();
    };
    const timer = setTimeout(finish, 5_000);
    out.on('data', (b: Buffer) => {
      data += b.toString('utf8');
      if (data === expect) finish();
    });
    err.on('data', (b: Buffer) => (error += b.toString('utf8')));
    ws.on('close', finish);
  });
  return data === expect ? data : error || data;
}

/**
 * Serves `kubectl logs` of a simulated pod from a local file in the CRI log
 * format (criLog writes it): writes the pod's KWOK Logs object
 * (kwok.x-k8s.io/v1alpha1, named after the pod, spec.logs[].{containers,
 * logsFile, follow}) and resolves once the API server returns its logs.
 * Without `containers` the file serves every container of the pod.
 */
export async function logsFrom(cp: ControlPlane, namespace: string, pod: string, logsFile: string, opts: { containers?: string[]; follow?: boolean } = {}): Promise<void> {
  const api = cp.kc.makeApiClient(CustomObjectsApi);
  const core = cp.kc.makeApiClient(CoreV1Api);
  const ref = { group: KWOK_GROUP, version: KWOK_VERSION, namespace, plural: 'logs', name: pod };
  const body = { apiVersion: `${KWOK_GROUP}/${KWOK_VERSION}`, kind: 'Logs', metadata: { name: pod, namespace }, spec: { logs: [{ logsFile, follow: opts.follow ?? false, ...(opts.containers ? { containers: opts.containers } : {}) }] } };
  try {
    await api.createNamespacedCustomObject({ group: KWOK_GROUP, version: KWOK_VERSION, namespace, plural: 'logs', body });
  } catch (err) {
    if (!(err instanceof ApiException && err.code === 409)) throw err;
    const existing: any = await api.getNamespacedCustomObject(ref);
    await api.replaceNamespacedCustomObject({ ...ref, body: { ...body, metadata: { ...body.metadata, resourceVersion: existing.metadata.resourceVersion } } });
  }
  const container = opts.containers?.[0] ?? (await core.readNamespacedPod({ namespace, name: pod })).spec?.containers[0]?.name;
  if (!container) throw new Error(`pod ${namespace}/${pod} has no container`);
  let last = '';
  await waitUntil(
    `KWOK to serve the logs of ${namespace}/${pod}`,
    async () => {
      try {
        await core.readNamespacedPodLog({ namespace, name: pod, container, limitBytes: 1 });
        return true;
      } catch (err) {
        last = err instanceof ApiException ? `${err.code} ${String(err.body)}` : String(err);
        return false;
      }
    },
    { timeoutMs: 30_000, last: () => last },
  );
}

/** Lines in the CRI container log format (what kubelets read and KWOK serves), stamped now. */
export function criLog(lines: string[], stream: 'stdout' | 'stderr' = 'stdout'): string {
  const at = new Date().toISOString();
  return lines.map((line) => `${at} ${stream} F ${line}\n`).join('');
}

const DEPLOY = resolve(dirname(fileURLToPath(import.meta.url)), '../../deploy/kubernetes');

/**
 * Atrium's own identity on the cluster, exactly as deploy/kubernetes makes
 * it (its namespace, ServiceAccount, ClusterRole and binding), and a
 * kubeconfig that authenticates as that ServiceAccount: Atrium in tests
 * writes with it, never as a cluster administrator.
 */
export async function installAtrium(cp: ControlPlane): Promise<string> {
  const kubectl = (args: string[]) => {
    const r = spawnSync(join(cp.env.BIN!, 'kubectl'), ['--kubeconfig', cp.kubeconfig, ...args], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr}`);
  };
  kubectl(['apply', '-f', join(DEPLOY, 'namespace.yaml'), '-f', join(DEPLOY, 'clusterrole.yaml'), '-f', join(DEPLOY, 'clusterrolebinding.yaml')]);
  kubectl(['apply', '-n', 'atrium', '-f', join(DEPLOY, 'serviceaccount.yaml')]);
  return serviceAccountKubeconfig(cp, 'atrium', 'atrium');
}

/**
 * PersistentVolumes made ahead, for homes to bind to: no storage provisioner
 * runs here. `parallel` creates go at once (a benchmark makes thousands).
 */
export async function addVolumes(cp: ControlPlane, count: number, opts: { size?: string; parallel?: number; accessModes?: string[]; prefix?: string } = {}): Promise<void> {
  const core = cp.kc.makeApiClient(CoreV1Api);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < count; i = next++) {
      await core.createPersistentVolume({
        body: {
          apiVersion: 'v1', kind: 'PersistentVolume', metadata: { name: `${opts.prefix ?? 'pv'}-${String(i).padStart(5, '0')}` },
          spec: { capacity: { storage: opts.size ?? '1Gi' }, accessModes: opts.accessModes ?? ['ReadWriteOnce'], persistentVolumeReclaimPolicy: 'Delete', storageClassName: '', hostPath: { path: `/tmp/atrium-test-pv-${cp.name}-${opts.prefix ?? 'pv'}-${i}` } },
        },
      });
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(opts.parallel ?? 1, count)) }, worker));
}
