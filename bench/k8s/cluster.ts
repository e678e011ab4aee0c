import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { join } from 'node:path';
import { loadKubernetes, type KubeClient } from '../../src/runtime/index.js';
import { addNodes, addVolumes, CONTROL_PLANE_COMPONENTS, installAtrium, startControlPlane, type ControlPlane } from '../../test/k8s/env.js';

/**
 * The control plane the benchmark runs on: the test environment's etcd,
 * kube-apiserver, controller manager and scheduler with KWOK's fake nodes
 * (test/k8s/env.ts), Atrium's own identity from deploy/kubernetes, and
 * PersistentVolumes made ahead (no provisioner runs) for the homes to bind.
 */

export interface Cluster {
  cp: ControlPlane;
  /** authenticates as Atrium's ServiceAccount (deploy/kubernetes), bound to its ClusterRole */
  atriumKubeconfig: string;
  /** a client with the admin's client certificate (system:masters) */
  admin: KubeClient;
  /** runs the control plane's kubectl as the admin; rejects with its output when it fails */
  kubectl(args: string[], input?: string): Promise<string>;
  kubectlPath: string;
  /** pids of etcd, kube-apiserver, the controller manager, the scheduler and KWOK (they run in sessions of their own) */
  pids(): Record<string, number>;
}

export interface NodeShape {
  count: number;
  cpu: string;
  memory: string;
  pods: number;
}

export function runKubectl(path: string, kubeconfig: string, args: string[], input?: string, env?: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(path, ['--kubeconfig', kubeconfig, ...args], { maxBuffer: 256 << 20, env: env ?? process.env }, (err, stdout, stderr) => {
      if (err) reject(new Error(`kubectl ${args.join(' ')}: ${err.message}\n${stderr.trim().split('\n').slice(-8).join('\n')}`));
      else resolve(stdout);
    });
    if (input !== undefined) child.stdin!.end(input);
  });
}

/**
 * Starts the control plane, gives Atrium its ServiceAccount and ClusterRole
 * (the Namespace, ServiceAccount, ClusterRole and ClusterRoleBinding of
 * deploy/kubernetes, as an operator would apply them), adds the KWOK nodes
 * and `volumes` PersistentVolumes of 1Gi with no storage class.
 */
export async function setupCluster(opts: { nodes: NodeShape; volumes: number; log: (msg: string) => void }): Promise<Cluster> {
  const cp = await startControlPlane({ name: 'atrium-bench-k8s' });
  const kubectlPath = join(cp.env.BIN!, 'kubectl');
  const kubectl = (args: string[], input?: string) => runKubectl(kubectlPath, cp.kubeconfig, args, input);
  const { createKubeClient, loadKubeConfig } = await loadKubernetes();
  const admin = createKubeClient(loadKubeConfig({ kubeconfig: cp.kubeconfig }));

  const atriumKubeconfig = await installAtrium(cp);

  opts.log(`adding ${opts.nodes.count} KWOK nodes (${opts.nodes.cpu} CPUs, ${opts.nodes.memory}, ${opts.nodes.pods} pods each)`);
  await addNodes(
    cp,
    Array.from({ length: opts.nodes.count }, (_, i) => ({ name: `node-${String(i).padStart(3, '0')}`, cpu: opts.nodes.cpu, memory: opts.nodes.memory, pods: opts.nodes.pods })),
  );

  opts.log(`creating ${opts.volumes} PersistentVolumes (1Gi, storageClassName '') for the homes`);
  const started = performance.now();
  await addVolumes(cp, opts.volumes, { parallel: 16 });
  opts.log(`  ${opts.volumes} volumes in ${((performance.now() - started) / 1000).toFixed(1)} s`);

  return {
    cp,
    atriumKubeconfig,
    admin,
    kubectl,
    kubectlPath,
    pids() {
      const out: Record<string, number> = {};
      for (const c of CONTROL_PLANE_COMPONENTS) {
        try {
          out[c] = Number(readFileSync(join(cp.dir, `${c}.pid`), 'utf8').trim());
        } catch {
          // not running
        }
      }
      return out;
    },
  };
}

/** The API server's request counter (`apiserver_request_total`), summed over every label, and per verb and resource. */
export interface RequestCounts {
  total: number;
  /** "VERB resource[/subresource]" → requests */
  by: Record<string, number>;
  /** answered 429 Too Many Requests */
  tooMany: number;
  /** requests API Priority and Fairness turned away (`apiserver_flowcontrol_rejected_requests_total`), "priority level / flow schema / reason" → requests */
  rejected: Record<string, number>;
}

let metricsAgent: Agent | undefined;

/** Reads `/metrics` of the API server with the admin's client certificate and sums `apiserver_request_total`. */
export function apiserverRequests(cp: ControlPlane): Promise<RequestCounts> {
  const pki = join(cp.dir, 'pki');
  metricsAgent ??= new Agent({ keepAlive: true, ca: readFileSync(join(pki, 'ca.crt')), cert: readFileSync(join(pki, 'admin.crt')), key: readFileSync(join(pki, 'admin.key')) });
  const url = new URL('/metrics', cp.server);
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: metricsAgent, headers: { accept: 'text/plain' } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => {
        if (res.statusCode !== 200) return reject(new Error(`GET /metrics: HTTP ${res.statusCode}: ${text.slice(0, 200)}`));
        resolve(parseRequestTotal(text));
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(30_000, () => req.destroy(new Error('GET /metrics: no answer within 30 s')));
    req.end();
  });
}

/** One sample of Prometheus' text format: its labels and value, or undefined for another metric. */
function sample(line: string, metric: string): { labels: Record<string, string>; value: number } | undefined {
  if (!line.startsWith(`${metric}{`)) return undefined;
  const close = line.lastIndexOf('}');
  const value = Number(line.slice(close + 1).trim().split(' ')[0]);
  if (!Number.isFinite(value)) return undefined;
  const labels: Record<string, string> = {};
  for (const m of line.slice(line.indexOf('{') + 1, close).matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[m[1]!] = m[2]!;
  return { labels, value };
}

/** Sums the samples of `apiserver_request_total` and `apiserver_flowcontrol_rejected_requests_total` in Prometheus' text format. */
export function parseRequestTotal(text: string): RequestCounts {
  const out: RequestCounts = { total: 0, by: {}, tooMany: 0, rejected: {} };
  for (const line of text.split('\n')) {
    const r = sample(line, 'apiserver_request_total');
    if (r) {
      const { labels, value } = r;
      const resource = labels.resource ? `${labels.resource}${labels.subresource ? `/${labels.subresource}` : ''}` : '(non-resource)';
      const key = `${labels.verb ?? '?'} ${resource}`;
      out.by[key] = (out.by[key] ?? 0) + value;
      out.total += value;
      if (labels.code === '429') out.tooMany += value;
      continue;
    }
    const f = sample(line, 'apiserver_flowcontrol_rejected_requests_total');
    if (f) {
      const key = `${f.labels.priority_level ?? '?'} / ${f.labels.flow_schema ?? '?'} / ${f.labels.reason ?? '?'}`;
      out.rejected[key] = (out.rejected[key] ?? 0) + f.value;
    }
  }
  return out;
}

/** What was counted between two readings. */
export function requestDelta(a: RequestCounts, b: RequestCounts): RequestCounts {
  const diff = (x: Record<string, number>, y: Record<string, number>) => {
    const out: Record<string, number> = {};
    for (const [k, v] of Object.entries(y)) {
      const d = v - (x[k] ?? 0);
      if (d > 0) out[k] = d;
    }
    return out;
  };
  return { total: b.total - a.total, by: diff(a.by, b.by), tooMany: b.tooMany - a.tooMany, rejected: diff(a.rejected, b.rejected) };
}
