/**
 * bench/k8s: Atrium on a real Kubernetes control plane (etcd, kube-apiserver,
 * controller manager and scheduler built from their Go modules, KWOK's fake
 * nodes), against the floor: `kubectl apply` of the very objects Atrium
 * renders for the same workspaces, in the same run.
 *
 *   npx tsx bench/k8s/run.ts [--quick] [--idle SECONDS] [--kubectl-parallel N] [--keep] [--out DIR]
 *
 * Measures create→running per workspace (p50, p99, wall) for 100 workspaces
 * in 10 teams and 1,000 in 100 (--quick: 20 in 4, 100 in 10) created through
 * Atrium's HTTP API, the API requests Atrium sends per start (its runtime's
 * own counter) beside every request the API server counted
 * (`apiserver_request_total`), Atrium's requests per minute with all of them
 * running and idle, and the same creates through kubectl. See bench/README.md.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { hostProbeMs } from '../lib/cpu.js';
import { REPO_ROOT } from '../lib/paths.js';
import { cleanupAll, cleanupOnSignals, onCleanup, run } from '../lib/proc.js';
import { BENCH_PROFILE, openEvents, startAtrium, TEAM_QUOTA, type Atrium, type PhaseEvent } from './atrium.js';
import { apiserverRequests, requestDelta, setupCluster, type Cluster, type NodeShape } from './cluster.js';
import { cpuSnapshot, cpuUse } from './cpu.js';
import { applyFloor, floorCacheDir, renderFloor, warmKubectl } from './floor.js';
import type { PodTimes, PodWatchInput, PodWatchMessage } from './pod-watch.js';
import { evaluate, formatPhases, groupFailures, formatRatios, formatRequests, formatTargets, quantile, TARGETS, topRequests, type IdleResult, type PhaseResult } from './report.js';

const USAGE = `usage: npx tsx bench/k8s/run.ts [options]
  --quick                 a smoke run: 20 workspaces in 4 teams, then 100 in 10; 30 s idle
  --idle SECONDS          how long Atrium's idle traffic is counted (default 120; --quick 30)
  --kubectl-parallel N    kubectl runs at once for the floor, the teams dealt among them (default 4)
  --sizes LIST            the steps, WORKSPACESxTEAMS each (default 100x10,1000x100; --quick 20x4,100x10)
  --no-floor              measure Atrium alone (to profile it: NODE_OPTIONS=--cpu-prof)
  --keep                  keep the work directory (control-plane logs, Atrium's database) under /tmp
  --out DIR               where the JSON result goes (default bench/out)
Needs the control-plane binaries (scripts/k8s-build.sh builds and caches them once per machine).`;

interface Size {
  workspaces: number;
  teams: number;
}

interface Options {
  quick: boolean;
  sizes: Size[];
  floor: boolean;
  idleSeconds: number;
  kubectlParallel: number;
  nodes: NodeShape;
  keep: boolean;
  outDir: string;
}

/** "100x10,1000x100": workspaces × teams per step, the workspaces spread evenly */
function parseSizes(v: string): Size[] {
  return v.split(',').map((part) => {
    const m = /^(\d+)x(\d+)$/.exec(part.trim());
    const workspaces = Number(m?.[1]);
    const teams = Number(m?.[2]);
    if (!m || teams < 1 || workspaces < teams || workspaces % teams !== 0) throw new Error(`--sizes: ${part} is not WORKSPACESxTEAMS with the workspaces a multiple of the teams`);
    return { workspaces, teams };
  });
}

function options(): Options {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      idle: { type: 'string' },
      'kubectl-parallel': { type: 'string', default: '4' },
      sizes: { type: 'string' },
      'no-floor': { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false },
      out: { type: 'string', default: join(REPO_ROOT, 'bench', 'out') },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const count = (v: string | undefined, fallback: number, name: string) => {
    const n = Number(v ?? fallback);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} takes a whole number of at least 1, not ${v}`);
    return n;
  };
  const quick = values.quick;
  return {
    quick,
    sizes: values.sizes ? parseSizes(values.sizes) : quick ? [{ workspaces: 20, teams: 4 }, { workspaces: 100, teams: 10 }] : [{ workspaces: 100, teams: 10 }, { workspaces: 1000, teams: 100 }],
    floor: !values['no-floor'],
    idleSeconds: count(values.idle, quick ? 30 : 120, 'idle'),
    kubectlParallel: count(values['kubectl-parallel'], 4, 'kubectl-parallel'),
    nodes: { count: 20, cpu: '64', memory: '256Gi', pods: 250 },
    keep: values.keep,
    outDir: values.out,
  };
}

const started = performance.now();
const log = (msg: string) => process.stderr.write(`[${((performance.now() - started) / 1000).toFixed(1).padStart(6)}s] ${msg}\n`);
const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** after the last workspace runs, what its start still sets off (the SSH access sync, events) is counted too */
const SETTLE_MS = 3000;

/** Pod milestones from the watch worker, by namespace/name. */
class PodWatch {
  readonly times = new Map<string, PodTimes>();
  private waiters = new Set<() => void>();
  private worker: Worker;
  private synced: Promise<void>;
  errors: string[] = [];

  constructor(cluster: Cluster) {
    const pki = join(cluster.cp.dir, 'pki');
    const input: PodWatchInput = {
      server: cluster.cp.server,
      ca: join(pki, 'ca.crt'),
      cert: join(pki, 'admin.crt'),
      key: join(pki, 'admin.key'),
      labelSelector: 'app.kubernetes.io/managed-by=atrium,app.kubernetes.io/component=workspace',
    };
    // a worker does not inherit tsx's loader: it registers it, then imports the TypeScript module
    const code = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then(({ register }) => { register(); return import(${JSON.stringify(new URL('./pod-watch.ts', import.meta.url).href)}); })`;
    this.worker = new Worker(code, { eval: true, workerData: input });
    let synced: () => void = () => undefined;
    let broke: (err: Error) => void = () => undefined;
    this.synced = new Promise((resolve, reject) => {
      synced = resolve;
      broke = reject;
    });
    this.worker.on('message', (m: PodWatchMessage) => {
      if (m.type === 'synced') synced();
      else if (m.type === 'error') {
        this.errors.push(m.message);
        log(`pod watch: ${m.message}`);
      } else {
        this.times.set(m.key, m);
        for (const w of this.waiters) w();
      }
    });
    this.worker.on('error', (err) => {
      log(`pod watch worker failed: ${err.message}`);
      broke(err);
    });
  }

  ready(): Promise<void> {
    return this.synced;
  }

  /** Resolves once every key has a Ready time, or rejects after `timeoutMs` naming what is missing. */
  async all(keys: string[], timeoutMs: number): Promise<void> {
    const missing = () => keys.filter((k) => !this.times.has(k));
    if (missing().length === 0) return;
    await new Promise<void>((resolve, reject) => {
      const check = () => {
        if (missing().length > 0) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        const m = missing();
        reject(new Error(`${m.length} of ${keys.length} pods not Running and Ready after ${timeoutMs / 1000} s: ${m.slice(0, 5).join(', ')}${m.length > 5 ? ' …' : ''}`));
      }, timeoutMs);
      this.waiters.add(check);
    });
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}

const teamNames = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}-t${String(i).padStart(Math.max(2, String(n - 1).length), '0')}`);
const wsNames = (n: number) => Array.from({ length: n }, (_, i) => `ws-${String(i).padStart(3, '0')}`);

interface Meters {
  cluster: Cluster;
  atrium: Atrium;
}

async function snapshot(m: Meters) {
  const [api] = await Promise.all([apiserverRequests(m.cluster.cp)]);
  return { api, atrium: m.atrium.runtime.requests, cpu: cpuSnapshot(m.cluster.pids()) };
}

/** Creates `size` workspaces through Atrium's API, all requests at once, and times each to its running event. */
async function atriumPhase(m: Meters, pods: PodWatch, size: Size, prefix: string, timeoutMs: number): Promise<PhaseResult> {
  const { atrium } = m;
  const teams = teamNames(prefix, size.teams);
  for (const t of teams) {
    const r = await atrium.call('POST', '/api/v1/teams', { name: t, owner: 'admin', quota: TEAM_QUOTA });
    if (r.status !== 201) throw new Error(`create team ${t}: HTTP ${r.status} ${JSON.stringify(r.body)}`);
  }
  const perTeam = size.workspaces / size.teams;
  const targets = teams.flatMap((team) => wsNames(perTeam).map((name) => ({ team, name, key: `${team}/${name}` })));
  const running = new Map<string, number>();
  const failed = new Map<string, string>();
  let wake: () => void = () => undefined;
  const events = await openEvents(atrium, teams, (e: PhaseEvent) => {
    const key = `${e.team}/${e.workspace}`;
    if (e.phase === 'running' && !running.has(key)) running.set(key, e.at);
    else if (e.phase === 'failed') failed.set(key, e.reason ?? 'failed');
    wake();
  });
  try {
    await sleep(500);
    const probeMs = hostProbeMs();
    const before = await snapshot(m);
    const sent = new Map<string, number>();
    const answered: number[] = [];
    const refused: string[] = [];
    const t0 = now();
    await Promise.all(
      targets.map(async (t) => {
        const at = now();
        sent.set(t.key, at);
        const r = await atrium.call('POST', `/api/v1/teams/${t.team}/workspaces`, { name: t.name, profile: BENCH_PROFILE.name });
        answered.push((now() - at) / 1000);
        if (r.status !== 201) refused.push(`${t.key}: HTTP ${r.status} ${JSON.stringify(r.body).slice(0, 200)}`);
      }),
    );
    log(`  ${targets.length} creates answered in ${((now() - t0) / 1000).toFixed(2)} s (p50 ${quantile(answered, 0.5).toFixed(3)} s, p99 ${quantile(answered, 0.99).toFixed(3)} s)${refused.length ? `; ${refused.length} refused: ${refused[0]}` : ''}`);
    const deadline = now() + timeoutMs;
    let lastLog = now();
    while (targets.some((t) => !running.has(t.key) && !failed.has(t.key)) && !refused.length) {
      if (now() > deadline) break;
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, 1000);
      });
      if (now() - lastLog > 10_000) {
        lastLog = now();
        log(`  ${running.size} of ${targets.length} running, ${failed.size} failed`);
      }
    }
    const end = Math.max(...[...running.values()], t0);
    await sleep(SETTLE_MS);
    const after = await snapshot(m);
    const failures = [
      ...refused,
      ...[...failed].map(([k, why]) => `${k}: failed: ${why}`),
      ...targets.filter((t) => !running.has(t.key) && !failed.has(t.key) && !refused.some((r) => r.startsWith(`${t.key}:`))).map((t) => `${t.key}: not running after ${timeoutMs / 1000} s`),
    ];
    const ok = targets.filter((t) => running.has(t.key));
    const podKey = (t: { team: string; name: string }) => `atrium-${t.team}/ws-${t.name}-0`;
    const withPod = ok.filter((t) => pods.times.has(podKey(t)));
    const d = requestDelta(before.api, after.api);
    return {
      system: 'atrium',
      label: `Atrium (${size.workspaces})`,
      workspaces: size.workspaces,
      teams: size.teams,
      each: ok.map((t) => (running.get(t.key)! - sent.get(t.key)!) / 1000),
      podReady: withPod.map((t) => (pods.times.get(podKey(t))!.ready - sent.get(t.key)!) / 1000),
      podSeen: withPod.map((t) => (pods.times.get(podKey(t))!.seen - sent.get(t.key)!) / 1000),
      podBind: withPod.map((t) => {
        const p = pods.times.get(podKey(t))!;
        return ((p.scheduled ?? p.ready) - p.seen) / 1000;
      }),
      afterReady: withPod.map((t) => (running.get(t.key)! - pods.times.get(podKey(t))!.ready) / 1000),
      createSeconds: answered,
      wall: (end - t0) / 1000,
      apiserverRequests: d.total,
      apiserverBy: d.by,
      tooMany: d.tooMany,
      rejected: d.rejected,
      atriumRequests: after.atrium - before.atrium,
      failures,
      cpu: cpuUse(before.cpu, after.cpu),
      probeMs,
    };
  } finally {
    events.close();
  }
}

/** The same number of workspaces in fresh teams through `kubectl apply --server-side`, timed from the start of the batch to each pod Running and Ready. */
async function floorPhase(m: Meters, pods: PodWatch, size: Size, prefix: string, template: { team: string; workspace: string }, parallel: number, work: string, timeoutMs: number): Promise<PhaseResult> {
  const teams = await renderFloor(m.atrium, template, teamNames(prefix, size.teams), size.workspaces / size.teams);
  const kubectl = { path: m.cluster.kubectlPath, kubeconfig: m.cluster.cp.kubeconfig, cacheDir: floorCacheDir(work) };
  await warmKubectl(kubectl);
  await sleep(500);
  const probeMs = hostProbeMs();
  const before = await snapshot(m);
  const t0 = now();
  const keys = teams.flatMap((t) => t.workspaces.map((w) => `${t.namespace}/ws-${w}-0`));
  let failure: string | undefined;
  let applied: Awaited<ReturnType<typeof applyFloor>> | undefined;
  try {
    applied = await applyFloor(kubectl, teams, parallel);
  } catch (err) {
    failure = (err as Error).message;
  }
  log(`  kubectl applied ${teams.reduce((a, t) => a + t.objects, 0)} objects in ${((now() - t0) / 1000).toFixed(2)} s${applied?.retries ? ` (${applied.retries} runs repeated)` : ''}`);
  await pods.all(keys, timeoutMs).catch((err: unknown) => (failure ??= (err as Error).message));
  const readyKeys = keys.filter((k) => pods.times.has(k));
  const end = Math.max(...readyKeys.map((k) => pods.times.get(k)!.ready), t0);
  await sleep(SETTLE_MS);
  const after = await snapshot(m);
  const d = requestDelta(before.api, after.api);
  const each = readyKeys.map((k) => (pods.times.get(k)!.ready - t0) / 1000);
  return {
    system: 'floor',
    label: `floor: kubectl (${size.workspaces})`,
    workspaces: size.workspaces,
    teams: size.teams,
    each,
    podReady: each,
    podSeen: readyKeys.map((k) => (pods.times.get(k)!.seen - t0) / 1000),
    podBind: readyKeys.map((k) => {
      const p = pods.times.get(k)!;
      return ((p.scheduled ?? p.ready) - p.seen) / 1000;
    }),
    afterReady: [],
    createSeconds: [],
    wall: (end - t0) / 1000,
    apiserverRequests: d.total,
    apiserverBy: d.by,
    tooMany: d.tooMany,
    rejected: d.rejected,
    atriumRequests: null,
    failures: failure ? [failure] : [],
    cpu: cpuUse(before.cpu, after.cpu),
    probeMs,
    retries: applied?.retries ?? 0,
  };
}

async function idlePhase(m: Meters, seconds: number, running: number): Promise<IdleResult> {
  const before = await snapshot(m);
  await sleep(seconds * 1000);
  const after = await snapshot(m);
  const d = requestDelta(before.api, after.api);
  const requests = after.atrium - before.atrium;
  return { seconds, workspacesRunning: running, atriumRequests: requests, perMinute: (requests * 60) / seconds, apiserverRequests: d.total, apiserverBy: d.by, tooMany: d.tooMany, cpu: cpuUse(before.cpu, after.cpu) };
}

function describe(p: PhaseResult): string {
  const f = (x: number) => x.toFixed(2);
  return `${p.label}: p50 ${f(quantile(p.each, 0.5))} s, p99 ${f(quantile(p.each, 0.99))} s, wall ${f(p.wall)} s; apiserver ${p.apiserverRequests} requests${p.atriumRequests === null ? '' : `, Atrium ${p.atriumRequests} (${(p.atriumRequests / p.workspaces).toFixed(2)} per start)`}${p.failures.length ? `; ${p.failures.length} FAILED` : ''}`;
}

async function main(): Promise<number> {
  const opts = options();
  cleanupOnSignals();
  const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
  const work = mkdtempSync(join('/tmp', 'atrium-bench-k8s-'));
  onCleanup('work directory', () => {
    if (opts.keep) log(`kept ${work}`);
    else rmSync(work, { recursive: true, force: true });
  });
  const total = opts.sizes.reduce((a, s) => a + s.workspaces, 0);
  log('starting the control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, KWOK)');
  const cluster = await setupCluster({ nodes: opts.nodes, volumes: Math.ceil(total * (opts.floor ? 2 : 1) * 1.05) + 4, log });
  onCleanup('control plane', async () => {
    if (opts.keep) {
      await run('bash', [join(REPO_ROOT, 'scripts', 'k8s-testenv.sh'), 'stop', cluster.cp.dir]).catch(() => '');
      log(`control-plane logs kept in ${cluster.cp.dir}`);
    } else await cluster.cp.close();
  });
  const version = (await cluster.kubectl(['version', '-o', 'json']).catch(() => '{}')).trim();
  const serverVersion = (JSON.parse(version || '{}') as { serverVersion?: { gitVersion?: string } }).serverVersion?.gitVersion ?? 'unknown';

  log('starting Atrium in this process (runtime.kind kubernetes, as the ServiceAccount atrium/atrium)');
  const atrium = await startAtrium({ work, kubeconfig: cluster.atriumKubeconfig, logLevel: 'error' });
  onCleanup('Atrium', () => atrium.close());
  const pods = new PodWatch(cluster);
  onCleanup('pod watch', () => pods.close());
  await pods.ready();
  const meters: Meters = { cluster, atrium };

  const phases: PhaseResult[] = [];
  // the first workspaces and kubectl runs of a run pay for cold caches (the JIT, the API server's, kubectl's): untimed
  log('warm-up: 2 workspaces through Atrium, 2 through kubectl (not counted)');
  const warm = { workspaces: 2, teams: 1 };
  await atriumPhase(meters, pods, warm, 'a0', 300_000);
  const template = { team: teamNames('a0', 1)[0]!, workspace: wsNames(1)[0]! };
  if (opts.floor) await floorPhase(meters, pods, warm, 'f0', template, opts.kubectlParallel, work, 300_000);

  let idle: IdleResult | undefined;
  for (const [i, size] of opts.sizes.entries()) {
    const timeoutMs = Math.max(300_000, size.workspaces * 600);
    log(`Atrium: ${size.workspaces} workspaces in ${size.teams} teams, every create at once`);
    phases.push(await atriumPhase(meters, pods, size, `a${i + 1}`, timeoutMs));
    log(`  ${describe(phases.at(-1)!)}`);
    if (i === opts.sizes.length - 1) {
      const running = phases.filter((p) => p.system === 'atrium').reduce((a, p) => a + p.each.length, 0) + warm.workspaces;
      log(`idle: Atrium's requests over ${opts.idleSeconds} s with ${running} workspaces running and nothing asked of it`);
      idle = await idlePhase(meters, opts.idleSeconds, running);
      log(`  ${idle.atriumRequests} requests, ${idle.perMinute.toFixed(1)} per minute (apiserver, all clients: ${idle.apiserverRequests})`);
    }
    if (!opts.floor) continue;
    log(`floor: kubectl apply --server-side of the same objects for ${size.workspaces} workspaces in ${size.teams} fresh teams (${opts.kubectlParallel} kubectl runs at once, the teams dealt among them)`);
    phases.push(await floorPhase(meters, pods, size, `f${i + 1}`, template, opts.kubectlParallel, work, timeoutMs));
    log(`  ${describe(phases.at(-1)!)}`);
  }

  const targets = evaluate(phases, idle);
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, Kubernetes ${serverVersion}`;
  const out = [
    '',
    machine,
    `${opts.nodes.count} KWOK nodes (${opts.nodes.cpu} CPUs, ${opts.nodes.memory}, ${opts.nodes.pods} pods each); profile ${BENCH_PROFILE.name} (CPU ${BENCH_PROFILE.cpu.guarantee}/${BENCH_PROFILE.cpu.limit}, memory ${BENCH_PROFILE.memory.guarantee}/${BENCH_PROFILE.memory.limit}, home ${BENCH_PROFILE.storage} on a pre-made 1Gi PersistentVolume).`,
    'Times in seconds per workspace from its create request (Atrium: its POST; floor: the start of the batch) to running (Atrium: the phase event on',
    "GET /api/v1/events; floor: its pod Running and Ready on the benchmark's watch). pod ready: the same watch, for Atrium's pods too.",
    '',
    formatPhases(phases),
    '',
    'API requests during each phase: every request the API server counted (apiserver_request_total, all clients: controllers, scheduler, KWOK,',
    "kubectl) and those Atrium's runtime sent (KubernetesRuntime.requests); CPU seconds by process over the phase.",
    '',
    formatRequests(phases, idle),
    '',
    formatRatios(phases),
    '',
    formatTargets(targets),
    '',
    ...phases.map((p) => `${p.label}, API server requests: ${topRequests(p.apiserverBy)}`),
    ...(idle ? [`idle, API server requests: ${topRequests(idle.apiserverBy)}`] : []),
    '',
  ];
  const failures = phases.flatMap((p) => p.failures);
  for (const p of phases) {
    const r = Object.entries(p.rejected);
    if (r.length) out.push(`${p.label}: API Priority and Fairness turned away ${r.map(([k, v]) => `${v} (${k})`).join(', ')}`);
  }
  if (failures.length) out.push('', `FAILED: ${failures.length} workspaces or runs, by reason:`, ...groupFailures(phases), '');
  const busy = phases.filter((p) => p.cpu.othersCpus > 0.1);
  if (busy.length) out.push(`warning: other processes used more than 0.1 CPUs during ${busy.map((p) => `${p.label} (${p.cpu.othersCpus.toFixed(2)})`).join(', ')}: those figures are skewed.`, '');
  process.stdout.write(out.join('\n'));

  mkdirSync(opts.outDir, { recursive: true });
  const jsonFile = join(opts.outDir, `k8s-${stamp}Z.json`);
  writeFileSync(
    jsonFile,
    JSON.stringify(
      {
        date: new Date().toISOString(),
        options: opts,
        machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', memoryBytes: totalmem(), node: process.version, kubernetes: serverVersion },
        profile: BENCH_PROFILE,
        teamQuota: TEAM_QUOTA,
        targets: TARGETS,
        phases: phases.map((p) => ({
          ...p,
          summary: {
            p50: quantile(p.each, 0.5),
            p90: quantile(p.each, 0.9),
            p99: quantile(p.each, 0.99),
            max: Math.max(...p.each),
            podReadyP50: quantile(p.podReady, 0.5),
            podSeenP50: quantile(p.podSeen, 0.5),
            podBindP50: quantile(p.podBind, 0.5),
            afterReadyP50: quantile(p.afterReady, 0.5),
            afterReadyP99: quantile(p.afterReady, 0.99),
            createP50: quantile(p.createSeconds, 0.5),
            createP99: quantile(p.createSeconds, 0.99),
          },
        })),
        idle,
        verdicts: targets,
        podWatchErrors: pods.errors,
      },
      null,
      2,
    ),
  );
  log(`results written to ${jsonFile}; wall time ${((performance.now() - started) / 1000).toFixed(0)} s`);
  return failures.length ? 1 : 0;
}

let status = 1;
try {
  status = await main();
} catch (err) {
  process.stderr.write(`bench/k8s failed: ${(err as Error).stack ?? (err as Error).message}\n`);
} finally {
  await cleanupAll();
}
process.exit(status);
